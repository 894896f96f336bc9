//! Recovery: from the files of a data directory back to shards, for any worker count.
//!
//! Each start of the server is a new *epoch*; a worker's files of one epoch are its *chain*
//! (log segments, and at most one live snapshot). A chain is written by one thread of one run,
//! so damage in it can only be at its end (a torn tail) unless the disk corrupted it.
//!
//! 1. [`plan`] reads only the file headers. For every slot it finds its *base*: the newest
//!    epoch whose owner of that slot has a complete snapshot. A chain is needed if it owns a
//!    slot whose base is not newer than the chain; everything else is obsolete.
//! 2. [`recover_worker`], once per new worker (in parallel, each on its own shard), reads every
//!    needed chain whose slots overlap its own, oldest epoch first, and applies the records of
//!    its slots: for a slot whose base is epoch `e`, the snapshot of `e` and the log from the
//!    snapshot's start seq; for later epochs, their whole logs. Records are post-states, so
//!    applying them in seq order per chain and in epoch order across chains gives each key its
//!    last state. Time is 0 during the load (nothing expires until every record is in: a later
//!    record may still move a deadline); versions are kept; the version counter ends past the
//!    largest version any record or header mentions.
//! 3. [`finish`] truncates torn tails (and, if asked, damage before the tail), and removes
//!    obsolete files. Then the new run starts its chains in [`Plan::next_epoch`].
//!
//! Damage: a bad frame in the last segment of a chain is a torn tail unless a later good
//! `SyncMark` says a sync had covered it; anything else (a bad frame in an earlier segment or
//! in a snapshot, a gap in the seqs) is corruption: an error naming the file and the offset,
//! unless [`RecoveryOptions::truncate_damage`] asks to cut there and lose the rest of that
//! chain (Redis's `aof-load-truncated` and `redis-check-aof --fix`).

use std::collections::BTreeMap;
use std::time::Instant;

use super::PersistError;
use super::codec::{FileHeader, FileKind, Frame, HEADER_BYTES, Record};
use super::files::{self, ChainId, FileName};
use super::fs::Dir;
use super::read::{ReadEnd, open_with_header, read_frames, synced_past};
use crate::proto::slot::{SLOT_COUNT, slot};
use crate::store::{Shard, hash_key};

/// The worker that owns `slot` when there are `workers`: contiguous ranges, as the server's
/// router assigns them (slot rule 1 in the file headers).
#[inline]
pub fn owner(slot: u16, workers: u32) -> u32 {
    (u32::from(slot) * workers) / u32::from(SLOT_COUNT)
}

/// How to recover.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryOptions {
    /// Cut damage found before a chain's tail (losing the rest of that chain) instead of
    /// refusing to start.
    pub truncate_damage: bool,
}

/// A log segment in a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedFile {
    /// File name.
    pub name: String,
    /// Its header.
    pub header: FileHeader,
    /// Its size.
    pub bytes: u64,
}

/// One worker's files of one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Epoch and worker.
    pub id: ChainId,
    /// Workers of that epoch.
    pub workers: u32,
    /// The live snapshot, if any.
    pub snapshot: Option<PlannedFile>,
    /// The log segments to replay, in seq order.
    pub logs: Vec<PlannedFile>,
}

/// What [`plan`] found.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Needed chains, by epoch then worker.
    pub chains: Vec<Chain>,
    /// Per slot: the epoch of its base snapshot, 0 if none.
    pub base_epoch: Vec<u64>,
    /// The epoch the new run writes.
    pub next_epoch: u64,
    /// Files no chain needs (superseded chains, old snapshots, logs before a snapshot, partial
    /// snapshots, empty segments cut at their header): [`finish`] removes them.
    pub obsolete: Vec<String>,
    /// Files this version does not recognise (left alone).
    pub unknown: Vec<String>,
    /// Bytes of the needed files.
    pub bytes: u64,
}

impl Plan {
    /// Slots of `chain` that the chain is the source of (their base is not newer).
    fn chain_needed_for(&self, chain: &Chain, slot: u16) -> bool {
        owner(slot, chain.workers) == chain.id.worker
            && self.base_epoch[slot as usize] <= chain.id.epoch
    }
}

