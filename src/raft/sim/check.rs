//! The safety properties the simulator checks after every step, and what a violation records.
//!
//! Each check is incremental, so checking after every step stays cheap:
//!
//! - **Election safety**: at most one leader per term (a map term -> leader).
//! - **Log matching**: two entries with the same index and term carry the same payload and
//!   follow an entry of the same term. By induction that makes the logs identical up to
//!   there; it is checked on every entry a node appends.
//! - **Leader completeness**: a leader of term `T` holds every entry committed in a term before
//!   `T` (checked for the highest such entry; log matching covers the rest).
//! - **Committed never lost**: when an index is first committed, a majority holds it durably;
//!   no durable write ever removes a committed entry (except into a snapshot).
//! - **State machine safety**: every node applies, at each index, the entry that was committed
//!   there, and reaches the same digest.
//! - **Apply order**: each node applies index `applied + 1` and nothing else (in order, once).
//! - **No stale read**: a read returns a state at least as new as every state any node had
//!   applied when the read began.
//! - **Persistence contract**: a vote, a vote grant or an append acknowledgement leaves only once
//!   what it promises is durable.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use crate::raft::message::{Index, NodeId, Term};

/// A property the simulator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invariant {
    /// Two leaders in one term.
    ElectionSafety,
    /// Same index and term, different entries or different predecessors.
    LogMatching,
    /// A leader lacks an entry committed before its term.
    LeaderCompleteness,
    /// A committed entry is not durable on a majority, or was removed from a disk.
    CommittedLost,
    /// Nodes applied different entries (or reached different states) at one index.
    StateMachineSafety,
    /// A node applied out of order or twice.
    ApplyOrder,
    /// A read returned a state older than one applied before it began.
    StaleRead,
    /// A message left before what it promises was durable.
    PersistenceContract,
    /// After the faults healed, no leader or no progress within the bound.
    Liveness,
    /// A node refused a message the simulator routed correctly, or the wire codec failed.
    Protocol,
    /// The core panicked (an internal assertion).
    Panic,
}

impl Invariant {
    /// The name printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::ElectionSafety => "election safety",
            Invariant::LogMatching => "log matching",
            Invariant::LeaderCompleteness => "leader completeness",
            Invariant::CommittedLost => "committed entry lost",
            Invariant::StateMachineSafety => "state machine safety",
            Invariant::ApplyOrder => "apply in order, exactly once",
            Invariant::StaleRead => "no stale read",
            Invariant::PersistenceContract => "persistence contract",
            Invariant::Liveness => "liveness",
            Invariant::Protocol => "protocol",
            Invariant::Panic => "panic",
        }
    }
}

/// The first property a run broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// Simulated time, microseconds.
    pub time_us: u64,
    /// What exactly.
    pub detail: String,
}

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} at {:.3} s: {}",
            self.invariant.name(),
            self.time_us as f64 / 1e6,
            self.detail
        )
    }
}

/// An index once committed.
#[derive(Debug, Clone, Copy)]
pub struct Chosen {
    /// The entry's term.
    pub term: Term,
    /// Hash of its payload.
    pub data_hash: u64,
    /// The term of the node that first committed it (the leader that committed it).
    pub commit_term: Term,
}

type Fixed = BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

/// The checker's memory of the whole run.
#[derive(Debug, Default)]
pub struct Checker {
    leaders: BTreeMap<Term, NodeId>,
    /// `(index, term)` -> (payload hash, previous entry's term).
    seen: HashMap<(Index, Term), (u64, Term), Fixed>,
    /// `chosen[i - 1]`: index `i`.
    chosen: Vec<Chosen>,
    /// `digests[i - 1]`: the state digest after applying index `i`.
    digests: Vec<u64>,
    /// The highest index any node has applied.
    max_applied: Index,
    violation: Option<Violation>,
}

