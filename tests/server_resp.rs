//! Integration tests of `piccolo-server` over RESP: each test starts the real binary on an
//! ephemeral port (`--addr 127.0.0.1:0`; the server logs the bound address) and talks to it with
//! the minimal RESP client below. Every wait is bounded; the child is killed when a test fails
//! (the `Server` guard's `Drop`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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

// ----- a minimal RESP client ------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Value>>),
}

fn ok() -> Value {
    Value::Simple("OK".into())
}
fn nil() -> Value {
    Value::Bulk(None)
}
fn bulk(bytes: &[u8]) -> Value {
    Value::Bulk(Some(bytes.to_vec()))
}
fn int(value: i64) -> Value {
    Value::Int(value)
}
fn err(text: &str) -> Value {
    Value::Error(text.into())
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn cmd(&mut self, args: &[&str]) -> Value {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        self.send(&encode(&args));
        self.read()
    }

    fn read(&mut self) -> Value {
        self.try_read().expect("a reply")
    }

    fn try_read(&mut self) -> Option<Value> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).ok()?;
        if line.len() < 3 || !line.ends_with(b"\r\n") {
            return None;
        }
        let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        Some(match line[0] {
            b'+' => Value::Simple(text),
            b'-' => Value::Error(text),
            b':' => Value::Int(text.parse().ok()?),
            b'$' => {
                let len: i64 = text.parse().ok()?;
                if len < 0 {
                    Value::Bulk(None)
                } else {
                    let mut body = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut body).ok()?;
                    body.truncate(len as usize);
                    Value::Bulk(Some(body))
                }
            }
            b'*' => {
                let len: i64 = text.parse().ok()?;
                if len < 0 {
                    Value::Array(None)
                } else {
                    let mut items = Vec::new();
                    for _ in 0..len {
                        items.push(self.try_read()?);
                    }
                    Value::Array(Some(items))
                }
            }
            _ => return None,
        })
    }

    /// True once the server has closed the connection (reads EOF or an error within the
    /// timeout).
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

/// A small deterministic generator (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ----- tests ----------------------------------------------------------------------------------

