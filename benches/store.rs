//! Store benchmark: memory per key, memory and latency under churn, ns per operation.
//!
//! ```text
//! cargo bench --bench store                     # all parts (about 5 minutes on 2 cores)
//! cargo bench --bench store -- memory           # (a) 1M keys key:0..key:999999, 32-byte values
//! cargo bench --bench store -- churn            # (b) 1M live keys, 20M overwrites of 16..512 B
//! cargo bench --bench store -- ops              # (c) ns per get/set/delete at 1K, 1M, 10M keys
//! cargo bench --bench store -- growth           # (d) 10M inserts from empty, time of each
//! cargo bench --bench store -- churn seg=256     # segment size in KiB (default 1024)
//! cargo bench --bench store -- churn writes=2000000 step=8192 garbage=10
//! cargo bench --bench store -- churn spare=0     # freed segments kept for reuse (default 2)
//! cargo bench --bench store -- ops keys=1000000  # ops at these key counts only (comma list)
//! cargo bench --bench store -- churn idle=64:32  # an idle moment after every 64 writes that
//!                                                # pre-faults up to 32 pages (churn, growth)
//! cargo bench --bench store -- churn passes=3    # the same writes 3 times: each write's
//!                                                # shortest time (filters the machine's noise)
//! ```
//!
//! Every part checks what it measures before it reports: the loaded keys read back with the
//! right values, the churned keys hold the last value written, the operations return what they
//! must. Figures are printed; nothing here asserts a time.

use std::hint::black_box;
use std::time::Instant;

use piccolo::store::{Config, MemoryStats, SetOptions, Shard, hash_key};

/// splitmix64: a small, good, seeded generator, so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions; it reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(4096) as usize
}

/// This thread's CPU time (user + system, so page faults taken by the kernel for the thread
/// count) in ns: `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, a real system call (no vDSO path).
fn thread_cpu_ns() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec; the clock id is supported on Linux.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(result, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    time.tv_sec as u64 * 1_000_000_000 + time.tv_nsec as u64
}

/// This thread's page faults and context switches so far (`getrusage(RUSAGE_THREAD)`).
#[derive(Clone, Copy, Default)]
struct ThreadUsage {
    minor_faults: i64,
    major_faults: i64,
    /// Switched out by the scheduler for another runnable task.
    involuntary_switches: i64,
    /// Gave up the CPU itself (blocked in the kernel, e.g. on a lock in mmap/munmap).
    voluntary_switches: i64,
}

fn thread_usage() -> ThreadUsage {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_THREAD is supported on Linux.
    let result = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if result != 0 {
        return ThreadUsage::default();
    }
    // SAFETY: getrusage returned 0, so it filled the struct (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    ThreadUsage {
        minor_faults: usage.ru_minflt,
        major_faults: usage.ru_majflt,
        involuntary_switches: usage.ru_nivcsw,
        voluntary_switches: usage.ru_nvcsw,
    }
}

fn key_of(i: u64, buffer: &mut Vec<u8>) {
    use std::io::Write;
    buffer.clear();
    write!(buffer, "key:{i}").expect("write to a Vec");
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

struct Options {
    parts: Vec<String>,
    segment_kib: usize,
    writes: u64,
    step_bytes: usize,
    garbage_percent: usize,
    spare_segments: usize,
    /// Key counts of the `ops` part.
    ops_keys: Vec<u64>,
    /// Idle moments between writes (churn, growth).
    idle: Idle,
    /// Identical passes of the churn part (each write's shortest time is reported).
    passes: u32,
}

fn parse_options() -> Options {
    let mut options = Options {
        parts: Vec::new(),
        segment_kib: 1024,
        writes: 20_000_000,
        step_bytes: 8 * 1024,
        garbage_percent: 20,
        spare_segments: Config::default().spare_segments,
        ops_keys: vec![1_000, 1_000_000, 10_000_000],
        idle: Idle { batch: 0, pages: 0 },
        passes: 1,
    };
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("seg=") {
            options.segment_kib = v.parse().expect("seg=KiB");
        } else if let Some(v) = arg.strip_prefix("writes=") {
            options.writes = v.parse().expect("writes=N");
        } else if let Some(v) = arg.strip_prefix("step=") {
            options.step_bytes = v.parse().expect("step=bytes");
        } else if let Some(v) = arg.strip_prefix("spare=") {
            options.spare_segments = v.parse().expect("spare=segments");
        } else if let Some(v) = arg.strip_prefix("keys=") {
            options.ops_keys = v
                .split(',')
                .map(|n| n.parse().expect("keys=N,N,..."))
                .collect();
        } else if let Some(v) = arg.strip_prefix("idle=") {
            let (batch, pages) = v.split_once(':').expect("idle=BATCH:PAGES");
            options.idle = Idle {
                batch: batch.parse().expect("idle=BATCH:PAGES"),
                pages: pages.parse().expect("idle=BATCH:PAGES"),
            };
        } else if let Some(v) = arg.strip_prefix("passes=") {
            options.passes = v.parse::<u32>().expect("passes=N").max(1);
        } else if let Some(v) = arg.strip_prefix("garbage=") {
            options.garbage_percent = v.parse().expect("garbage=percent");
        } else if !arg.starts_with('-') {
            options.parts.push(arg);
        }
    }
    if options.parts.is_empty() {
        options.parts = vec![
            "memory".into(),
            "churn".into(),
            "ops".into(),
            "growth".into(),
        ];
    }
    options
}

