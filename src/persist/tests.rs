//! Tests of the whole module against a model: random operations on shards with their logs and
//! snapshots over a simulated disk, power cuts at random points, recovery with another worker
//! count, torn and flipped bytes, injected disk faults. Every randomized test prints its seed;
//! `PICCOLO_SEED=N cargo test -p piccolo --lib persist::tests::NAME` replays one.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::codec::Record;
use super::fs::Dir;
use super::recovery::{self, RecoveryOptions, owner};
use super::sim::{SimDir, SimFaults, SplitMix64};
use super::{CompactionConfig, FsyncPolicy, LogConfig, PersistError, WorkerLog};
use crate::proto::slot::slot;
use crate::store::{Config, Expiry, SetOptions, Shard, hash_key};

/// A key's state in the model: value, version, deadline (0: none).
type Model = BTreeMap<Vec<u8>, (Vec<u8>, u64, u64)>;

fn seeds(name: &str, default_count: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var("PICCOLO_SEED") {
        let seed = seed.parse().expect("PICCOLO_SEED is a number");
        eprintln!("{name}: replaying seed {seed}");
        return vec![seed];
    }
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    (0..default_count)
        .map(|i| base.wrapping_add(i * 7919))
        .collect()
}

fn small_config() -> Config {
    Config {
        segment_bytes: 64 * 1024,
        large_record_bytes: 8 * 1024,
        cleaner_min_garbage_bytes: 64 * 1024,
        ..Config::default()
    }
}

fn log_config(policy: FsyncPolicy, sync_thread: bool) -> LogConfig {
    LogConfig {
        policy,
        segment_bytes: 4096,
        sync_thread,
        everysec_interval_ms: 1000,
        synced_offsets: None,
    }
}

fn compaction() -> CompactionConfig {
    CompactionConfig {
        min_log_bytes: 6000,
        log_percent_of_snapshot: 100,
        step_records: 7,
    }
}

/// Every live key of the shards at `now_ms` (removes expired ones on the way).
fn dump(shards: &mut [Shard], now_ms: u64) -> Model {
    let mut model = Model::new();
    let mut scratch = Vec::new();
    for shard in shards {
        let mut cursor = 0;
        loop {
            cursor = shard.walk_live(cursor, 1000, now_ms, &mut scratch, |k, v, version, e| {
                model.insert(k.to_vec(), (v.to_vec(), version, e));
            });
            if cursor == 0 {
                break;
            }
        }
    }
    model
}

