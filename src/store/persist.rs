//! What durability (`crate::persist`) needs from a shard, kept apart from the operations the
//! server calls: restoring a key exactly as it was logged (its version and absolute deadline,
//! not fresh ones), raising the version counter past what a recovery saw, walking the live
//! records in bounded steps for a snapshot, and deleting the keys a predicate picks (a logged
//! FLUSHALL of one old worker, replayed into a shard that also holds other workers' keys).
//!
//! Everything here is built on the public operations plus one private field, the version
//! counter (`shard/mod.rs`, `pub(in crate::store) version`), so the shard's invariants stay where they are.

use super::{Condition, Expiry, SetOptions, Shard, StoreError, hash_key, record};

/// The largest version a record can carry (56 bits).
pub const MAX_VERSION: u64 = record::MAX_VERSION;

impl Shard {
    /// Writes `key` with `value`, `version` and the absolute deadline `expiry_ms` (0: none),
    /// whatever was there: the replay of a logged post-state. The version counter ends at
    /// least at `version`. A deadline at or before `now_ms` deletes the key, as a write with
    /// it would have; recovery passes `now_ms = 0` so that nothing counts as expired until the
    /// whole log is in (a later record may still move the deadline).
    ///
    /// # Panics
    ///
    /// If `version` is 0 or above [`MAX_VERSION`] (the record codec refuses both).
    pub fn restore(
        &mut self,
        hash: u64,
        key: &[u8],
        value: &[u8],
        version: u64,
        expiry_ms: u64,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        assert!((1..=MAX_VERSION).contains(&version), "version out of range");
        let counter = self.version;
        // `set` gives the write the counter's next value: make that `version`.
        self.version = version - 1;
        let options = SetOptions {
            condition: Condition::Always,
            expiry: if expiry_ms == 0 {
                Expiry::Clear
            } else {
                Expiry::At(expiry_ms)
            },
            return_old: false,
        };
        let result = self.set(hash, key, value, options, now_ms);
        self.version = counter.max(version);
        result.map(|_| ())
    }

    /// Gives an existing `key` the deadline `expiry_ms` (0: none) and the version `version`,
    /// value unchanged: the replay of a logged EXPIRE or PERSIST. Returns false (and changes
    /// nothing) if the key is absent.
    pub fn restore_expiry(
        &mut self,
        hash: u64,
        key: &[u8],
        version: u64,
        expiry_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let Some(value) = self.get(hash, key, now_ms) else {
            return Ok(false);
        };
        let value = value.bytes.to_vec();
        self.restore(hash, key, &value, version, expiry_ms, now_ms)?;
        Ok(true)
    }

    /// Raises the version counter to at least `version`, so the next write gets a larger one
    /// (after a recovery: larger than any version the logs mention, so compare-and-set never
    /// mistakes a new version for an old one).
    pub fn raise_version(&mut self, version: u64) {
        assert!(version <= MAX_VERSION, "version out of range");
        self.version = self.version.max(version);
    }

    /// One bounded step of a walk over the live records (for a snapshot): visits up to `count`
    /// live records from `cursor` (0 starts), calls `emit(key, value, version, expiry_ms)` for
    /// each, and returns the cursor of the next step, 0 when the walk is complete. It is
    /// [`Shard::scan`] underneath, so it has scan's guarantee: every key present from the
    /// walk's start to its end is emitted at least once, whatever the writes in between (a key
    /// may be emitted twice, with the value it had each time). Expired keys are removed on
    /// the way and not emitted.
    pub fn walk_live(
        &mut self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        scratch: &mut Vec<u8>,
        mut emit: impl FnMut(&[u8], &[u8], u64, u64),
    ) -> u64 {
        scratch.clear();
        let next = self.scan(cursor, count, None, now_ms, |key| {
            scratch.extend_from_slice(&(key.len() as u32).to_le_bytes());
            scratch.extend_from_slice(key);
        });
        let mut at = 0;
        while at < scratch.len() {
            let len = u32::from_le_bytes(scratch[at..at + 4].try_into().expect("4 bytes")) as usize;
            let key = &scratch[at + 4..at + 4 + len];
            at += 4 + len;
            if let Some(value) = self.get(hash_key(key), key, now_ms) {
                emit(key, value.bytes, value.version, value.expiry_ms);
            }
        }
        next
    }

