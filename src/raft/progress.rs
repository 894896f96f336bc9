//! What a leader knows about each follower's log, and how fast it may send to it.
//!
//! A follower's progress is in one of three states (as in etcd-io/raft):
//!
//! - `Probe`: the leader does not know where the logs agree. It sends one append, then waits for
//!   the answer (or a heartbeat answer) before sending another, backing `next` up on each
//!   rejection (by whole terms, see [`super::log::Log::find_conflict_by_term`]).
//! - `Replicate`: the logs agree up to `matched`. The leader streams appends without waiting,
//!   moving `next` on optimistically, up to `max_inflight` unanswered appends (the window).
//! - `Snapshot`: the entries the follower needs are compacted; the leader streams a snapshot in
//!   chunks and waits for the follower to finish installing it.

use std::collections::VecDeque;

use super::message::{Index, NodeId};

/// The sending state towards one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// One append at a time, until one is accepted.
    Probe,
    /// Pipelined appends within the window.
    Replicate,
    /// A snapshot transfer is under way.
    Snapshot,
}

/// A snapshot transfer to one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotTransfer {
    /// The index of the snapshot being sent.
    pub index: Index,
    /// Bytes the follower said it holds in order.
    pub acked_bytes: u64,
    /// Bytes sent so far (chunks beyond `acked_bytes` are in flight).
    pub sent_bytes: u64,
    /// `acked_bytes` at the last heartbeat answer: no progress between two answers means a chunk
    /// was lost, and sending restarts from `acked_bytes`.
    pub acked_at_last_heartbeat: u64,
    /// Whether the chunk at `sent_bytes` went out (tells "nothing sent yet" from "all sent"
    /// for an empty snapshot).
    pub started: bool,
}

/// One follower, as its leader sees it.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The follower.
    pub id: NodeId,
    /// The highest index known to agree with the leader's log (and to be durable there).
    pub matched: Index,
    /// The next index to send.
    pub next: Index,
    /// How the leader sends to it.
    pub state: ProgressState,
    /// In `Probe`: an append was sent and is unanswered.
    pub probe_sent: bool,
    /// In `Replicate`: the last index of each unanswered append with entries and the leader's
    /// heartbeat round when it left, oldest first (at most `max_inflight`).
    pub inflight: VecDeque<(Index, u64)>,
    /// In `Snapshot`: the transfer.
    pub snapshot: SnapshotTransfer,
    /// Heard from it since the last check-quorum (and, for a new leader, since it took office).
    pub recent_active: bool,
    /// The latest heartbeat round it answered.
    pub acked_round: u64,
    /// The commit index last sent to it, so a commit it has not heard of is sent even when no
    /// entries are.
    pub commit_sent: Index,
    /// Whether it votes (learners later).
    pub voter: bool,
}

impl Progress {
    /// A follower about which nothing is known yet, probed from `next`.
    pub fn new(id: NodeId, next: Index, voter: bool, max_inflight: usize) -> Progress {
        Progress {
            id,
            matched: 0,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::with_capacity(max_inflight.min(64)),
            snapshot: SnapshotTransfer::default(),
            recent_active: true,
            acked_round: 0,
            commit_sent: 0,
            voter,
        }
    }

    /// Whether the leader must wait before sending another append.
    #[inline]
    pub fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= max_inflight,
            ProgressState::Snapshot => true,
        }
    }

    /// Back to probing from just past what is known to match.
    pub fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            // Probe just past the snapshot: if the follower has it, the probe matches; if the
            // transfer failed, the probe is rejected and the leader backs up (to a new
            // snapshot if it must).
            self.next = (self.matched + 1).max(self.snapshot.index + 1);
        } else {
            self.next = self.matched + 1;
        }
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Streaming from just past what matched.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched + 1;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Starts sending the snapshot ending at `index`.
    pub fn become_snapshot(&mut self, index: Index) {
        self.state = ProgressState::Snapshot;
        self.probe_sent = false;
        self.inflight.clear();
        self.snapshot = SnapshotTransfer {
            index,
            ..SnapshotTransfer::default()
        };
    }

    /// An append was accepted up to `index`. Returns whether `matched` moved.
    pub fn accepted(&mut self, index: Index) -> bool {
        let moved = index > self.matched;
        if moved {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next = self.next.max(index + 1);
        while self
            .inflight
            .front()
            .is_some_and(|&(last, _)| last <= index)
        {
            self.inflight.pop_front();
        }
        moved
    }

    /// An append whose `prev_index` was `rejected` did not match; `probe_from` is where the
    /// hint says to try next. Returns false for a stale rejection (one that answers an append
    /// sent before the leader last moved `next`), which changes nothing.
    pub fn rejected(&mut self, rejected: Index, probe_from: Index) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                // The stream broke (a lost message, or the follower restarted and lost
                // unacknowledged entries): probe again from what matched.
                self.become_probe();
                true
            }
            ProgressState::Probe => {
                if self.next.saturating_sub(1) != rejected {
                    return false;
                }
                self.next = rejected.min(probe_from).max(self.matched + 1).max(1);
                self.probe_sent = false;
                true
            }
            ProgressState::Snapshot => false,
        }
    }

    /// Whether an append sent before heartbeat round `round` is still unanswered although the
    /// answer to that round came back: it was lost (or overtaken; resending is then merely
    /// redundant).
    pub fn append_lost_before(&self, round: u64) -> bool {
        self.state == ProgressState::Replicate
            && self
                .inflight
                .front()
                .is_some_and(|&(_, sent_in)| sent_in < round)
    }

    /// Records an append with entries up to `last` sent during heartbeat round `round`.
    #[inline]
    pub fn sent_entries(&mut self, last: Index, round: u64) {
        match self.state {
            ProgressState::Replicate => {
                self.next = last + 1;
                self.inflight.push_back((last, round));
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => unreachable!("appends are not sent during a snapshot"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_pauses_and_acks_free_it() {
        let mut progress = Progress::new(2, 11, true, 2);
        progress.matched = 10;
        progress.become_replicate();
        progress.sent_entries(12, 0);
        assert!(!progress.is_paused(2));
        progress.sent_entries(14, 1);
        assert!(progress.append_lost_before(1));
        assert!(progress.is_paused(2));
        assert_eq!(progress.next, 15);
        assert!(progress.accepted(12));
        assert!(!progress.is_paused(2));
        assert!(!progress.append_lost_before(1));
        assert!(!progress.accepted(11), "a stale ack moves nothing");
    }

    #[test]
    fn probe_backs_up_to_the_hint_and_ignores_stale_rejections() {
        let mut progress = Progress::new(2, 100, true, 4);
        progress.sent_entries(0, 0);
        assert!(progress.is_paused(4));
        assert!(
            !progress.rejected(50, 10),
            "answers an append that was not the last sent"
        );
        assert!(progress.rejected(99, 40));
        assert_eq!(progress.next, 40);
        assert!(!progress.is_paused(4));
    }
}
