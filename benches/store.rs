//! Store benchmark: memory per key, memory and latency under churn, ns per operation.
//!
//! ```text
//! cargo bench --bench store                     # all parts (about 5 minutes on 2 cores)
//! cargo bench --bench store -- memory           # (a) 1M keys key:0..key:999999, 32-byte values
//! cargo bench --bench store -- churn            # (b) 1M live keys, 20M overwrites of 16..512 B
//! cargo bench --bench store -- ops              # (c) ns per get/set/delete at 1K, 1M, 10M keys
//! cargo bench --bench store -- churn seg=256     # segment size in KiB (default 1024)
//! cargo bench --bench store -- churn writes=2000000 step=8192 garbage=10
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

/// Involuntary context switches of this thread so far: a slow operation during which this
/// changed was (at least partly) waiting for the CPU, not working.
fn involuntary_switches() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_THREAD is supported on Linux.
    let result = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if result != 0 {
        return 0;
    }
    // SAFETY: getrusage returned 0, so it filled the struct (and it was zeroed before).
    unsafe { usage.assume_init() }.ru_nivcsw
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
}

fn parse_options() -> Options {
    let mut options = Options {
        parts: Vec::new(),
        segment_kib: 1024,
        writes: 20_000_000,
        step_bytes: 8 * 1024,
        garbage_percent: 20,
    };
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("seg=") {
            options.segment_kib = v.parse().expect("seg=KiB");
        } else if let Some(v) = arg.strip_prefix("writes=") {
            options.writes = v.parse().expect("writes=N");
        } else if let Some(v) = arg.strip_prefix("step=") {
            options.step_bytes = v.parse().expect("step=bytes");
        } else if let Some(v) = arg.strip_prefix("garbage=") {
            options.garbage_percent = v.parse().expect("garbage=percent");
        } else if !arg.starts_with('-') {
            options.parts.push(arg);
        }
    }
    if options.parts.is_empty() {
        options.parts = vec!["memory".into(), "churn".into(), "ops".into()];
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
         segment {} KiB, clean step {} B, cleaner starts at {}% garbage",
        options.segment_kib, options.step_bytes, options.garbage_percent
    );
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

    let mut histogram = Histogram::new();
    let mut peak_ratio: f64 = 0.0;
    let mut peak_total = 0usize;
    let mut clean_steps = 0u64;
    // Writes over 100 µs: [without, with] a segment freed in the same step.
    let mut slow = [0u64; 2];
    // The same histogram without the writes during which the thread was switched out.
    let mut unpreempted = Histogram::new();
    let mut unpreempted_excluded = 0u64;
    let started = Instant::now();
    for round in 1..=writes {
        let i = rng.below(keys);
        let len = 16 + rng.below(497) as usize;
        key_of(i, &mut key);
        value_for(i, round, len, &mut value);
        let hash = hash_key(&key);
        let switches = involuntary_switches();
        let begin = Instant::now();
        shard
            .set(hash, &key, &value[..len], SetOptions::default(), 0)
            .expect("set");
        let mut freed = false;
        if shard.needs_cleaning() {
            freed = shard.clean_step(options.step_bytes).segments_freed > 0;
            clean_steps += 1;
        }
        let ns = begin.elapsed().as_nanos() as u64;
        let preempted = involuntary_switches() != switches;
        histogram.record(ns);
        if preempted {
            unpreempted_excluded += 1;
        } else {
            unpreempted.record(ns);
        }
        if ns > 100_000 {
            slow[usize::from(freed)] += 1;
        }
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
         {:.0} MiB (write amplification {:.2}), freed {} segments",
        elapsed.as_nanos() as f64 / writes as f64,
        elapsed.as_secs_f64(),
        clean_steps,
        stats.cleaner_records_moved,
        mib(stats.cleaner_bytes_moved as usize),
        1.0 + stats.cleaner_bytes_moved as f64 / (writes as f64 * ((16.0 + 512.0) / 2.0 + 21.0)),
        stats.cleaner_segments_freed
    );
    println!(
        "  single write incl. cleaning: p50 {} ns, p99 {} ns, p99.9 {} ns, p99.99 {} ns, max {} ns",
        histogram.quantile_ns(0.5),
        histogram.quantile_ns(0.99),
        histogram.quantile_ns(0.999),
        histogram.quantile_ns(0.9999),
        histogram.max_ns
    );
    println!(
        "  writes over 100 us: {} without a segment freed, {} that freed a segment",
        slow[0], slow[1]
    );
    println!(
        "  without the {} writes preempted by another process: p99 {} ns, p99.9 {} ns, \
         p99.99 {} ns, max {} ns",
        unpreempted_excluded,
        unpreempted.quantile_ns(0.99),
        unpreempted.quantile_ns(0.999),
        unpreempted.quantile_ns(0.9999),
        unpreempted.max_ns
    );
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
    }
    for &n in &[1_000u64, 1_000_000, 10_000_000] {
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

fn main() {
    let options = parse_options();
    for part in options.parts.clone() {
        match part.as_str() {
            "memory" => memory(&options),
            "churn" => churn(&options),
            "ops" => ops(&options),
            other => eprintln!("unknown part {other}: use memory, churn or ops"),
        }
    }
}
