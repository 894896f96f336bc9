//! Interop of `proto::capnp` with the reference Cap'n Proto tool: messages that `capnp encode`
//! writes from the schema's text form are framed and decoded by Piccolo, and Responses that
//! Piccolo encodes are read back by `capnp decode`. This proves the framing is the standard one.
//!
//! The last test goes further: it starts the real server, sends it Requests written by
//! `capnp encode`, and reads the server's Responses with `capnp decode`.
//!
//! Needs the `capnp` tool (`apt-get install -y capnproto`), hence `#[ignore]`; run with
//! `cargo test -p piccolo --test proto_capnp_tool -- --ignored`.

mod common;

use piccolo::proto::capnp::piccolo_capnp::{ErrorCode, request, set};
use piccolo::proto::capnp::{
    FrameLimits, MessageEncoder, decode_request, frame_len, write_error_response,
};
use piccolo::proto::{Protocol, detect};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/piccolo.capnp")
}

/// Runs `capnp <mode> schema/piccolo.capnp <type>` with `input` on stdin.
fn capnp_tool(mode: &str, type_name: &str, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("capnp")
        .arg(mode)
        .arg(schema_path())
        .arg(type_name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the capnp tool is installed (apt-get install -y capnproto)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "capnp {mode} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Copies `bytes` into 8-byte-aligned storage, as a reactor's read buffer would be.
fn aligned(bytes: &[u8]) -> Vec<capnp::Word> {
    let mut words = capnp::Word::allocate_zeroed_vec(bytes.len().div_ceil(8));
    capnp::Word::words_to_bytes_mut(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

#[test]
#[ignore = "needs the capnp tool; run by .ci/run"]
fn requests_encoded_by_the_capnp_tool_decode() {
    let mut stream = Vec::new();
    stream.extend(capnp_tool("encode", "Request", b"(id = 7, get = \"key\")"));
    stream.extend(capnp_tool(
        "encode",
        "Request",
        b"(id = 8, set = (key = \"k\", value = \"v\", condition = (ifVersion = 3), expiry = (inMs = 100)))",
    ));
    assert_eq!(detect(stream[0]), Protocol::Capnp);

    let words = aligned(&stream);
    let mut buffer = &capnp::Word::words_to_bytes(&words)[..stream.len()];
    let mut scratch = Vec::new();

    let len = frame_len(buffer, &FrameLimits::DEFAULT).unwrap().unwrap();
    let message = decode_request(&buffer[..len], &mut scratch).unwrap();
    let get = message.get().unwrap();
    assert_eq!(get.get_id(), 7);
    assert!(matches!(get.which().unwrap(), request::Get(Ok(b"key"))));
    buffer = &buffer[len..];

    let len = frame_len(buffer, &FrameLimits::DEFAULT).unwrap().unwrap();
    assert_eq!(len, buffer.len());
    let message = decode_request(buffer, &mut scratch).unwrap();
    let request = message.get().unwrap();
    assert_eq!(request.get_id(), 8);
    let request::Set(Ok(set)) = request.which().unwrap() else {
        panic!("expected a set")
    };
    assert_eq!(set.get_key().unwrap(), b"k");
    assert_eq!(set.get_value().unwrap(), b"v");
    assert!(matches!(
        set.get_condition().which().unwrap(),
        set::condition::IfVersion(3)
    ));
    assert!(matches!(
        set.get_expiry().which().unwrap(),
        set::expiry::InMs(100)
    ));
}

#[test]
#[ignore = "needs the capnp tool; run by .ci/run"]
fn responses_encoded_by_piccolo_decode_with_the_capnp_tool() {
    let mut encoder = MessageEncoder::default();
    let mut out = Vec::new();
    encoder.encode_response(&mut out, |mut response| {
        response.set_id(9);
        let mut value = response.init_value();
        value.set_data(b"hello");
        value.set_version(4);
    });
    let text = String::from_utf8(capnp_tool("decode", "Response", &out)).unwrap();
    let compact: String = text.split_whitespace().collect();
    assert_eq!(compact, "(id=9,value=(data=\"hello\",version=4))");

    out.clear();
    write_error_response(&mut encoder, &mut out, 10, ErrorCode::Busy, "try again");
    let text = String::from_utf8(capnp_tool("decode", "Response", &out)).unwrap();
    let compact: String = text.split_whitespace().collect();
    assert_eq!(compact, "(id=10,error=(code=busy,message=\"tryagain\"))");
}

#[test]
#[ignore = "needs the capnp tool; run by .ci/run"]
fn the_server_answers_the_capnp_tool() {
    use std::io::Read;
    let server = common::Server::start(&["--workers", "2"]);
    let requests = [
        "(id = 1, ping = \"\")",
        "(id = 2, set = (key = \"tool\", value = \"hello\"))",
        "(id = 3, get = \"tool\")",
        "(id = 4, delete = [\"tool\", \"absent\"])",
        "(id = 5, get = \"tool\")",
    ];
    let mut stream = Vec::new();
    for request in requests {
        stream.extend(capnp_tool("encode", "Request", request.as_bytes()));
    }
    let mut socket = std::net::TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    socket.write_all(&stream).unwrap();
    // Read until every Response has arrived, splitting frames with the standard framing.
    let mut received = Vec::new();
    let mut frames = Vec::new();
    let mut buffer = [0u8; 4096];
    while frames.len() < requests.len() {
        let read = socket.read(&mut buffer).expect("the server answers");
        assert!(read > 0, "the server closed the connection");
        received.extend_from_slice(&buffer[..read]);
        while let Some(len) = frame_len(&received, &FrameLimits::DEFAULT).unwrap() {
            frames.push(received.drain(..len).collect::<Vec<u8>>());
        }
    }
    let decoded: Vec<String> = frames
        .iter()
        .map(|frame| {
            let text = String::from_utf8(capnp_tool("decode", "Response", frame)).unwrap();
            text.split_whitespace().collect()
        })
        .collect();
    assert_eq!(decoded[0], "(id=1,pong=\"PONG\")");
    assert!(decoded[1].starts_with("(id=2,version="), "{}", decoded[1]);
    let version = decoded[1]
        .trim_start_matches("(id=2,version=")
        .trim_end_matches(')');
    assert_eq!(
        decoded[2],
        format!("(id=3,value=(data=\"hello\",version={version}))")
    );
    assert_eq!(decoded[3], "(id=4,integer=1)");
    assert_eq!(decoded[4], "(id=5,notFound=void)");
}
