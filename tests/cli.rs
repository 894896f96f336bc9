//! `piccolo-cli` end to end: the real binary against the real server (`common::Server` on an
//! ephemeral port). The first tests follow the Talent Plan kvs-client checklist.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

mod common;

use common::Server;

const CLI: &str = env!("CARGO_BIN_EXE_piccolo-cli");

/// Runs the CLI with `args` (no server address added).
fn run(args: &[&str]) -> Output {
    run_with_stdin(args, b"")
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(CLI)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start piccolo-cli");
    let mut input = child.stdin.take().expect("piped");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("piccolo-cli runs")
}

/// Runs the CLI against `server` (`--addr` last, as kvs-client's tests put it).
fn cli(server: &Server, args: &[&str]) -> Output {
    let addr = server.addr.to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--addr", &addr]);
    run(&all)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Succeeded with exactly this stdout.
#[track_caller]
fn assert_ok(output: &Output, want: &str) {
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(output), want, "stderr: {}", stderr(output));
}

/// Failed with `code`, nothing on stdout, and `needle` in stderr.
#[track_caller]
fn assert_fails(output: &Output, code: i32, needle: &str) {
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert!(stderr(output).contains(needle), "{output:?}");
    assert!(!stderr(output).contains("panicked"), "{output:?}");
}

// ----- the kvs-client contract ------------------------------------------------------------

#[test]
fn no_args_prints_usage_and_fails() {
    assert_fails(&run(&[]), 2, "usage: piccolo-cli");
}

#[test]
fn version() {
    for flag in ["-V", "--version"] {
        assert_ok(
            &run(&[flag]),
            &format!("piccolo-cli {}\n", env!("CARGO_PKG_VERSION")),
        );
    }
    let help = run(&["--help"]);
    assert!(help.status.success() && stdout(&help).contains("cas KEY VERSION VALUE"));
}

#[test]
fn set_get_rm() {
    let server = Server::start(&[]);
    assert_ok(&cli(&server, &["get", "key1"]), "Key not found\n");
    assert_ok(&cli(&server, &["set", "key1", "value1"]), "");
    assert_ok(&cli(&server, &["set", "key2", "value2"]), "");
    assert_ok(&cli(&server, &["get", "key1"]), "value1\n");
    assert_ok(&cli(&server, &["get", "key2"]), "value2\n");
    assert_ok(&cli(&server, &["set", "key1", "value3"]), "");
    assert_ok(&cli(&server, &["get", "key1"]), "value3\n");
    assert_ok(&cli(&server, &["rm", "key1"]), "");
    assert_ok(&cli(&server, &["get", "key1"]), "Key not found\n");
    assert_fails(&cli(&server, &["rm", "key1"]), 1, "Key not found");
    // --addr first works as well as last.
    let addr = server.addr.to_string();
    assert_ok(&run(&["--addr", &addr, "get", "key2"]), "value2\n");
}

#[test]
fn wrong_argument_counts_and_unknown_commands_fail() {
    // No server needed: these fail before connecting.
    for args in [
        &["get"][..],
        &["get", "a", "b"],
        &["set", "a"],
        &["set", "a", "b", "c"],
        &["rm"],
        &["rm", "a", "b"],
        &["cas", "k", "1"],
        &["incr"],
        &["scan", "extra"],
    ] {
        assert_fails(&run(args), 2, "wrong number of arguments");
    }
    assert_fails(&run(&["unknown", "k"]), 2, "unknown command unknown");
    assert_fails(&run(&["get", "k", "--nope"]), 2, "unknown option --nope");
    assert_fails(&run(&["get", "k", "--addr"]), 2, "--addr needs a value");
    assert_fails(&run(&["cas", "k", "one", "v"]), 2, "bad VERSION");
    assert_fails(&run(&["incr", "k", "x"]), 2, "not an integer");
    assert_fails(&run(&["expire", "k", "-1"]), 2, "bad SECONDS");
    assert_fails(
        &run(&["get", "k", "--match", "*"]),
        2,
        "--match is for scan",
    );
}

#[test]
fn an_unparsable_addr_fails() {
    for addr in [
        "invalid-addr",
        "127.0.0.1",
        "127.0.0.1:99999",
        "localhost:7379",
    ] {
        assert_fails(&run(&["get", "k", "--addr", addr]), 2, "--addr");
    }
}

#[test]
fn no_server_gives_one_clear_line() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let output = run(&["get", "k", "--addr", &addr]);
    assert_fails(&output, 1, &format!("could not connect to {addr}"));
    assert_eq!(stderr(&output).lines().count(), 1, "{output:?}");
}

// ----- beyond kvs ---------------------------------------------------------------------------

#[test]
fn insert_update_getv_and_cas() {
    let server = Server::start(&[]);
    assert_fails(&cli(&server, &["update", "k", "v"]), 1, "Key not found");
    assert_ok(&cli(&server, &["insert", "k", "v1"]), "");
    assert_fails(&cli(&server, &["insert", "k", "v2"]), 1, "Key exists");
    assert_ok(&cli(&server, &["update", "k", "v2"]), "");
    let getv = cli(&server, &["getv", "k"]);
    assert!(getv.status.success(), "{getv:?}");
    let text = stdout(&getv);
    let (version, value) = text.split_once('\n').expect("version, then value");
    assert_eq!(value, "v2\n");
    let written = cli(&server, &["cas", "k", version, "v3"]);
    assert!(written.status.success(), "{written:?}");
    let new_version: u64 = stdout(&written).trim().parse().expect("the new version");
    assert!(new_version > version.parse().unwrap());
    assert_fails(&cli(&server, &["cas", "k", version, "v4"]), 1, "mismatch");
    assert_fails(
        &cli(&server, &["cas", "nope", "1", "v"]),
        1,
        "Key not found",
    );
    assert_ok(&cli(&server, &["get", "k"]), "v3\n");
    assert_ok(&cli(&server, &["getv", "nope"]), "Key not found\n");
}

