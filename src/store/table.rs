//! [`Table`]: the shard's index of handles, split into [`PARTITIONS`] independent
//! `hashbrown::HashTable`s, none of which ever rehashes all its entries at once.
//!
//! hashbrown grows a full table (or rehashes it in place when deletions have used up its room)
//! in one call that re-inserts every entry: at ten million keys a long stop during which the
//! worker answers nobody (`cargo bench --bench store -- growth` times every insert; see
//! docs/PERFORMANCE.md). This type never lets hashbrown do that.
//! When a partition's current table has no room left for an insert, it becomes the partition's
//! *old* table and a new, empty one takes its place, sized for growth (twice the entries) or,
//! when deletions rather than entries filled it, at the same size (which drops the tombstones).
//! Inserts go to the new table; lookups, updates and removals look in both; and every write
//! to the partition (and the shard's idle work) moves a bounded number of entries across
//! ([`Table::migrate_step`]). When the old table is empty it is dropped.
//!
//! Partitions: a key's partition is taken from hash bits no hashbrown table uses (see
//! [`partition_of`]). Each partition grows on its own, so what a migration still does in one
//! call (allocating the new table and filling its control bytes, freeing the old table) is
//! 1/[`PARTITIONS`] of what one table for the whole shard would do.
//!
//! Entries are moved by a cursor over the old table's bucket indexes
//! (`HashTable::get_bucket_entry`): the old table gets no insert while it is old, and a removal
//! moves no other entry, so every entry left is at or after the cursor.

use hashbrown::HashTable;

use super::arena::{Arena, Handle, PAGE_BYTES};
use super::{hash_key, record};

/// log2 of [`PARTITIONS`].
const PARTITION_BITS: u32 = 8;

/// Independent tables of a shard's index (a power of two). Chosen by measuring the growth
/// benchmark and the operations (`cargo bench --bench store -- growth` and `-- ops`; the
/// figures and the choice: docs/store.md, "Incremental resizing and partitions").
pub(crate) const PARTITIONS: usize = 1 << PARTITION_BITS;

/// Where a key's partition index starts in its hash. hashbrown takes a bucket index from the
/// low bits (`hash & (buckets - 1)`, so bits 49.. only in a table of 2^49 buckets, which never
/// exists) and its 7-bit tag from the top 7 bits (57..64). The bits just below the tag are used
/// by neither, so the keys of one partition still spread over all its buckets and tags.
const PARTITION_SHIFT: u32 = 57 - PARTITION_BITS;

/// Entries of an old table moved per write to its partition. A step also looks at no more
/// than [`STEP_BUCKETS_PER_ENTRY`] times as many buckets, so a run of empty buckets costs a
/// write a bounded number of one-byte checks. Any step of one or more lets a migration end
/// before the new table (twice the room) fills.
pub(crate) const MIGRATE_STEP_ENTRIES: usize = 16;

/// Buckets a step may look at per entry it may move.
const STEP_BUCKETS_PER_ENTRY: usize = 4;

/// Inserts after which [`Table::prepare_step`] looks again for partitions close to full.
const PREPARE_SCAN_INSERTS: usize = if cfg!(test) { 256 } else { 4096 };

/// A partition gets its next table prepared ahead of need when that table would have at least
/// this many buckets (16 KiB of handles): smaller ones come from the allocator's heap with
/// few or no page faults. (Tests use small tables, so that a few thousand keys exercise it.)
const PREPARE_MIN_BUCKETS: usize = if cfg!(test) { 64 } else { 4096 };

/// Handles in a page: a prepared table gets one placeholder entry every this many buckets,
/// which maps every page of its handle array.
const HANDLES_PER_PAGE: usize = PAGE_BYTES / size_of::<Handle>();

/// The table a partition moves to when its current table is full: twice the entries, or the
/// same size when fewer than half the table's original capacity are live (deletions filled
/// it; the new table drops the tombstones).
fn next_capacity(len: usize, full_capacity: usize) -> usize {
    if len < full_capacity / 2 {
        full_capacity
    } else {
        (len + 1).max(full_capacity + 1).max(len.saturating_mul(2))
    }
}

