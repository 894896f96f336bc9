//! The server: a mio reactor, key-routed SPSC rings to pinned workers, replies back through the
//! rings with a `mio::Waker`, RESP2 and Cap'n Proto on one port.
//!
//! The layers, each importing only the ones before it (`tests/server_layers.rs` checks it):
//!
//! 1. [`message`]: what travels through the rings: [`message::Request`] (an [`message::Op`]
//!    with its own arguments) and [`message::Reply`] (a typed [`message::Outcome`]).
//! 2. [`info`]: INFO, all of it: [`info::ServerInfo`], the workers' stats, the reply's text.
//! 3. [`order`]: the per-connection reorder buffer; replies leave it in request order, worded
//!    by the connection's protocol ([`order::Words`]).
//! 4. [`session`]: what command dispatch touches of a connection ([`session::Session`]).
//! 5. [`route`]: the [`route::Router`] (request rings and in-flight budgets) and the one place
//!    that turns keyed operations into requests routed by key slot.
//! 6. [`front`]: one front end per protocol ([`front::resp`], [`front::capnp`]), each with its
//!    words, and the framing loop they share ([`front::serve`]).
//! 7. [`reactor`]: one thread owns the listener and every connection: sockets and the poll
//!    loop only. Nothing imports it but this file's wiring.
//!
//! Beside them: [`worker`] (each worker drains its request ring in batches, runs
//! [`execute`] on its own [`crate::store::Shard`], and wakes the reactor at most once per
//! batch, only if it sleeps), [`signal`] (SIGINT and SIGTERM as a poll event) and
//! [`bench_support`] (the front ends, rings and worker in one thread, for the benchmarks).
//!
//! [`run`] picks the queue variant once and runs a monomorphised server for it.

#[doc(hidden)]
pub mod bench_support;
pub mod coord;
pub mod execute;
pub mod front;
pub mod info;
pub mod message;
pub mod order;
pub mod reactor;
pub mod route;
pub mod session;
pub mod signal;
pub mod worker;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use piccolo_queues::park::SleepFlag;
use piccolo_queues::{
    RingConsumer, RingProducer, Variant, batched::Batched, cached::Cached, lamport::Lamport,
    mutex::Locked,
};

use crate::proto::resp::Limits;
use front::FrontEnds;
use info::ServerInfo;
use reactor::{Reactor, ReactorConfig, ReactorIo, WorkerEnds};
use route::Router;

/// The default address: loopback, port 7379 (Redis's 6379 with the first digit bumped, so both
/// can run side by side for comparisons).
pub const DEFAULT_ADDR: &str = "127.0.0.1:7379";
/// Default connection limit (Redis's `maxclients` default).
pub const DEFAULT_MAXCLIENTS: usize = 10_000;
/// Default bound of one client's unwritten output.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 256 * 1024 * 1024;
/// Default capacity of each request ring and each reply ring (also the in-flight budget per
/// worker).
pub const DEFAULT_RING_CAPACITY: usize = 4096;
/// Largest read buffer of one connection (Redis's `client-query-buffer-limit`, 1 GiB).
pub const MAX_QUERY_BYTES: usize = 1024 * 1024 * 1024;

/// Which ring variant carries requests and replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    /// `piccolo_queues::lamport`.
    Lamport,
    /// `piccolo_queues::cached`.
    Cached,
    /// `piccolo_queues::batched` (default).
    Batched,
    /// `piccolo_queues::mutex`.
    Mutex,
}

impl QueueKind {
    /// Parses a `--queue` value.
    pub fn parse(name: &str) -> Option<QueueKind> {
        match name {
            "lamport" => Some(QueueKind::Lamport),
            "cached" => Some(QueueKind::Cached),
            "batched" => Some(QueueKind::Batched),
            "mutex" => Some(QueueKind::Mutex),
            _ => None,
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            QueueKind::Lamport => Lamport::NAME,
            QueueKind::Cached => Cached::NAME,
            QueueKind::Batched => Batched::NAME,
            QueueKind::Mutex => Locked::NAME,
        }
    }
}

/// Startup configuration, from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on (`--addr`); port 0 picks a free port (logged).
    pub addr: SocketAddr,
    /// Worker threads (`--workers`).
    pub workers: usize,
    /// Ring variant (`--queue`).
    pub queue: QueueKind,
    /// Connection limit (`--maxclients`).
    pub maxclients: usize,
    /// Output bound per client (`--max-output-bytes`).
    pub max_output_bytes: usize,
    /// Ring capacity (`--ring-capacity`).
    pub ring_capacity: usize,
    /// Thread pinning (`--pin auto|on|off`).
    pub pin: Pinning,
    /// Password clients must give with AUTH (`--requirepass`); none by default.
    pub requirepass: Option<Vec<u8>>,
    /// Spins of an idle worker before it parks (`--worker-spins`).
    pub worker_spins: u32,
    /// Spins of the reactor on the reply rings before it sleeps while requests are in flight
    /// (`--reactor-spins`).
    pub reactor_spins: u32,
}

