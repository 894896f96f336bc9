//! [`Shard`]: the table, the operations, expiry, scan and the cleaner. Safe code only; record
//! bytes are reached through `arena.rs` and read through `record.rs`.

use super::arena::{Arena, Handle, Part};
use super::record::{self, Header};
use super::table::{MIGRATE_STEP_ENTRIES, Table};
use super::{
    Appended, CleanReport, Condition, Config, Counter, Expiry, MAX_CLEANER_AGE_BYTES,
    MAX_SEGMENT_BYTES, MemoryStats, SetOptions, SetOutcome, StoreError, Value, WorkCounters,
    glob_match, hash_key,
};

/// A scan cursor is `offset << CURSOR_LAG_BITS | lag`: `offset` is the virtual log offset where
/// the next call resumes, in 4-byte units modulo 2^40 (it is read back as the nearest offset at
/// or behind the end of the log, so it names any point up to 4 TiB behind the end), and `lag`
/// is how far that offset was behind the end of the log when the call returned, rounded down
/// (see [`encode_lag`]). 56 bits in all, so the server can multiply a cursor by its number of
/// workers (up to 256) without overflow.
const CURSOR_OFFSET_BITS: u32 = 40;
const CURSOR_LAG_BITS: u32 = 16;
/// Mantissa bits of the lag (a small floating-point number: 5-bit exponent, 11-bit mantissa,
/// so it is exact below 8 KiB and otherwise at most 1/2048 below the true distance).
const LAG_MANTISSA_BITS: u32 = 11;
/// Bits of a shard's scan cursor: every cursor [`Shard::scan`] returns is below `2^56`.
pub const SCAN_CURSOR_BITS: u32 = CURSOR_OFFSET_BITS + CURSOR_LAG_BITS;
/// How far behind the end of the log a cursor can point: 4 TiB.
const SCAN_WINDOW_BYTES: u64 = (RECORD_UNIT as u64) << CURSOR_OFFSET_BITS;
const RECORD_UNIT: usize = record::RECORD_ALIGN;
const _: () = assert!(SCAN_CURSOR_BITS <= 56);
const _: () = assert!(MAX_CLEANER_AGE_BYTES <= SCAN_WINDOW_BYTES / 2);
const _: () = assert!(MAX_SEGMENT_BYTES as u64 <= SCAN_WINDOW_BYTES / 1024);

/// Most records one scan call visits while *chasing* (catching up with what was appended since
/// the previous call) before its ordinary COUNT budget starts: 2^18 records, a few tens of
/// milliseconds. A scan finishes in a bounded number of calls as long as fewer records than
/// this are appended between two of its calls (see DESIGN.md, store, "Scan").
pub const SCAN_CHASE_MAX_VISITS: usize = 1 << 18;

/// A segment is worth cleaning only below this utilisation (live bytes / capacity), in percent.
const MAX_VICTIM_UTILIZATION_PERCENT: usize = 90;

/// A scan call stops after `count` live records or `DEAD_VISITS_PER_COUNT * count` dead ones
/// (like Redis's empty-bucket limit), so a call on a log full of garbage stays short.
const DEAD_VISITS_PER_COUNT: usize = 10;

/// Debug builds check, when a segment is freed, that no handle points into it, by walking the
/// whole table; above this many keys the walk is skipped to keep big debug tests fast.
const DEBUG_FREE_CHECK_MAX_KEYS: usize = 50_000;

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
    pub(super) version: u64,
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

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("keys", &self.table.len())
            .field("version", &self.version)
            .field("memory", &self.memory())
            .finish()
    }
}

fn hash_of(arena: &Arena, handle: Handle) -> u64 {
    let tail = arena.tail(handle);
    let header = record::decode(tail);
    hash_key(record::key(tail, &header))
}