/// The partition of a key whose hash is `hash`.
#[inline(always)]
fn partition_of(hash: u64) -> usize {
    (hash >> PARTITION_SHIFT) as usize & (PARTITIONS - 1)
}

/// A partition's two tables, side by side: a lookup that misses in `current` finds whether
/// `old` holds anything in the same cache line (two `HashTable`s are 64 bytes).
#[repr(align(64))]
struct Tables {
    current: HashTable<Handle>,
    /// While the partition migrates, the table being emptied; otherwise empty (no
    /// allocation). The partition migrates exactly when this is not empty.
    old: HashTable<Handle>,
}

/// What a partition's migration needs and lookups do not.
#[derive(Clone, Copy, Default)]
struct Progress {
    /// The next bucket index of `old` a step looks at.
    cursor: usize,
    /// `current.capacity()` when `current` was made (hashbrown's `capacity()` shrinks as
    /// removals leave tombstones).
    full_capacity: usize,
    /// The same for `old`, while the partition migrates.
    old_full_capacity: usize,
}

/// The partitions, in one allocation: their tables (what lookups read) first.
struct Partitions {
    tables: [Tables; PARTITIONS],
    progress: [Progress; PARTITIONS],
    /// Each partition's next table, prepared ahead of need by [`Table::prepare_step`] (empty,
    /// its pages mapped), or an unallocated table.
    spares: [HashTable<Handle>; PARTITIONS],
}

pub(crate) struct Table {
    /// Boxed, so that the shard stays small to move (the partitions are 22 KiB at 256).
    parts: Box<Partitions>,
    /// Partitions whose `old` table is not empty.
    migrating: usize,
    /// Entries in old tables (still to move).
    to_move: usize,
    /// The sum of every table's `full_capacity`.
    capacity: usize,
    /// Where idle work looks for a migrating partition next.
    idle_next: usize,
    /// Migrations started since the table was made (all partitions).
    migrations: u64,
    /// Inserts since [`Table::prepare_step`] last found no partition to prepare.
    inserts_since_scan: usize,
    /// The partition whose spare table is being prepared, and how many of its pages were
    /// touched so far.
    preparing: Option<(usize, usize)>,
    /// Migrations that started with a table prepared ahead of need.
    prepared_used: u64,
}

fn hash_of(arena: &Arena, handle: Handle) -> u64 {
    let tail = arena.tail(handle);
    let header = record::decode(tail);
    hash_key(record::key(tail, &header))
}

impl Table {
    /// A table with room for about `keys` entries before any partition grows.
    pub(crate) fn with_capacity(keys: usize) -> Table {
        // An even share and some more: the partitions get unequal shares of the keys.
        let share = if keys == 0 {
            0
        } else {
            (keys + keys / 8) / PARTITIONS + 8
        };
        let tables = std::array::from_fn(|_| Tables {
            current: HashTable::with_capacity(share),
            old: HashTable::new(),
        });
        let progress: [Progress; PARTITIONS] = std::array::from_fn(|i| Progress {
            cursor: 0,
            full_capacity: tables[i].current.capacity(),
            old_full_capacity: 0,
        });
        Table {
            capacity: progress.iter().map(|p| p.full_capacity).sum(),
            parts: Box::new(Partitions {
                tables,
                progress,
                spares: std::array::from_fn(|_| HashTable::new()),
            }),
            migrating: 0,
            to_move: 0,
            idle_next: 0,
            migrations: 0,
            inserts_since_scan: 0,
            preparing: None,
            prepared_used: 0,
        }
    }

    /// Entries in every partition (walks the partitions: for statistics, not per request).
    pub(crate) fn len(&self) -> usize {
        self.parts
            .tables
            .iter()
            .map(|t| t.current.len() + t.old.len())
            .sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.parts
            .tables
            .iter()
            .all(|t| t.current.is_empty() && t.old.is_empty())
    }

