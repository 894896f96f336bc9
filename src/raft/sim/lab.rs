//! A harness in the manner of MIT 6.5840's Raft tester (`raft/config.go`), on simulated time.
//!
//! The lab tests drive a cluster through calls like `one(cmd, servers, retry)` (propose until
//! `servers` nodes applied it), `check_one_leader()`, `disconnect(i)`, `crash1(i)` and
//! `start1(i)`, with real sleeps between them. [`Lab`] offers the same calls over a [`World`],
//! with sleeps in simulated time, so the whole suite runs in seconds of real time and every
//! run replays from its seed. Every check of the world (election safety, log matching, leader
//! completeness, state machine safety, persistence) runs underneath, after every event; a
//! violation fails the test with the seed.
//!
//! Differences from the course's tester, on purpose:
//! - A new leader commits a no-op first, so the first command lands at index 2, not 1.
//! - "RPCs" are counted as requests sent (votes, pre-votes, appends, heartbeats, snapshot
//!   chunks), since replies are messages of their own here.

use super::machine::mix;
use super::net::LinkFaults;
use super::world::{MS, Options, SECOND, World};
use crate::raft::message::{Data, Index, Term};
use crate::raft::node::Role;
use crate::raft::rng::Rng;

/// The 6.5840 tester's election timeout, against which its sleeps are measured.
pub const ELECTION_TIMEOUT_US: u64 = SECOND;

/// Entries between two snapshots in the snapshot tests (6.5840's `SnapShotInterval`).
pub const SNAPSHOT_INTERVAL: u64 = 10;

/// The largest durable log the snapshot tests allow, in bytes (6.5840's `MAXLOGSIZE`).
pub const MAX_LOG_BYTES: usize = 2000;

/// A cluster under test.
pub struct Lab {
    /// The simulated world.
    pub world: World,
    connected: Vec<bool>,
    /// The test's own randomness (which server, which command), drawn from the seed.
    pub rng: Rng,
    seed: u64,
    reliable: bool,
}

impl Lab {
    /// `nodes` nodes; an unreliable network drops 10% of messages and delays them up to 27 ms;
    /// with `snapshot`, each node compacts its log every [`SNAPSHOT_INTERVAL`] entries.
    pub fn new(nodes: usize, reliable: bool, snapshot: bool, seed: u64) -> Lab {
        let mut options = Options::new(nodes, seed);
        options.faults = if reliable {
            LinkFaults::RELIABLE
        } else {
            LinkFaults::UNRELIABLE
        };
        options.keep_committed_data = true;
        if snapshot {
            options.compact_every = Some(SNAPSHOT_INTERVAL);
            options.snapshot_padding = 100;
            options.config.snapshot_chunk_bytes = 64;
        }
        Lab::with_options(options)
    }

    /// A cluster with the given world options.
    pub fn with_options(mut options: Options) -> Lab {
        options.keep_committed_data = true;
        let seed = options.seed;
        let nodes = options.nodes;
        let reliable = options.faults.drop_per_mille == 0;
        Lab {
            world: World::new(options),
            connected: vec![true; nodes],
            rng: Rng::new(mix(seed ^ 0x1ab)),
            seed,
            reliable,
        }
    }

    /// Nodes.
    pub fn n(&self) -> usize {
        self.connected.len()
    }

    /// Fails the test if the world broke an invariant.
    #[track_caller]
    pub fn check_violation(&self) {
        if let Some(violation) = self.world.violation() {
            panic!("seed {}: {violation}", self.seed);
        }
    }

    /// Fails the test with `message` (and the seed).
    #[track_caller]
    pub fn fatal(&self, message: impl core::fmt::Display) -> ! {
        panic!("seed {}: {message}", self.seed);
    }

    /// Sleeps `duration_us` of simulated time.
    #[track_caller]
    pub fn sleep_us(&mut self, duration_us: u64) {
        self.world.run_for(duration_us);
        self.check_violation();
    }

    /// Cuts node `i` off the network (6.5840's `disconnect`).
    pub fn disconnect(&mut self, i: usize) {
        self.connected[i] = false;
        self.world.net.isolate(i);
        self.world.note(|| format!("LAB disconnect n{}", i + 1));
    }

