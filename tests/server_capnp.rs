//! Integration tests of `piccolo-server` over Cap'n Proto: each test starts the real binary on
//! an ephemeral port (`--addr 127.0.0.1:0`; the server logs the bound address) and talks to it
//! with Requests built by the generated code, framed with `capnp::serialize::write_message`,
//! and Responses read with `capnp::serialize::read_message`. Every wait is bounded; the child is
//! killed when a test fails (the `Server` guard's `Drop`).

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use capnp::message::{Builder, ReaderOptions};
use capnp::serialize;
use piccolo::proto::capnp::piccolo_capnp::{ErrorCode, maybe_value, request, response};

mod common;

use common::{Server, TIMEOUT};

/// `server.connect()` gives this file's client.
trait Connect {
    fn connect(&self) -> Client;
}

impl Connect for Server {
    fn connect(&self) -> Client {
        let stream = self.stream();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }
}

// ----- a minimal Cap'n Proto client -----------------------------------------------------------

/// A Response, flattened for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Ok,
    Value(Vec<u8>, u64),
    NotFound,
    Int(i64),
    Values(Vec<Option<Vec<u8>>>),
    Error(ErrorCode, String),
    Version(u64),
    ConditionFailed,
    Pong(Vec<u8>),
    ScanPage(u64, Vec<Vec<u8>>),
    Info(String),
}

/// Builds one framed Request with `id`.
fn frame(id: u64, build: impl FnOnce(request::Builder<'_>)) -> Vec<u8> {
    let mut message = Builder::new_default();
    let mut request = message.init_root::<request::Builder<'_>>();
    request.set_id(id);
    build(request);
    let mut bytes = Vec::new();
    serialize::write_message(&mut bytes, &message).expect("write to a Vec");
    bytes
}

struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one Response: its id and answer.
    fn read(&mut self) -> (u64, Answer) {
        let message = serialize::read_message(&mut self.reader, ReaderOptions::new())
            .expect("a framed Response");
        let response = message
            .get_root::<response::Reader<'_>>()
            .expect("a Response");
        (response.get_id(), flatten(response))
    }

    /// Sends one Request and reads its Response, checking the id.
    fn call(&mut self, id: u64, build: impl FnOnce(request::Builder<'_>)) -> Answer {
        self.send(&frame(id, build));
        let (got, answer) = self.read();
        assert_eq!(
            got, id,
            "the Response carries the Request's id ({answer:?})"
        );
        answer
    }

    fn closed_by_server(&mut self) -> bool {
        let mut buffer = [0u8; 4096];
        loop {
            match self.reader.read(&mut buffer) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(error) => return error.kind() != std::io::ErrorKind::WouldBlock,
            }
        }
    }
}

fn flatten(response: response::Reader<'_>) -> Answer {
    use response::Which as W;
    match response.which().expect("a known union member") {
        W::Ok(()) => Answer::Ok,
        W::Value(value) => {
            let value = value.unwrap();
            Answer::Value(value.get_data().unwrap().to_vec(), value.get_version())
        }
        W::NotFound(()) => Answer::NotFound,
        W::Integer(value) => Answer::Int(value),
        W::Values(values) => Answer::Values(
            values
                .unwrap()
                .iter()
                .map(|item| match item.which().unwrap() {
                    maybe_value::Absent(()) => None,
                    maybe_value::Data(data) => Some(data.unwrap().to_vec()),
                })
                .collect(),
        ),
        W::ScanPage(page) => {
            let page = page.unwrap();
            let keys = page.get_keys().unwrap();
            let keys = keys.iter().map(|key| key.unwrap().to_vec()).collect();
            Answer::ScanPage(page.get_cursor(), keys)
        }
        W::Info(text) => Answer::Info(text.unwrap().to_string().unwrap()),
        W::Error(error) => {
            let error = error.unwrap();
            let message = error.get_message().unwrap().to_string().unwrap();
            Answer::Error(error.get_code().unwrap(), message)
        }
        W::Version(version) => Answer::Version(version),
        W::ConditionFailed(()) => Answer::ConditionFailed,
        W::Pong(data) => Answer::Pong(data.unwrap().to_vec()),
    }
}

fn set(key: &[u8], value: &[u8]) -> impl FnOnce(request::Builder<'_>) {
    let (key, value) = (key.to_vec(), value.to_vec());
    move |request| {
        let mut set = request.init_set();
        set.set_key(&key);
        set.set_value(&value);
    }
}

