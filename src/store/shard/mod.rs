//! [`Shard`]: one worker's keys. This file holds the struct, its constructor and the
//! bookkeeping every other part of it uses (finding a key, handing out versions, counting records
//! live or dead); the rest is split by job:
//!
//! - `ops.rs`: the operations commands call (GET, SET, INCR, APPEND, EXPIRE, FLUSHALL...) and the
//!   two ways they write a value (in place, or as a new record);
//! - `scan.rs`: walking the log in order, for SCAN and for active expiry;
//! - `cursor.rs`: the scan cursor's encoding (pure functions of integers);
//! - `cleaner.rs`: choosing a victim segment and moving its live records to the head;
//! - `prefault.rs`: memory made ready ahead of need (pre-faulting, spare segments);
//! - `stats.rs`: counters, memory use and the invariant check the tests run.
//!
//! Safe code only; record bytes are reached through `arena.rs` and read through `record.rs`.

mod cleaner;
mod cursor;
mod ops;
mod prefault;
mod scan;
mod stats;

use super::arena::{Arena, Handle};
use super::record::{self, Header};
use super::table::{MIGRATE_STEP_ENTRIES, Table};
use super::{Config, MAX_CLEANER_AGE_BYTES, MAX_SEGMENT_BYTES, hash_key};

/// One shard: a hash table of handles over log-structured arena segments.
///
/// Every operation that names a key takes `hash`, which must be [`hash_key`]`(key)` (checked in
/// debug builds), and `now_ms`, the caller's clock, where expiry matters. Writes return the new
/// version: a per-shard counter that only grows, so no two writes ever get the same version.
pub struct Shard {
    table: Table,
    arena: Arena,
    config: Config,
    /// The last version given to a write; the next write gets `version + 1`.
    pub(in crate::store) version: u64,
    /// Bytes of live records (headers included).
    live_bytes: usize,
    /// Bytes allocated in segments (live and dead records).
    used_bytes: usize,
    /// The segment being cleaned and the position reached in it.
    cleaning: Option<(u32, usize)>,
    /// Where active expiry resumes: a virtual log offset.
    expire_offset: u64,
    /// Large segments whose record died: the cleaner frees them first, whatever the garbage
    /// ratio, since each holds a lot of memory.
    empty_large_segments: usize,
    cleaner_records_moved: u64,
    cleaner_bytes_moved: u64,
    cleaner_segments_freed: u64,
    expired_keys: u64,
}

// A shard is built on one thread and handed to its worker.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Shard>();
};

impl Shard {
    /// An empty shard.
    ///
    /// # Panics
    ///
    /// If the configuration is inconsistent (segment size out of range, large-record threshold
    /// above the segment size).
    pub fn new(config: Config) -> Shard {
        Shard::with_capacity(config, 0)
    }

    /// An empty shard whose table has room for `keys` keys without growing.
    pub fn with_capacity(config: Config, keys: usize) -> Shard {
        assert!(config.segment_bytes >= 4096 && config.segment_bytes <= MAX_SEGMENT_BYTES);
        assert!(config.large_record_bytes >= 64);
        assert!(config.large_record_bytes <= config.segment_bytes);
        assert!(config.cleaner_garbage_percent < 100);
        assert!(config.max_value_bytes <= u32::MAX as usize / 2);
        assert!(config.max_key_bytes <= u32::MAX as usize / 2);
        assert!(config.cleaner_max_age_bytes <= MAX_CLEANER_AGE_BYTES);
        Shard {
            table: Table::with_capacity(keys),
            arena: Arena::new(
                config.segment_bytes,
                config.large_record_bytes,
                config.spare_segments,
            ),
            config,
            version: 0,
            live_bytes: 0,
            used_bytes: 0,
            cleaning: None,
            expire_offset: 0,
            empty_large_segments: 0,
            cleaner_records_moved: 0,
            cleaner_bytes_moved: 0,
            cleaner_segments_freed: 0,
            expired_keys: 0,
        }
    }

    /// The configuration the shard was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of keys (expired keys not yet removed included, as Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when the shard holds no key.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The last version given to a write (0 before the first write).
    pub fn last_version(&self) -> u64 {
        self.version
    }

