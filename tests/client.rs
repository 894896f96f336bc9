//! Integration tests of `piccolo::client` against the real `piccolo-server` (started on an
//! ephemeral port by `common::Server`), plus two fake servers for timeouts and protocol errors.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use piccolo::client::{
    CasOutcome, Client, Error, ErrorCode, Reply, ReplyRef, Request, SetOptions, SetOutcome, Ttl,
};

mod common;

use common::{Server, TIMEOUT};

fn connect(server: &Server) -> Client {
    Client::connect(server.addr, TIMEOUT).expect("connect")
}

#[test]
fn every_operation_with_typed_answers() {
    let server = Server::start(&["--workers", "2"]);
    let mut client = connect(&server);
    assert_eq!(client.ping(b"").unwrap(), b"PONG");
    assert_eq!(client.ping(b"hi").unwrap(), b"hi");

    // set / get / getv / get_into.
    let v1 = client.set(b"k", b"one").unwrap();
    assert_eq!(client.get(b"k").unwrap(), Some(b"one".to_vec()));
    assert_eq!(client.get(b"missing").unwrap(), None);
    let value = client.getv(b"k").unwrap().unwrap();
    assert_eq!((value.data.as_slice(), value.version), (&b"one"[..], v1));
    let mut out = b"stale".to_vec();
    assert_eq!(client.get_into(b"k", &mut out).unwrap(), Some(v1));
    assert_eq!(out, b"one");
    assert_eq!(client.get_into(b"missing", &mut out).unwrap(), None);
    assert!(out.is_empty());
    assert_eq!(client.getv(b"missing").unwrap(), None);

    // insert / update.
    assert_eq!(client.insert(b"k", b"x").unwrap(), None);
    assert!(client.insert(b"fresh", b"x").unwrap().is_some());
    assert_eq!(client.update(b"nothing", b"x").unwrap(), None);
    let v2 = client.update(b"k", b"two").unwrap().unwrap();
    assert!(v2 > v1);

    // cas: written, stale, missing.
    let v3 = match client.cas(b"k", v2, b"three").unwrap() {
        CasOutcome::Written(version) => version,
        other => panic!("cas with the current version: {other:?}"),
    };
    assert_eq!(
        client.cas(b"k", v2, b"again").unwrap(),
        CasOutcome::ConditionFailed
    );
    assert_eq!(
        client.cas(b"nothing", 1, b"x").unwrap(),
        CasOutcome::NotFound
    );
    assert_eq!(client.get(b"k").unwrap(), Some(b"three".to_vec()));

    // set_with: if_version with a ttl, if_equal, keep_ttl; set_get.
    let options = SetOptions::new()
        .if_version(v3)
        .ttl(Duration::from_secs(60));
    let v4 = match client.set_with(b"k", b"four", options).unwrap() {
        SetOutcome::Written(version) => version,
        other => panic!("{other:?}"),
    };
    assert!(matches!(client.ttl(b"k").unwrap(), Ttl::Remaining(ttl)
        if ttl > Duration::from_secs(58) && ttl <= Duration::from_secs(60)));
    assert_eq!(
        client
            .set_with(b"k", b"x", SetOptions::new().if_version(v3))
            .unwrap(),
        SetOutcome::ConditionFailed
    );
    assert_eq!(
        client
            .set_with(b"k", b"x", SetOptions::new().if_equal(b"nope"))
            .unwrap(),
        SetOutcome::ConditionFailed
    );
    let options = SetOptions::new().if_equal(b"four").keep_ttl();
    assert!(client.set_with(b"k", b"five", options).unwrap().version() > Some(v4));
    assert!(matches!(client.ttl(b"k").unwrap(), Ttl::Remaining(_)));
    assert_eq!(
        client.set_get(b"k", b"six", SetOptions::new()).unwrap(),
        Some(b"five".to_vec())
    );
    assert_eq!(client.ttl(b"k").unwrap(), Ttl::Persistent);
    assert_eq!(
        client.set_get(b"new", b"x", SetOptions::new()).unwrap(),
        None
    );

    // expire / ttl / persist.
    assert_eq!(client.ttl(b"missing").unwrap(), Ttl::Missing);
    assert!(client.expire(b"k", Duration::from_secs(100)).unwrap());
    assert!(!client.expire(b"missing", Duration::from_secs(100)).unwrap());
    assert!(client.persist(b"k").unwrap());
    assert!(!client.persist(b"k").unwrap());
    assert!(client.expire_at(b"new", 1).unwrap());
    assert_eq!(client.get(b"new").unwrap(), None);

    // incr / append / strlen / exists / delete / get_del.
    assert_eq!(client.incr(b"n", 5).unwrap(), 5);
    assert_eq!(client.incr(b"n", -7).unwrap(), -2);
    assert_eq!(client.append(b"s", b"ab").unwrap(), 2);
    assert_eq!(client.append(b"s", b"cd").unwrap(), 4);
    assert_eq!(client.strlen(b"s").unwrap(), 4);
    assert_eq!(client.strlen(b"missing").unwrap(), 0);
    assert!(client.exists(b"s").unwrap());
    assert_eq!(client.exists_many(&[b"s", b"s", b"missing"]).unwrap(), 2);
    assert_eq!(client.get_del(b"s").unwrap(), Some(b"abcd".to_vec()));
    assert_eq!(client.get_del(b"s").unwrap(), None);
    assert!(client.delete(b"n").unwrap());
    assert!(!client.delete(b"n").unwrap());

    // mset / mget / delete_many / dbsize / scan / info / flush.
    client.flush().unwrap();
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..50)
        .map(|i| {
            (
                format!("key:{i}").into_bytes(),
                format!("v{i}").into_bytes(),
            )
        })
        .collect();
    let borrowed: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .map(|(key, value)| (key.as_slice(), value.as_slice()))
        .collect();
    client.mset(&borrowed).unwrap();
    assert_eq!(client.dbsize().unwrap(), 50);
    assert_eq!(
        client.mget(&[b"key:3", b"none", b"key:49"]).unwrap(),
        vec![Some(b"v3".to_vec()), None, Some(b"v49".to_vec())]
    );
    let mut keys = client.scan_all(b"").unwrap();
    let mut want: Vec<Vec<u8>> = pairs.iter().map(|(key, _)| key.clone()).collect();
    want.sort();
    keys.sort();
    assert_eq!(keys, want);
    let matching = client.scan_all(b"key:1?").unwrap();
    assert_eq!(matching.len(), 10);
    let page = client.scan(0, 5, b"").unwrap();
    assert!(!page.keys.is_empty());
    assert_eq!(
        client.delete_many(&[b"key:1", b"key:2", b"none"]).unwrap(),
        2
    );
    let info = client.info("").unwrap();
    assert!(
        info.contains("# Server") && info.contains("db0:keys=48"),
        "{info}"
    );
    assert!(client.info("clients").unwrap().starts_with("# Clients"));

    // `call` for anything else.
    let length = client
        .call(&Request::Strlen(b"key:3"), |reply| match reply {
            ReplyRef::Integer(length) => Ok(length),
            other => Err(other.unexpected("strlen")),
        })
        .unwrap();
    assert_eq!(length, 2);
}