#[test]
fn ping_get_set_end_to_end() {
    let server = Server::start(&[]);
    let mut client = server.connect();
    assert_eq!(client.cmd(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(client.cmd(&["ping", "hi"]), bulk(b"hi"));
    assert_eq!(client.cmd(&["SET", "greeting", "hello"]), ok());
    assert_eq!(client.cmd(&["GET", "greeting"]), bulk(b"hello"));
    assert_eq!(client.cmd(&["GET", "missing"]), nil());
    let big = "x".repeat(100_000);
    assert_eq!(client.cmd(&["SET", "big", &big]), ok());
    assert_eq!(client.cmd(&["GET", "big"]), bulk(big.as_bytes()));
    // Another connection sees the same data (routing by key, not by connection).
    let mut other = server.connect();
    assert_eq!(other.cmd(&["GET", "greeting"]), bulk(b"hello"));
}

#[test]
fn every_command_with_errors_and_edge_cases() {
    let server = Server::start(&["--workers", "3"]);
    let mut c = server.connect();
    // Connection commands.
    assert_eq!(c.cmd(&["ECHO", "e"]), bulk(b"e"));
    assert_eq!(
        c.cmd(&["ECHO"]),
        err("ERR wrong number of arguments for 'echo' command")
    );
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());
    assert_eq!(c.cmd(&["SELECT", "1"]), err("ERR DB index is out of range"));
    assert_eq!(
        c.cmd(&["HELLO", "3"]),
        err("NOPROTO sorry, this protocol version is not supported")
    );
    let Value::Array(Some(hello)) = c.cmd(&["HELLO", "2"]) else {
        panic!("HELLO 2 is an array")
    };
    assert_eq!(hello[4], bulk(b"proto"));
    assert_eq!(hello[5], int(2));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), nil());
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "tester"]), ok());
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), bulk(b"tester"));
    assert!(matches!(c.cmd(&["CLIENT", "ID"]), Value::Int(id) if id > 0));
    assert_eq!(c.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "test"]), ok());
    assert!(matches!(c.cmd(&["COMMAND", "COUNT"]), Value::Int(n) if n > 30));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "save"]),
        Value::Array(Some(vec![bulk(b"save"), bulk(b"")]))
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendonly"]),
        Value::Array(Some(vec![bulk(b"appendonly"), bulk(b"no")]))
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "no-such-thing"]),
        Value::Array(Some(vec![]))
    );
    let Value::Bulk(Some(info)) = c.cmd(&["INFO"]) else {
        panic!("INFO is a bulk string")
    };
    assert!(String::from_utf8_lossy(&info).contains("connected_clients:1"));
    assert_eq!(
        c.cmd(&["NOSUCH", "a", "b"]),
        err("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        c.cmd(&["GETX", "k"]),
        err("ERR unknown command 'GETX', with args beginning with: 'k' ")
    );
    assert_eq!(
        c.cmd(&["GET"]),
        err("ERR wrong number of arguments for 'get' command")
    );

    // SET and its options.
    assert_eq!(c.cmd(&["SET", "k", "v", "NX"]), ok());
    assert_eq!(c.cmd(&["SET", "k", "w", "NX"]), nil());
    assert_eq!(c.cmd(&["SET", "absent", "w", "XX"]), nil());
    assert_eq!(c.cmd(&["SET", "k", "w", "XX", "GET"]), bulk(b"v"));
    assert_eq!(c.cmd(&["SET", "k", "x", "IFEQ", "nope"]), nil());
    assert_eq!(c.cmd(&["SET", "k", "x", "IFEQ", "w"]), ok());
    assert_eq!(c.cmd(&["GET", "k"]), bulk(b"x"));
    assert_eq!(
        c.cmd(&["SET", "k", "v", "NX", "XX"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "abc"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "0"]),
        err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(c.cmd(&["SET", "k", "v", "EX", "100"]), ok());
    assert!(matches!(c.cmd(&["TTL", "k"]), Value::Int(99 | 100)));
    assert_eq!(c.cmd(&["SET", "k", "v2", "KEEPTTL"]), ok());
    assert!(matches!(c.cmd(&["PTTL", "k"]), Value::Int(ms) if ms > 90_000 && ms <= 100_000));
    assert_eq!(c.cmd(&["PERSIST", "k"]), int(1));
    assert_eq!(c.cmd(&["PERSIST", "k"]), int(0));
    assert_eq!(c.cmd(&["TTL", "k"]), int(-1));
    assert_eq!(c.cmd(&["TTL", "absent"]), int(-2));
    assert_eq!(c.cmd(&["SET", "short", "v", "PX", "50"]), ok());
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(c.cmd(&["GET", "short"]), nil());
    assert_eq!(c.cmd(&["SET", "past", "v", "PXAT", "1"]), ok());
    assert_eq!(c.cmd(&["EXISTS", "past"]), int(0));
    assert_eq!(c.cmd(&["SETNX", "nx", "1"]), int(1));
    assert_eq!(c.cmd(&["SETNX", "nx", "2"]), int(0));
    assert_eq!(c.cmd(&["SETEX", "se", "100", "v"]), ok());
    assert!(matches!(c.cmd(&["TTL", "se"]), Value::Int(99 | 100)));
    assert_eq!(
        c.cmd(&["SETEX", "se", "-1", "v"]),
        err("ERR invalid expire time in 'setex' command")
    );
    assert_eq!(c.cmd(&["PSETEX", "pse", "100000", "v"]), ok());
    assert_eq!(
        c.cmd(&["PSETEX", "pse", "0", "v"]),
        err("ERR invalid expire time in 'psetex' command")
    );
    assert_eq!(c.cmd(&["GETDEL", "nx"]), bulk(b"1"));
    assert_eq!(c.cmd(&["GETDEL", "nx"]), nil());

    // Counters, strings, expiry.
    assert_eq!(c.cmd(&["INCR", "n"]), int(1));
    assert_eq!(c.cmd(&["INCRBY", "n", "41"]), int(42));
    assert_eq!(c.cmd(&["DECR", "n"]), int(41));
    assert_eq!(c.cmd(&["DECRBY", "n", "40"]), int(1));
    assert_eq!(
        c.cmd(&["INCRBY", "n", "x"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["INCR", "k"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(c.cmd(&["SET", "max", &i64::MAX.to_string()]), ok());
    assert_eq!(
        c.cmd(&["INCR", "max"]),
        err("ERR increment or decrement would overflow")
    );
    assert_eq!(
        c.cmd(&["DECRBY", "n", &i64::MIN.to_string()]),
        err("ERR decrement would overflow")
    );
    assert_eq!(c.cmd(&["APPEND", "s", "ab"]), int(2));
    assert_eq!(c.cmd(&["APPEND", "s", "cd"]), int(4));
    assert_eq!(c.cmd(&["STRLEN", "s"]), int(4));
    assert_eq!(c.cmd(&["STRLEN", "absent"]), int(0));
    assert_eq!(c.cmd(&["TYPE", "s"]), Value::Simple("string".into()));
    assert_eq!(c.cmd(&["TYPE", "absent"]), Value::Simple("none".into()));
    assert_eq!(c.cmd(&["EXPIRE", "s", "100"]), int(1));
    assert!(matches!(c.cmd(&["TTL", "s"]), Value::Int(99 | 100)));
    assert_eq!(c.cmd(&["PEXPIRE", "s", "100000"]), int(1));
    assert_eq!(c.cmd(&["EXPIRE", "absent", "100"]), int(0));
    assert_eq!(
        c.cmd(&["EXPIRE", "s", "x"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["EXPIRE", "s", &i64::MAX.to_string()]),
        err("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(c.cmd(&["EXPIRE", "s", "0"]), int(1));
    assert_eq!(c.cmd(&["EXISTS", "s"]), int(0));

    // Multi-key commands, split across the workers and joined.
    assert_eq!(c.cmd(&["FLUSHALL"]), ok());
    assert_eq!(c.cmd(&["DBSIZE"]), int(0));
    let keys: Vec<String> = (0..50).map(|i| format!("multi:{i}")).collect();
    let mut mset = vec!["MSET"];
    let values: Vec<String> = (0..50).map(|i| format!("value-{i}")).collect();
    for (key, value) in keys.iter().zip(&values) {
        mset.push(key);
        mset.push(value);
    }
    assert_eq!(c.cmd(&mset), ok());
    assert_eq!(c.cmd(&["DBSIZE"]), int(50));
    // INFO gathers keyspace, memory and stats from every worker.
    let Value::Bulk(Some(info)) = c.cmd(&["INFO", "keyspace"]) else {
        panic!("INFO is a bulk string")
    };
    assert_eq!(
        String::from_utf8_lossy(&info),
        "# Keyspace\r\ndb0:keys=50,expires=0,avg_ttl=0\r\n"
    );
    let Value::Bulk(Some(info)) = c.cmd(&["INFO"]) else {
        panic!("INFO is a bulk string")
    };
    let info = String::from_utf8_lossy(&info);
    for needle in [
        "# Server",
        "# Clients",
        "# Memory\r\nused_memory:",
        "# Stats",
        "worker_requests:",
        "worker2:keys=",
        "db0:keys=50",
    ] {
        assert!(info.contains(needle), "{needle} in {info}");
    }
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    mget.push("absent");
    let expected: Vec<Value> = values
        .iter()
        .map(|value| bulk(value.as_bytes()))
        .chain([nil()])
        .collect();
    assert_eq!(c.cmd(&mget), Value::Array(Some(expected)));
    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(String::as_str));
    exists.push("absent");
    exists.push("multi:0");
    assert_eq!(c.cmd(&exists), int(51));
    let mut del = vec!["DEL"];
    del.extend(keys.iter().take(25).map(String::as_str));
    assert_eq!(c.cmd(&del), int(25));
    let mut unlink = vec!["UNLINK"];
    unlink.extend(keys.iter().map(String::as_str));
    assert_eq!(c.cmd(&unlink), int(25));
    assert_eq!(
        c.cmd(&["MSET", "a"]),
        err("ERR wrong number of arguments for 'mset' command")
    );
    assert_eq!(c.cmd(&["FLUSHDB"]), ok());
    assert_eq!(c.cmd(&["DBSIZE"]), int(0));

    // Inline commands (telnet), then QUIT closes after its +OK.
    c.send(b"SET inline \"two words\"\r\nGET inline\r\n");
    assert_eq!(c.read(), ok());
    assert_eq!(c.read(), bulk(b"two words"));
    assert_eq!(c.cmd(&["QUIT"]), ok());
    assert!(c.closed_by_server());
}

#[test]
fn consistency_across_many_connections() {
    let server = Server::start(&["--workers", "4"]);
    let threads: Vec<_> = (0..4u64)
        .map(|thread| {
            let mut clients: Vec<Client> = (0..4).map(|_| server.connect()).collect();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (thread + 1));
                let mut model: HashMap<String, String> = HashMap::new();
                for step in 0..3000 {
                    let key = format!("t{thread}:key:{}", rng.below(200));
                    let client = &mut clients[rng.below(4) as usize];
                    match rng.below(3) {
                        0 => {
                            let value = format!("v{step}");
                            assert_eq!(client.cmd(&["SET", &key, &value]), ok());
                            model.insert(key, value);
                        }
                        1 => {
                            let expected = match model.get(&key) {
                                Some(value) => bulk(value.as_bytes()),
                                None => nil(),
                            };
                            assert_eq!(client.cmd(&["GET", &key]), expected, "GET {key}");
                        }
                        _ => {
                            let existed = model.remove(&key).is_some();
                            assert_eq!(client.cmd(&["DEL", &key]), int(i64::from(existed)));
                        }
                    }
                }
                model.len()
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let mut client = server.connect();
    assert_eq!(client.cmd(&["DBSIZE"]), int(total as i64));
}

#[test]
fn pipelined_mixed_commands_come_back_in_order() {
    let workers = 4;
    let server = Server::start(&["--workers", "4"]);
    let mut client = server.connect();
    let mut rng = Rng(42);
    let mut model: HashMap<String, i64> = HashMap::new();
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    let mut owners_seen = [false; 4];
    for step in 0..10_000 {
        let key = format!("p:{}", rng.below(500));
        let slot = usize::from(piccolo::proto::slot::slot(key.as_bytes()));
        owners_seen[slot * workers / 16384] = true;
        match rng.below(6) {
            0 => {
                requests.push(encode(&[
                    b"SET",
                    key.as_bytes(),
                    step.to_string().as_bytes(),
                ]));
                model.insert(key, step);
                expected.push(ok());
            }
            1 => {
                requests.push(encode(&[b"GET", key.as_bytes()]));
                expected.push(match model.get(&key) {
                    Some(value) => bulk(value.to_string().as_bytes()),
                    None => nil(),
                });
            }
            2 => {
                requests.push(encode(&[b"INCR", key.as_bytes()]));
                let value = model.entry(key).or_insert(0);
                *value += 1;
                expected.push(int(*value));
            }
            3 => {
                requests.push(encode(&[b"DEL", key.as_bytes()]));
                expected.push(int(i64::from(model.remove(&key).is_some())));
            }
            4 => {
                let other = format!("p:{}", rng.below(500));
                requests.push(encode(&[b"MGET", key.as_bytes(), other.as_bytes()]));
                let item = |key: &String| match model.get(key) {
                    Some(value) => bulk(value.to_string().as_bytes()),
                    None => nil(),
                };
                expected.push(Value::Array(Some(vec![item(&key), item(&other)])));
            }
            _ => {
                requests.push(encode(&[b"PING"]));
                expected.push(Value::Simple("PONG".into()));
            }
        }
    }
    assert!(owners_seen.iter().all(|&seen| seen), "keys on every worker");
    let bytes: Vec<u8> = requests.concat();
    let mut writer = client.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&bytes).expect("write pipeline"));
    for (index, want) in expected.iter().enumerate() {
        assert_eq!(&client.read(), want, "reply {index}");
    }
    sender.join().unwrap();
}

#[test]
fn bad_input_closes_only_that_connection() {
    let server = Server::start(&["--workers", "2", "--max-output-bytes", "1048576"]);
    let mut healthy = server.connect();
    assert_eq!(healthy.cmd(&["SET", "alive", "yes"]), ok());

    // Absurd lengths get Redis's protocol error and a close.
    for (input, reply) in [
        (
            &b"*99999999999\r\n"[..],
            "ERR Protocol error: invalid multibulk length",
        ),
        (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
        (
            b"*1\r\n$999999999999\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*1\r\nxyz\r\n",
            "ERR Protocol error: expected '$', got 'x'",
        ),
        (
            b"*1\r\n$3\r\nGETxx",
            "ERR Protocol error: expected '\\r\\n' after bulk data",
        ),
    ] {
        let mut bad = server.connect();
        bad.send(input);
        assert_eq!(bad.read(), err(reply), "{input:?}");
        assert!(bad.closed_by_server());
    }
    // Too big inline request.
    let mut bad = server.connect();
    bad.send(&vec![b'a'; 70_000]);
    assert_eq!(
        bad.read(),
        err("ERR Protocol error: too big inline request")
    );
    // Truncated frames, then the client goes away.
    for input in [
        &b"*3\r\n$3\r\nSET\r\n$1"[..],
        b"*2\r\n$3\r\nGET\r\n$100\r\nabc",
        b"*",
    ] {
        let mut truncated = server.connect();
        truncated.send(input);
        drop(truncated);
    }
    // Binary garbage, with both first-byte kinds.
    let mut rng = Rng(7);
    for round in 0..20 {
        let mut garbage: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
        garbage[0] = if round % 2 == 0 { b'*' } else { 0x01 };
        let mut bad = server.connect();
        let _ = bad.stream.write_all(&garbage);
        drop(bad);
    }
    // A client that never reads is disconnected when its output passes the bound.
    let mut slow = server.connect();
    let big = "b".repeat(100_000);
    assert_eq!(slow.cmd(&["SET", "big", &big]), ok());
    let gets: Vec<u8> = (0..1000).flat_map(|_| encode(&[b"GET", b"big"])).collect();
    let _ = slow.stream.write_all(&gets);
    server.wait_log("client not reading");
    drop(slow);
    // 1,000 connections opened and dropped.
    for _ in 0..1000 {
        drop(TcpStream::connect(server.addr).expect("connect"));
    }
    // The server and the healthy client carry on, and the dropped connections are gone.
    assert_eq!(healthy.cmd(&["GET", "alive"]), bulk(b"yes"));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let Value::Bulk(Some(info)) = healthy.cmd(&["INFO", "clients"]) else {
            panic!("INFO is a bulk string")
        };
        if String::from_utf8_lossy(&info).contains("connected_clients:1\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "connections were not closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn maxclients_refuses_extra_connections() {
    let server = Server::start(&["--maxclients", "2"]);
    let mut first = server.connect();
    let mut second = server.connect();
    assert_eq!(first.cmd(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(second.cmd(&["PING"]), Value::Simple("PONG".into()));
    let mut third = server.connect();
    assert_eq!(third.read(), err("ERR max number of clients reached"));
    drop(first);
    // The slot frees up once the server notices the close.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut again = server.connect();
        again.send(&encode(&[b"PING"]));
        if again.read() == Value::Simple("PONG".into()) {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_and_sigint_exit_zero_even_under_load() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Server::start(&["--workers", "2"]);
        let mut loaders = Vec::new();
        for index in 0..3 {
            let mut client = server.connect();
            loaders.push(std::thread::spawn(move || {
                let batch: Vec<u8> = (0..100)
                    .flat_map(|i| encode(&[b"SET", format!("l{index}:{i}").as_bytes(), b"v"]))
                    .collect();
                // Runs until the server goes away.
                while client.stream.write_all(&batch).is_ok() {
                    for _ in 0..100 {
                        if client.try_read().is_none() {
                            return;
                        }
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(200));
        server.signal(signal);
        let status = server.wait_exit();
        assert_eq!(status.code(), Some(0), "exit status after signal {signal}");
        assert!(server.log_contains("shutting down"));
        for loader in loaders {
            loader.join().unwrap();
        }
    }
}

#[test]
fn getex_expireat_and_pexpireat() {
    let server = Server::start(&["--workers", "2"]);
    let mut c = server.connect();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(c.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(c.cmd(&["GETEX", "k"]), bulk(b"v"));
    assert_eq!(c.cmd(&["TTL", "k"]), int(-1));
    assert_eq!(c.cmd(&["GETEX", "k", "EX", "100"]), bulk(b"v"));
    assert!(matches!(c.cmd(&["TTL", "k"]), Value::Int(99 | 100)));
    assert_eq!(c.cmd(&["GETEX", "k", "PERSIST"]), bulk(b"v"));
    assert_eq!(c.cmd(&["TTL", "k"]), int(-1));
    assert_eq!(c.cmd(&["GETEX", "absent", "EX", "100"]), nil());
    assert_eq!(
        c.cmd(&["GETEX", "k", "EX", "0"]),
        err("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(
        c.cmd(&["GETEX", "k", "EX", "1", "PX", "5"]),
        err("ERR syntax error")
    );
    let at = (now_s + 100).to_string();
    assert_eq!(c.cmd(&["EXPIREAT", "k", &at]), int(1));
    assert!(matches!(c.cmd(&["TTL", "k"]), Value::Int(98..=100)));
    let at_ms = ((now_s + 200) * 1000).to_string();
    assert_eq!(c.cmd(&["PEXPIREAT", "k", &at_ms]), int(1));
    assert!(matches!(c.cmd(&["TTL", "k"]), Value::Int(198..=200)));
    assert_eq!(c.cmd(&["EXPIREAT", "absent", &at]), int(0));
    assert_eq!(c.cmd(&["EXPIREAT", "k", "1"]), int(1));
    assert_eq!(c.cmd(&["EXISTS", "k"]), int(0));
    assert_eq!(c.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(c.cmd(&["GETEX", "k", "PXAT", "1"]), bulk(b"v"));
    assert_eq!(c.cmd(&["GET", "k"]), nil());
}

#[test]
fn requirepass_gates_every_command_until_auth() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let mut c = server.connect();
    assert_eq!(c.cmd(&["GET", "k"]), err("NOAUTH Authentication required."));
    assert_eq!(c.cmd(&["PING"]), err("NOAUTH Authentication required."));
    assert_eq!(
        c.cmd(&["AUTH", "wrong"]),
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(
        c.cmd(&["AUTH", "someone", "s3cret"]),
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), ok());
    assert_eq!(c.cmd(&["SET", "k", "v"]), ok());
    let mut other = server.connect();
    assert!(matches!(other.cmd(&["HELLO", "2"]), Value::Error(e) if e.starts_with("NOAUTH")));
    assert!(matches!(
        other.cmd(&["HELLO", "2", "AUTH", "default", "s3cret"]),
        Value::Array(Some(_))
    ));
    assert_eq!(other.cmd(&["GET", "k"]), bulk(b"v"));
    // Without --requirepass, the one-argument AUTH is an error, as in Redis.
    let open = Server::start(&[]);
    let mut c = open.connect();
    assert!(matches!(c.cmd(&["AUTH", "x"]), Value::Error(e) if e.contains("without any password")));
    assert_eq!(c.cmd(&["AUTH", "default", "anything"]), ok());
}

#[test]
fn shutdown_command_stops_the_server_with_exit_zero() {
    let mut server = Server::start(&[]);
    let mut c = server.connect();
    assert_eq!(c.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(
        c.cmd(&["SHUTDOWN", "ABORT"]),
        err("ERR No shutdown in progress.")
    );
    assert_eq!(c.cmd(&["SHUTDOWN", "BOGUS"]), err("ERR syntax error"));
    c.send(&encode(&[b"SHUTDOWN", b"NOSAVE"]));
    assert!(c.closed_by_server());
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0));
    assert!(server.log_contains("SHUTDOWN from"));
}

#[test]
fn scan_and_keys_cover_every_worker() {
    let server = Server::start(&["--workers", "3"]);
    let mut c = server.connect();
    let mut all: Vec<String> = (0..500).map(|i| format!("scan:{i}")).collect();
    all.push("other".into());
    for key in &all {
        assert_eq!(c.cmd(&["SET", key, "v"]), ok());
    }
    let keys_of = |value: &Value| -> Vec<String> {
        let Value::Array(Some(items)) = value else {
            panic!("an array: {value:?}")
        };
        items
            .iter()
            .map(|item| match item {
                Value::Bulk(Some(bytes)) => String::from_utf8(bytes.clone()).unwrap(),
                other => panic!("a key: {other:?}"),
            })
            .collect()
    };
    // A full SCAN returns every key at least once.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let Value::Array(Some(page)) = c.cmd(&["SCAN", &cursor, "COUNT", "7"]) else {
            panic!("SCAN replies with an array")
        };
        let Value::Bulk(Some(next)) = &page[0] else {
            panic!("a cursor")
        };
        seen.extend(keys_of(&page[1]));
        cursor = String::from_utf8(next.clone()).unwrap();
        calls += 1;
        assert!(calls < 10_000, "SCAN does not finish");
        if cursor == "0" {
            break;
        }
    }
    let expected: std::collections::BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(seen, expected);
    // MATCH filters; KEYS gathers from every worker.
    let mut matched = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let Value::Array(Some(page)) =
            c.cmd(&["SCAN", &cursor, "MATCH", "scan:1?", "COUNT", "1000"])
        else {
            panic!("SCAN replies with an array")
        };
        matched.extend(keys_of(&page[1]));
        let Value::Bulk(Some(next)) = &page[0] else {
            panic!("a cursor")
        };
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    let tens: std::collections::BTreeSet<String> = (10..20).map(|i| format!("scan:{i}")).collect();
    assert_eq!(matched, tens);
    let mut keys = keys_of(&c.cmd(&["KEYS", "scan:1?"]));
    keys.sort();
    assert_eq!(keys, tens.iter().cloned().collect::<Vec<_>>());
    assert_eq!(keys_of(&c.cmd(&["KEYS", "*"])).len(), 501);
    assert_eq!(c.cmd(&["KEYS", "nothing*"]), Value::Array(Some(vec![])));
    // Bad cursors and options.
    assert_eq!(c.cmd(&["SCAN", "abc"]), err("ERR invalid cursor"));
    assert_eq!(c.cmd(&["SCAN", "-1"]), err("ERR invalid cursor"));
    assert_eq!(c.cmd(&["SCAN", "0", "COUNT", "0"]), err("ERR syntax error"));
    assert_eq!(c.cmd(&["SCAN", "0", "MATCH"]), err("ERR syntax error"));
    assert!(matches!(
        c.cmd(&["SCAN", "18446744073709551615"]),
        Value::Array(Some(_))
    ));
    assert!(matches!(
        c.cmd(&["SCAN", "99999999999999"]),
        Value::Array(Some(_))
    ));
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
}

#[test]
fn getv_and_cas_compare_versions() {
    let server = Server::start(&["--workers", "2"]);
    let mut c = server.connect();
    assert_eq!(c.cmd(&["GETV", "k"]), nil());
    assert_eq!(
        c.cmd(&["CAS", "k", "0", "v"]),
        nil(),
        "CAS needs an existing key"
    );
    assert_eq!(c.cmd(&["SET", "k", "one"]), ok());
    let Value::Array(Some(pair)) = c.cmd(&["GETV", "k"]) else {
        panic!("GETV replies [value, version]")
    };
    assert_eq!(pair[0], bulk(b"one"));
    let Value::Int(version) = pair[1] else {
        panic!("a version")
    };
    // A stale version fails and changes nothing; the current one writes and returns the next.
    let stale = (version - 1).to_string();
    assert_eq!(c.cmd(&["CAS", "k", &stale, "two"]), nil());
    assert_eq!(c.cmd(&["GET", "k"]), bulk(b"one"));
    let Value::Int(next) = c.cmd(&["CAS", "k", &version.to_string(), "two"]) else {
        panic!("CAS returns the new version")
    };
    assert!(next > version);
    assert_eq!(c.cmd(&["GET", "k"]), bulk(b"two"));
    assert_eq!(c.cmd(&["CAS", "k", &version.to_string(), "three"]), nil());
    let Value::Array(Some(pair)) = c.cmd(&["GETV", "k"]) else {
        panic!("GETV replies [value, version]")
    };
    assert_eq!(pair, vec![bulk(b"two"), int(next)]);
    // Any write bumps the version.
    assert_eq!(c.cmd(&["APPEND", "k", "!"]), int(4));
    assert_eq!(c.cmd(&["CAS", "k", &next.to_string(), "x"]), nil());
    assert_eq!(
        c.cmd(&["CAS", "k", "abc", "x"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["CAS", "k", "1"]),
        err("ERR wrong number of arguments for 'cas' command")
    );
}

#[test]
fn random_commands_never_break_the_server() {
    // Well-framed commands with random names, options and arguments (extreme integers,
    // negative times, empty and long strings): every command gets exactly one reply, in order,
    // and the server survives. The test binary is a debug build, so the server's
    // debug assertions are armed too.
    let server = Server::start(&["--workers", "3"]);
    let names = [
        "GET",
        "SET",
        "SETNX",
        "SETEX",
        "PSETEX",
        "GETDEL",
        "GETEX",
        "MGET",
        "MSET",
        "DEL",
        "UNLINK",
        "EXISTS",
        "TYPE",
        "INCR",
        "INCRBY",
        "DECR",
        "DECRBY",
        "APPEND",
        "STRLEN",
        "EXPIRE",
        "PEXPIRE",
        "EXPIREAT",
        "PEXPIREAT",
        "TTL",
        "PTTL",
        "PERSIST",
        "SCAN",
        "KEYS",
        "GETV",
        "CAS",
        "PING",
        "ECHO",
        "SELECT",
        "CLIENT",
        "COMMAND",
        "CONFIG",
        "INFO",
        "DBSIZE",
        "HELLO",
        "AUTH",
        "NOPE",
        "set",
        "gEt",
    ];
    let words = [
        "NX",
        "XX",
        "GET",
        "EX",
        "PX",
        "EXAT",
        "PXAT",
        "KEEPTTL",
        "IFEQ",
        "PERSIST",
        "MATCH",
        "COUNT",
        "TYPE",
        "*",
        "k?",
        "0",
        "1",
        "-1",
        "100",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999",
        "",
        "abc",
        "GETNAME",
        "SETNAME",
        "ID",
        "DOCS",
        "keyspace",
        "string",
        "2",
        "3",
    ];
    let mut rng = Rng(0xDEAD_BEEF);
    let mut client = server.connect();
    for _round in 0..20 {
        let mut batch = Vec::new();
        let commands = 500;
        for _ in 0..commands {
            let mut args: Vec<Vec<u8>> = vec![names[rng.below(names.len() as u64) as usize].into()];
            for _ in 0..rng.below(7) {
                let arg: Vec<u8> = match rng.below(4) {
                    0 => format!("key:{}", rng.below(20)).into_bytes(),
                    1 => vec![b'x'; rng.below(100) as usize],
                    _ => words[rng.below(words.len() as u64) as usize].into(),
                };
                args.push(arg);
            }
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            batch.extend(encode(&refs));
        }
        client.send(&batch);
        for index in 0..commands {
            assert!(client.try_read().is_some(), "reply {index} missing");
        }
    }
    assert_eq!(client.cmd(&["PING"]), Value::Simple("PONG".into()));
    let mut other = server.connect();
    assert_eq!(other.cmd(&["PING"]), Value::Simple("PONG".into()));
}

#[test]
fn tiny_rings_stall_parsing_without_losing_commands() {
    // Rings of 16 slots: the in-flight budget runs out constantly, so connections stall with
    // commands in their read buffers and resume as replies return. A client that half-closes
    // after its pipeline still gets every reply.
    let server = Server::start(&["--workers", "2", "--ring-capacity", "16"]);
    let mut clients: Vec<Client> = (0..4).map(|_| server.connect()).collect();
    let count = 2000;
    for (index, client) in clients.iter_mut().enumerate() {
        let pipeline: Vec<u8> = (0..count)
            .flat_map(|i| encode(&[b"INCR", format!("c{}", i % 37 + index * 100).as_bytes()]))
            .chain(encode(&[b"MGET", b"c0", b"c1", b"c2", b"c3"]))
            .collect();
        client.send(&pipeline);
        client.stream.shutdown(std::net::Shutdown::Write).unwrap();
    }
    for (index, client) in clients.iter_mut().enumerate() {
        let mut counters: HashMap<usize, i64> = HashMap::new();
        for i in 0..count {
            let counter = counters.entry(i % 37 + index * 100).or_insert(0);
            *counter += 1;
            assert_eq!(client.read(), int(*counter), "client {index} reply {i}");
        }
        assert!(matches!(client.read(), Value::Array(Some(items)) if items.len() == 4));
        assert!(client.closed_by_server());
    }
}

#[test]
fn expire_options_nx_xx_gt_lt() {
    let server = Server::start(&["--workers", "2"]);
    let mut c = server.connect();
    let ttl = |c: &mut Client, key: &str| match c.cmd(&["TTL", key]) {
        Value::Int(ttl) => ttl,
        other => panic!("TTL gave {other:?}"),
    };
    assert_eq!(c.cmd(&["SET", "k", "v"]), ok());
    // No deadline: XX and GT fail, LT holds (no deadline counts as infinite), NX holds.
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "XX"]), int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "GT"]), int(0));
    assert_eq!(ttl(&mut c, "k"), -1);
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "nx"]), int(1));
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    // Has a deadline: NX fails; XX holds.
    assert_eq!(c.cmd(&["EXPIRE", "k", "500", "NX"]), int(0));
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    assert_eq!(c.cmd(&["EXPIRE", "k", "200", "XX"]), int(1));
    assert!((199..=200).contains(&ttl(&mut c, "k")));
    // GT: only later; LT: only earlier; equal fails both.
    assert_eq!(c.cmd(&["EXPIRE", "k", "150", "GT"]), int(0));
    assert!((199..=200).contains(&ttl(&mut c, "k")));
    assert_eq!(c.cmd(&["EXPIRE", "k", "300", "GT"]), int(1));
    assert!((299..=300).contains(&ttl(&mut c, "k")));
    assert_eq!(c.cmd(&["EXPIRE", "k", "400", "LT"]), int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "50", "lt"]), int(1));
    assert!((49..=50).contains(&ttl(&mut c, "k")));
    assert_eq!(c.cmd(&["EXPIRE", "k", "60", "XX", "GT"]), int(1));
    assert!((59..=60).contains(&ttl(&mut c, "k")));
    assert_eq!(c.cmd(&["EXPIRE", "k", "70", "XX", "LT"]), int(0));
    // The same deadline, exactly: PEXPIREAT to the current deadline fails GT and LT.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at = (now_ms + 1_000_000).to_string();
    assert_eq!(c.cmd(&["PEXPIREAT", "k", &at]), int(1));
    assert_eq!(c.cmd(&["PEXPIREAT", "k", &at, "GT"]), int(0));
    assert_eq!(c.cmd(&["PEXPIREAT", "k", &at, "LT"]), int(0));
    let later = (now_ms + 2_000_000).to_string();
    assert_eq!(c.cmd(&["PEXPIREAT", "k", &later, "GT"]), int(1));
    let at_s = (now_ms / 1000 + 500).to_string();
    assert_eq!(c.cmd(&["EXPIREAT", "k", &at_s, "LT"]), int(1));
    assert!((498..=500).contains(&ttl(&mut c, "k")));
    assert_eq!(c.cmd(&["PEXPIRE", "k", "900000", "LT"]), int(0));
    assert_eq!(c.cmd(&["PEXPIRE", "k", "900000", "GT"]), int(1));
    // LT with a deadline in the past deletes the key, as a plain EXPIRE does.
    assert_eq!(c.cmd(&["EXPIRE", "k", "-1", "LT"]), int(1));
    assert_eq!(c.cmd(&["EXISTS", "k"]), int(0));
    // A key without a deadline: LT with a past deadline deletes it too (infinite > anything).
    assert_eq!(c.cmd(&["SET", "p", "v"]), ok());
    assert_eq!(c.cmd(&["PEXPIRE", "p", "0", "LT"]), int(1));
    assert_eq!(c.cmd(&["EXISTS", "p"]), int(0));
    // Absent keys: 0 whatever the option.
    for option in ["NX", "XX", "GT", "LT"] {
        assert_eq!(c.cmd(&["EXPIRE", "absent", "100", option]), int(0));
    }
    // Errors, in Redis's words; options are checked before the number.
    let nx_clash = err("ERR NX and XX, GT or LT options at the same time are not compatible");
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "NX", "XX"]), nx_clash);
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "GT", "NX"]), nx_clash);
    assert_eq!(c.cmd(&["PEXPIREAT", "k", "100", "NX", "LT"]), nx_clash);
    let gt_lt = err("ERR GT and LT options at the same time are not compatible");
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "GT", "LT"]), gt_lt);
    assert_eq!(c.cmd(&["EXPIRE", "k", "100", "XX", "GT", "LT"]), gt_lt);
    assert_eq!(
        c.cmd(&["EXPIRE", "k", "100", "NX", "BOGUS"]),
        err("ERR Unsupported option BOGUS")
    );
    assert_eq!(c.cmd(&["EXPIRE", "k", "abc", "GT", "LT"]), gt_lt);
    assert_eq!(
        c.cmd(&["EXPIRE", "k", "abc", "NX"]),
        err("ERR value is not an integer or out of range")
    );
    // Repeated options are allowed (Redis ORs them).
    assert_eq!(c.cmd(&["SET", "r", "v"]), ok());
    assert_eq!(c.cmd(&["EXPIRE", "r", "100", "NX", "NX"]), int(1));
}