fn damaged(name: &str, offset: u64, reason: impl Into<String>) -> PersistError {
    PersistError::Damaged {
        file: name.to_string(),
        offset,
        reason: reason.into(),
    }
}

/// Reads the headers of every data file and decides what recovery must read.
pub fn plan<D: Dir>(dir: &D) -> Result<Plan, PersistError> {
    let mut names = dir
        .list()
        .map_err(|e| PersistError::io("list the data directory", &e))?;
    names.sort();
    let mut obsolete = Vec::new();
    let mut unknown = Vec::new();
    let mut snapshots: BTreeMap<ChainId, Vec<PlannedFile>> = BTreeMap::new();
    let mut logs: BTreeMap<ChainId, Vec<PlannedFile>> = BTreeMap::new();
    let mut max_epoch = 0;
    for name in names {
        let parsed = match files::parse(&name) {
            Some(parsed) => parsed,
            None => {
                if name != super::fs::SYNCED_OFFSETS_FILE && !name.ends_with(".tmp") {
                    unknown.push(name);
                }
                continue;
            }
        };
        let (chain, seq, kind) = match parsed {
            FileName::PartialSnapshot(chain, _) => {
                max_epoch = max_epoch.max(chain.epoch);
                obsolete.push(name);
                continue;
            }
            FileName::Log(chain, seq) => (chain, seq, FileKind::Log),
            FileName::Snapshot(chain, seq) => (chain, seq, FileKind::Snapshot),
        };
        max_epoch = max_epoch.max(chain.epoch);
        let (header, bytes) = match open_with_header(dir, &name) {
            Ok((_, header, bytes)) => (header, bytes),
            Err(PersistError::Damaged { .. }) if kind == FileKind::Log => {
                // A segment whose header never became durable: the run died while creating
                // it (a later segment must not exist; checked below).
                logs.entry(chain).or_default().push(PlannedFile {
                    name,
                    header: FileHeader {
                        kind,
                        format_version: 0,
                        epoch: chain.epoch,
                        worker: chain.worker,
                        workers: 0,
                        first_seq: seq,
                        version_mark: 0,
                        created_ms: 0,
                        slot_rule: 0,
                    },
                    bytes: 0,
                });
                continue;
            }
            Err(error) => return Err(error),
        };
        if header.kind != kind
            || header.epoch != chain.epoch
            || header.worker != chain.worker
            || header.first_seq != seq
        {
            return Err(damaged(&name, 0, "the header does not match the file name"));
        }
        let planned = PlannedFile {
            name,
            header,
            bytes,
        };
        match kind {
            FileKind::Log => logs.entry(chain).or_default().push(planned),
            FileKind::Snapshot => snapshots.entry(chain).or_default().push(planned),
        }
    }
    // Chains: the newest snapshot of each, and its logs.
    let mut chains: Vec<Chain> = Vec::new();
    let ids: std::collections::BTreeSet<ChainId> =
        logs.keys().chain(snapshots.keys()).copied().collect();
    let mut epoch_workers: BTreeMap<u64, u32> = BTreeMap::new();
    for id in ids {
        let mut chain_snapshots = snapshots.remove(&id).unwrap_or_default();
        chain_snapshots.sort_by_key(|s| s.header.first_seq);
        let snapshot = chain_snapshots.pop();
        obsolete.extend(chain_snapshots.into_iter().map(|s| s.name));
        let mut chain_logs = logs.remove(&id).unwrap_or_default();
        chain_logs.sort_by_key(|l| l.header.first_seq);
        // A segment with an unreadable header can only be the last one, cut at creation.
        if let Some(position) = chain_logs.iter().position(|l| l.header.format_version == 0) {
            if position + 1 != chain_logs.len() {
                let bad = &chain_logs[position];
                return Err(damaged(
                    &bad.name,
                    0,
                    "unreadable header before the chain's end",
                ));
            }
            obsolete.push(chain_logs.pop().expect("present").name);
        }
        let workers = snapshot
            .iter()
            .chain(chain_logs.iter())
            .map(|f| f.header.workers)
            .next();
        let Some(workers) = workers else {
            continue;
        };
        for file in snapshot.iter().chain(chain_logs.iter()) {
            if file.header.workers != workers {
                return Err(damaged(
                    &file.name,
                    0,
                    "worker count differs within its chain",
                ));
            }
        }
        if *epoch_workers.entry(id.epoch).or_insert(workers) != workers {
            return Err(PersistError::Invalid(format!(
                "epoch {} has files written with different worker counts",
                id.epoch
            )));
        }
        chains.push(Chain {
            id,
            workers,
            snapshot,
            logs: chain_logs,
        });
    }
    // Bases: the newest snapshot per slot.
    let mut base_epoch = vec![0u64; SLOT_COUNT as usize];
    for chain in &chains {
        if chain.snapshot.is_some() {
            for slot in 0..SLOT_COUNT {
                if owner(slot, chain.workers) == chain.id.worker {
                    let base = &mut base_epoch[slot as usize];
                    *base = (*base).max(chain.id.epoch);
                }
            }
        }
    }
    let mut plan = Plan {
        chains: Vec::new(),
        base_epoch,
        next_epoch: max_epoch + 1,
        obsolete,
        unknown,
        bytes: 0,
    };
    for mut chain in chains {
        let needed = (0..SLOT_COUNT).any(|slot| plan.chain_needed_for(&chain, slot));
        if !needed {
            plan.obsolete.extend(chain.snapshot.take().map(|s| s.name));
            plan.obsolete.extend(chain.logs.drain(..).map(|l| l.name));
            continue;
        }
        match &chain.snapshot {
            Some(snapshot) => {
                let start = snapshot.header.first_seq;
                // Segments whose successor starts at or before the snapshot's start hold only
                // records before it.
                while chain.logs.len() > 1 && chain.logs[1].header.first_seq <= start {
                    plan.obsolete.push(chain.logs.remove(0).name);
                }
                match chain.logs.first() {
                    Some(first) if first.header.first_seq <= start => {}
                    _ => {
                        return Err(damaged(
                            &snapshot.name,
                            0,
                            format!("no log segment holds seq {start}, where the snapshot starts"),
                        ));
                    }
                }
            }
            None => match chain.logs.first() {
                Some(first) if first.header.first_seq == 1 => {}
                Some(first) => {
                    return Err(damaged(
                        &first.name,
                        0,
                        "the chain's first segment is missing (and it has no snapshot)",
                    ));
                }
                None => continue,
            },
        }
        plan.bytes += chain.snapshot.iter().map(|s| s.bytes).sum::<u64>();
        plan.bytes += chain.logs.iter().map(|l| l.bytes).sum::<u64>();
        plan.chains.push(chain);
    }
    Ok(plan)
}

