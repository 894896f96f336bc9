//! What a [`Shard`] reports about itself: running counters, memory use, its `Debug` form, and
//! the invariant check the tests run after every step.

use super::Shard;
use crate::store::arena::{Arena, Handle};
use crate::store::{MemoryStats, WorkCounters, hash_key, record};

fn hash_of(arena: &Arena, handle: Handle) -> u64 {
    let tail = arena.tail(handle);
    let header = record::decode(tail);
    hash_key(record::key(tail, &header))
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("keys", &self.table.len())
            .field("version", &self.version)
            .field("memory", &self.memory())
            .finish()
    }
}

impl Shard {
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