fn live(model: &Model, now_ms: u64) -> Model {
    model
        .iter()
        .filter(|(_, (_, _, e))| *e == 0 || *e > now_ms)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn recover(dir: &SimDir, workers: u32, truncate: bool) -> Result<Vec<Shard>, PersistError> {
    let options = RecoveryOptions {
        truncate_damage: truncate,
    };
    let (shards, _plan, reports) =
        recovery::recover_all(dir, workers, options, || Shard::new(small_config()))?;
    for (shard, report) in shards.iter().zip(&reports) {
        assert!(shard.last_version() >= report.max_version.min(crate::store::MAX_VERSION));
        shard.check_invariants();
    }
    Ok(shards)
}

/// Workers, their shards and logs, and the model of what is durable.
struct Node {
    shards: Vec<Shard>,
    logs: Vec<WorkerLog<SimDir>>,
    epoch: u64,
}

impl Node {
    fn start(
        dir: &Arc<SimDir>,
        workers: u32,
        policy: FsyncPolicy,
        sync_thread: bool,
        now: u64,
    ) -> Node {
        Node::start_with(dir, workers, log_config(policy, sync_thread), now)
    }

    fn start_with(dir: &Arc<SimDir>, workers: u32, config: LogConfig, now: u64) -> Node {
        let plan = recovery::plan(&**dir).expect("plan");
        let shards = recover(dir, workers, false).expect("recover");
        let logs = (0..workers)
            .map(|w| {
                WorkerLog::open(
                    Arc::clone(dir),
                    plan.next_epoch,
                    w,
                    workers,
                    &shards[w as usize],
                    now,
                    config.clone(),
                    compaction(),
                    None,
                )
                .expect("open log")
            })
            .collect();
        Node {
            shards,
            logs,
            epoch: plan.next_epoch,
        }
    }

    fn workers(&self) -> u32 {
        self.shards.len() as u32
    }

    fn worker_of(&self, key: &[u8]) -> usize {
        owner(slot(key), self.workers()) as usize
    }
}

fn key_for(rng: &mut SplitMix64) -> Vec<u8> {
    let k = rng.below(60);
    if rng.chance(10) {
        format!("{{tag}}{k}").into_bytes()
    } else {
        format!("key:{k}").into_bytes()
    }
}

/// Applies one random operation to the node and to `pending` (the model once committed).
fn random_op(node: &mut Node, rng: &mut SplitMix64, now: u64, pending: &mut Model) {
    let key = key_for(rng);
    let hash = hash_key(&key);
    let w = node.worker_of(&key);
    let (shard, log) = (&mut node.shards[w], &mut node.logs[w]);
    let typed = rng.chance(50);
    match rng.below(100) {
        0..=54 => {
            let len = if rng.chance(5) {
                9000
            } else {
                rng.below(40) as usize
            };
            let value: Vec<u8> = (0..len).map(|i| (i as u64 ^ now) as u8).collect();
            let expiry = if rng.chance(25) {
                Expiry::At(now + rng.below(400))
            } else {
                Expiry::Clear
            };
            let options = SetOptions {
                expiry,
                ..SetOptions::default()
            };
            let outcome = shard.set(hash, &key, &value, options, now).expect("set");
            let deadline = match expiry {
                Expiry::At(d) => d,
                _ => 0,
            };
            if deadline != 0 && deadline <= now {
                pending.remove(&key);
                log.log().append(&Record::Delete {
                    key: &key,
                    version_mark: outcome.version,
                });
            } else {
                pending.insert(key.clone(), (value.clone(), outcome.version, deadline));
                if typed {
                    log.log().append(&Record::Set {
                        key: &key,
                        value: &value,
                        version: outcome.version,
                        expiry_ms: deadline,
                    });
                } else {
                    log.log().capture(shard, hash, &key, now);
                }
            }
        }
        55..=74 => {
            if shard.delete(hash, &key, now) {
                pending.remove(&key);
                log.log().append(&Record::Delete {
                    key: &key,
                    version_mark: shard.last_version(),
                });
            }
        }
        75..=86 => {
            let deadline = now + 1 + rng.below(500);
            if let Some(version) = shard.expire_at(hash, &key, deadline, now).expect("expire") {
                let entry = pending.get_mut(&key).expect("the model has the key");
                entry.1 = version;
                entry.2 = deadline;
                if typed {
                    log.log().append(&Record::Expire {
                        key: &key,
                        version,
                        expiry_ms: deadline,
                    });
                } else {
                    log.log().capture(shard, hash, &key, now);
                }
            }
        }
        87..=96 => {
            if let Some(version) = shard.persist(hash, &key, now) {
                let entry = pending.get_mut(&key).expect("the model has the key");
                entry.1 = version;
                entry.2 = 0;
                log.log().append(&Record::Expire {
                    key: &key,
                    version,
                    expiry_ms: 0,
                });
            }
        }
        _ => {
            // FLUSHALL reaches every worker.
            for w in 0..node.shards.len() {
                node.shards[w].flush();
                let mark = node.shards[w].last_version();
                node.logs[w]
                    .log()
                    .append(&Record::Flush { version_mark: mark });
            }
            pending.clear();
        }
    }
}

/// Keys of `model` that worker `worker` of `workers` owns and that are live at `now_ms`.
fn owned(model: &Model, worker: u32, workers: u32, now_ms: u64) -> Model {
    live(model, now_ms)
        .into_iter()
        .filter(|(key, _)| owner(slot(key), workers) == worker)
        .collect()
}

/// Random operations in batches, snapshots at random points, a power cut at a random point,
/// recovery with a random worker count, several times over on the same directory. What each
/// old worker's keys recover to must be a state its operations went through, no older than
/// the last one acknowledged as durable (under `Always`: every acknowledged write is there,
/// nothing is invented, and a worker's log is never half-applied out of order), with the
/// versions and deadlines the model holds; the version counter is past every version.
fn crash_and_recover(seed: u64, policy: FsyncPolicy, sync_thread: bool) {
    let mut rng = SplitMix64::new(seed);
    let dir = Arc::new(SimDir::new());
    let mut now = 1_000u64;
    let mut node = Node::start(&dir, 1 + rng.below(3) as u32, policy, sync_thread, now);
    let mut durable = Model::new();
    for _round in 0..4 {
        let mut pending = durable.clone();
        // The model after every operation since the last start; the first `acked` states are
        // known durable.
        let mut history = vec![durable.clone()];
        let mut acked = 0;
        let batches = 5 + rng.below(60);
        for _ in 0..batches {
            for _ in 0..1 + rng.below(12) {
                random_op(&mut node, &mut rng, now, &mut pending);
                history.push(pending.clone());
                now += rng.below(3);
            }
            let mut seqs = Vec::new();
            for log in &mut node.logs {
                seqs.push(log.log().commit(now).expect("commit"));
            }
            if policy == FsyncPolicy::Always {
                // The worker holds the batch's replies until its writes are durable.
                for (log, seq) in node.logs.iter_mut().zip(&seqs) {
                    let mut spins = 0;
                    while log.log().durable_seq() < *seq {
                        spins += 1;
                        assert!(spins < 100_000, "seed {seed}: the syncer never caught up");
                        std::thread::sleep(std::time::Duration::from_micros(50));
                    }
                }
                acked = history.len() - 1;
            }
            if rng.chance(30) {
                for (w, log) in node.logs.iter_mut().enumerate() {
                    log.maintain(&mut node.shards[w], now).expect("maintain");
                }
            }
            if rng.chance(3) {
                let w = rng.below(node.logs.len() as u64) as usize;
                node.logs[w]
                    .start_snapshot(&node.shards[w], now)
                    .expect("snapshot");
            }
        }
        // Writes in flight: applied, maybe written, not acknowledged.
        for _ in 0..rng.below(5) {
            random_op(&mut node, &mut rng, now, &mut pending);
            history.push(pending.clone());
        }
        if rng.chance(50) {
            for log in &mut node.logs {
                let _ = log.log().commit(now);
            }
        }
        let torn = rng.chance(50).then(|| rng.next_u64());
        let old_workers = node.workers();
        let workers = 1 + rng.below(4) as u32;
        drop(node);
        dir.crash(torn);
        now += rng.below(200);
        if std::env::var("PICCOLO_DEBUG").is_ok() {
            let plan = recovery::plan(&*dir).unwrap();
            eprintln!("round: old {old_workers} new {workers} torn {torn:?}");
            for chain in &plan.chains {
                eprintln!(
                    "  chain {:?} workers {} snap {:?} logs {:?}",
                    chain.id,
                    chain.workers,
                    chain.snapshot.as_ref().map(|s| (&s.name, s.bytes)),
                    chain
                        .logs
                        .iter()
                        .map(|l| (&l.name, l.bytes))
                        .collect::<Vec<_>>()
                );
            }
            eprintln!("  obsolete {:?}", plan.obsolete);
            for chain in &plan.chains {
                for file in chain.snapshot.iter().chain(chain.logs.iter()) {
                    let bytes = dir.read(&file.name).unwrap();
                    let mut at = super::codec::HEADER_BYTES;
                    let mut line = String::new();
                    while let Ok(frame) = super::codec::decode(&bytes[at..]) {
                        at += frame.len;
                        let key = frame
                            .record
                            .key()
                            .map(|k| String::from_utf8_lossy(k).into_owned());
                        line.push_str(&format!(
                            " {}:{:?}/{}",
                            frame.seq,
                            key,
                            frame.record.max_version()
                        ));
                        if matches!(frame.record, Record::Flush { .. }) {
                            line.push_str("FLUSH");
                        }
                    }
                    eprintln!("    {} [{} of {}]:{}", file.name, at, bytes.len(), line);
                }
            }
        }
        node = Node::start(&dir, workers, policy, sync_thread, now);
        let got = dump(&mut node.shards, now);
        for w in 0..old_workers {
            let mine = owned(&got, w, old_workers, now);
            let found = history[acked..]
                .iter()
                .any(|state| owned(state, w, old_workers, now) == mine);
            if !found {
                let summary = |m: &Model| -> Vec<(String, u64, u64)> {
                    m.iter()
                        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.1, v.2))
                        .collect()
                };
                panic!(
                    "seed {seed}: worker {w} of {old_workers} recovered a state it never had \
                     (or lost acknowledged writes)\n got:   {:?}\n acked: {:?}\n last:  {:?}",
                    summary(&mine),
                    summary(&owned(&history[acked], w, old_workers, now)),
                    summary(&owned(history.last().expect("states"), w, old_workers, now)),
                );
            }
        }
        for (key, (_, version, _)) in &got {
            let w = node.worker_of(key);
            assert!(node.shards[w].last_version() >= *version, "seed {seed}");
        }
        durable = got;
        assert!(node.epoch >= 2);
    }
}