fn config(options: &Options) -> Config {
    let segment_bytes = options.segment_kib * 1024;
    Config {
        segment_bytes,
        large_record_bytes: segment_bytes / 8,
        cleaner_garbage_percent: options.garbage_percent,
        cleaner_min_garbage_bytes: 2 * segment_bytes,
        spare_segments: options.spare_segments,
        ..Config::default()
    }
}

fn print_memory(label: &str, stats: &MemoryStats, keys: usize) {
    let per_key = |bytes: usize| bytes as f64 / keys as f64;
    println!(
        "  {label}: total {:.1} MiB = {:.1} B/key (segments {:.1} B/key in {} segments, \
         table {:.1} B/key, index {:.2} B/key); live records {:.1} B/key, garbage {:.1} MiB, \
         unused {:.1} MiB",
        mib(stats.total_bytes()),
        per_key(stats.total_bytes()),
        per_key(stats.segment_bytes),
        stats.segments,
        per_key(stats.table_bytes),
        per_key(stats.index_bytes),
        per_key(stats.live_bytes),
        mib(stats.garbage_bytes),
        mib(stats.unused_bytes),
    );
}

// ----- (a) memory ----------------------------------------------------------------------------

fn memory(options: &Options) {
    println!("== memory: 1,000,000 keys key:0..key:999999 with 32-byte values");
    let n = 1_000_000u64;
    let rss_before = rss_bytes();
    let mut shard = Shard::new(config(options));
    let mut key = Vec::new();
    let mut value = [0u8; 32];
    for i in 0..n {
        key_of(i, &mut key);
        value[..8].copy_from_slice(&i.to_le_bytes());
        shard
            .set(hash_key(&key), &key, &value, SetOptions::default(), 0)
            .expect("set");
    }
    let rss_after = rss_bytes();
    for i in 0..n {
        key_of(i, &mut key);
        let got = shard.get(hash_key(&key), &key, 0).expect("loaded key");
        assert_eq!(got.bytes.len(), 32);
        assert_eq!(got.bytes[..8], i.to_le_bytes());
    }
    assert_eq!(shard.len(), n as usize);
    let stats = shard.memory();
    print_memory("shard", &stats, n as usize);
    println!(
        "  process RSS delta: {:.1} MiB = {:.1} B/key",
        mib(rss_after - rss_before),
        (rss_after - rss_before) as f64 / n as f64
    );
    // What an idle worker of the server does next: finish the table's migrations, then give
    // the allocator's free pages back (piccolo::server::worker::release_free_heap_memory).
    while shard.needs_cleaning() {
        shard.clean_step(1 << 20);
    }
    let rss_clean = rss_bytes();
    piccolo::server::worker::release_free_heap_memory();
    let rss_trimmed = rss_bytes();
    println!(
        "  process RSS delta once migrations end: {:.1} B/key; after the idle worker's \
         malloc_trim: {:.1} B/key",
        (rss_clean - rss_before) as f64 / n as f64,
        (rss_trimmed - rss_before) as f64 / n as f64
    );
    let raw: usize = (0..n).map(|i| format!("key:{i}").len() + 32).sum();
    println!(
        "  key + value bytes alone: {:.1} B/key",
        raw as f64 / n as f64
    );
    drop(shard);

    // The same load at 900,000 keys, just below the table's growth point (2^20 * 7/8).
    let n = 900_000u64;
    let mut shard = Shard::new(config(options));
    for i in 0..n {
        key_of(i, &mut key);
        shard
            .set(hash_key(&key), &key, &value, SetOptions::default(), 0)
            .expect("set");
    }
    print_memory("same load, 900,000 keys", &shard.memory(), n as usize);
    drop(shard);

    // Large values go back to the operating system when deleted and cleaned.
    let mut shard = Shard::new(config(options));
    let big = vec![7u8; 64 * 1024 * 1024];
    let rss_empty = rss_bytes();
    for i in 0..8u64 {
        key_of(i, &mut key);
        shard
            .set(hash_key(&key), &key, &big, SetOptions::default(), 0)
            .expect("set big");
    }
    let rss_full = rss_bytes();
    for i in 0..8u64 {
        key_of(i, &mut key);
        assert!(shard.delete(hash_key(&key), &key, 0));
    }
    while shard.needs_cleaning() {
        shard.clean_step(1 << 20);
    }
    let rss_freed = rss_bytes();
    println!(
        "  8 x 64 MiB values: RSS {:.0} MiB -> {:.0} MiB after set -> {:.0} MiB after delete + \
         clean ({} segments left)",
        mib(rss_empty),
        mib(rss_full),
        mib(rss_freed),
        shard.memory().segments
    );
}

// ----- (b) churn -----------------------------------------------------------------------------

/// Latency histogram: 20 ns buckets up to 400 µs, then one overflow bucket.
struct Histogram {
    buckets: Vec<u64>,
    max_ns: u64,
    count: u64,
}