fn simple(text: &str) -> Value {
    Value::Simple(text.into())
}

fn array(items: Vec<Value>) -> Value {
    Value::Array(Some(items))
}

#[test]
fn command_table_count_info_docs_getkeys() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let Value::Int(count) = c.cmd(&["COMMAND", "COUNT"]) else {
        panic!("COMMAND COUNT is an integer")
    };
    // COMMAND lists as many entries as COUNT says, each with Redis 7's ten fields.
    let Value::Array(Some(all)) = c.cmd(&["COMMAND"]) else {
        panic!("COMMAND is an array")
    };
    assert_eq!(all.len() as i64, count);
    let mut names = Vec::new();
    for entry in &all {
        let Value::Array(Some(fields)) = entry else {
            panic!("an entry is an array: {entry:?}")
        };
        assert_eq!(fields.len(), 10, "{fields:?}");
        let Value::Bulk(Some(name)) = &fields[0] else {
            panic!("the name is a bulk string")
        };
        names.push(String::from_utf8(name.clone()).unwrap());
        assert!(matches!(fields[1], Value::Int(arity) if arity != 0));
        assert!(matches!(&fields[2], Value::Array(Some(_))));
    }
    for name in [
        "get", "set", "mget", "expire", "scan", "getv", "cas", "command", "info",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from COMMAND"
        );
    }
    let Value::Array(Some(list)) = c.cmd(&["COMMAND", "LIST"]) else {
        panic!("COMMAND LIST is an array")
    };
    assert_eq!(list.len() as i64, count);
    // COMMAND INFO: the entry as Redis 7 gives it; an unknown name is nil.
    assert_eq!(
        c.cmd(&["COMMAND", "INFO", "get", "NOSUCH", "mset"]),
        array(vec![
            array(vec![
                bulk(b"get"),
                int(2),
                array(vec![simple("readonly"), simple("fast")]),
                int(1),
                int(1),
                int(1),
                array(vec![simple("@read"), simple("@string"), simple("@fast")]),
                array(vec![]),
                array(vec![]),
                array(vec![]),
            ]),
            nil(),
            array(vec![
                bulk(b"mset"),
                int(-3),
                array(vec![simple("write"), simple("denyoom")]),
                int(1),
                int(-1),
                int(2),
                array(vec![simple("@write"), simple("@string"), simple("@slow")]),
                array(vec![]),
                array(vec![]),
                array(vec![]),
            ]),
        ])
    );
    // COMMAND DOCS: a map flattened into an array; name, then summary/since/group. Unknown
    // names are left out; no names means every command.
    let Value::Array(Some(docs)) = c.cmd(&["COMMAND", "DOCS", "get", "nosuch"]) else {
        panic!("COMMAND DOCS is an array")
    };
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0], bulk(b"get"));
    let Value::Array(Some(doc)) = &docs[1] else {
        panic!("the docs are a map")
    };
    let keys: Vec<&Value> = doc.iter().step_by(2).collect();
    assert_eq!(keys, [&bulk(b"summary"), &bulk(b"since"), &bulk(b"group")]);
    assert_eq!(doc[5], bulk(b"string"));
    let Value::Array(Some(all_docs)) = c.cmd(&["COMMAND", "DOCS"]) else {
        panic!("COMMAND DOCS is an array")
    };
    assert_eq!(all_docs.len() as i64, count * 2);
    // COMMAND GETKEYS from the table's key positions.
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]),
        array(vec![bulk(b"a"), bulk(b"b")])
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "del", "x", "y", "z"]),
        array(vec![bulk(b"x"), bulk(b"y"), bulk(b"z")])
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "get", "k"]),
        array(vec![bulk(b"k")])
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "ping"]),
        err("ERR The command has no key arguments")
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "get"]),
        err("ERR Invalid number of arguments specified for command")
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "nosuch", "k"]),
        err("ERR Invalid command specified")
    );
    assert_eq!(
        c.cmd(&["COMMAND", "COUNT", "x"]),
        err("ERR wrong number of arguments for 'command|count' command")
    );
    assert_eq!(
        c.cmd(&["COMMAND", "BOGUS"]),
        err("ERR unknown subcommand 'BOGUS'. Try COMMAND HELP.")
    );
    assert!(matches!(c.cmd(&["COMMAND", "HELP"]), Value::Array(Some(lines)) if lines.len() > 3));
    // The dispatcher's arity check reads the same table: every command, called with one
    // argument too few (or too many, for exact arities), gets the arity error.
    for entry in &all {
        let Value::Array(Some(fields)) = entry else {
            unreachable!()
        };
        let (Value::Bulk(Some(name)), Value::Int(arity)) = (&fields[0], &fields[1]) else {
            unreachable!()
        };
        let name = String::from_utf8(name.clone()).unwrap();
        let needed = arity.unsigned_abs() as usize;
        let wrong = if needed > 1 {
            needed - 1
        } else if *arity > 0 {
            needed + 1
        } else {
            continue;
        };
        let mut args = vec![name.as_str()];
        args.extend(std::iter::repeat_n("x", wrong - 1));
        assert_eq!(
            c.cmd(&args),
            err(&format!(
                "ERR wrong number of arguments for '{name}' command"
            )),
            "{args:?}"
        );
    }
}

