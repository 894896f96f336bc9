//! A deterministic test of the cross-worker coordination (docs/transactions.md): the real RESP
//! front end, router, coordinator, reorder buffers, rings and shards, driven in one thread by a
//! seeded scheduler that interleaves clients' commands, the workers' batches (each worker runs
//! its ring in order, as many requests at a time as the seed says) and the reactor's reply
//! draining and publishing. Every reply each client reads is compared, byte for byte, with a
//! sequential model of Redis that runs each command at once at the moment the front end
//! accepted it (the serialization point the design claims: a plan's locks are taken in that
//! same dispatch call). Rings of 4 slots force big MSET/MGET/DEL/EXISTS into chunked plans.
//!
//! A failure prints its seed; `COORD_MODEL_SEED=n cargo test --test coord_model` replays it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use piccolo::proto::Protocol;
use piccolo::proto::resp::Limits;
use piccolo::server::coord::COORDINATOR_INDEX;
use piccolo::server::execute::execute;
use piccolo::server::front::serve::{Buffered, Stop};
use piccolo::server::front::{self, FrontEnds};
use piccolo::server::info::ServerInfo;
use piccolo::server::message::{ConnId, Reply, Request};
use piccolo::server::route::Router;
use piccolo::server::session::Session;
use piccolo::store::{Config, Shard};
use piccolo_queues::batched::Batched;
use piccolo_queues::{RingConsumer, Variant};

const WORKERS: usize = 3;
const RING_CAPACITY: usize = 4;
const CLIENTS: usize = 4;
const COMMANDS_PER_CLIENT: usize = 60;
const SEEDS: u64 = 150;
const NOW_MS: u64 = 1_750_000_000_000;

/// SplitMix64: small, seeded, good enough to pick interleavings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn encode(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

fn data_key(rng: &mut Rng) -> String {
    format!("k{}", rng.below(12))
}

fn counter_key(rng: &mut Rng) -> String {
    format!("c{}", rng.below(3))
}

fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| part.to_string()).collect()
}

/// One command a client may send outside a transaction (MULTI's inner commands too).
fn data_command(rng: &mut Rng, big: bool) -> Vec<String> {
    let value = format!("{}", rng.below(1000));
    let count = if big {
        1 + rng.below(30)
    } else {
        1 + rng.below(3)
    };
    match rng.below(11) {
        0 => words(&["SET", &data_key(rng), &value]),
        1 => words(&["GET", &data_key(rng)]),
        2 => {
            let mut args = words(&["MSET"]);
            for _ in 0..count {
                args.push(data_key(rng));
                args.push(format!("{}", rng.below(1000)));
            }
            args
        }
        3 => {
            let mut args = words(&["MGET"]);
            args.extend((0..count).map(|_| data_key(rng)));
            args
        }
        4 => {
            let mut args = words(&["DEL"]);
            args.extend((0..count.min(4)).map(|_| data_key(rng)));
            args
        }
        5 => {
            let mut args = words(&["EXISTS"]);
            args.extend((0..count).map(|_| data_key(rng)));
            args
        }
        6 => {
            let mut args = words(&["MSETNX"]);
            for _ in 0..count.min(5) {
                args.push(data_key(rng));
                args.push(format!("{}", rng.below(1000)));
            }
            args
        }
        7 => {
            let (source, destination) = (data_key(rng), data_key(rng));
            let name = if rng.below(2) == 0 {
                "RENAME"
            } else {
                "RENAMENX"
            };
            words(&[name, &source, &destination])
        }
        8 => {
            let (source, destination) = (data_key(rng), data_key(rng));
            if source == destination {
                return words(&["GET", &source]);
            }
            if rng.below(2) == 0 {
                words(&["COPY", &source, &destination, "REPLACE"])
            } else {
                words(&["COPY", &source, &destination])
            }
        }
        9 => words(&["INCR", &counter_key(rng)]),
        _ => words(&["GET", &counter_key(rng)]),
    }
}

