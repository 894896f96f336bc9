//! One shard of the key:value store: what a worker thread owns and touches alone, with no locks.
//!
//! A tour, following a `set`:
//!
//! 1. The caller computes `hash = hash_key(key)` once ([`hash_key`], `hash.rs`); in the server
//!    the reactor does it while routing. Every [`Shard`] operation takes that hash and the key
//!    bytes.
//! 2. The [`Shard`] (`shard/`) looks the key up in its table (`table.rs`: a
//!    `hashbrown::HashTable` of 4-byte handles that grows by migrating entries in small steps,
//!    never all at once). A handle names a record by (segment slot, position); comparing keys
//!    reads the record.
//! 3. Records (`record.rs`) are value, key and a header of 10 to 24 bytes (lengths, version,
//!    optional deadline, flags), packed with no padding. A write of the same size overwrites in
//!    place; any other write appends a new record and marks the old one dead.
//! 4. Records live in segments (`arena.rs`, which holds all of the store's `unsafe` code but
//!    one `getrandom` call in `hash.rs`): fixed-size
//!    `bumpalo::Bump` chunks (1 MiB by default) filled like a log; large records get a segment
//!    of their own.
//! 5. Dead records are garbage the arena cannot free one by one. The cleaner
//!    ([`Shard::clean_step`]) picks a segment by RAMCloud's cost-benefit rule, moves its live
//!    records to the head of the log in steps bounded by a byte budget, and frees the segment.
//! 6. Time is a number the caller passes (`now_ms`). Expired keys vanish when touched, and
//!    [`Shard::expire_step`] removes them in bounded steps when the worker is idle.
//! 7. [`Shard::scan`] walks the log in order with a cursor; since records only ever move forward
//!    in the log, a key present for the whole scan is returned at least once, and since each call
//!    first catches up with what was appended since the previous one, every scan finishes in a
//!    bounded number of calls.
//!
//! The store knows nothing of protocols, sockets, threads or clocks. `docs/store.md` explains
//! the choices and the measurements behind them.

mod arena;
mod glob;
mod hash;
mod persist;
mod record;
mod shard;
mod table;

#[cfg(test)]
mod tests;

pub use glob::glob_match;
#[doc(hidden)]
pub use hash::fix_seed_for_benchmarks;
pub use hash::hash_key;
pub use persist::MAX_VERSION;
pub use shard::Shard;

use std::fmt;

/// Limits and tuning of one shard, fixed at startup.
#[derive(Clone, Debug)]
pub struct Config {
    /// Size of an ordinary segment in bytes. At most [`MAX_SEGMENT_BYTES`] (8 MiB: a handle
    /// then keeps 21 bits of position and 11 of segment slot). The 4-byte handle names at most `2^32 * 4 / segment_bytes`
    /// segments (16,384 of 1 MiB: 16 GiB of ordinary segments per shard, whatever the size;
    /// a large record's segment counts as one); past that, writes get
    /// [`StoreError::OutOfMemory`].
    pub segment_bytes: usize,
    /// Records larger than this get a segment of their own. At most `segment_bytes`.
    pub large_record_bytes: usize,
    /// Largest value accepted, in bytes (Redis: 512 MiB).
    pub max_value_bytes: usize,
    /// Largest key accepted, in bytes (Redis: 512 MiB).
    pub max_key_bytes: usize,
    /// The cleaner works only while garbage exceeds this share of the segment memory (percent)...
    pub cleaner_garbage_percent: usize,
    /// ...and this many bytes (there is always about a segment of slack; cleaning below that
    /// would only move records around).
    pub cleaner_min_garbage_bytes: usize,
    /// Ordinary segments freed by the cleaner that the shard keeps for reuse as the next head
    /// instead of returning them to the operating system (their pages stay mapped and touched,
    /// so reusing one costs no `mmap`, `munmap` or page fault). Segments freed beyond this
    /// number go back to the system at once; the spares go back on [`Shard::flush`] and
    /// [`Shard::release_spare_segments`].
    pub spare_segments: usize,
    /// A segment whose start falls this many bytes of log behind the end of the log is cleaned
    /// whatever its utilisation. This keeps every live record inside the window a scan cursor
    /// can name (4 TiB behind the end); at most [`MAX_CLEANER_AGE_BYTES`] (2 TiB, the default).
    /// Tests lower it. It must stay well above the shard's live bytes: with more live data
    /// than this window, the oldest segment is always "too old" (relocating it only makes the
    /// next one the oldest), so the cleaner never idles. The default is far above the 16 GiB a
    /// shard's handles can address.
    pub cleaner_max_age_bytes: u64,
}