const BUCKET_NS: u64 = 20;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: vec![0; 20_001],
            max_ns: 0,
            count: 0,
        }
    }

    fn record(&mut self, ns: u64) {
        let index = ((ns / BUCKET_NS) as usize).min(self.buckets.len() - 1);
        self.buckets[index] += 1;
        self.max_ns = self.max_ns.max(ns);
        self.count += 1;
    }

    fn quantile_ns(&self, q: f64) -> u64 {
        let target = (self.count as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= target {
                return (i as u64 + 1) * BUCKET_NS;
            }
        }
        self.max_ns
    }
}

fn value_for(key_index: u64, round: u64, len: usize, buffer: &mut [u8]) {
    let tag = (key_index ^ round.wrapping_mul(31)) as u8;
    buffer[..len].fill(tag);
    buffer[..8].copy_from_slice(&round.to_le_bytes());
}

fn churn(options: &Options) {
    let keys = 1_000_000u64;
    let writes = options.writes;
    println!(
        "== churn: {keys} live keys, {writes} random overwrites of 16..512-byte values; \
         segment {} KiB, clean step {} B, cleaner starts at {}% garbage, {} spare segments; {}; \
         {} pass(es) of the same writes",
        options.segment_kib,
        options.step_bytes,
        options.garbage_percent,
        options.spare_segments,
        options.idle.describe(),
        options.passes
    );
    // Each write's shortest wall time over the passes (see `passes=` in the module doc).
    let mut best = vec![u32::MAX; writes as usize];
    // In how many passes each write took over `SLOW_NS` of wall time.
    let mut slow_passes = vec![0u8; writes as usize];
    let mut slow_ops = std::collections::HashMap::new();
    for pass in 1..=options.passes {
        println!("  -- pass {pass}");
        churn_pass(options, &mut best, &mut slow_passes, &mut slow_ops);
    }
    if options.passes > 1 {
        report_replay(&best, &slow_passes, &slow_ops, options.passes);
    }
}