    /// Deletes every key for which `keep` answers false; returns how many were deleted. Walks
    /// the whole shard (for a replayed FLUSHALL of one old worker; rare).
    pub fn retain_keys(&mut self, now_ms: u64, mut keep: impl FnMut(&[u8]) -> bool) -> usize {
        let mut doomed = Vec::new();
        let mut deleted = 0;
        let mut cursor = 0;
        loop {
            doomed.clear();
            cursor = self.scan(cursor, 1024, None, now_ms, |key| {
                if !keep(key) {
                    doomed.push(key.to_vec());
                }
            });
            for key in &doomed {
                deleted += usize::from(self.delete(hash_key(key), key, now_ms));
            }
            if cursor == 0 {
                return deleted;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn set(shard: &mut Shard, key: &[u8], value: &[u8]) -> u64 {
        shard
            .set(hash_key(key), key, value, SetOptions::default(), 10)
            .unwrap()
            .version
    }

    #[test]
    fn restore_keeps_the_logged_version_and_deadline() {
        let mut shard = Shard::new(Config::default());
        set(&mut shard, b"a", b"1");
        shard
            .restore(hash_key(b"k"), b"k", b"v", 500, 9_000, 0)
            .unwrap();
        let value = shard.get(hash_key(b"k"), b"k", 10).unwrap();
        assert_eq!(
            (value.bytes, value.version, value.expiry_ms),
            (&b"v"[..], 500, 9_000)
        );
        assert_eq!(shard.last_version(), 500);
        // An older version restored later does not lower the counter.
        shard.restore(hash_key(b"j"), b"j", b"w", 7, 0, 0).unwrap();
        assert_eq!(shard.get(hash_key(b"j"), b"j", 10).unwrap().version, 7);
        assert_eq!(shard.last_version(), 500);
        assert_eq!(set(&mut shard, b"k", b"x"), 501);
        // A deadline already past deletes.
        shard
            .restore(hash_key(b"k"), b"k", b"v", 600, 5, 10)
            .unwrap();
        assert!(shard.get(hash_key(b"k"), b"k", 10).is_none());
        assert!(
            shard
                .restore_expiry(hash_key(b"j"), b"j", 700, 50_000, 0)
                .unwrap()
        );
        let value = shard.get(hash_key(b"j"), b"j", 10).unwrap();
        assert_eq!(
            (value.bytes, value.version, value.expiry_ms),
            (&b"w"[..], 700, 50_000)
        );
        assert!(
            !shard
                .restore_expiry(hash_key(b"zz"), b"zz", 701, 1, 0)
                .unwrap()
        );
        shard.raise_version(10_000);
        assert_eq!(set(&mut shard, b"a", b"2"), 10_001);
        shard.check_invariants();
    }

    #[test]
    fn walk_visits_every_live_key_and_retain_deletes_the_rest() {
        let mut shard = Shard::new(Config::default());
        for i in 0..5000u32 {
            set(&mut shard, format!("key{i}").as_bytes(), &i.to_le_bytes());
        }
        let mut seen = std::collections::HashMap::new();
        let (mut cursor, mut scratch, mut steps) = (0, Vec::new(), 0);
        loop {
            cursor = shard.walk_live(cursor, 100, 10, &mut scratch, |key, value, version, _| {
                seen.insert(key.to_vec(), (value.to_vec(), version));
            });
            steps += 1;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 5000);
        assert!(steps >= 50);
        let deleted = shard.retain_keys(10, |key| key.ends_with(b"7"));
        assert_eq!(deleted, 4500);
        assert_eq!(shard.len(), 500);
        shard.check_invariants();
    }
}