/// Parse a value as Redis's INCR does: optional '-', then digits with no leading zero (or
/// exactly "0"), no spaces or '+', at most 20 bytes, within `i64`.
fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add((digit - b'0') as u64)?;
    }
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            None
        } else {
            Some((magnitude as i64).wrapping_neg())
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Format `value` in decimal into `buffer`; returns the used tail of it.
fn format_i64(value: i64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut at = buffer.len();
    let mut magnitude = value.unsigned_abs();
    loop {
        at -= 1;
        buffer[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if value < 0 {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

/// The lag field of a scan cursor: `bytes` (a distance in the log, a multiple of 4) rounded
/// *down* to a 16-bit float of 4-byte units. Rounding down makes the next call over-estimate
/// how much the log grew, which costs extra visits but never loses a key. Zero only for 0.
fn encode_lag(bytes: u64) -> u64 {
    const MANTISSA: u64 = (1 << LAG_MANTISSA_BITS) - 1;
    let units = bytes / RECORD_UNIT as u64;
    if units <= MANTISSA {
        return units;
    }
    let shift = 63 - units.leading_zeros() - LAG_MANTISSA_BITS;
    let exponent = shift as u64 + 1;
    if exponent >= 1 << (CURSOR_LAG_BITS - LAG_MANTISSA_BITS) {
        return (1 << CURSOR_LAG_BITS) - 1; // the largest value, still below `bytes`
    }
    (exponent << LAG_MANTISSA_BITS) | ((units >> shift) & MANTISSA)
}

/// The distance in bytes a lag field stands for (at most the distance that was encoded).
fn decode_lag(field: u64) -> u64 {
    const MANTISSA: u64 = (1 << LAG_MANTISSA_BITS) - 1;
    let field = field & ((1 << CURSOR_LAG_BITS) - 1);
    let (exponent, mantissa) = (field >> LAG_MANTISSA_BITS, field & MANTISSA);
    let units = if exponent == 0 {
        mantissa
    } else {
        ((1 << LAG_MANTISSA_BITS) | mantissa) << (exponent - 1)
    };
    units * RECORD_UNIT as u64
}

fn encode_scan_cursor(offset: u64, lag: u64) -> u64 {
    let units = (offset / RECORD_UNIT as u64) & ((1 << CURSOR_OFFSET_BITS) - 1);
    (units << CURSOR_LAG_BITS) | encode_lag(lag)
}

/// `(offset, lag)` of a scan cursor, with `end` the end of the log now. Any `u64` decodes to
/// an offset at or behind `end`; only the low 56 bits are read.
fn decode_scan_cursor(cursor: u64, end: u64) -> (u64, u64) {
    let mask = (1 << CURSOR_OFFSET_BITS) - 1;
    let units = (cursor >> CURSOR_LAG_BITS) & mask;
    let behind = (end / RECORD_UNIT as u64).wrapping_sub(units) & mask;
    (
        end.saturating_sub(behind * RECORD_UNIT as u64),
        decode_lag(cursor),
    )
}

/// What a log walker decided about one record.
enum Visit {
    Live,
    Dead,
    Expired,
}

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

    /// Write a new record for `key` (given as a part of `key_len` bytes) with the value made of
    /// `value_parts`, and point the table at it; the `existing` record, if any, becomes garbage.
    /// Nothing changes if memory is refused.
    #[allow(clippy::too_many_arguments)]
    fn write_record(
        &mut self,
        hash: u64,
        key: Part<'_>,
        value_parts: &[Part<'_>],
        expiry_ms: u64,
        version: u64,
        existing: Option<(Handle, Header)>,
    ) -> Result<Handle, StoreError> {
        debug_assert!(value_parts.len() <= 2);
        let key_len = key.len();
        let value_len: usize = value_parts.iter().map(Part::len).sum();
        let expiry_field = expiry_ms != 0;
        let size = record::record_bytes(key_len, value_len, expiry_field);
        if existing.is_none() {
            self.table
                .reserve_one(&self.arena, hash)
                .map_err(|()| StoreError::OutOfMemory)?;
        }
        let mut header = [0u8; record::MAX_HEADER_BYTES];
        let header_len = record::encode_header(
            &mut header,
            key_len,
            value_len,
            version,
            expiry_field.then_some(expiry_ms),
        );
        let mut parts = [Part::Bytes(&[]); 4];
        parts[..value_parts.len()].copy_from_slice(value_parts);
        parts[value_parts.len()] = key;
        parts[value_parts.len() + 1] = Part::Bytes(&header[..header_len]);
        let handle = self
            .arena
            .allocate(size, &parts[..value_parts.len() + 2], self.version)
            .ok_or(StoreError::OutOfMemory)?;
        self.admit(handle, size, expiry_ms);
        match existing {
            Some((old, old_header)) => {
                let slot = self
                    .table
                    .slot_of(hash, old)
                    .expect("a live record is in the table");
                *slot = handle;
                self.kill(old, &old_header);
            }
            None => self.table.insert(&self.arena, hash, handle),
        }
        self.table
            .migrate_step(&self.arena, hash, MIGRATE_STEP_ENTRIES);
        Ok(handle)
    }

    /// Store `value` with `expiry_ms` and `version` for `key` (SET, INCR): in place when the
    /// `existing` record has a value of the same length and room for the deadline (no
    /// allocation, no garbage), else as a new record. The caller stores `version` in
    /// `self.version` once this succeeds.
    fn write_value(
        &mut self,
        hash: u64,
        key: &[u8],
        value: &[u8],
        expiry_ms: u64,
        version: u64,
        existing: Option<(Handle, Header)>,
    ) -> Result<(), StoreError> {
        // (No let chains: the workspace's minimum Rust is 1.85.)
        let in_place = existing.filter(|(_, header)| {
            header.value_len == value.len() && (header.has_expiry_field() || expiry_ms == 0)
        });
        if let Some((handle, header)) = in_place {
            let tail = self.arena.tail_mut(handle);
            record::value_mut(tail, &header).copy_from_slice(value);
            record::set_version(tail, version);
            if header.has_expiry_field() {
                self.set_deadline_in_place(handle, &header, expiry_ms);
            }
            return Ok(());
        }
        self.write_record(
            hash,
            Part::Bytes(key),
            &[Part::Bytes(value)],
            expiry_ms,
            version,
            existing,
        )
        .map(|_| ())
    }

    fn check_len(len: usize, max: usize) -> Result<(), StoreError> {
        if len > max {
            Err(StoreError::TooLarge { len, max })
        } else {
            Ok(())
        }
    }

    // ----- reads ---------------------------------------------------------------------------

    /// The value of `key`, with its version and deadline (GET).
    pub fn get(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<Value<'_>> {
        let (handle, header) = self.find_live(hash, key, now_ms)?;
        let tail = self.arena.tail(handle);
        Some(Value {
            bytes: record::value(tail, &header),
            version: header.version,
            expiry_ms: header.expiry_ms,
        })
    }

    /// Whether `key` exists (EXISTS).
    pub fn exists(&mut self, hash: u64, key: &[u8], now_ms: u64) -> bool {
        self.find_live(hash, key, now_ms).is_some()
    }

    /// Length of the value, 0 if the key is absent (STRLEN).
    pub fn strlen(&mut self, hash: u64, key: &[u8], now_ms: u64) -> usize {
        self.find_live(hash, key, now_ms)
            .map_or(0, |(_, header)| header.value_len)
    }

    /// Remaining time to live in ms (PTTL): -2 if the key is absent, -1 if it has no deadline.
    pub fn ttl_ms(&mut self, hash: u64, key: &[u8], now_ms: u64) -> i64 {
        match self.find_live(hash, key, now_ms) {
            None => -2,
            Some((_, header)) if header.expiry_ms == 0 => -1,
            Some((_, header)) => (header.expiry_ms - now_ms).min(i64::MAX as u64) as i64,
        }
    }

    // ----- writes --------------------------------------------------------------------------

    /// Write `value` under `key` if `options.condition` holds (SET with NX, XX, IFEQ, GET,
    /// KEEPTTL, PXAT; compare-and-set on a version). Sizes are checked before anything else.
    pub fn set(
        &mut self,
        hash: u64,
        key: &[u8],
        value: &[u8],
        options: SetOptions<'_>,
        now_ms: u64,
    ) -> Result<SetOutcome, StoreError> {
        Shard::check_len(key.len(), self.config.max_key_bytes)?;
        Shard::check_len(value.len(), self.config.max_value_bytes)?;
        let existing = self.find_live(hash, key, now_ms);
        let old = match (options.return_old, existing) {
            (true, Some((handle, header))) => {
                Some(record::value(self.arena.tail(handle), &header).to_vec())
            }
            _ => None,
        };
        let allowed = match options.condition {
            Condition::Always => true,
            Condition::IfAbsent => existing.is_none(),
            Condition::IfPresent => existing.is_some(),
            Condition::IfVersion(version) => existing.is_some_and(|(_, h)| h.version == version),
            Condition::IfValueEquals(expected) => existing.is_some_and(|(handle, header)| {
                record::value(self.arena.tail(handle), &header) == expected
            }),
        };
        if !allowed {
            return Ok(SetOutcome {
                stored: false,
                version: existing.map_or(0, |(_, header)| header.version),
                old,
            });
        }
        let expiry_ms = match options.expiry {
            Expiry::Clear => 0,
            Expiry::Keep => existing.map_or(0, |(_, header)| header.expiry_ms),
            Expiry::At(deadline_ms) => deadline_ms,
        };
        if matches!(options.expiry, Expiry::At(deadline_ms) if deadline_ms <= now_ms) {
            // Redis: a deadline already past deletes the key (and the write still counts).
            let version = self.next_version();
            if let Some((handle, header)) = existing {
                self.remove(hash, handle, &header);
            }
            return Ok(SetOutcome {
                stored: true,
                version,
                old,
            });
        }
        let version = self.peek_version();
        self.write_value(hash, key, value, expiry_ms, version, existing)?;
        self.version = version;
        Ok(SetOutcome {
            stored: true,
            version,
            old,
        })
    }

    /// Delete `key`; true if it existed (DEL, UNLINK).
    pub fn delete(&mut self, hash: u64, key: &[u8], now_ms: u64) -> bool {
        match self.find_live(hash, key, now_ms) {
            Some((handle, header)) => {
                self.remove(hash, handle, &header);
                true
            }
            None => false,
        }
    }

    /// Delete `key` and return what it held (GETDEL). The bytes are borrowed from the dead
    /// record, which stays in place until the cleaner frees its segment.
    pub fn get_delete(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<Value<'_>> {
        let (handle, header) = self.find_live(hash, key, now_ms)?;
        self.remove(hash, handle, &header);
        let tail = self.arena.tail(handle);
        Some(Value {
            bytes: record::value(tail, &header),
            version: header.version,
            expiry_ms: header.expiry_ms,
        })
    }

    /// Add `delta` to the integer value of `key` (INCR, INCRBY, DECR via a negative delta). An
    /// absent key counts as 0; the deadline is kept.
    pub fn incr_by(
        &mut self,
        hash: u64,
        key: &[u8],
        delta: i64,
        now_ms: u64,
    ) -> Result<Counter, StoreError> {
        Shard::check_len(key.len(), self.config.max_key_bytes)?;
        let existing = self.find_live(hash, key, now_ms);
        let (current, expiry_ms) = match existing {
            None => (0, 0),
            Some((handle, header)) => {
                let bytes = record::value(self.arena.tail(handle), &header);
                (
                    parse_i64(bytes).ok_or(StoreError::NotAnInteger)?,
                    header.expiry_ms,
                )
            }
        };
        let value = current.checked_add(delta).ok_or(StoreError::Overflow)?;
        let mut buffer = [0u8; 20];
        let digits = format_i64(value, &mut buffer);
        let version = self.peek_version();
        self.write_value(hash, key, digits, expiry_ms, version, existing)?;
        self.version = version;
        Ok(Counter { value, version })
    }

    /// Subtract `delta` (DECRBY). `i64::MIN` is refused as Redis does.
    pub fn decr_by(
        &mut self,
        hash: u64,
        key: &[u8],
        delta: i64,
        now_ms: u64,
    ) -> Result<Counter, StoreError> {
        if delta == i64::MIN {
            return Err(StoreError::DecrementOverflow);
        }
        self.incr_by(hash, key, -delta, now_ms)
    }

    /// Append `suffix` to the value of `key`, creating it if absent (APPEND). Keeps the deadline.
    pub fn append(
        &mut self,
        hash: u64,
        key: &[u8],
        suffix: &[u8],
        now_ms: u64,
    ) -> Result<Appended, StoreError> {
        Shard::check_len(key.len(), self.config.max_key_bytes)?;
        Shard::check_len(suffix.len(), self.config.max_value_bytes)?;
        let existing = self.find_live(hash, key, now_ms);
        let version = self.peek_version();
        let len = match existing {
            None => {
                self.write_record(
                    hash,
                    Part::Bytes(key),
                    &[Part::Bytes(suffix)],
                    0,
                    version,
                    None,
                )?;
                suffix.len()
            }
            Some((handle, header)) if suffix.is_empty() => {
                record::set_version(self.arena.tail_mut(handle), version);
                header.value_len
            }
            Some((handle, header)) => {
                let len = header.value_len + suffix.len();
                Shard::check_len(len, self.config.max_value_bytes)?;
                let tail_len = self.arena.tail(handle).len();
                let old_value = Part::Stored {
                    handle,
                    start: header.value_start(tail_len),
                    len: header.value_len,
                };
                let old_key = Part::Stored {
                    handle,
                    start: header.key_start(tail_len),
                    len: header.key_len,
                };
                self.write_record(
                    hash,
                    old_key,
                    &[old_value, Part::Bytes(suffix)],
                    header.expiry_ms,
                    version,
                    existing,
                )?;
                len
            }
        };
        self.version = version;
        Ok(Appended { len, version })
    }

    /// Give `key` the absolute deadline `deadline_ms` (PEXPIREAT; EXPIRE and friends convert).
    /// A deadline at or before `now_ms` deletes the key. Returns the new version, or `None` if
    /// the key is absent.
    pub fn expire_at(
        &mut self,
        hash: u64,
        key: &[u8],
        deadline_ms: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let Some((handle, header)) = self.find_live(hash, key, now_ms) else {
            return Ok(None);
        };
        let version = self.peek_version();
        if deadline_ms <= now_ms {
            self.remove(hash, handle, &header);
        } else if header.has_expiry_field() {
            self.set_deadline_in_place(handle, &header, deadline_ms);
            record::set_version(self.arena.tail_mut(handle), version);
        } else {
            // The record has no room for a deadline: rewrite it with the field.
            let tail_len = self.arena.tail(handle).len();
            let old_key = Part::Stored {
                handle,
                start: header.key_start(tail_len),
                len: header.key_len,
            };
            let old_value = Part::Stored {
                handle,
                start: header.value_start(tail_len),
                len: header.value_len,
            };
            self.write_record(
                hash,
                old_key,
                &[old_value],
                deadline_ms,
                version,
                Some((handle, header)),
            )?;
        }
        self.version = version;
        Ok(Some(version))
    }

    /// Remove the deadline of `key` (PERSIST). Returns the new version if a deadline was
    /// removed, `None` if the key is absent or had none.
    pub fn persist(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<u64> {
        let (handle, header) = self.find_live(hash, key, now_ms)?;
        if header.expiry_ms == 0 {
            return None;
        }
        let version = self.next_version();
        self.set_deadline_in_place(handle, &header, 0);
        record::set_version(self.arena.tail_mut(handle), version);
        Some(version)
    }

    /// Give the spare segments (see [`Config::spare_segments`]) back to the operating system,
    /// for a worker that has been idle for a while. Returns how many were released.
    pub fn release_spare_segments(&mut self) -> usize {
        self.arena.release_spares()
    }

    /// One bounded step of pre-faulting, for a worker with nothing else to do: touch up to
    /// `max_pages` pages (4 KiB) of memory that writes will soon fill, so that their page
    /// faults are taken here rather than inside a later write. First the head segment ahead of
    /// its allocated part, then the spare that will be the next head (allocated here if there
    /// is none, [`Config::spare_segments`] is not 0 and the cleaner has no work: segments it
    /// frees become spares), then the next table of a partition close to full (see
    /// `Table::prepare_step`). Keeps at most one segment (the spare) and one table per
    /// partition allocated ahead of need. Returns the pages touched; 0 once
    /// [`Shard::is_prefaulted`]. See DESIGN.md, store, "Pre-faulting".
    pub fn prefault_step(&mut self, max_pages: usize) -> usize {
        // No spare segment is allocated ahead while the cleaner works: the segment it frees
        // next becomes the spare (already mapped), and one allocated now would push a freed
        // one over the spare limit, back to the system, inside a write.
        let allocate = !self.needs_garbage_cleaning();
        let touched = self.arena.prefault_step(max_pages, allocate);
        if touched >= max_pages {
            return touched;
        }
        touched + self.table.prepare_step(max_pages - touched)
    }

    /// Whether [`Shard::prefault_step`] has nothing to do. Cheap (a few comparisons).
    pub fn is_prefaulted(&self) -> bool {
        self.table.is_prepared() && self.arena.is_prefaulted(|| !self.needs_garbage_cleaning())
    }

    /// Remove every key (FLUSHALL) and give all memory back, spares included. Versions keep
    /// counting.
    pub fn flush(&mut self) {
        self.table.clear();
        self.arena.clear();
        self.live_bytes = 0;
        self.used_bytes = 0;
        self.cleaning = None;
        self.expire_offset = 0;
        self.empty_large_segments = 0;
    }

    // ----- walking the log: scan and active expiry ------------------------------------------

    /// Look at the record at `(slot, position)`; remove it if it has expired. Returns the
    /// verdict and the record's size. `on_live` sees the key of a live record.
    fn visit(
        &mut self,
        slot: u32,
        position: usize,
        now_ms: u64,
        on_live: impl FnOnce(&[u8]),
    ) -> (Visit, usize) {
        let handle = self.arena.handle_at(slot, position);
        let tail = self.arena.tail(handle);
        let header = record::decode(tail);
        let size = header.record_bytes();
        if header.is_dead() {
            return (Visit::Dead, size);
        }
        if header.is_expired(now_ms) {
            let hash = hash_key(record::key(tail, &header));
            self.remove(hash, handle, &header);
            self.expired_keys += 1;
            return (Visit::Expired, size);
        }
        on_live(record::key(tail, &header));
        (Visit::Live, size)
    }

    /// Whether a record starts at `position` of `slot`, for a position that came from a client's
    /// cursor and may be garbage. `Some(true)`: a live record the table points at (so a record
    /// boundary); `Some(false)`: something that decodes as a dead record (cannot be confirmed;
    /// the walk goes on unconfirmed); `None`: not a record.
    fn check_record_at(&self, slot: u32, position: usize) -> Option<bool> {
        let segment = self.arena.segment(slot);
        if position % RECORD_UNIT != 0 || (segment.large && position != 0) {
            return None;
        }
        let handle = self.arena.handle_at(slot, position);
        let tail = self.arena.tail(handle);
        let header = record::decode_checked(tail)?;
        if header.is_dead() {
            return Some(false);
        }
        let key = record::key(tail, &header);
        self.table
            .find(hash_key(key), |&h| h == handle)
            .map(|_| true)
    }

    /// Iterate keys (SCAN). Start with cursor 0; each call returns the cursor for the next call,
    /// and 0 when the iteration is complete. `count` bounds the live records looked at per call
    /// (the MATCH filter applies after, so a call may emit fewer, as in Redis); `pattern` is a
    /// Redis glob. Every key present from the start to the end of the iteration is emitted at
    /// least once, even while the table grows or the cleaner moves records: the cursor walks the
    /// log in virtual-offset order and records only ever move forward in it. A key may be
    /// emitted more than once. Expired keys met on the way are removed.
    ///
    /// The iteration ends in a bounded number of calls whatever the write load: a call first
    /// visits as many bytes of log as were appended since the previous call (over-estimated
    /// from the lag the cursor carries, at most [`SCAN_CHASE_MAX_VISITS`] records), then its
    /// ordinary budget. Every returned cursor is below `2^56`; any `u64` is accepted as a cursor
    /// (a garbage one restarts somewhere in the log, never panics).
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
        now_ms: u64,
        mut emit: impl FnMut(&[u8]),
    ) -> u64 {
        let count = count.max(1);
        let end = self.arena.end_offset();
        let (start, chase) = if cursor == 0 {
            match self.arena.first_segment() {
                Some((base, _)) => (base, 0),
                None => return 0,
            }
        } else {
            let (offset, lag) = decode_scan_cursor(cursor, end);
            // The log grew by at least `(end - offset) - lag_then`; `lag` <= `lag_then`.
            (offset, (end - offset).saturating_sub(lag))
        };
        let chase_until = start.saturating_add(chase);
        let mut offset = start;
        // A cursor from a client may name no record boundary; the walk is trusted once it is at
        // a segment's start or has met a live record the table points at.
        let mut trusted = cursor == 0;
        let (mut chased, mut live_seen, mut dead_seen) = (0, 0, 0);
        loop {
            let Some((base, slot)) = self.arena.segment_for(offset) else {
                return 0;
            };
            if base >= offset {
                offset = base;
                trusted = true;
            }
            let chasing = offset < chase_until && chased < SCAN_CHASE_MAX_VISITS;
            if !chasing
                && (live_seen >= count || dead_seen >= count.saturating_mul(DEAD_VISITS_PER_COUNT))
            {
                return encode_scan_cursor(offset, end - offset);
            }
            let position = (offset - base) as usize;
            if !trusted {
                match self.check_record_at(slot, position) {
                    Some(true) => trusted = true,
                    Some(false) => {}
                    None => {
                        // Not a record boundary: walk this segment again from its start.
                        offset = base;
                        continue;
                    }
                }
            }
            let (verdict, size) = self.visit(slot, position, now_ms, |key| {
                if pattern.is_none_or(|p| glob_match(p, key)) {
                    emit(key);
                }
            });
            if chasing {
                chased += 1;
            } else {
                match verdict {
                    Visit::Live => live_seen += 1,
                    Visit::Dead | Visit::Expired => dead_seen += 1,
                }
            }
            offset += size as u64;
        }
    }

    /// Bytes of virtual log from the oldest segment to the end of the log (freed stretches in
    /// between included): what bounds the number of calls a scan started now takes.
    #[doc(hidden)]
    pub fn log_span_bytes(&self) -> u64 {
        self.arena
            .first_segment()
            .map_or(0, |(base, _)| self.arena.end_offset() - base)
    }

    /// Active expiry: look at up to `max_work` records (segments without any deadline are
    /// skipped at the cost of one unit) from where the last step stopped, and remove the
    /// expired ones. Returns how many keys were removed. Wraps around the log.
    pub fn expire_step(&mut self, now_ms: u64, max_work: usize) -> usize {
        let mut offset = self.expire_offset;
        let mut removed = 0;
        let mut work = 0;
        while work < max_work {
            let Some((base, slot)) = self.arena.segment_for(offset) else {
                offset = 0;
                break;
            };
            offset = offset.max(base);
            work += 1;
            let segment = self.arena.segment(slot);
            if segment.volatile_records == 0 {
                offset = base + segment.used() as u64;
                continue;
            }
            let (verdict, size) = self.visit(slot, (offset - base) as usize, now_ms, |_| {});
            if let Visit::Expired = verdict {
                removed += 1;
            }
            offset += size as u64;
        }
        self.expire_offset = offset;
        removed
    }

    // ----- the cleaner -----------------------------------------------------------------------

    fn garbage_bytes(&self) -> usize {
        self.used_bytes - self.live_bytes
    }

    /// Whether [`Shard::clean_step`] has work: a segment is being cleaned, a large segment is
    /// empty, or garbage exceeds
    /// both `cleaner_garbage_percent` of the segment memory and `cleaner_min_garbage_bytes`.
    pub fn needs_cleaning(&self) -> bool {
        self.table.is_migrating() || self.needs_garbage_cleaning()
    }

    fn needs_garbage_cleaning(&self) -> bool {
        let garbage = self.garbage_bytes();
        self.cleaning.is_some()
            || self.empty_large_segments > 0
            || self.too_old_segment().is_some()
            || (garbage > self.config.cleaner_min_garbage_bytes
                && garbage * 100
                    > self.arena.footprint_bytes() * self.config.cleaner_garbage_percent)
    }

    /// The oldest segment, if it starts more than `cleaner_max_age_bytes` of log behind the end
    /// (scan cursors name offsets at most 4 TiB behind the end; this keeps every live record
    /// well inside that window).
    fn too_old_segment(&self) -> Option<u32> {
        let (base, slot) = self.arena.first_segment()?;
        let age = self.arena.end_offset() - base;
        (age > self.config.cleaner_max_age_bytes && Some(slot) != self.arena.head()).then_some(slot)
    }

    /// RAMCloud's cost-benefit choice: the segment that maximises `(1 - u) * age / (1 + u)`,
    /// `u` its utilisation and `age` how many versions ago it stopped receiving records. An
    /// empty segment wins at once. The head and segments above the utilisation cap are skipped.
    fn pick_victim(&self) -> Option<u32> {
        if let Some(slot) = self.too_old_segment() {
            return Some(slot);
        }
        let head = self.arena.head();
        let mut best: Option<(f64, u32)> = None;
        for (slot, segment) in self.arena.segments() {
            if Some(slot) == head {
                continue;
            }
            if segment.live_records == 0 {
                return Some(slot);
            }
            if segment.large
                || segment.live_bytes * 100 >= segment.capacity() * MAX_VICTIM_UTILIZATION_PERCENT
            {
                continue;
            }
            let utilization = segment.live_bytes as f64 / segment.capacity() as f64;
            let age = (self.version - segment.sealed_version + 1) as f64;
            let score = (1.0 - utilization) * age / (1.0 + utilization);
            if best.is_none_or(|(best_score, _)| score > best_score) {
                best = Some((score, slot));
            }
        }
        best.map(|(_, slot)| slot)
    }

    /// One bounded step of the cleaner: walk at most about `max_bytes` of the victim segment
    /// (one record more at most), moving its live records to the head of the log, and free the
    /// segment once it holds no live record. Does nothing unless [`Shard::needs_cleaning`].
    pub fn clean_step(&mut self, max_bytes: usize) -> CleanReport {
        let mut report = CleanReport::default();
        if self.table.is_migrating() {
            // Idle work for the table too: one entry moved per 256 bytes of budget (32 for
            // the usual 8 KiB), at least a write's step.
            report.table_buckets_looked = self
                .table
                .migrate_idle(&self.arena, (max_bytes / 256).max(MIGRATE_STEP_ENTRIES));
        }
        if self.cleaning.is_none() {
            if !self.needs_garbage_cleaning() {
                return report;
            }
            match self.pick_victim() {
                Some(slot) => self.cleaning = Some((slot, 0)),
                None => return report,
            }
        }
        let Some((slot, mut position)) = self.cleaning else {
            return report;
        };
        loop {
            let segment = self.arena.segment(slot);
            if segment.live_records == 0 || position >= segment.used() {
                debug_assert_eq!(segment.live_records, 0);
                self.free_segment(slot);
                self.cleaning = None;
                report.segments_freed += 1;
                return report;
            }
            if report.bytes_walked >= max_bytes {
                break;
            }
            let handle = self.arena.handle_at(slot, position);
            let header = self.header(handle);
            let size = header.record_bytes();
            if !header.is_dead() {
                if !self.relocate(handle, &header) {
                    break; // out of memory: try again later
                }
                report.records_moved += 1;
                report.bytes_moved += size;
            }
            position += size;
            report.bytes_walked += size;
        }
        self.cleaning = Some((slot, position));
        report
    }

    /// Copy a live record to the head of the log and point the table at the copy.
    fn relocate(&mut self, handle: Handle, header: &Header) -> bool {
        let tail = self.arena.tail(handle);
        let size = header.record_bytes();
        let hash = hash_key(record::key(tail, header));
        let whole = Part::Stored {
            handle,
            start: header.record_start(tail.len()),
            len: size,
        };
        let Some(copy) = self.arena.allocate(size, &[whole], self.version) else {
            return false;
        };
        self.admit(copy, size, header.expiry_ms);
        let slot = self
            .table
            .slot_of(hash, handle)
            .expect("a live record is in the table");
        *slot = copy;
        self.kill(handle, header);
        self.cleaner_records_moved += 1;
        self.cleaner_bytes_moved += size as u64;
        true
    }

    fn free_segment(&mut self, slot: u32) {
        if cfg!(debug_assertions) && self.table.len() <= DEBUG_FREE_CHECK_MAX_KEYS {
            assert!(
                self.table.iter().all(|&h| self.arena.slot_of(h) != slot),
                "a handle points into a segment being freed"
            );
        }
        let segment = self.arena.segment(slot);
        if segment.large {
            self.empty_large_segments -= 1;
        }
        self.used_bytes -= segment.used();
        self.arena.free(slot);
        self.cleaner_segments_freed += 1;
    }

    // ----- statistics and checks ---------------------------------------------------------------

    /// Running counters, cheap to read (see [`WorkCounters`]).
    pub fn work_counters(&self) -> WorkCounters {
        WorkCounters {
            segments_opened: self.arena.segments_opened(),
            segments_allocated: self.arena.segments_allocated(),
            segments_released: self.arena.segments_released(),
            pages_prefaulted: self.arena.pages_prefaulted(),
            segments_freed: self.cleaner_segments_freed,
            cleaner_bytes_moved: self.cleaner_bytes_moved,
            table_capacity: self.table.capacity(),
            table_migrations: self.table.migrations(),
            table_prepared_used: self.table.prepared_used(),
            table_migrating: self.table.is_migrating(),
            table_entries_to_move: self.table.entries_to_move(),
        }
    }

    /// Memory use and cleaner work (for INFO). Costs a walk over the segment list.
    pub fn memory(&self) -> MemoryStats {
        let unused_bytes = self
            .arena
            .segments()
            .map(|(_, s)| s.capacity() - s.used())
            .sum();
        MemoryStats {
            keys: self.table.len(),
            live_bytes: self.live_bytes,
            garbage_bytes: self.garbage_bytes(),
            unused_bytes,
            segment_bytes: self.arena.footprint_bytes(),
            spare_bytes: self.arena.spare_bytes(),
            segments: self.arena.segment_count(),
            table_bytes: self.table.allocation_size(),
            index_bytes: self.arena.index_bytes(),
            cleaner_records_moved: self.cleaner_records_moved,
            cleaner_bytes_moved: self.cleaner_bytes_moved,
            cleaner_segments_freed: self.cleaner_segments_freed,
            expired_keys: self.expired_keys,
        }
    }

    /// Live records that carry a deadline (INFO's `expires=`; keys past their deadline but not
    /// yet removed count, as in Redis). Sums the per-segment counts: a walk over the segments.
    pub fn volatile_keys(&self) -> usize {
        self.arena
            .segments()
            .map(|(_, segment)| segment.volatile_records)
            .sum()
    }

    /// Check every internal invariant (slow: walks the table and every segment). For tests.
    ///
    /// # Panics
    ///
    /// If an invariant does not hold.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let mut live_seen = 0;
        let mut live_bytes = 0;
        let mut used_bytes = 0;
        for (slot, segment) in self.arena.segments() {
            let mut position = 0;
            let (mut records, mut bytes, mut volatile) = (0, 0, 0);
            while position < segment.used() {
                let handle = self.arena.handle_at(slot, position);
                let tail = self.arena.tail(handle);
                let header = record::decode(tail);
                assert!(header.version <= self.version);
                if !header.is_dead() {
                    let key = record::key(tail, &header);
                    assert_eq!(
                        self.find(hash_key(key), key),
                        Some(handle),
                        "a live record is the table's record for its key"
                    );
                    records += 1;
                    bytes += header.record_bytes();
                    volatile += usize::from(header.expiry_ms != 0);
                }
                position += header.record_bytes();
            }
            assert_eq!(position, segment.used(), "records tile the segment");
            assert_eq!(records, segment.live_records);
            assert_eq!(bytes, segment.live_bytes);
            assert_eq!(volatile, segment.volatile_records);
            live_seen += records;
            live_bytes += bytes;
            used_bytes += segment.used();
        }
        assert_eq!(
            live_seen,
            self.table.len(),
            "every table entry is a live record"
        );
        assert_eq!(live_bytes, self.live_bytes);
        assert_eq!(used_bytes, self.used_bytes);
        for &handle in self.table.iter() {
            assert!(!self.header(handle).is_dead());
        }
        self.table.check(|handle| hash_of(&self.arena, handle));
    }
}

#[cfg(test)]
mod cursor_tests {
    use super::*;

    #[test]
    fn lag_rounds_down_by_at_most_one_part_in_2048() {
        let mut bytes = 0u64;
        while bytes < 1 << 44 {
            let back = decode_lag(encode_lag(bytes));
            assert!(back <= bytes, "{bytes} -> {back}");
            assert!(bytes - back <= bytes / 2048 + 3, "{bytes} -> {back}");
            assert_eq!(encode_lag(bytes) == 0, bytes < 4);
            assert!(encode_lag(bytes) < 1 << CURSOR_LAG_BITS);
            bytes = bytes * 9 / 8 + 4;
        }
        // Beyond the largest value (about 2^44, four times the window) the lag saturates.
        assert!(decode_lag(encode_lag(u64::MAX)) >= 1 << 43);
    }

    #[test]
    fn cursors_name_offsets_up_to_the_window_behind_the_end() {
        for end in [0u64, 4, 1 << 20, 5 << 40, (1 << 50) + 12] {
            for behind in [0u64, 4, 4096, SCAN_WINDOW_BYTES - 4] {
                let Some(offset) = end.checked_sub(behind) else {
                    continue;
                };
                let cursor = encode_scan_cursor(offset, behind);
                assert!(cursor < 1 << SCAN_CURSOR_BITS);
                assert_eq!(decode_scan_cursor(cursor, end).0, offset);
            }
        }
    }
}