    /// Reconnects node `i` with the connected nodes (6.5840's `connect`).
    pub fn connect(&mut self, i: usize) {
        self.connected[i] = true;
        let connected = self.connected.clone();
        self.world.net.connect(i, &connected);
        self.world.note(|| format!("LAB connect n{}", i + 1));
    }

    /// Whether node `i` is connected.
    pub fn is_connected(&self, i: usize) -> bool {
        self.connected[i]
    }

    /// Crashes node `i` (6.5840's `crash1`): it is disconnected and loses its memory.
    pub fn crash(&mut self, i: usize) {
        self.disconnect(i);
        self.world.crash(i);
    }

    /// Restarts node `i` from its disk and reconnects it (6.5840's `start1` then `connect`).
    pub fn restart(&mut self, i: usize) {
        self.world.restart(i);
        self.connect(i);
    }

    /// Whether node `i` is up.
    pub fn is_up(&self, i: usize) -> bool {
        self.world.is_up(i)
    }

    /// Drops 10% of messages and delays them up to 27 ms (or not).
    pub fn set_unreliable(&mut self, unreliable: bool) {
        self.reliable = !unreliable;
        let long = self.world.net.faults.long_delay_per_mille;
        let long_us = self.world.net.faults.long_delay_us;
        self.world.net.faults = if unreliable {
            LinkFaults::UNRELIABLE
        } else {
            LinkFaults::RELIABLE
        };
        self.world.net.faults.long_delay_per_mille = long;
        self.world.net.faults.long_delay_us = long_us;
    }

    /// Delays a third of the messages by 200 ms to 2.2 s (6.5840's long reordering).
    pub fn set_long_reordering(&mut self, long: bool) {
        self.world.net.faults.long_delay_per_mille = if long { 333 } else { 0 };
        self.world.net.faults.long_delay_us = (200 * MS, 2200 * MS);
    }

    /// Proposes `data` at node `i` (6.5840's `Start`): `Some((index, term))` if it leads.
    pub fn start(&mut self, i: usize, data: Data) -> Option<(Index, Term)> {
        if !self.world.is_up(i) {
            return None;
        }
        let term = self.world.node(i).expect("up").term();
        let index = self.world.propose(i, data).ok()?;
        self.check_violation();
        Some((index, term))
    }

    /// Node `i`'s term and whether it believes it leads (6.5840's `GetState`).
    pub fn state(&self, i: usize) -> Option<(Term, bool)> {
        self.world
            .node(i)
            .map(|raft| (raft.term(), raft.role() == Role::Leader))
    }

    /// Waits for exactly one leader among the connected nodes and returns it (6.5840's
    /// `checkOneLeader`: ten tries, half a second apart).
    #[track_caller]
    pub fn check_one_leader(&mut self) -> usize {
        for _ in 0..10 {
            let pause = 450 * MS + self.rng.below(100 * MS);
            self.sleep_us(pause);
            let mut best: Option<(Term, usize)> = None;
            let mut leaders: Vec<(Term, usize)> = Vec::new();
            for i in 0..self.n() {
                if !self.connected[i] {
                    continue;
                }
                if let Some((term, true)) = self.state(i) {
                    if leaders.iter().any(|&(other, _)| other == term) {
                        self.fatal(format!("term {term} has more than one leader"));
                    }
                    leaders.push((term, i));
                    if best.is_none_or(|(best_term, _)| term > best_term) {
                        best = Some((term, i));
                    }
                }
            }
            if let Some((_, leader)) = best {
                return leader;
            }
        }
        self.fatal("expected one leader, got none")
    }

    /// The term every connected node agrees on (6.5840's `checkTerms`).
    #[track_caller]
    pub fn check_terms(&self) -> Term {
        let mut agreed = None;
        for i in 0..self.n() {
            if !self.connected[i] {
                continue;
            }
            if let Some((term, _)) = self.state(i) {
                match agreed {
                    None => agreed = Some(term),
                    Some(other) if other != term => self.fatal("servers disagree on term"),
                    Some(_) => {}
                }
            }
        }
        agreed.unwrap_or(0)
    }