/// The default worker count: one core for the reactor, the rest for workers, at least one.
/// On the 2-vCPU development VM that is one worker: reactor and worker each get a core (the
/// benchmark client shares them), and a second worker would only time-share with the reactor.
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    cores.saturating_sub(1).max(1)
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            workers: default_workers(),
            queue: QueueKind::Batched,
            maxclients: DEFAULT_MAXCLIENTS,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            ring_capacity: DEFAULT_RING_CAPACITY,
            pin: Pinning::Auto,
            requirepass: None,
            worker_spins: worker::SPINS_BEFORE_PARK,
            reactor_spins: reactor::SPINS_BEFORE_SLEEP,
        }
    }
}

/// Whether threads are pinned to cores.
///
/// With the benchmark client on the same 2-core machine, pinning the reactor and the worker cut
/// throughput badly: the client had no core of its own and kept being scheduled on top of a
/// pinned thread (docs/PERFORMANCE.md, "Pinning", has the runs). So by default only workers are
/// pinned, and only when cores remain for the reactor and for everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning {
    /// Pin the workers (to cores 1..=N) when `cores >= workers + 2`; the reactor floats.
    Auto,
    /// Pin the reactor to core 0 and the workers to cores 1..=N when `cores >= workers + 1`.
    On,
    /// Never pin.
    Off,
}

/// A bad command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The `--help` text.
pub const USAGE: &str = "\
usage: piccolo-server [options]
  --addr HOST:PORT          listen address (default 127.0.0.1:7379; port 0 = any free port)
  --workers N               worker threads, one shard each (default: cores - 1, at least 1)
  --queue KIND              ring variant: lamport | cached | batched | mutex (default batched)
  --maxclients N            connection limit (default 10000)
  --max-output-bytes N      unwritten output per client before it is disconnected (default 256 MiB)
  --ring-capacity N         slots per request/reply ring = requests in flight per worker (default 4096)
  --pin auto|on|off         pin threads to cores: auto (default) pins the workers only when at
                            least one core is left over for the reactor and one for everything
                            else (cores >= workers + 2); on pins the reactor and the workers
                            whenever cores >= workers + 1; off never pins
  --no-pin                  same as --pin off
  --requirepass PASSWORD    clients must AUTH with this password (as Redis's default user)
  --worker-spins N          most spins of an idle worker before it parks (default 200); halved
                            after each wait that parked, down to 8, doubled after each that
                            found work while spinning
  --reactor-spins N         spins of the reactor on the reply rings before it sleeps while
                            requests are in flight (default 0: off; try 3000 on an idle many-core box)
  --help, --version
";

impl Config {
    /// Parses the command line (without the program name). `Ok(None)` means `--help` or
    /// `--version` was printed.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, UsageError> {
        let mut config = Config::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| UsageError(format!("{name} needs a value")))
            };
            match flag.as_str() {
                "--help" | "-h" => {
                    print!("{USAGE}");
                    return Ok(None);
                }
                "--version" | "-v" => {
                    println!("piccolo-server {}", env!("CARGO_PKG_VERSION"));
                    return Ok(None);
                }
                "--addr" => {
                    let text = value("--addr")?;
                    config.addr = text
                        .parse()
                        .map_err(|_| UsageError(format!("--addr: not an address: {text}")))?;
                }
                "--workers" => config.workers = number(&value("--workers")?, "--workers", 1, 1024)?,
                "--queue" => {
                    let text = value("--queue")?;
                    config.queue = QueueKind::parse(&text).ok_or_else(|| {
                        UsageError(format!(
                            "--queue: unknown variant {text} (lamport, cached, batched, mutex)"
                        ))
                    })?;
                }
                "--maxclients" => {
                    config.maxclients = number(&value("--maxclients")?, "--maxclients", 1, 1 << 20)?
                }
                "--max-output-bytes" => {
                    config.max_output_bytes = number(
                        &value("--max-output-bytes")?,
                        "--max-output-bytes",
                        1,
                        usize::MAX,
                    )?
                }
                "--ring-capacity" => {
                    config.ring_capacity =
                        number(&value("--ring-capacity")?, "--ring-capacity", 2, 1 << 20)?
                }
                "--no-pin" => config.pin = Pinning::Off,
                "--worker-spins" => {
                    config.worker_spins =
                        number(&value("--worker-spins")?, "--worker-spins", 0, 100_000_000)? as u32
                }
                "--reactor-spins" => {
                    config.reactor_spins = number(
                        &value("--reactor-spins")?,
                        "--reactor-spins",
                        0,
                        100_000_000,
                    )? as u32
                }
                "--requirepass" => {
                    config.requirepass = Some(value("--requirepass")?.into_bytes());
                }
                "--pin" => {
                    let text = value("--pin")?;
                    config.pin = match text.as_str() {
                        "auto" => Pinning::Auto,
                        "on" => Pinning::On,
                        "off" => Pinning::Off,
                        _ => return Err(UsageError(format!("--pin: auto, on or off, not {text}"))),
                    };
                }
                other => return Err(UsageError(format!("unknown option {other}\n{USAGE}"))),
            }
        }
        Ok(Some(config))
    }
}

