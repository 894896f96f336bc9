//! One Raft node: the state machine that messages, ticks, proposals and reads drive, and that
//! answers with a [`Ready`].
//!
//! The caller's loop, for one node:
//!
//! ```text
//! inputs:  node.step(message) | node.tick() | node.propose(data) | node.read_index(ctx)
//! then:    let ready = node.ready();
//!          send ready.messages                          (now: the leader's replication traffic)
//!          write ready.snapshot, ready.entries, ready.hard_state  (in that order, then sync if
//!                                                                  ready.must_sync)
//!          once that write and every earlier one is durable:
//!              send ready.persisted_messages; node.on_persisted(mark) for ready.persisted_mark()
//!          install ready.snapshot into the state machine, apply ready.committed_entries in order
//!          answer ready.read_states once the state machine has applied their index
//! ```
//!
//! The write may run in the background while the node keeps stepping and ticking (a leader
//! writes its own log in parallel with replicating it: Ongaro's thesis, 10.2.1); only the
//! `persisted_messages` wait for it. Writes complete in the order they were handed out.
//! `docs/raft.md` states the whole persistence contract and why each rule is there.

use std::collections::VecDeque;
use std::sync::Arc;

use super::config::{Config, ConfigError};
use super::log::Log;
use super::message::{
    Body, Data, Entry, EntryKind, GroupId, HardState, Index, Membership, Message, NONE, NodeId,
    Snapshot, SnapshotMeta, Term,
};
use super::progress::{Progress, ProgressState};
use super::rng::Rng;

/// Most reads a leader holds waiting (for its first commit, or for a heartbeat round).
pub const MAX_PENDING_READS: usize = 1 << 16;

/// Heartbeat rounds whose send tick a leader remembers (for the lease).
const ROUND_HISTORY: usize = 256;

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes: would a majority vote for it? Its term has not changed.
    PreCandidate,
    /// Campaigning in a new term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// The last entry (or snapshot) of one write, to hand back to [`Node::on_persisted`] once that
/// write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMark {
    /// The index of the last entry written.
    pub index: Index,
    /// Its term.
    pub term: Term,
}

/// A read the leader has confirmed: answer it once the state machine has applied `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's tag from [`Node::read_index`].
    pub ctx: u64,
    /// The commit index when the read arrived; the answer must reflect at least this.
    pub index: Index,
}

/// What the node wants done: see the module documentation for the order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Messages that may leave at once (they depend on nothing unwritten).
    pub messages: Vec<Message>,
    /// Messages that may leave only once this Ready's writes (and all earlier ones) are durable.
    pub persisted_messages: Vec<Message>,
    /// A snapshot received from the leader: write it, then install it in the state machine.
    pub snapshot: Option<Snapshot>,
    /// Entries to append to the durable log. The first may lie at or before the last one
    /// written: the durable log is cut there first.
    pub entries: Vec<Entry>,
    /// The new hard state, if it changed.
    pub hard_state: Option<HardState>,
    /// Whether the write must be synced before `persisted_messages` leave: new entries, a
    /// snapshot, or a new term or vote. A change of the commit index alone need not be.
    pub must_sync: bool,
    /// Committed entries to apply, in order.
    pub committed_entries: Vec<Entry>,
    /// Confirmed reads.
    pub read_states: Vec<ReadState>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
    }

    /// What to pass to [`Node::on_persisted`] once this Ready's write is durable: its last
    /// entry, or its snapshot's end. `None` when it wrote no log.
    pub fn persisted_mark(&self) -> Option<LogMark> {
        if let Some(entry) = self.entries.last() {
            return Some(LogMark {
                index: entry.index,
                term: entry.term,
            });
        }
        self.snapshot.as_ref().map(|snapshot| LogMark {
            index: snapshot.meta.index,
            term: snapshot.meta.term,
        })
    }
}

/// Durable state handed back at a restart.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// The last hard state written.
    pub hard_state: HardState,
    /// The last snapshot written (the state machine restores itself from it too).
    pub snapshot: Option<Snapshot>,
    /// The durable entries after the snapshot, in order.
    pub entries: Vec<Entry>,
}

/// Why a proposal was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProposeError {
    /// Only the leader takes proposals; `leader` is the one this node knows of ([`NONE`] if
    /// none).
    NotLeader {
        /// The known leader.
        leader: NodeId,
    },
    /// `max_uncommitted_entries` are already waiting to commit.
    TooManyUncommitted,
}

/// Why a read was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// Only the leader confirms reads.
    NotLeader {
        /// The known leader.
        leader: NodeId,
    },
    /// [`MAX_PENDING_READS`] reads are already waiting.
    TooManyPending,
}

/// Why a message was refused (a routing mistake of the caller, or a stranger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepError {
    /// The message is for another group.
    WrongGroup {
        /// The group it names.
        group: GroupId,
    },
    /// The message is for another node.
    NotForMe {
        /// The node it names.
        to: NodeId,
    },
    /// The sender is not a member.
    UnknownPeer {
        /// The sender.
        from: NodeId,
    },
}

/// Why a compaction was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactError {
    /// The index is not applied yet.
    NotApplied {
        /// The applied index.
        applied: Index,
    },
    /// The index is not durable yet (a snapshot just received is still being written).
    NotDurable {
        /// The persisted index.
        persisted: Index,
    },
}

/// What a leader owes a follower next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Send {
    /// Entries from `next` (or, probing, an empty append).
    Entries,
    /// The commit index only.
    Commit,
    /// Snapshot chunks.
    Chunks,
}

/// A read waiting for its heartbeat round.
#[derive(Debug, Clone, Copy)]
struct PendingRead {
    ctx: u64,
    index: Index,
    round: u64,
}