/// `field:value` lines of an INFO text, parsed as integers where they are.
fn info_fields(c: &mut Client, section: &str) -> HashMap<String, String> {
    let Value::Bulk(Some(text)) = c.cmd(&["INFO", section]) else {
        panic!("INFO is a bulk string")
    };
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn info_number(fields: &HashMap<String, String>, name: &str) -> u64 {
    fields
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from {fields:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {fields:?}"))
}

#[test]
fn info_counts_hits_misses_expires_and_memory() {
    let server = Server::start(&["--workers", "3"]);
    let mut c = server.connect();
    let stats = info_fields(&mut c, "stats");
    assert_eq!(info_number(&stats, "keyspace_hits"), 0);
    assert_eq!(info_number(&stats, "keyspace_misses"), 0);
    for i in 0..20 {
        assert_eq!(c.cmd(&["SET", &format!("key:{i}"), "v"]), ok());
    }
    for i in 0..5 {
        assert_eq!(c.cmd(&["EXPIRE", &format!("key:{i}"), "1000"]), int(1));
    }
    assert_eq!(c.cmd(&["SET", "key:5", "v", "PX", "100000"]), ok());
    // Hits: 2 GET, 3 of MGET, GETV, EXISTS, TTL, TYPE, GETEX, GETDEL (key:19) = 11.
    // Misses: 1 GET, 2 of MGET, EXISTS, TTL, TYPE, GETDEL (now absent) = 7.
    assert_eq!(c.cmd(&["GET", "key:10"]), bulk(b"v"));
    assert_eq!(c.cmd(&["GET", "key:11"]), bulk(b"v"));
    assert_eq!(c.cmd(&["GET", "nope"]), nil());
    assert!(matches!(
        c.cmd(&["MGET", "key:12", "key:13", "key:14", "no1", "no2"]),
        Value::Array(Some(items)) if items.len() == 5
    ));
    assert!(matches!(c.cmd(&["GETV", "key:15"]), Value::Array(Some(_))));
    assert_eq!(c.cmd(&["EXISTS", "key:16", "nope"]), int(1));
    assert_eq!(c.cmd(&["TTL", "key:17"]), int(-1));
    assert_eq!(c.cmd(&["TTL", "nope"]), int(-2));
    assert_eq!(c.cmd(&["TYPE", "key:18"]), simple("string"));
    assert_eq!(c.cmd(&["TYPE", "nope"]), simple("none"));
    assert_eq!(c.cmd(&["GETEX", "key:18"]), bulk(b"v"));
    assert_eq!(c.cmd(&["GETDEL", "key:19"]), bulk(b"v"));
    assert_eq!(c.cmd(&["GETDEL", "key:19"]), nil());
    // Writes do not count.
    assert_eq!(c.cmd(&["SET", "key:10", "w"]), ok());
    assert_eq!(c.cmd(&["DEL", "nope"]), int(0));
    let stats = info_fields(&mut c, "stats");
    assert_eq!(info_number(&stats, "keyspace_hits"), 11, "{stats:?}");
    assert_eq!(info_number(&stats, "keyspace_misses"), 7, "{stats:?}");
    let parks = info_number(&stats, "worker_parks");
    assert!(
        parks <= info_number(&stats, "worker_idle_waits"),
        "{stats:?}"
    );
    // Keyspace: 19 keys, 6 with a deadline; PERSIST and a SET without KEEPTTL take it away.
    let keyspace = info_fields(&mut c, "keyspace");
    assert_eq!(keyspace["db0"], "keys=19,expires=6,avg_ttl=0");
    assert_eq!(c.cmd(&["PERSIST", "key:0"]), int(1));
    assert_eq!(c.cmd(&["SET", "key:1", "again"]), ok());
    assert_eq!(c.cmd(&["DEL", "key:2"]), int(1));
    let keyspace = info_fields(&mut c, "keyspace");
    assert_eq!(keyspace["db0"], "keys=18,expires=3,avg_ttl=0");
    // Memory: RSS from /proc, the store's parts, and maxmemory 0 (no limit).
    let memory = info_fields(&mut c, "memory");
    let used = info_number(&memory, "used_memory");
    let rss = info_number(&memory, "used_memory_rss");
    let live = info_number(&memory, "store_live_bytes");
    let table = info_number(&memory, "store_table_bytes");
    let garbage = info_number(&memory, "store_garbage_bytes");
    assert!(
        rss > 1 << 20,
        "RSS of a running server is over 1 MiB: {memory:?}"
    );
    assert!(
        live > 18 * 5 && live + garbage + table <= used,
        "{memory:?}"
    );
    assert!(
        garbage > 0,
        "overwrites and deletes leave garbage: {memory:?}"
    );
    assert_eq!(info_number(&memory, "maxmemory"), 0);
    assert!(memory.contains_key("used_memory_human"));
    // Between this client's round trips the worker's ring was empty, and a worker with keys
    // pre-faults its head segment then.
    assert!(
        info_number(&memory, "store_pages_prefaulted") > 0,
        "{memory:?}"
    );
}

/// Waits (bounded) until INFO reports `clients` connected clients.
fn wait_connected_clients(c: &mut Client, clients: usize) {
    let needle = format!("connected_clients:{clients}\r\n");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let Value::Bulk(Some(info)) = c.cmd(&["INFO", "clients"]) else {
            panic!("INFO is a bulk string")
        };
        if String::from_utf8_lossy(&info).contains(&needle) {
            return;
        }
        assert!(Instant::now() < deadline, "connections were not closed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server's memory stays bounded under bad input: its resident set (VmRSS) grows by less
/// than `BOUND_MIB` across thousands of dropped connections, absurd lengths, garbage, truncated
/// frames and clients that pipeline GETs of a large value without reading, and it still
/// answers. A memory bound, not a timing one.
#[test]
fn memory_stays_bounded_under_bad_input() {
    const BOUND_MIB: u64 = 64;
    const MAX_OUTPUT: usize = 8 << 20;
    let max_output = MAX_OUTPUT.to_string();
    let server = Server::start(&["--workers", "2", "--max-output-bytes", &max_output]);
    let mut healthy = server.connect();
    let big = vec![b'b'; 200_000];
    let mut set_big = encode(&[b"SET", b"big", &big]);
    healthy.send(&set_big);
    assert_eq!(healthy.read(), ok());
    set_big.clear();
    // Warm up what is allocated once (the slab, the first buffers, INFO), then the baseline.
    assert_eq!(healthy.cmd(&["GET", "big"]), Value::Bulk(Some(big.clone())));
    wait_connected_clients(&mut healthy, 1);
    let before = server.rss_kib();
    let mut rng = Rng(11);
    for round in 0..3 {
        // (a) 1,000 connections opened and dropped, a third of them mid-command.
        for i in 0..1000 {
            let mut stream = TcpStream::connect(server.addr).expect("connect");
            if i % 3 == 0 {
                let _ = stream.write_all(b"*2\r\n$3\r\nGET\r\n$5\r\nab");
            }
        }
        // (b) Absurd lengths, binary garbage (both first-byte kinds) and truncated frames.
        for input in [
            &b"*99999999999\r\n"[..],
            b"*1\r\n$536870912\r\nabc",
            b"*1048576\r\n$512\r\n",
            b"*1\r\n$999999999999\r\n",
            b"*3\r\n$3\r\nSET\r\n$1",
            b"\x00\x00\x00\x00\xff\xff\xff\x7f",
            b"\x07\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            let mut bad = TcpStream::connect(server.addr).expect("connect");
            let _ = bad.write_all(input);
        }
        for kind in 0..20 {
            let mut garbage: Vec<u8> = (0..64 * 1024).map(|_| rng.next() as u8).collect();
            garbage[0] = if kind % 2 == 0 { b'*' } else { 0x02 };
            let mut bad = TcpStream::connect(server.addr).expect("connect");
            let _ = bad.write_all(&garbage);
        }
        // (c) Clients that pipeline GETs of the 200 KB value and never read: each is
        // disconnected once its unwritten output passes the bound.
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let mut stream = server.stream();
                std::thread::spawn(move || {
                    let gets: Vec<u8> = (0..20_000)
                        .flat_map(|_| encode(&[b"GET", b"big"]))
                        .collect();
                    // Fails once the server has closed the connection.
                    let _ = stream.write_all(&gets);
                    stream
                })
            })
            .collect();
        let expected = 2 * (round + 1);
        let deadline = Instant::now() + TIMEOUT;
        while server.log_count("client not reading") < expected {
            assert!(
                Instant::now() < deadline,
                "non-reading clients were not disconnected"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for writer in writers {
            drop(writer.join().expect("writer thread"));
        }
        wait_connected_clients(&mut healthy, 1);
    }
    let after = server.rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("VmRSS before {before} KiB, after {after} KiB, grown {grown_mib} MiB");
    assert!(
        grown_mib < BOUND_MIB,
        "RSS grew by {grown_mib} MiB (from {before} to {after} KiB), over the {BOUND_MIB} MiB bound"
    );
    // Still answering, and the data is intact.
    assert_eq!(healthy.cmd(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(healthy.cmd(&["GET", "big"]), Value::Bulk(Some(big)));
    let mut fresh = server.connect();
    assert_eq!(fresh.cmd(&["DBSIZE"]), int(1));
}

/// At shutdown, commands the server has read but not yet executed get an error reply in their
/// place instead of being dropped. Tiny rings and slow commands (KEYS over 20,000 keys, one
/// worker) keep most of a pipeline waiting in the read buffer when SIGTERM arrives; every
/// command gets exactly one reply, executed ones first, then the errors, then the close.
#[test]
fn shutdown_answers_unparsed_commands_with_an_error() {
    const PIPELINE: usize = 400;
    let mut server = Server::start(&["--workers", "1", "--ring-capacity", "16"]);
    let mut loader = server.connect();
    let sets: Vec<u8> = (0..20_000)
        .flat_map(|i| encode(&[b"SET", format!("key:{i}").as_bytes(), b"v"]))
        .collect();
    loader.send(&sets);
    for _ in 0..20_000 {
        assert_eq!(loader.read(), ok());
    }
    let mut c = server.connect();
    // Small enough to arrive in one read, so no command is left in the socket at the close.
    let pipeline: Vec<u8> = (0..PIPELINE)
        .flat_map(|_| encode(&[b"KEYS", b"nomatch*"]))
        .collect();
    c.send(&pipeline);
    assert_eq!(c.read(), array(vec![]));
    server.signal(libc::SIGTERM);
    let mut executed = 1;
    let mut refused = 0;
    while let Some(reply) = c.try_read() {
        match reply {
            Value::Array(Some(items)) if items.is_empty() => {
                assert_eq!(refused, 0, "an executed command after a refused one");
                executed += 1;
            }
            Value::Error(text) => {
                assert_eq!(text, "ERR server is shutting down; command not executed");
                refused += 1;
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }
    eprintln!("{executed} executed, {refused} refused at shutdown");
    assert_eq!(executed + refused, PIPELINE, "one reply per command");
    assert!(
        refused > 0,
        "the pipeline finished before the signal ({executed} executed)"
    );
    assert!(server.wait_exit().success());
    server.wait_log("got a shutting-down error");
}
