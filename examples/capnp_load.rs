//! A closed-loop Cap'n Proto load generator, the direct counterpart of `wrk` through the
//! Cerializer (`perf/cerializer.sh`): `-c` connections, each on its own thread with one blocking
//! [`Client`] and one request in flight (as `wrk` keeps one per connection), GET or SET of random
//! keys `key:0..N` with 32-byte values, for `-d` seconds. Prints requests per second and latency
//! percentiles.
//!
//! ```text
//! cargo run --release --example capnp_load -- ADDR get|set|populate [-c 16] [-d 10] [-n 10000]
//! ```

use std::time::{Duration, Instant};

use piccolo::client::Client;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: capnp_load ADDR get|set|populate [-c CONNS] [-d SECONDS] [-n KEYS]";
    let (Some(addr), Some(mode)) = (args.first().cloned(), args.get(1).cloned()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let (mut conns, mut seconds, mut keys) = (16usize, 10u64, 10_000u64);
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value: u64 = rest
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{flag} needs a number; {usage}"));
        match flag.as_str() {
            "-c" => conns = value.max(1) as usize,
            "-d" => seconds = value.max(1),
            "-n" => keys = value.max(1),
            _ => panic!("unknown flag {flag}; {usage}"),
        }
    }
    let value = [b'v'; 32];
    if mode == "populate" {
        let mut client = Client::connect(addr.as_str(), Duration::from_secs(5)).expect("connect");
        for i in 0..keys {
            client
                .set(format!("key:{i}").as_bytes(), &value)
                .expect("set");
        }
        println!("populated {keys} keys");
        return;
    }
    let set = match mode.as_str() {
        "get" => false,
        "set" => true,
        _ => panic!("{usage}"),
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..conns)
        .map(|thread| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut client =
                    Client::connect(addr.as_str(), Duration::from_secs(5)).expect("connect");
                // xorshift: a cheap random key per request.
                let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (thread as u64 + 1);
                let mut latencies_us = Vec::with_capacity(1 << 20);
                let mut key = Vec::with_capacity(32);
                while Instant::now() < deadline {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    key.clear();
                    key.extend_from_slice(format!("key:{}", state % keys).as_bytes());
                    let start = Instant::now();
                    if set {
                        client.set(&key, &value).expect("set");
                    } else {
                        client.get(&key).expect("get");
                    }
                    latencies_us.push(start.elapsed().as_micros() as u64);
                }
                latencies_us
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a load thread"))
        .collect();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    println!(
        "capnp {mode} conns={conns} seconds={seconds} requests={} req/s={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3}",
        all.len(),
        all.len() as f64 / seconds as f64,
        pct(0.50),
        pct(0.90),
        pct(0.99)
    );
}
