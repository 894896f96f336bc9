//! The operations of a [`Shard`] that commands call: reads (GET, EXISTS, STRLEN, PTTL), writes
//! (SET and its conditions, DEL, GETDEL, INCRBY, APPEND, PEXPIREAT, PERSIST) and FLUSHALL, with
//! the two ways a write lands: over the old value in place, or as a new record at the head of
//! the log (the old one becomes garbage for the cleaner).

use super::Shard;
use crate::decimal;
use crate::store::arena::{Handle, Part};
use crate::store::record::{self, Header};
use crate::store::table::MIGRATE_STEP_ENTRIES;
use crate::store::{
    Appended, Condition, Counter, Expiry, SetOptions, SetOutcome, StoreError, Value,
};

impl Shard {
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
                    decimal::parse_i64(bytes).ok_or(StoreError::NotAnInteger)?,
                    header.expiry_ms,
                )
            }
        };
        let value = current.checked_add(delta).ok_or(StoreError::Overflow)?;
        let mut buffer = [0u8; 20];
        let digits = decimal::format_i64(value, &mut buffer);
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
}