#[test]
fn always_inline_recovers_exactly_the_acknowledged_writes() {
    for seed in seeds("always_inline", 12) {
        eprintln!("seed {seed}");
        crash_and_recover(seed, FsyncPolicy::Always, false);
    }
}

#[test]
fn always_with_syncer_thread_recovers_exactly_the_acknowledged_writes() {
    for seed in seeds("always_syncer", 4) {
        eprintln!("seed {seed}");
        crash_and_recover(seed, FsyncPolicy::Always, true);
    }
}

#[test]
fn everysec_and_no_recover_without_error() {
    for seed in seeds("everysec_no", 4) {
        eprintln!("seed {seed}");
        crash_and_recover(seed, FsyncPolicy::EverySec, false);
        crash_and_recover(seed, FsyncPolicy::No, false);
    }
}

#[test]
fn a_different_worker_count_loses_nothing() {
    let dir = Arc::new(SimDir::new());
    let mut node = Node::start(&dir, 3, FsyncPolicy::Always, false, 1000);
    let mut model = Model::new();
    for i in 0..3000u32 {
        let key = format!("user:{i}").into_bytes();
        let w = node.worker_of(&key);
        let outcome = node.shards[w]
            .set(
                hash_key(&key),
                &key,
                &i.to_le_bytes(),
                SetOptions::default(),
                1000,
            )
            .unwrap();
        node.logs[w]
            .log()
            .capture(&mut node.shards[w], hash_key(&key), &key, 1000);
        model.insert(key, (i.to_le_bytes().to_vec(), outcome.version, 0));
    }
    // A snapshot of one worker only, so the next runs mix snapshots and logs.
    assert!(node.logs[1].start_snapshot(&node.shards[1], 1000).unwrap());
    let mut steps = 0;
    while node.logs[1]
        .maintain(&mut node.shards[1], 1000)
        .unwrap()
        .snapshot_done
        .is_none()
    {
        // Sealing waits for the log to be durable up to where the walk ended.
        node.logs[1].log().commit(1000).unwrap();
        steps += 1;
        assert!(steps < 10_000);
    }
    for log in &mut node.logs {
        log.log().commit(1000).unwrap();
    }
    drop(node);
    for workers in [1u32, 2, 5, 3, 4, 1] {
        let mut node = Node::start(&dir, workers, FsyncPolicy::Always, false, 1000);
        assert_eq!(dump(&mut node.shards, 1000), model, "{workers} workers");
        drop(node);
    }
}