/// Progress of one worker's load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Files read so far.
    pub files_done: usize,
    /// Files this worker will read.
    pub files_total: usize,
    /// Bytes read so far.
    pub bytes_done: u64,
    /// Bytes this worker will read.
    pub bytes_total: u64,
    /// Records applied so far.
    pub records_applied: u64,
}

/// A cut recovery made (or will make in [`finish`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The file.
    pub file: String,
    /// Where the damage starts; the file keeps the bytes before it.
    pub offset: u64,
    /// Bytes after the damage, dropped.
    pub dropped_bytes: u64,
    /// Good frames found after the damage (written but never synced, or lost to the cut).
    pub frames_after: u64,
    /// What was wrong.
    pub reason: String,
    /// A torn tail (expected after a crash) or damage before the tail (cut on request).
    pub tail: bool,
    /// Later segments of the same chain that were not replayed (damage before the tail).
    pub later_files: Vec<String>,
}

/// What one worker's load did.
#[derive(Clone, Debug, Default)]
pub struct WorkerRecovery {
    /// Records applied to the shard.
    pub records_applied: u64,
    /// Records read but belonging to other workers' slots or superseded.
    pub records_skipped: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// The largest version seen (the shard's counter is raised to it).
    pub max_version: u64,
    /// Cuts to make.
    pub cuts: Vec<Cut>,
    /// Files read.
    pub files_read: usize,
    /// Time taken, ms.
    pub elapsed_ms: u64,
}

