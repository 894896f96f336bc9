//! Durability figures on this machine's disk (prints them; asserts only correctness):
//!
//! - `fsync`: `write` + `fdatasync` latency per batch size, 4 KiB to 1 MiB (median, p90, max
//!   of several runs), against a `write` alone;
//! - `commit`: group-commit throughput under `Always`, syncing inline in `commit` vs on the
//!   syncer thread (the worker only asks), as a ratio in the same run;
//! - `recovery`: time to load N keys of 32-byte values from a log and from a snapshot
//!   (records/s, MB/s), one worker, median of 3;
//! - `compaction`: disk use while 1M keys are overwritten again and again with snapshots
//!   taken as the log grows (max disk / live snapshot size);
//! - `reroute`: keys written by 4 workers recovered by 4, 3, 2 and 1 (each new worker reads the
//!   old chains overlapping its slots).
//!
//!   cargo bench --bench persist                       # all, 1M keys
//!   cargo bench --bench persist -- recovery 10000000  # one part, 10M keys
//!
//! Files go to `target/persist-bench/` (the disk under test), removed afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use piccolo::persist::codec::Record;
use piccolo::persist::fs::{Dir, GuardedFile, RealDir};
use piccolo::persist::recovery::{self, RecoveryOptions};
use piccolo::persist::{
    ChainId, CompactionConfig, FsyncPolicy, LogConfig, LogWriter, SnapshotProgress, SnapshotWriter,
    WorkerLog,
};
use piccolo::store::{Config, SetOptions, Shard, hash_key};