/// Writes `count` distinct keys in batches of 4 with an inline sync per batch; returns the
/// log's name and the keys in order.
fn one_log(dir: &Arc<SimDir>, count: u32) -> (String, Vec<Vec<u8>>) {
    let mut node = Node::start(dir, 1, FsyncPolicy::Always, false, 1000);
    let mut keys = Vec::new();
    for i in 0..count {
        let key = format!("k{i:04}").into_bytes();
        node.shards[0]
            .set(
                hash_key(&key),
                &key,
                b"some value",
                SetOptions::default(),
                1000,
            )
            .unwrap();
        node.logs[0]
            .log()
            .capture(&mut node.shards[0], hash_key(&key), &key, 1000);
        if i % 4 == 3 {
            node.logs[0].log().commit(1000).unwrap();
        }
        keys.push(key);
    }
    node.logs[0].log().commit(1000).unwrap();
    let name = node.logs[0].log().segments().last().unwrap().0.to_string();
    drop(node);
    (name, keys)
}

fn log_config_big() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 30,
        ..log_config(FsyncPolicy::Always, false)
    }
}

/// Cut the log at every byte offset of its last records: recovery keeps exactly the records
/// before the cut, never panics, never loads a partial record.
#[test]
fn torn_tails_at_every_offset_keep_every_record_before_them() {
    let dir = Arc::new(SimDir::new());
    let mut node = Node::start_with(&dir, 1, log_config_big(), 1000);
    let mut ends = Vec::new(); // file length after each record's batch
    let mut keys = Vec::new();
    for i in 0..40u32 {
        let key = format!("k{i:04}").into_bytes();
        node.shards[0]
            .set(
                hash_key(&key),
                &key,
                &[b'v'; 20],
                SetOptions::default(),
                1000,
            )
            .unwrap();
        node.logs[0]
            .log()
            .capture(&mut node.shards[0], hash_key(&key), &key, 1000);
        node.logs[0].log().commit(1000).unwrap();
        keys.push(key);
    }
    node.logs[0].log().sync_now().unwrap();
    let name = node.logs[0].log().segments().last().unwrap().0.to_string();
    let full = dir.read(&name).unwrap();
    drop(node);
    // Frame boundaries: decode the file.
    let mut at = super::codec::HEADER_BYTES;
    while at < full.len() {
        let frame = super::codec::decode(&full[at..]).unwrap();
        at += frame.len;
        if matches!(frame.record, Record::Set { .. }) {
            ends.push(at);
        }
    }
    assert_eq!(ends.len(), 40);
    let first_cut = ends[30];
    for cut in first_cut..full.len() {
        let copy = Arc::new(SimDir::new());
        for other in dir.list().unwrap() {
            let bytes = dir.read(&other).unwrap();
            let mut file = copy.create(&other).unwrap();
            let keep = if other == name {
                &bytes[..cut]
            } else {
                &bytes[..]
            };
            super::fs::File::write(&mut file, keep).unwrap();
        }
        let mut shards = recover(&copy, 1, false).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let kept = ends.iter().filter(|&&end| end <= cut).count();
        let got = dump(&mut shards, 1000);
        let expected: Vec<&Vec<u8>> = keys[..kept].iter().collect();
        assert_eq!(got.keys().collect::<Vec<_>>(), expected, "cut at {cut}");
        // The cut was made: the file now ends at the last good record.
        let after = copy.read(&name).unwrap();
        assert!(after.len() <= cut);
    }
}

