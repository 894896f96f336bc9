//! What a connection sends ([`Source`]) and how an answer is counted and checked ([`record`]),
//! for both protocols; and the RESP side: one OS thread per `--threads`, each driving its share
//! of the connections with a mio poll (non-blocking sockets, edge-triggered): 50 connections on
//! 2 threads need no 50 threads.
//!
//! Each connection keeps up to `--pipeline` requests in flight. After its replies are read it
//! tops the pipeline up again (with `--batch`: only once all are in) and writes the new requests
//! in one `write`. A request's latency
//! runs from just before it is encoded (one clock read per batch) to just after the read that
//! completed its reply (one clock read per `read`).
//!
//! `--verify`: each connection only uses the keys `index % connections == its number` (see
//! `workload::KeyChooser`), and counts per key how many SETs it has sent. The server answers a
//! connection in order and no other connection writes those keys, so a GET must return the value
//! of the version current when the GET was sent: SETs sent before it on the same connection are
//! applied before it, SETs sent after are applied after. Pipelining does not weaken this.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::Barrier;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::args::{Config, Stop};
use crate::report::{Progress, Stats};
use crate::resp::{self, Reply};
use crate::rng::Rng;
use crate::workload::{KeyChooser, Mix, Op, Values};

/// The read buffer starts at this size and doubles (up to the largest reply) when a reply does
/// not fit.
const READ_BUFFER_BYTES: usize = 64 * 1024;
const MAX_READ_BUFFER_BYTES: usize = (512 << 20) + READ_BUFFER_BYTES;
/// How long one poll waits, so that the stall timeout is noticed.
const POLL_TICK: Duration = Duration::from_millis(50);
/// Bytes of a wrong answer quoted in a failure message.
const QUOTE_BYTES: usize = 40;

/// What every thread reads.
pub struct Shared {
    pub config: Config,
    pub values: Values,
    pub progress: Progress,
}

/// A request in flight.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub op: Op,
    pub key: u64,
    /// SET: the version written. GET under `--verify`: the version the answer must carry
    /// (0: this run has not written the key).
    pub version: u64,
    pub sent: Instant,
    pub measured: bool,
}

/// The times of one thread's run.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Requests sent from here on are measured (start + warmup).
    pub measure_from: Instant,
    /// `--duration`: no request is sent from here on.
    pub end: Option<Instant>,
}

impl Phase {
    /// The phase of a run that starts sending at `start`.
    pub fn starting(config: &Config, start: Instant) -> Phase {
        let measure_from = start + config.warmup;
        Phase {
            measure_from,
            end: match config.stop {
                Stop::Duration(time) => Some(measure_from + time),
                Stop::Requests(_) => None,
            },
        }
    }
}

/// What one connection sends: its generator, key chooser, mix, budget and (`--verify`) the
/// versions of its keys. The same for every protocol.
pub struct Source {
    rng: Rng,
    keys: KeyChooser,
    mix: Mix,
    verify: bool,
    /// `--verify`: SETs sent per owned key (slot = key / connections).
    versions: Vec<u32>,
    /// Requests made: the version of values when not verifying.
    made: u64,
    /// `--requests`: measured requests this connection still has to send.
    budget: u64,
}

impl Source {
    pub fn new(config: &Config, number: usize) -> Source {
        let keys = KeyChooser::new(config, number);
        let budget = match config.stop {
            Stop::Requests(total) => {
                let connections = config.connections as u64;
                total / connections + u64::from((number as u64) < total % connections)
            }
            Stop::Duration(_) => 0,
        };
        Source {
            rng: Rng::new(config.seed, number as u64),
            versions: if config.verify {
                vec![0; keys.owned_keys()]
            } else {
                Vec::new()
            },
            keys,
            mix: Mix::new(config),
            verify: config.verify,
            made: 0,
            budget,
        }
    }