fn bench_dir(name: &str) -> (std::path::PathBuf, Arc<RealDir>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/persist-bench")
        .join(name);
    let _ = std::fs::remove_dir_all(&path);
    let dir = Arc::new(RealDir::open(&path).expect("bench dir"));
    (path, dir)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn fsync_latency() {
    println!("## fdatasync latency per batch (write + fdatasync, appended to one file)\n");
    println!(
        "| batch | runs | write only p50 (us) | write+fdatasync p50 (us) | p90 (us) | max (us) | MB/s at p50 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let (path, dir) = bench_dir("fsync");
    for size in [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let runs = if size >= 256 << 10 { 40 } else { 100 };
        let bytes = vec![0x5au8; size];
        let mut file = GuardedFile::new(dir.create(&format!("f{size}")).unwrap(), "f", 0, None);
        file.sync().unwrap();
        let mut synced = Vec::new();
        let mut plain = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            file.write_all(&bytes).unwrap();
            plain.push(started.elapsed());
            file.sync().unwrap();
            synced.push(started.elapsed());
        }
        assert_eq!(file.synced_bytes(), (size * runs) as u64);
        synced.sort();
        plain.sort();
        let p50 = percentile(&synced, 50);
        println!(
            "| {} KiB | {runs} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |",
            size >> 10,
            us(percentile(&plain, 50)),
            us(p50),
            us(percentile(&synced, 90)),
            us(*synced.last().unwrap()),
            size as f64 / p50.as_secs_f64() / 1e6
        );
    }
    std::fs::remove_dir_all(path).ok();
    println!();
}

/// Batches of `batch` SET records of 32-byte values under `Always` for `duration`: records
/// made durable per second, and syncs run.
fn always_throughput(sync_thread: bool, batch: usize, duration: Duration) -> (f64, u64) {
    let (path, dir) = bench_dir(if sync_thread {
        "commit-thread"
    } else {
        "commit-inline"
    });
    let config = LogConfig {
        policy: FsyncPolicy::Always,
        sync_thread,
        ..LogConfig::default()
    };
    let chain = ChainId {
        epoch: 1,
        worker: 0,
    };
    let mut log = LogWriter::create(Arc::clone(&dir), chain, 1, 1, 0, 1, config, None).unwrap();
    let started = Instant::now();
    let mut version = 0u64;
    let mut durable = 0;
    // The worker goes on with the next batch while the syncer syncs; replies of a batch
    // would leave when `durable_seq` passes its last seq. At most 64 batches in flight (the
    // reactor's budget would stop new requests).
    while started.elapsed() < duration {
        for _ in 0..batch {
            version += 1;
            let key = format!("key:{:012}", version % 1_000_000);
            log.append(&Record::Set {
                key: key.as_bytes(),
                value: &[b'x'; 32],
                version,
                expiry_ms: 0,
            });
        }
        let seq = log.commit(1).unwrap();
        loop {
            durable = log.durable_seq();
            if seq.saturating_sub(durable) <= 64 * batch as u64 {
                break;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    let end = log.sync_now().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(end >= durable && end >= version);
    let stats = log.stats();
    let syncs = stats.inline_syncs.syncs + stats.thread_syncs.syncs;
    drop(log);
    std::fs::remove_dir_all(path).ok();
    // Data records only (the seqs also count the log's sync marks).
    (version as f64 / elapsed, syncs)
}

fn commit_throughput() {
    println!("## Group commit under `always`: sync inline vs on the syncer thread\n");
    println!(
        "Batches of N SET records (16-byte keys, 32-byte values), 3 s per run, median of 3 runs; the thread's worker keeps at most 64 batches in flight.\n"
    );
    println!(
        "| batch | inline records/s | inline syncs/s | syncer records/s | syncer syncs/s | syncer / inline |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for batch in [1usize, 16, 256] {
        let mut inline = Vec::new();
        let mut thread = Vec::new();
        for _ in 0..3 {
            inline.push(always_throughput(false, batch, Duration::from_secs(3)));
            thread.push(always_throughput(true, batch, Duration::from_secs(3)));
        }
        inline.sort_by(|a, b| a.0.total_cmp(&b.0));
        thread.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (i, t) = (inline[1], thread[1]);
        println!(
            "| {batch} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}x |",
            i.0,
            i.1 as f64 / 3.0,
            t.0,
            t.1 as f64 / 3.0,
            t.0 / i.0
        );
    }
    println!();
}

fn key(index: u64) -> Vec<u8> {
    format!("key:{index:012}").into_bytes()
}

fn recovery_speed(keys: u64) {
    println!("## Recovery of {keys} keys of 32-byte values, one worker (median of 3)\n");
    let (path, dir) = bench_dir("recovery");
    // A log of `keys` SET records, written with no sync but one at the end.
    let config = LogConfig {
        policy: FsyncPolicy::No,
        sync_thread: false,
        segment_bytes: 1 << 30,
        ..LogConfig::default()
    };
    let chain = ChainId {
        epoch: 1,
        worker: 0,
    };
    let mut log = LogWriter::create(Arc::clone(&dir), chain, 1, 1, 0, 1, config, None).unwrap();
    for index in 0..keys {
        let key = key(index);
        log.append(&Record::Set {
            key: &key,
            value: &[b'x'; 32],
            version: index + 1,
            expiry_ms: 0,
        });
        if index % 256 == 255 {
            log.commit(1).unwrap();
        }
    }
    log.commit(1).unwrap();
    log.sync_now().unwrap();
    let log_bytes = log.log_bytes();
    drop(log);
    let load = |what: &str| {
        let mut times = Vec::new();
        let mut loaded = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let (shards, _, reports) = recovery::recover_all(
                &*dir,
                1,
                RecoveryOptions {
                    truncate_damage: false,
                },
                || Shard::with_capacity(Config::default(), keys as usize),
            )
            .unwrap();
            times.push(started.elapsed());
            loaded = shards[0].len();
            assert_eq!(reports[0].records_applied, keys, "{what}");
        }
        times.sort();
        (times[1], loaded)
    };
    let (log_time, loaded) = load("log");
    assert_eq!(loaded as u64, keys);
    // The peer: the same keys stored by a plain loop of `Shard::set` (no file, no decoding),
    // median of 3.
    let mut plain_times = Vec::new();
    let mut shard = Shard::with_capacity(Config::default(), 0);
    for _ in 0..3 {
        drop(shard);
        shard = Shard::with_capacity(Config::default(), keys as usize);
        let started = Instant::now();
        for index in 0..keys {
            let key = key(index);
            shard
                .set(hash_key(&key), &key, &[b'x'; 32], SetOptions::default(), 1)
                .unwrap();
        }
        plain_times.push(started.elapsed());
    }
    plain_times.sort();
    let plain_time = plain_times[1];
    // Now a snapshot of the same keys, then recovery from it (the log before it dropped).
    let (snap_path, snap_dir) = bench_dir("recovery-snapshot");
    let mut log = LogWriter::create(
        Arc::clone(&snap_dir),
        chain,
        1,
        1,
        shard.last_version(),
        1,
        LogConfig {
            policy: FsyncPolicy::No,
            sync_thread: false,
            ..LogConfig::default()
        },
        None,
    )
    .unwrap();
    let started = Instant::now();
    let mut writer = SnapshotWriter::start(
        Arc::clone(&snap_dir),
        chain,
        1,
        log.next_seq(),
        shard.last_version(),
        1,
    )
    .unwrap();
    let done = loop {
        match writer
            .step(&mut shard, 4096, 1, log.last_seq(), log.durable_seq())
            .unwrap()
        {
            SnapshotProgress::Done(done) => break done,
            SnapshotProgress::WaitingForLog { .. } => {
                log.sync_now().unwrap();
            }
            SnapshotProgress::Walking { .. } => {}
        }
    };
    let write_time = started.elapsed();
    drop(log);
    drop(shard);
    let snapshot_load = {
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let (shards, _, _) = recovery::recover_all(
                &*snap_dir,
                1,
                RecoveryOptions {
                    truncate_damage: false,
                },
                || Shard::with_capacity(Config::default(), keys as usize),
            )
            .unwrap();
            times.push(started.elapsed());
            assert_eq!(shards[0].len() as u64, keys);
        }
        times.sort();
        times[1]
    };
    println!("| source | bytes | bytes/key | load s | records/s | MB/s | / plain set loop |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (what, bytes, time) in [
        ("log", log_bytes, log_time),
        ("snapshot", done.bytes, snapshot_load),
    ] {
        println!(
            "| {what} | {bytes} | {:.1} | {:.2} | {:.0} | {:.0} | {:.2}x |",
            bytes as f64 / keys as f64,
            time.as_secs_f64(),
            keys as f64 / time.as_secs_f64(),
            bytes as f64 / time.as_secs_f64() / 1e6,
            time.as_secs_f64() / plain_time.as_secs_f64()
        );
    }
    println!(
        "\nPeer: the same {keys} keys stored by a loop of `Shard::set` in the same run: {:.2} s \
         ({:.0} keys/s).",
        plain_time.as_secs_f64(),
        keys as f64 / plain_time.as_secs_f64()
    );
    println!(
        "\nWriting the snapshot (walk in steps of 4,096 keys, write, fdatasync, rename): {:.2} s, {:.0} keys/s.\n",
        write_time.as_secs_f64(),
        keys as f64 / write_time.as_secs_f64()
    );
    std::fs::remove_dir_all(path).ok();
    std::fs::remove_dir_all(snap_path).ok();
}

/// Bytes of the files whose names end with `suffix` (all files for "").
fn disk_bytes(path: &std::path::Path, suffix: &str) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn compaction(keys: u64) {
    println!("## Disk use under compaction: {keys} keys overwritten 8 times\n");
    let (path, dir) = bench_dir("compaction");
    let mut shard = Shard::with_capacity(Config::default(), keys as usize);
    let mut log = WorkerLog::open(
        Arc::clone(&dir),
        1,
        0,
        1,
        &shard,
        1,
        LogConfig {
            policy: FsyncPolicy::EverySec,
            sync_thread: true,
            ..LogConfig::default()
        },
        CompactionConfig::default(),
        None,
    )
    .unwrap();
    let (mut max_disk, mut max_snapshots, mut max_logs) = (0, 0, 0);
    let mut max_ratio: f64 = 0.0;
    let mut snapshots = 0;
    let mut last_snapshot_bytes = 0;
    let started = Instant::now();
    for round in 0..8u64 {
        for index in 0..keys {
            let key = key(index);
            let hash = hash_key(&key);
            let value = [b'a' + round as u8; 32];
            shard
                .set(hash, &key, &value, SetOptions::default(), 1)
                .unwrap();
            log.log().capture(&mut shard, hash, &key, 1);
            if index % 64 == 63 {
                log.log()
                    .commit(started.elapsed().as_millis() as u64)
                    .unwrap();
                let done = log
                    .maintain(&mut shard, started.elapsed().as_millis() as u64)
                    .unwrap();
                if let Some(snapshot) = done.snapshot_done {
                    snapshots += 1;
                    last_snapshot_bytes = snapshot.bytes;
                }
                if index % 65_536 == 63 {
                    let disk = disk_bytes(&path, "");
                    max_disk = max_disk.max(disk);
                    max_snapshots = max_snapshots
                        .max(disk_bytes(&path, ".snap") + disk_bytes(&path, ".snap.tmp"));
                    max_logs = max_logs.max(disk_bytes(&path, ".log"));
                    if last_snapshot_bytes > 0 {
                        max_ratio = max_ratio.max(disk as f64 / last_snapshot_bytes as f64);
                    }
                }
            }
        }
    }
    log.shutdown().unwrap();
    let written = log.log().stats().bytes_written;
    println!(
        "{snapshots} snapshots; log bytes written {written}; live snapshot {last_snapshot_bytes} \
         bytes. Sampled every 65,536 writes: max disk {max_disk} bytes = {max_ratio:.2}x the \
         live snapshot; of which snapshot files at most {max_snapshots} ({:.2}x) and log \
         segments at most {max_logs} ({:.2}x). Final disk {} bytes. Compaction: min 64 MiB of \
         log and 100% of the last snapshot; 64 MiB segments.\n",
        max_snapshots as f64 / last_snapshot_bytes.max(1) as f64,
        max_logs as f64 / last_snapshot_bytes.max(1) as f64,
        disk_bytes(&path, "")
    );
    drop(log);
    std::fs::remove_dir_all(path).ok();
}

/// Keys written by 4 workers (one log each), recovered by 4, 3, 2 and 1 workers: each new
/// worker reads the old chains that overlap its slots and keeps its own records.
fn reroute(keys: u64) {
    println!(
        "## Recovery with another worker count: {keys} keys written by 4 workers (median of 3)\n"
    );
    let (path, dir) = bench_dir("reroute");
    let config = LogConfig {
        policy: FsyncPolicy::No,
        sync_thread: false,
        segment_bytes: 1 << 30,
        ..LogConfig::default()
    };
    let mut logs: Vec<LogWriter<RealDir>> = (0..4)
        .map(|worker| {
            let chain = ChainId { epoch: 1, worker };
            LogWriter::create(Arc::clone(&dir), chain, 4, 1, 0, 1, config.clone(), None).unwrap()
        })
        .collect();
    for index in 0..keys {
        let key = key(index);
        let worker = piccolo::persist::owner(piccolo::proto::slot::slot(&key), 4) as usize;
        logs[worker].append(&Record::Set {
            key: &key,
            value: &[b'x'; 32],
            version: index + 1,
            expiry_ms: 0,
        });
        if index % 1024 == 1023 {
            for log in &mut logs {
                log.commit(1).unwrap();
            }
        }
    }
    for log in &mut logs {
        log.sync_now().unwrap();
    }
    drop(logs);
    println!(
        "| new workers | wall s | sum of worker s | bytes read / bytes on disk | records skipped |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let on_disk: u64 = std::fs::read_dir(&path)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    for workers in [4u32, 3, 2, 1] {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let (shards, _, reports) = recovery::recover_all(
                &*dir,
                workers,
                RecoveryOptions {
                    truncate_damage: false,
                },
                || Shard::with_capacity(Config::default(), (keys / u64::from(workers)) as usize),
            )
            .unwrap();
            let wall = started.elapsed();
            assert_eq!(shards.iter().map(Shard::len).sum::<usize>() as u64, keys);
            let work: u64 = reports.iter().map(|r| r.elapsed_ms).sum();
            let read: u64 = reports.iter().map(|r| r.bytes_read).sum();
            let skipped: u64 = reports.iter().map(|r| r.records_skipped).sum();
            runs.push((wall, work, read, skipped));
        }
        runs.sort_by_key(|r| r.0);
        let (wall, work, read, skipped) = runs[1];
        println!(
            "| {workers} | {:.2} | {:.2} | {:.2} | {skipped} |",
            wall.as_secs_f64(),
            work as f64 / 1000.0,
            read as f64 / on_disk as f64
        );
    }
    println!("\n(2 cores: more than 2 workers share them.)\n");
    std::fs::remove_dir_all(path).ok();
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let part = args.first().map(String::as_str).unwrap_or("all");
    let keys: u64 = args
        .get(1)
        .and_then(|k| k.parse().ok())
        .unwrap_or(1_000_000);
    println!("# persist bench ({part}, {keys} keys)\n");
    if matches!(part, "all" | "fsync") {
        fsync_latency();
    }
    if matches!(part, "all" | "commit") {
        commit_throughput();
    }
    if matches!(part, "all" | "recovery") {
        recovery_speed(keys);
    }
    if matches!(part, "all" | "compaction") {
        compaction(keys);
    }
    if matches!(part, "all" | "reroute") {
        reroute(keys);
    }
}