/// Flip random bytes anywhere in a log: recovery never panics and never loads a damaged
/// record; damage in the tail is cut, damage before it (under a later sync mark) is an error
/// naming the file and offset unless truncation is asked for; with truncation, everything
/// before the damage is kept.
#[test]
fn flipped_bytes_are_cut_or_refused_never_loaded() {
    for seed in seeds("flipped_bytes", 60) {
        let mut rng = SplitMix64::new(seed);
        let dir = Arc::new(SimDir::new());
        let (name, keys) = one_log(&dir, 50);
        let full = dir.read(&name).unwrap();
        let at = super::codec::HEADER_BYTES
            + rng.below((full.len() - super::codec::HEADER_BYTES) as u64) as usize;
        dir.corrupt(&name, at, 1 << rng.below(8)).unwrap();
        // Records wholly before the damaged byte.
        let mut offset = super::codec::HEADER_BYTES;
        let mut intact = 0;
        while offset < full.len() {
            let frame = super::codec::decode(&full[offset..]).unwrap();
            if offset + frame.len > at {
                break;
            }
            if matches!(frame.record, Record::Set { .. }) {
                intact += 1;
            }
            offset += frame.len;
        }
        match recover(&dir, 1, false) {
            Ok(mut shards) => {
                let got = dump(&mut shards, 1000);
                assert_eq!(got.len(), intact, "seed {seed}: flip at {at}");
                for key in &keys[..intact] {
                    assert!(got.contains_key(key), "seed {seed}");
                }
            }
            Err(PersistError::Damaged {
                file,
                offset: damage,
                ..
            }) => {
                assert_eq!(file, name, "seed {seed}");
                assert!(damage as usize <= at, "seed {seed}");
                let mut shards = recover(&dir, 1, true).expect("truncation recovers");
                let got = dump(&mut shards, 1000);
                assert_eq!(got.len(), intact, "seed {seed}: flip at {at}");
                // And the cut is permanent: a plain start works now.
                recover(&dir, 1, false).expect("after the cut");
            }
            Err(other) => panic!("seed {seed}: {other}"),
        }
    }
}