/// A snapshot being received.
#[derive(Debug)]
struct IncomingSnapshot {
    meta: SnapshotMeta,
    total_bytes: u64,
    data: Vec<u8>,
}

/// One Raft node of one group.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    group: GroupId,
    config: Config,
    term: Term,
    vote: NodeId,
    role: Role,
    leader: NodeId,
    log: Log,
    membership: Membership,
    /// Every other member, in id order.
    peers: Vec<Progress>,
    /// Answers in the current (pre-)campaign: `(voter, granted)`.
    votes: Vec<(NodeId, bool)>,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    randomized_timeout: u32,
    /// Ticks left during which a restarted node refuses votes (lease mode only).
    lease_guard: u32,
    rng: Rng,
    /// Ticks since the node started (the lease's clock).
    ticks: u64,
    messages: Vec<Message>,
    persisted_messages: Vec<Message>,
    /// The hard state as last handed out.
    last_hard_state: HardState,
    // Leader state.
    committed_in_term: bool,
    round: u64,
    /// `(round, tick it was sent)`, oldest first.
    round_ticks: VecDeque<(u64, u64)>,
    reads_before_commit: Vec<u64>,
    reads: VecDeque<PendingRead>,
    read_states: Vec<ReadState>,
    /// The leader may answer reads without a round while `ticks < lease_until`.
    lease_until: u64,
    // Snapshots.
    /// The latest snapshot this node has (taken or received), to send to followers.
    snapshot: Option<Snapshot>,
    incoming: Option<IncomingSnapshot>,
    snapshot_to_install: Option<Snapshot>,
    scratch: Vec<u64>,
}

impl Node {
    /// A node starting from `restored` (use `Restored::default()` for a brand-new one).
    pub fn new(config: Config, restored: Restored) -> Result<Node, ConfigError> {
        config.validate()?;
        let Restored {
            hard_state,
            snapshot,
            entries,
        } = restored;
        let (snapshot_index, snapshot_term, membership) = match &snapshot {
            Some(snapshot) => (
                snapshot.meta.index,
                snapshot.meta.term,
                snapshot.meta.membership.clone(),
            ),
            None => (0, 0, Membership::voters(config.voters.clone())),
        };
        if !membership.is_voter(config.id) {
            return Err(ConfigError {
                reason: "this node is not among the voters",
            });
        }
        let log = Log::restore(snapshot_index, snapshot_term, entries, hard_state.commit);
        let peers = membership
            .voters
            .iter()
            .filter(|&&id| id != config.id)
            .map(|&id| Progress::new(id, log.last_index() + 1, true, config.max_inflight))
            .collect();
        let lease_guard = if config.lease_ticks().is_some() {
            config.election_ticks
        } else {
            0
        };
        let mut node = Node {
            id: config.id,
            group: config.group,
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: NONE,
            log,
            membership,
            peers,
            votes: Vec::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: config.election_ticks,
            lease_guard,
            rng: Rng::new(config.seed),
            ticks: 0,
            messages: Vec::new(),
            persisted_messages: Vec::new(),
            last_hard_state: hard_state,
            committed_in_term: false,
            round: 0,
            round_ticks: VecDeque::new(),
            reads_before_commit: Vec::new(),
            reads: VecDeque::new(),
            read_states: Vec::new(),
            lease_until: 0,
            snapshot,
            incoming: None,
            snapshot_to_install: None,
            scratch: Vec::new(),
            config,
        };
        node.last_hard_state.commit = node.log.committed();
        node.reset_election_timer();
        Ok(node)
    }

    // ---------------------------------------------------------------------------------------
    // Inputs.

    /// One tick of the caller's clock.
    pub fn tick(&mut self) {
        self.ticks += 1;
        self.lease_guard = self.lease_guard.saturating_sub(1);
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.randomized_timeout {
                self.campaign();
            }
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_ticks {
            self.election_elapsed = 0;
            if self.config.check_quorum {
                if !self.quorum_active() {
                    // Cut off from a majority: stop pretending to lead.
                    self.become_follower(self.term, NONE);
                    return;
                }
                for peer in &mut self.peers {
                    peer.recent_active = false;
                }
            }
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    /// Proposes one command. Returns the index it will have if it commits.
    pub fn propose(&mut self, data: Data) -> Result<Index, ProposeError> {
        self.check_proposal(1)?;
        let index = self.log.last_index() + 1;
        self.log.push(Entry {
            term: self.term,
            index,
            kind: EntryKind::Normal,
            data,
        });
        Ok(index)
    }

    /// Proposes several commands at once; they go out in the same appends. Returns the index
    /// of the first (the rest follow it).
    pub fn propose_batch(&mut self, batch: Vec<Data>) -> Result<Index, ProposeError> {
        self.check_proposal(batch.len())?;
        let first = self.log.last_index() + 1;
        for (offset, data) in batch.into_iter().enumerate() {
            self.log.push(Entry {
                term: self.term,
                index: first + offset as u64,
                kind: EntryKind::Normal,
                data,
            });
        }
        Ok(first)
    }

    fn check_proposal(&self, count: usize) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        let uncommitted = (self.log.last_index() - self.log.committed()) as usize;
        if uncommitted + count > self.config.max_uncommitted_entries {
            return Err(ProposeError::TooManyUncommitted);
        }
        Ok(())
    }

    /// Asks for a linearizable read tagged `ctx`; it comes back in [`Ready::read_states`]
    /// once the leader has confirmed it still leads. A new leader first commits the no-op of
    /// its term: before that its commit index may lag behind what was committed before it.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadError> {
        if self.role != Role::Leader {
            return Err(ReadError::NotLeader {
                leader: self.leader,
            });
        }
        if self.reads.len() + self.reads_before_commit.len() >= MAX_PENDING_READS {
            return Err(ReadError::TooManyPending);
        }
        if self.committed_in_term {
            self.register_read(ctx);
        } else {
            self.reads_before_commit.push(ctx);
        }
        Ok(())
    }

