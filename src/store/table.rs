//! [`Table`]: the shard's index of handles, a `hashbrown::HashTable` that never rehashes all
//! its entries at once.
//!
//! hashbrown grows a full table (or rehashes it in place when deletions have used up its room)
//! in one call that re-inserts every entry: at ten million keys that is hundreds of
//! milliseconds during which the worker answers nobody. This type never lets hashbrown do that.
//! When the current table has no room left for an insert, it becomes the *old* table and a new,
//! empty one takes its place, sized for growth (twice the entries) or, when deletions rather
//! than entries filled it, at the same size (which drops the tombstones). Inserts go to the new
//! table; lookups, updates and removals look in both; and every write operation of the shard
//! (and its idle work) moves a bounded number of entries across ([`Table::migrate_step`]).
//! When the old table is empty it is dropped.
//!
//! The entries are moved by walking the *log*, not the old table: hashbrown 0.17 offers no way
//! to resume an iteration over a table, and restarting one from the first bucket each step
//! would rescan the emptied part again and again. The log has a resumable cursor (a virtual
//! offset, as in scan) and the same property scan relies on: records only move forward, so a
//! walk from the start of the log meets every record the old table still points at. For each
//! live record met, the walk hashes the key, and if the old table holds the record's handle it
//! moves that handle to the new table.

use hashbrown::HashTable;

use super::arena::{Arena, Handle};
use super::{hash_key, record};

/// Records the migration walk looks at per write operation: at 64 a step cost tens of
/// microseconds on the (busy) test machine, so 16 (DESIGN.md, store, "Incremental resizing").
/// Anything from 2 up lets a migration finish before the new table (twice the room) fills.
pub(crate) const MIGRATE_STEP_RECORDS: usize = 16;

pub(crate) struct Table {
    current: HashTable<Handle>,
    /// While a migration runs, the table being emptied; otherwise empty (no allocation).
    old: HashTable<Handle>,
    migrating: bool,
    /// Where the migration walk resumes: a virtual log offset.
    walk: u64,
    /// `current.capacity()` when `current` was made (hashbrown's `capacity()` shrinks as
    /// removals leave tombstones).
    full_capacity: usize,
    migrations: u64,
}

fn hash_of(arena: &Arena, handle: Handle) -> u64 {
    let tail = arena.tail(handle);
    let header = record::decode(tail);
    hash_key(record::key(tail, &header))
}

impl Table {
    pub(crate) fn with_capacity(keys: usize) -> Table {
        let current = HashTable::with_capacity(keys);
        Table {
            full_capacity: current.capacity(),
            current,
            old: HashTable::new(),
            migrating: false,
            walk: 0,
            migrations: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.current.len() + self.old.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn is_migrating(&self) -> bool {
        self.migrating
    }

    /// Migrations started since the table was made.
    pub(crate) fn migrations(&self) -> u64 {
        self.migrations
    }

    /// Entries both tables can hold without growing (for statistics).
    pub(crate) fn capacity(&self) -> usize {
        self.current.capacity() + self.old.capacity()
    }

    /// Bytes allocated by both tables.
    pub(crate) fn allocation_size(&self) -> usize {
        self.current.allocation_size() + self.old.allocation_size()
    }

    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&Handle) -> bool) -> Option<Handle> {
        let mut eq = eq;
        if let Some(&handle) = self.current.find(hash, &mut eq) {
            return Some(handle);
        }
        if self.migrating {
            return self.old.find(hash, eq).copied();
        }
        None
    }

    /// The entry holding `handle` (whose key hashes to `hash`), to point it elsewhere.
    pub(crate) fn slot_of(&mut self, hash: u64, handle: Handle) -> Option<&mut Handle> {
        if let Some(slot) = self.current.find_mut(hash, |&h| h == handle) {
            return Some(slot);
        }
        self.old.find_mut(hash, |&h| h == handle)
    }