/// Injected faults under `Always`: what was acknowledged as durable survives a power cut, a
/// failed sync is never followed by a success, and commits refuse after the first failure.
#[test]
fn disk_faults_never_lose_an_acknowledged_write() {
    for seed in seeds("disk_faults", 24) {
        eprintln!("seed {seed}");
        let mut rng = SplitMix64::new(seed);
        let dir = Arc::new(SimDir::new());
        let sync_thread = rng.chance(50);
        let mut node = Node::start(&dir, 1, FsyncPolicy::Always, sync_thread, 1000);
        let counters = dir.counters();
        let faults = match rng.below(4) {
            0 => SimFaults {
                short_writes: true,
                seed,
                ..SimFaults::default()
            },
            1 => SimFaults {
                fail_write_number: Some(counters.writes + 1 + rng.below(30)),
                ..SimFaults::default()
            },
            2 => SimFaults {
                fail_sync_number: Some(counters.syncs + 1 + rng.below(30)),
                ..SimFaults::default()
            },
            _ => SimFaults {
                capacity_bytes: Some(dir.counters().bytes_written + 500 + rng.below(3000)),
                ..SimFaults::default()
            },
        };
        dir.set_faults(faults);
        let mut acknowledged = Model::new();
        let mut failed = false;
        let mut durable_after_failure = None;
        for i in 0..200u32 {
            let key = format!("k{}", rng.below(80)).into_bytes();
            let value = i.to_le_bytes();
            let outcome = node.shards[0]
                .set(hash_key(&key), &key, &value, SetOptions::default(), 1000)
                .unwrap();
            node.logs[0]
                .log()
                .capture(&mut node.shards[0], hash_key(&key), &key, 1000);
            match node.logs[0].log().commit(1000) {
                Ok(seq) => {
                    let mut spins = 0;
                    while node.logs[0].log().durable_seq() < seq
                        && node.logs[0].log().failure().is_none()
                    {
                        spins += 1;
                        assert!(spins < 100_000);
                        std::thread::sleep(std::time::Duration::from_micros(50));
                    }
                    if node.logs[0].log().durable_seq() >= seq {
                        assert!(!failed, "seed {seed}: durable after a failure");
                        acknowledged.insert(key, (value.to_vec(), outcome.version, 0));
                    } else {
                        failed = true;
                    }
                }
                Err(_) => failed = true,
            }
            if failed {
                let durable = node.logs[0].log().durable_seq();
                let before = *durable_after_failure.get_or_insert(durable);
                assert_eq!(
                    durable, before,
                    "seed {seed}: durable seq moved after a failure"
                );
                assert!(node.logs[0].log().sync_now().is_err(), "seed {seed}");
            }
        }
        drop(node);
        dir.crash(None);
        let mut shards = recover(&dir, 1 + rng.below(3) as u32, false).expect("recover");
        let got = dump(&mut shards, 1000);
        for (key, (value, version, _)) in &acknowledged {
            let (got_value, got_version, _) =
                got.get(key).unwrap_or_else(|| panic!("seed {seed}: lost"));
            // A later, unacknowledged write of the key may have survived: it has a larger version.
            assert!(got_version >= version, "seed {seed}");
            if got_version == version {
                assert_eq!(got_value, value, "seed {seed}");
            }
        }
    }
}

#[test]
fn compaction_bounds_disk_use() {
    let dir = Arc::new(SimDir::new());
    let mut node = Node::start(&dir, 1, FsyncPolicy::No, false, 1000);
    let mut live_bytes = 0;
    let mut max_disk = 0u64;
    for round in 0..200u32 {
        for i in 0..100u32 {
            let key = format!("key:{i:05}").into_bytes();
            let value = vec![round as u8; 32];
            node.shards[0]
                .set(hash_key(&key), &key, &value, SetOptions::default(), 1000)
                .unwrap();
            node.logs[0]
                .log()
                .capture(&mut node.shards[0], hash_key(&key), &key, 1000);
        }
        node.logs[0].log().commit(1000).unwrap();
        for _ in 0..20 {
            node.logs[0].maintain(&mut node.shards[0], 1000).unwrap();
        }
        let disk: u64 = dir
            .list()
            .unwrap()
            .iter()
            .map(|n| dir.read(n).unwrap().len() as u64)
            .sum();
        max_disk = max_disk.max(disk);
        live_bytes = node.shards[0].memory().live_bytes as u64;
    }
    let disk: u64 = dir
        .list()
        .unwrap()
        .iter()
        .map(|n| dir.read(n).unwrap().len() as u64)
        .sum();
    // 200 rounds wrote 20,000 records (~1 MB of log); compaction keeps far less.
    let written = node.logs[0].log().stats().bytes_written;
    assert!(written > 1_000_000, "{written}");
    assert!(
        max_disk < written / 10,
        "max disk {max_disk} of {written} written"
    );
    assert!(disk > 0 && live_bytes > 0);
    drop(node);
    let mut shards = recover(&dir, 2, false).unwrap();
    assert_eq!(dump(&mut shards, 1000).len(), 100);
}