/// A client's script: single commands and transactions (some after WATCH of counters).
fn script(rng: &mut Rng) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    while commands.len() < COMMANDS_PER_CLIENT {
        if rng.below(5) == 0 {
            if rng.below(2) == 0 {
                commands.push(words(&["WATCH", &counter_key(rng), &counter_key(rng)]));
            }
            commands.push(words(&["MULTI"]));
            for _ in 0..1 + rng.below(4) {
                commands.push(data_command(rng, false));
            }
            commands.push(words(&["EXEC"]));
        } else {
            commands.push(data_command(rng, true));
        }
    }
    commands
}

/// A sequential model of the Redis commands above.
#[derive(Default)]
struct Model {
    keys: HashMap<String, String>,
    /// Writes per counter key (a write changes what WATCH saw).
    writes: HashMap<String, u64>,
    clients: Vec<ClientModel>,
}

#[derive(Default)]
struct ClientModel {
    watched: Vec<(String, u64)>,
    queued: Option<Vec<Vec<String>>>,
}

fn bulk(out: &mut Vec<u8>, value: Option<&String>) {
    match value {
        Some(value) => out.extend_from_slice(format!("${}\r\n{value}\r\n", value.len()).as_bytes()),
        None => out.extend_from_slice(b"$-1\r\n"),
    }
}

impl Model {
    fn touch(&mut self, key: &str) {
        *self.writes.entry(key.to_string()).or_default() += 1;
    }

    fn write(&mut self, key: &str, value: String) {
        self.touch(key);
        self.keys.insert(key.to_string(), value);
    }

    /// Runs `args` for `client` and appends its RESP answer to `out`.
    fn run(&mut self, client: usize, args: &[String], out: &mut Vec<u8>) {
        let name = args[0].as_str();
        if let Some(queued) = self.clients[client].queued.as_mut() {
            if name != "EXEC" {
                queued.push(args.to_vec());
                out.extend_from_slice(b"+QUEUED\r\n");
                return;
            }
        }
        match name {
            "WATCH" => {
                for key in &args[1..] {
                    let writes = self.writes.get(key).copied().unwrap_or(0);
                    self.clients[client].watched.push((key.clone(), writes));
                }
                out.extend_from_slice(b"+OK\r\n");
            }
            "MULTI" => {
                self.clients[client].queued = Some(Vec::new());
                out.extend_from_slice(b"+OK\r\n");
            }
            "EXEC" => {
                let queued = self.clients[client].queued.take().unwrap_or_default();
                let watched = std::mem::take(&mut self.clients[client].watched);
                let changed = watched
                    .iter()
                    .any(|(key, writes)| self.writes.get(key).copied().unwrap_or(0) != *writes);
                if changed {
                    out.extend_from_slice(b"*-1\r\n");
                    return;
                }
                out.extend_from_slice(format!("*{}\r\n", queued.len()).as_bytes());
                for command in queued {
                    self.run(client, &command, out);
                }
            }
            "SET" => {
                self.write(&args[1], args[2].clone());
                out.extend_from_slice(b"+OK\r\n");
            }
            "GET" => bulk(out, self.keys.get(&args[1])),
            "INCR" => {
                let value = self
                    .keys
                    .get(&args[1])
                    .map_or(0, |value| value.parse::<i64>().unwrap())
                    + 1;
                self.write(&args[1], value.to_string());
                out.extend_from_slice(format!(":{value}\r\n").as_bytes());
            }
            "MSET" => {
                for pair in args[1..].chunks(2) {
                    self.write(&pair[0], pair[1].clone());
                }
                out.extend_from_slice(b"+OK\r\n");
            }
            "MSETNX" => {
                let any = args[1..]
                    .chunks(2)
                    .any(|pair| self.keys.contains_key(&pair[0]));
                if !any {
                    for pair in args[1..].chunks(2) {
                        self.write(&pair[0], pair[1].clone());
                    }
                }
                out.extend_from_slice(format!(":{}\r\n", i32::from(!any)).as_bytes());
            }
            "MGET" => {
                out.extend_from_slice(format!("*{}\r\n", args.len() - 1).as_bytes());
                for key in &args[1..] {
                    bulk(out, self.keys.get(key));
                }
            }
            "DEL" => {
                let mut count = 0;
                for key in &args[1..] {
                    if self.keys.remove(key).is_some() {
                        self.touch(key);
                        count += 1;
                    }
                }
                out.extend_from_slice(format!(":{count}\r\n").as_bytes());
            }
            "EXISTS" => {
                let count = args[1..]
                    .iter()
                    .filter(|key| self.keys.contains_key(*key))
                    .count();
                out.extend_from_slice(format!(":{count}\r\n").as_bytes());
            }
            "RENAME" | "RENAMENX" => {
                let (source, destination) = (&args[1], &args[2]);
                let Some(value) = self.keys.get(source).cloned() else {
                    out.extend_from_slice(b"-ERR no such key\r\n");
                    return;
                };
                let nx = name == "RENAMENX";
                if source == destination {
                    out.extend_from_slice(if nx { b":0\r\n" as &[u8] } else { b"+OK\r\n" });
                } else if nx && self.keys.contains_key(destination) {
                    out.extend_from_slice(b":0\r\n");
                } else {
                    self.write(destination, value);
                    self.keys.remove(source);
                    self.touch(source);
                    out.extend_from_slice(if nx { b":1\r\n" as &[u8] } else { b"+OK\r\n" });
                }
            }
            "COPY" => {
                let (source, destination) = (&args[1], &args[2]);
                let replace = args.len() == 4;
                match self.keys.get(source).cloned() {
                    Some(value) if replace || !self.keys.contains_key(destination) => {
                        self.write(destination, value);
                        out.extend_from_slice(b":1\r\n");
                    }
                    _ => out.extend_from_slice(b":0\r\n"),
                }
            }
            other => panic!("the model does not know {other}"),
        }
    }
}

