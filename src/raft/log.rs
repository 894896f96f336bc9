//! The in-memory log: a snapshot's end, the entries after it, and four marks into them.
//!
//! ```text
//!   snapshot        first                                                        last
//!   index/term      index                                                        index
//!  ------------|------+----------+--------------+-------------+-------------------+
//!    compacted |  applied <= committed          |             |                   |
//!              |      ^          ^              ^ persisted   ^ unstable          |
//!              |   handed out    known          durable       not yet handed out  |
//!              |   for applying  committed      here          for persisting -----+
//! ```
//!
//! - `applied`: the last entry handed out for applying (the caller applies in order).
//! - `committed`: the last entry known committed. May run ahead of `persisted` on a follower
//!   (the leader's majority has it durably even if this node does not yet).
//! - `persisted`: the last entry known durable here *and* still in the log as written. Only
//!   entries up to `min(committed, persisted)` are handed out for applying.
//! - `unstable`: the first entry not yet handed to the caller for writing.
//!
//! The core keeps every entry since the last snapshot in memory, so it never reads back from
//! storage: the caller's log is write-only until a restart hands it back in one piece.

use std::collections::VecDeque;

use super::message::{Entry, Index, Term};

/// Most entries handed out for applying in one `Ready`, so a restart with a long log applies in
/// bounded batches.
pub const MAX_APPLY_BATCH: usize = 4096;

/// The log of one node.
#[derive(Debug, Clone)]
pub struct Log {
    /// Index of the last entry covered by the snapshot (0: none).
    snapshot_index: Index,
    /// Its term.
    snapshot_term: Term,
    /// Entries `snapshot_index + 1 ..= last_index()`, in order.
    entries: VecDeque<Entry>,
    committed: Index,
    applied: Index,
    persisted: Index,
    unstable: Index,
}

