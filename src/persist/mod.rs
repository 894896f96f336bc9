//! Durability: one write-ahead log per worker, snapshots written in bounded steps, and
//! recovery that routes every record to its owner by slot. `docs/durability.md` is the
//! chapter; this is the tour.
//!
//! 1. Every file operation goes through [`fs::Dir`] and [`fs::File`]: [`fs::RealDir`] on disk,
//!    [`sim::SimDir`] in tests (short writes, EIO, failed fsync, ENOSPC, power cuts). Writers
//!    use [`fs::GuardedFile`], which never calls anything durable after a failure (fsyncgate).
//! 2. [`codec`] frames records (length, CRC32C, seq, tag, payload) and file headers (magic,
//!    format version). A record is a key's *post-state* (value, version, absolute deadline),
//!    so replaying it twice, or over a snapshot taken while it happened, gives the same state.
//! 3. [`log::LogWriter`] is one worker's log: records of a batch are appended to a buffer,
//!    `commit` writes the buffer with one write and syncs it per the fsync policy (inline, or
//!    on a per-worker syncer thread that coalesces the syncs of many batches).
//! 4. [`snapshot::SnapshotWriter`] walks the shard a bounded step at a time and writes its live
//!    records; once synced and renamed, the log before its start is dropped.
//! 5. [`recovery`] plans from the file headers, then each new worker loads the snapshots and
//!    logs whose slots it owns (whatever the old worker count was), cutting a torn tail.
//! 6. [`WorkerLog`] bundles 3 and 4 for the worker: the few calls phase B wires in.
//!
//! This module depends on `store` and `proto::slot` only, never on `server`.

pub mod codec;
pub mod files;
pub mod fs;
pub mod log;
pub mod read;
pub mod recovery;
pub mod sim;
pub mod snapshot;
pub mod syncer;

#[cfg(test)]
mod tests;
mod varint;

use std::sync::Arc;

pub use files::ChainId;
pub use log::{FsyncPolicy, LogConfig, LogStats, LogWriter};
pub use recovery::{RecoveryOptions, owner};
pub use snapshot::{SnapshotDone, SnapshotProgress, SnapshotWriter};
pub use syncer::Notify;

use crate::store::Shard;
use fs::Dir;

/// Why a durability operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersistError {
    /// A file operation failed.
    Io {
        /// What was being done (names the file).
        what: String,
        /// The system's error.
        error: String,
    },
    /// The log failed earlier (a write or a sync); nothing more becomes durable in it.
    Failed(String),
    /// A file is damaged at `offset`.
    Damaged {
        /// The file, relative to the data directory.
        file: String,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The directory's files do not fit together.
    Invalid(String),
}

impl PersistError {
    /// An I/O error while doing `what`.
    pub fn io(what: &str, error: &std::io::Error) -> PersistError {
        PersistError::Io {
            what: what.to_string(),
            error: error.to_string(),
        }
    }
}

impl std::fmt::Display for PersistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PersistError::Io { what, error } => write!(f, "cannot {what}: {error}"),
            PersistError::Failed(why) => write!(f, "the log failed earlier: {why}"),
            PersistError::Damaged {
                file,
                offset,
                reason,
            } => write!(f, "{file} is damaged at offset {offset}: {reason}"),
            PersistError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for PersistError {}

/// When a worker starts a snapshot on its own, and how big its steps are.
#[derive(Clone, Debug)]
pub struct CompactionConfig {
    /// A snapshot starts once the log since the last one holds at least this many bytes...
    pub min_log_bytes: u64,
    /// ...and at least this percentage of the last snapshot's size (Redis's
    /// `auto-aof-rewrite-min-size` 64 MiB and `auto-aof-rewrite-percentage` 100).
    pub log_percent_of_snapshot: u64,
    /// Live records one snapshot step walks.
    pub step_records: usize,
}

impl Default for CompactionConfig {
    fn default() -> CompactionConfig {
        CompactionConfig {
            min_log_bytes: 64 << 20,
            log_percent_of_snapshot: 100,
            step_records: 512,
        }
    }
}

/// What a [`WorkerLog::maintain`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// A snapshot step ran (the worker has more to do: call again when idle).
    pub snapshot_step: bool,
    /// A snapshot completed.
    pub snapshot_done: Option<SnapshotDone>,
    /// Log segments removed after it.
    pub segments_removed: usize,
}

/// A worker's durability: its log and its snapshots, behind the few calls the worker makes.
///
/// Per batch: `log().append(..)` / `log().capture(..)` for each write applied, then
/// `log().commit(now)`; replies of the batch wait (under `Always`) until `log().durable_seq()`
/// reaches what `commit` returned. After each batch and on idle ticks: `maintain(shard, now)`.
pub struct WorkerLog<D: Dir> {
    dir: Arc<D>,
    workers: u32,
    log: LogWriter<D>,
    snapshot: Option<SnapshotWriter<D>>,
    /// The chain's live snapshot: name, start seq, bytes.
    last_snapshot: Option<(String, u64, u64)>,
    /// Log bytes written (ever) when the last snapshot started: the trigger counts from there.
    written_at_snapshot: u64,
    config: CompactionConfig,
}