/// Upper bound (and default) of [`Config::cleaner_max_age_bytes`]: half the 4 TiB window of log
/// a scan cursor can name.
pub const MAX_CLEANER_AGE_BYTES: u64 = 2 << 40;

/// 512 MiB: Redis's `proto-max-bulk-len` default.
pub const MAX_VALUE_BYTES: usize = 512 * 1024 * 1024;

/// Upper bound for [`Config::segment_bytes`].
pub const MAX_SEGMENT_BYTES: usize = 8 * 1024 * 1024;

impl Default for Config {
    fn default() -> Config {
        let segment_bytes = 1024 * 1024;
        Config {
            segment_bytes,
            large_record_bytes: segment_bytes / 8,
            max_value_bytes: MAX_VALUE_BYTES,
            max_key_bytes: MAX_VALUE_BYTES,
            cleaner_garbage_percent: 20,
            cleaner_min_garbage_bytes: 2 * segment_bytes,
            spare_segments: 2,
            cleaner_max_age_bytes: MAX_CLEANER_AGE_BYTES,
        }
    }
}

/// A stored value, borrowed from the shard until its next mutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value<'a> {
    /// The value bytes.
    pub bytes: &'a [u8],
    /// The version given by the write that produced this value.
    pub version: u64,
    /// Absolute deadline in ms, or 0 for none.
    pub expiry_ms: u64,
}

/// When a [`Shard::set`] may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition<'a> {
    /// Always (plain SET).
    Always,
    /// Only if the key is absent (SET NX).
    IfAbsent,
    /// Only if the key is present (SET XX).
    IfPresent,
    /// Only if the key is present with this version (compare-and-set).
    IfVersion(u64),
    /// Only if the key is present and its value equals these bytes (Redis 8.4 SET IFEQ).
    IfValueEquals(&'a [u8]),
}

/// What a [`Shard::set`] does with the key's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No deadline (plain SET clears any).
    Clear,
    /// Keep the current deadline, if any (SET KEEPTTL).
    Keep,
    /// This absolute deadline in ms (SET PXAT; the caller turns EX/PX into it). A deadline at or
    /// before `now_ms` deletes the key, as Redis does.
    At(u64),
}

/// Options of [`Shard::set`]; the default is a plain SET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetOptions<'a> {
    /// When to write.
    pub condition: Condition<'a>,
    /// What to do with the deadline.
    pub expiry: Expiry,
    /// Return a copy of the old value (SET ... GET). Costs one allocation when the key exists.
    pub return_old: bool,
}

impl Default for SetOptions<'_> {
    fn default() -> Self {
        SetOptions {
            condition: Condition::Always,
            expiry: Expiry::Clear,
            return_old: false,
        }
    }
}

/// The answer of [`Shard::set`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetOutcome {
    /// Whether the condition held and the value was written.
    pub stored: bool,
    /// If stored: the new version. If not: the key's current version, or 0 if it is absent.
    pub version: u64,
    /// The old value, if `return_old` was asked and the key existed (whether stored or not).
    pub old: Option<Vec<u8>>,
}

/// The answer of [`Shard::incr_by`] and [`Shard::decr_by`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// The value after the increment.
    pub value: i64,
    /// The new version.
    pub version: u64,
}

/// The answer of [`Shard::append`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The value's length after appending.
    pub len: usize,
    /// The new version.
    pub version: u64,
}

/// Work done by one [`Shard::clean_step`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Bytes of the victim segment walked (live and dead records).
    pub bytes_walked: usize,
    /// Live records moved to the head of the log.
    pub records_moved: usize,
    /// Bytes of those records.
    pub bytes_moved: usize,
    /// Segments given back to the allocator.
    pub segments_freed: usize,
    /// Buckets of old tables looked at to move table entries to new ones (while a table
    /// partition migrates).
    pub table_buckets_looked: usize,
}