/// One pass of the churn part: load, churn, check, report. Every pass makes the same writes
/// (the generator is seeded the same way), so `best[round - 1]` keeps each write's shortest
/// wall time over the passes, and `slow_ops` what each write over `SLOW_NS` did (its work is
/// the same in every pass; faults and switches are those of the last pass it was slow in).
fn churn_pass(
    options: &Options,
    best: &mut [u32],
    slow_passes: &mut [u8],
    slow_by_round: &mut std::collections::HashMap<u64, SlowOp>,
) {
    let keys = 1_000_000u64;
    let writes = options.writes;
    let mut rng = Rng(42);
    let mut shard = Shard::new(config(options));
    let mut key = Vec::new();
    let mut value = vec![0u8; 512];
    // What each key should hold: (round of its last write, length).
    let mut expected: Vec<(u64, u16)> = vec![(0, 0); keys as usize];
    let mut raw_bytes: usize = 0;
    for i in 0..keys {
        let len = 16 + rng.below(497) as usize;
        key_of(i, &mut key);
        value_for(i, 0, len, &mut value);
        shard
            .set(
                hash_key(&key),
                &key,
                &value[..len],
                SetOptions::default(),
                0,
            )
            .expect("set");
        expected[i as usize] = (0, len as u16);
        raw_bytes += key.len() + len;
    }
    let loaded = shard.memory();
    print_memory("after load", &loaded, keys as usize);
    let rss_loaded = rss_bytes();

    // The probes around each write cost time of their own: measure them around nothing.
    let overhead = probe_overhead();
    println!(
        "  probe overhead (median of 200,000 empty probes): wall {} ns, thread CPU {} ns; \
         subtracted from every write below",
        overhead.wall_ns, overhead.cpu_ns
    );
    let mut wall = Histogram::new();
    let mut cpu = Histogram::new();
    let mut idle = IdleSteps::new();
    let mut peak_ratio: f64 = 0.0;
    let mut peak_total = 0usize;
    let mut clean_steps = 0u64;
    let mut slow_ops: Vec<SlowOp> = Vec::new();
    let steal_before = machine_steal_ms();
    let started = Instant::now();
    for round in 1..=writes {
        let i = rng.below(keys);
        let len = 16 + rng.below(497) as usize;
        key_of(i, &mut key);
        value_for(i, round, len, &mut value);
        let hash = hash_key(&key);
        let counters_before = shard.work_counters();
        let usage_before = thread_usage();
        let cpu_before = thread_cpu_ns();
        let wall_before = Instant::now();
        shard
            .set(hash, &key, &value[..len], SetOptions::default(), 0)
            .expect("set");
        let cleaned = shard.needs_cleaning();
        if cleaned {
            shard.clean_step(options.step_bytes);
        }
        let wall_after = Instant::now();
        let cpu_after = thread_cpu_ns();
        let usage_after = thread_usage();
        let wall_ns =
            ((wall_after - wall_before).as_nanos() as u64).saturating_sub(overhead.wall_ns);
        let cpu_ns = (cpu_after - cpu_before).saturating_sub(overhead.cpu_ns);
        clean_steps += u64::from(cleaned);
        wall.record(wall_ns);
        cpu.record(cpu_ns);
        note_pass(best, slow_passes, round as usize - 1, wall_ns);
        if wall_ns > SLOW_NS || cpu_ns > SLOW_NS {
            let counters_after = shard.work_counters();
            let op = SlowOp {
                round,
                wall_ns,
                cpu_ns,
                cleaned,
                bytes_moved: counters_after.cleaner_bytes_moved
                    - counters_before.cleaner_bytes_moved,
                segments_opened: counters_after.segments_opened - counters_before.segments_opened,
                segments_allocated: counters_after.segments_allocated
                    - counters_before.segments_allocated,
                segments_released: counters_after.segments_released
                    - counters_before.segments_released,
                segments_freed: counters_after.segments_freed - counters_before.segments_freed,
                table_resized: counters_after.table_capacity != counters_before.table_capacity,
                minor_faults: usage_after.minor_faults - usage_before.minor_faults,
                major_faults: usage_after.major_faults - usage_before.major_faults,
                involuntary_switches: usage_after.involuntary_switches
                    - usage_before.involuntary_switches,
                voluntary_switches: usage_after.voluntary_switches
                    - usage_before.voluntary_switches,
            };
            slow_ops.push(op);
        }
        idle.after_write(&mut shard, &options.idle, round);
        let old_len = expected[i as usize].1 as usize;
        raw_bytes = raw_bytes - old_len + len;
        expected[i as usize] = (round, len as u16);
        if round % 4096 == 0 {
            let stats = shard.memory();
            let ratio = stats.total_bytes() as f64 / (stats.live_bytes + stats.table_bytes) as f64;
            peak_ratio = peak_ratio.max(ratio);
            peak_total = peak_total.max(stats.total_bytes());
        }
    }
    let elapsed = started.elapsed();
    let steal_ms = machine_steal_ms().saturating_sub(steal_before);
    slow_by_round.extend(slow_ops.iter().map(|op| (op.round, *op)));
    for i in 0..keys {
        key_of(i, &mut key);
        let (round, len) = expected[i as usize];
        let got = shard.get(hash_key(&key), &key, 0).expect("churned key");
        assert_eq!(got.bytes.len(), len as usize);
        assert_eq!(got.bytes[..8], round.to_le_bytes());
        let tag = (i ^ round.wrapping_mul(31)) as u8;
        assert!(got.bytes[8..].iter().all(|&b| b == tag));
    }
    let stats = shard.memory();
    let base = stats.live_bytes + stats.table_bytes;
    print_memory("after churn", &stats, keys as usize);
    println!(
        "  memory / (live records + table): peak {:.3}x, final {:.3}x; \
         / (key+value bytes + table): final {:.3}x; peak total {:.1} MiB",
        peak_ratio,
        stats.total_bytes() as f64 / base as f64,
        stats.total_bytes() as f64 / (raw_bytes + stats.table_bytes) as f64,
        mib(peak_total)
    );
    println!(
        "  process RSS: {:.1} MiB after load, {:.1} MiB after churn",
        mib(rss_loaded),
        mib(rss_bytes())
    );
    println!(
        "  {:.0} ns per write incl. cleaning ({:.2} s); clean steps {}, moved {} records / \
         {:.0} MiB (write amplification {:.2}), freed {} segments; segments allocated {}, \
         released to the system {}",
        elapsed.as_nanos() as f64 / writes as f64,
        elapsed.as_secs_f64(),
        clean_steps,
        stats.cleaner_records_moved,
        mib(stats.cleaner_bytes_moved as usize),
        1.0 + stats.cleaner_bytes_moved as f64 / (writes as f64 * ((16.0 + 512.0) / 2.0 + 21.0)),
        stats.cleaner_segments_freed,
        shard.work_counters().segments_allocated,
        shard.work_counters().segments_released
    );
    println!(
        "  (the time per write above includes the probes: 2 getrusage + 2 clock_gettime calls)"
    );
    println!(
        "  steal time of the whole machine during the writes: {steal_ms} ms (/proc/stat; \
         the hypervisor ran something else on our virtual CPUs)"
    );
    idle.report();
    for (label, histogram) in [("wall time ", &wall), ("thread CPU", &cpu)] {
        println!(
            "  single write incl. cleaning, {label}: p50 {} ns, p99 {} ns, p99.9 {} ns, \
             p99.99 {} ns, max {} ns",
            histogram.quantile_ns(0.5),
            histogram.quantile_ns(0.99),
            histogram.quantile_ns(0.999),
            histogram.quantile_ns(0.9999),
            histogram.max_ns
        );
    }
    report_slow_ops(&mut slow_ops);
}

/// Records one pass's wall time of operation `index` for the replay: its shortest time so
/// far, and one more pass in which it was over `SLOW_NS`.
fn note_pass(best: &mut [u32], slow_passes: &mut [u8], index: usize, wall_ns: u64) {
    best[index] = best[index].min(wall_ns.min(u64::from(u32::MAX)) as u32);
    slow_passes[index] += u8::from(wall_ns > SLOW_NS);
}

/// Steal time of all CPUs so far (`/proc/stat`, the `cpu` line's eighth field, in clock ticks
/// of 10 ms), in ms; 0 where it cannot be read.
fn machine_steal_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(8))
        .and_then(|ticks| ticks.parse::<u64>().ok())
        .map_or(0, |ticks| ticks * 10)
}