fn get(key: &[u8]) -> impl FnOnce(request::Builder<'_>) {
    let key = key.to_vec();
    move |mut request| request.set_get(&key)
}

fn version_of(answer: &Answer) -> u64 {
    match answer {
        Answer::Version(version) => *version,
        other => panic!("expected a version, got {other:?}"),
    }
}

// ----- tests ----------------------------------------------------------------------------------

#[test]
fn ping_get_set_and_versions() {
    let server = Server::start(&["--workers", "2"]);
    let mut client = server.connect();
    assert_eq!(
        client.call(1, |mut r| r.set_ping(b"")),
        Answer::Pong(b"PONG".to_vec())
    );
    assert_eq!(
        client.call(2, |mut r| r.set_ping(b"hi")),
        Answer::Pong(b"hi".to_vec())
    );
    assert_eq!(client.call(3, get(b"k")), Answer::NotFound);
    let v1 = version_of(&client.call(4, set(b"k", b"v1")));
    assert_eq!(client.call(5, get(b"k")), Answer::Value(b"v1".to_vec(), v1));
    assert_eq!(
        client.call(6, |mut r| r.set_get_v(b"k")),
        Answer::Value(b"v1".to_vec(), v1)
    );
    // A large value travels in more than one segment of the Response.
    let big = vec![b'x'; 100_000];
    let v2 = version_of(&client.call(7, set(b"big", &big)));
    assert_eq!(client.call(8, get(b"big")), Answer::Value(big, v2));
    assert_eq!(client.call(u64::MAX, get(b"nope")), Answer::NotFound);
}