    // ----- lookups and bookkeeping -------------------------------------------------------

    fn check_hash(hash: u64, key: &[u8]) {
        debug_assert_eq!(hash, hash_key(key), "hash must be hash_key(key)");
    }

    fn header(&self, handle: Handle) -> Header {
        record::decode(self.arena.tail(handle))
    }

    fn find(&self, hash: u64, key: &[u8]) -> Option<Handle> {
        self.find_with_header(hash, key).map(|(handle, _)| handle)
    }

    /// [`find`](Self::find), also returning the header decoded to compare the key (so the
    /// caller need not decode it a second time).
    #[inline(always)]
    fn find_with_header(&self, hash: u64, key: &[u8]) -> Option<(Handle, Header)> {
        let arena = &self.arena;
        let mut found = None;
        let handle = self.table.find(hash, |&handle| {
            let tail = arena.tail(handle);
            let header = record::decode(tail);
            let matches = header.key_len == key.len() && record::key(tail, &header) == key;
            if matches {
                found = Some(header);
            }
            matches
        })?;
        found.map(|header| (handle, header))
    }

    /// Find a key that has not expired; an expired one is removed on the way (lazy expiry).
    fn find_live(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<(Handle, Header)> {
        Shard::check_hash(hash, key);
        let (handle, header) = self.find_with_header(hash, key)?;
        if header.is_expired(now_ms) {
            self.remove(hash, handle, &header);
            self.expired_keys += 1;
            return None;
        }
        Some((handle, header))
    }

    /// The version the next write will take (it takes it by storing it in `self.version`).
    fn peek_version(&self) -> u64 {
        // 2^56 - 1 writes: 228 years at ten million writes a second. Never reached in practice;
        // asserted so that a version can never wrap and repeat.
        assert!(self.version < record::MAX_VERSION, "versions exhausted");
        self.version + 1
    }

    fn next_version(&mut self) -> u64 {
        self.version = self.peek_version();
        self.version
    }

    /// Take a record out of the table and mark it dead. Its bytes stay readable until the
    /// cleaner frees its segment (which needs `&mut self`).
    fn remove(&mut self, hash: u64, handle: Handle, header: &Header) {
        let removed = self.table.remove(hash, handle);
        assert!(removed, "a live record is in the table");
        self.kill(handle, header);
        self.table
            .migrate_step(&self.arena, hash, MIGRATE_STEP_ENTRIES);
    }

    /// Mark a record dead and take it out of the live counts.
    fn kill(&mut self, handle: Handle, header: &Header) {
        debug_assert!(!header.is_dead());
        record::set_dead(self.arena.tail_mut(handle));
        let size = header.record_bytes();
        let slot = self.arena.slot_of(handle);
        let segment = self.arena.segment_mut(slot);
        segment.live_bytes -= size;
        segment.live_records -= 1;
        if header.expiry_ms != 0 {
            segment.volatile_records -= 1;
        }
        if segment.large && segment.live_records == 0 {
            self.empty_large_segments += 1;
        }
        self.live_bytes -= size;
    }

    /// Count a new record as live.
    fn admit(&mut self, handle: Handle, size: usize, expiry_ms: u64) {
        let slot = self.arena.slot_of(handle);
        let segment = self.arena.segment_mut(slot);
        segment.live_bytes += size;
        segment.live_records += 1;
        if expiry_ms != 0 {
            segment.volatile_records += 1;
        }
        self.live_bytes += size;
        self.used_bytes += size;
    }

    /// Change the deadline of a record that has the expiry field, in place.
    fn set_deadline_in_place(&mut self, handle: Handle, header: &Header, expiry_ms: u64) {
        debug_assert!(header.has_expiry_field());
        record::set_expiry(self.arena.tail_mut(handle), header, expiry_ms);
        let slot = self.arena.slot_of(handle);
        let segment = self.arena.segment_mut(slot);
        match (header.expiry_ms != 0, expiry_ms != 0) {
            (false, true) => segment.volatile_records += 1,
            (true, false) => segment.volatile_records -= 1,
            _ => {}
        }
    }
}