    /// No connected node believes it leads (6.5840's `checkNoLeader`).
    #[track_caller]
    pub fn check_no_leader(&self) {
        for i in 0..self.n() {
            if self.connected[i] && self.state(i).is_some_and(|(_, leader)| leader) {
                self.fatal(format!(
                    "expected no leader among connected servers, but {i} claims to be leader"
                ));
            }
        }
    }

    /// How many nodes applied `index`, and what was committed there (6.5840's `nCommitted`;
    /// state machine safety itself is checked by the world at every apply).
    pub fn n_committed(&self, index: Index) -> (usize, Option<Data>) {
        let count = self
            .world
            .nodes
            .iter()
            .filter(|node| node.max_applied >= index)
            .count();
        (count, self.world.committed_data(index).cloned())
    }

    /// Proposes `data` until `expected` nodes applied it (6.5840's `one`): tries each
    /// connected node in turn, waits up to 2 s for agreement, and gives up after 10 s (or at
    /// the first wait that fails, without `retry`). Returns the index.
    #[track_caller]
    pub fn one(&mut self, data: Data, expected: usize, retry: bool) -> Index {
        let deadline = self.world.time_us() + 10 * SECOND;
        let mut starts = 0;
        while self.world.time_us() < deadline {
            let mut index = None;
            for _ in 0..self.n() {
                starts = (starts + 1) % self.n();
                if self.connected[starts] {
                    if let Some((at, _)) = self.start(starts, data.clone()) {
                        index = Some(at);
                        break;
                    }
                }
            }
            match index {
                Some(index) => {
                    let waited_from = self.world.time_us();
                    while self.world.time_us() < waited_from + 2 * SECOND {
                        let (count, committed) = self.n_committed(index);
                        if count > 0 && count >= expected && committed.as_ref() == Some(&data) {
                            return index;
                        }
                        self.sleep_us(20 * MS);
                    }
                    if !retry {
                        self.fatal(format!("one({data:?}) failed to reach agreement"));
                    }
                }
                None => self.sleep_us(50 * MS),
            }
        }
        self.fatal(format!("one({data:?}) failed to reach agreement"))
    }

    /// Waits for `n` nodes to apply `index` (6.5840's `wait`); `None` if a node moved past
    /// `start_term` first (the command may then never commit).
    #[track_caller]
    pub fn wait(&mut self, index: Index, n: usize, start_term: Option<Term>) -> Option<Data> {
        let mut pause = 10 * MS;
        for _ in 0..30 {
            let (count, _) = self.n_committed(index);
            if count >= n {
                break;
            }
            self.sleep_us(pause);
            if pause < SECOND {
                pause *= 2;
            }
            if let Some(term) = start_term {
                if (0..self.n()).any(|i| self.state(i).is_some_and(|(now, _)| now > term)) {
                    return None;
                }
            }
        }
        let (count, data) = self.n_committed(index);
        if count < n {
            self.fatal(format!(
                "only {count} decided for index {index}; wanted {n}"
            ));
        }
        data
    }

    /// Requests sent so far (6.5840's `rpcTotal`).
    pub fn rpc_total(&self) -> u64 {
        self.world.stats.requests_sent
    }

    /// Bytes sent so far (6.5840's `bytesTotal`).
    pub fn bytes_total(&self) -> u64 {
        self.world.stats.bytes_sent
    }

    /// The largest durable log among the nodes, in bytes (6.5840's `LogSize`).
    pub fn max_log_bytes(&self) -> usize {
        self.world
            .nodes
            .iter()
            .map(|node| node.disk.log_bytes())
            .max()
            .unwrap_or(0)
    }

    /// A command payload for the number `value` (the course's tests propose integers).
    pub fn command(value: u64) -> Data {
        let mut data = vec![0x1a];
        data.extend_from_slice(&value.to_le_bytes());
        data.into()
    }

    /// A random command.
    pub fn random_command(&mut self) -> Data {
        let value = self.rng.next_u64();
        Lab::command(value)
    }
}