    /// True while any partition migrates.
    pub(crate) fn is_migrating(&self) -> bool {
        self.migrating > 0
    }

    /// Migrations started since the table was made (all partitions).
    pub(crate) fn migrations(&self) -> u64 {
        self.migrations
    }

    /// Partition tables replaced by a table prepared ahead of need.
    pub(crate) fn prepared_used(&self) -> u64 {
        self.prepared_used
    }

    /// Entries the tables were made to hold, old tables included (for statistics; a change
    /// means a partition grew or was remade).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries still to move from old tables to new ones.
    pub(crate) fn entries_to_move(&self) -> usize {
        self.to_move
    }

    /// Bytes allocated by every partition's tables, and by the partitions themselves.
    pub(crate) fn allocation_size(&self) -> usize {
        std::mem::size_of::<Partitions>()
            + self
                .parts
                .tables
                .iter()
                .map(|t| t.current.allocation_size() + t.old.allocation_size())
                .sum::<usize>()
            + self
                .parts
                .spares
                .iter()
                .map(HashTable::allocation_size)
                .sum::<usize>()
    }

    /// Whether [`Table::prepare_step`] has nothing to do for now. Two comparisons.
    pub(crate) fn is_prepared(&self) -> bool {
        self.preparing.is_none() && self.inserts_since_scan < PREPARE_SCAN_INSERTS
    }

