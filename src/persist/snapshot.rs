//! [`SnapshotWriter`]: a worker's live records written to a file a bounded step at a time,
//! with no fork and no pause of the worker.
//!
//! The snapshot is *fuzzy*: the worker keeps serving between steps, so each key is captured at
//! some moment between the start and the end of the walk. It is still exact once the log is
//! replayed over it from its start seq `S` (the log's next seq when the walk began):
//!
//! - every record is a key's whole post-state (or a delete, or an expiry change of an existing
//!   key), so the last record of a key in the log decides its state, whatever the snapshot
//!   captured before;
//! - a key with no record at or after `S` did not change during the walk, and the walk
//!   (`Shard::walk_live`, built on scan) emits every key present for the whole walk;
//! - a capture may already contain the effect of a record written during the walk: the
//!   snapshot is therefore sealed only when the log is durable up to the seq it had reached
//!   when the walk ended (`WaitingForLog`), so that after any crash the log replayed over the
//!   snapshot reaches at least as far as anything the snapshot saw.
//!
//! A snapshot is a header (kind snapshot, `first_seq` = `S`), one `Set` record per live key
//! (seq = its ordinal), and a `SnapshotEnd` record; then `fdatasync`, rename from `.snap.tmp`
//! to `.snap`, and `fsync` of the directory. Only then may the log before `S` be dropped.

use std::sync::Arc;

use super::PersistError;
use super::codec::{self, FORMAT_VERSION, FileHeader, FileKind, Record, SLOT_RULE_RANGES};
use super::files::{ChainId, partial_snapshot_name, snapshot_name};
use super::fs::{Dir, GuardedFile};
use crate::store::Shard;

/// Buffered snapshot bytes are written once they pass this size.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// Where a snapshot stands after a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotProgress {
    /// Still walking the shard; `records` written so far.
    Walking {
        /// Records so far.
        records: u64,
    },
    /// The walk is over; sealing waits until the log is durable up to `seq`.
    WaitingForLog {
        /// The log seq that must be durable.
        seq: u64,
    },
    /// Complete: synced, renamed, directory synced.
    Done(SnapshotDone),
}

/// A complete snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotDone {
    /// Its file name.
    pub name: String,
    /// Log records from this seq on replay over it.
    pub start_seq: u64,
    /// Records in it (a key can appear twice).
    pub records: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A snapshot being written.
pub struct SnapshotWriter<D: Dir> {
    dir: Arc<D>,
    temporary: String,
    name: String,
    start_seq: u64,
    file: GuardedFile<D::File>,
    buffer: Vec<u8>,
    scratch: Vec<u8>,
    cursor: u64,
    walking: bool,
    records: u64,
    /// The log seq that must be durable before sealing (set when the walk ends).
    end_seq: u64,
}

impl<D: Dir> std::fmt::Debug for SnapshotWriter<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("name", &self.name)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl<D: Dir> SnapshotWriter<D> {
    /// Starts a snapshot of `chain` that the log replays over from `start_seq` (the log's
    /// next seq now). `version_mark`: the shard's last version.
    pub fn start(
        dir: Arc<D>,
        chain: ChainId,
        workers: u32,
        start_seq: u64,
        version_mark: u64,
        now_ms: u64,
    ) -> Result<SnapshotWriter<D>, PersistError> {
        let temporary = partial_snapshot_name(chain, start_seq);
        let name = snapshot_name(chain, start_seq);
        // A leftover of an abandoned attempt at the same seq.
        let _ = dir.remove(&temporary);
        let file = dir
            .create(&temporary)
            .map_err(|e| PersistError::io(&format!("create {temporary}"), &e))?;
        let file = GuardedFile::new(file, &temporary, 0, None);
        let header = FileHeader {
            kind: FileKind::Snapshot,
            format_version: FORMAT_VERSION,
            epoch: chain.epoch,
            worker: chain.worker,
            workers,
            first_seq: start_seq,
            version_mark,
            created_ms: now_ms,
            slot_rule: SLOT_RULE_RANGES,
        };
        let mut buffer = Vec::with_capacity(WRITE_CHUNK_BYTES + 4096);
        buffer.extend_from_slice(&header.encode());
        Ok(SnapshotWriter {
            dir,
            temporary,
            name,
            start_seq,
            file,
            buffer,
            scratch: Vec::new(),
            cursor: 0,
            walking: true,
            records: 0,
            end_seq: 0,
        })
    }

    /// The seq the log replays from.
    pub fn start_seq(&self) -> u64 {
        self.start_seq
    }

    /// The temporary file's name.
    pub fn temporary_name(&self) -> &str {
        &self.temporary
    }

    /// One bounded step: walks up to `max_records` live records, or seals the snapshot when the
    /// walk is over and the log is durable far enough. `appended_seq`: the log's last appended
    /// seq; `durable_seq`: its last durable seq.
    pub fn step(
        &mut self,
        shard: &mut Shard,
        max_records: usize,
        now_ms: u64,
        appended_seq: u64,
        durable_seq: u64,
    ) -> Result<SnapshotProgress, PersistError> {
        if self.walking {
            let (buffer, records) = (&mut self.buffer, &mut self.records);
            self.cursor = shard.walk_live(
                self.cursor,
                max_records.max(1),
                now_ms,
                &mut self.scratch,
                |key, value, version, expiry_ms| {
                    *records += 1;
                    codec::encode(
                        buffer,
                        *records,
                        &Record::Set {
                            key,
                            value,
                            version,
                            expiry_ms,
                        },
                    );
                },
            );
            if self.cursor == 0 {
                self.walking = false;
                self.end_seq = appended_seq;
                let end = Record::SnapshotEnd {
                    records: self.records,
                    version_mark: shard.last_version(),
                };
                codec::encode(&mut self.buffer, self.records + 1, &end);
                self.flush()?;
            } else {
                if self.buffer.len() >= WRITE_CHUNK_BYTES {
                    self.flush()?;
                }
                return Ok(SnapshotProgress::Walking {
                    records: self.records,
                });
            }
        }
        if durable_seq < self.end_seq {
            return Ok(SnapshotProgress::WaitingForLog { seq: self.end_seq });
        }
        self.file
            .sync()
            .map_err(|e| PersistError::io(&format!("fdatasync {}", self.temporary), &e))?;
        self.dir
            .rename(&self.temporary, &self.name)
            .map_err(|e| PersistError::io(&format!("rename {}", self.temporary), &e))?;
        self.dir
            .sync_dir()
            .map_err(|e| PersistError::io("fsync the data directory", &e))?;
        Ok(SnapshotProgress::Done(SnapshotDone {
            name: self.name.clone(),
            start_seq: self.start_seq,
            records: self.records,
            bytes: self.file.written_bytes(),
        }))
    }

    fn flush(&mut self) -> Result<(), PersistError> {
        let result = self.file.write_all(&self.buffer);
        self.buffer.clear();
        result.map_err(|e| PersistError::io(&format!("write {}", self.temporary), &e))
    }

    /// Gives up: removes the temporary file.
    pub fn abandon(self) {
        let _ = self.dir.remove(&self.temporary);
    }
}