/// Memory use of a shard, for INFO and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Keys in the table (some may be expired and not yet removed, as in Redis's DBSIZE).
    pub keys: usize,
    /// Bytes of live records, headers included.
    pub live_bytes: usize,
    /// Bytes of dead records still in segments (reclaimed by the cleaner).
    pub garbage_bytes: usize,
    /// Allocated but never-used bytes at the ends of segments (the head's free room included).
    pub unused_bytes: usize,
    /// Bytes requested from the allocator for segments in use (chunks plus bumpalo's footers).
    pub segment_bytes: usize,
    /// Bytes of freed segments kept for reuse (see [`Config::spare_segments`]).
    pub spare_bytes: usize,
    /// Number of segments.
    pub segments: usize,
    /// Bytes of the hash table's allocation.
    pub table_bytes: usize,
    /// Bytes of the segment index (slots and log order).
    pub index_bytes: usize,
    /// Records the cleaner moved, since the shard was made.
    pub cleaner_records_moved: u64,
    /// Bytes the cleaner moved.
    pub cleaner_bytes_moved: u64,
    /// Segments the cleaner freed.
    pub cleaner_segments_freed: u64,
    /// Keys removed because their deadline passed (lazily or by `expire_step`).
    pub expired_keys: u64,
}

impl MemoryStats {
    /// Everything the shard holds: segments (spares included), table and index.
    pub fn total_bytes(&self) -> usize {
        self.segment_bytes + self.spare_bytes + self.table_bytes + self.index_bytes
    }
}

/// Running counters that cost nothing to read (no walk over the segments, unlike
/// [`Shard::memory`]): what a benchmark or a latency probe compares before and after one
/// operation to tell what the operation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkCounters {
    /// Segments opened (ordinary and large) since the shard was made, spares reused included.
    pub segments_opened: u64,
    /// Segments obtained from the allocator (not reused spares).
    pub segments_allocated: u64,
    /// Segments given back to the allocator.
    pub segments_released: u64,
    /// Pages touched ahead of need by [`Shard::prefault_step`] (a segment it allocated counts
    /// as one).
    pub pages_prefaulted: u64,
    /// Segments the cleaner freed (kept as spares or released).
    pub segments_freed: u64,
    /// Bytes the cleaner moved.
    pub cleaner_bytes_moved: u64,
    /// Keys the table's partitions were made to hold (a change means one grew or was remade);
    /// for a partition that migrates, its two tables together.
    pub table_capacity: usize,
    /// Table migrations started, in all partitions (each one replaces a partition's table by a
    /// larger or a clean one and moves the entries across in steps; see docs/store.md,
    /// "Incremental resizing").
    pub table_migrations: u64,
    /// Partition tables replaced by a table [`Shard::prefault_step`] prepared ahead of need
    /// (the rest of the replacements allocated their table inside a write).
    pub table_prepared_used: u64,
    /// Whether a table migration is running (in any partition).
    pub table_migrating: bool,
    /// Table entries still to move from old tables to new ones.
    pub table_entries_to_move: usize,
}

/// Why an operation was refused. Nothing was changed when one of these is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The value is not a decimal 64-bit integer (INCR family).
    NotAnInteger,
    /// The increment would overflow a 64-bit integer.
    Overflow,
    /// DECRBY with `i64::MIN`, whose negation does not exist.
    DecrementOverflow,
    /// A key or value is larger than the configured limit.
    TooLarge {
        /// The length that was asked for.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The allocator refused memory for a segment or for the table, or the shard already has
    /// as many segments as a handle can name (16 GiB of 1 MiB segments; see
    /// [`Config::segment_bytes`]).
    OutOfMemory,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotAnInteger => f.write_str("ERR value is not an integer or out of range"),
            StoreError::Overflow => f.write_str("ERR increment or decrement would overflow"),
            StoreError::DecrementOverflow => f.write_str("ERR decrement would overflow"),
            StoreError::TooLarge { .. } => {
                f.write_str("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
            }
            StoreError::OutOfMemory => {
                f.write_str("OOM command not allowed when used memory > 'maxmemory'.")
            }
        }
    }
}

impl std::error::Error for StoreError {}