#[test]
fn set_conditions_expiry_and_return_old() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    let nx = |key: &'static [u8], value: &'static [u8]| {
        move |request: request::Builder<'_>| {
            let mut set = request.init_set();
            set.set_key(key);
            set.set_value(value);
            set.get_condition().set_if_absent(());
        }
    };
    let v1 = version_of(&client.call(1, nx(b"a", b"1")));
    assert_eq!(client.call(2, nx(b"a", b"2")), Answer::ConditionFailed);
    let xx = |request: request::Builder<'_>| {
        let mut set = request.init_set();
        set.set_key(b"missing");
        set.set_value(b"x");
        set.get_condition().set_if_present(());
    };
    assert_eq!(client.call(3, xx), Answer::ConditionFailed);
    // ifVersion: current version writes, a stale one does not.
    let if_version = |version: u64, value: &'static [u8]| {
        move |request: request::Builder<'_>| {
            let mut set = request.init_set();
            set.set_key(b"a");
            set.set_value(value);
            set.get_condition().set_if_version(version);
        }
    };
    let v2 = version_of(&client.call(4, if_version(v1, b"3")));
    assert_ne!(v1, v2);
    assert_eq!(
        client.call(5, if_version(v1, b"4")),
        Answer::ConditionFailed
    );
    assert_eq!(client.call(6, get(b"a")), Answer::Value(b"3".to_vec(), v2));
    // IFEQ.
    let if_equal = |expected: &'static [u8]| {
        move |request: request::Builder<'_>| {
            let mut set = request.init_set();
            set.set_key(b"a");
            set.set_value(b"eq");
            set.get_condition().set_if_equal(expected);
        }
    };
    assert_eq!(client.call(7, if_equal(b"nope")), Answer::ConditionFailed);
    version_of(&client.call(8, if_equal(b"3")));
    // returnOld answers the old value.
    let return_old = |request: request::Builder<'_>| {
        let mut set = request.init_set();
        set.set_key(b"a");
        set.set_value(b"new");
        set.set_return_old(true);
    };
    assert!(matches!(client.call(9, return_old), Answer::Value(old, _) if old == b"eq"));
    // Expiry in ms, then the key is gone; keep leaves it; an expiry of 0 is refused.
    let with_ttl = |request: request::Builder<'_>| {
        let mut set = request.init_set();
        set.set_key(b"t");
        set.set_value(b"x");
        set.get_expiry().set_in_ms(150);
    };
    version_of(&client.call(10, with_ttl));
    let Answer::Int(ttl) = client.call(11, |mut r| r.set_ttl(b"t")) else {
        panic!("ttl answers an integer")
    };
    assert!((1..=150).contains(&ttl), "ttl {ttl}");
    let keep = |request: request::Builder<'_>| {
        let mut set = request.init_set();
        set.set_key(b"t");
        set.set_value(b"y");
        set.get_expiry().set_keep(());
    };
    version_of(&client.call(12, keep));
    assert!(matches!(
        client.call(13, |mut r| r.set_ttl(b"t")),
        Answer::Int(1..=150)
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(client.call(14, get(b"t")), Answer::NotFound);
    let zero = |request: request::Builder<'_>| {
        let mut set = request.init_set();
        set.set_key(b"t");
        set.set_value(b"x");
        set.get_expiry().set_in_ms(0);
    };
    assert!(matches!(
        client.call(15, zero),
        Answer::Error(ErrorCode::InvalidArgument, message) if message.contains("invalid expire")
    ));
    // ifVersion with an expiry: written and given the expiry in one step; the answered version
    // is the key's final one.
    let Answer::Value(_, current) = client.call(16, get(b"a")) else {
        panic!("a exists")
    };
    let with_expiry = move |version: u64| {
        move |request: request::Builder<'_>| {
            let mut set = request.init_set();
            set.set_key(b"a");
            set.set_value(b"x");
            set.reborrow().get_condition().set_if_version(version);
            set.get_expiry().set_in_ms(60_000);
        }
    };
    let written = version_of(&client.call(17, with_expiry(current)));
    assert!(written > current);
    assert_eq!(
        client.call(18, get(b"a")),
        Answer::Value(b"x".to_vec(), written)
    );
    assert!(matches!(
        client.call(19, |mut r| r.set_ttl(b"a")),
        Answer::Int(59_000..=60_000)
    ));
    // A stale version writes nothing and leaves the expiry alone.
    assert_eq!(
        client.call(20, with_expiry(current)),
        Answer::ConditionFailed
    );
    // ifVersion with keep and returnOld: the old value comes back.
    let keep_old = move |request: request::Builder<'_>| {
        let mut set = request.init_set();
        set.set_key(b"a");
        set.set_value(b"y");
        set.set_return_old(true);
        set.reborrow().get_condition().set_if_version(written);
        set.get_expiry().set_keep(());
    };
    assert_eq!(client.call(21, keep_old), Answer::Value(b"x".to_vec(), 0));
    assert!(matches!(
        client.call(22, get(b"a")),
        Answer::Value(value, version) if value == b"y" && version > written
    ));
    assert!(matches!(
        client.call(23, |mut r| r.set_ttl(b"a")),
        Answer::Int(59_000..=60_000)
    ));
    // ifVersion on a missing key: conditionFailed, nothing written.
    let missing = |request: request::Builder<'_>| {
        let mut set = request.init_set();
        set.set_key(b"never");
        set.set_value(b"x");
        set.reborrow().get_condition().set_if_version(1);
        set.get_expiry().set_in_ms(1000);
    };
    assert_eq!(client.call(24, missing), Answer::ConditionFailed);
    assert_eq!(client.call(25, get(b"never")), Answer::NotFound);
    // ifVersion with a zero expiry is refused like any set.
    let zero = |request: request::Builder<'_>| {
        let mut set = request.init_set();
        set.set_key(b"a");
        set.set_value(b"x");
        set.reborrow().get_condition().set_if_version(1);
        set.get_expiry().set_in_ms(0);
    };
    assert!(matches!(
        client.call(26, zero),
        Answer::Error(ErrorCode::InvalidArgument, message) if message.contains("invalid expire")
    ));
}

#[test]
fn auth_gates_every_operation_until_it_succeeds() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let mut client = server.connect();
    assert!(matches!(
        client.call(1, get(b"k")),
        Answer::Error(ErrorCode::Unauthenticated, _)
    ));
    let auth = |username: &'static str, password: &'static [u8]| {
        move |request: request::Builder<'_>| {
            let mut auth = request.init_auth();
            auth.set_username(username);
            auth.set_password(password);
        }
    };
    assert!(matches!(
        client.call(2, auth("", b"wrong")),
        Answer::Error(ErrorCode::Unauthenticated, message) if message.contains("WRONGPASS")
    ));
    assert!(matches!(
        client.call(3, |mut r| r.set_ping(b"")),
        Answer::Error(ErrorCode::Unauthenticated, _)
    ));
    assert!(matches!(
        client.call(4, auth("someone", b"s3cret")),
        Answer::Error(ErrorCode::Unauthenticated, _)
    ));
    assert_eq!(client.call(5, auth("", b"s3cret")), Answer::Ok);
    assert!(matches!(
        client.call(6, set(b"k", b"v")),
        Answer::Version(_)
    ));
    // Another connection is still unauthenticated; the two-argument form works there.
    let mut other = server.connect();
    assert!(matches!(
        other.call(7, get(b"k")),
        Answer::Error(ErrorCode::Unauthenticated, _)
    ));
    assert_eq!(other.call(8, auth("default", b"s3cret")), Answer::Ok);
    assert!(matches!(other.call(9, get(b"k")), Answer::Value(value, _) if value == b"v"));
    // Without --requirepass: the one-argument form is an error, as in Redis; "default" works.
    let open = Server::start(&[]);
    let mut client = open.connect();
    assert!(matches!(
        client.call(10, auth("", b"x")),
        Answer::Error(ErrorCode::InvalidArgument, message) if message.contains("without any password")
    ));
    assert_eq!(client.call(11, auth("default", b"anything")), Answer::Ok);
}

