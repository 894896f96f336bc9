//! What Raft nodes say to each other, and what they write down.
//!
//! Plain Rust values: the wire form is `schema/peer.capnp`, encoded and decoded by
//! `proto::peer`, which imports these types (this module imports nothing from `proto`).

use std::sync::Arc;

/// A node's id within the cluster. `0` ([`NONE`]) means "nobody" (no vote, no known leader).
pub type NodeId = u64;
/// A Raft term: a logical clock that grows with every election.
pub type Term = u64;
/// A position in the replicated log; the first entry has index 1.
pub type Index = u64;
/// Which Raft group a message belongs to. A worker runs many groups (one per partition); the
/// core handles one and only checks that messages carry its id, so callers can route by it.
pub type GroupId = u64;

/// The node id that names nobody.
pub const NONE: NodeId = 0;

/// An entry's payload: shared, because the same bytes sit in the log, in the append messages to
/// every follower and in the batch handed out for applying. Cloning it bumps a count.
pub type Data = Arc<[u8]>;

/// What an entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A command for the state machine, as proposed.
    Normal,
    /// The empty entry a new leader appends at the start of its term. Committing it commits
    /// everything before it (figure 8 of the Raft paper) and lets the leader serve reads.
    Noop,
    // Later: configuration changes (joint consensus, learners) take the next variant.
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: Term,
    /// Its position in the log.
    pub index: Index,
    /// Command or no-op.
    pub kind: EntryKind,
    /// The command's bytes (empty for a no-op).
    pub data: Data,
}

impl Entry {
    /// Bytes this entry adds to a message, counted the way the batching limits count them: its
    /// payload plus a fixed 24 for the header fields.
    #[inline]
    pub fn size_bytes(&self) -> usize {
        ENTRY_OVERHEAD_BYTES + self.data.len()
    }
}

/// The fixed part of [`Entry::size_bytes`].
pub const ENTRY_OVERHEAD_BYTES: usize = 24;

/// The state that must be durable before messages depending on it leave (see the persistence
/// contract in `docs/raft.md`): the current term, the vote cast in it, and (advisory) the commit
/// index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// Whom it voted for in `term`, or [`NONE`].
    pub vote: NodeId,
    /// The highest index it knows to be committed. Losing it is harmless (it is learned again
    /// from the leader), so writing it is never required on its own; a node restarts with the
    /// smaller of it and its last durable index.
    pub commit: Index,
}

/// Who votes. Learners (later) receive the log but neither vote nor count towards a quorum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// The voters, sorted, without duplicates.
    pub voters: Vec<NodeId>,
    /// Non-voting members, sorted (empty until membership changes are built).
    pub learners: Vec<NodeId>,
}

impl Membership {
    /// Voters only.
    pub fn voters(mut voters: Vec<NodeId>) -> Membership {
        voters.sort_unstable();
        voters.dedup();
        Membership {
            voters,
            learners: Vec::new(),
        }
    }

    /// Votes that make a majority of the voters.
    #[inline]
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Whether `id` votes.
    #[inline]
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }
}

/// Where a snapshot ends: the last entry it covers, and the membership at that point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// The index of the last entry the snapshot includes.
    pub index: Index,
    /// That entry's term.
    pub term: Term,
    /// The membership as of `index`.
    pub membership: Membership,
}

/// A state-machine snapshot: what the caller's state machine looked like after applying
/// everything up to `meta.index`, in the caller's own encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Where it ends.
    pub meta: SnapshotMeta,
    /// The state machine's bytes.
    pub data: Data,
}

/// One message between two nodes of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The group both nodes belong to.
    pub group: GroupId,
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What it says.
    pub body: Body,
}

/// The kinds of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// RequestVote, or with `pre` a pre-vote (Ongaro's thesis, 9.6): "would you vote for me in
    /// `term`?", which changes nothing on the receiver.
    Vote {
        /// A pre-vote.
        pre: bool,
        /// The candidate's last log index.
        last_index: Index,
        /// The candidate's last log term.
        last_term: Term,
    },
    /// The answer to [`Body::Vote`].
    VoteResponse {
        /// Answers a pre-vote.
        pre: bool,
        /// Whether the vote is given.
        granted: bool,
    },
    /// AppendEntries: entries following `(prev_index, prev_term)`, and the leader's commit index.
    Append {
        /// Index of the entry just before `entries`.
        prev_index: Index,
        /// Its term.
        prev_term: Term,
        /// The leader's commit index.
        commit: Index,
        /// The entries (may be empty: a probe or a commit update).
        entries: Vec<Entry>,
    },
    /// The answer to [`Body::Append`] (and, with `index` = the snapshot's, to a finished
    /// snapshot).
    AppendResponse {
        /// On success: the follower's log matches the leader's up to here. On rejection: the
        /// `prev_index` that did not match.
        index: Index,
        /// The append did not match.
        reject: bool,
        /// On rejection: the follower's guess of the last index where the logs may agree
        /// (the largest index at or below `index` whose term is at most the leader's
        /// `prev_term`; fast backtracking).
        hint_index: Index,
        /// The follower's term at `hint_index`.
        hint_term: Term,
    },
    /// The leader's periodic message: "I am still leader; commit is at least this". Also a
    /// round of the ReadIndex protocol: `round` is echoed back.
    Heartbeat {
        /// The leader's commit index, capped at what this follower is known to have.
        commit: Index,
        /// The leader's heartbeat round, echoed in the response.
        round: u64,
    },
    /// The answer to [`Body::Heartbeat`].
    HeartbeatResponse {
        /// The round being answered.
        round: u64,
    },
    /// One chunk of an InstallSnapshot transfer.
    Snapshot {
        /// The snapshot being sent.
        meta: SnapshotMeta,
        /// Where this chunk starts in the snapshot's bytes.
        offset: u64,
        /// The snapshot's whole length in bytes.
        total_bytes: u64,
        /// The chunk.
        data: Vec<u8>,
    },
    /// Flow control of a snapshot transfer: how many bytes the follower holds in order.
    SnapshotResponse {
        /// The snapshot's index.
        index: Index,
        /// Bytes received in order so far (the next offset the follower wants).
        received_bytes: u64,
    },
}

impl Body {
    /// A short name, for traces and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Body::Vote { pre: true, .. } => "PreVote",
            Body::Vote { pre: false, .. } => "Vote",
            Body::VoteResponse { pre: true, .. } => "PreVoteResponse",
            Body::VoteResponse { pre: false, .. } => "VoteResponse",
            Body::Append { .. } => "Append",
            Body::AppendResponse { .. } => "AppendResponse",
            Body::Heartbeat { .. } => "Heartbeat",
            Body::HeartbeatResponse { .. } => "HeartbeatResponse",
            Body::Snapshot { .. } => "Snapshot",
            Body::SnapshotResponse { .. } => "SnapshotResponse",
        }
    }

    /// Whether this message asks for an answer (counted as one "RPC" by the 6.5840-style tests,
    /// which count calls, not replies).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Body::Vote { .. }
                | Body::Append { .. }
                | Body::Heartbeat { .. }
                | Body::Snapshot { .. }
        )
    }
}
