//! Integration tests of the Cerializer (`piccolo-cerializer`): each test starts the real server
//! and the real gateway on ephemeral ports and speaks HTTP/1.1 to the gateway with the tiny client
//! below. Every wait is bounded ([`TIMEOUT`]); both children are killed when a test fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

mod common;

use common::{Server, TIMEOUT};

// ----- the gateway under test -----------------------------------------------------------------

struct Gateway {
    child: Child,
    addr: SocketAddr,
}

impl Gateway {
    /// Starts the gateway towards `store` with `args`, and waits for its address.
    fn start(store: SocketAddr, args: &[&str]) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_piccolo-cerializer"))
            .args(["--listen", "127.0.0.1:0", "--server", &store.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start piccolo-cerializer");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split(" listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(TIMEOUT)
            .expect("the gateway logs its address at start");
        Gateway {
            child,
            addr: addr.parse().expect("a socket address"),
        }
    }

    fn connect(&self) -> Http {
        let stream = TcpStream::connect(self.addr).expect("connect to the gateway");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Http {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    /// One request on a fresh connection.
    fn call(&self, method: &str, target: &str, body: Option<&Json>) -> Reply {
        self.connect().call(method, target, &[], body)
    }

    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().expect("try_wait").is_none(),
            "the gateway exited"
        );
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- a tiny HTTP/1.1 client -----------------------------------------------------------------

struct Http {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The error code of a JSON error body.
    fn code(&self) -> String {
        let body = self.json();
        assert!(
            body["message"].is_string(),
            "an error has a message: {body}"
        );
        body["code"]
            .as_str()
            .expect("an error has a code")
            .to_owned()
    }
}

fn request_bytes(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "PUT" || method == "POST" {
        out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

impl Http {
    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn call(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Reply {
        let body = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        self.send_raw(&request_bytes(method, target, headers, &body));
        self.read_reply()
    }

    fn read_reply(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 "), "status line: {line:?}");
        let status: u16 = line[9..12].parse().expect("status code");
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("name: value");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().expect("a length"))
            .unwrap_or(0);
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Whether the gateway closed the connection (reads EOF within the timeout).
    fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }
}

fn put(value: &str) -> Json {
    json!({ "value": value })
}

fn setup() -> (Server, Gateway) {
    let server = Server::start(&[]);
    let gateway = Gateway::start(server.addr, &[]);
    (server, gateway)
}

// ----- the tests --------------------------------------------------------------------------------

#[test]
fn key_routes_get_put_delete() {
    let (_server, gateway) = setup();
    let reply = gateway.call("GET", "/v1/keys/greeting", None);
    assert_eq!(reply.status, 404);
    assert_eq!(reply.code(), "not_found");

    let reply = gateway.call("PUT", "/v1/keys/greeting", Some(&put("hello")));
    assert_eq!(reply.status, 200, "{reply:?}");
    let version = reply.json()["version"].as_u64().expect("a version");
    assert_eq!(
        reply.header("ETag"),
        Some(format!("\"{version}\"").as_str())
    );

    let reply = gateway.call("GET", "/v1/keys/greeting", None);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({ "key": "greeting", "value": "hello", "encoding": "utf8",
                "version": version, "ttl_ms": null })
    );

    // A time to live.
    let reply = gateway.call(
        "PUT",
        "/v1/keys/greeting",
        Some(&json!({ "value": "bye", "ttl_ms": 600_000 })),
    );
    assert_eq!(reply.status, 200);
    let ttl = gateway.call("GET", "/v1/keys/greeting", None).json()["ttl_ms"]
        .as_u64()
        .expect("a ttl");
    assert!(ttl > 0 && ttl <= 600_000, "ttl {ttl}");

    // Keys are percent-decoded: `a/b c` and `a%2Fb%20c` are the same key.
    let reply = gateway.call("PUT", "/v1/keys/a%2Fb%20c", Some(&put("slash")));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["key"], "a/b c");
    let reply = gateway.call("GET", "/v1/keys/a%2fb%20c", None);
    assert_eq!(reply.json()["value"], "slash");
    let reply = gateway.call("GET", "/v1/keys/caf%C3%A9", None);
    assert_eq!(reply.status, 404);
    assert_eq!(gateway.call("GET", "/v1/keys/bad%zz", None).status, 400);

    // Delete: 204, then 404.
    assert_eq!(
        gateway.call("DELETE", "/v1/keys/a%2Fb%20c", None).status,
        204
    );
    let reply = gateway.call("DELETE", "/v1/keys/a%2Fb%20c", None);
    assert_eq!((reply.status, reply.code().as_str()), (404, "not_found"));
    assert_eq!(gateway.call("GET", "/v1/keys/a%2Fb%20c", None).status, 404);
}

#[test]
fn conditional_writes() {
    let (_server, gateway) = setup();
    // ?if=present on a missing key: 404, nothing written.
    let reply = gateway.call("PUT", "/v1/keys/c?if=present", Some(&put("x")));
    assert_eq!((reply.status, reply.code().as_str()), (404, "not_found"));
    assert_eq!(gateway.call("GET", "/v1/keys/c", None).status, 404);
    // ?if=absent: 201 then 409.
    let reply = gateway.call("PUT", "/v1/keys/c?if=absent", Some(&put("one")));
    assert_eq!(reply.status, 201);
    let v1 = reply.json()["version"].as_u64().unwrap();
    let reply = gateway.call("PUT", "/v1/keys/c?if=absent", Some(&put("two")));
    assert_eq!((reply.status, reply.code().as_str()), (409, "exists"));
    assert_eq!(
        gateway.call("GET", "/v1/keys/c", None).json()["value"],
        "one"
    );
    // ?if=present on an existing key: 200.
    let reply = gateway.call("PUT", "/v1/keys/c?if=present", Some(&put("three")));
    assert_eq!(reply.status, 200);
    let v2 = reply.json()["version"].as_u64().unwrap();
    assert_ne!(v1, v2);
    // If-Match: the stale version is refused with 412, the current one writes.
    let mut http = gateway.connect();
    let stale = format!("\"{v1}\"");
    let reply = http.call(
        "PUT",
        "/v1/keys/c",
        &[("If-Match", &stale)],
        Some(&put("four")),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (412, "version_mismatch")
    );
    let current = v2.to_string();
    let reply = http.call(
        "PUT",
        "/v1/keys/c",
        &[("If-Match", &current)],
        Some(&put("five")),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let v3 = reply.json()["version"].as_u64().unwrap();
    assert_eq!(
        http.call("GET", "/v1/keys/c", &[], None).json()["value"],
        "five"
    );
    // If-Match on a missing key: 412; not a version: 400; with ?if=absent: 412 (both cannot
    // hold); with ?if=present: as If-Match alone; a float that is an integer is one.
    let reply = http.call(
        "PUT",
        "/v1/keys/gone",
        &[("If-Match", "1")],
        Some(&put("x")),
    );
    assert_eq!(reply.status, 412);
    let reply = http.call("PUT", "/v1/keys/c", &[("If-Match", "abc")], Some(&put("x")));
    assert_eq!(reply.status, 400);
    let reply = http.call(
        "PUT",
        "/v1/keys/c?if=absent",
        &[("If-Match", "1")],
        Some(&put("x")),
    );
    assert_eq!(reply.status, 412);
    let current = format!("\"{v3}\"");
    let reply = http.call(
        "PUT",
        "/v1/keys/c?if=present",
        &[("If-Match", &current)],
        Some(&json!({ "value": "six", "ttl_ms": 60000.0 })),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        http.call("GET", "/v1/keys/c", &[], None).json()["value"],
        "six"
    );
    let reply = http.call("PUT", "/v1/keys/c?if=maybe", &[], Some(&put("x")));
    assert_eq!(reply.status, 400);
}

#[test]
fn binary_values_round_trip_as_base64() {
    let (server, gateway) = setup();
    let bytes: Vec<u8> = vec![0xff, 0x00, 0xfe, b'a', 0x80];
    let encoded = "/wD+YYA=";
    let reply = gateway.call(
        "PUT",
        "/v1/keys/bin",
        Some(&json!({ "value": encoded, "encoding": "base64" })),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = gateway.call("GET", "/v1/keys/bin", None).json();
    assert_eq!(reply["encoding"], "base64");
    assert_eq!(reply["value"], encoded);
    // The store holds the raw bytes (read directly over Cap'n Proto).
    let mut client =
        piccolo::client::Client::connect(server.addr, TIMEOUT).expect("connect to the store");
    assert_eq!(client.get(b"bin").unwrap(), Some(bytes));
    // A binary value written directly reads back as base64; a UTF-8 one as text.
    client.set(b"direct", &[0xc3, 0x28]).unwrap();
    let reply = gateway.call("GET", "/v1/keys/direct", None).json();
    assert_eq!(
        (reply["encoding"].as_str(), reply["value"].as_str()),
        (Some("base64"), Some("wyg="))
    );
    // Base64 of UTF-8 bytes still reads back as text.
    let reply = gateway.call(
        "PUT",
        "/v1/keys/text",
        Some(&json!({ "value": "aGk=", "encoding": "base64" })),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        gateway.call("GET", "/v1/keys/text", None).json()["value"],
        "hi"
    );
    // Invalid base64 and unknown encodings are refused.
    for body in [
        json!({ "value": "not base64!", "encoding": "base64" }),
        json!({ "value": "x", "encoding": "latin1" }),
    ] {
        let reply = gateway.call("PUT", "/v1/keys/bin", Some(&body));
        assert_eq!((reply.status, reply.code().as_str()), (400, "bad_request"));
    }
}

#[test]
fn every_error_status() {
    let server = Server::start(&[]);
    let mut gateway = Gateway::start(server.addr, &["--max-body-bytes", "1024"]);
    // 400: bodies that are not what the route takes.
    for body in [
        &b"not json"[..],
        b"[1,2]",
        b"{}",
        b"{\"value\": 5}",
        b"{\"value\": \"x\", \"extra\": 1}",
        b"{\"value\": \"x\", \"ttl_ms\": 0}",
        b"{\"value\": \"x\", \"ttl_ms\": -5}",
        b"{\"value\": \"x\", \"ttl_ms\": null}",
    ] {
        let mut http = gateway.connect();
        http.send_raw(&request_bytes("PUT", "/v1/keys/k", &[], body));
        let reply = http.read_reply();
        assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(reply.code(), "bad_request");
    }
    // 404: unknown routes.
    for target in ["/", "/v1", "/v1/keys/", "/v2/keys/x"] {
        let reply = gateway.call("GET", target, None);
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (404, "not_found"),
            "{target}"
        );
    }
    // 405 with Allow.
    for (method, target, allow) in [
        ("POST", "/v1/keys/k", "GET, PUT, DELETE"),
        ("PATCH", "/v1/keys/k", "GET, PUT, DELETE"),
        ("DELETE", "/v1/keys", "GET"),
        ("GET", "/v1/batch", "POST"),
        ("PUT", "/v1/health", "GET"),
    ] {
        let reply = gateway.call(method, target, None);
        assert_eq!(reply.status, 405, "{method} {target}");
        assert_eq!(reply.code(), "method_not_allowed");
        assert_eq!(reply.header("Allow"), Some(allow));
    }
    // 413: a body beyond --max-body-bytes (answered from the head, then closed).
    let mut http = gateway.connect();
    http.send_raw(b"PUT /v1/keys/k HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    let reply = http.read_reply();
    assert_eq!((reply.status, reply.code().as_str()), (413, "too_large"));
    assert_eq!(reply.header("Connection"), Some("close"));
    assert!(http.closed());
    // 431: a head beyond the limit.
    let mut http = gateway.connect();
    let huge = "x".repeat(20_000);
    http.send_raw(format!("GET /v1/keys/k HTTP/1.1\r\nX-Big: {huge}\r\n\r\n").as_bytes());
    assert_eq!(http.read_reply().status, 431);
    assert!(http.closed());
    // 400: a request that is not HTTP.
    let mut http = gateway.connect();
    http.send_raw(b"\x00\x01\x02 nonsense\r\n\r\n");
    assert_eq!(http.read_reply().status, 400);
    assert!(http.closed());
    // 411: chunked bodies are not taken.
    let mut http = gateway.connect();
    http.send_raw(
        b"PUT /v1/keys/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(http.read_reply().status, 411);
    // 400: queries that do not parse.
    assert_eq!(gateway.call("GET", "/v1/keys?count=0", None).status, 400);
    assert_eq!(gateway.call("GET", "/v1/keys?count=x", None).status, 400);
    assert_eq!(gateway.call("GET", "/v1/keys?cursor=-1", None).status, 400);
    assert_eq!(gateway.call("GET", "/v1/keys?match=%zz", None).status, 400);
    // The gateway survived all of it.
    gateway.assert_running();
    assert_eq!(gateway.call("GET", "/v1/health", None).status, 200);
}

#[test]
fn keep_alive_and_pipelining() {
    let (_server, gateway) = setup();
    // Keep-alive: many requests on one connection.
    let mut http = gateway.connect();
    for i in 0..50 {
        let reply = http.call(
            "PUT",
            &format!("/v1/keys/k{i}"),
            &[],
            Some(&put(&format!("v{i}"))),
        );
        assert_eq!(reply.status, 200);
    }
    // Pipelining: 200 requests in one write (gets of different keys, a missing key, puts and a
    // bad route in between); the answers come back in request order.
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200 {
        match i % 4 {
            0 | 1 => {
                let key = i % 50;
                bytes.extend(request_bytes("GET", &format!("/v1/keys/k{key}"), &[], b""));
                expected.push((200, Some(format!("v{key}"))));
            }
            2 => {
                bytes.extend(request_bytes("GET", "/v1/keys/missing", &[], b""));
                expected.push((404, None));
            }
            _ => {
                let body = serde_json::to_vec(&put("p")).unwrap();
                bytes.extend(request_bytes("PUT", &format!("/v1/keys/p{i}"), &[], &body));
                expected.push((200, None));
            }
        }
    }
    http.send_raw(&bytes);
    for (index, (status, value)) in expected.iter().enumerate() {
        let reply = http.read_reply();
        assert_eq!(reply.status, *status, "answer {index}");
        if let Some(value) = value {
            assert_eq!(reply.json()["value"], value.as_str(), "answer {index}");
        }
    }
    // Still usable afterwards; `Connection: close` is honoured.
    let reply = http.call("GET", "/v1/keys/k1", &[("Connection", "close")], None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Connection"), Some("close"));
    assert!(http.closed());
    // HTTP/1.0 closes after one answer.
    let mut http = gateway.connect();
    http.send_raw(b"GET /v1/keys/k1 HTTP/1.0\r\n\r\n");
    assert_eq!(http.read_reply().status, 200);
    assert!(http.closed());
    // A request split across many small writes is assembled.
    let mut http = gateway.connect();
    let body = serde_json::to_vec(&put("slow")).unwrap();
    for byte in request_bytes("PUT", "/v1/keys/slow", &[], &body) {
        http.send_raw(&[byte]);
    }
    assert_eq!(http.read_reply().status, 200);
    assert_eq!(
        http.call("GET", "/v1/keys/slow", &[], None).json()["value"],
        "slow"
    );
}

#[test]
fn batch_and_scan() {
    let (_server, gateway) = setup();
    let ops = json!({ "ops": [
        { "op": "set", "key": "b1", "value": "one" },
        { "op": "set", "key": "b2", "value": "/w==", "encoding": "base64", "ttl_ms": 600000 },
        { "op": "set", "key": "b1", "value": "uno", "if": "absent" },
        { "op": "get", "key": "b1" },
        { "op": "get", "key": "b2" },
        { "op": "get", "key": "nope" },
        { "op": "set", "key": "b1", "value": "x", "version": 999_999 },
        { "op": "delete", "key": "b1" },
        { "op": "delete", "key": "b1" },
        { "op": "set", "key": "b3", "value": "x", "if": "present" }
    ]});
    let reply = gateway.call("POST", "/v1/batch", Some(&ops));
    assert_eq!(reply.status, 200, "{reply:?}");
    let results = reply.json()["results"].as_array().unwrap().clone();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 409, 200, 200, 404, 412, 204, 404, 404]);
    assert_eq!(results[3]["value"], "one");
    assert_eq!(
        (
            results[4]["value"].as_str(),
            results[4]["encoding"].as_str()
        ),
        (Some("/w=="), Some("base64"))
    );
    assert_eq!(results[0]["op"], "set");
    assert_eq!(results[7]["key"], "b1");
    // Invalid batches are refused whole, before anything runs.
    for body in [
        json!({}),
        json!({ "ops": [] }),
        json!({ "ops": [{ "op": "set", "key": "z" }] }),
        json!({ "ops": [{ "op": "set", "key": "z", "value": "v" }, { "op": "frob", "key": "z" }] }),
        json!({ "ops": [{ "op": "get", "key": "" }] }),
        json!({ "ops": [{ "op": "get", "key": "z", "value": "v" }] }),
    ] {
        assert_eq!(
            gateway.call("POST", "/v1/batch", Some(&body)).status,
            400,
            "{body}"
        );
    }
    assert_eq!(gateway.call("GET", "/v1/keys/z", None).status, 404);

    // Scan: every key exactly once over the pages (keys may repeat across pages in general).
    for i in 0..120 {
        let reply = gateway.call("PUT", &format!("/v1/keys/scan:{i}"), Some(&put("v")));
        assert_eq!(reply.status, 200);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut pages = 0;
    loop {
        let reply = gateway.call(
            "GET",
            &format!("/v1/keys?cursor={cursor}&count=25&match=scan%3A*"),
            None,
        );
        assert_eq!(reply.status, 200);
        let page = reply.json();
        for key in page["keys"].as_array().unwrap() {
            seen.insert(key.as_str().unwrap().to_owned());
        }
        cursor = page["cursor"].as_str().unwrap().to_owned();
        pages += 1;
        assert!(pages < 1000, "the scan does not end");
        if page["complete"] == true {
            assert_eq!(cursor, "0");
            break;
        }
    }
    let expected: std::collections::BTreeSet<String> =
        (0..120).map(|i| format!("scan:{i}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn health_info_metrics_openapi() {
    let (_server, gateway) = setup();
    assert_eq!(
        gateway.call("GET", "/v1/health", None).json(),
        json!({ "status": "ok", "store": "up" })
    );
    let info = gateway.call("GET", "/v1/info", None);
    assert_eq!(info.status, 200);
    let info = info.json();
    assert_eq!(info["server"]["redis_mode"], "standalone");
    assert!(info["server"]["process_id"].is_u64(), "{info}");
    assert!(info["stats"].is_object());

    let _ = gateway.call("GET", "/v1/keys/m", None);
    let metrics = gateway.call("GET", "/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("Content-Type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("cerializer_requests_total{route=\"get_key\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(text.contains("cerializer_request_duration_seconds_count{route=\"get_key\"} 1"));
    assert!(text.contains("cerializer_store_up 1"));
    assert!(text.contains("piccolo_info{section=\"stats\",field=\"total_commands_processed\"}"));
    // Every sample line is `name{labels} number` or `name number`.
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }

    let spec = gateway.call("GET", "/openapi.json", None).json();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for (path, methods) in [
        ("/v1/keys/{key}", &["get", "put", "delete"][..]),
        ("/v1/keys", &["get"]),
        ("/v1/batch", &["post"]),
        ("/v1/health", &["get"]),
        ("/v1/info", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
    ] {
        for method in methods {
            assert!(spec["paths"][path][method].is_object(), "{method} {path}");
        }
    }
}

#[test]
fn store_down_and_restart() {
    let server = Server::start(&[]);
    let addr = server.addr;
    let mut gateway = Gateway::start(addr, &[]);
    assert_eq!(
        gateway
            .call("PUT", "/v1/keys/k", Some(&put("before")))
            .status,
        200
    );
    drop(server);
    // The store is gone: 503 (refused) or 502 (broken mid-request), a JSON error, never a hang.
    for _ in 0..5 {
        let reply = gateway.call("GET", "/v1/keys/k", None);
        assert!(matches!(reply.status, 502 | 503), "{reply:?}");
        assert!(reply.code().starts_with("store_"), "{reply:?}");
    }
    let reply = gateway.call("GET", "/v1/health", None);
    assert!(matches!(reply.status, 502 | 503), "{reply:?}");
    let metrics = String::from_utf8(gateway.call("GET", "/metrics", None).body).unwrap();
    assert!(metrics.contains("cerializer_store_up 0"));
    gateway.assert_running();
    // The store comes back on the same address (empty: it keeps nothing): the gateway recovers.
    let _server = Server::start(&["--addr", &addr.to_string()]);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let reply = gateway.call("PUT", "/v1/keys/k", Some(&put("after")));
        if reply.status == 200 {
            break;
        }
        assert!(matches!(reply.status, 502 | 503), "{reply:?}");
        assert!(Instant::now() < deadline, "the gateway did not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every worker reconnects (each answers at most one more 502/503 while it redials).
    let mut good = 0;
    while good < 20 {
        let reply = gateway.call("GET", "/v1/keys/k", None);
        if reply.status == 200 {
            assert_eq!(reply.json()["value"], "after");
            good += 1;
        } else {
            assert!(matches!(reply.status, 502 | 503), "{reply:?}");
            assert!(Instant::now() < deadline, "the gateway did not recover");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn store_absent_from_the_start() {
    // A port with nothing behind it: bind and drop.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut gateway = Gateway::start(addr, &[]);
    for target in ["/v1/keys/k", "/v1/health", "/v1/info", "/v1/keys"] {
        let reply = gateway.call("GET", target, None);
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (503, "store_unavailable"),
            "{target}"
        );
        assert_eq!(reply.header("Retry-After"), Some("1"));
    }
    // Routes that do not need the store still answer.
    assert_eq!(gateway.call("GET", "/openapi.json", None).status, 200);
    assert_eq!(gateway.call("GET", "/metrics", None).status, 200);
    gateway.assert_running();
}

#[test]
fn connection_limit() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(server.addr, &["--max-connections", "2"]);
    let mut first = gateway.connect();
    let mut second = gateway.connect();
    assert_eq!(first.call("GET", "/v1/health", &[], None).status, 200);
    assert_eq!(second.call("GET", "/v1/health", &[], None).status, 200);
    let mut third = gateway.connect();
    let reply = third.read_reply();
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (503, "too_many_connections")
    );
    assert!(third.closed());
    // A slot frees when a connection closes.
    drop(first);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut http = gateway.connect();
        http.send_raw(&request_bytes("GET", "/v1/health", &[], b""));
        if http.read_reply().status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was not freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(second.call("GET", "/v1/health", &[], None).status, 200);
}

#[test]
fn idle_connections_are_closed() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(server.addr, &["--idle-timeout-secs", "1"]);
    let mut http = gateway.connect();
    assert_eq!(http.call("GET", "/v1/health", &[], None).status, 200);
    // Nothing more is sent: the gateway closes the connection (the read sees EOF well within
    // the read timeout; a gateway that never closes it fails the read with a timeout).
    let mut byte = [0u8; 1];
    assert_eq!(http.reader.read(&mut byte).expect("EOF, not a timeout"), 0);
    // A half-sent request counts as idle too (slow clients cannot hold a slot forever).
    let mut http = gateway.connect();
    http.send_raw(b"GET /v1/hea");
    assert_eq!(http.reader.read(&mut byte).expect("EOF, not a timeout"), 0);
}

#[test]
fn inline_mode_without_workers() {
    // `--workers 0`: the reactor calls the store itself; same answers, same order.
    let server = Server::start(&[]);
    let gateway = Gateway::start(server.addr, &["--workers", "0"]);
    let mut http = gateway.connect();
    assert_eq!(
        http.call("PUT", "/v1/keys/i", &[], Some(&put("inline")))
            .status,
        200
    );
    let mut bytes = Vec::new();
    for _ in 0..20 {
        bytes.extend(request_bytes("GET", "/v1/keys/i", &[], b""));
        bytes.extend(request_bytes("GET", "/v1/keys/none", &[], b""));
    }
    http.send_raw(&bytes);
    for _ in 0..20 {
        let reply = http.read_reply();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["value"], "inline");
        assert_eq!(http.read_reply().status, 404);
    }
}