fn number(text: &str, flag: &str, min: usize, max: usize) -> Result<usize, UsageError> {
    match text.parse::<usize>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(UsageError(format!(
            "{flag}: expected a number from {min} to {max}, got {text}"
        ))),
    }
}

/// Runs the server until SIGINT or SIGTERM. Picks the ring variant once; everything below is
/// monomorphised for it.
pub fn run(config: Config) -> io::Result<()> {
    match config.queue {
        QueueKind::Lamport => run_with::<Lamport>(config),
        QueueKind::Cached => run_with::<Cached>(config),
        QueueKind::Batched => run_with::<Batched>(config),
        QueueKind::Mutex => run_with::<Locked>(config),
    }
}

fn run_with<V: Variant>(config: Config) -> io::Result<()> {
    let signals = signal::install()?;
    let poll = mio::Poll::new()?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), reactor::WAKER)?);
    let listener = mio::net::TcpListener::bind(config.addr)?;
    let addr = listener.local_addr()?;
    let reactor_sleep = Arc::new(SleepFlag::new());
    let shutdown = Arc::new(AtomicBool::new(false));

    let cores = core_affinity::get_core_ids().unwrap_or_default();
    // See `Pinning`: pinning on a machine the clients share hurt badly.
    let pin = match config.pin {
        Pinning::Auto => cores.len() >= config.workers + 2,
        Pinning::On => cores.len() > config.workers,
        Pinning::Off => false,
    };
    if pin && config.pin == Pinning::On {
        // Reactor on the first core, workers on the next ones.
        core_affinity::set_for_current(cores[0]);
    }

    let mut producers = Vec::with_capacity(config.workers);
    let mut reply_consumers = Vec::with_capacity(config.workers);
    let mut unparkers = Vec::with_capacity(config.workers);
    let mut threads = Vec::with_capacity(config.workers);
    for index in 0..config.workers {
        let (request_tx, request_rx) = V::channel::<message::Request>(config.ring_capacity);
        let (reply_tx, reply_rx) = V::channel::<message::Reply>(config.ring_capacity);
        let worker = worker::Worker::<V> {
            requests: request_rx,
            replies: reply_tx,
            reactor_sleep: reactor_sleep.clone(),
            reactor_waker: waker.clone(),
            shutdown: shutdown.clone(),
            spins: config.worker_spins,
            index,
            workers: config.workers,
        };
        let core = pin.then(|| cores[index + 1]);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("piccolo-worker-{index}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                worker.run(ready_tx);
            })?;
        let unparker = ready_rx
            .recv()
            .map_err(|_| io::Error::other("a worker thread died at startup"))?;
        producers.push(request_tx);
        reply_consumers.push(reply_rx);
        unparkers.push(unparker);
        threads.push(thread);
    }

    eprintln!(
        "piccolo-server {} listening on {addr} workers={} queue={} pinned={} auth={} pid={}",
        env!("CARGO_PKG_VERSION"),
        config.workers,
        V::NAME,
        if pin { "yes" } else { "no" },
        if config.requirepass.is_some() {
            "on"
        } else {
            "off"
        },
        std::process::id()
    );

    let limits = Limits::REDIS;
    let info = ServerInfo {
        version: env!("CARGO_PKG_VERSION"),
        addr,
        workers: config.workers,
        queue: V::NAME,
        started: Instant::now(),
        maxclients: config.maxclients,
        connected_clients: 0,
        total_connections: 0,
        commands_processed: 0,
        wakeups_to_workers: 0,
        limits,
        max_query_bytes: MAX_QUERY_BYTES,
        requirepass: config.requirepass.clone(),
    };
    // The in-flight budget per worker: no more than either ring holds, so neither overflows.
    let capacity = producers
        .iter()
        .map(|ring| ring.capacity())
        .chain(reply_consumers.iter().map(|ring| ring.capacity()))
        .min()
        .unwrap_or(1);
    let fronts = FrontEnds::new(Router::new(producers, capacity), info, limits);
    let io = ReactorIo {
        poll,
        listener,
        signals,
        sleep: reactor_sleep,
    };
    let workers = WorkerEnds {
        replies: reply_consumers,
        unparkers: unparkers.clone(),
    };
    let reactor_config = ReactorConfig {
        maxclients: config.maxclients,
        max_output_bytes: config.max_output_bytes,
        max_query_bytes: MAX_QUERY_BYTES,
        spins_before_sleep: config.reactor_spins,
    };
    let mut reactor = Reactor::<V>::new(io, fronts, workers, reactor_config)?;
    let result = reactor.run();

    shutdown.store(true, Ordering::Release);
    for unparker in &unparkers {
        unparker.notify();
    }
    for thread in threads {
        if thread.join().is_err() {
            eprintln!("piccolo-server: a worker thread panicked");
        }
    }
    eprintln!("piccolo-server: stopped");
    result
}