/// Loads into `shard` every record of the slots worker `worker` of `workers` owns. Pure with
/// respect to the directory (reads only; the cuts are returned for [`finish`]), so all new
/// workers can run it at once.
pub fn recover_worker<D: Dir>(
    dir: &D,
    plan: &Plan,
    worker: u32,
    workers: u32,
    options: RecoveryOptions,
    shard: &mut Shard,
    progress: &mut dyn FnMut(&Progress),
) -> Result<WorkerRecovery, PersistError> {
    assert!(worker < workers);
    let started = Instant::now();
    let mine = |slot: u16| owner(slot, workers) == worker;
    let mut report = WorkerRecovery::default();
    // Chains that are the source of at least one of my slots, and whether all their records
    // are mine (then no slot is computed per record).
    let mut work = Vec::new();
    for chain in &plan.chains {
        // `all`: every slot the chain's worker owned is needed from it and is mine, so every
        // record of the chain is mine (its files may hold keys of slots a newer snapshot
        // supersedes: those make `all` false).
        let (mut any, mut all) = (false, true);
        for slot in 0..SLOT_COUNT {
            if owner(slot, chain.workers) != chain.id.worker {
                continue;
            }
            if plan.chain_needed_for(chain, slot) && mine(slot) {
                any = true;
            } else {
                all = false;
            }
        }
        if any {
            work.push((chain, all));
        }
    }
    let mut state = Progress {
        files_total: work
            .iter()
            .map(|(c, _)| c.logs.len() + usize::from(c.snapshot.is_some()))
            .sum(),
        bytes_total: work
            .iter()
            .map(|(c, _)| {
                c.logs.iter().map(|l| l.bytes).sum::<u64>()
                    + c.snapshot.as_ref().map_or(0, |s| s.bytes)
            })
            .sum(),
        ..Progress::default()
    };
    progress(&state);
    for (chain, take_all) in work {
        let keep = |key: &[u8]| {
            if take_all {
                return true;
            }
            let slot = slot(key);
            mine(slot) && plan.chain_needed_for(chain, slot)
        };
        let mut apply = |frame: &Frame<'_>, report: &mut WorkerRecovery| -> Result<(), String> {
            let record = &frame.record;
            report.max_version = report.max_version.max(record.max_version());
            match *record {
                Record::Set {
                    key,
                    value,
                    version,
                    expiry_ms,
                } if keep(key) => shard
                    .restore(hash_key(key), key, value, version, expiry_ms, 0)
                    .map_err(|e| format!("cannot restore a key: {e}"))?,
                Record::Delete { key, .. } if keep(key) => {
                    shard.delete(hash_key(key), key, 0);
                }
                Record::Expire {
                    key,
                    version,
                    expiry_ms,
                } if keep(key) => {
                    shard
                        .restore_expiry(hash_key(key), key, version, expiry_ms, 0)
                        .map_err(|e| format!("cannot restore a deadline: {e}"))?;
                }
                Record::Flush { .. } => {
                    // Every key loaded so far has a base no newer than this epoch (epochs are
                    // read in order), so an old worker that owned every slot owned them all.
                    if chain.workers == 1 {
                        shard.flush();
                    } else {
                        shard.retain_keys(0, |key| {
                            let slot = slot(key);
                            !(plan.chain_needed_for(chain, slot))
                        });
                    }
                }
                Record::Set { .. } | Record::Delete { .. } | Record::Expire { .. } => {
                    report.records_skipped += 1;
                    return Ok(());
                }
                Record::SyncMark { .. } | Record::Skipped { .. } => return Ok(()),
                Record::SnapshotEnd { .. } => return Err("a snapshot end inside a log".into()),
            }
            report.records_applied += 1;
            Ok(())
        };
        // The snapshot, if this chain is the base of some slots.
        let mut replay_from = 1;
        if let Some(snapshot) = &chain.snapshot {
            replay_from = snapshot.header.first_seq;
            report.max_version = report.max_version.max(snapshot.header.version_mark);
            let (file, _, len) = open_with_header(dir, &snapshot.name)?;
            let mut end: Option<(u64, u64)> = None;
            let mut expected = 1;
            let bytes_before = state.bytes_done;
            let outcome = read_frames(
                &file,
                &snapshot.name,
                HEADER_BYTES as u64,
                len,
                |offset, frame| -> Result<(), PersistError> {
                    if end.is_some() {
                        return Err(damaged(&snapshot.name, offset, "records after the end"));
                    }
                    if frame.seq != expected {
                        return Err(damaged(&snapshot.name, offset, "record out of order"));
                    }
                    expected += 1;
                    if let Record::SnapshotEnd {
                        records,
                        version_mark,
                    } = frame.record
                    {
                        end = Some((records, version_mark));
                        report.max_version = report.max_version.max(version_mark);
                        return Ok(());
                    }
                    if !matches!(frame.record, Record::Set { .. }) {
                        return Err(damaged(&snapshot.name, offset, "not a key in a snapshot"));
                    }
                    apply(frame, &mut report).map_err(|e| damaged(&snapshot.name, offset, e))
                },
                |done| {
                    state.bytes_done = bytes_before + done;
                    progress(&state);
                },
            );
            let outcome = outcome?;
            report.bytes_read += len;
            state.bytes_done = bytes_before + len;
            state.records_applied = report.records_applied;
            report.files_read += 1;
            state.files_done += 1;
            let complete = matches!(outcome, ReadEnd::Clean { .. })
                && end.is_some_and(|(records, _)| records + 2 == expected);
            if !complete {
                let (offset, reason) = match outcome {
                    ReadEnd::Damaged { offset, error, .. } => (offset, error.to_string()),
                    ReadEnd::Clean { len } => (len, "the snapshot has no end record".to_string()),
                };
                if !options.truncate_damage {
                    return Err(damaged(&snapshot.name, offset, reason));
                }
                report.cuts.push(Cut {
                    file: snapshot.name.clone(),
                    offset,
                    dropped_bytes: len - offset,
                    frames_after: 0,
                    reason,
                    tail: false,
                    later_files: Vec::new(),
                });
            }
        }
        // The logs.
        let mut expected_seq: Option<u64> = None;
        for (index, log) in chain.logs.iter().enumerate() {
            let last = index + 1 == chain.logs.len();
            if let Some(expected) = expected_seq {
                if log.header.first_seq != expected {
                    let reason = format!(
                        "seqs jump from {} to {} (a segment is missing or was cut)",
                        expected - 1,
                        log.header.first_seq
                    );
                    return Err(damaged(&log.name, 0, reason));
                }
            }
            report.max_version = report.max_version.max(log.header.version_mark);
            let (file, _, len) = open_with_header(dir, &log.name)?;
            let mut next_seq = log.header.first_seq;
            let mut out_of_order: Option<u64> = None;
            let bytes_before = state.bytes_done;
            let outcome = read_frames(
                &file,
                &log.name,
                HEADER_BYTES as u64,
                len,
                |offset, frame| -> Result<(), PersistError> {
                    if out_of_order.is_some() {
                        return Ok(());
                    }
                    if frame.seq != next_seq {
                        out_of_order = Some(offset);
                        return Ok(());
                    }
                    next_seq += 1;
                    if frame.seq < replay_from {
                        return Ok(());
                    }
                    apply(frame, &mut report).map_err(|e| damaged(&log.name, offset, e))
                },
                |done| {
                    state.bytes_done = bytes_before + done;
                    progress(&state);
                },
            )?;
            report.bytes_read += len;
            state.bytes_done = bytes_before + len;
            state.records_applied = report.records_applied;
            report.files_read += 1;
            state.files_done += 1;
            let damage = match (out_of_order, outcome) {
                (Some(offset), _) => Some((offset, "record out of sequence".to_string())),
                (None, ReadEnd::Damaged { offset, error, .. }) => Some((offset, error.to_string())),
                (None, ReadEnd::Clean { .. }) => None,
            };
            expected_seq = Some(next_seq);
            let Some((offset, reason)) = damage else {
                continue;
            };
            let (synced, frames_after) = synced_past(&file, &log.name, offset, len)?;
            let tail = last && !synced;
            let later_files: Vec<String> = chain.logs[index + 1..]
                .iter()
                .map(|l| l.name.clone())
                .collect();
            if !tail && !options.truncate_damage {
                let why = if last {
                    "a later sync mark says these bytes had been synced"
                } else {
                    "in a segment that was synced whole before the next one began"
                };
                return Err(damaged(
                    &log.name,
                    offset,
                    format!(
                        "{reason}, before the tail ({why}); {frames_after} good records follow"
                    ),
                ));
            }
            report.cuts.push(Cut {
                file: log.name.clone(),
                offset,
                dropped_bytes: len - offset,
                frames_after,
                reason,
                tail,
                later_files,
            });
            break;
        }
        state.records_applied = report.records_applied;
        progress(&state);
    }
    shard.raise_version(report.max_version.min(crate::store::MAX_VERSION));
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// What [`finish`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finished {
    /// Files truncated, with the length kept.
    pub truncated: Vec<(String, u64)>,
    /// Files moved aside (`NAME.damaged`): later segments of a chain cut before its tail.
    pub moved_aside: Vec<String>,
    /// Obsolete files removed.
    pub removed: Vec<String>,
}