/// The server's parts in one thread: front ends with the router, the workers' rings and shards.
struct Sim {
    fronts: FrontEnds<Batched>,
    requests: Vec<<Batched as Variant>::Consumer<Request>>,
    replies_tx: Vec<<Batched as Variant>::Producer<Reply>>,
    replies: Vec<<Batched as Variant>::Consumer<Reply>>,
    shards: Vec<Shard>,
    sessions: Vec<Session>,
}

impl Sim {
    fn new() -> Sim {
        let mut producers = Vec::new();
        let mut requests = Vec::new();
        let mut replies_tx = Vec::new();
        let mut replies = Vec::new();
        for _ in 0..WORKERS {
            let (tx, rx) = Batched::channel::<Request>(RING_CAPACITY);
            producers.push(tx);
            requests.push(rx);
            let (tx, rx) = Batched::channel::<Reply>(RING_CAPACITY);
            replies_tx.push(tx);
            replies.push(rx);
        }
        let addr: SocketAddr = "127.0.0.1:7379".parse().expect("address");
        let info = ServerInfo {
            version: "test",
            addr,
            workers: WORKERS,
            queue: Batched::NAME,
            started: Instant::now(),
            maxclients: CLIENTS,
            connected_clients: CLIENTS,
            total_connections: CLIENTS as u64,
            commands_processed: 0,
            wakeups_to_workers: 0,
            limits: Limits::REDIS,
            max_query_bytes: 1 << 30,
            requirepass: None,
        };
        let sessions = (0..CLIENTS)
            .map(|index| {
                let id = ConnId {
                    index: index as u32,
                    generation: 1,
                };
                let mut session = Session::new(id, index as u64 + 1, &info);
                session.speak(Protocol::Resp);
                session
            })
            .collect();
        Sim {
            fronts: FrontEnds::new(Router::new(producers, RING_CAPACITY), info, Limits::REDIS),
            requests,
            replies_tx,
            replies,
            shards: (0..WORKERS)
                .map(|_| Shard::new(Config::default()))
                .collect(),
            sessions,
        }
    }

    /// Offers one whole command to the client's front end: true if it was dispatched.
    fn offer(&mut self, client: usize, bytes: &[u8]) -> bool {
        let buffered = Buffered {
            bytes,
            in_flight_cap: 1024,
        };
        let served = self.fronts.serve(&mut self.sessions[client], buffered);
        assert_eq!(served.failure, None);
        if served.used == bytes.len() {
            return true;
        }
        assert_eq!((served.used, served.stop), (0, Stop::Blocked));
        false
    }