/// The worker's idle moments, modelled (`idle=BATCH:PAGES`): after every `batch` writes, one
/// `Shard::prefault_step` of at most `pages` pages, as the server's worker runs them when its
/// ring is empty. Timed on their own, never as part of a write.
#[derive(Clone, Copy)]
struct Idle {
    batch: u64,
    pages: usize,
}

impl Idle {
    fn describe(&self) -> String {
        if self.batch == 0 {
            "no idle moments (no pre-faulting)".into()
        } else {
            format!(
                "an idle moment after every {} writes, pre-faulting up to {} pages",
                self.batch, self.pages
            )
        }
    }
}

/// What the idle moments did.
struct IdleSteps {
    wall: Histogram,
    steps: u64,
    pages: u64,
    segments_allocated: u64,
}

impl IdleSteps {
    fn new() -> IdleSteps {
        IdleSteps {
            wall: Histogram::new(),
            steps: 0,
            pages: 0,
            segments_allocated: 0,
        }
    }

    fn after_write(&mut self, shard: &mut Shard, idle: &Idle, round: u64) {
        if idle.batch == 0 || round % idle.batch != 0 || shard.is_prefaulted() {
            return;
        }
        let allocated = shard.work_counters().segments_allocated;
        let begin = Instant::now();
        let touched = shard.prefault_step(idle.pages);
        self.wall.record(begin.elapsed().as_nanos() as u64);
        self.segments_allocated += shard.work_counters().segments_allocated - allocated;
        self.steps += 1;
        self.pages += touched as u64;
    }

    fn report(&self) {
        if self.steps == 0 {
            return;
        }
        println!(
            "  idle pre-faulting steps: {}, {} pages ({:.0} MiB), {} segments allocated ahead \
             in all; wall time per step p50 {} ns, p99 {} ns, max {} ns",
            self.steps,
            self.pages,
            mib(self.pages as usize * 4096),
            self.segments_allocated,
            self.wall.quantile_ns(0.5),
            self.wall.quantile_ns(0.99),
            self.wall.max_ns
        );
    }
}

/// Each write's shortest wall time over `passes` identical passes. The work of a write is the
/// same in every pass; what the machine did to it (the hypervisor's steal, an interrupt, a
/// slow page fault) is not, so a write whose own work takes over 100 us is over 100 us in
/// every pass, and one over only because of the machine is unlikely to be hit every time.
fn report_replay(
    best: &[u32],
    slow_passes: &[u8],
    slow_by_round: &std::collections::HashMap<u64, SlowOp>,
    passes: u32,
) {
    let mut sorted: Vec<u32> = best.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    let over: Vec<(u64, u32)> = best
        .iter()
        .enumerate()
        .filter(|&(_, &ns)| u64::from(ns) > SLOW_NS)
        .map(|(i, &ns)| (i as u64 + 1, ns))
        .collect();
    println!(
        "  == replay: each operation's shortest wall time over {passes} passes: p50 {} ns, p99 {} ns, \
         p99.9 {} ns, p99.99 {} ns, max {} ns; operations over 100 us in every pass: {}",
        at(0.5),
        at(0.99),
        at(0.999),
        at(0.9999),
        sorted[sorted.len() - 1],
        over.len()
    );
    let mut by_passes = vec![0usize; passes as usize + 1];
    for &n in slow_passes {
        by_passes[n as usize] += 1;
    }
    println!(
        "  operations over 100 us in exactly k of the {passes} passes, k = 1..{passes}: {:?}",
        &by_passes[1..]
    );
    let mut slowest: Vec<(u64, u32)> = best
        .iter()
        .enumerate()
        .map(|(i, &ns)| (i as u64 + 1, ns))
        .collect();
    slowest.sort_unstable_by_key(|&(_, ns)| std::cmp::Reverse(ns));
    println!("  slowest operations by their shortest time (numbered from 1):");
    for &(round, ns) in slowest.iter().take(8) {
        match slow_by_round.get(&round) {
            Some(op) => println!(
                "    op {round:>8}: shortest {ns} ns; when slow: cleaned {}, moved {} B, \
                 segments +{} (allocated {}) -{}, table resized {}, faults {}",
                op.cleaned,
                op.bytes_moved,
                op.segments_opened,
                op.segments_allocated,
                op.segments_freed,
                op.table_resized,
                op.minor_faults + op.major_faults
            ),
            None => println!("    op {round:>8}: shortest {ns} ns"),
        }
    }
}

/// A write is "slow" above this (the issue's target for the longest single operation).
const SLOW_NS: u64 = 100_000;

/// What one slow write did, from the shard's counters and the thread's usage around it.
#[derive(Clone, Copy)]
struct SlowOp {
    round: u64,
    wall_ns: u64,
    cpu_ns: u64,
    cleaned: bool,
    bytes_moved: u64,
    segments_opened: u64,
    segments_allocated: u64,
    segments_freed: u64,
    segments_released: u64,
    table_resized: bool,
    minor_faults: i64,
    major_faults: i64,
    involuntary_switches: i64,
    voluntary_switches: i64,
}

struct Overhead {
    wall_ns: u64,
    cpu_ns: u64,
}