#[test]
fn every_other_operation() {
    let server = Server::start(&["--workers", "3"]);
    let mut client = server.connect();
    let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("key:{i}").into_bytes()).collect();
    // mset over keys on every worker, then mget with a missing key in the middle.
    let answer = client.call(1, |request| {
        let mut pairs = request.init_mset(keys.len() as u32);
        for (index, key) in keys.iter().enumerate() {
            let mut pair = pairs.reborrow().get(index as u32);
            pair.set_key(key);
            pair.set_value(format!("v{index}").as_bytes());
        }
    });
    assert_eq!(answer, Answer::Ok);
    let answer = client.call(2, |request| {
        let mut list = request.init_mget(3);
        list.set(0, b"key:0");
        list.set(1, b"absent");
        list.set(2, b"key:19");
    });
    assert_eq!(
        answer,
        Answer::Values(vec![Some(b"v0".to_vec()), None, Some(b"v19".to_vec())])
    );
    assert_eq!(client.call(3, |mut r| r.set_dbsize(())), Answer::Int(20));
    let answer = client.call(4, |request| {
        let mut list = request.init_exists(3);
        list.set(0, b"key:1");
        list.set(1, b"key:1");
        list.set(2, b"absent");
    });
    assert_eq!(answer, Answer::Int(2));
    let answer = client.call(5, |request| {
        let mut list = request.init_delete(3);
        list.set(0, b"key:1");
        list.set(1, b"key:2");
        list.set(2, b"absent");
    });
    assert_eq!(answer, Answer::Int(2));
    assert_eq!(client.call(6, |mut r| r.set_dbsize(())), Answer::Int(18));
    // getDel.
    assert!(matches!(
        client.call(7, |mut r| r.set_get_del(b"key:3")),
        Answer::Value(value, _) if value == b"v3"
    ));
    assert_eq!(client.call(8, get(b"key:3")), Answer::NotFound);
    // incrBy, and its errors.
    let incr = |key: &'static [u8], delta: i64| {
        move |request: request::Builder<'_>| {
            let mut incr = request.init_incr_by();
            incr.set_key(key);
            incr.set_delta(delta);
        }
    };
    assert_eq!(client.call(9, incr(b"n", 5)), Answer::Int(5));
    assert_eq!(client.call(10, incr(b"n", -7)), Answer::Int(-2));
    assert!(matches!(
        client.call(11, incr(b"key:0", 1)),
        Answer::Error(ErrorCode::NotInteger, _)
    ));
    assert!(matches!(
        client.call(12, incr(b"n", i64::MIN)),
        Answer::Error(ErrorCode::Overflow, _)
    ));
    // append, strlen.
    let append = |request: request::Builder<'_>| {
        let mut pair = request.init_append();
        pair.set_key(b"s");
        pair.set_value(b"hello");
    };
    assert_eq!(client.call(13, append), Answer::Int(5));
    assert_eq!(client.call(14, |mut r| r.set_strlen(b"s")), Answer::Int(5));
    assert_eq!(
        client.call(15, |mut r| r.set_strlen(b"absent")),
        Answer::Int(0)
    );
    // expire, ttl, persist.
    assert_eq!(client.call(16, |mut r| r.set_ttl(b"s")), Answer::Int(-1));
    assert_eq!(
        client.call(17, |mut r| r.set_ttl(b"absent")),
        Answer::Int(-2)
    );
    let expire = |key: &'static [u8], ms: i64| {
        move |request: request::Builder<'_>| {
            let mut expire = request.init_expire();
            expire.set_key(key);
            expire.set_in_ms(ms);
        }
    };
    assert_eq!(client.call(18, expire(b"s", 60_000)), Answer::Int(1));
    assert!(matches!(
        client.call(19, |mut r| r.set_ttl(b"s")),
        Answer::Int(59_000..=60_000)
    ));
    assert_eq!(client.call(20, |mut r| r.set_persist(b"s")), Answer::Int(1));
    assert_eq!(client.call(21, |mut r| r.set_ttl(b"s")), Answer::Int(-1));
    assert_eq!(client.call(22, expire(b"absent", 1000)), Answer::Int(0));
    assert_eq!(client.call(23, expire(b"s", 0)), Answer::Int(1));
    assert_eq!(client.call(24, get(b"s")), Answer::NotFound);
    // getV and cas: current, stale, and on a missing key.
    let Answer::Value(_, version) = client.call(25, |mut r| r.set_get_v(b"key:0")) else {
        panic!("getV answers a value")
    };
    let cas = |version: u64, value: &'static [u8]| {
        move |request: request::Builder<'_>| {
            let mut cas = request.init_cas();
            cas.set_key(b"key:0");
            cas.set_version(version);
            cas.set_value(value);
        }
    };
    let new_version = version_of(&client.call(26, cas(version, b"c1")));
    assert_eq!(
        client.call(27, cas(version, b"c2")),
        Answer::ConditionFailed
    );
    assert_eq!(
        client.call(28, get(b"key:0")),
        Answer::Value(b"c1".to_vec(), new_version)
    );
    let cas_missing = |request: request::Builder<'_>| {
        let mut cas = request.init_cas();
        cas.set_key(b"no such key");
        cas.set_version(1);
        cas.set_value(b"x");
    };
    assert_eq!(client.call(28, cas_missing), Answer::NotFound);
    assert_eq!(client.call(28, get(b"no such key")), Answer::NotFound);
    // getEx with a new expiry.
    let getex = |request: request::Builder<'_>| {
        let mut getex = request.init_get_ex();
        getex.set_key(b"key:0");
        getex.get_expiry().set_in_ms(60_000);
    };
    assert!(matches!(client.call(29, getex), Answer::Value(value, _) if value == b"c1"));
    assert!(matches!(
        client.call(30, |mut r| r.set_ttl(b"key:0")),
        Answer::Int(59_000..=60_000)
    ));
    // scan walks every worker; the pages hold each remaining key at least once.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = 0;
    for round in 0.. {
        assert!(round < 1000, "scan did not finish");
        let answer = client.call(31, |request| {
            let mut scan = request.init_scan();
            scan.set_cursor(cursor);
            scan.set_count(3);
        });
        let Answer::ScanPage(next, keys) = answer else {
            panic!("scan answers a page, got {answer:?}")
        };
        seen.extend(keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    // 20 keys, less key:1 and key:2 (deleted) and key:3 (getDel), plus the counter `n`.
    assert_eq!(seen.len(), 18, "{seen:?}");
    let answer = client.call(31, |request| {
        let mut scan = request.init_scan();
        scan.set_count(1000);
        scan.set_match(b"key:1?");
    });
    let Answer::ScanPage(_, mut keys) = answer else {
        panic!("scan answers a page")
    };
    keys.sort();
    let want: Vec<Vec<u8>> = (10..20).map(|i| format!("key:{i}").into_bytes()).collect();
    // One page of one worker: a subset of the matching keys, and only matching keys.
    assert!(keys.iter().all(|key| want.contains(key)), "{keys:?}");
    // info: the default sections, gathered from the workers too; one section alone.
    let Answer::Info(text) = client.call(32, |mut r| r.set_info("")) else {
        panic!("info answers text")
    };
    assert!(
        text.contains("# Server") && text.contains("db0:keys=18"),
        "{text}"
    );
    let Answer::Info(text) = client.call(32, |mut r| r.set_info("clients")) else {
        panic!("info answers text")
    };
    assert!(
        text.starts_with("# Clients") && text.contains("connected_clients:1"),
        "{text}"
    );
    // flush.
    assert_eq!(client.call(32, |mut r| r.set_flush(())), Answer::Ok);
    assert_eq!(client.call(33, |mut r| r.set_dbsize(())), Answer::Int(0));
}

#[test]
fn pipelined_requests_come_back_in_order_with_their_ids() {
    let server = Server::start(&["--workers", "4"]);
    let mut client = server.connect();
    const REQUESTS: u64 = 1000;
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for index in 0..REQUESTS {
        // Distinct, non-sequential ids; keys spread over every worker.
        let id = index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let key = format!("key:{}", (index / 4) % 97).into_bytes();
        match index % 4 {
            0 => {
                stream.extend(frame(id, set(&key, format!("{index}").as_bytes())));
                expected.push((id, None));
            }
            1 => {
                stream.extend(frame(id, get(&key)));
                // The set just before it (index - 1) wrote this key's value.
                expected.push((id, Some(format!("{}", index - 1).into_bytes())));
            }
            2 => {
                stream.extend(frame(id, |mut r| r.set_ping(b"p")));
                expected.push((id, Some(b"ping".to_vec())));
            }
            _ => {
                stream.extend(frame(id, |request| {
                    let mut list = request.init_exists(2);
                    list.set(0, b"key:1");
                    list.set(1, b"key:50");
                }));
                expected.push((id, Some(b"exists".to_vec())));
            }
        }
    }
    let mut writer = client.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&stream).expect("write"));
    for (index, (id, want)) in expected.into_iter().enumerate() {
        let (got_id, answer) = client.read();
        assert_eq!(got_id, id, "reply {index} out of order: {answer:?}");
        match want.as_deref() {
            None => {
                version_of(&answer);
            }
            Some(b"ping") => assert_eq!(answer, Answer::Pong(b"p".to_vec())),
            Some(b"exists") => assert!(matches!(answer, Answer::Int(0..=2)), "{answer:?}"),
            Some(value) => {
                assert!(
                    matches!(&answer, Answer::Value(got, _) if got == value),
                    "{answer:?}"
                )
            }
        }
    }
    sender.join().unwrap();
}