impl Log {
    /// A log restored from storage: the snapshot's end, the durable entries after it, and the
    /// durable commit index (clamped to what survived).
    pub fn restore(
        snapshot_index: Index,
        snapshot_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    ) -> Log {
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index,
                snapshot_index + 1 + offset as u64,
                "restored entries must follow the snapshot without gaps"
            );
        }
        let last = snapshot_index + entries.len() as u64;
        let mut log = Log {
            snapshot_index,
            snapshot_term,
            entries: VecDeque::from(entries),
            committed: snapshot_index,
            applied: snapshot_index,
            persisted: last,
            unstable: last + 1,
        };
        log.committed = commit.clamp(snapshot_index, last);
        log.check_terms_grow();
        log
    }

    /// Terms never fall along a log.
    fn check_terms_grow(&self) {
        let mut previous = self.snapshot_term;
        for entry in &self.entries {
            assert!(
                entry.term >= previous,
                "log terms fall at index {}",
                entry.index
            );
            previous = entry.term;
        }
    }

    /// The first index held in memory.
    #[inline]
    pub fn first_index(&self) -> Index {
        self.snapshot_index + 1
    }

    /// The last index (the snapshot's, if no entries follow it).
    #[inline]
    pub fn last_index(&self) -> Index {
        self.snapshot_index + self.entries.len() as u64
    }

    /// The last entry's term.
    #[inline]
    pub fn last_term(&self) -> Term {
        self.entries
            .back()
            .map_or(self.snapshot_term, |entry| entry.term)
    }

    /// The snapshot's last index and term.
    #[inline]
    pub fn snapshot_point(&self) -> (Index, Term) {
        (self.snapshot_index, self.snapshot_term)
    }

    /// The commit index.
    #[inline]
    pub fn committed(&self) -> Index {
        self.committed
    }

    /// The last index handed out for applying.
    #[inline]
    pub fn applied(&self) -> Index {
        self.applied
    }

    /// The last index known durable.
    #[inline]
    pub fn persisted(&self) -> Index {
        self.persisted
    }

    /// The term of the entry at `index`: known for the snapshot's last entry and every entry
    /// after it, `None` before (compacted) or past the end.
    #[inline]
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        if index < self.snapshot_index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.snapshot_index - 1) as usize].term)
    }

    /// Whether the entry at `index` has term `term`.
    #[inline]
    pub fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// The entry at `index`, if it is held in memory.
    #[inline]
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot_index || index > self.last_index() {
            return None;
        }
        Some(&self.entries[(index - self.snapshot_index - 1) as usize])
    }

    /// Whether a candidate whose log ends at `(last_index, last_term)` is at least as up to date
    /// as this log (Raft paper, 5.4.1): a later last term wins; equal terms, the longer log.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        let our_term = self.last_term();
        last_term > our_term || (last_term == our_term && last_index >= self.last_index())
    }

    /// Fast backtracking: the largest index at or below `index` whose term is at most `term`,
    /// and that term (0 if it lies in the compacted part). Either side uses it: the follower to
    /// answer a rejected append, the leader to skip the follower's whole conflicting term.
    pub fn find_conflict_by_term(&self, index: Index, term: Term) -> (Index, Term) {
        let mut index = index.min(self.last_index());
        loop {
            match self.term(index) {
                Some(found) if found > term && index > 0 => index -= 1,
                Some(found) => return (index, found),
                None => return (index, 0),
            }
        }
    }

    /// Handles an append from the leader: if the entry at `prev_index` has `prev_term`, keeps
    /// the entries that agree, truncates at the first that conflicts, appends the rest, and
    /// advances the commit index to `min(commit, last new index)`. Returns the last new index,
    /// or `None` when `prev` does not match.
    ///
    /// Panics if the leader's entries conflict with a committed one: that would break the
    /// leader-completeness property, so the node stops rather than apply a forked history.
    pub fn maybe_append(
        &mut self,
        prev_index: Index,
        prev_term: Term,
        commit: Index,
        mut entries: Vec<Entry>,
    ) -> Option<Index> {
        if !self.matches(prev_index, prev_term) {
            return None;
        }
        let last_new = prev_index + entries.len() as u64;
        let mut keep_from = entries.len();
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index,
                prev_index + 1 + offset as u64,
                "append entries have a gap"
            );
            if entry.index <= self.snapshot_index {
                continue;
            }
            match self.term(entry.index) {
                Some(term) if term == entry.term => {}
                Some(_) => {
                    assert!(
                        entry.index > self.committed,
                        "an append conflicts with committed entry {} (committed {})",
                        entry.index,
                        self.committed
                    );
                    self.truncate_from(entry.index);
                    keep_from = offset;
                    break;
                }
                None => {
                    keep_from = offset;
                    break;
                }
            }
        }
        if keep_from == 0 {
            self.append(entries);
        } else if keep_from < entries.len() {
            let tail = entries.split_off(keep_from);
            self.append(tail);
        }
        self.commit_to(commit.min(last_new));
        Some(last_new)
    }

    /// Drops entries `index..`; they were never committed.
    fn truncate_from(&mut self, index: Index) {
        debug_assert!(index > self.snapshot_index && index <= self.last_index());
        assert!(index > self.committed, "truncating committed entry {index}");
        self.entries
            .truncate((index - self.snapshot_index - 1) as usize);
        self.unstable = self.unstable.min(index);
        self.persisted = self.persisted.min(index - 1);
    }

    /// Appends entries that follow the last one directly.
    pub fn append(&mut self, entries: Vec<Entry>) {
        let mut previous_term = self.last_term();
        for (expected, entry) in (self.last_index() + 1..).zip(entries) {
            assert_eq!(
                entry.index, expected,
                "appended entries must follow the last one"
            );
            assert!(
                entry.term >= previous_term,
                "terms fall at index {}",
                entry.index
            );
            previous_term = entry.term;
            self.entries.push_back(entry);
        }
    }

    /// Appends one entry at the end.
    #[inline]
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        debug_assert!(entry.term >= self.last_term());
        self.entries.push_back(entry);
    }

    /// Entries `from..`, at most `max_entries` and (past the first) at most `max_bytes` of
    /// [`Entry::size_bytes`]. `from` must be in memory or one past the end.
    pub fn slice(&self, from: Index, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        debug_assert!(from > self.snapshot_index && from <= self.last_index() + 1);
        let start = (from - self.snapshot_index - 1) as usize;
        let end = self.entries.len().min(start + max_entries);
        let mut out = Vec::with_capacity(end.saturating_sub(start));
        let mut bytes = 0;
        for entry in self.entries.range(start..end) {
            bytes += entry.size_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry.clone());
        }
        out
    }

    /// Advances the commit index (never backwards). `index` must be in the log.
    pub fn commit_to(&mut self, index: Index) {
        if index > self.committed {
            assert!(
                index <= self.last_index(),
                "commit {index} is past the last index {}",
                self.last_index()
            );
            self.committed = index;
        }
    }

    /// Whether entries are waiting to be handed out for writing.
    #[inline]
    pub fn has_unstable(&self) -> bool {
        self.unstable <= self.last_index()
    }

    /// The entries not yet handed out for writing; they count as handed out from now on.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        let last = self.last_index();
        if self.unstable > last {
            return Vec::new();
        }
        let start = (self.unstable - self.snapshot_index - 1) as usize;
        self.unstable = last + 1;
        self.entries.range(start..).cloned().collect()
    }

    /// Whether committed, durable entries wait to be applied.
    #[inline]
    pub fn has_committed_to_apply(&self) -> bool {
        self.committed.min(self.persisted) > self.applied
    }

    /// Hands out the next committed, durable entries for applying (at most
    /// [`MAX_APPLY_BATCH`]); they count as applied from now on.
    pub fn take_committed(&mut self) -> Vec<Entry> {
        let upto = self.committed.min(self.persisted);
        if upto <= self.applied {
            return Vec::new();
        }
        let upto = upto.min(self.applied + MAX_APPLY_BATCH as u64);
        let start = (self.applied - self.snapshot_index) as usize;
        let end = (upto - self.snapshot_index) as usize;
        self.applied = upto;
        self.entries.range(start..end).cloned().collect()
    }

    /// Records that the caller's write ending at `(index, term)` is durable. Ignored when the
    /// log no longer holds that entry (a later append replaced it: that write is still to come).
    pub fn persisted_to(&mut self, index: Index, term: Term) -> bool {
        if index > self.persisted && index <= self.last_index() && self.matches(index, term) {
            self.persisted = index;
            return true;
        }
        false
    }

    /// Replaces the whole log by a snapshot ending at `(index, term)` (a follower installing
    /// one). Everything up to `index` counts as committed and applied (the caller installs the
    /// snapshot's state); nothing after it is kept.
    pub fn reset_to_snapshot(&mut self, index: Index, term: Term) {
        assert!(
            index > self.committed,
            "installing a snapshot behind the commit index"
        );
        self.entries.clear();
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.committed = index;
        self.applied = index;
        self.persisted = self.persisted.min(index);
        self.unstable = index + 1;
    }

    /// Drops entries up to `index` after the caller took a snapshot there. `index` must be
    /// applied and durable.
    pub fn compact(&mut self, index: Index) {
        assert!(index <= self.applied, "compacting past the applied index");
        assert!(
            index <= self.persisted,
            "compacting entries that are not durable"
        );
        if index <= self.snapshot_index {
            return;
        }
        let term = self.term(index).expect("index is in memory");
        let count = (index - self.snapshot_index) as usize;
        self.entries.drain(..count);
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    /// Entries held in memory.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entries follow the snapshot.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::EntryKind;

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Normal,
            data: vec![index as u8].into(),
        }
    }

    fn log_of(terms: &[Term]) -> Log {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(offset, &term)| entry(offset as u64 + 1, term))
            .collect();
        Log::restore(0, 0, entries, 0)
    }

    #[test]
    fn append_keeps_agreeing_entries_and_truncates_at_the_first_conflict() {
        let mut log = log_of(&[1, 1, 2, 2]);
        // The leader has 1,1,3,3,3: prev (2, 1) matches, entry 3 conflicts.
        let last = log.maybe_append(2, 1, 0, vec![entry(3, 3), entry(4, 3), entry(5, 3)]);
        assert_eq!(last, Some(5));
        let terms: Vec<Term> = (1..=5).map(|index| log.term(index).unwrap()).collect();
        assert_eq!(terms, vec![1, 1, 3, 3, 3]);
        assert_eq!(
            log.persisted(),
            2,
            "the overwritten entries are not durable any more"
        );
        // A stale, shorter append that agrees changes nothing and does not truncate.
        assert_eq!(log.maybe_append(1, 1, 0, vec![entry(2, 1)]), Some(2));
        assert_eq!(log.last_index(), 5);
        // prev mismatch: rejected.
        assert_eq!(log.maybe_append(5, 4, 0, vec![]), None);
    }

    #[test]
    fn commit_follows_the_last_new_entry_not_the_leaders_commit() {
        let mut log = log_of(&[1, 1, 1, 1]);
        // The leader says commit 4, but only sent up to 2: entries 3 and 4 might differ.
        assert_eq!(log.maybe_append(1, 1, 4, vec![entry(2, 1)]), Some(2));
        assert_eq!(log.committed(), 2);
    }

    #[test]
    fn find_conflict_by_term_skips_whole_terms() {
        let log = log_of(&[1, 1, 4, 4, 4, 5, 5]);
        assert_eq!(log.find_conflict_by_term(7, 3), (2, 1));
        assert_eq!(log.find_conflict_by_term(7, 4), (5, 4));
        assert_eq!(log.find_conflict_by_term(7, 9), (7, 5));
        assert_eq!(log.find_conflict_by_term(20, 9), (7, 5));
        assert_eq!(log.find_conflict_by_term(7, 0), (0, 0));
    }

    #[test]
    fn only_committed_durable_entries_are_applied_and_compaction_keeps_the_tail() {
        let mut log = log_of(&[1, 1, 1]);
        log.append(vec![entry(4, 2), entry(5, 2)]);
        assert_eq!(log.take_unstable().len(), 2);
        log.commit_to(5);
        // 4 and 5 are not durable yet.
        let applied: Vec<Index> = log.take_committed().iter().map(|e| e.index).collect();
        assert_eq!(applied, vec![1, 2, 3]);
        assert!(log.persisted_to(5, 2));
        let applied: Vec<Index> = log.take_committed().iter().map(|e| e.index).collect();
        assert_eq!(applied, vec![4, 5]);
        log.compact(4);
        assert_eq!(log.snapshot_point(), (4, 2));
        assert_eq!(log.term(3), None);
        assert_eq!(log.term(5), Some(2));
        assert_eq!(log.slice(5, 10, 10).len(), 1);
        // A write mark for an entry that was since replaced is ignored.
        assert!(!log.persisted_to(5, 1));
    }

    #[test]
    #[should_panic(expected = "committed")]
    fn a_conflict_with_a_committed_entry_stops_the_node() {
        let mut log = log_of(&[1, 1]);
        log.commit_to(2);
        log.maybe_append(1, 1, 2, vec![entry(2, 2)]);
    }
}