    fn register_read(&mut self, ctx: u64) {
        let index = self.log.committed();
        if self.membership.quorum() == 1 || self.ticks < self.lease_until {
            self.read_states.push(ReadState { ctx, index });
        } else {
            // Confirmed by the next round, which starts after the read arrived.
            self.reads.push_back(PendingRead {
                ctx,
                index,
                round: self.round + 1,
            });
        }
    }

    /// Handles one message from a peer.
    pub fn step(&mut self, message: Message) -> Result<(), StepError> {
        if message.group != self.group {
            return Err(StepError::WrongGroup {
                group: message.group,
            });
        }
        if message.to != self.id {
            return Err(StepError::NotForMe { to: message.to });
        }
        if message.from == self.id || !self.is_member(message.from) {
            return Err(StepError::UnknownPeer { from: message.from });
        }
        let from = message.from;
        if message.term > self.term {
            if matches!(message.body, Body::Vote { .. }) && self.in_lease() {
                // We heard from a leader less than an election timeout ago: a candidate that
                // could not hear it must not disturb it (check-quorum), and a lease may rely
                // on this refusal.
                return Ok(());
            }
            match message.body {
                Body::Vote { pre: true, .. }
                | Body::VoteResponse {
                    pre: true,
                    granted: true,
                } => {}
                Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. } => {
                    self.become_follower(message.term, from)
                }
                _ => self.become_follower(message.term, NONE),
            }
        } else if message.term < self.term {
            match message.body {
                Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. } => {
                    // A leader of an old term, perhaps cut off until now: our term deposes it.
                    self.send_now(
                        from,
                        Body::AppendResponse {
                            index: 0,
                            reject: true,
                            hint_index: 0,
                            hint_term: 0,
                        },
                    );
                }
                Body::Vote { pre, .. } => self.send_now(
                    from,
                    Body::VoteResponse {
                        pre,
                        granted: false,
                    },
                ),
                _ => {}
            }
            return Ok(());
        }
        let term = message.term;
        match message.body {
            Body::Vote {
                pre,
                last_index,
                last_term,
            } => self.handle_vote(from, term, pre, last_index, last_term),
            Body::VoteResponse { pre, granted } => {
                self.handle_vote_response(from, term, pre, granted)
            }
            Body::Append {
                prev_index,
                prev_term,
                commit,
                entries,
            } => {
                self.follow(from);
                self.handle_append(from, prev_index, prev_term, commit, entries);
            }
            Body::AppendResponse {
                index,
                reject,
                hint_index,
                hint_term,
            } => {
                if self.role == Role::Leader {
                    self.handle_append_response(from, index, reject, hint_index, hint_term);
                }
            }
            Body::Heartbeat { commit, round } => {
                self.follow(from);
                self.log.commit_to(commit);
                self.send_now(from, Body::HeartbeatResponse { round });
            }
            Body::HeartbeatResponse { round } => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(from, round);
                }
            }
            Body::Snapshot {
                meta,
                offset,
                total_bytes,
                data,
            } => {
                self.follow(from);
                self.handle_snapshot_chunk(from, meta, offset, total_bytes, data);
            }
            Body::SnapshotResponse {
                index,
                received_bytes,
            } => {
                if self.role == Role::Leader {
                    self.handle_snapshot_response(from, index, received_bytes);
                }
            }
        }
        Ok(())
    }

    /// Records that the write ending at `mark` (from [`Ready::persisted_mark`]) is durable.
    pub fn on_persisted(&mut self, mark: LogMark) {
        if self.log.persisted_to(mark.index, mark.term) && self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// Drops the log up to `index` after the caller took a snapshot of its state machine
    /// there (`data`). The caller writes the snapshot durably before it drops its own log.
    /// The node keeps `data` to send to followers that fall behind it.
    pub fn compact(&mut self, index: Index, data: Data) -> Result<(), CompactError> {
        if index > self.log.applied() {
            return Err(CompactError::NotApplied {
                applied: self.log.applied(),
            });
        }
        if index <= self.log.snapshot_point().0 {
            return Ok(());
        }
        if index > self.log.persisted() {
            return Err(CompactError::NotDurable {
                persisted: self.log.persisted(),
            });
        }
        let term = self.log.term(index).expect("applied entries are in memory");
        self.log.compact(index);
        self.snapshot = Some(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                membership: self.membership.clone(),
            },
            data,
        });
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Output.

    /// Whether [`Node::ready`] has anything to hand out.
    pub fn has_ready(&self) -> bool {
        !self.messages.is_empty()
            || !self.persisted_messages.is_empty()
            || self.snapshot_to_install.is_some()
            || self.log.has_unstable()
            || self.hard_state() != self.last_hard_state
            || self.log.has_committed_to_apply()
            || !self.read_states.is_empty()
            || (self.role == Role::Leader && self.leader_has_sends())
    }

    /// Everything the node wants done now; see the module documentation.
    pub fn ready(&mut self) -> Ready {
        if self.role == Role::Leader {
            self.flush_leader();
        }
        let hard_state = self.hard_state();
        let changed = hard_state != self.last_hard_state;
        let new_vote = hard_state.term != self.last_hard_state.term
            || hard_state.vote != self.last_hard_state.vote;
        self.last_hard_state = hard_state;
        let snapshot = self.snapshot_to_install.take();
        let entries = self.log.take_unstable();
        let must_sync = new_vote || snapshot.is_some() || !entries.is_empty();
        Ready {
            messages: std::mem::take(&mut self.messages),
            persisted_messages: std::mem::take(&mut self.persisted_messages),
            snapshot,
            entries,
            hard_state: changed.then_some(hard_state),
            must_sync,
            committed_entries: self.log.take_committed(),
            read_states: std::mem::take(&mut self.read_states),
        }
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Elections.

    fn in_lease(&self) -> bool {
        self.config.check_quorum
            && ((self.leader != NONE && self.election_elapsed < self.config.election_ticks)
                || self.lease_guard > 0)
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let low = u64::from(self.config.election_ticks);
        self.randomized_timeout = self.rng.range(low, 2 * low) as u32;
    }

    fn campaign(&mut self) {
        if !self.membership.is_voter(self.id) {
            return;
        }
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
    }

    fn become_follower(&mut self, term: Term, leader: NodeId) {
        if term > self.term {
            self.term = term;
            self.vote = NONE;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.reset_election_timer();
        self.votes.clear();
        self.drop_leader_state();
    }

    /// Accepts `from` as the leader of the current term (it sent an append, heartbeat or
    /// snapshot in our term).
    fn follow(&mut self, from: NodeId) {
        assert!(
            self.role != Role::Leader,
            "two leaders in term {}: {} and {from}",
            self.term,
            self.id
        );
        if self.role != Role::Follower {
            self.become_follower(self.term, from);
        }
        self.leader = from;
        self.election_elapsed = 0;
    }

    fn become_pre_candidate(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = NONE;
        self.reset_election_timer();
        self.votes.clear();
        self.votes.push((self.id, true));
        if self.tally() == Some(true) {
            self.become_candidate();
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for index in 0..self.membership.voters.len() {
            let voter = self.membership.voters[index];
            if voter != self.id {
                // A pre-vote asks for the next term without taking it; nothing changes here,
                // so it may leave at once.
                self.messages.push(Message {
                    group: self.group,
                    from: self.id,
                    to: voter,
                    term: self.term + 1,
                    body: Body::Vote {
                        pre: true,
                        last_index,
                        last_term,
                    },
                });
            }
        }
    }

    fn become_candidate(&mut self) {
        self.term += 1;
        self.vote = self.id;
        self.role = Role::Candidate;
        self.leader = NONE;
        self.reset_election_timer();
        self.votes.clear();
        self.votes.push((self.id, true));
        if self.tally() == Some(true) {
            self.become_leader();
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for index in 0..self.membership.voters.len() {
            let voter = self.membership.voters[index];
            if voter != self.id {
                // The new term and our own vote must be durable first: a candidate that forgot
                // it voted for itself could vote again in the same term.
                self.send_after_persist(
                    voter,
                    Body::Vote {
                        pre: false,
                        last_index,
                        last_term,
                    },
                );
            }
        }
    }

    fn become_leader(&mut self) {
        debug_assert_eq!(self.role, Role::Candidate);
        self.role = Role::Leader;
        self.leader = self.id;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.votes.clear();
        let next = self.log.last_index() + 1;
        for peer in &mut self.peers {
            *peer = Progress::new(peer.id, next, peer.voter, self.config.max_inflight);
            peer.recent_active = false;
        }
        self.committed_in_term = false;
        self.round = 0;
        self.round_ticks.clear();
        self.lease_until = 0;
        // The no-op of the new term: committing it commits every earlier entry (the leader
        // may not count replicas of older entries; figure 8) and opens reads.
        self.log.push(Entry {
            term: self.term,
            index: next,
            kind: EntryKind::Noop,
            data: Arc::from(&[][..]),
        });
        if self.membership.quorum() == 1 {
            self.maybe_commit();
        }
    }

    fn drop_leader_state(&mut self) {
        self.committed_in_term = false;
        self.reads.clear();
        self.reads_before_commit.clear();
        self.lease_until = 0;
    }

    /// `Some(true)`: won; `Some(false)`: lost; `None`: undecided.
    fn tally(&self) -> Option<bool> {
        let granted = self
            .votes
            .iter()
            .filter(|(voter, granted)| *granted && self.membership.is_voter(*voter))
            .count();
        let rejected = self
            .votes
            .iter()
            .filter(|(voter, granted)| !*granted && self.membership.is_voter(*voter))
            .count();
        let quorum = self.membership.quorum();
        if granted >= quorum {
            Some(true)
        } else if rejected >= quorum {
            Some(false)
        } else {
            None
        }
    }

    fn handle_vote(
        &mut self,
        from: NodeId,
        term: Term,
        pre: bool,
        last_index: Index,
        last_term: Term,
    ) {
        let can_vote = self.vote == from
            || (self.vote == NONE && self.leader == NONE)
            || (pre && term > self.term);
        if can_vote && self.log.is_up_to_date(last_index, last_term) {
            if pre {
                let reply = Message {
                    group: self.group,
                    from: self.id,
                    to: from,
                    term,
                    body: Body::VoteResponse {
                        pre: true,
                        granted: true,
                    },
                };
                self.messages.push(reply);
            } else {
                self.vote = from;
                self.election_elapsed = 0;
                // The vote must be durable before the candidate can count it.
                self.send_after_persist(
                    from,
                    Body::VoteResponse {
                        pre: false,
                        granted: true,
                    },
                );
            }
        } else {
            self.send_now(
                from,
                Body::VoteResponse {
                    pre,
                    granted: false,
                },
            );
        }
    }

    fn handle_vote_response(&mut self, from: NodeId, term: Term, pre: bool, granted: bool) {
        let counts = match self.role {
            Role::PreCandidate => pre && (term == self.term + 1 || !granted),
            Role::Candidate => !pre && term == self.term,
            _ => false,
        };
        if !counts || self.votes.iter().any(|(voter, _)| *voter == from) {
            return;
        }
        self.votes.push((from, granted));
        match self.tally() {
            Some(true) if self.role == Role::PreCandidate => self.become_candidate(),
            Some(true) => self.become_leader(),
            Some(false) => self.become_follower(self.term, NONE),
            None => {}
        }
    }

    // ---------------------------------------------------------------------------------------
    // Replication, follower side.

    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        commit: Index,
        entries: Vec<Entry>,
    ) {
        if prev_index < self.log.committed() {
            // Everything up to our commit index agrees with any leader's log already.
            let committed = self.log.committed();
            self.send_after_persist(
                from,
                Body::AppendResponse {
                    index: committed,
                    reject: false,
                    hint_index: 0,
                    hint_term: 0,
                },
            );
            return;
        }
        match self
            .log
            .maybe_append(prev_index, prev_term, commit, entries)
        {
            Some(last_new) => self.send_after_persist(
                from,
                Body::AppendResponse {
                    index: last_new,
                    reject: false,
                    hint_index: 0,
                    hint_term: 0,
                },
            ),
            None => {
                let (hint_index, hint_term) = self.log.find_conflict_by_term(prev_index, prev_term);
                self.send_after_persist(
                    from,
                    Body::AppendResponse {
                        index: prev_index,
                        reject: true,
                        hint_index,
                        hint_term,
                    },
                );
            }
        }
    }

    fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        total_bytes: u64,
        data: Vec<u8>,
    ) {
        let index = meta.index;
        if index <= self.log.committed() {
            // We have it (or more) already.
            self.incoming = None;
            let committed = self.log.committed();
            self.send_after_persist(
                from,
                Body::AppendResponse {
                    index: committed,
                    reject: false,
                    hint_index: 0,
                    hint_term: 0,
                },
            );
            return;
        }
        if total_bytes > self.config.max_snapshot_bytes {
            return;
        }
        let same = self
            .incoming
            .as_ref()
            .is_some_and(|incoming| incoming.meta == meta && incoming.total_bytes == total_bytes);
        if !same {
            if offset != 0 {
                // A chunk of a transfer we do not hold: ask for it from the start.
                self.incoming = None;
                self.send_now(
                    from,
                    Body::SnapshotResponse {
                        index,
                        received_bytes: 0,
                    },
                );
                return;
            }
            let capacity = total_bytes.min(self.config.snapshot_chunk_bytes as u64 * 4) as usize;
            self.incoming = Some(IncomingSnapshot {
                meta,
                total_bytes,
                data: Vec::with_capacity(capacity),
            });
        }
        let incoming = self.incoming.as_mut().expect("set above");
        if offset == incoming.data.len() as u64
            && offset + data.len() as u64 <= incoming.total_bytes
        {
            incoming.data.extend_from_slice(&data);
        }
        let received_bytes = incoming.data.len() as u64;
        if received_bytes < incoming.total_bytes {
            self.send_now(
                from,
                Body::SnapshotResponse {
                    index,
                    received_bytes,
                },
            );
            return;
        }
        let IncomingSnapshot { meta, data, .. } = self.incoming.take().expect("set above");
        self.install_snapshot(meta, Arc::from(data));
        self.send_after_persist(
            from,
            Body::AppendResponse {
                index,
                reject: false,
                hint_index: 0,
                hint_term: 0,
            },
        );
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Data) {
        if self.log.matches(meta.index, meta.term) {
            // Our log already has the snapshot's last entry, hence everything before it:
            // just learn that it is committed.
            self.log.commit_to(meta.index);
            return;
        }
        self.log.reset_to_snapshot(meta.index, meta.term);
        self.membership = meta.membership.clone();
        let snapshot = Snapshot { meta, data };
        self.snapshot = Some(snapshot.clone());
        self.snapshot_to_install = Some(snapshot);
    }

    // ---------------------------------------------------------------------------------------
    // Replication, leader side.

    fn peer_index(&self, id: NodeId) -> Option<usize> {
        self.peers.iter().position(|peer| peer.id == id)
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        index: Index,
        reject: bool,
        hint_index: Index,
        hint_term: Term,
    ) {
        let Some(at) = self.peer_index(from) else {
            return;
        };
        self.peers[at].recent_active = true;
        if reject {
            let probe_from = if hint_term > 0 {
                self.log.find_conflict_by_term(hint_index, hint_term).0
            } else {
                hint_index
            };
            self.peers[at].rejected(index, probe_from + 1);
            return;
        }
        let peer = &mut self.peers[at];
        if peer.accepted(index) {
            match peer.state {
                ProgressState::Probe => peer.become_replicate(),
                ProgressState::Snapshot if peer.matched >= peer.snapshot.index => {
                    peer.become_replicate()
                }
                _ => {}
            }
            self.maybe_commit();
        }
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, round: u64) {
        let Some(at) = self.peer_index(from) else {
            return;
        };
        let peer = &mut self.peers[at];
        peer.recent_active = true;
        peer.probe_sent = false;
        if peer.state == ProgressState::Snapshot {
            let transfer = &mut peer.snapshot;
            if transfer.acked_bytes == transfer.acked_at_last_heartbeat {
                // No progress for a heartbeat interval: a chunk was lost. Resend from there.
                transfer.sent_bytes = transfer.acked_bytes;
                transfer.started = false;
            }
            transfer.acked_at_last_heartbeat = transfer.acked_bytes;
        }
        if peer.append_lost_before(round) {
            // An append that left before this round is unanswered though the round's answer
            // came back: it was lost. Stream again from what matched.
            peer.become_probe();
        }
        if round > peer.acked_round {
            peer.acked_round = round;
            self.advance_reads();
        }
    }

    fn handle_snapshot_response(&mut self, from: NodeId, index: Index, received_bytes: u64) {
        let Some(at) = self.peer_index(from) else {
            return;
        };
        let peer = &mut self.peers[at];
        peer.recent_active = true;
        if peer.state != ProgressState::Snapshot || peer.snapshot.index != index {
            return;
        }
        let transfer = &mut peer.snapshot;
        if received_bytes < transfer.acked_bytes {
            // The follower holds less than it did (it restarted, or dropped a transfer it
            // could not follow): continue from what it holds.
            transfer.sent_bytes = received_bytes;
            transfer.started = false;
        }
        transfer.acked_bytes = received_bytes;
        transfer.sent_bytes = transfer.sent_bytes.max(received_bytes);
    }

    /// Commits the highest index a majority holds durably, if it is of the current term.
    fn maybe_commit(&mut self) {
        self.scratch.clear();
        for &voter in &self.membership.voters {
            let matched = if voter == self.id {
                self.log.persisted()
            } else {
                self.peers
                    .iter()
                    .find(|peer| peer.id == voter)
                    .map_or(0, |peer| peer.matched)
            };
            self.scratch.push(matched);
        }
        self.scratch.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = self.scratch[self.membership.quorum() - 1];
        if candidate > self.log.committed() && self.log.term(candidate) == Some(self.term) {
            self.log.commit_to(candidate);
            if !self.committed_in_term {
                self.committed_in_term = true;
                for ctx in std::mem::take(&mut self.reads_before_commit) {
                    self.register_read(ctx);
                }
            }
        }
    }

    fn quorum_active(&self) -> bool {
        let active = self
            .membership
            .voters
            .iter()
            .filter(|&&voter| {
                voter == self.id
                    || self
                        .peers
                        .iter()
                        .any(|peer| peer.id == voter && peer.recent_active)
            })
            .count();
        active >= self.membership.quorum()
    }

    fn broadcast_heartbeat(&mut self) {
        self.round += 1;
        if self.round_ticks.len() == ROUND_HISTORY {
            self.round_ticks.pop_front();
        }
        self.round_ticks.push_back((self.round, self.ticks));
        let committed = self.log.committed();
        for index in 0..self.peers.len() {
            let peer = &self.peers[index];
            let message = Message {
                group: self.group,
                from: self.id,
                to: peer.id,
                term: self.term,
                body: Body::Heartbeat {
                    // Never more than the follower is known to hold: its entries past `matched`
                    // may not be the leader's.
                    commit: committed.min(peer.matched),
                    round: self.round,
                },
            };
            self.messages.push(message);
        }
    }

    /// Confirms the reads whose round a majority has answered, and extends the lease.
    fn advance_reads(&mut self) {
        self.scratch.clear();
        for &voter in &self.membership.voters {
            let acked = if voter == self.id {
                self.round
            } else {
                self.peers
                    .iter()
                    .find(|peer| peer.id == voter)
                    .map_or(0, |peer| peer.acked_round)
            };
            self.scratch.push(acked);
        }
        self.scratch.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = self.scratch[self.membership.quorum() - 1];
        while self
            .reads
            .front()
            .is_some_and(|read| read.round <= confirmed)
        {
            let read = self.reads.pop_front().expect("checked");
            self.read_states.push(ReadState {
                ctx: read.ctx,
                index: read.index,
            });
        }
        if let Some(lease_ticks) = self.config.lease_ticks() {
            if self.committed_in_term {
                if let Some(&(_, sent_tick)) = self
                    .round_ticks
                    .iter()
                    .find(|(round, _)| *round == confirmed)
                {
                    self.lease_until = self.lease_until.max(sent_tick + lease_ticks);
                }
            }
        }
    }

    /// What the leader should send `peer` next, if anything. `ready` and `has_ready` both go
    /// by this one answer, so they cannot disagree.
    fn next_send(&self, peer: &Progress) -> Option<Send> {
        let last = self.log.last_index();
        let committed = self.log.committed();
        match peer.state {
            ProgressState::Snapshot => self.snapshot_has_sends(peer).then_some(Send::Chunks),
            ProgressState::Probe => {
                // One append at a time, until one is accepted: entries from `next` (or an empty
                // one if `next` is past the end), carrying the commit index.
                (!peer.probe_sent && (peer.matched < last || peer.commit_sent < committed))
                    .then_some(Send::Entries)
            }
            ProgressState::Replicate => {
                if peer.next <= last && peer.inflight.len() < self.config.max_inflight {
                    Some(Send::Entries)
                } else if peer.commit_sent < committed && peer.inflight.is_empty() {
                    // Nothing else is on its way to carry the commit index (appends in flight
                    // will be answered, and the next append carries it): send it alone,
                    // anchored at what matched, so that it cannot be rejected.
                    Some(Send::Commit)
                } else {
                    None
                }
            }
        }
    }

    fn leader_has_sends(&self) -> bool {
        self.reads
            .back()
            .is_some_and(|read| read.round > self.round)
            || self.peers.iter().any(|peer| self.next_send(peer).is_some())
    }

    /// Sends what the followers are owed: entries, commit updates, snapshot chunks, and a
    /// heartbeat round if reads wait for one.
    fn flush_leader(&mut self) {
        if self
            .reads
            .back()
            .is_some_and(|read| read.round > self.round)
        {
            self.broadcast_heartbeat();
        }
        for at in 0..self.peers.len() {
            self.send_to_peer(at);
        }
    }

    fn send_to_peer(&mut self, at: usize) {
        while let Some(send) = self.next_send(&self.peers[at]) {
            let committed = self.log.committed();
            let peer = &self.peers[at];
            let to = peer.id;
            match send {
                Send::Chunks => {
                    self.send_snapshot_chunks(at);
                    return;
                }
                Send::Commit => {
                    let matched = peer.matched;
                    self.peers[at].commit_sent = committed;
                    // Compacted past `matched`: the next heartbeat carries the commit instead.
                    if let Some(prev_term) = self.log.term(matched) {
                        self.send_now(
                            to,
                            Body::Append {
                                prev_index: matched,
                                prev_term,
                                commit: committed,
                                entries: Vec::new(),
                            },
                        );
                    }
                    return;
                }
                Send::Entries => {
                    let prev_index = peer.next - 1;
                    let Some(prev_term) = self.log.term(prev_index) else {
                        // The follower needs entries we compacted: send the snapshot instead.
                        let snapshot_index = self
                            .snapshot
                            .as_ref()
                            .map(|snapshot| snapshot.meta.index)
                            .expect("a compacted log has a snapshot");
                        self.peers[at].become_snapshot(snapshot_index);
                        continue;
                    };
                    let entries = if peer.next <= self.log.last_index() {
                        self.log.slice(
                            peer.next,
                            self.config.max_append_entries,
                            self.config.max_append_bytes,
                        )
                    } else {
                        Vec::new()
                    };
                    let peer = &mut self.peers[at];
                    peer.commit_sent = committed;
                    let probing = peer.state == ProgressState::Probe;
                    match entries.last() {
                        Some(entry) => peer.sent_entries(entry.index, self.round),
                        None => peer.probe_sent = true,
                    }
                    self.send_now(
                        to,
                        Body::Append {
                            prev_index,
                            prev_term,
                            commit: committed,
                            entries,
                        },
                    );
                    if probing {
                        return;
                    }
                }
            }
        }
    }

    /// Whether a chunk of the transfer to `peer` may go out now (or the transfer must restart
    /// with a newer snapshot).
    fn snapshot_has_sends(&self, peer: &Progress) -> bool {
        let Some(snapshot) = self.snapshot.as_ref() else {
            return false;
        };
        let transfer = &peer.snapshot;
        if transfer.index != snapshot.meta.index {
            return true;
        }
        let window =
            self.config.snapshot_chunk_bytes as u64 * self.config.snapshot_inflight_chunks as u64;
        (transfer.sent_bytes < snapshot.data.len() as u64 || !transfer.started)
            && transfer.sent_bytes - transfer.acked_bytes.min(transfer.sent_bytes) < window
    }

    fn send_snapshot_chunks(&mut self, at: usize) {
        let Some(snapshot) = self.snapshot.as_ref() else {
            unreachable!("a transfer needs a snapshot");
        };
        let peer = &mut self.peers[at];
        if peer.snapshot.index != snapshot.meta.index {
            // We compacted again since the transfer began: send the newer snapshot.
            peer.become_snapshot(snapshot.meta.index);
        }
        let total = snapshot.data.len() as u64;
        let chunk = self.config.snapshot_chunk_bytes as u64;
        let window = chunk * self.config.snapshot_inflight_chunks as u64;
        let mut out = Vec::new();
        let transfer = &mut peer.snapshot;
        while (transfer.sent_bytes < total || !transfer.started)
            && transfer.sent_bytes - transfer.acked_bytes.min(transfer.sent_bytes) < window
        {
            let start = transfer.sent_bytes;
            let end = (start + chunk).min(total);
            out.push(Body::Snapshot {
                meta: snapshot.meta.clone(),
                offset: start,
                total_bytes: total,
                data: snapshot.data[start as usize..end as usize].to_vec(),
            });
            transfer.sent_bytes = end;
            transfer.started = true;
        }
        let to = peer.id;
        for body in out {
            self.send_now(to, body);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Sending.

    fn send_now(&mut self, to: NodeId, body: Body) {
        self.messages.push(Message {
            group: self.group,
            from: self.id,
            to,
            term: self.term,
            body,
        });
    }

    fn send_after_persist(&mut self, to: NodeId, body: Body) {
        self.persisted_messages.push(Message {
            group: self.group,
            from: self.id,
            to,
            term: self.term,
            body,
        });
    }

    fn is_member(&self, id: NodeId) -> bool {
        self.membership.is_voter(id) || self.membership.learners.binary_search(&id).is_ok()
    }

    // ---------------------------------------------------------------------------------------
    // Status, for callers, tests and the simulator.

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The group's id.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The vote cast in the current term.
    pub fn vote(&self) -> NodeId {
        self.vote
    }

    /// The leader this node follows ([`NONE`] if none; itself when leading).
    pub fn leader(&self) -> NodeId {
        self.leader
    }

    /// The commit index.
    pub fn committed(&self) -> Index {
        self.log.committed()
    }

    /// The last index handed out for applying.
    pub fn applied(&self) -> Index {
        self.log.applied()
    }

    /// The last index known durable.
    pub fn persisted(&self) -> Index {
        self.log.persisted()
    }

    /// The last log index.
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }

    /// The last log term.
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }

    /// The term of the entry at `index`, if known.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        self.log.term(index)
    }

    /// The entry at `index`, if held in memory.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// The last index and term covered by the snapshot.
    pub fn snapshot_point(&self) -> (Index, Term) {
        self.log.snapshot_point()
    }

    /// Entries held in memory (since the snapshot).
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    /// Whether a leader has committed an entry of its term (and so may serve reads).
    pub fn committed_in_term(&self) -> bool {
        self.committed_in_term
    }

    /// Ticks this node has counted since it started.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Whether a leader's lease is valid now.
    pub fn has_lease(&self) -> bool {
        self.role == Role::Leader && self.ticks < self.lease_until
    }

    /// The membership.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The leader's view of a follower (`None` off the leader, or for an unknown id).
    pub fn progress(&self, id: NodeId) -> Option<&Progress> {
        if self.role != Role::Leader {
            return None;
        }
        self.peers.iter().find(|peer| peer.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three nodes wired together by hand: messages are delivered only when a test says so,
    /// and writes are durable at once.
    struct Group {
        nodes: Vec<Node>,
        /// Messages sent and not yet delivered.
        wire: Vec<Message>,
    }

    impl Group {
        fn new(max_inflight: usize) -> Group {
            let nodes = (1..=3)
                .map(|id| {
                    let mut config = Config::new(id, 9, vec![1, 2, 3], id);
                    config.max_inflight = max_inflight;
                    Node::new(config, Restored::default()).expect("valid")
                })
                .collect();
            Group {
                nodes,
                wire: Vec::new(),
            }
        }

        /// Hands out every node's Ready, persisting at once.
        fn settle(&mut self) {
            for node in &mut self.nodes {
                while node.has_ready() {
                    let ready = node.ready();
                    assert!(!ready.is_empty(), "has_ready promised a Ready: {node:?}");
                    let mark = ready.persisted_mark();
                    self.wire.extend(ready.messages);
                    self.wire.extend(ready.persisted_messages);
                    if let Some(mark) = mark {
                        node.on_persisted(mark);
                    }
                }
            }
        }

        /// Delivers the messages `keep` accepts (the others are lost), then settles.
        fn deliver(&mut self, mut keep: impl FnMut(&Message) -> bool) {
            for message in std::mem::take(&mut self.wire) {
                if keep(&message) {
                    let to = (message.to - 1) as usize;
                    self.nodes[to].step(message).expect("routed correctly");
                }
            }
            self.settle();
        }

        /// Elects node 1.
        fn elect_first(&mut self) {
            while self.nodes[0].role() != Role::PreCandidate {
                self.nodes[0].tick();
            }
            self.settle();
            for _ in 0..10 {
                self.deliver(|_| true);
            }
            assert_eq!(self.nodes[0].role(), Role::Leader);
            assert!(self.nodes[0].committed_in_term());
        }
    }

    #[test]
    fn a_fresh_group_elects_a_leader_and_commits_its_noop_everywhere() {
        let mut group = Group::new(64);
        group.elect_first();
        for node in &group.nodes {
            assert_eq!(node.term(), 1);
            assert_eq!(node.committed(), 1, "the no-op is committed everywhere");
            assert_eq!(node.leader(), 1);
        }
    }

    /// Found by the simulator's first run (seed 0, plan of commit c1c0d4d's parent): with a
    /// window of one append, a commit the window's follower had not heard of made `has_ready`
    /// say yes while `ready` sent nothing, and the caller's loop spun forever.
    #[test]
    fn regression_has_ready_agrees_with_ready_when_the_window_is_full() {
        let mut group = Group::new(1);
        group.elect_first();
        let index = group.nodes[0]
            .propose(Arc::from(&b"x"[..]))
            .expect("leader");
        group.settle();
        // Only node 2 hears the append: the entry commits, node 3's window stays full.
        group.deliver(|message| message.to != 3);
        group.deliver(|message| message.to != 3);
        assert_eq!(group.nodes[0].committed(), index);
        // settle() asserts that every has_ready() is followed by a non-empty Ready.
        group.settle();
        assert!(!group.nodes[0].has_ready());
    }

    /// Found by the simulator (seed 4 of the first runs, and seeds 2, 8, 10: liveness): in the
    /// pipelined state, an append that was lost was never sent again when no newer entry came to
    /// carry it, so the follower never caught up. The answer to a heartbeat round that left
    /// after the append now reveals the loss.
    #[test]
    fn regression_a_lost_append_is_resent_after_a_heartbeat_round() {
        let mut group = Group::new(64);
        group.elect_first();
        let index = group.nodes[0]
            .propose(Arc::from(&b"x"[..]))
            .expect("leader");
        group.settle();
        // The append to node 3 is lost.
        group.deliver(|message| message.to != 3);
        group.deliver(|_| true);
        assert_eq!(group.nodes[2].last_index(), index - 1);
        // One heartbeat round later, node 3 has the entry.
        group.nodes[0].tick();
        group.settle();
        for _ in 0..4 {
            group.deliver(|_| true);
        }
        assert_eq!(group.nodes[2].last_index(), index);
        assert_eq!(group.nodes[2].committed(), index);
    }

    #[test]
    fn a_vote_is_released_only_after_it_is_written() {
        let mut group = Group::new(64);
        // Node 1 campaigns without pre-vote so its real vote requests go out.
        group.nodes[0].become_candidate();
        let ready = group.nodes[0].ready();
        assert!(ready.must_sync);
        assert_eq!(
            ready.hard_state.map(|state| (state.term, state.vote)),
            Some((1, 1))
        );
        assert!(
            ready.messages.is_empty(),
            "vote requests wait for the write"
        );
        assert_eq!(ready.persisted_messages.len(), 2);
        for message in ready.persisted_messages {
            let to = (message.to - 1) as usize;
            group.nodes[to].step(message).expect("routed");
            let answer = group.nodes[to].ready();
            assert!(answer.must_sync);
            assert!(
                answer
                    .persisted_messages
                    .iter()
                    .any(|m| matches!(m.body, Body::VoteResponse { granted: true, .. })),
                "the grant waits for the vote's write"
            );
        }
    }
}
