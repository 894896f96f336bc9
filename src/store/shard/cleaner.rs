//! The cleaner: RAMCloud's log cleaning in bounded steps. It picks a victim segment by
//! cost-benefit, moves the segment's live records to the head of the log, and frees it. Idle
//! work for a table migration rides on the same step.

use super::Shard;
use crate::store::CleanReport;
use crate::store::arena::{Handle, Part};
use crate::store::hash_key;
use crate::store::record::{self, Header};
use crate::store::table::MIGRATE_STEP_ENTRIES;

/// A segment is worth cleaning only below this utilisation (live bytes / capacity), in percent.
const MAX_VICTIM_UTILIZATION_PERCENT: usize = 90;

/// Debug builds check, when a segment is freed, that no handle points into it, by walking the
/// whole table; above this many keys the walk is skipped to keep big debug tests fast.
const DEBUG_FREE_CHECK_MAX_KEYS: usize = 50_000;

impl Shard {
    pub(super) fn garbage_bytes(&self) -> usize {
        self.used_bytes - self.live_bytes
    }

    /// Whether [`Shard::clean_step`] has work: a segment is being cleaned, a large segment is
    /// empty, or garbage exceeds
    /// both `cleaner_garbage_percent` of the segment memory and `cleaner_min_garbage_bytes`.
    pub fn needs_cleaning(&self) -> bool {
        self.table.is_migrating() || self.needs_garbage_cleaning()
    }

    pub(super) fn needs_garbage_cleaning(&self) -> bool {
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
}