impl<D: Dir> std::fmt::Debug for WorkerLog<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerLog")
            .field("log", &self.log)
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}

impl<D: Dir> WorkerLog<D> {
    /// Starts worker `worker`'s chain of epoch `epoch` (after recovery: [`recovery::Plan::next_epoch`]).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        dir: Arc<D>,
        epoch: u64,
        worker: u32,
        workers: u32,
        shard: &Shard,
        now_ms: u64,
        log_config: LogConfig,
        config: CompactionConfig,
        notify: Option<Notify>,
    ) -> Result<WorkerLog<D>, PersistError> {
        let chain = ChainId { epoch, worker };
        let log = LogWriter::create(
            Arc::clone(&dir),
            chain,
            workers,
            1,
            shard.last_version(),
            now_ms,
            log_config,
            notify,
        )?;
        Ok(WorkerLog {
            dir,
            workers,
            log,
            snapshot: None,
            last_snapshot: None,
            written_at_snapshot: 0,
            config,
        })
    }

    /// The log: appends, commit, durable seq.
    pub fn log(&mut self) -> &mut LogWriter<D> {
        &mut self.log
    }

    /// Whether a snapshot is being written.
    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshot.is_some()
    }

    /// The live snapshot of this chain: name, start seq, bytes.
    pub fn last_snapshot(&self) -> Option<(&str, u64, u64)> {
        self.last_snapshot
            .as_ref()
            .map(|(name, seq, bytes)| (name.as_str(), *seq, *bytes))
    }

    /// Starts a snapshot now (BGSAVE, BGREWRITEAOF), unless one is running. Returns whether
    /// one was started.
    pub fn start_snapshot(&mut self, shard: &Shard, now_ms: u64) -> Result<bool, PersistError> {
        if self.snapshot.is_some() {
            return Ok(false);
        }
        let writer = SnapshotWriter::start(
            Arc::clone(&self.dir),
            self.log.chain(),
            self.workers,
            self.log.next_seq(),
            shard.last_version(),
            now_ms,
        )?;
        self.written_at_snapshot = self.log.stats().bytes_written;
        self.snapshot = Some(writer);
        Ok(true)
    }

    /// Whether the log has grown enough since the last snapshot to start one.
    pub fn wants_snapshot(&self) -> bool {
        let grown = self.log.stats().bytes_written - self.written_at_snapshot;
        let last = self.last_snapshot.as_ref().map_or(0, |s| s.2);
        grown >= self.config.min_log_bytes
            && grown * 100 >= last.saturating_mul(self.config.log_percent_of_snapshot)
    }

    /// Bounded background work, after a batch or on an idle tick: the `EverySec` sync, starting
    /// a snapshot when the log has grown, one snapshot step, and, when a snapshot completes,
    /// dropping the log before it and the previous snapshot.
    pub fn maintain(
        &mut self,
        shard: &mut Shard,
        now_ms: u64,
    ) -> Result<Maintenance, PersistError> {
        let mut done = Maintenance::default();
        self.log.tick(now_ms)?;
        if self.snapshot.is_none() && self.wants_snapshot() {
            self.start_snapshot(shard, now_ms)?;
        }
        let Some(writer) = self.snapshot.as_mut() else {
            return Ok(done);
        };
        let appended = self.log.last_seq();
        let durable = self.log.durable_seq();
        let progress = match writer.step(shard, self.config.step_records, now_ms, appended, durable)
        {
            Ok(progress) => progress,
            Err(error) => {
                if let Some(writer) = self.snapshot.take() {
                    writer.abandon();
                }
                return Err(error);
            }
        };
        match progress {
            SnapshotProgress::Walking { .. } => done.snapshot_step = true,
            SnapshotProgress::WaitingForLog { .. } => {
                // Under `No` nothing else would make the log durable; under the others the
                // next sync does (at most a second away under `EverySec`).
                if self.log.policy() == FsyncPolicy::No {
                    self.log.sync_now()?;
                }
                done.snapshot_step = true;
            }
            SnapshotProgress::Done(snapshot) => {
                self.snapshot = None;
                let removed = self.log.drop_before(snapshot.start_seq)?;
                done.segments_removed = removed.len();
                if let Some((old, _, _)) = self.last_snapshot.take() {
                    if old != snapshot.name {
                        self.dir
                            .remove(&old)
                            .map_err(|e| PersistError::io(&format!("remove {old}"), &e))?;
                        self.dir
                            .sync_dir()
                            .map_err(|e| PersistError::io("fsync the data directory", &e))?;
                    }
                }
                self.last_snapshot =
                    Some((snapshot.name.clone(), snapshot.start_seq, snapshot.bytes));
                done.snapshot_done = Some(snapshot);
            }
        }
        Ok(done)
    }

    /// Everything written and synced (SIGTERM, SHUTDOWN). Returns the durable seq.
    pub fn shutdown(&mut self) -> Result<u64, PersistError> {
        self.log.sync_now()
    }
}
