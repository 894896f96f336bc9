//! `piccolo-chaos run`: one test run against real processes, and `report`, which redraws the
//! outputs of a recorded history.
//!
//! A run today is a single node: one `piccolo-server` (in-memory, as today's server is), client
//! threads each with its own RESP connection doing `GETV`, `SET` and `CAS` on a few keys with
//! unique values, and a pause nemesis (SIGSTOP, then SIGCONT) on a seeded schedule. It writes
//! `history.edn`, `summary.txt`, `timeline.svg` and `verdict.txt` into `--out`, and exits 0
//! (linearizable), 1 (a violation) or 2 (unknown, or the run itself failed).
//!
//! What is refused, and why, rather than pretended: `--nodes 3|5` (the cluster does not exist
//! yet), the partition nemesis (no peers to cut apart), and kill (a restarted in-memory node has
//! lost every write; the checker would rightly flag it, so kill waits for durability).
//!
//! Bounds: the run lasts `--seconds`; every request has `--timeout-ms`; connects are retried
//! at most every 20 ms until the run ends; the nemesis sleeps in slices of at most 50 ms and
//! checks the clock each time; the server is stopped by its PID on every path out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use piccolo::chaos::recorder::{ClientLog, NemesisLog, merge};
use piccolo::chaos::summary::summarize;
use piccolo::chaos::timeline::timeline_svg;
use piccolo::check::simulate::Rng;
use piccolo::check::{self, CheckOptions, EventType, ModelKind, Value, history};

use crate::args::Args;
use crate::check_cmd;
use crate::resp::{Connection, Reply};
use crate::server::{self, ServerProcess};

/// The longest run accepted.
const MAX_SECONDS: u64 = 3600;
/// The checker's time limit on a run's history.
const CHECK_SECONDS: u64 = 120;
/// Pauses: one starts 1 to 3 s after the previous ended, and lasts 0.3 to 1.5 s.
const PAUSE_GAP_MS: (u64, u64) = (1_000, 3_000);
const PAUSE_LENGTH_MS: (u64, u64) = (300, 1_500);

#[derive(Clone, Debug)]
struct RunConfig {
    seconds: u64,
    seed: u64,
    pause: bool,
    clients: usize,
    keys: usize,
    timeout: Duration,
    server: PathBuf,
    out: PathBuf,
}

fn parse(words: Vec<String>) -> Result<RunConfig, String> {
    let mut args = Args::new(words);
    let nodes = args.number("--nodes", 1, 1, 99)?;
    if nodes != 1 {
        return Err(format!(
            "--nodes {nodes}: the cluster is not available yet (the clustering issue); only --nodes 1 runs today"
        ));
    }
    let mut pause = true;
    if let Some(list) = args.value("--nemesis")? {
        pause = false;
        for nemesis in list.split(',').map(str::trim) {
            match nemesis {
                "pause" => pause = true,
                "none" | "" => {}
                "kill" => return Err("--nemesis kill: waits for durability (the persistence issue); a killed in-memory node loses every write".to_string()),
                "partition" | "clock" | "member" => return Err(format!("--nemesis {nemesis}: needs the cluster, which does not exist yet")),
                other => return Err(format!("--nemesis: unknown {other:?} (pause, none)")),
            }
        }
    }
    let server = match args.value("--server")? {
        Some(path) => PathBuf::from(path),
        None => server::default_binary()?,
    };
    let config = RunConfig {
        seconds: args.number("--seconds", 10, 1, MAX_SECONDS)?,
        seed: args.number("--seed", 1, 0, u64::MAX)?,
        pause,
        clients: args.number("--clients", 4, 1, 64)? as usize,
        keys: args.number("--keys", 3, 1, 1000)? as usize,
        timeout: Duration::from_millis(args.number("--timeout-ms", 250, 10, 60_000)?),
        server,
        out: PathBuf::from(
            args.value("--out")?
                .unwrap_or_else(|| "chaos-out".to_string()),
        ),
    };
    if !args.finish()?.is_empty() {
        return Err("run takes no positional arguments".to_string());
    }
    Ok(config)
}

