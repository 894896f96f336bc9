//! Walking the log in order: [`Shard::scan`] (SCAN) and [`Shard::expire_step`] (active
//! expiry) share one step, `visit`, which looks at one record and removes it if it has expired.
//! The cursor's encoding is `cursor.rs`.

use super::Shard;
use super::cursor::{RECORD_UNIT, decode_scan_cursor, encode_scan_cursor};
use crate::store::{glob_match, hash_key, record};

/// Most records one scan call visits while *chasing* (catching up with what was appended since
/// the previous call) before its ordinary COUNT budget starts: 2^18 records. A scan finishes in a bounded number of calls as long as fewer records than
/// this are appended between two of its calls (see docs/store.md, "Scan").
const SCAN_CHASE_MAX_VISITS: usize = 1 << 18;

/// A scan call stops after `count` live records or `DEAD_VISITS_PER_COUNT * count` dead ones
/// (like Redis's empty-bucket limit), so a call on a log full of garbage stays short.
const DEAD_VISITS_PER_COUNT: usize = 10;

/// What a log walker decided about one record.
enum Visit {
    Live,
    Dead,
    Expired,
}

impl Shard {
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
    /// from the lag the cursor carries, at most `SCAN_CHASE_MAX_VISITS` records), then its
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
}
