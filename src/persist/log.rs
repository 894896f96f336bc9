//! [`LogWriter`]: one worker's write-ahead log. Written only by that worker's thread.
//!
//! Per batch the worker appends the post-state of every write it applied
//! ([`LogWriter::append`], [`LogWriter::capture`]): encoding into one buffer, no system call.
//! At the end of the batch [`LogWriter::commit`] hands the buffer to the kernel with one
//! `write` and then, by [`FsyncPolicy`]:
//!
//! - `Always`: asks the syncer thread for an `fdatasync` up to the batch's end (or syncs inline
//!   when there is no syncer). The batch's replies wait until [`LogWriter::durable_seq`] reaches
//!   the seq `commit` returned.
//! - `EverySec`: asks for a sync when the last one was asked a second ago or more.
//! - `No`: never syncs; the kernel writes back when it likes.
//!
//! Segments rotate at `segment_bytes`: the old one is synced inline before the new one is
//! created, so a chain's files never have a durable record after a lost one.
//! After each successful sync, the next commit starts with a [`Record::SyncMark`] naming the
//! durable length: recovery calls damage below the last mark corruption and damage past it a
//! torn tail (pages of an unsynced tail may reach the disk out of order).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::PersistError;
use super::codec::{self, FORMAT_VERSION, FileHeader, FileKind, Record, SLOT_RULE_RANGES};
use super::files::{ChainId, log_name};
use super::fs::{Dir, GuardedFile, SyncedOffsets};
use super::syncer::{Notify, SyncStats, Syncer};
use crate::store::Shard;

/// When a committed write becomes durable (Redis's `appendfsync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before its reply leaves.
    Always,
    /// Within about a second (a sync is asked for every second).
    EverySec,
    /// When the kernel writes back (about 30 s on Linux).
    No,
}

/// How a log writes.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// When writes become durable.
    pub policy: FsyncPolicy,
    /// A segment is closed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// Run `fdatasync` on a syncer thread (true), or inline in `commit` and `tick` (false).
    pub sync_thread: bool,
    /// `EverySec`: the interval between syncs.
    pub everysec_interval_ms: u64,
    /// The `PICCOLO_TEST_SYNCED_OFFSETS` bookkeeping, if on.
    pub synced_offsets: Option<Arc<SyncedOffsets>>,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            policy: FsyncPolicy::EverySec,
            segment_bytes: 64 << 20,
            sync_thread: true,
            everysec_interval_ms: 1000,
            synced_offsets: None,
        }
    }
}

/// Counters of one log, for INFO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Records appended.
    pub records: u64,
    /// Bytes handed to the kernel.
    pub bytes_written: u64,
    /// `write` batches (commits that wrote).
    pub writes: u64,
    /// Syncs run inline (rotation, `Always` without a syncer, shutdown).
    pub inline_syncs: SyncStats,
    /// Syncs run by the syncer thread.
    pub thread_syncs: SyncStats,
    /// Segments started after the first.
    pub rotations: u64,
}

/// One worker's log.
pub struct LogWriter<D: Dir> {
    dir: Arc<D>,
    chain: ChainId,
    workers: u32,
    config: LogConfig,
    file: GuardedFile<D::File>,
    /// This chain's segments, oldest first: name, first seq, bytes (the last is `file`).
    segments: VecDeque<(String, u64, u64)>,
    buffer: Vec<u8>,
    next_seq: u64,
    /// The last seq handed to the kernel.
    written_seq: u64,
    /// The last seq known durable.
    durable_seq: u64,
    /// Bytes of the current file the last sync mark announced.
    marked_bytes: u64,
    syncer: Option<Syncer<D::File>>,
    /// The syncer has not seen the current file yet.
    syncer_needs_file: bool,
    /// Seq of the last sync asked for, and when (EverySec).
    requested_seq: u64,
    requested_ms: u64,
    failure: Option<PersistError>,
    stats: LogStats,
    /// The largest version appended or given at creation (headers of later segments).
    version_mark: u64,
}