    /// The next request to send at `now`, or `None` when this connection has sent all it
    /// should (the budget is spent, or the duration is over).
    pub fn next(&mut self, now: Instant, phase: &Phase) -> Option<Pending> {
        let measured = if now < phase.measure_from {
            false
        } else {
            match phase.end {
                Some(end) if now >= end => return None,
                Some(_) => true,
                None => {
                    if self.budget == 0 {
                        return None;
                    }
                    self.budget -= 1;
                    true
                }
            }
        };
        let op = self.mix.next(&mut self.rng);
        let key = self.keys.next(&mut self.rng);
        let version = match (op, self.verify) {
            (Op::Set, true) => {
                let slot = &mut self.versions[self.keys.slot(key)];
                *slot = slot.checked_add(1).unwrap_or(1);
                u64::from(*slot)
            }
            (Op::Get, true) => u64::from(self.versions[self.keys.slot(key)]),
            (Op::Set, false) => self.made,
            (Op::Get, false) => 0,
        };
        self.made += 1;
        Some(Pending {
            op,
            key,
            version,
            sent: now,
            measured,
        })
    }

    /// Whether this connection has nothing more to send at `now`.
    pub fn exhausted(&self, now: Instant, phase: &Phase) -> bool {
        now >= phase.measure_from
            && match phase.end {
                Some(end) => now >= end,
                None => self.budget == 0,
            }
    }
}

/// An answer, whatever the protocol.
#[derive(Debug)]
pub enum Answer<'a> {
    /// A SET was done.
    Stored,
    /// A GET found this value.
    Value(&'a [u8]),
    /// A GET found nothing.
    Missing,
    /// The server refused the request.
    Refused(String),
    /// An answer that does not fit the request.
    Unexpected(String),
}

/// Counts one answer, checks it under `--verify`, and records its latency if measured.
pub fn record(
    shared: &Shared,
    stats: &mut Stats,
    scratch: &mut Vec<u8>,
    pending: &Pending,
    answer: Answer<'_>,
    now: Instant,
) {
    let config = &shared.config;
    let key_text = || {
        let mut key = Vec::new();
        crate::workload::write_key(&mut key, config.key_prefix.as_bytes(), pending.key);
        String::from_utf8_lossy(&key).into_owned()
    };
    let failed = |stats: &mut Stats, message: String| {
        stats.errors += 1;
        shared.progress.errors.fetch_add(1, Ordering::Relaxed);
        stats.note(message);
    };
    match (pending.op, answer) {
        (Op::Set, Answer::Stored) => {}
        (Op::Get, answer @ (Answer::Value(_) | Answer::Missing)) => {
            let got = match answer {
                Answer::Value(bytes) => Some(bytes),
                _ => None,
            };
            if pending.measured {
                match got {
                    Some(_) => stats.hits += 1,
                    None => stats.misses += 1,
                }
            }
            if config.verify {
                if pending.version == 0 {
                    stats.verify_unchecked += 1;
                } else {
                    stats.verify_checked += 1;
                    let right = got.is_some_and(|got| {
                        shared
                            .values
                            .matches(pending.key, pending.version, got, scratch)
                    });
                    if !right {
                        stats.verify_failures += 1;
                        shared.progress.errors.fetch_add(1, Ordering::Relaxed);
                        stats.note(format!(
                            "verify: GET {} should return version {} ({} bytes), got {}",
                            key_text(),
                            pending.version,
                            shared.values.len(pending.key, pending.version),
                            quote(got)
                        ));
                    }
                }
            }
        }
        (op, Answer::Refused(message)) => failed(
            stats,
            format!("{op:?} {}: error reply {message:?}", key_text()),
        ),
        (op, Answer::Unexpected(what)) => failed(
            stats,
            format!("{op:?} {}: unexpected reply {what}", key_text()),
        ),
        (op, other) => failed(
            stats,
            format!("{op:?} {}: unexpected reply {other:?}", key_text()),
        ),
    }
    if pending.measured {
        stats.requests += 1;
        match pending.op {
            Op::Set => stats.sets += 1,
            Op::Get => stats.gets += 1,
        }
        let latency_ns = now.saturating_duration_since(pending.sent).as_nanos();
        stats
            .latency_ns
            .saturating_record(u64::try_from(latency_ns).unwrap_or(u64::MAX).max(1));
        stats.last_reply = Some(now);
    }
    shared.progress.replies.fetch_add(1, Ordering::Relaxed);
}

struct Conn {
    number: usize,
    stream: TcpStream,
    out: Vec<u8>,
    out_at: usize,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    inflight: VecDeque<Pending>,
    source: Source,
    done: bool,
    scratch: Vec<u8>,
}

