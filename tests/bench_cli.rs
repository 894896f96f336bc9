//! Integration tests of `piccolo-bench`: the built binary against a real `piccolo-server` on an
//! ephemeral port (the shared guard in `tests/common`), against a fake server that loses every
//! write (so `--verify` must fail), and with bad flags.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};

mod common;

use common::Server;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_piccolo-bench"))
        .args(["--quiet", "--timeout", "20s"])
        .args(args)
        .output()
        .expect("run piccolo-bench")
}

fn json_of(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "stdout is not one JSON object ({error}): {stdout:?}; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_verified_run_sends_what_was_asked_and_checks_every_get() {
    let server = Server::start(&[]);
    let port = server.port();
    let output = bench(&[
        "-p",
        &port,
        "-n",
        "3000",
        "-c",
        "4",
        "--threads",
        "2",
        "-P",
        "8",
        "--ratio",
        "1:1",
        "-r",
        "200",
        "--verify",
        "--json",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr_of(&output));
    let result = json_of(&output);
    assert_eq!(result["protocol"], "resp");
    assert_eq!(result["requests"], 3000);
    assert_eq!(result["requests_asked"], 3000);
    assert_eq!(result["errors"], 0);
    assert_eq!(
        result["sets"].as_u64().unwrap() + result["gets"].as_u64().unwrap(),
        3000
    );
    assert_eq!(
        result["gets"].as_u64().unwrap(),
        result["hits"].as_u64().unwrap() + result["misses"].as_u64().unwrap()
    );
    assert_eq!(result["verify"]["failures"], 0);
    // 1500 GETs over 200 keys, half the requests SETs: most GETs follow a SET of their key.
    assert!(
        result["verify"]["checked"].as_u64().unwrap() > 500,
        "{result}"
    );
    let latency = &result["latency_us"];
    let p50 = latency["p50"].as_f64().unwrap();
    let p99 = latency["p99"].as_f64().unwrap();
    let max = latency["max"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{latency}");
    assert!(result["throughput_rps"].as_f64().unwrap() > 0.0);
    // The generator's own cost: some CPU was spent, and no more than its threads could.
    let client = &result["client"];
    assert!(client["cpu_s"].as_f64().unwrap() > 0.0, "{client}");
    assert!(
        client["cpu_us_per_request"].as_f64().unwrap() > 0.0,
        "{client}"
    );
    let cores_busy = client["cores_busy"].as_f64().unwrap();
    assert!((0.0..=2.0 + 0.5).contains(&cores_busy), "{client}");
}

/// The server's `total_commands_processed`, read with INFO over `stream`.
fn commands_processed(stream: &mut TcpStream) -> u64 {
    stream.write_all(b"*1\r\n$4\r\nINFO\r\n").unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut header = String::new();
    reader.read_line(&mut header).unwrap();
    let len: usize = header.trim_end().trim_start_matches('$').parse().unwrap();
    let mut body = vec![0; len + 2];
    reader.read_exact(&mut body).unwrap();
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .expect("INFO has total_commands_processed")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_server_counts_exactly_the_requests_the_bench_reports() {
    let server = Server::start(&[]);
    let mut stream = server.stream();
    let first = commands_processed(&mut stream);
    let second = commands_processed(&mut stream);
    let per_info = second - first; // what one INFO adds to the count
    let output = bench(&[
        "-p",
        &server.port(),
        "-n",
        "2345",
        "-c",
        "7",
        "--threads",
        "2",
        "-P",
        "5",
        "--json",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr_of(&output));
    assert_eq!(json_of(&output)["requests"], 2345);
    let after = commands_processed(&mut stream);
    assert_eq!(after - second - per_info, 2345);
}

#[test]
fn capnp_through_the_client_library_verifies_too() {
    let server = Server::start(&[]);
    let port = server.port();
    let output = bench(&[
        "-p",
        &port,
        "--protocol",
        "capnp",
        "-n",
        "2000",
        "-c",
        "3",
        "-P",
        "8",
        "--ratio",
        "1:1",
        "-r",
        "100",
        "-d",
        "1-200",
        "--verify",
        "--json",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr_of(&output));
    let result = json_of(&output);
    assert_eq!(result["protocol"], "capnp");
    assert_eq!(result["threads"], 3, "a thread per capnp connection");
    assert_eq!(result["requests"], 2000);
    assert_eq!(result["errors"], 0);
    assert_eq!(result["verify"]["failures"], 0);
    assert!(
        result["verify"]["checked"].as_u64().unwrap() > 300,
        "{result}"
    );

    // The capnp SETs are visible over RESP: the key sequence of each connection depends only on
    // the seed, and with seed 1 the 1,000 SETs wrote every one of the 100 keys.
    let output = bench(&[
        "-p", &port, "-n", "200", "-c", "1", "--ratio", "0:1", "-r", "100", "--json",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr_of(&output));
    assert_eq!(
        json_of(&output)["hits"],
        200,
        "capnp SETs reached every key"
    );
}

#[test]
fn batch_mode_sends_what_was_asked() {
    let server = Server::start(&[]);
    let output = bench(&[
        "-p",
        &server.port(),
        "-n",
        "1001",
        "-c",
        "5",
        "--threads",
        "2",
        "-P",
        "7",
        "--batch",
        "--ratio",
        "1:1",
        "-r",
        "50",
        "--verify",
        "--json",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr_of(&output));
    let result = json_of(&output);
    assert_eq!(result["requests"], 1001);
    assert_eq!(result["errors"], 0);
    assert_eq!(result["verify"]["failures"], 0);
}

#[test]
fn duration_warmup_zipf_and_value_ranges_verify_too() {
    let server = Server::start(&[]);
    let port = server.port();
    let output = bench(&[
        "-p",
        &port,
        "--duration",
        "500ms",
        "--warmup",
        "100ms",
        "-c",
        "3",
        "-P",
        "4",
        "--ratio",
        "1:3",
        "-r",
        "1000",
        "--key-pattern",
        "zipf:0.99",
        "-d",
        "1-300",
        "--verify",
        "--json",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr_of(&output));
    let result = json_of(&output);
    assert_eq!(result["requests_asked"], serde_json::Value::Null);
    assert_eq!(result["duration_asked_s"], 0.5);
    assert_eq!(result["errors"], 0);
    assert_eq!(result["verify"]["failures"], 0);
    assert_eq!(
        result["sets"].as_u64().unwrap() + result["gets"].as_u64().unwrap(),
        result["requests"].as_u64().unwrap()
    );
}

#[test]
fn the_human_summary_names_throughput_and_percentiles() {
    let server = Server::start(&[]);
    let output = bench(&[
        "-p",
        &server.port(),
        "-n",
        "500",
        "-c",
        "2",
        "--key-pattern",
        "sequential",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "throughput",
        "500 requests",
        "p50",
        "p99.9",
        "errors      0",
    ] {
        assert!(stdout.contains(needle), "{needle:?} in {stdout}");
    }
}

// ----- a fake server that acknowledges every SET and forgets it --------------------------------

/// Reads RESP commands (arrays of bulk strings) and answers SET with +OK, GET with nil.
fn forgetful_connection(stream: TcpStream) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let count: usize = line.trim_end().trim_start_matches('*').parse().unwrap();
        let mut name = Vec::new();
        for index in 0..count {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let len: usize = line.trim_end().trim_start_matches('$').parse().unwrap();
            let mut arg = vec![0; len + 2];
            reader.read_exact(&mut arg).unwrap();
            if index == 0 {
                name = arg[..len].to_ascii_uppercase();
            }
        }
        let reply: &[u8] = if name == b"SET" {
            b"+OK\r\n"
        } else {
            b"$-1\r\n"
        };
        if writer.write_all(reply).is_err() {
            return;
        }
    }
}

#[test]
fn verify_catches_a_server_that_loses_writes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.unwrap();
            std::thread::spawn(move || forgetful_connection(stream));
        }
    });
    let args = [
        "-p", &port, "-n", "400", "-c", "2", "-P", "4", "--ratio", "1:1", "-r", "10", "--verify",
        "--json",
    ];
    let output = bench(&args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr: {}",
        stderr_of(&output)
    );
    let result = json_of(&output);
    assert_eq!(result["errors"], 0, "every reply was well formed");
    let failures = result["verify"]["failures"].as_u64().unwrap();
    assert!(failures > 0 && failures == result["verify"]["checked"].as_u64().unwrap());
    assert!(stderr_of(&output).contains("should return version"));

    // Without --verify the same run passes: the check is what failed it.
    let output = bench(&args[..args.len() - 2]);
    assert!(output.status.success(), "stderr: {}", stderr_of(&output));
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    for (args, needle) in [
        (&["--pipeline", "0"][..], "--pipeline"),
        (&["--bogus"][..], "unknown flag"),
        (&["--ratio", "0:0"][..], "--ratio"),
        (&["--key-pattern", "zipf:0"][..], "zipf"),
        (&["-n", "5", "--duration", "1s"][..], "not both"),
        (
            &["--protocol", "capnp", "-c", "4", "--threads", "2"][..],
            "must equal",
        ),
    ] {
        let output = bench(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = stderr_of(&output);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let help = bench(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--key-pattern"));
}

#[test]
fn an_unreachable_server_is_a_clear_failure() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port().to_string()
    };
    let output = bench(&["-p", &port, "-n", "10", "-c", "2"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("connect to"),
        "{}",
        stderr_of(&output)
    );
}
