//! Interop with the reference tools: `redis-cli` commands and `redis-benchmark` runs against the
//! real server. Ignored by default because it needs redis-tools (`apt-get install redis-tools`);
//! `.ci/run` runs it with `--ignored`.

mod common;

use std::process::Command;

use common::Server;

/// Runs `redis-cli -p PORT args...` (bounded by `timeout`) and returns its trimmed output.
fn cli(server: &Server, args: &[&str]) -> String {
    let output = Command::new("timeout")
        .args(["20", "redis-cli", "-p", &server.port()])
        .args(args)
        .output()
        .expect("run redis-cli (apt-get install redis-tools)");
    assert!(output.status.success(), "redis-cli {args:?} failed");
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_string()
}

#[test]
#[ignore = "needs redis-cli and redis-benchmark (apt-get install redis-tools); run by .ci/run"]
fn redis_cli_and_redis_benchmark() {
    let server = Server::start(&["--workers", "2"]);
    assert_eq!(cli(&server, &["PING"]), "PONG");
    assert_eq!(cli(&server, &["SET", "greeting", "hello world"]), "OK");
    assert_eq!(cli(&server, &["GET", "greeting"]), "hello world");
    assert_eq!(cli(&server, &["INCRBY", "counter", "5"]), "5");
    assert_eq!(cli(&server, &["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(cli(&server, &["MGET", "a", "b", "c"]), "1\n2"); // nil prints as an empty line
    assert_eq!(cli(&server, &["DEL", "a", "b", "c"]), "2");
    assert_eq!(cli(&server, &["SET", "t", "v", "EX", "100"]), "OK");
    assert_eq!(cli(&server, &["TTL", "t"]), "100");
    assert_eq!(cli(&server, &["DBSIZE"]), "3");
    assert!(cli(&server, &["INFO"]).contains("connected_clients:"));
    assert_eq!(
        cli(&server, &["CONFIG", "GET", "appendonly"]),
        "appendonly\nno"
    );
    assert!(cli(&server, &["NOSUCHCOMMAND"]).contains("unknown command"));
    for pipeline in ["1", "16"] {
        let output = Command::new("timeout")
            .args(["120", "redis-benchmark", "-p", &server.port()])
            .args(["-t", "set,get", "-n", "20000", "-q", "-P", pipeline])
            .output()
            .expect("run redis-benchmark (apt-get install redis-tools)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "redis-benchmark -P {pipeline}: {stderr}"
        );
        for test in ["SET", "GET"] {
            assert!(
                stdout.contains(&format!("{test}: ")) && stdout.contains("requests per second"),
                "redis-benchmark -P {pipeline} printed no {test} result: {stdout}"
            );
        }
        let lower = format!("{stdout}{stderr}").to_lowercase();
        assert!(
            !lower.contains("error"),
            "redis-benchmark -P {pipeline}: {lower}"
        );
    }
    assert_eq!(cli(&server, &["FLUSHALL"]), "OK");
    assert_eq!(cli(&server, &["DBSIZE"]), "0");
}