impl Checker {
    /// The first violation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Records a violation (only the first is kept).
    pub fn fail(&mut self, invariant: Invariant, time_us: u64, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation {
                invariant,
                time_us,
                detail,
            });
        }
    }

    /// The highest index any node has applied so far.
    pub fn max_applied(&self) -> Index {
        self.max_applied
    }

    /// Indexes committed so far.
    pub fn chosen_len(&self) -> Index {
        self.chosen.len() as Index
    }

    /// The committed entry at `index`.
    pub fn chosen(&self, index: Index) -> Option<&Chosen> {
        index
            .checked_sub(1)
            .and_then(|at| self.chosen.get(at as usize))
    }

    /// Distinct `(index, term)` entries seen.
    pub fn entries_seen(&self) -> usize {
        self.seen.len()
    }

    /// Terms that had a leader.
    pub fn leader_terms(&self) -> usize {
        self.leaders.len()
    }

    /// Election safety: `node` leads `term`.
    pub fn leader(&mut self, time_us: u64, term: Term, node: NodeId) {
        match self.leaders.get(&term) {
            Some(&other) if other != node => self.fail(
                Invariant::ElectionSafety,
                time_us,
                format!("nodes {other} and {node} both lead term {term}"),
            ),
            Some(_) => {}
            None => {
                self.leaders.insert(term, node);
            }
        }
    }

    /// Log matching, for one entry a node appended after an entry of `prev_term`.
    pub fn appended(
        &mut self,
        time_us: u64,
        node: NodeId,
        index: Index,
        term: Term,
        data_hash: u64,
        prev_term: Term,
    ) {
        match self.seen.get(&(index, term)) {
            Some(&(hash, prev)) => {
                if hash != data_hash || prev != prev_term {
                    self.fail(
                        Invariant::LogMatching,
                        time_us,
                        format!(
                            "node {node} holds a different entry at ({index}, term {term}): \
                             payload {data_hash:x} after term {prev_term}, first seen payload \
                             {hash:x} after term {prev}"
                        ),
                    );
                }
            }
            None => {
                self.seen.insert((index, term), (data_hash, prev_term));
            }
        }
    }

    /// A node's commit index covers `index`, whose entry it holds with `term` and payload
    /// hash; the node is in `node_term`. Returns whether the index is newly committed (the
    /// caller then checks it is durable on a majority).
    pub fn committed(
        &mut self,
        time_us: u64,
        node: NodeId,
        index: Index,
        term: Term,
        data_hash: u64,
        node_term: Term,
    ) -> bool {
        let len = self.chosen.len() as Index;
        if index <= len {
            let chosen = self.chosen[(index - 1) as usize];
            if chosen.term != term || chosen.data_hash != data_hash {
                self.fail(
                    Invariant::StateMachineSafety,
                    time_us,
                    format!(
                        "node {node} commits ({index}, term {term}) but ({index}, term {}) was \
                         committed before",
                        chosen.term
                    ),
                );
            }
            return false;
        }
        if index != len + 1 {
            self.fail(
                Invariant::Protocol,
                time_us,
                format!("node {node} commits {index} but only {len} were seen committed"),
            );
            return false;
        }
        self.chosen.push(Chosen {
            term,
            data_hash,
            commit_term: node_term,
        });
        true
    }

    /// Leader completeness: the newest entry committed in a term before `leader_term`, if any,
    /// as `(index, its term)`.
    pub fn must_hold(&self, leader_term: Term) -> Option<(Index, Term)> {
        // commit_term does not fall along `chosen`: search for the last one below leader_term.
        let count = self
            .chosen
            .partition_point(|chosen| chosen.commit_term < leader_term);
        (count > 0).then(|| (count as Index, self.chosen[count - 1].term))
    }

    /// State machine safety and apply order for one applied entry. `applied_before` is the
    /// node's applied index before it; `digest` its state digest after it.
    #[allow(clippy::too_many_arguments)]
    pub fn applied(
        &mut self,
        time_us: u64,
        node: NodeId,
        applied_before: Index,
        index: Index,
        term: Term,
        data_hash: u64,
        digest: u64,
    ) {
        if index != applied_before + 1 {
            self.fail(
                Invariant::ApplyOrder,
                time_us,
                format!("node {node} applies {index} after {applied_before}"),
            );
            return;
        }
        match self.chosen(index) {
            Some(chosen) if chosen.term == term && chosen.data_hash == data_hash => {}
            Some(chosen) => {
                let detail = format!(
                    "node {node} applies ({index}, term {term}) but ({index}, term {}) was \
                     committed",
                    chosen.term
                );
                self.fail(Invariant::StateMachineSafety, time_us, detail);
                return;
            }
            None => {
                self.fail(
                    Invariant::StateMachineSafety,
                    time_us,
                    format!("node {node} applies {index}, which was never seen committed"),
                );
                return;
            }
        }
        self.state_at(time_us, node, index, digest);
        self.max_applied = self.max_applied.max(index);
    }

    /// A node's state after `index` has digest `digest` (an apply, or a snapshot installed).
    pub fn state_at(&mut self, time_us: u64, node: NodeId, index: Index, digest: u64) {
        let len = self.digests.len() as Index;
        if index == 0 {
            return;
        }
        if index <= len {
            let expected = self.digests[(index - 1) as usize];
            if expected != digest {
                self.fail(
                    Invariant::StateMachineSafety,
                    time_us,
                    format!("node {node} reaches state {digest:x} at {index}, others {expected:x}"),
                );
            }
        } else if index == len + 1 {
            self.digests.push(digest);
        } else {
            self.fail(
                Invariant::StateMachineSafety,
                time_us,
                format!("node {node} has a state at {index} but states are known up to {len}"),
            );
        }
        self.max_applied = self.max_applied.max(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_can_fail() {
        let mut checker = Checker::default();
        checker.leader(1, 3, 1);
        checker.leader(2, 3, 1);
        assert!(checker.violation().is_none());
        checker.leader(3, 3, 2);
        assert_eq!(
            checker.violation().map(|v| v.invariant),
            Some(Invariant::ElectionSafety)
        );

        let mut checker = Checker::default();
        checker.appended(1, 1, 5, 2, 0xaa, 1);
        checker.appended(1, 2, 5, 2, 0xaa, 2);
        assert_eq!(
            checker.violation().map(|v| v.invariant),
            Some(Invariant::LogMatching)
        );

        let mut checker = Checker::default();
        assert!(checker.committed(1, 1, 1, 1, 0xa, 1));
        assert!(!checker.committed(1, 2, 1, 1, 0xa, 1));
        checker.applied(1, 1, 0, 1, 1, 0xa, 77);
        checker.applied(1, 2, 0, 1, 1, 0xa, 78);
        assert_eq!(
            checker.violation().map(|v| v.invariant),
            Some(Invariant::StateMachineSafety)
        );

        let mut checker = Checker::default();
        assert!(checker.committed(1, 1, 1, 1, 0xa, 1));
        checker.applied(1, 1, 5, 1, 1, 0xa, 77);
        assert_eq!(
            checker.violation().map(|v| v.invariant),
            Some(Invariant::ApplyOrder)
        );
    }

    #[test]
    fn must_hold_is_the_last_entry_committed_before_the_term() {
        let mut checker = Checker::default();
        for (index, commit_term) in [(1, 1), (2, 1), (3, 2), (4, 4)] {
            assert!(checker.committed(0, 1, index, commit_term, index, commit_term));
        }
        assert_eq!(checker.must_hold(1), None);
        assert_eq!(checker.must_hold(2), Some((2, 1)));
        assert_eq!(checker.must_hold(3), Some((3, 2)));
        assert_eq!(checker.must_hold(5), Some((4, 4)));
    }
}