    /// Worker `worker` runs up to `count` requests of its ring, in order.
    fn work(&mut self, worker: usize, count: usize) {
        let shard = &mut self.shards[worker];
        let replies = &mut self.replies_tx[worker];
        self.requests[worker].pop_batch(count, |request| {
            let reply = execute(shard, request, NOW_MS);
            assert!(
                replies.push_deferred(reply).is_ok(),
                "the budget bounds the reply ring"
            );
        });
        self.replies_tx[worker].flush();
    }

    /// The reactor files every reply of `worker`.
    fn drain(&mut self, worker: usize) -> usize {
        let sessions = &mut self.sessions;
        let router = &mut self.fronts.router;
        let count = self.replies[worker].pop_batch(usize::MAX, |reply| {
            if reply.conn.index == COORDINATOR_INDEX {
                router.coordinator_reply(reply);
            } else {
                front::deliver(&mut sessions[reply.conn.index as usize], reply);
            }
        });
        self.fronts.router.answered(worker, count);
        count
    }

    fn publish(&mut self) {
        self.fronts.router.publish(|_| false);
    }
}

fn run(seed: u64) {
    let mut rng = Rng(seed);
    let mut sim = Sim::new();
    let mut model = Model {
        clients: (0..CLIENTS).map(|_| ClientModel::default()).collect(),
        ..Model::default()
    };
    let mut expected: Vec<Vec<u8>> = vec![Vec::new(); CLIENTS];
    // Counters exist from the start (WATCH is exact for keys that exist; see the chapter).
    let mut setup = words(&["MSET"]);
    for counter in 0..3 {
        setup.push(format!("c{counter}"));
        setup.push("0".to_string());
    }
    assert!(sim.offer(0, &encode(&setup)), "the first command has room");
    model.run(0, &setup, &mut expected[0]);
    let mut scripts: Vec<std::collections::VecDeque<Vec<String>>> =
        (0..CLIENTS).map(|_| script(&mut rng).into()).collect();
    let mut steps = 0u64;
    // The accepted commands in dispatch order, printed when a seed fails.
    let mut trace = Vec::new();
    loop {
        steps += 1;
        assert!(steps < 2_000_000, "seed {seed}: no progress");
        let pending = scripts.iter().any(|script| !script.is_empty());
        let in_flight = sim.fronts.router.total_in_flight() > 0 || sim.fronts.router.plans() > 0;
        if !pending && !in_flight {
            break;
        }
        match rng.below(4) {
            0 => {
                let client = rng.below(CLIENTS);
                let Some(args) = scripts[client].front() else {
                    continue;
                };
                let bytes = encode(args);
                if sim.offer(client, &bytes) {
                    let args = scripts[client].pop_front().expect("front");
                    trace.push(format!("{client}: {}", args.join(" ")));
                    model.run(client, &args, &mut expected[client]);
                }
            }
            1 => {
                let worker = rng.below(WORKERS);
                sim.work(worker, 1 + rng.below(3));
            }
            2 => {
                let worker = rng.below(WORKERS);
                sim.drain(worker);
            }
            _ => sim.publish(),
        }
    }
    for (client, want) in expected.iter().enumerate() {
        let got = String::from_utf8_lossy(&sim.sessions[client].out);
        let want = String::from_utf8_lossy(want);
        if got != want {
            let at = got
                .bytes()
                .zip(want.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            let from = at.saturating_sub(120);
            if std::env::var("COORD_MODEL_TRACE").is_ok() {
                eprintln!("{}", trace.join("\n"));
            }
            panic!(
                "seed {seed}, client {client}: replies differ from the sequential model at byte \
                 {at}\n got: {:?}\nwant: {:?}",
                &got[from..(at + 120).min(got.len())],
                &want[from..(at + 120).min(want.len())]
            );
        }
    }
}

#[test]
fn coordinated_commands_are_serializable_in_dispatch_order() {
    let seeds: Vec<u64> = match std::env::var("COORD_MODEL_SEED") {
        Ok(seed) => vec![seed.parse().expect("COORD_MODEL_SEED is a number")],
        Err(_) => (1..=SEEDS).collect(),
    };
    for seed in seeds {
        println!("seed {seed}");
        run(seed);
    }
}
