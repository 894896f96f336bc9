//! The Cerializer: a REST/JSON gateway that speaks Cap'n Proto to the store, outside the data
//! path (`piccolo-cerializer`).
//!
//! - One mio reactor thread accepts HTTP/1.1 connections, reads, parses requests with
//!   `httparse` ([`http`]), and writes responses in request order per connection, so
//!   keep-alive and pipelining work.
//! - A small fixed pool of worker threads, each owning one blocking
//!   [`Client`](crate::client::Client) connection to the store (`backend`), runs the requests:
//!   [`api`] routes them and answers the single-key, scan, health, info and metrics routes,
//!   `batch` answers `POST /v1/batch`, and `body` holds what both read from JSON bodies (value
//!   fields, write conditions, request limits) and the error bodies they share.
//!   Jobs travel on a bounded channel; answers come back on a queue plus a `mio::Waker`.
//! - Everything is bounded: connections, request head and body sizes, requests in flight per
//!   connection and in total (the channel's capacity; a full channel answers 503).
//! - A store that is down answers 503 (502 when a connection breaks mid-request); each worker
//!   dials again with backoff, so the gateway recovers when the store is back.

mod api;
mod backend;
mod batch;
mod body;
mod http;
mod metrics;
mod openapi;

pub use api::info_json;
pub use openapi::spec as openapi_spec;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use http::{Limits, Parsed, Response};
use metrics::{Metrics, Route};

/// The gateway's settings (`piccolo-cerializer --help`).
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP address to listen on; port 0 picks a free port (logged).
    pub listen: SocketAddr,
    /// The store's Cap'n Proto address.
    pub server: String,
    /// Worker threads, each with one store connection. 0: the reactor calls the store itself
    /// (one blocking call at a time for every connection; for comparison, see the docs).
    pub workers: usize,
    /// Open HTTP connections at most; more are closed at once.
    pub max_connections: usize,
    /// Request line and headers, in bytes.
    pub max_head: usize,
    /// Request body, in bytes.
    pub max_body: usize,
    /// Requests in flight per connection (pipelining depth); reading pauses beyond it.
    pub max_pipeline: usize,
    /// Requests queued for the workers at most; beyond it requests are answered 503.
    pub queue: usize,
    /// Timeout of connecting to the store and of each store call.
    pub store_timeout: Duration,
    /// A connection with nothing in flight and no bytes for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:8080".parse().expect("a literal address"),
            server: crate::client::DEFAULT_ADDR.to_owned(),
            workers: 4,
            max_connections: 1024,
            max_head: 16 * 1024,
            max_body: 1024 * 1024,
            max_pipeline: 64,
            queue: 1024,
            store_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

const USAGE: &str = "\
piccolo-cerializer: a REST/JSON gateway to a Piccolo store (Cap'n Proto)

USAGE: piccolo-cerializer [OPTIONS]
  --listen HOST:PORT     HTTP address (default 127.0.0.1:8080; port 0 = any free port)
  --server HOST:PORT     the store's address (default 127.0.0.1:7379)
  --workers N            worker threads, one store connection each (default 4;
                         0 = the reactor calls the store itself, blocking)
  --max-connections N    open HTTP connections at most (default 1024)
  --max-header-bytes N   request line + headers at most (default 16384; else 431)
  --max-body-bytes N     request body at most (default 1048576; else 413)
  --max-pipeline N       requests in flight per connection (default 64)
  --queue N              requests waiting for a worker at most (default 1024; else 503)
  --store-timeout-ms N   connect and call timeout towards the store (default 5000)
  --idle-timeout-secs N  close connections idle this long (default 60)
  --help                 this text
";

impl Config {
    /// Parses the command line; `Ok(None)` after printing `--help`.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, String> {
        let mut config = Config::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                print!("{USAGE}");
                return Ok(None);
            }
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value (see --help)"))?;
            let number = |min: usize| -> Result<usize, String> {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n >= min)
                    .ok_or_else(|| format!("{flag}: expected an integer >= {min}, got {value:?}"))
            };
            match flag.as_str() {
                "--listen" => {
                    config.listen = value
                        .parse()
                        .map_err(|_| format!("--listen: not an address: {value}"))?;
                }
                "--server" => config.server = value.clone(),
                "--workers" => config.workers = number(0)?,
                "--max-connections" => config.max_connections = number(1)?,
                "--max-header-bytes" => config.max_head = number(256)?,
                "--max-body-bytes" => config.max_body = number(0)?,
                "--max-pipeline" => config.max_pipeline = number(1)?,
                "--queue" => config.queue = number(1)?,
                "--store-timeout-ms" => {
                    config.store_timeout = Duration::from_millis(number(1)? as u64);
                }
                "--idle-timeout-secs" => {
                    config.idle_timeout = Duration::from_secs(number(1)? as u64);
                }
                _ => return Err(format!("unknown option {flag} (see --help)")),
            }
        }
        Ok(Some(config))
    }
}