    /// One bounded step of preparing partitions' next tables ahead of need, for an idle
    /// worker: a partition whose current table is within 1/8 of full and whose next table
    /// would have at least [`PREPARE_MIN_BUCKETS`] buckets gets that table allocated now
    /// (hashbrown fills its control bytes), and then, over later steps, one placeholder entry
    /// per page of its handle array (mapping the pages), `max_pages` pages per step; then the
    /// placeholders are cleared. The migration that later needs the table takes it, so neither
    /// the allocation nor the page faults of a new table fall inside a write. Returns the
    /// pages touched (an allocation counts its control bytes' pages).
    pub(crate) fn prepare_step(&mut self, max_pages: usize) -> usize {
        if let Some((index, done)) = self.preparing {
            let spare = &mut self.parts.spares[index];
            let buckets = spare.num_buckets();
            let pages = buckets.div_ceil(HANDLES_PER_PAGE);
            let end = pages.min(done + max_pages.max(1));
            for page in done..end {
                // The last bucket for the last page, so that a handle array not starting on
                // a page boundary has its top page touched too.
                let bucket = if page + 1 == pages {
                    buckets - 1
                } else {
                    page * HANDLES_PER_PAGE
                };
                spare.insert_unique(bucket as u64, Handle::PLACEHOLDER, |_| 0);
            }
            if end == pages {
                // The control bytes back to EMPTY; the allocation (and its mapped pages) stays.
                spare.clear();
                self.preparing = None;
            } else {
                self.preparing = Some((index, end));
            }
            return end - done;
        }
        if self.inserts_since_scan < PREPARE_SCAN_INSERTS {
            return 0;
        }
        for index in 0..PARTITIONS {
            if self.parts.spares[index].allocation_size() != 0 {
                continue;
            }
            let current = &self.parts.tables[index].current;
            let full_capacity = self.parts.progress[index].full_capacity;
            let room = current.capacity() - current.len();
            if room > full_capacity / 8 {
                continue;
            }
            // What the migration will ask for when the table is full: its length will then be
            // `capacity()` (entries plus the room left, which inserts use up), unless
            // deletions come first. (Sizing from today's length instead missed every
            // migration to 4,096 buckets: twice 7/8 of 1,792 is under 3,584.)
            let capacity = next_capacity(current.capacity(), full_capacity);
            // hashbrown keeps 7/8 of the buckets usable: a capacity this large has at least
            // PREPARE_MIN_BUCKETS buckets.
            if capacity < PREPARE_MIN_BUCKETS / 8 * 7 {
                continue;
            }
            let mut spare = HashTable::new();
            if spare.try_reserve(capacity, |_| 0).is_err() {
                continue; // memory refused: the migration will try (and report) it
            }
            // One control byte per bucket.
            let control_pages = spare.num_buckets().div_ceil(PAGE_BYTES);
            self.parts.spares[index] = spare;
            self.preparing = Some((index, 0));
            return control_pages.max(1);
        }
        self.inserts_since_scan = 0;
        0
    }

    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&Handle) -> bool) -> Option<Handle> {
        let mut eq = eq;
        let tables = &self.parts.tables[partition_of(hash)];
        if let Some(&handle) = tables.current.find(hash, &mut eq) {
            return Some(handle);
        }
        if !tables.old.is_empty() {
            return tables.old.find(hash, eq).copied();
        }
        None
    }

    /// The entry holding `handle` (whose key hashes to `hash`), to point it elsewhere.
    pub(crate) fn slot_of(&mut self, hash: u64, handle: Handle) -> Option<&mut Handle> {
        let tables = &mut self.parts.tables[partition_of(hash)];
        if let Some(slot) = tables.current.find_mut(hash, |&h| h == handle) {
            return Some(slot);
        }
        tables.old.find_mut(hash, |&h| h == handle)
    }

    /// Remove the entry holding `handle`; false if there is none.
    pub(crate) fn remove(&mut self, hash: u64, handle: Handle) -> bool {
        let index = partition_of(hash);
        if let Ok(entry) = self.parts.tables[index]
            .current
            .find_entry(hash, |&h| h == handle)
        {
            entry.remove();
            return true;
        }
        self.remove_old(index, hash, handle)
    }

    /// The body of [`Table::remove`] for an entry not in the current table, out of line.
    #[inline(never)]
    fn remove_old(&mut self, index: usize, hash: u64, handle: Handle) -> bool {
        let old = &mut self.parts.tables[index].old;
        match old.find_entry(hash, |&h| h == handle) {
            Ok(entry) => {
                entry.remove();
                self.to_move -= 1;
                if old.is_empty() {
                    self.end_migration(index);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Make sure one more entry for a key hashing to `hash` fits in its partition's current
    /// table without hashbrown growing it: starts a migration of that partition if it is out of
    /// room. `Err` if memory is refused.
    #[inline]
    pub(crate) fn reserve_one(&mut self, arena: &Arena, hash: u64) -> Result<(), ()> {
        let index = partition_of(hash);
        let current = &self.parts.tables[index].current;
        if current.len() < current.capacity() {
            return Ok(());
        }
        self.make_room(arena, index)
    }

    /// The body of [`Table::reserve_one`] when the partition's table is full, out of line.
    #[inline(never)]
    fn make_room(&mut self, arena: &Arena, index: usize) -> Result<(), ()> {
        if !self.parts.tables[index].old.is_empty() {
            // Unreachable in practice: the new table is sized for the old entries plus the
            // inserts made while the steps empty the old one. Should it fill, finish the
            // migration first, then start another.
            self.finish_migration(arena, index);
            let current = &self.parts.tables[index].current;
            if current.len() < current.capacity() {
                return Ok(());
            }
        }
        let full_capacity = self.parts.progress[index].full_capacity;
        let tables = &mut self.parts.tables[index];
        let len = tables.current.len();
        let capacity = next_capacity(len, full_capacity);
        let mut fresh = std::mem::take(&mut self.parts.spares[index]);
        if self
            .preparing
            .is_some_and(|(preparing, _)| preparing == index)
        {
            // Needed before its preparation ended: drop the placeholders.
            fresh.clear();
            self.preparing = None;
        }
        if fresh.capacity() < capacity {
            // No spare, or one too small (the partition's live count changed since): the
            // allocation (and later its page faults) happens here, inside the write.
            fresh = HashTable::new();
            fresh
                .try_reserve(capacity, |&h| hash_of(arena, h))
                .map_err(|_| ())?;
        } else {
            self.prepared_used += 1;
        }
        let fresh_capacity = fresh.capacity();
        let full = std::mem::replace(&mut tables.current, fresh);
        let old_full_capacity = if full.is_empty() {
            // Nothing to move (a partition's first table, or one emptied by deletions): the
            // full table is simply dropped.
            self.capacity -= full_capacity;
            0
        } else {
            self.to_move += full.len();
            tables.old = full;
            self.migrating += 1;
            self.migrations += 1;
            full_capacity
        };
        self.capacity += fresh_capacity;
        self.parts.progress[index] = Progress {
            cursor: 0,
            full_capacity: fresh_capacity,
            old_full_capacity,
        };
        Ok(())
    }

    /// Insert a handle for a key known to be absent. [`Table::reserve_one`] must have made room.
    pub(crate) fn insert(&mut self, arena: &Arena, hash: u64, handle: Handle) {
        let current = &mut self.parts.tables[partition_of(hash)].current;
        debug_assert!(current.len() < current.capacity());
        current.insert_unique(hash, handle, |&h| hash_of(arena, h));
        self.inserts_since_scan += 1;
    }

    /// A write's share of migration work: a step on the partition of `hash`, if it migrates.
    /// Returns the buckets looked at.
    #[inline]
    pub(crate) fn migrate_step(&mut self, arena: &Arena, hash: u64, max_entries: usize) -> usize {
        let index = partition_of(hash);
        if self.parts.tables[index].old.is_empty() {
            return 0;
        }
        self.step(
            arena,
            index,
            max_entries,
            max_entries.saturating_mul(STEP_BUCKETS_PER_ENTRY),
        )
        .1
    }

    /// Idle migration work: steps on migrating partitions in turn, until `max_entries` entries
    /// were moved or four times as many buckets looked at. Returns the buckets looked at.
    pub(crate) fn migrate_idle(&mut self, arena: &Arena, max_entries: usize) -> usize {
        let max_buckets = max_entries.saturating_mul(STEP_BUCKETS_PER_ENTRY);
        let (mut moved, mut looked) = (0, 0);
        let mut visited = 0;
        while self.migrating > 0 && moved < max_entries && looked < max_buckets {
            let index = self.idle_next;
            if !self.parts.tables[index].old.is_empty() {
                let (m, l) = self.step(arena, index, max_entries - moved, max_buckets - looked);
                moved += m;
                looked += l;
                if l > 0 && !self.parts.tables[index].old.is_empty() {
                    // The budget ran out on this partition: resume here next time.
                    continue;
                }
            }
            self.idle_next = (index + 1) % PARTITIONS;
            visited += 1;
            if visited > PARTITIONS {
                break; // `migrating` miscounted; `check` reports it
            }
        }
        looked
    }

    /// The body of a migration step on partition `index`, which migrates, out of line: move
    /// up to `max_entries` entries of its old table, looking at no more than `max_buckets`
    /// buckets. Returns (entries moved, buckets looked at).
    #[inline(never)]
    fn step(
        &mut self,
        arena: &Arena,
        index: usize,
        max_entries: usize,
        max_buckets: usize,
    ) -> (usize, usize) {
        let tables = &mut self.parts.tables[index];
        let progress = &mut self.parts.progress[index];
        let buckets = tables.old.num_buckets();
        let start = progress.cursor;
        let end = buckets.min(start.saturating_add(max_buckets));
        let mut moved = 0;
        while progress.cursor < end && moved < max_entries && !tables.old.is_empty() {
            if let Ok(entry) = tables.old.get_bucket_entry(progress.cursor) {
                let (handle, _) = entry.remove();
                tables
                    .current
                    .insert_unique(hash_of(arena, handle), handle, |&h| hash_of(arena, h));
                moved += 1;
            }
            progress.cursor += 1;
        }
        let looked = progress.cursor - start;
        self.to_move -= moved;
        if tables.old.is_empty() {
            self.end_migration(index);
        } else if progress.cursor >= buckets {
            // Entries behind the cursor: cannot happen (the old table gets no insert and a
            // removal moves nothing); recover rather than lose them.
            debug_assert!(false, "migration cursor passed entries");
            self.finish_migration(arena, index);
        }
        (moved, looked)
    }

    /// Drop partition `index`'s emptied old table.
    fn end_migration(&mut self, index: usize) {
        debug_assert!(self.parts.tables[index].old.is_empty());
        self.parts.tables[index].old = HashTable::new();
        self.migrating -= 1;
        self.capacity -= std::mem::take(&mut self.parts.progress[index].old_full_capacity);
    }

    /// Move every remaining entry of partition `index` at once (a fallback, never the normal
    /// path).
    fn finish_migration(&mut self, arena: &Arena, index: usize) {
        let tables = &mut self.parts.tables[index];
        let old = std::mem::take(&mut tables.old);
        if old.is_empty() {
            return;
        }
        self.to_move -= old.len();
        tables.current.reserve(old.len(), |&h| hash_of(arena, h));
        for handle in old {
            tables
                .current
                .insert_unique(hash_of(arena, handle), handle, |&h| hash_of(arena, h));
        }
        let progress = &mut self.parts.progress[index];
        let full_capacity = progress.full_capacity.max(tables.current.capacity());
        self.capacity = self.capacity + full_capacity
            - progress.full_capacity
            - std::mem::take(&mut progress.old_full_capacity);
        progress.full_capacity = full_capacity;
        self.migrating -= 1;
    }

    /// Every handle, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Handle> {
        self.parts
            .tables
            .iter()
            .flat_map(|t| t.current.iter().chain(t.old.iter()))
    }

    /// Drop every entry (FLUSHALL): an empty table.
    pub(crate) fn clear(&mut self) {
        *self = Table {
            migrations: self.migrations,
            prepared_used: self.prepared_used,
            ..Table::with_capacity(0)
        };
    }

    /// Check every partition's two tables (for `Shard::check_invariants`): each entry is in
    /// the partition its hash names and in one table only, the current table has room, no entry
    /// of an old table is behind the migration's cursor, and the count of migrating partitions
    /// is right. `hash` gives a handle's key hash.
    pub(crate) fn check(&self, hash: impl Fn(Handle) -> u64) {
        let mut migrating = 0;
        for (index, tables) in self.parts.tables.iter().enumerate() {
            let (current, old) = (&tables.current, &tables.old);
            let progress = self.parts.progress[index];
            assert!(current.capacity() <= progress.full_capacity);
            assert!(old.capacity() <= progress.old_full_capacity);
            for &handle in current.iter() {
                let h = hash(handle);
                assert_eq!(partition_of(h), index, "an entry is in its partition");
                assert!(current.find(h, |&x| x == handle).is_some());
                assert!(
                    old.find(h, |&x| x == handle).is_none(),
                    "an entry is in one table only"
                );
            }
            if old.is_empty() {
                assert_eq!(old.allocation_size(), 0, "no old table at rest");
                continue;
            }
            migrating += 1;
            for &handle in old.iter() {
                let h = hash(handle);
                assert_eq!(partition_of(h), index, "an entry is in its partition");
                assert!(old.find(h, |&x| x == handle).is_some());
            }
            let cursor = progress.cursor;
            assert!(
                cursor < old.num_buckets(),
                "the cursor is inside the old table"
            );
            for bucket in 0..cursor {
                assert!(
                    old.get_bucket(bucket).is_none(),
                    "no entry behind the migration cursor"
                );
            }
        }
        for (index, spare) in self.parts.spares.iter().enumerate() {
            if self
                .preparing
                .is_none_or(|(preparing, _)| preparing != index)
            {
                assert!(spare.is_empty(), "a spare table holds no entry");
            }
        }
        assert_eq!(migrating, self.migrating, "migrating partitions counted");
        let to_move: usize = self.parts.tables.iter().map(|t| t.old.len()).sum();
        assert_eq!(to_move, self.to_move, "entries to move counted");
        let capacity: usize = self
            .parts
            .progress
            .iter()
            .map(|p| p.full_capacity + p.old_full_capacity)
            .sum();
        assert_eq!(capacity, self.capacity, "capacity counted");
    }
}
