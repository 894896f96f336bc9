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
pub mod fs;
pub mod sim;
mod varint;