    /// Remove the entry holding `handle`; false if there is none.
    pub(crate) fn remove(&mut self, hash: u64, handle: Handle) -> bool {
        if let Ok(entry) = self.current.find_entry(hash, |&h| h == handle) {
            entry.remove();
            return true;
        }
        match self.old.find_entry(hash, |&h| h == handle) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Make sure one more entry fits in the current table without hashbrown growing it:
    /// starts a migration if the current table is out of room. `Err` if memory is refused.
    #[inline]
    pub(crate) fn reserve_one(&mut self, arena: &Arena) -> Result<(), ()> {
        if self.current.len() < self.current.capacity() {
            return Ok(());
        }
        self.make_room(arena)
    }

    /// The body of [`Table::reserve_one`] when the current table is full, out of line.
    #[inline(never)]
    fn make_room(&mut self, arena: &Arena) -> Result<(), ()> {
        if self.migrating {
            // Unreachable in practice: the new table is sized for the old entries plus the
            // inserts made while MIGRATE_STEP_RECORDS-sized steps empty the old one. Should it
            // fill, finish the migration first, then start another.
            self.finish_migration(arena);
            if self.current.len() < self.current.capacity() {
                return Ok(());
            }
        }
        let len = self.current.len();
        let capacity = if len < self.full_capacity / 2 {
            // Mostly tombstones: a table of the same size, without them.
            self.full_capacity
        } else {
            (len + 1)
                .max(self.full_capacity + 1)
                .max(len.saturating_mul(2))
        };
        let mut fresh = HashTable::new();
        fresh
            .try_reserve(capacity, |&h| hash_of(arena, h))
            .map_err(|_| ())?;
        self.full_capacity = fresh.capacity();
        self.old = std::mem::replace(&mut self.current, fresh);
        self.migrating = true;
        self.migrations += 1;
        self.walk = arena.first_segment().map_or(0, |(base, _)| base);
        Ok(())
    }

    /// Insert a handle for a key known to be absent. [`Table::reserve_one`] must have made room.
    pub(crate) fn insert(&mut self, arena: &Arena, hash: u64, handle: Handle) {
        debug_assert!(self.current.len() < self.current.capacity());
        self.current
            .insert_unique(hash, handle, |&h| hash_of(arena, h));
    }

    /// Move entries from the old table to the current one, walking at most `max_records`
    /// records of the log. Returns how many records were walked.
    #[inline]
    pub(crate) fn migrate_step(&mut self, arena: &Arena, max_records: usize) -> usize {
        if !self.migrating {
            return 0;
        }
        self.migrate_some(arena, max_records)
    }

    /// The body of [`Table::migrate_step`], out of line: every write calls `migrate_step`, and
    /// outside a migration it should cost that one test of `migrating`.
    #[inline(never)]
    fn migrate_some(&mut self, arena: &Arena, max_records: usize) -> usize {
        let mut walked = 0;
        while walked < max_records && !self.old.is_empty() {
            let Some((base, slot)) = arena.segment_for(self.walk) else {
                break;
            };
            self.walk = self.walk.max(base);
            walked += 1;
            let segment = arena.segment(slot);
            if segment.live_records == 0 {
                self.walk = base + segment.used() as u64;
                continue;
            }
            let position = (self.walk - base) as usize;
            let handle = arena.handle_at(slot, position);
            let tail = arena.tail(handle);
            let header = record::decode(tail);
            if !header.is_dead() {
                let hash = hash_key(record::key(tail, &header));
                if let Ok(entry) = self.old.find_entry(hash, |&h| h == handle) {
                    entry.remove();
                    self.current
                        .insert_unique(hash, handle, |&h| hash_of(arena, h));
                }
            }
            self.walk += header.record_bytes() as u64;
        }
        if self.old.is_empty() {
            self.old = HashTable::new();
            self.migrating = false;
        } else if walked < max_records {
            // The walk reached the end of the log with entries left: cannot happen (every entry
            // names a live record at or after the walk); recover rather than lose them.
            debug_assert!(false, "migration walk ended with entries left");
            self.finish_migration(arena);
        }
        walked
    }

    /// Move every remaining entry at once (a fallback, never the normal path).
    fn finish_migration(&mut self, arena: &Arena) {
        let old = std::mem::take(&mut self.old);
        self.current.reserve(old.len(), |&h| hash_of(arena, h));
        for handle in old {
            self.current
                .insert_unique(hash_of(arena, handle), handle, |&h| hash_of(arena, h));
        }
        self.full_capacity = self.full_capacity.max(self.current.capacity());
        self.migrating = false;
    }

    /// Every handle, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Handle> {
        self.current.iter().chain(self.old.iter())
    }

    /// Drop every entry (FLUSHALL): an empty table.
    pub(crate) fn clear(&mut self) {
        *self = Table {
            migrations: self.migrations,
            ..Table::with_capacity(0)
        };
    }

    /// Check the two tables (for `Shard::check_invariants`): the old table is empty unless a
    /// migration runs, the current one has room, and no entry is in both. `hash` gives a
    /// handle's key hash.
    pub(crate) fn check(&self, hash: impl Fn(Handle) -> u64) {
        assert!(
            self.migrating || self.old.is_empty(),
            "no old table at rest"
        );
        assert!(self.current.len() <= self.current.capacity());
        for &handle in self.current.iter() {
            let h = hash(handle);
            assert!(self.current.find(h, |&x| x == handle).is_some());
            assert!(
                self.old.find(h, |&x| x == handle).is_none(),
                "an entry is in one table only"
            );
        }
        for &handle in self.old.iter() {
            assert!(self.old.find(hash(handle), |&x| x == handle).is_some());
        }
    }
}
