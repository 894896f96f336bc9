//! Transactions and MSET against redis-server, in the same run (docs/transactions.md,
//! docs/PERFORMANCE.md "Transactions across workers"):
//!
//! - `exec2`: `MULTI; SET a v; SET b v; EXEC` with `a` and `b` on different workers;
//! - `mset10`: `MSET` of 10 keys spread over the workers.
//!
//! Each round runs both workloads against piccolo-server (`--workers 2`) and redis-server, one
//! server at a time, alternating which goes first; the figures are medians over the rounds and
//! the Piccolo/Redis ratio of the medians. The client is the same for both: connections each on
//! a thread, pipelining `DEPTH` transactions (or MSETs), checking every reply before timing
//! counts (a transaction that does not answer `*2 +OK +OK` fails the run).
//!
//!   cargo bench --bench transactions                # 3 rounds
//!   cargo bench --bench transactions -- --rounds 5 --quick
//!
//! Loopback only; the servers are stopped by PID when the bench ends or fails.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use piccolo::proto::slot;

const CONNECTIONS: usize = 4;
const DEPTH: usize = 16;
const WORKERS: usize = 2;

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn connect(port: u16) -> TcpStream {
    let started = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => {
                stream.set_nodelay(true).expect("nodelay");
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                return stream;
            }
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("cannot connect to port {port}: {error}"),
        }
    }
}

fn start(server: &str, port: u16) -> Stop {
    let child = if server == "piccolo" {
        Command::new(env!("CARGO_BIN_EXE_piccolo-server"))
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--workers", &WORKERS.to_string(), "--no-pin"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    } else {
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    let stop = Stop(child.unwrap_or_else(|error| panic!("start {server}: {error}")));
    drop(connect(port));
    stop
}

fn encode(out: &mut Vec<u8>, args: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
}

fn owner(key: &str) -> usize {
    usize::from(slot::slot(key.as_bytes())) * WORKERS / usize::from(slot::SLOT_COUNT)
}

/// Keys `key:{connection}:{n}`, the first `count` found whose owners cycle through the workers.
fn keys(connection: usize, count: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut n = 0;
    while keys.len() < count {
        let key = format!("key:{connection}:{n}");
        if owner(&key) == keys.len() % WORKERS {
            keys.push(key);
        }
        n += 1;
    }
    keys
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Exec2,
    MSet10,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Exec2 => "exec2 (MULTI, 2 SETs on 2 workers, EXEC)",
            Workload::MSet10 => "mset10 (MSET of 10 keys over 2 workers)",
        }
    }

    /// One operation's bytes and the bytes of its expected replies.
    fn operation(self, connection: usize) -> (Vec<u8>, Vec<u8>) {
        let mut request = Vec::new();
        match self {
            Workload::Exec2 => {
                let keys = keys(connection, 2);
                assert_ne!(owner(&keys[0]), owner(&keys[1]));
                encode(&mut request, &["MULTI"]);
                encode(&mut request, &["SET", &keys[0], "value-0123456789"]);
                encode(&mut request, &["SET", &keys[1], "value-0123456789"]);
                encode(&mut request, &["EXEC"]);
                let reply = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+OK\r\n".to_vec();
                (request, reply)
            }
            Workload::MSet10 => {
                let mut args = vec!["MSET".to_string()];
                for key in keys(connection, 10) {
                    args.push(key);
                    args.push("value-0123456789".to_string());
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                encode(&mut request, &args);
                (request, b"+OK\r\n".to_vec())
            }
        }
    }
}

/// Operations per second over `CONNECTIONS` connections, each pipelining `DEPTH` operations,
/// `operations` per connection.
fn run(port: u16, workload: Workload, operations: usize) -> f64 {
    let started = Instant::now();
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|connection| {
            std::thread::spawn(move || {
                let mut stream = connect(port);
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let (one, reply) = workload.operation(connection);
                let batch: Vec<u8> = one.repeat(DEPTH);
                let mut answer = vec![0; reply.len() * DEPTH];
                let mut done = 0;
                while done < operations {
                    stream.write_all(&batch).expect("write");
                    reader.read_exact(&mut answer).expect("read");
                    assert_eq!(answer, reply.repeat(DEPTH), "unexpected replies");
                    done += DEPTH;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client thread failed");
    }
    (CONNECTIONS * operations) as f64 / started.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut rounds = 3;
    let mut operations = 40_000;
    let mut index = 1;
    while index < args.len() {
        match args[index].as_str() {
            "--rounds" => {
                index += 1;
                rounds = args[index].parse().expect("--rounds N");
            }
            "--quick" => operations = 4_000,
            // cargo bench passes --bench.
            _ => {}
        }
        index += 1;
    }
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("transactions: redis-server is not installed; nothing to compare with");
        return;
    }
    let workloads = [Workload::Exec2, Workload::MSet10];
    let mut figures = vec![(Vec::new(), Vec::new()); workloads.len()];
    for round in 0..rounds {
        let order: [&str; 2] = if round % 2 == 0 {
            ["piccolo", "redis"]
        } else {
            ["redis", "piccolo"]
        };
        for server in order {
            let port = free_port();
            let _stop = start(server, port);
            for (workload, figures) in workloads.iter().zip(&mut figures) {
                // Warm-up, then the timed run.
                run(port, *workload, operations / 10);
                let rate = run(port, *workload, operations);
                println!(
                    "round {round} {server:7} {:45} {rate:>10.0} ops/s",
                    workload.name()
                );
                if server == "piccolo" {
                    figures.0.push(rate);
                } else {
                    figures.1.push(rate);
                }
            }
        }
    }
    println!(
        "\nmedians over {rounds} rounds, {CONNECTIONS} connections x pipeline {DEPTH}, \
         piccolo --workers {WORKERS}"
    );
    for (workload, (piccolo, redis)) in workloads.iter().zip(&mut figures) {
        let (piccolo, redis) = (median(piccolo), median(redis));
        println!(
            "{:45} piccolo {piccolo:>9.0}/s  redis {redis:>9.0}/s  piccolo/redis {:.2}",
            workload.name(),
            piccolo / redis
        );
    }
}