/// A request handed to a worker.
struct Job {
    conn: Token,
    seq: u64,
    close: bool,
    request: http::Request,
}

/// A worker's answer: the rendered response for `conn`'s request `seq`.
struct Done {
    conn: Token,
    seq: u64,
    bytes: Vec<u8>,
    close: bool,
}

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Read in chunks of this size.
const READ_CHUNK: usize = 16 * 1024;
/// After the last response of a closing connection, input is read and dropped (so the peer gets
/// our answer rather than a reset for unread bytes) for at most this long and this much.
const DRAIN_TIME: Duration = Duration::from_secs(2);
const DRAIN_BYTES: usize = 256 * 1024;
/// How often idle and draining connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    /// Sequence number of the next parsed request.
    next_seq: u64,
    /// Sequence number of the next response to write.
    write_seq: u64,
    /// Responses that arrived before an earlier one (pipelining keeps order).
    ready: BTreeMap<u64, (Vec<u8>, bool)>,
    /// No more requests are parsed (an error or `Connection: close`); close once written.
    closing: bool,
    /// The peer closed its side.
    eof: bool,
    /// Everything is written and our side is shut down; input is read and dropped until the
    /// peer closes (bounded by `DRAIN_TIME` and `DRAIN_BYTES`).
    draining: bool,
    drained: usize,
    /// The last time bytes came in or went out.
    last_active: Instant,
    /// `100 Continue` was sent for the request being received.
    continued: bool,
}

/// Runs the gateway until the process is killed.
pub fn run(config: Config) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(config.listen)?;
    let local = listener.local_addr()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let metrics = Arc::new(Metrics::default());
    let done: Arc<Mutex<Vec<Done>>> = Arc::new(Mutex::new(Vec::new()));
    let (jobs_tx, jobs_rx) = sync_channel::<Job>(config.queue);
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    for index in 0..config.workers {
        let jobs = jobs_rx.clone();
        let done = done.clone();
        let waker = waker.clone();
        let metrics = metrics.clone();
        let server = config.server.clone();
        let timeout = config.store_timeout;
        std::thread::Builder::new()
            .name(format!("cerializer-worker-{index}"))
            .spawn(move || worker(jobs, done, waker, metrics, server, timeout))?;
    }
    eprintln!(
        "piccolo-cerializer {} listening on {local} store={} workers={} max_connections={} \
         max_header_bytes={} max_body_bytes={} max_pipeline={} queue={} pid={}",
        env!("CARGO_PKG_VERSION"),
        config.server,
        config.workers,
        config.max_connections,
        config.max_head,
        config.max_body,
        config.max_pipeline,
        config.queue,
        std::process::id()
    );
    let (config_workers, server, store_timeout) =
        (config.workers, config.server.clone(), config.store_timeout);
    let mut reactor = Reactor {
        config,
        conns: HashMap::new(),
        next_token: 2,
        dispatch: if config_workers == 0 {
            Dispatch::Inline(Box::new(backend::Store::new(
                server,
                store_timeout,
                metrics.clone(),
            )))
        } else {
            Dispatch::Pool(jobs_tx)
        },
        metrics,
    };
    let mut events = Events::with_capacity(256);
    let mut finished = Vec::new();
    let mut last_sweep = Instant::now();
    loop {
        if let Err(error) = poll.poll(&mut events, Some(SWEEP_EVERY)) {
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => reactor.accept(&listener, &poll)?,
                WAKER => {}
                token => reactor.drive(token, &poll),
            }
        }
        std::mem::swap(
            &mut finished,
            &mut *done.lock().unwrap_or_else(|e| e.into_inner()),
        );
        for answer in finished.drain(..) {
            if let Some(conn) = reactor.conns.get_mut(&answer.conn) {
                conn.ready.insert(answer.seq, (answer.bytes, answer.close));
                reactor.drive(answer.conn, &poll);
            }
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            reactor.sweep(&poll);
        }
    }
}