impl Conn {
    fn new(shared: &Shared, number: usize, stream: TcpStream) -> Conn {
        let config = &shared.config;
        Conn {
            number,
            stream,
            out: Vec::with_capacity(4096),
            out_at: 0,
            input: vec![0; READ_BUFFER_BYTES],
            in_start: 0,
            in_end: 0,
            inflight: VecDeque::with_capacity(config.pipeline),
            source: Source::new(config, number),
            done: false,
            scratch: Vec::new(),
        }
    }

    /// Nothing more to send and nothing in flight.
    fn finished(&self, now: Instant, phase: &Phase) -> bool {
        self.source.exhausted(now, phase)
            && self.inflight.is_empty()
            && self.out_at == self.out.len()
    }

    /// Tops the pipeline up with new requests.
    fn fill(&mut self, shared: &Shared, phase: &Phase) {
        let config = &shared.config;
        let prefix = config.key_prefix.as_bytes();
        if config.batch && !self.inflight.is_empty() {
            return;
        }
        let now = Instant::now();
        while self.inflight.len() < config.pipeline {
            let Some(pending) = self.source.next(now, phase) else {
                break;
            };
            match pending.op {
                Op::Set => resp::encode_set(
                    &mut self.out,
                    prefix,
                    pending.key,
                    &shared.values,
                    pending.version,
                ),
                Op::Get => resp::encode_get(&mut self.out, prefix, pending.key),
            }
            self.inflight.push_back(pending);
        }
    }

    /// Writes what is buffered until done or the socket is full.
    fn flush(&mut self) -> Result<(), String> {
        while self.out_at < self.out.len() {
            match self.stream.write(&self.out[self.out_at..]) {
                Ok(0) => return Err("the server stopped accepting data".into()),
                Ok(written) => self.out_at += written,
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(format!("write: {error}")),
            }
        }
        self.out.clear();
        self.out_at = 0;
        Ok(())
    }

    /// Reads until the socket is empty, handling every whole reply.
    fn read(&mut self, shared: &Shared, stats: &mut Stats) -> Result<(), String> {
        loop {
            if self.in_end == self.input.len() {
                if self.in_start > 0 {
                    self.input.copy_within(self.in_start..self.in_end, 0);
                    self.in_end -= self.in_start;
                    self.in_start = 0;
                } else if self.input.len() < MAX_READ_BUFFER_BYTES {
                    let bigger = (self.input.len() * 2).min(MAX_READ_BUFFER_BYTES);
                    self.input.resize(bigger, 0);
                } else {
                    return Err("a reply larger than the read buffer's limit".into());
                }
            }
            let space = self.input.len() - self.in_end;
            match self.stream.read(&mut self.input[self.in_end..]) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(count) => {
                    self.in_end += count;
                    self.handle_replies(Instant::now(), shared, stats)?;
                    if count < space {
                        // A short read emptied the socket; with edge-triggered epoll, bytes that
                        // arrive later raise a new event (tokio relies on the same rule). This
                        // saves the read that would only say WouldBlock: one syscall per batch.
                        return Ok(());
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(format!("read: {error}")),
            }
        }
    }

    fn handle_replies(
        &mut self,
        now: Instant,
        shared: &Shared,
        stats: &mut Stats,
    ) -> Result<(), String> {
        while self.in_start < self.in_end {
            let Some((reply, used)) = resp::parse_reply(&self.input[self.in_start..self.in_end])?
            else {
                break;
            };
            let pending = self
                .inflight
                .pop_front()
                .ok_or("a reply to no request (the server sent more replies than requests)")?;
            let answer = match (pending.op, reply) {
                (Op::Set, Reply::Simple(b"OK")) => Answer::Stored,
                (Op::Get, Reply::Bulk(Some(bytes))) => Answer::Value(bytes),
                (Op::Get, Reply::Bulk(None)) => Answer::Missing,
                (_, Reply::Error(message)) => {
                    Answer::Refused(String::from_utf8_lossy(message).into_owned())
                }
                (_, other) => Answer::Unexpected(format!("{other:?}")),
            };
            record(shared, stats, &mut self.scratch, &pending, answer, now);
            self.in_start += used;
        }
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        }
        Ok(())
    }

    /// Gives up on this connection: what is in flight counts as failed.
    fn fail(&mut self, why: String, stats: &mut Stats, progress: &Progress) {
        connection_failed(self.number, why, self.inflight.len(), stats, progress);
        self.inflight.clear();
        self.done = true;
    }
}