/// After every worker recovered: makes the cuts and removes obsolete files, then syncs the
/// directory. `cuts`: all workers' cuts (duplicates are fine).
pub fn finish<D: Dir>(dir: &D, plan: &Plan, cuts: &[Cut]) -> Result<Finished, PersistError> {
    let mut done = Finished::default();
    let mut by_file: BTreeMap<&str, &Cut> = BTreeMap::new();
    for cut in cuts {
        by_file.entry(cut.file.as_str()).or_insert(cut);
    }
    for (file, cut) in by_file {
        if file.ends_with(".snap") {
            // A damaged snapshot is kept as it is (its good records were loaded); the next
            // snapshot of the chain replaces it.
            continue;
        }
        dir.truncate(file, cut.offset)
            .map_err(|e| PersistError::io(&format!("truncate {file}"), &e))?;
        done.truncated.push((file.to_string(), cut.offset));
        for later in &cut.later_files {
            let aside = format!("{later}.damaged");
            dir.rename(later, &aside)
                .map_err(|e| PersistError::io(&format!("rename {later}"), &e))?;
            done.moved_aside.push(later.clone());
        }
    }
    for name in &plan.obsolete {
        match dir.remove(name) {
            Ok(()) => done.removed.push(name.clone()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(PersistError::io(&format!("remove {name}"), &error)),
        }
    }
    dir.sync_dir()
        .map_err(|e| PersistError::io("fsync the data directory", &e))?;
    Ok(done)
}

/// Everything at once, one thread per new worker: plan, load `workers` shards made by
/// `make_shard`, finish. Returns the shards, the plan and each worker's report.
pub fn recover_all<D: Dir>(
    dir: &D,
    workers: u32,
    options: RecoveryOptions,
    make_shard: impl Fn() -> Shard + Sync,
) -> Result<(Vec<Shard>, Plan, Vec<WorkerRecovery>), PersistError> {
    let plan = plan(dir)?;
    let results: Vec<Result<(Shard, WorkerRecovery), PersistError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let (plan, make_shard) = (&plan, &make_shard);
                scope.spawn(move || {
                    let mut shard = make_shard();
                    let report = recover_worker(
                        dir,
                        plan,
                        worker,
                        workers,
                        options,
                        &mut shard,
                        &mut |_| {},
                    )?;
                    Ok((shard, report))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(PersistError::Invalid("recovery thread panicked".into()))
                })
            })
            .collect()
    });
    let mut shards = Vec::new();
    let mut reports = Vec::new();
    for result in results {
        let (shard, report) = result?;
        shards.push(shard);
        reports.push(report);
    }
    let cuts: Vec<Cut> = reports.iter().flat_map(|r| r.cuts.clone()).collect();
    finish(dir, &plan, &cuts)?;
    Ok((shards, plan, reports))
}