#[test]
fn server_errors_are_typed_and_leave_the_connection_usable() {
    let server = Server::start(&[]);
    let mut client = connect(&server);
    client.set(b"text", b"abc").unwrap();
    let error = client.incr(b"text", 1).unwrap_err();
    assert!(
        matches!(&error, Error::Server { code: ErrorCode::NotInteger, message }
            if message.contains("not an integer")),
        "{error:?}"
    );
    assert!(!error.is_fatal());
    client.set(b"big", i64::MAX.to_string().as_bytes()).unwrap();
    assert_eq!(
        client.incr(b"big", 1).unwrap_err().code(),
        Some(ErrorCode::Overflow)
    );
    let zero = SetOptions::new().ttl(Duration::ZERO);
    assert_eq!(
        client.set_with(b"k", b"v", zero).unwrap_err().code(),
        Some(ErrorCode::InvalidArgument)
    );
    // Still connected, still in step.
    assert!(client.is_connected());
    assert_eq!(client.get(b"text").unwrap(), Some(b"abc".to_vec()));
}

#[test]
fn auth_and_reconnect_replays_it() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let mut client = connect(&server);
    assert_eq!(
        client.get(b"k").unwrap_err().code(),
        Some(ErrorCode::Unauthenticated)
    );
    assert_eq!(
        client.auth(b"wrong").unwrap_err().code(),
        Some(ErrorCode::Unauthenticated)
    );
    client.auth(b"s3cret").unwrap();
    client.set(b"k", b"v").unwrap();
    client.reconnect().unwrap();
    assert_eq!(client.get(b"k").unwrap(), Some(b"v".to_vec()));
    let mut other = connect(&server);
    other.auth_user("default", b"s3cret").unwrap();
    assert_eq!(other.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn pipelining_ten_thousand_requests() {
    let server = Server::start(&["--workers", "3"]);
    let mut client = connect(&server);
    const N: usize = 10_000;
    let value = [b'x'; 32];
    // 10,000 sets, then 10,000 gets and incrs interleaved, in two pipelines: over 256 KiB of
    // requests each, so answers are read while the requests are still being written.
    let mut pipeline = client.pipeline();
    for i in 0..N {
        let key = format!("key:{i}");
        let mut value = value.to_vec();
        value.extend_from_slice(key.as_bytes());
        pipeline.set(key.as_bytes(), &value);
    }
    assert_eq!(pipeline.len(), N);
    let replies = pipeline.execute().unwrap();
    assert_eq!(replies.len(), N);
    assert!(
        replies
            .iter()
            .all(|reply| matches!(reply, Reply::Version(_)))
    );

    let mut pipeline = client.pipeline();
    for i in 0..N {
        pipeline.get(format!("key:{i}").as_bytes());
        pipeline.incr(b"counter", 1);
    }
    pipeline.get(b"missing");
    let mut seen = 0;
    pipeline
        .execute_with(|index, reply| {
            seen += 1;
            if index == 2 * N {
                assert_eq!(reply, ReplyRef::NotFound);
            } else if index % 2 == 0 {
                let want = format!("{}key:{}", "x".repeat(32), index / 2);
                assert!(
                    matches!(reply, ReplyRef::Value { data, .. } if data == want.as_bytes()),
                    "answer {index}: {reply:?}"
                );
            } else {
                assert_eq!(reply, ReplyRef::Integer((index / 2 + 1) as i64));
            }
        })
        .unwrap();
    assert_eq!(seen, 2 * N + 1);
    // The connection is in step afterwards, and an empty pipeline is fine.
    assert!(client.pipeline().execute().unwrap().is_empty());
    assert_eq!(client.incr(b"counter", 0).unwrap(), N as i64);
}

#[test]
fn a_server_error_in_a_pipeline_is_that_requests_answer() {
    let server = Server::start(&[]);
    let mut client = connect(&server);
    let mut pipeline = client.pipeline();
    pipeline.set(b"text", b"abc").incr(b"text", 1).get(b"text");
    let replies = pipeline.execute().unwrap();
    assert!(matches!(replies[0], Reply::Version(_)));
    assert!(matches!(
        &replies[1],
        Reply::Error {
            code: ErrorCode::NotInteger,
            ..
        }
    ));
    assert!(matches!(&replies[2], Reply::Value(value) if value.data == b"abc"));
}

#[test]
fn reconnect_after_a_server_restart() {
    let mut server = Server::start(&[]);
    let mut client = connect(&server);
    client.set(b"k", b"v").unwrap();
    let addr = server.addr.to_string();
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    // The first call sees the closed connection (whether the write or the read notices).
    let error = client.get(b"k").unwrap_err();
    assert!(error.is_fatal(), "{error:?}");
    assert!(
        matches!(error, Error::Disconnected | Error::Io(_)),
        "{error:?}"
    );
    assert!(!client.is_connected());
    assert!(matches!(client.get(b"k"), Err(Error::NotConnected)));
    // Nothing listens: reconnecting fails with the socket's error.
    assert!(matches!(client.reconnect(), Err(Error::Io(_))));
    // A new server on the same port: reconnect and carry on (the store is empty).
    let _server = Server::start(&["--addr", &addr]);
    client.reconnect().unwrap();
    assert!(client.is_connected());
    assert_eq!(client.get(b"k").unwrap(), None);
    client.set(b"k", b"again").unwrap();
    assert_eq!(client.get(b"k").unwrap(), Some(b"again".to_vec()));
}

#[test]
fn connecting_to_nothing_is_an_io_error() {
    // Bind then drop a listener: its port is (almost certainly) free and refuses connections.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let error = Client::connect(addr, TIMEOUT).unwrap_err();
    assert!(
        matches!(&error, Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused),
        "{error:?}"
    );
    assert!(
        error.to_string().to_lowercase().contains("refused"),
        "{error}"
    );
    assert!(matches!(
        Client::connect("not an address", TIMEOUT),
        Err(Error::Io(_))
    ));
}

#[test]
fn a_silent_server_times_out_and_drops_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        // Accept, read whatever comes, never answer; returns when the client hangs up.
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 1024];
        while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
    });
    let mut client = Client::connect(addr, Duration::from_millis(200)).unwrap();
    assert!(matches!(client.get(b"k"), Err(Error::Timeout)));
    assert!(!client.is_connected());
    assert!(matches!(client.ping(b""), Err(Error::NotConnected)));
    drop(client);
    holder.join().unwrap();
}

#[test]
fn a_server_speaking_something_else_is_a_protocol_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        for answer in [&b"-ERR unknown command\r\n"[..], &wrong_id_response()] {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer).unwrap();
            stream.write_all(answer).unwrap();
            let _ = stream.read(&mut buffer);
        }
    });
    let mut client = Client::connect(addr, TIMEOUT).unwrap();
    let error = client.ping(b"").unwrap_err();
    assert!(matches!(&error, Error::Protocol(_)), "{error:?}");
    assert!(!client.is_connected());
    client.reconnect().unwrap();
    let error = client.ping(b"").unwrap_err();
    assert!(
        matches!(&error, Error::Protocol(message) if message.contains("id 999")),
        "{error:?}"
    );
    drop(client);
    fake.join().unwrap();
}

/// A well-formed `pong` Response whose id (999) is not the Request's.
fn wrong_id_response() -> Vec<u8> {
    let mut encoder = piccolo::proto::capnp::MessageEncoder::default();
    let mut out = Vec::new();
    encoder.encode_response(&mut out, |mut response| {
        response.set_id(999);
        response.set_pong(b"PONG");
    });
    out
}