impl<D: Dir> std::fmt::Debug for LogWriter<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("chain", &self.chain)
            .field("next_seq", &self.next_seq)
            .field("durable_seq", &self.durable_seq)
            .finish_non_exhaustive()
    }
}

/// Buffers above this capacity are shrunk after their batch is written.
const BUFFER_KEEP_BYTES: usize = 1 << 20;

impl<D: Dir> LogWriter<D> {
    /// Starts the chain `chain` (a worker of a run with `workers` workers): its first segment,
    /// whose first record will have seq `first_seq`, synced with its directory entry.
    /// `version_mark`: the shard's last version now. `notify` runs on the syncer thread after
    /// each sync.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        dir: Arc<D>,
        chain: ChainId,
        workers: u32,
        first_seq: u64,
        version_mark: u64,
        now_ms: u64,
        config: LogConfig,
        notify: Option<Notify>,
    ) -> Result<LogWriter<D>, PersistError> {
        assert!(first_seq >= 1);
        let file = new_segment(
            &dir,
            chain,
            workers,
            first_seq,
            version_mark,
            now_ms,
            &config,
        )?;
        let syncer = if config.sync_thread && config.policy != FsyncPolicy::No {
            let name = format!("piccolo-sync-{}", chain.worker);
            Some(
                Syncer::spawn(name, notify)
                    .map_err(|e| PersistError::io("start the syncer", &e))?,
            )
        } else {
            None
        };
        let header_bytes = file.written_bytes();
        Ok(LogWriter {
            segments: VecDeque::from([(file.name().to_string(), first_seq, header_bytes)]),
            dir,
            chain,
            workers,
            config,
            marked_bytes: header_bytes,
            file,
            buffer: Vec::new(),
            next_seq: first_seq,
            written_seq: first_seq - 1,
            durable_seq: first_seq - 1,
            syncer,
            syncer_needs_file: true,
            requested_seq: first_seq - 1,
            requested_ms: now_ms,
            failure: None,
            stats: LogStats::default(),
            version_mark,
        })
    }

    /// Appends one record to the batch; returns its seq. No system call.
    #[inline]
    pub fn append(&mut self, record: &Record<'_>) -> u64 {
        let seq = self.next_seq;
        codec::encode(&mut self.buffer, seq, record);
        self.version_mark = self.version_mark.max(record.max_version());
        self.next_seq += 1;
        self.stats.records += 1;
        seq
    }

    /// Appends the post-state of `key` as the shard holds it now: a `Set` with its value,
    /// version and deadline, or a `Delete`. One more lookup than the typed appends; enough for
    /// any write command, whatever it did.
    pub fn capture(&mut self, shard: &mut Shard, hash: u64, key: &[u8], now_ms: u64) -> u64 {
        let version_mark = shard.last_version();
        match shard.get(hash, key, now_ms) {
            Some(value) => self.append(&Record::Set {
                key,
                value: value.bytes,
                version: value.version,
                expiry_ms: value.expiry_ms,
            }),
            None => self.append(&Record::Delete { key, version_mark }),
        }
    }

    /// The fsync policy.
    pub fn policy(&self) -> FsyncPolicy {
        self.config.policy
    }

    /// The seq the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last seq appended (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Bytes appended and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// The first failure; once set, nothing more becomes durable and `commit` refuses.
    pub fn failure(&self) -> Option<&PersistError> {
        self.failure.as_ref()
    }

    /// Counters.
    pub fn stats(&self) -> LogStats {
        let mut stats = self.stats;
        if let Some(syncer) = &self.syncer {
            stats.thread_syncs = syncer.stats();
        }
        stats
    }

    /// Bytes of this chain's log files on disk (written, synced or not).
    pub fn log_bytes(&self) -> u64 {
        let closed: u64 = self.segments.iter().rev().skip(1).map(|s| s.2).sum();
        closed + self.file.written_bytes()
    }

    /// This chain's log files, oldest first: `(name, first seq)`.
    pub fn segments(&self) -> impl Iterator<Item = (&str, u64)> {
        self.segments
            .iter()
            .map(|(name, first, _)| (name.as_str(), *first))
    }

    /// The chain this log writes.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The last seq known durable (reads the syncer's progress; cheap: one atomic load).
    pub fn durable_seq(&mut self) -> u64 {
        self.poll();
        self.durable_seq
    }

    fn poll(&mut self) {
        if let Some(syncer) = &self.syncer {
            self.durable_seq = self.durable_seq.max(syncer.durable_seq());
            if self.failure.is_none() {
                if let Some(error) = syncer.failure() {
                    self.failure = Some(PersistError::Failed(error));
                }
            }
        }
    }

    fn fail(&mut self, error: PersistError) -> PersistError {
        if self.failure.is_none() {
            self.failure = Some(error.clone());
        }
        error
    }

    /// Ends a batch: writes the appended records with one `write` and, per the policy, syncs
    /// or asks for a sync. Returns the last seq written: under `Always` the batch's replies
    /// may leave once [`durable_seq`](Self::durable_seq) reaches it. After a failure, returns
    /// the failure (and drops the batch: it cannot become durable in this log).
    pub fn commit(&mut self, now_ms: u64) -> Result<u64, PersistError> {
        self.poll();
        if let Some(failure) = &self.failure {
            self.buffer.clear();
            return Err(PersistError::Failed(failure.to_string()));
        }
        if self.buffer.is_empty() {
            return Ok(self.written_seq);
        }
        self.write_buffer()?;
        if self.file.written_bytes() >= self.config.segment_bytes {
            self.rotate(now_ms)?;
            return Ok(self.written_seq);
        }
        match self.config.policy {
            FsyncPolicy::Always => self.request_sync(now_ms)?,
            FsyncPolicy::EverySec => self.tick(now_ms)?,
            FsyncPolicy::No => {}
        }
        Ok(self.written_seq)
    }

    /// For `EverySec`: asks for a sync if one is due (call it from the worker's idle tick as
    /// well as after batches). Also picks up the syncer's progress and failures.
    pub fn tick(&mut self, now_ms: u64) -> Result<(), PersistError> {
        self.poll();
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let due = now_ms.saturating_sub(self.requested_ms) >= self.config.everysec_interval_ms;
        if self.config.policy == FsyncPolicy::EverySec
            && due
            && self.written_seq > self.requested_seq
        {
            self.request_sync(now_ms)?;
        }
        Ok(())
    }

    /// Writes what is buffered and makes everything written durable, inline (shutdown,
    /// `SHUTDOWN`, tests). Returns the durable seq.
    pub fn sync_now(&mut self) -> Result<u64, PersistError> {
        self.poll();
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        if !self.buffer.is_empty() {
            self.write_buffer()?;
        }
        if let Some(syncer) = &self.syncer {
            syncer.wait_idle();
        }
        self.sync_inline()?;
        self.poll();
        match &self.failure {
            Some(failure) => Err(failure.clone()),
            None => Ok(self.durable_seq),
        }
    }

    fn write_buffer(&mut self) -> Result<(), PersistError> {
        let synced = self.file.synced_bytes();
        if synced > self.marked_bytes {
            self.marked_bytes = synced;
            self.append(&Record::SyncMark {
                durable_bytes: synced,
            });
        }
        let result = self.file.write_all(&self.buffer);
        let bytes = self.buffer.len() as u64;
        self.buffer.clear();
        if self.buffer.capacity() > BUFFER_KEEP_BYTES {
            self.buffer.shrink_to(BUFFER_KEEP_BYTES);
        }
        if let Err(error) = result {
            return Err(self.fail(PersistError::io("write the log", &error)));
        }
        self.stats.bytes_written += bytes;
        self.stats.writes += 1;
        self.written_seq = self.next_seq - 1;
        if let Some(segment) = self.segments.back_mut() {
            segment.2 = self.file.written_bytes();
        }
        Ok(())
    }

    fn request_sync(&mut self, now_ms: u64) -> Result<(), PersistError> {
        self.requested_seq = self.written_seq;
        self.requested_ms = now_ms;
        match &self.syncer {
            Some(syncer) => {
                let handle = if self.syncer_needs_file {
                    let handle = self
                        .file
                        .sync_handle()
                        .map_err(|e| PersistError::io("clone the log's handle", &e));
                    match handle {
                        Ok(handle) => Some(handle),
                        Err(error) => return Err(self.fail(error)),
                    }
                } else {
                    None
                };
                self.syncer_needs_file = false;
                syncer.request(handle, self.file.written_bytes(), self.written_seq);
                Ok(())
            }
            None => self.sync_inline(),
        }
    }

    fn sync_inline(&mut self) -> Result<(), PersistError> {
        let started = Instant::now();
        let result = self.file.sync();
        self.stats
            .inline_syncs
            .record(started.elapsed().as_nanos() as u64);
        match result {
            Ok(_) => {
                self.durable_seq = self.durable_seq.max(self.written_seq);
                Ok(())
            }
            Err(error) => Err(self.fail(PersistError::io("fdatasync the log", &error))),
        }
    }

    /// Closes the current segment (synced inline) and starts the next.
    fn rotate(&mut self, now_ms: u64) -> Result<(), PersistError> {
        if let Some(syncer) = &self.syncer {
            syncer.wait_idle();
        }
        self.poll();
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        self.sync_inline()?;
        let file = new_segment(
            &self.dir,
            self.chain,
            self.workers,
            self.next_seq,
            self.version_mark,
            now_ms,
            &self.config,
        );
        let file = match file {
            Ok(file) => file,
            Err(error) => return Err(self.fail(error)),
        };
        let bytes = file.written_bytes();
        self.segments
            .push_back((file.name().to_string(), self.next_seq, bytes));
        self.file = file;
        self.marked_bytes = bytes;
        self.syncer_needs_file = true;
        self.stats.rotations += 1;
        Ok(())
    }

    /// Removes the closed segments whose records all have seqs below `seq` (after a snapshot
    /// that starts at `seq` is complete). Returns the names removed.
    pub fn drop_before(&mut self, seq: u64) -> Result<Vec<String>, PersistError> {
        let mut removed = Vec::new();
        while self.segments.len() > 1 && self.segments[1].1 <= seq {
            let (name, _, _) = self.segments.pop_front().expect("two segments");
            self.dir
                .remove(&name)
                .map_err(|e| PersistError::io(&format!("remove {name}"), &e))?;
            removed.push(name);
        }
        if !removed.is_empty() {
            self.dir
                .sync_dir()
                .map_err(|e| PersistError::io("fsync the data directory", &e))?;
            if let Some(offsets) = &self.config.synced_offsets {
                for name in &removed {
                    let _ = offsets.remove(name);
                }
            }
        }
        Ok(removed)
    }
}

/// Creates a segment: header written and synced, directory entry synced.
fn new_segment<D: Dir>(
    dir: &Arc<D>,
    chain: ChainId,
    workers: u32,
    first_seq: u64,
    version_mark: u64,
    now_ms: u64,
    config: &LogConfig,
) -> Result<GuardedFile<D::File>, PersistError> {
    let name = log_name(chain, first_seq);
    let file = dir
        .create(&name)
        .map_err(|e| PersistError::io(&format!("create {name}"), &e))?;
    let mut file = GuardedFile::new(file, &name, 0, config.synced_offsets.clone());
    let header = FileHeader {
        kind: FileKind::Log,
        format_version: FORMAT_VERSION,
        epoch: chain.epoch,
        worker: chain.worker,
        workers,
        first_seq,
        version_mark,
        created_ms: now_ms,
        slot_rule: SLOT_RULE_RANGES,
    };
    file.write_all(&header.encode())
        .map_err(|e| PersistError::io(&format!("write the header of {name}"), &e))?;
    file.sync()
        .map_err(|e| PersistError::io(&format!("fdatasync {name}"), &e))?;
    dir.sync_dir()
        .map_err(|e| PersistError::io("fsync the data directory", &e))?;
    Ok(file)
}