/// The median cost of the probes themselves, measured exactly as around a write but around
/// nothing.
fn probe_overhead() -> Overhead {
    let mut walls = Vec::with_capacity(200_000);
    let mut cpus = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        let usage_before = thread_usage();
        let cpu_before = thread_cpu_ns();
        let wall_before = Instant::now();
        let wall_after = Instant::now();
        let cpu_after = thread_cpu_ns();
        let usage_after = thread_usage();
        black_box((usage_before.minor_faults, usage_after.minor_faults));
        walls.push((wall_after - wall_before).as_nanos() as u64);
        cpus.push(cpu_after - cpu_before);
    }
    walls.sort_unstable();
    cpus.sort_unstable();
    Overhead {
        wall_ns: walls[walls.len() / 2],
        cpu_ns: cpus[cpus.len() / 2],
    }
}

fn report_slow_ops(slow_ops: &mut [SlowOp]) {
    let over_wall: Vec<&SlowOp> = slow_ops.iter().filter(|op| op.wall_ns > SLOW_NS).collect();
    let over_cpu: Vec<&SlowOp> = slow_ops.iter().filter(|op| op.cpu_ns > SLOW_NS).collect();
    let describe = |label: &str, ops: &[&SlowOp]| {
        let count = |f: &dyn Fn(&SlowOp) -> bool| ops.iter().filter(|op| f(op)).count();
        println!(
            "  writes over 100 us by {label}: {}; of them: cleaned {}, freed a segment {}, \
             released one to the system {}, opened a segment {}, allocated one {}, \
             table resized {}, page faults {}, preempted {}, blocked {}",
            ops.len(),
            count(&|op| op.cleaned),
            count(&|op| op.segments_freed > 0),
            count(&|op| op.segments_released > 0),
            count(&|op| op.segments_opened > 0),
            count(&|op| op.segments_allocated > 0),
            count(&|op| op.table_resized),
            count(&|op| op.minor_faults + op.major_faults > 0),
            count(&|op| op.involuntary_switches > 0),
            count(&|op| op.voluntary_switches > 0),
        );
    };
    describe("wall time ", &over_wall);
    describe("thread CPU", &over_cpu);
    slow_ops.sort_by_key(|op| std::cmp::Reverse(op.cpu_ns));
    println!("  slowest writes by thread CPU time:");
    for op in slow_ops.iter().take(8) {
        println!(
            "    write {:>8}: cpu {:>7} ns, wall {:>8} ns, cleaned {}, moved {} B, segments \
             +{} (allocated {}) -{} (released {}), table resized {}, faults {}+{}, switches {} involuntary {} voluntary",
            op.round,
            op.cpu_ns,
            op.wall_ns,
            op.cleaned,
            op.bytes_moved,
            op.segments_opened,
            op.segments_allocated,
            op.segments_freed,
            op.segments_released,
            op.table_resized,
            op.minor_faults,
            op.major_faults,
            op.involuntary_switches,
            op.voluntary_switches
        );
    }
}

// ----- (c) ns per operation ------------------------------------------------------------------

/// Keys of a random sample, laid out flat, with their hashes computed up front: the timed
/// loops measure the shard, not formatting or hashing.
struct Sample {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    hashes: Vec<u64>,
}