#[test]
fn a_key_set_over_resp_is_read_over_capnp() {
    let server = Server::start(&["--workers", "2"]);
    let mut resp = TcpStream::connect(server.addr).unwrap();
    resp.set_read_timeout(Some(TIMEOUT)).unwrap();
    resp.write_all(b"*3\r\n$3\r\nSET\r\n$5\r\nshare\r\n$4\r\nresp\r\n")
        .unwrap();
    let mut reply = [0u8; 5];
    resp.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+OK\r\n");
    let mut client = server.connect();
    assert!(matches!(
        client.call(1, get(b"share")),
        Answer::Value(value, version) if value == b"resp" && version > 0
    ));
    // And the other way round.
    version_of(&client.call(2, set(b"back", b"capnp")));
    resp.write_all(b"*2\r\n$3\r\nGET\r\n$4\r\nback\r\n")
        .unwrap();
    let mut reply = [0u8; 11];
    resp.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"$5\r\ncapnp\r\n");
}

#[test]
fn a_bad_frame_closes_only_that_connection() {
    let server = Server::start(&[]);
    let mut healthy = server.connect();
    version_of(&healthy.call(1, set(b"k", b"v")));

    // A header that declares 2^31 segments.
    let mut bad = server.connect();
    bad.send(&[0x00, 0x00, 0x00, 0x80, 1, 0, 0, 0]);
    // The first byte 0x00 makes it Cap'n Proto; the count breaks the segment limit.
    let (id, answer) = bad.read();
    assert_eq!(id, 0);
    assert!(
        matches!(answer, Answer::Error(ErrorCode::TooLarge, _)),
        "{answer:?}"
    );
    assert!(bad.closed_by_server());
    server.wait_log("segments, more than allowed");

    // A well-framed message whose body is garbage (a root pointer far out of bounds), after a
    // good request on the same connection.
    let mut garbage = server.connect();
    let mut bytes = frame(5, |mut r| r.set_ping(b""));
    bytes.extend_from_slice(&[0, 0, 0, 0, 2, 0, 0, 0]);
    bytes.extend_from_slice(&[0xfc, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff]);
    bytes.extend_from_slice(&[0xff; 8]);
    garbage.send(&bytes);
    assert_eq!(garbage.read(), (5, Answer::Pong(b"PONG".to_vec())));
    let (_, answer) = garbage.read();
    assert!(
        matches!(answer, Answer::Error(ErrorCode::Malformed, _)),
        "{answer:?}"
    );
    assert!(garbage.closed_by_server());
    server.wait_log("malformed Cap'n Proto request");

    // The healthy connection and new ones carry on.
    assert!(matches!(healthy.call(2, get(b"k")), Answer::Value(value, _) if value == b"v"));
    let mut fresh = server.connect();
    assert_eq!(
        fresh.call(4, |mut r| r.set_ping(b"")),
        Answer::Pong(b"PONG".to_vec())
    );
}