fn worker(
    jobs: Arc<Mutex<Receiver<Job>>>,
    done: Arc<Mutex<Vec<Done>>>,
    waker: Arc<Waker>,
    metrics: Arc<Metrics>,
    server: String,
    timeout: Duration,
) {
    let mut store = backend::Store::new(server, timeout, metrics.clone());
    store.warm_up();
    loop {
        let job = {
            let receiver = jobs.lock().unwrap_or_else(|e| e.into_inner());
            receiver.recv()
        };
        let Ok(job) = job else { return };
        let bytes = answer(&mut store, &job, &metrics);
        done.lock().unwrap_or_else(|e| e.into_inner()).push(Done {
            conn: job.conn,
            seq: job.seq,
            bytes,
            close: job.close,
        });
        let _ = waker.wake();
    }
}

/// Runs one job and renders its response.
fn answer(store: &mut backend::Store, job: &Job, metrics: &Metrics) -> Vec<u8> {
    let (route, response) = api::handle(store, &job.request, metrics);
    metrics.record(route, response.status, job.request.started.elapsed());
    let mut bytes = Vec::with_capacity(response.body.len() + 160);
    response.render(job.close, &mut bytes);
    bytes
}

/// Where parsed requests go.
enum Dispatch {
    /// To the worker pool.
    Pool(SyncSender<Job>),
    /// Answered on the reactor thread (`--workers 0`).
    Inline(Box<backend::Store>),
}

struct Reactor {
    config: Config,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    dispatch: Dispatch,
    metrics: Arc<Metrics>,
}

impl Reactor {
    fn accept(&mut self, listener: &TcpListener, poll: &Poll) -> io::Result<()> {
        loop {
            let (mut stream, _) = match listener.accept() {
                Ok(pair) => pair,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // Out of descriptors and the like: drop this one, keep serving.
                    eprintln!("piccolo-cerializer: accept: {error}");
                    return Ok(());
                }
            };
            if self.conns.len() >= self.config.max_connections {
                self.metrics.connections_refused.fetch_add(1, Relaxed);
                let mut bytes = Vec::new();
                Response::error(
                    503,
                    "too_many_connections",
                    "the connection limit is reached",
                )
                .render(true, &mut bytes);
                let _ = stream.write(&bytes);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let token = Token(self.next_token);
            self.next_token += 1;
            if let Err(error) = poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                eprintln!("piccolo-cerializer: register: {error}");
                continue;
            }
            self.metrics.connections_open.fetch_add(1, Relaxed);
            self.metrics.connections_total.fetch_add(1, Relaxed);
            self.conns.insert(
                token,
                Conn {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    written: 0,
                    next_seq: 0,
                    write_seq: 0,
                    ready: BTreeMap::new(),
                    closing: false,
                    eof: false,
                    draining: false,
                    drained: 0,
                    last_active: Instant::now(),
                    continued: false,
                },
            );
        }
    }

    /// Closes connections idle beyond the limit (nothing in flight) and draining ones past
    /// `DRAIN_TIME`.
    fn sweep(&mut self, poll: &Poll) {
        let idle_timeout = self.config.idle_timeout;
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, conn)| {
                let quiet = conn.last_active.elapsed();
                if conn.draining {
                    quiet >= DRAIN_TIME
                } else {
                    conn.next_seq == conn.write_seq
                        && conn.output.is_empty()
                        && quiet >= idle_timeout
                }
            })
            .map(|(token, _)| *token)
            .collect();
        for token in expired {
            self.close(token, poll);
        }
    }

    fn close(&mut self, token: Token, poll: &Poll) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = poll.registry().deregister(&mut conn.stream);
            self.metrics.connections_open.fetch_sub(1, Relaxed);
        }
    }

    /// Does everything a connection allows now: read, parse and dispatch, write answers in
    /// order. Closes it when done or broken.
    fn drive(&mut self, token: Token, poll: &Poll) {
        let keep = match self.conns.get_mut(&token) {
            None => return,
            Some(conn) => step(conn, token, &self.config, &mut self.dispatch, &self.metrics),
        };
        if !keep {
            self.close(token, poll);
        }
    }
}

