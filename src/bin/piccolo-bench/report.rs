//! Counting and printing: per-thread [`Stats`] merged at the end, the live progress line, the
//! human summary and the `--json` object.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::args::{Config, Stop};

/// Failures described in the output, at most (the counts are always complete).
pub const MAX_MESSAGES: usize = 8;
/// The histogram's range: 1 ns to 100 s, 3 significant digits.
const LATENCY_MAX_NS: u64 = 100_000_000_000;

/// What one thread counted. Requests and latency cover the measured part; errors and checks
/// cover the whole run, warmup included (a wrong answer is wrong whenever it comes).
#[derive(Debug, Clone)]
pub struct Stats {
    pub latency_ns: Histogram<u64>,
    pub requests: u64,
    pub sets: u64,
    pub gets: u64,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub verify_checked: u64,
    pub verify_unchecked: u64,
    pub verify_failures: u64,
    pub failed_connections: u64,
    pub messages: Vec<String>,
    pub measure_from: Option<Instant>,
    pub last_reply: Option<Instant>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            latency_ns: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
                .expect("valid histogram bounds"),
            requests: 0,
            sets: 0,
            gets: 0,
            hits: 0,
            misses: 0,
            errors: 0,
            verify_checked: 0,
            verify_unchecked: 0,
            verify_failures: 0,
            failed_connections: 0,
            messages: Vec::new(),
            measure_from: None,
            last_reply: None,
        }
    }

    pub fn note(&mut self, message: String) {
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(message);
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms with the same bounds");
        self.requests += other.requests;
        self.sets += other.sets;
        self.gets += other.gets;
        self.hits += other.hits;
        self.misses += other.misses;
        self.errors += other.errors;
        self.verify_checked += other.verify_checked;
        self.verify_unchecked += other.verify_unchecked;
        self.verify_failures += other.verify_failures;
        self.failed_connections += other.failed_connections;
        for message in &other.messages {
            self.note(message.clone());
        }
        self.measure_from = min_instant(self.measure_from, other.measure_from);
        self.last_reply = match (self.last_reply, other.last_reply) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// From the first thread's end of warmup to the last measured reply.
    pub fn measured_time(&self) -> Duration {
        match (self.measure_from, self.last_reply) {
            (Some(from), Some(last)) => last.saturating_duration_since(from),
            _ => Duration::ZERO,
        }
    }

    pub fn throughput_per_sec(&self) -> f64 {
        let secs = self.measured_time().as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    pub fn failed(&self) -> bool {
        self.errors > 0 || self.verify_failures > 0 || self.failed_connections > 0
    }
}

fn min_instant(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Counters the threads bump (relaxed: they are only read for the progress line) and the main
/// thread reads.
#[derive(Debug, Default)]
pub struct Progress {
    /// Replies received, warmup included. Written by the driver threads.
    pub replies: AtomicU64,
    /// Errors and failed checks so far. Written by the driver threads.
    pub errors: AtomicU64,
}

/// Redraws one status line on stderr (only called when stderr is a terminal).
pub struct ProgressLine {
    started: Instant,
    warmup: Duration,
    last_at: Instant,
    last_replies: u64,
}

impl ProgressLine {
    pub fn new(warmup: Duration) -> ProgressLine {
        let now = Instant::now();
        ProgressLine {
            started: now,
            warmup,
            last_at: now,
            last_replies: 0,
        }
    }

    pub fn draw(&mut self, progress: &Progress) {
        let now = Instant::now();
        let replies = progress.replies.load(Ordering::Relaxed);
        let errors = progress.errors.load(Ordering::Relaxed);
        let interval = now.duration_since(self.last_at).as_secs_f64();
        let rate = if interval > 0.0 {
            (replies - self.last_replies) as f64 / interval
        } else {
            0.0
        };
        let elapsed = now.duration_since(self.started);
        let phase = if elapsed < self.warmup {
            "warmup"
        } else {
            "run"
        };
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K{phase:>6} {:7.1}s  {:>12} replies  {:>10.0} req/s  {errors} errors",
            elapsed.as_secs_f64(),
            replies,
            rate
        );
        self.last_at = now;
        self.last_replies = replies;
    }

    pub fn clear(&self) {
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
}

/// CPU time (user + system) this process has used so far, from `getrusage(RUSAGE_SELF)`.
pub fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory the size of a `rusage`, which `getrusage` fills;
    // RUSAGE_SELF is a valid `who`.
    let result = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if result != 0 {
        return Duration::ZERO;
    }
    // SAFETY: `getrusage` returned 0, so it wrote the whole struct (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    let micros = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// What the load generator itself cost: CPU per reply (warmup included) and cores kept busy
/// over the run. Cores busy near `--threads` means the generator, not the server, set the pace.
#[derive(Debug, Clone, Copy)]
pub struct ClientCost {
    pub cpu: Duration,
    pub wall: Duration,
    pub replies: u64,
}

impl ClientCost {
    pub fn cpu_us_per_request(&self) -> f64 {
        if self.replies == 0 {
            0.0
        } else {
            self.cpu.as_secs_f64() * 1e6 / self.replies as f64
        }
    }

    pub fn cores_busy(&self) -> f64 {
        let wall = self.wall.as_secs_f64();
        if wall > 0.0 {
            self.cpu.as_secs_f64() / wall
        } else {
            0.0
        }
    }
}

fn latency_us(stats: &Stats, quantile: f64) -> f64 {
    stats.latency_ns.value_at_quantile(quantile) as f64 / 1000.0
}

/// The summary for people.
pub fn print_human(config: &Config, stats: &Stats, cost: &ClientCost) {
    let stop = match config.stop {
        Stop::Requests(count) => format!("{count} requests"),
        Stop::Duration(time) => format!("{:.1} s", time.as_secs_f64()),
    };
    let values = if config.value_bytes_min == config.value_bytes_max {
        format!("{} B", config.value_bytes_min)
    } else {
        format!("{}-{} B", config.value_bytes_min, config.value_bytes_max)
    };
    println!(
        "piccolo-bench: {} {}:{}, {} connections on {} threads, pipeline {}, {stop}, \
         SET:GET {}:{}, {} keys {}, values {values}{}",
        config.protocol.name(),
        config.host,
        config.port,
        config.connections,
        config.threads,
        config.pipeline,
        config.set_weight,
        config.get_weight,
        config.keyspace,
        config.key_pattern.describe(),
        if config.verify { ", verified" } else { "" },
    );
    println!(
        "throughput  {:.0} requests/s ({} requests in {:.3} s; {} SET, {} GET: {} hits, {} misses)",
        stats.throughput_per_sec(),
        stats.requests,
        stats.measured_time().as_secs_f64(),
        stats.sets,
        stats.gets,
        stats.hits,
        stats.misses
    );
    println!(
        "latency us  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
        latency_us(stats, 0.5),
        latency_us(stats, 0.9),
        latency_us(stats, 0.99),
        latency_us(stats, 0.999),
        stats.latency_ns.max() as f64 / 1000.0,
        stats.latency_ns.mean() / 1000.0
    );
    println!(
        "client      {:.2} us CPU per request, {:.2} cores busy (of {} threads)",
        cost.cpu_us_per_request(),
        cost.cores_busy(),
        config.threads
    );
    println!(
        "errors      {} (failed connections: {})",
        stats.errors, stats.failed_connections
    );
    if config.verify {
        println!(
            "verify      {} GETs checked, {} of keys not yet written (unchecked), {} wrong",
            stats.verify_checked, stats.verify_unchecked, stats.verify_failures
        );
    }
}

/// The result as one JSON object (the perf scripts read this).
pub fn json(config: &Config, stats: &Stats, cost: &ClientCost) -> serde_json::Value {
    let (requests_asked, duration_asked_s) = match config.stop {
        Stop::Requests(count) => (Some(count), None),
        Stop::Duration(time) => (None, Some(time.as_secs_f64())),
    };
    serde_json::json!({
        "tool": "piccolo-bench",
        "protocol": config.protocol.name(),
        "host": config.host,
        "port": config.port,
        "connections": config.connections,
        "threads": config.threads,
        "pipeline": config.pipeline,
        "requests_asked": requests_asked,
        "duration_asked_s": duration_asked_s,
        "warmup_s": config.warmup.as_secs_f64(),
        "ratio": { "set": config.set_weight, "get": config.get_weight },
        "keyspace": config.keyspace,
        "key_pattern": config.key_pattern.describe(),
        "value_size": { "min": config.value_bytes_min, "max": config.value_bytes_max },
        "seed": config.seed,
        "requests": stats.requests,
        "sets": stats.sets,
        "gets": stats.gets,
        "hits": stats.hits,
        "misses": stats.misses,
        "errors": stats.errors,
        "failed_connections": stats.failed_connections,
        "elapsed_s": stats.measured_time().as_secs_f64(),
        "throughput_rps": stats.throughput_per_sec(),
        "latency_us": {
            "p50": latency_us(stats, 0.5),
            "p90": latency_us(stats, 0.9),
            "p99": latency_us(stats, 0.99),
            "p99_9": latency_us(stats, 0.999),
            "max": stats.latency_ns.max() as f64 / 1000.0,
            "mean": stats.latency_ns.mean() / 1000.0,
        },
        "client": {
            "cpu_s": cost.cpu.as_secs_f64(),
            "cpu_us_per_request": cost.cpu_us_per_request(),
            "cores_busy": cost.cores_busy(),
        },
        "verify": if config.verify {
            serde_json::json!({
                "checked": stats.verify_checked,
                "unchecked": stats.verify_unchecked,
                "failures": stats.verify_failures,
            })
        } else {
            serde_json::Value::Null
        },
        "messages": stats.messages,
    })
}