impl Sample {
    fn new(indexes: impl Iterator<Item = u64>) -> Sample {
        let mut sample = Sample {
            bytes: Vec::new(),
            ends: Vec::new(),
            hashes: Vec::new(),
        };
        let mut key = Vec::new();
        for i in indexes {
            key_of(i, &mut key);
            sample.bytes.extend_from_slice(&key);
            sample.ends.push(sample.bytes.len());
            sample.hashes.push(hash_key(&key));
        }
        sample
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

fn ops(options: &Options) {
    println!("== ops: ns per operation, 32-byte values, random keys, median of 5 runs of 1M ops");
    let runs = 5;
    let ops_per_run = 1_000_000usize;
    let mut rng = Rng(7);
    let value = [b'v'; 32];
    let other = [b'w'; 32];
    {
        let sample = Sample::new(0..1000u64);
        let begin = Instant::now();
        let mut sum = 0u64;
        for _ in 0..1000 {
            for i in 0..sample.len() {
                sum = sum.wrapping_add(hash_key(black_box(sample.key(i))));
            }
        }
        black_box(sum);
        println!(
            "  hash_key of a 5..7-byte key: {:.1} ns",
            begin.elapsed().as_nanos() as f64 / 1e6
        );
        for len in [10usize, 100] {
            let keys: Vec<Vec<u8>> = (0..1000u64)
                .map(|i| {
                    let mut key = format!("key:{i}:").into_bytes();
                    key.resize(len, b'x');
                    key
                })
                .collect();
            let mut runs = Vec::new();
            for _ in 0..5 {
                let begin = Instant::now();
                let mut sum = 0u64;
                for _ in 0..1000 {
                    for key in &keys {
                        sum = sum.wrapping_add(hash_key(black_box(key)));
                    }
                }
                black_box(sum);
                runs.push(begin.elapsed().as_nanos() as f64 / 1e6);
            }
            println!(
                "  hash_key of a {len}-byte key: {:.1} ns (median of 5 runs of 1M)",
                median(&mut runs)
            );
        }
    }
    for &n in &options.ops_keys {
        let mut shard = Shard::with_capacity(config(options), 0);
        let mut key = Vec::new();
        for i in 0..n {
            key_of(i, &mut key);
            shard
                .set(hash_key(&key), &key, &value, SetOptions::default(), 0)
                .expect("set");
        }
        let distinct = (n as usize).min(ops_per_run);
        // A random set of distinct keys in random order (a partial shuffle of 0..n).
        let mut indexes: Vec<u64> = Vec::with_capacity(distinct);
        if n as usize == distinct {
            indexes.extend(0..n);
        } else {
            let mut chosen = std::collections::HashSet::with_capacity(distinct);
            while indexes.len() < distinct {
                let i = rng.below(n);
                if chosen.insert(i) {
                    indexes.push(i);
                }
            }
        }
        for i in (1..indexes.len()).rev() {
            indexes.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let sample = Sample::new(indexes.iter().copied());
        let repeat = ops_per_run / sample.len();
        // Check before timing.
        for i in 0..sample.len() {
            let got = shard
                .get(sample.hashes[i], sample.key(i), 0)
                .expect("present");
            assert_eq!(got.bytes, value);
        }
        let (mut get_ns, mut set_ns, mut delete_ns) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            let begin = Instant::now();
            let mut found = 0usize;
            for _ in 0..repeat {
                for i in 0..sample.len() {
                    found += shard
                        .get(sample.hashes[i], sample.key(i), 0)
                        .map_or(0, |v| v.bytes.len());
                }
            }
            get_ns.push(begin.elapsed().as_nanos() as f64 / (repeat * sample.len()) as f64);
            assert_eq!(found, repeat * sample.len() * 32);

            let new_value = if run % 2 == 0 { &other } else { &value };
            let begin = Instant::now();
            for _ in 0..repeat {
                for i in 0..sample.len() {
                    shard
                        .set(
                            sample.hashes[i],
                            sample.key(i),
                            new_value,
                            SetOptions::default(),
                            0,
                        )
                        .expect("set");
                }
            }
            set_ns.push(begin.elapsed().as_nanos() as f64 / (repeat * sample.len()) as f64);

            let mut delete_total = 0.0;
            for _ in 0..repeat {
                let begin = Instant::now();
                for i in 0..sample.len() {
                    assert!(shard.delete(sample.hashes[i], sample.key(i), 0));
                }
                delete_total += begin.elapsed().as_nanos() as f64;
                for i in 0..sample.len() {
                    shard
                        .set(
                            sample.hashes[i],
                            sample.key(i),
                            &value,
                            SetOptions::default(),
                            0,
                        )
                        .expect("set");
                }
                while shard.needs_cleaning() {
                    shard.clean_step(1 << 20);
                }
            }
            delete_ns.push(delete_total / (repeat * sample.len()) as f64);
        }
        assert_eq!(shard.len(), n as usize);
        println!(
            "  {:>10} keys: get {:6.1} ns, set (same size, in place) {:6.1} ns, delete {:6.1} ns \
             (runs: get {:?})",
            n,
            median(&mut get_ns),
            median(&mut set_ns),
            median(&mut delete_ns),
            get_ns
                .iter()
                .map(|v| (v * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
    }
}

// ----- (d) growth: inserts from empty -----------------------------------------------------------

/// The process's peak resident memory so far (`VmHWM` in `/proc/self/status`), in bytes.
fn peak_rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// An insert of the growth part over `SLOW_NS` by wall or CPU time, and what it did.
struct SlowInsert {
    wall_ns: u64,
    cpu_ns: u64,
    index: u64,
    capacity: (usize, usize),
    migrations: u64,
    segments_opened: u64,
    minor_faults: i64,
}

/// 10,000,000 new keys into an empty shard (no capacity reserved), 32-byte values, each insert
/// timed by the wall clock; the table grows through every doubling on the way.
fn growth(options: &Options) {
    let inserts = 10_000_000u64;
    println!(
        "== growth: {inserts} inserts from empty, 32-byte values, wall and CPU time of each; {}; \
         {} pass(es) of the same inserts",
        options.idle.describe(),
        options.passes
    );
    let mut best = vec![u32::MAX; inserts as usize];
    let mut slow_passes = vec![0u8; inserts as usize];
    for pass in 1..=options.passes {
        println!("  -- pass {pass}");
        growth_pass(options, inserts, &mut best, &mut slow_passes);
    }
    if options.passes > 1 {
        report_replay(
            &best,
            &slow_passes,
            &std::collections::HashMap::new(),
            options.passes,
        );
    }
}

/// One pass of the growth part; `best` and `slow_passes` as in `churn_pass` (indexed by
/// insert).
fn growth_pass(options: &Options, inserts: u64, best: &mut [u32], slow_passes: &mut [u8]) {
    let mut idle = IdleSteps::new();
    let overhead = probe_overhead();
    let mut shard = Shard::new(config(options));
    let value = [b'g'; 32];
    let mut key = Vec::new();
    let mut wall = Histogram::new();
    let mut slow = Vec::new();
    let mut over = 0u64;
    let mut peak_shard = 0usize;
    let rss_before = rss_bytes();
    let steal_before = machine_steal_ms();
    let started = Instant::now();
    let mut cpu = Histogram::new();
    let (mut over_cpu, mut over_unpreempted) = (0u64, 0u64);
    for i in 0..inserts {
        key_of(i, &mut key);
        let hash = hash_key(&key);
        let before = shard.work_counters();
        let usage_before = thread_usage();
        let cpu_before = thread_cpu_ns();
        let begin = Instant::now();
        shard
            .set(hash, &key, &value, SetOptions::default(), 0)
            .expect("set");
        let ns = (begin.elapsed().as_nanos() as u64).saturating_sub(overhead.wall_ns);
        let cpu_ns = (thread_cpu_ns() - cpu_before).saturating_sub(overhead.cpu_ns);
        wall.record(ns);
        cpu.record(cpu_ns);
        note_pass(best, slow_passes, i as usize, ns);
        over_cpu += u64::from(cpu_ns > SLOW_NS);
        if ns > SLOW_NS || cpu_ns > SLOW_NS {
            let usage_after = thread_usage();
            let preempted = usage_after.involuntary_switches > usage_before.involuntary_switches
                || usage_after.voluntary_switches > usage_before.voluntary_switches;
            if ns > SLOW_NS {
                over += 1;
                over_unpreempted += u64::from(!preempted);
            }
            let after = shard.work_counters();
            slow.push(SlowInsert {
                wall_ns: ns,
                cpu_ns,
                index: i,
                capacity: (before.table_capacity, after.table_capacity),
                migrations: after.table_migrations - before.table_migrations,
                segments_opened: after.segments_opened - before.segments_opened,
                minor_faults: usage_after.minor_faults - usage_before.minor_faults,
            });
        }
        idle.after_write(&mut shard, &options.idle, i + 1);
        if i % 65_536 == 0 {
            peak_shard = peak_shard.max(shard.memory().total_bytes());
        }
    }
    let elapsed = started.elapsed();
    let steal_ms = machine_steal_ms().saturating_sub(steal_before);
    peak_shard = peak_shard.max(shard.memory().total_bytes());
    for i in (0..inserts).step_by(997) {
        key_of(i, &mut key);
        assert_eq!(
            shard.get(hash_key(&key), &key, 0).expect("inserted").bytes,
            value
        );
    }
    assert_eq!(shard.len(), inserts as usize);
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "  {:.2} s, mean {:.0} ns per insert; wall p50 / p99 / p99.9 / p99.99: \
         {:.2} / {:.2} / {:.2} / {:.2} us; max {:.1} us",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / inserts as f64,
        us(wall.quantile_ns(0.5)),
        us(wall.quantile_ns(0.99)),
        us(wall.quantile_ns(0.999)),
        us(wall.quantile_ns(0.9999)),
        us(wall.max_ns)
    );
    println!(
        "  thread CPU p50 / p99 / p99.9 / p99.99: {:.2} / {:.2} / {:.2} / {:.2} us; max {:.1} us",
        us(cpu.quantile_ns(0.5)),
        us(cpu.quantile_ns(0.99)),
        us(cpu.quantile_ns(0.999)),
        us(cpu.quantile_ns(0.9999)),
        us(cpu.max_ns)
    );
    println!(
        "  inserts over 100 us: {over} by wall time ({over_unpreempted} of them with no context \
         switch), {over_cpu} by thread CPU time; steal time of the whole machine {steal_ms} ms"
    );
    idle.report();
    let counters = shard.work_counters();
    println!(
        "  table migrations {}, of them started with a table prepared ahead of need {}",
        counters.table_migrations, counters.table_prepared_used
    );
    let show = |s: &SlowInsert| {
        println!(
            "    insert {}: wall {:.1} us, CPU {:.1} us, table capacity {} -> {}, migrations \
             started {}, segments opened {}, minor faults {}",
            s.index,
            us(s.wall_ns),
            us(s.cpu_ns),
            s.capacity.0,
            s.capacity.1,
            s.migrations,
            s.segments_opened,
            s.minor_faults
        );
    };
    println!("  slowest inserts by wall time:");
    slow.sort_by_key(|s| std::cmp::Reverse(s.wall_ns));
    slow.iter().take(5).for_each(show);
    println!("  slowest inserts by thread CPU time:");
    slow.sort_by_key(|s| std::cmp::Reverse(s.cpu_ns));
    slow.iter().take(10).for_each(show);
    let stats = shard.memory();
    println!(
        "  shard memory: peak {:.0} MiB, final {:.0} MiB (table {:.0} MiB); process peak RSS \
         {:.0} MiB (RSS before {:.0} MiB)",
        mib(peak_shard),
        mib(stats.total_bytes()),
        mib(stats.table_bytes),
        mib(peak_rss_bytes()),
        mib(rss_before)
    );
}

fn main() {
    let options = parse_options();
    for part in options.parts.clone() {
        match part.as_str() {
            "memory" => memory(&options),
            "churn" => churn(&options),
            "ops" => ops(&options),
            "growth" => growth(&options),
            other => eprintln!("unknown part {other}: use memory, churn, ops or growth"),
        }
    }
}