pub fn main(words: Vec<String>) -> Result<u8, String> {
    let config = parse(words)?;
    std::fs::create_dir_all(&config.out)
        .map_err(|error| format!("{}: {error}", config.out.display()))?;
    println!(
        "run: 1 node, {} clients, {} keys, {} s, seed {}, nemesis {}, server {}",
        config.clients,
        config.keys,
        config.seconds,
        config.seed,
        if config.pause { "pause" } else { "none" },
        config.server.display()
    );
    // The server is started, paused and stopped from this thread only: PR_SET_PDEATHSIG fires
    // when the thread that started the child exits, so it must be the one that lives longest.
    let mut server = ServerProcess::start(&config.server, 2)?;
    println!("server pid {} on {}", server.pid(), server.addr);
    let epoch = Instant::now();
    let end = epoch + Duration::from_secs(config.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..config.clients)
        .map(|client| {
            let (config, stop, addr) = (config.clone(), stop.clone(), server.addr);
            std::thread::spawn(move || client_loop(client, &config, addr, epoch, end, &stop))
        })
        .collect();
    let nemesis = nemesis_loop(&config, &mut server, epoch, end);
    stop.store(true, Ordering::Relaxed);
    let mut logs = Vec::with_capacity(config.clients + 1);
    let mut client_failure = None;
    for handle in clients {
        match handle.join() {
            Ok(events) => logs.push(events),
            Err(_) => client_failure = Some("a client thread panicked".to_string()),
        }
    }
    let server_died = server.exited();
    server.stop();
    let nemesis_log = nemesis?;
    if let Some(failure) = client_failure {
        return Err(failure);
    }
    if server_died {
        return Err("the server exited during the run".to_string());
    }
    logs.push(nemesis_log);
    let events = merge(logs);
    write_outputs(
        &events,
        &config.out,
        &format!("piccolo-chaos run: 1 node, seed {}", config.seed),
    )?;

    let paired = history::pair(&events, history::PairOptions::default())
        .map_err(|e| format!("the recorded history: {e}"))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(CHECK_SECONDS);
    let time_up = move || Instant::now() >= deadline;
    let options = CheckOptions {
        stop: Some(&time_up),
        ..CheckOptions::default()
    };
    let report = check::check(ModelKind::Versioned, &paired.operations, &options)
        .map_err(|e| e.to_string())?;
    let code = check_cmd::print_verdict(ModelKind::Versioned, &report, started.elapsed());
    let verdict = match &report.verdict {
        check::Verdict::Linearizable => "linearizable\n".to_string(),
        check::Verdict::NotLinearizable(violation) => format!("NOT linearizable\n{violation}"),
        check::Verdict::Unknown { reason } => format!("unknown: {reason}\n"),
    };
    write(&config.out.join("verdict.txt"), &verdict)?;
    println!(
        "wrote {}/{{history.edn,summary.txt,timeline.svg,verdict.txt}}",
        config.out.display()
    );
    Ok(code)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|error| format!("{}: {error}", path.display()))
}

/// Writes history.edn, summary.txt and timeline.svg, and prints the summary.
fn write_outputs(events: &[check::Event], out: &Path, title: &str) -> Result<(), String> {
    write(&out.join("history.edn"), &history::write_edn(events))?;
    let summary = summarize(events).to_string();
    print!("{summary}");
    write(&out.join("summary.txt"), &summary)?;
    write(&out.join("timeline.svg"), &timeline_svg(events, title))
}

/// `piccolo-chaos report HISTORY [--out DIR]`.
pub fn report_main(words: Vec<String>) -> Result<u8, String> {
    let mut args = Args::new(words);
    let out = args.value("--out")?;
    let files = args.finish()?;
    let [file] = files.as_slice() else {
        return Err("report needs exactly one HISTORY file".to_string());
    };
    let text = std::fs::read_to_string(file).map_err(|error| format!("{file}: {error}"))?;
    let events = history::read(&text, history::detect_format(&text))
        .map_err(|error| format!("{file}: {error}"))?;
    let out = out.map_or_else(
        || {
            Path::new(file)
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf()
        },
        PathBuf::from,
    );
    std::fs::create_dir_all(&out).map_err(|error| format!("{}: {error}", out.display()))?;
    write_outputs(&events, &out, file)?;
    println!("wrote {}/{{summary.txt,timeline.svg}}", out.display());
    Ok(0)
}