/// `PICCOLO_TEST_SYNCED_OFFSETS`: one `FILE OFFSET` line per log file with its synced length,
/// rewritten after each sync; cutting every log back to it gives what a power cut leaves.
#[test]
fn synced_offsets_name_every_log_and_its_synced_length() {
    let dir = Arc::new(SimDir::new());
    let offsets = super::fs::SyncedOffsets::new(&dir);
    let config = LogConfig {
        synced_offsets: Some(Arc::clone(&offsets)),
        segment_bytes: 1500,
        ..log_config(FsyncPolicy::Always, false)
    };
    let chain = super::ChainId {
        epoch: 1,
        worker: 0,
    };
    let mut log =
        super::LogWriter::create(Arc::clone(&dir), chain, 1, 1, 0, 1, config, None).unwrap();
    for i in 1..=60u64 {
        let key = format!("key:{i}");
        log.append(&Record::Set {
            key: key.as_bytes(),
            value: b"0123456789",
            version: i,
            expiry_ms: 0,
        });
        log.commit(1).unwrap();
    }
    let text = String::from_utf8(dir.read(super::fs::SYNCED_OFFSETS_FILE).unwrap()).unwrap();
    let lines = super::fs::parse_synced_offsets(&text);
    let segments: Vec<String> = log.segments().map(|(name, _)| name.to_string()).collect();
    assert!(segments.len() > 2, "the log rotated");
    assert_eq!(
        lines
            .iter()
            .map(|(name, _)| name.clone())
            .collect::<Vec<_>>(),
        segments
    );
    for (name, offset) in &lines {
        assert_eq!(
            *offset,
            dir.read(name).unwrap().len() as u64,
            "{name}: all synced"
        );
    }
    // Unsynced writes past the offsets, then a cut to them: only the acknowledged 60 remain.
    drop(log);
    let mut log = super::LogWriter::create(
        Arc::clone(&dir),
        super::ChainId {
            epoch: 2,
            worker: 0,
        },
        1,
        1,
        60,
        1,
        LogConfig {
            synced_offsets: Some(Arc::clone(&offsets)),
            ..log_config(FsyncPolicy::No, false)
        },
        None,
    )
    .unwrap();
    log.append(&Record::Set {
        key: b"unsynced",
        value: b"x",
        version: 61,
        expiry_ms: 0,
    });
    log.commit(1).unwrap();
    let text = String::from_utf8(dir.read(super::fs::SYNCED_OFFSETS_FILE).unwrap()).unwrap();
    for (name, offset) in super::fs::parse_synced_offsets(&text) {
        dir.truncate(&name, offset).unwrap();
    }
    drop(log);
    let mut shards = recover(&dir, 1, false).unwrap();
    let got = dump(&mut shards, 1);
    assert_eq!(got.len(), 60);
    assert!(!got.contains_key(&b"unsynced"[..]));
}

/// The progress callback sees the bytes grow to the total, file by file.
#[test]
fn recovery_reports_progress() {
    let dir = Arc::new(SimDir::new());
    let (_, keys) = one_log(&dir, 300);
    let plan = recovery::plan(&*dir).unwrap();
    let mut shard = Shard::new(small_config());
    let mut seen: Vec<super::recovery::Progress> = Vec::new();
    let report = recovery::recover_worker(
        &*dir,
        &plan,
        0,
        1,
        RecoveryOptions {
            truncate_damage: false,
        },
        &mut shard,
        &mut |progress| seen.push(*progress),
    )
    .unwrap();
    assert_eq!(report.records_applied, keys.len() as u64);
    let last = seen.last().unwrap();
    assert_eq!(last.bytes_done, last.bytes_total);
    assert_eq!(last.files_done, last.files_total);
    assert_eq!(last.records_applied, keys.len() as u64);
    assert!(seen.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
    assert_eq!(seen[0].bytes_done, 0);
}