/// One pass over a connection; false when it should be closed.
fn step(
    conn: &mut Conn,
    token: Token,
    config: &Config,
    dispatch: &mut Dispatch,
    metrics: &Metrics,
) -> bool {
    let limits = Limits {
        max_head: config.max_head,
        max_body: config.max_body,
    };
    let buffer_limit = config.max_head + config.max_body + READ_CHUNK;
    if conn.draining {
        return drain(conn);
    }
    loop {
        let mut progress = false;
        // Parse and dispatch what is buffered, within the pipelining bound.
        while !conn.closing && (conn.next_seq - conn.write_seq) < config.max_pipeline as u64 {
            match http::parse(&conn.input, limits) {
                Parsed::Partial { expect_continue } => {
                    if expect_continue && !conn.continued && conn.next_seq == conn.write_seq {
                        conn.output
                            .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        conn.continued = true;
                        progress = true;
                    }
                    break;
                }
                Parsed::Invalid {
                    status,
                    code,
                    message,
                } => {
                    let seq = conn.next_seq;
                    conn.next_seq += 1;
                    conn.closing = true;
                    conn.input.clear();
                    let mut bytes = Vec::new();
                    Response::error(status, code, message).render(true, &mut bytes);
                    metrics.record(Route::Other, status, Duration::ZERO);
                    conn.ready.insert(seq, (bytes, true));
                    progress = true;
                }
                Parsed::Complete {
                    request,
                    len,
                    close,
                } => {
                    conn.input.drain(..len);
                    conn.continued = false;
                    let seq = conn.next_seq;
                    conn.next_seq += 1;
                    if close {
                        conn.closing = true;
                    }
                    progress = true;
                    let job = Job {
                        conn: token,
                        seq,
                        close,
                        request,
                    };
                    let jobs = match dispatch {
                        Dispatch::Pool(jobs) => jobs,
                        Dispatch::Inline(store) => {
                            let bytes = answer(store, &job, metrics);
                            conn.ready.insert(seq, (bytes, close));
                            continue;
                        }
                    };
                    match jobs.try_send(job) {
                        Ok(()) => {}
                        Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                            metrics.busy_rejections.fetch_add(1, Relaxed);
                            metrics.record(Route::Other, 503, Duration::ZERO);
                            let mut bytes = Vec::new();
                            Response::error(503, "busy", "the gateway's queue is full")
                                .header("Retry-After", "1")
                                .render(job.close, &mut bytes);
                            conn.ready.insert(seq, (bytes, job.close));
                        }
                    }
                }
            }
        }
        // Move answers that are next in order to the output.
        while let Some(entry) = conn.ready.first_entry() {
            if *entry.key() != conn.write_seq {
                break;
            }
            let (bytes, close) = entry.remove();
            conn.output.extend_from_slice(&bytes);
            conn.write_seq += 1;
            progress = true;
            if close {
                conn.closing = true;
                conn.ready.clear();
                conn.next_seq = conn.write_seq;
                break;
            }
        }
        // Write.
        while conn.written < conn.output.len() {
            match conn.stream.write(&conn.output[conn.written..]) {
                Ok(0) => return false,
                Ok(n) => {
                    conn.written += n;
                    conn.last_active = Instant::now();
                    progress = true;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if conn.written == conn.output.len() {
            conn.output.clear();
            conn.written = 0;
        }
        let idle = conn.next_seq == conn.write_seq && conn.output.is_empty();
        if conn.closing && idle {
            // Send FIN, then drop what the peer still sends until it closes: closing with
            // unread input would reset the connection and could destroy our last answer.
            let _ = conn.stream.shutdown(std::net::Shutdown::Write);
            conn.draining = true;
            conn.input = Vec::new();
            return drain(conn);
        }
        if conn.eof && idle {
            return false;
        }
        // Read, unless closing, bounded by the buffer limit.
        if !conn.closing && !conn.eof && conn.input.len() < buffer_limit {
            let old = conn.input.len();
            conn.input.resize(old + READ_CHUNK, 0);
            let result = conn.stream.read(&mut conn.input[old..]);
            match result {
                Ok(0) => {
                    conn.input.truncate(old);
                    conn.eof = true;
                    progress = true;
                }
                Ok(n) => {
                    conn.input.truncate(old + n);
                    conn.last_active = Instant::now();
                    progress = true;
                }
                Err(error) => {
                    conn.input.truncate(old);
                    match error.kind() {
                        io::ErrorKind::WouldBlock => {}
                        io::ErrorKind::Interrupted => progress = true,
                        _ => return false,
                    }
                }
            }
        }
        if !progress {
            return true;
        }
    }
}

/// Reads and drops input of a draining connection; false once it should be closed.
fn drain(conn: &mut Conn) -> bool {
    let mut scratch = [0u8; 4096];
    loop {
        match conn.stream.read(&mut scratch) {
            Ok(0) => return false,
            Ok(n) => {
                conn.drained += n;
                if conn.drained > DRAIN_BYTES {
                    return false;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
