//! A node's simulated disk: what survives a crash, and the writes still on their way to it.
//!
//! A write is one `Ready`'s snapshot, entries and hard state, laid down in that order. Writes
//! complete in the order they were issued, each after a latency drawn by the fault plan (an
//! fsync can be slow). A crash loses every write not yet complete; the oldest of them may be
//! torn: its snapshot and a prefix of its entries reach the disk, the entry after that prefix
//! is torn (and cut off at recovery, as a checksum would), and its hard state is lost.

use std::collections::VecDeque;

use crate::raft::message::{Entry, HardState, Index, Message, Snapshot, Term};
use crate::raft::node::LogMark;

/// What survives a crash.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    /// The last hard state written.
    pub hard_state: HardState,
    /// The last snapshot written.
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot.
    pub entries: Vec<Entry>,
}

impl Disk {
    /// The snapshot's last index (0: none).
    pub fn snapshot_index(&self) -> Index {
        self.snapshot
            .as_ref()
            .map_or(0, |snapshot| snapshot.meta.index)
    }

    /// Whether the disk holds the entry `(index, term)`, or a snapshot covering `index`.
    pub fn holds(&self, index: Index, term: Term) -> bool {
        let first = self.snapshot_index() + 1;
        if index < first {
            return true;
        }
        self.entries
            .get((index - first) as usize)
            .is_some_and(|entry| entry.term == term)
    }

    /// The durable entry at `index`, if any.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let first = self.snapshot_index() + 1;
        if index < first {
            return None;
        }
        self.entries.get((index - first) as usize)
    }

    /// Lays down a snapshot: the log before and at it goes; entries after it go too (the node
    /// dropped them when it installed the snapshot).
    pub fn write_snapshot(&mut self, snapshot: &Snapshot) {
        self.entries.clear();
        self.snapshot = Some(snapshot.clone());
    }

    /// Appends entries, cutting the log at the first one's index. Returns the entries cut that
    /// were there before (for the committed-never-lost check).
    pub fn write_entries(&mut self, entries: &[Entry]) -> Vec<Entry> {
        let Some(first) = entries.first() else {
            return Vec::new();
        };
        let start = self.snapshot_index() + 1;
        let mut removed = Vec::new();
        if first.index < start {
            // Entries the snapshot already covers: keep what follows it.
            let skip = (start - first.index) as usize;
            if skip >= entries.len() {
                return removed;
            }
            return self.write_entries(&entries[skip..]);
        }
        let keep = ((first.index - start) as usize).min(self.entries.len());
        assert_eq!(
            start + keep as u64,
            first.index,
            "a write leaves a gap in the durable log"
        );
        removed.extend(self.entries.drain(keep..));
        self.entries.extend_from_slice(entries);
        removed
    }

    /// Compaction by the node's owner: a snapshot of its own state at `index`, then the log up
    /// to it dropped.
    pub fn compact(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        let first = self.snapshot_index() + 1;
        let drop = ((index + 1).saturating_sub(first) as usize).min(self.entries.len());
        self.entries.drain(..drop);
        self.snapshot = Some(snapshot);
    }

    /// Bytes of the durable log (entries after the snapshot), counted as the wire would:
    /// payload plus a fixed header per entry.
    pub fn log_bytes(&self) -> usize {
        self.entries.iter().map(Entry::size_bytes).sum()
    }
}

/// A write issued but not yet durable.
#[derive(Debug)]
pub struct PendingWrite {
    /// When it completes, microseconds.
    pub done_at_us: u64,
    /// A snapshot received from the leader.
    pub snapshot: Option<Snapshot>,
    /// Entries to append.
    pub entries: Vec<Entry>,
    /// The new hard state.
    pub hard_state: Option<HardState>,
    /// Messages waiting for this write, each with the promise it makes: the `(index, term)`
    /// an append acknowledgement claims is durable.
    pub messages: Vec<(Message, Option<(Index, Term)>)>,
    /// What to report to the node once durable.
    pub mark: Option<LogMark>,
}

/// The writes in flight, oldest first.
pub type WriteQueue = VecDeque<PendingWrite>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::{EntryKind, SnapshotMeta};

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Normal,
            data: vec![].into(),
        }
    }

    #[test]
    fn writes_cut_at_their_first_entry_and_compaction_keeps_the_tail() {
        let mut disk = Disk::default();
        disk.write_entries(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
        let removed = disk.write_entries(&[entry(2, 2)]);
        assert_eq!(removed.len(), 2);
        assert!(disk.holds(2, 2) && !disk.holds(3, 1));
        disk.compact(Snapshot {
            meta: SnapshotMeta {
                index: 1,
                term: 1,
                ..SnapshotMeta::default()
            },
            data: vec![].into(),
        });
        assert_eq!(disk.entries.len(), 1);
        assert!(disk.holds(1, 9), "covered by the snapshot");
        assert!(disk.holds(2, 2));
        // A write overlapping the snapshot keeps only what follows it.
        disk.write_entries(&[entry(1, 1), entry(2, 2), entry(3, 2)]);
        assert_eq!(disk.entries.len(), 2);
    }
}