/// Counts a connection given up on: what it had in flight counts as failed.
pub fn connection_failed(
    number: usize,
    why: String,
    in_flight: usize,
    stats: &mut Stats,
    progress: &Progress,
) {
    let lost = in_flight as u64;
    stats.errors += lost;
    stats.failed_connections += 1;
    progress.errors.fetch_add(lost, Ordering::Relaxed);
    stats.note(format!(
        "connection {number}: {why} ({lost} requests in flight lost)"
    ));
}

fn quote(answer: Option<&[u8]>) -> String {
    match answer {
        None => "nil".into(),
        Some(bytes) => {
            let shown = &bytes[..bytes.len().min(QUOTE_BYTES)];
            format!(
                "{} bytes {:?}{}",
                bytes.len(),
                String::from_utf8_lossy(shown),
                if bytes.len() > QUOTE_BYTES { "..." } else { "" }
            )
        }
    }
}

/// Opens a connection (blocking connect, then non-blocking for mio).
fn connect(config: &Config) -> Result<TcpStream, String> {
    let target = format!("{}:{}", config.host, config.port);
    let addrs: Vec<_> = target
        .to_socket_addrs()
        .map_err(|error| format!("resolve {target}: {error}"))?
        .collect();
    let mut last_error = format!("{target} resolves to no address");
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, config.timeout) {
            Ok(stream) => {
                stream
                    .set_nodelay(true)
                    .and_then(|()| stream.set_nonblocking(true))
                    .map_err(|error| format!("socket options: {error}"))?;
                return Ok(TcpStream::from_std(stream));
            }
            Err(error) => last_error = format!("connect to {addr}: {error}"),
        }
    }
    Err(last_error)
}

/// Runs connections `numbers` to the end. Connects first, then waits at `barrier` (shared with
/// the other threads and the main thread) so that every thread starts sending together.
pub fn run_thread(shared: &Shared, numbers: &[usize], barrier: &Barrier) -> Result<Stats, String> {
    let setup = (|| -> Result<(Poll, Vec<Conn>), String> {
        let poll = Poll::new().map_err(|error| format!("poll: {error}"))?;
        let mut conns = Vec::with_capacity(numbers.len());
        for (index, &number) in numbers.iter().enumerate() {
            let mut stream = connect(&shared.config)?;
            poll.registry()
                .register(
                    &mut stream,
                    Token(index),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|error| format!("register: {error}"))?;
            conns.push(Conn::new(shared, number, stream));
        }
        Ok((poll, conns))
    })();
    // Every thread reaches the barrier, even one that failed to connect, so none waits forever.
    barrier.wait();
    let (mut poll, mut conns) = setup?;

    let phase = Phase::starting(&shared.config, Instant::now());
    let mut stats = Stats::new();
    stats.measure_from = Some(phase.measure_from);

    let mut live = conns.len();
    for conn in &mut conns {
        conn.fill(shared, &phase);
        if let Err(why) = conn.flush() {
            conn.fail(why, &mut stats, &shared.progress);
        } else if conn.finished(Instant::now(), &phase) {
            conn.done = true;
        }
        if conn.done {
            live -= 1;
        }
    }

    let mut events = Events::with_capacity(1024);
    let mut last_activity = Instant::now();
    while live > 0 {
        if let Err(error) = poll.poll(&mut events, Some(POLL_TICK)) {
            if error.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {error}"));
        }
        if !events.is_empty() {
            last_activity = Instant::now();
        }
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            if conn.done {
                continue;
            }
            let mut step = || -> Result<(), String> {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    conn.read(shared, &mut stats)?;
                }
                conn.fill(shared, &phase);
                conn.flush()
            };
            if let Err(why) = step() {
                conn.fail(why, &mut stats, &shared.progress);
            } else if conn.finished(Instant::now(), &phase) {
                conn.done = true;
            }
            if conn.done {
                let _ = poll.registry().deregister(&mut conn.stream);
                live -= 1;
            }
        }
        let quiet_for = last_activity.elapsed();
        if live > 0 && quiet_for >= shared.config.timeout {
            for conn in conns.iter_mut().filter(|conn| !conn.done) {
                conn.fail(
                    format!("no reply for {:.1} s", quiet_for.as_secs_f64()),
                    &mut stats,
                    &shared.progress,
                );
                live -= 1;
            }
        }
    }
    Ok(stats)
}
