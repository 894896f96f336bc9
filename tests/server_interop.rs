//! Interop with the reference tools: `redis-cli` commands and `redis-benchmark` runs against the
//! real server. Ignored by default because it needs redis-tools (`apt-get install redis-tools`);
//! `.ci/run` runs it with `--ignored`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The server under test; killed on drop so a failing test leaves nothing behind.
struct Server {
    child: Child,
    port: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_piccolo-server"))
            .args(["--addr", "127.0.0.1:0", "--workers", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start piccolo-server");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (addr_tx, addr_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split(" listening on ").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = addr_tx.send(addr);
                }
            }
        });
        let addr: String = addr_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server logs its address");
        let port = addr.rsplit(':').next().expect("a port").to_string();
        Server { child, port }
    }

    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("timeout")
            .args(["20", "redis-cli", "-p", &self.port])
            .args(args)
            .output()
            .expect("run redis-cli (apt-get install redis-tools)");
        assert!(output.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs redis-cli and redis-benchmark (apt-get install redis-tools); run by .ci/run"]
fn redis_cli_and_redis_benchmark() {
    let server = Server::start();
    assert_eq!(server.cli(&["PING"]), "PONG");
    assert_eq!(server.cli(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(server.cli(&["GET", "greeting"]), "hello world");
    assert_eq!(server.cli(&["INCRBY", "counter", "5"]), "5");
    assert_eq!(server.cli(&["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(server.cli(&["MGET", "a", "b", "c"]), "1\n2"); // nil prints as an empty line
    assert_eq!(server.cli(&["DEL", "a", "b", "c"]), "2");
    assert_eq!(server.cli(&["SET", "t", "v", "EX", "100"]), "OK");
    assert_eq!(server.cli(&["TTL", "t"]), "100");
    assert_eq!(server.cli(&["DBSIZE"]), "3");
    assert!(server.cli(&["INFO"]).contains("connected_clients:"));
    assert_eq!(
        server.cli(&["CONFIG", "GET", "appendonly"]),
        "appendonly\nno"
    );
    assert!(server.cli(&["NOSUCHCOMMAND"]).contains("unknown command"));
    for pipeline in ["1", "16"] {
        let output = Command::new("timeout")
            .args(["120", "redis-benchmark", "-p", &server.port])
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
    assert_eq!(server.cli(&["FLUSHALL"]), "OK");
    assert_eq!(server.cli(&["DBSIZE"]), "0");
}