#[test]
fn incr_expire_ttl_persist() {
    let server = Server::start(&[]);
    assert_ok(&cli(&server, &["incr", "n"]), "1\n");
    assert_ok(&cli(&server, &["incr", "n", "-5"]), "-4\n");
    assert_ok(&cli(&server, &["set", "word", "abc"]), "");
    assert_fails(&cli(&server, &["incr", "word"]), 1, "not an integer");
    assert_ok(&cli(&server, &["ttl", "n"]), "none\n");
    assert_fails(&cli(&server, &["ttl", "nope"]), 1, "Key not found");
    assert_ok(&cli(&server, &["expire", "n", "100"]), "");
    let ttl = cli(&server, &["ttl", "n"]);
    let left: f64 = stdout(&ttl).trim().parse().expect("seconds");
    assert!(left > 90.0 && left <= 100.0, "{ttl:?}");
    assert_ok(&cli(&server, &["persist", "n"]), "");
    assert_ok(&cli(&server, &["ttl", "n"]), "none\n");
    assert_fails(&cli(&server, &["expire", "nope", "1"]), 1, "Key not found");
    assert_fails(&cli(&server, &["persist", "nope"]), 1, "Key not found");
    assert_ok(&cli(&server, &["expire", "n", "0"]), "");
    assert_ok(&cli(&server, &["get", "n"]), "Key not found\n");
}

#[test]
fn scan_info_ping_dbsize() {
    let server = Server::start(&["--workers", "2"]);
    for key in ["user:1", "user:2", "order:1"] {
        assert_ok(&cli(&server, &["set", key, "x"]), "");
    }
    assert_ok(&cli(&server, &["scan"]), "order:1\nuser:1\nuser:2\n");
    assert_ok(
        &cli(&server, &["scan", "--match", "user:*"]),
        "user:1\nuser:2\n",
    );
    assert_ok(&cli(&server, &["dbsize"]), "3\n");
    assert_ok(&cli(&server, &["ping"]), "PONG\n");
    assert_ok(&cli(&server, &["ping", "hello"]), "hello\n");
    let info = cli(&server, &["info", "keyspace"]);
    assert!(info.status.success(), "{info:?}");
    assert!(stdout(&info).contains("db0:keys=3"), "{info:?}");
}

#[test]
fn binary_values_from_stdin_and_raw_output() {
    let server = Server::start(&[]);
    let value: Vec<u8> = (0..=255u8).chain([b'\n', 0, 0xff]).collect();
    let addr = server.addr.to_string();
    let set = run_with_stdin(&["set", "bin", "-", "--addr", &addr], &value);
    assert_ok(&set, "");
    let raw = cli(&server, &["get", "bin", "--raw"]);
    assert!(raw.status.success(), "{raw:?}");
    assert_eq!(raw.stdout, value);
    let plain = cli(&server, &["get", "bin"]);
    assert_eq!(plain.stdout[..value.len()], value[..]);
    assert_eq!(plain.stdout[value.len()..], b"\n"[..]);
    // `--` ends the options: a value that looks like one.
    assert_ok(&run(&["--addr", &addr, "--", "set", "dash", "--json"]), "");
    assert_ok(&cli(&server, &["get", "dash"]), "--json\n");
}

#[test]
fn json_output() {
    let server = Server::start(&[]);
    let parse = |output: &Output| -> serde_json::Value {
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).expect("one JSON object")
    };
    let set = parse(&cli(&server, &["set", "k", "v", "--json"]));
    let version = set["version"].as_u64().expect("a version");
    let get = parse(&cli(&server, &["get", "k", "--json"]));
    assert_eq!(
        get,
        serde_json::json!({"key": "k", "found": true, "value": "v", "version": version})
    );
    let missing = parse(&cli(&server, &["get", "nope", "--json"]));
    assert_eq!(missing, serde_json::json!({"key": "nope", "found": false}));
    let addr = server.addr.to_string();
    let set = run_with_stdin(&["--json", "set", "b", "-", "--addr", &addr], &[0xff, 0x00]);
    assert!(set.status.success());
    let get = parse(&cli(&server, &["get", "b", "--json"]));
    assert_eq!(get["value_hex"], "ff00");
    let incr = parse(&cli(&server, &["incr", "n", "--json"]));
    assert_eq!(incr, serde_json::json!({"key": "n", "value": 1}));
    let scan = parse(&cli(&server, &["scan", "--json"]));
    assert_eq!(scan, serde_json::json!({"keys": ["b", "k", "n"]}));
}

#[test]
fn password() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    assert_fails(&cli(&server, &["get", "k"]), 1, "unauthenticated");
    assert_fails(
        &cli(&server, &["get", "k", "--password", "wrong"]),
        1,
        "WRONGPASS",
    );
    assert_ok(
        &cli(&server, &["set", "k", "v", "--password", "s3cret"]),
        "",
    );
    assert_ok(&cli(&server, &["get", "k", "--password", "s3cret"]), "v\n");
}