fn nanos_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Sleeps until `until` or `end`, whichever is first, in slices of at most 50 ms.
fn sleep_until(until: Instant, end: Instant) {
    let until = until.min(end);
    while Instant::now() < until {
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
}

/// The nemesis: on the seeded schedule, pause the server, then resume it. Runs on the thread
/// that started the server. Leaves the server resumed.
fn nemesis_loop(
    config: &RunConfig,
    server: &mut ServerProcess,
    epoch: Instant,
    end: Instant,
) -> Result<Vec<check::Event>, String> {
    let mut log = NemesisLog::default();
    let mut rng = Rng::new(config.seed ^ 0x6e65_6d65_7369_7321);
    let between = |rng: &mut Rng, (low, high): (u64, u64)| {
        Duration::from_millis(low + rng.below(high - low + 1))
    };
    let target = Value::Str(format!("n1 pid {}", server.pid()));
    while Instant::now() < end {
        sleep_until(Instant::now() + between(&mut rng, PAUSE_GAP_MS), end);
        if !config.pause || Instant::now() >= end {
            continue;
        }
        let length = between(&mut rng, PAUSE_LENGTH_MS);
        log.start("pause", target.clone(), nanos_since(epoch));
        server.pause()?;
        sleep_until(Instant::now() + length, end);
        server.resume()?;
        log.stop("pause", target.clone(), nanos_since(epoch));
    }
    Ok(log.finish())
}

/// What one request came back as.
enum Outcome {
    Done(EventType, Value),
    /// No reply, or a broken connection: unknown.
    Lost(String),
}

/// Parses a RESP bulk holding one of the harness' integer values.
fn int_value(bytes: &[u8]) -> Option<Value> {
    std::str::from_utf8(bytes)
        .ok()?
        .parse::<i64>()
        .ok()
        .map(Value::Int)
}

/// One client: until the run ends, pick a key and an operation, record it, send it, record
/// how it ended. After an unknown outcome the connection is dropped and a new one opened.
fn client_loop(
    client: usize,
    config: &RunConfig,
    addr: SocketAddr,
    epoch: Instant,
    end: Instant,
    stop: &AtomicBool,
) -> Vec<check::Event> {
    let mut log = ClientLog::new(client, config.clients);
    let mut rng = Rng::new(config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ client as u64);
    let mut connection: Option<Connection> = None;
    let mut seen: HashMap<usize, i64> = HashMap::new();
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        let Some(conn) = connection.as_mut() else {
            match Connection::connect(addr, config.timeout) {
                Ok(fresh) => connection = Some(fresh),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            continue;
        };
        let key_index = rng.below(config.keys as u64) as usize;
        let key_name = format!("k{key_index}");
        let key = Some(Value::Str(key_name.clone()));
        let roll = rng.below(100);
        let outcome = if roll < 40 {
            log.invoke("getv", key, Value::Nil, nanos_since(epoch));
            match conn.call(&[b"GETV", key_name.as_bytes()]) {
                Ok(Reply::Array(Some(items))) => match items.as_slice() {
                    [Reply::Bulk(Some(bytes)), Reply::Integer(version)] => match int_value(bytes) {
                        Some(value) => {
                            seen.insert(key_index, *version);
                            Outcome::Done(
                                EventType::Ok,
                                Value::Vector(vec![value, Value::Int(*version)]),
                            )
                        }
                        None => Outcome::Lost("GETV returned a value this run never wrote".into()),
                    },
                    _ => Outcome::Lost(format!("GETV: unexpected reply {items:?}")),
                },
                Ok(Reply::Bulk(None) | Reply::Array(None)) => {
                    Outcome::Done(EventType::Ok, Value::Nil)
                }
                Ok(other) => Outcome::Lost(format!("GETV: unexpected reply {other:?}")),
                Err(error) => Outcome::Lost(error.to_string()),
            }
        } else if roll < 70 {
            let value = log.unique_value();
            log.invoke("set", key, Value::Int(value), nanos_since(epoch));
            match conn.call(&[b"SET", key_name.as_bytes(), value.to_string().as_bytes()]) {
                Ok(Reply::Simple(ok)) if ok == "OK" => {
                    Outcome::Done(EventType::Ok, Value::Int(value))
                }
                Ok(other) => Outcome::Lost(format!("SET: unexpected reply {other:?}")),
                Err(error) => Outcome::Lost(error.to_string()),
            }
        } else {
            let value = log.unique_value();
            let expected = seen.get(&key_index).copied().unwrap_or(0);
            let input = Value::Vector(vec![Value::Int(expected), Value::Int(value)]);
            log.invoke("cas", key, input, nanos_since(epoch));
            let reply = conn.call(&[
                b"CAS",
                key_name.as_bytes(),
                expected.to_string().as_bytes(),
                value.to_string().as_bytes(),
            ]);
            match reply {
                Ok(Reply::Integer(new_version)) => {
                    seen.insert(key_index, new_version);
                    let result = vec![
                        Value::Int(expected),
                        Value::Int(value),
                        Value::Int(new_version),
                    ];
                    Outcome::Done(EventType::Ok, Value::Vector(result))
                }
                // A stale version: nothing was written (the checker drops :fail operations).
                Ok(Reply::Bulk(None)) => Outcome::Done(EventType::Fail, Value::Nil),
                Ok(other) => Outcome::Lost(format!("CAS: unexpected reply {other:?}")),
                Err(error) => Outcome::Lost(error.to_string()),
            }
        };
        let now = nanos_since(epoch);
        match outcome {
            Outcome::Done(kind, value) => log.complete(kind, value, None, now),
            Outcome::Lost(reason) => {
                // Unknown whether it took effect; this connection may still deliver it.
                log.complete(EventType::Info, Value::Nil, Some(Value::Str(reason)), now);
                connection = None;
            }
        }
    }
    log.finish(nanos_since(epoch))
}
