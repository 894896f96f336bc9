//! The simulated world: nodes with their disks and state machines, a network, a clock, and an
//! event queue, all driven from one seed.
//!
//! Time is simulated in microseconds. Every happening is an event in a queue ordered by
//! `(time, sequence number)`, so two runs with the same seed process the same events in the
//! same order: a run is a pure function of its seed and its options. Each node ticks with its
//! own period (skewed clocks); each message draws its own fate from the network; each write
//! draws its own latency.
//!
//! After every event the world checks the invariants of [`super::check`] on the node that
//! moved, and records the first violation.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

use super::check::{Checker, Invariant, Violation};
use super::disk::{Disk, PendingWrite, WriteQueue};
use super::machine::{Command, Machine, hash_bytes, mix};
use super::net::{LinkFaults, Net};
use crate::raft::config::Config;
use crate::raft::message::{Body, Data, Entry, EntryKind, Index, Message, NodeId, Term};
use crate::raft::node::{Node, ProposeError, ReadError, ReadState, Restored, Role};
use crate::raft::rng::Rng;

/// Microseconds in a millisecond.
pub const MS: u64 = 1_000;
/// Microseconds in a second.
pub const SECOND: u64 = 1_000_000;

/// Turns a message into its wire form and back, returning the copy and its size in bytes. The
/// simulator passes Rust values by default; a test mode passes every message through the real
/// codec (`proto::peer`) instead, which this module must not import.
pub type Wire = Box<dyn FnMut(&Message) -> Result<(Message, usize), String>>;

/// How a world is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Nodes (ids `1..=nodes`).
    pub nodes: usize,
    /// The seed everything is drawn from.
    pub seed: u64,
    /// The node configuration; `id`, `voters` and `seed` are set per node.
    pub config: Config,
    /// Network faults.
    pub faults: LinkFaults,
    /// Each node's tick period, microseconds (skewed clocks differ here).
    pub tick_us: Vec<u64>,
    /// Latency of a write (its fsync), microseconds: `low..high`; `(0, 0)` completes writes at
    /// once.
    pub write_us: (u64, u64),
    /// Chance a write is slow, per mille.
    pub slow_write_per_mille: u32,
    /// The slow write's latency, microseconds.
    pub slow_write_us: (u64, u64),
    /// Chance that a crash tears the oldest unfinished write, per mille.
    pub torn_write_per_mille: u32,
    /// Each node compacts its log after applying this many entries past its last snapshot.
    pub compact_every: Option<u64>,
    /// Filler bytes in state-machine snapshots (so transfers take several chunks).
    pub snapshot_padding: usize,
    /// Report applied client commands as [`Notice`]s.
    pub notify_applies: bool,
    /// Keep the payload of every committed entry (for the 6.5840-style `n_committed`).
    pub keep_committed_data: bool,
    /// Record a readable trace of every event.
    pub trace: bool,
}

impl Options {
    /// `nodes` nodes with default settings: reliable network, 100 ms ticks, instant writes.
    pub fn new(nodes: usize, seed: u64) -> Options {
        Options {
            nodes,
            seed,
            config: Config::new(1, 1, vec![1], 0),
            faults: LinkFaults::RELIABLE,
            tick_us: vec![100 * MS; nodes],
            write_us: (0, 0),
            slow_write_per_mille: 0,
            slow_write_us: (0, 0),
            torn_write_per_mille: 0,
            compact_every: None,
            snapshot_padding: 0,
            notify_applies: false,
            keep_committed_data: false,
            trace: false,
        }
    }
}

/// Something a client of the world may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `node` applied a client command at `index`.
    Applied {
        /// The node.
        node: usize,
        /// Where.
        index: Index,
        /// The command.
        command: Command,
    },
    /// `node` answered the read `ctx` from its state after `state_index`.
    Read {
        /// The node.
        node: usize,
        /// The read's tag.
        ctx: u64,
        /// The index of the state the answer reflects.
        state_index: Index,
    },
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Node ticks.
    pub ticks: u64,
    /// Messages handed to the network.
    pub messages_sent: u64,
    /// Of which requests (votes, appends, heartbeats, snapshot chunks): 6.5840's "RPCs".
    pub requests_sent: u64,
    /// Bytes handed to the network (encoded size with a wire codec, else an estimate).
    pub bytes_sent: u64,
    /// Messages delivered to a live node.
    pub messages_delivered: u64,
    /// Entries applied, over all nodes.
    pub applied: u64,
    /// Crashes.
    pub crashes: u64,
    /// Writes torn by a crash.
    pub torn_writes: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
}

enum Event {
    Tick(usize, u32),
    Deliver(Message),
    WriteDone(usize, u32),
}

struct Scheduled {
    time_us: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time_us, self.seq) == (other.time_us, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse, so the earliest event comes out first.
        (other.time_us, other.seq).cmp(&(self.time_us, self.seq))
    }
}

/// One simulated node: its Raft core (none while crashed), disk and state machine.
pub struct SimNode {
    /// Its id.
    pub id: NodeId,
    /// The core, while the node is up.
    pub raft: Option<Node>,
    /// What survives a crash.
    pub disk: Disk,
    writes: WriteQueue,
    /// The state machine (rebuilt from the disk's snapshot at a restart).
    pub machine: Machine,
    /// Tick period, microseconds.
    pub tick_us: u64,
    /// Incarnation: bumped by each crash, so events of a dead incarnation are ignored.
    pub epoch: u32,
    /// Confirmed reads waiting for the state machine to catch up.
    reads: Vec<ReadState>,
    /// The commit index last checked.
    commit_seen: Index,
    /// Applied entries since the last compaction.
    since_compaction: u64,
    /// The highest index this node ever applied, in any incarnation.
    pub max_applied: Index,
}

/// The simulated world.
pub struct World {
    time_us: u64,
    seq: u64,
    events: BinaryHeap<Scheduled>,
    /// The nodes, by index (`id = index + 1`).
    pub nodes: Vec<SimNode>,
    /// The network.
    pub net: Net,
    rng: Rng,
    /// The invariant checker.
    pub checker: Checker,
    options: Options,
    wire: Option<Wire>,
    notices: Vec<Notice>,
    trace: Option<String>,
    fingerprint: u64,
    committed_data: Vec<Data>,
    /// Counters.
    pub stats: Stats,
}

impl World {
    /// A world of fresh nodes, each with its first tick at a random phase of its period.
    pub fn new(options: Options) -> World {
        assert_eq!(options.tick_us.len(), options.nodes);
        let mut rng = Rng::new(options.seed);
        let net = Net::new(options.nodes, options.faults, rng.fork());
        let mut world = World {
            time_us: 0,
            seq: 0,
            events: BinaryHeap::new(),
            nodes: Vec::with_capacity(options.nodes),
            net,
            rng,
            checker: Checker::default(),
            wire: None,
            notices: Vec::new(),
            trace: options.trace.then(String::new),
            fingerprint: options.seed,
            committed_data: Vec::new(),
            stats: Stats::default(),
            options,
        };
        for index in 0..world.options.nodes {
            world.nodes.push(SimNode {
                id: index as NodeId + 1,
                raft: None,
                disk: Disk::default(),
                writes: WriteQueue::new(),
                machine: Machine::new(world.options.snapshot_padding),
                tick_us: world.options.tick_us[index],
                epoch: 0,
                reads: Vec::new(),
                commit_seen: 0,
                since_compaction: 0,
                max_applied: 0,
            });
            world.boot(index);
        }
        world
    }

    /// Passes every message through `wire` (encode and decode) from now on.
    pub fn set_wire(&mut self, wire: Wire) {
        self.wire = Some(wire);
    }

    /// The options the world was built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Changes node `index`'s tick period from its next tick on (a clock that starts to drift).
    pub fn set_tick_us(&mut self, index: usize, tick_us: u64) {
        assert!(tick_us > 0);
        self.nodes[index].tick_us = tick_us;
    }

    /// Changes the disk faults from now on: slow writes (per mille) and torn writes at crashes
    /// (per mille).
    pub fn set_disk_faults(&mut self, slow_write_per_mille: u32, torn_write_per_mille: u32) {
        self.options.slow_write_per_mille = slow_write_per_mille;
        self.options.torn_write_per_mille = torn_write_per_mille;
    }

    /// Simulated time, microseconds.
    pub fn time_us(&self) -> u64 {
        self.time_us
    }

    /// The world's own generator (for drivers that must draw from the run's seed).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The first violation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.checker.violation()
    }

    /// Records a violation found by a driver (a stale read, a liveness failure).
    pub fn fail(&mut self, invariant: Invariant, detail: String) {
        let time = self.time_us;
        self.note(|| format!("VIOLATION {}: {detail}", invariant.name()));
        self.checker.fail(invariant, time, detail);
    }

    /// The trace so far (empty unless `options.trace`).
    pub fn trace(&self) -> &str {
        self.trace.as_deref().unwrap_or("")
    }

    /// A digest of every event processed: equal digests, equal runs (with very high odds).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Adds a line to the trace.
    pub fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = self.trace.as_mut() {
            let _ = writeln!(trace, "{:>10.3} {}", self.time_us as f64 / 1e3, line());
        }
    }

    fn stamp(&mut self, kind: u64, a: u64, b: u64) {
        self.fingerprint = mix(self.fingerprint ^ mix(self.time_us ^ (kind << 56) ^ (a << 40) ^ b));
    }

    /// The node at `index`, if it is up.
    pub fn node(&self, index: usize) -> Option<&Node> {
        self.nodes[index].raft.as_ref()
    }

    /// Whether the node at `index` is up.
    pub fn is_up(&self, index: usize) -> bool {
        self.nodes[index].raft.is_some()
    }

    /// Takes the notices gathered so far.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The payload committed at `index` (with `keep_committed_data`).
    pub fn committed_data(&self, index: Index) -> Option<&Data> {
        index
            .checked_sub(1)
            .and_then(|at| self.committed_data.get(at as usize))
    }

    fn schedule(&mut self, time_us: u64, event: Event) {
        self.seq += 1;
        self.events.push(Scheduled {
            time_us,
            seq: self.seq,
            event,
        });
    }

    /// When the next event happens.
    pub fn peek_time(&self) -> Option<u64> {
        self.events.peek().map(|scheduled| scheduled.time_us)
    }

    /// Processes the next event. Returns false when there is none.
    pub fn step(&mut self) -> bool {
        let Some(Scheduled { time_us, event, .. }) = self.events.pop() else {
            return false;
        };
        debug_assert!(time_us >= self.time_us);
        self.time_us = time_us;
        self.stats.events += 1;
        match event {
            Event::Tick(index, epoch) => {
                if self.nodes[index].epoch != epoch || self.nodes[index].raft.is_none() {
                    return true;
                }
                self.stats.ticks += 1;
                self.stamp(1, index as u64, 0);
                if let Some(trace) = self.trace.as_mut() {
                    let _ = writeln!(trace, "{:>10.3} n{} tick", time_us as f64 / 1e3, index + 1);
                }
                self.nodes[index].raft.as_mut().expect("up").tick();
                let next = time_us + self.nodes[index].tick_us;
                self.schedule(next, Event::Tick(index, epoch));
                self.settle(index);
            }
            Event::Deliver(message) => self.deliver(message),
            Event::WriteDone(index, epoch) => {
                if self.nodes[index].epoch == epoch && self.nodes[index].raft.is_some() {
                    self.settle(index);
                }
            }
        }
        true
    }

    /// Processes every event up to `time_us`, then sets the clock there.
    pub fn run_until(&mut self, time_us: u64) {
        while self.peek_time().is_some_and(|next| next <= time_us) {
            self.step();
        }
        self.time_us = self.time_us.max(time_us);
    }

    /// Runs for `duration_us` of simulated time.
    pub fn run_for(&mut self, duration_us: u64) {
        self.run_until(self.time_us + duration_us);
    }

    fn node_config(&self, index: usize) -> Config {
        let mut config = self.options.config.clone();
        config.id = index as NodeId + 1;
        config.voters = (1..=self.options.nodes as NodeId).collect();
        config.seed =
            mix(self.options.seed ^ mix((index as u64) << 32 | u64::from(self.nodes[index].epoch)));
        config
    }

    /// Starts the node at `index` from its disk.
    fn boot(&mut self, index: usize) {
        let config = self.node_config(index);
        let node = &mut self.nodes[index];
        let restored = Restored {
            hard_state: node.disk.hard_state,
            snapshot: node.disk.snapshot.clone(),
            entries: node.disk.entries.clone(),
        };
        let raft = Node::new(config, restored).expect("the simulator's configurations are valid");
        node.machine = match &node.disk.snapshot {
            Some(snapshot) => Machine::decode(&snapshot.data).expect("snapshots decode"),
            None => Machine::new(self.options.snapshot_padding),
        };
        node.commit_seen = raft.snapshot_point().0;
        node.since_compaction = 0;
        node.raft = Some(raft);
        let (applied, digest) = (node.machine.applied, node.machine.digest);
        let id = node.id;
        let time = self.time_us;
        self.checker.state_at(time, id, applied, digest);
        let phase = self.rng.below(self.nodes[index].tick_us.max(1));
        let epoch = self.nodes[index].epoch;
        self.schedule(self.time_us + phase + 1, Event::Tick(index, epoch));
        self.settle(index);
    }

    /// Crashes the node at `index`: its memory and unfinished writes are lost (the oldest may
    /// be torn, if the options say so).
    pub fn crash(&mut self, index: usize) {
        if self.nodes[index].raft.is_none() {
            return;
        }
        self.stats.crashes += 1;
        let tear = self.rng.chance(self.options.torn_write_per_mille);
        let keep = self.rng.next_u64();
        let node = &mut self.nodes[index];
        node.raft = None;
        node.epoch += 1;
        node.reads.clear();
        let mut torn = None;
        if tear {
            if let Some(write) = node.writes.front() {
                // The snapshot and a prefix of the entries reach the disk; the next entry is
                // torn and cut off by recovery; the hard state (written last) is lost.
                if let Some(snapshot) = &write.snapshot {
                    node.disk.write_snapshot(snapshot);
                }
                let kept = if write.entries.is_empty() {
                    0
                } else {
                    (keep % write.entries.len() as u64) as usize
                };
                node.disk.write_entries(&write.entries[..kept]);
                torn = Some(kept);
            }
        }
        node.writes.clear();
        if torn.is_some() {
            self.stats.torn_writes += 1;
        }
        self.stamp(2, index as u64, 0);
        self.note(|| match torn {
            Some(kept) => format!("n{} CRASH (torn write: {kept} entries kept)", index + 1),
            None => format!("n{} CRASH", index + 1),
        });
    }

    /// Restarts a crashed node from its disk.
    pub fn restart(&mut self, index: usize) {
        if self.nodes[index].raft.is_some() {
            return;
        }
        self.stamp(3, index as u64, 0);
        self.note(|| format!("n{} RESTART", index + 1));
        self.boot(index);
    }

    /// Proposes `data` at the node at `index` (6.5840's `Start`).
    pub fn propose(&mut self, index: usize, data: Data) -> Result<Index, ProposeError> {
        let Some(raft) = self.nodes[index].raft.as_mut() else {
            return Err(ProposeError::NotLeader {
                leader: crate::raft::NONE,
            });
        };
        let result = raft.propose(data);
        self.stamp(4, index as u64, result.as_ref().copied().unwrap_or(0));
        self.settle(index);
        result
    }

    /// Asks the node at `index` for a linearizable read tagged `ctx`; its answer comes as a
    /// [`Notice::Read`].
    pub fn read(&mut self, index: usize, ctx: u64) -> Result<(), ReadError> {
        let Some(raft) = self.nodes[index].raft.as_mut() else {
            return Err(ReadError::NotLeader {
                leader: crate::raft::NONE,
            });
        };
        let result = raft.read_index(ctx);
        self.stamp(5, index as u64, ctx);
        self.settle(index);
        result
    }

    fn deliver(&mut self, message: Message) {
        let to = (message.to - 1) as usize;
        let from = (message.from - 1) as usize;
        if self.nodes[to].raft.is_none() || !self.net.linked(from, to) {
            return;
        }
        self.stats.messages_delivered += 1;
        self.stamp(6, message.from << 8 | message.to, message.term);
        if self.trace.is_some() {
            let line = describe(&message);
            self.note(|| line);
        }
        let result = self.nodes[to].raft.as_mut().expect("up").step(message);
        if let Err(error) = result {
            self.fail(
                Invariant::Protocol,
                format!("node {} refused a message: {error:?}", to + 1),
            );
        }
        self.settle(to);
    }

    fn send(&mut self, message: Message) {
        let from = (message.from - 1) as usize;
        let to = (message.to - 1) as usize;
        let (message, bytes) = match self.wire.as_mut() {
            Some(wire) => match wire(&message) {
                Ok((copy, bytes)) => {
                    if copy != message {
                        let detail =
                            format!("the codec changed a message: {message:?} became {copy:?}");
                        self.fail(Invariant::Protocol, detail);
                    }
                    (copy, bytes)
                }
                Err(error) => {
                    self.fail(Invariant::Protocol, format!("the codec failed: {error}"));
                    return;
                }
            },
            None => {
                let bytes = estimate_bytes(&message);
                (message, bytes)
            }
        };
        self.stats.messages_sent += 1;
        if message.body.is_request() {
            self.stats.requests_sent += 1;
        }
        self.stats.bytes_sent += bytes as u64;
        let (delays, copies) = self.net.deliveries(from, to);
        for &delay in &delays[..copies] {
            let at = self.time_us + delay;
            self.schedule(at, Event::Deliver(message.clone()));
        }
    }

    /// The persistence contract, checked as a message leaves: what it promises must be on the
    /// sender's disk. `promise` is the `(index, term)` an append acknowledgement vouches for.
    fn check_contract(&mut self, index: usize, message: &Message, promise: Option<(Index, Term)>) {
        let disk = &self.nodes[index].disk;
        let broken = match message.body {
            Body::AppendResponse { reject: false, .. } => match promise {
                Some((at, term)) => (!disk.holds(at, term)).then(|| {
                    format!(
                        "node {} acknowledged ({at}, term {term}) before it was durable",
                        index + 1
                    )
                }),
                None => None,
            },
            Body::VoteResponse {
                pre: false,
                granted: true,
            } => {
                let state = disk.hard_state;
                (state.term < message.term
                    || (state.term == message.term && state.vote != message.to))
                    .then(|| {
                        format!(
                            "node {} granted its vote in term {} to {} before writing it \
                             (disk: term {}, vote {})",
                            index + 1,
                            message.term,
                            message.to,
                            state.term,
                            state.vote
                        )
                    })
            }
            Body::Vote { pre: false, .. } => {
                let state = disk.hard_state;
                (state.term < message.term
                    || (state.term == message.term && state.vote != message.from))
                    .then(|| {
                        format!(
                            "node {} asked for votes in term {} before writing its own \
                             (disk: term {}, vote {})",
                            index + 1,
                            message.term,
                            state.term,
                            state.vote
                        )
                    })
            }
            _ => None,
        };
        if let Some(detail) = broken {
            self.fail(Invariant::PersistenceContract, detail);
        }
    }

    /// Hands the node at `index` everything it has ready, completes its due writes, and
    /// checks what changed; repeats until it is quiet.
    fn settle(&mut self, index: usize) {
        loop {
            self.observe(index);
            let now = self.time_us;
            if self.nodes[index]
                .writes
                .front()
                .is_some_and(|write| write.done_at_us <= now)
            {
                self.complete_write(index);
                continue;
            }
            let Some(raft) = self.nodes[index].raft.as_mut() else {
                return;
            };
            if !raft.has_ready() {
                return;
            }
            let ready = raft.ready();
            if ready.is_empty() {
                let detail = format!(
                    "node {} said it had a Ready, then handed out nothing: {raft:?}",
                    index + 1
                );
                self.fail(Invariant::Protocol, detail);
                return;
            }
            self.handle_ready(index, ready);
        }
    }

    fn handle_ready(&mut self, index: usize, ready: crate::raft::Ready) {
        let mark = ready.persisted_mark();
        let time = self.time_us;
        let id = self.nodes[index].id;
        // Log matching, on every entry appended.
        if let Some(first) = ready.entries.first() {
            let raft = self.nodes[index].raft.as_ref().expect("up");
            let mut prev_term = raft.term_at(first.index - 1);
            let mut checks = Vec::with_capacity(ready.entries.len());
            for entry in &ready.entries {
                if let Some(prev) = prev_term {
                    checks.push((entry.index, entry.term, hash_bytes(&entry.data), prev));
                }
                prev_term = Some(entry.term);
            }
            for (at, term, hash, prev) in checks {
                self.checker.appended(time, id, at, term, hash, prev);
            }
        }
        for message in &ready.messages {
            self.check_contract(index, message, None);
        }
        for message in ready.messages {
            self.send(message);
        }
        let raft = self.nodes[index].raft.as_ref().expect("up");
        let messages = ready
            .persisted_messages
            .into_iter()
            .map(|message| {
                let promise = match message.body {
                    Body::AppendResponse {
                        reject: false,
                        index: at,
                        ..
                    } if at > 0 => Some((at, raft.term_at(at).unwrap_or(0))),
                    _ => None,
                };
                (message, promise)
            })
            .collect();
        // The write.
        let latency = self.write_latency();
        let node = &mut self.nodes[index];
        let done_at_us = node
            .writes
            .back()
            .map_or(time + latency, |last| last.done_at_us.max(time + latency));
        let epoch = node.epoch;
        node.writes.push_back(PendingWrite {
            done_at_us,
            snapshot: ready.snapshot.clone(),
            entries: ready.entries,
            hard_state: ready.hard_state,
            messages,
            mark,
        });
        if done_at_us > time {
            self.schedule(done_at_us, Event::WriteDone(index, epoch));
        }
        // The state machine: install the snapshot, apply the committed entries.
        if let Some(snapshot) = ready.snapshot {
            self.stats.snapshots_installed += 1;
            let Some(machine) = Machine::decode(&snapshot.data) else {
                self.fail(
                    Invariant::Protocol,
                    format!("node {id} received a snapshot that does not decode"),
                );
                return;
            };
            if machine.applied != snapshot.meta.index {
                self.fail(
                    Invariant::StateMachineSafety,
                    format!(
                        "node {id} installs a snapshot at {} holding state {}",
                        snapshot.meta.index, machine.applied
                    ),
                );
            }
            self.checker
                .state_at(time, id, machine.applied, machine.digest);
            self.note(|| format!("n{id} installs snapshot at {}", snapshot.meta.index));
            let node = &mut self.nodes[index];
            node.machine = machine;
            node.since_compaction = 0;
            node.max_applied = node.max_applied.max(snapshot.meta.index);
        }
        for entry in &ready.committed_entries {
            self.apply(index, entry);
        }
        let node = &mut self.nodes[index];
        node.reads.extend(ready.read_states);
        self.serve_reads(index);
        self.maybe_compact(index);
    }

    fn write_latency(&mut self) -> u64 {
        let (low, high) = self.options.write_us;
        if self.rng.chance(self.options.slow_write_per_mille) {
            let (low, high) = self.options.slow_write_us;
            return self.rng.range(low, high.max(low + 1));
        }
        if high == 0 {
            return 0;
        }
        self.rng.range(low, high.max(low + 1))
    }

    fn complete_write(&mut self, index: usize) {
        let write = self.nodes[index].writes.pop_front().expect("checked");
        let time = self.time_us;
        let id = self.nodes[index].id;
        {
            let node = &mut self.nodes[index];
            if let Some(snapshot) = &write.snapshot {
                node.disk.write_snapshot(snapshot);
            }
        }
        let removed = self.nodes[index].disk.write_entries(&write.entries);
        for entry in removed {
            if let Some(chosen) = self.checker.chosen(entry.index) {
                if chosen.term == entry.term {
                    let detail = format!(
                        "node {id} overwrote committed entry ({}, term {}) on its disk",
                        entry.index, entry.term
                    );
                    self.checker.fail(Invariant::CommittedLost, time, detail);
                }
            }
        }
        if let Some(hard_state) = write.hard_state {
            self.nodes[index].disk.hard_state = hard_state;
        }
        for (message, promise) in &write.messages {
            self.check_contract(index, message, *promise);
        }
        for (message, _) in write.messages {
            self.send(message);
        }
        if let Some(mark) = write.mark {
            self.nodes[index]
                .raft
                .as_mut()
                .expect("up")
                .on_persisted(mark);
        }
    }

    fn apply(&mut self, index: usize, entry: &Entry) {
        let time = self.time_us;
        let node = &mut self.nodes[index];
        let id = node.id;
        let before = node.machine.applied;
        node.machine.apply(entry);
        node.since_compaction += 1;
        node.max_applied = node.max_applied.max(entry.index);
        let digest = node.machine.digest;
        self.stats.applied += 1;
        self.checker.applied(
            time,
            id,
            before,
            entry.index,
            entry.term,
            hash_bytes(&entry.data),
            digest,
        );
        if self.options.notify_applies && entry.kind == EntryKind::Normal {
            if let Some(command) = Command::decode(&entry.data) {
                self.notices.push(Notice::Applied {
                    node: index,
                    index: entry.index,
                    command,
                });
            }
        }
    }

    fn serve_reads(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        if node.reads.is_empty() {
            return;
        }
        let applied = node.machine.applied;
        let mut waiting = Vec::new();
        for read in std::mem::take(&mut node.reads) {
            if read.index <= applied {
                self.notices.push(Notice::Read {
                    node: index,
                    ctx: read.ctx,
                    state_index: applied,
                });
            } else {
                waiting.push(read);
            }
        }
        self.nodes[index].reads = waiting;
    }

    fn maybe_compact(&mut self, index: usize) {
        let Some(every) = self.options.compact_every else {
            return;
        };
        let node = &mut self.nodes[index];
        if node.since_compaction < every {
            return;
        }
        let raft = node.raft.as_mut().expect("up");
        let at = node.machine.applied.min(raft.persisted());
        if at <= raft.snapshot_point().0 {
            return;
        }
        // The state machine is at `applied`; a snapshot must describe exactly `at`.
        if at != node.machine.applied {
            return;
        }
        let data: Data = node.machine.encode().into();
        if raft.compact(at, data.clone()).is_err() {
            return;
        }
        let meta = crate::raft::SnapshotMeta {
            index: at,
            term: raft.snapshot_point().1,
            membership: raft.membership().clone(),
        };
        node.disk.compact(crate::raft::Snapshot { meta, data });
        node.since_compaction = 0;
    }

    /// Checks what the node at `index` looks like now: its role (election safety, leader
    /// completeness) and its commit index (committed entries, durable on a majority).
    fn observe(&mut self, index: usize) {
        let time = self.time_us;
        let Some(raft) = self.nodes[index].raft.as_ref() else {
            return;
        };
        let id = raft.id();
        let term = raft.term();
        if raft.role() == Role::Leader {
            self.checker.leader(time, term, id);
            if let Some((at, at_term)) = self.checker.must_hold(term) {
                let (snapshot_index, _) = raft.snapshot_point();
                if at > snapshot_index && raft.term_at(at) != Some(at_term) {
                    let detail = format!(
                        "leader {id} of term {term} lacks ({at}, term {at_term}), committed earlier"
                    );
                    self.checker
                        .fail(Invariant::LeaderCompleteness, time, detail);
                }
            }
        }
        let committed = raft.committed();
        let seen = self.nodes[index].commit_seen;
        if committed <= seen {
            return;
        }
        let (snapshot_index, _) = raft.snapshot_point();
        let mut newly = Vec::new();
        for at in (seen + 1).max(snapshot_index + 1)..=committed {
            let entry = raft
                .entry(at)
                .expect("committed entries after the snapshot are in memory");
            let hash = hash_bytes(&entry.data);
            if self.checker.committed(time, id, at, entry.term, hash, term) {
                newly.push((at, entry.term, entry.data.clone()));
            }
        }
        self.nodes[index].commit_seen = committed;
        for (at, entry_term, data) in newly {
            let holders = self
                .nodes
                .iter()
                .filter(|node| node.disk.holds(at, entry_term))
                .count();
            if holders < self.nodes.len() / 2 + 1 {
                let detail = format!(
                    "node {id} commits ({at}, term {entry_term}) but only {holders} of {} disks hold it",
                    self.nodes.len()
                );
                self.checker.fail(Invariant::CommittedLost, time, detail);
            }
            if self.options.keep_committed_data {
                self.committed_data.push(data);
            }
            self.note(|| format!("n{id} commits {at} (term {entry_term})"));
        }
    }
}

/// An estimate of a message's encoded size, for runs without the codec.
pub fn estimate_bytes(message: &Message) -> usize {
    40 + match &message.body {
        Body::Append { entries, .. } => 24 + entries.iter().map(Entry::size_bytes).sum::<usize>(),
        Body::Snapshot { data, meta, .. } => 40 + 8 * meta.membership.voters.len() + data.len(),
        _ => 16,
    }
}

/// One line about a message, for traces.
pub fn describe(message: &Message) -> String {
    let what = match &message.body {
        Body::Vote {
            pre,
            last_index,
            last_term,
        } => format!(
            "{} last ({last_index}, {last_term})",
            if *pre { "PreVote" } else { "Vote" }
        ),
        Body::VoteResponse { pre, granted } => format!(
            "{}Response {}",
            if *pre { "PreVote" } else { "Vote" },
            if *granted { "granted" } else { "refused" }
        ),
        Body::Append {
            prev_index,
            prev_term,
            commit,
            entries,
        } => format!(
            "Append prev ({prev_index}, {prev_term}) commit {commit} entries {}",
            match (entries.first(), entries.last()) {
                (Some(first), Some(last)) =>
                    format!("{}..={} (term {})", first.index, last.index, last.term),
                _ => "none".to_string(),
            }
        ),
        Body::AppendResponse {
            index,
            reject,
            hint_index,
            hint_term,
        } => {
            if *reject {
                format!("AppendResponse reject {index} hint ({hint_index}, {hint_term})")
            } else {
                format!("AppendResponse ok {index}")
            }
        }
        Body::Heartbeat { commit, round } => format!("Heartbeat commit {commit} round {round}"),
        Body::HeartbeatResponse { round } => format!("HeartbeatResponse round {round}"),
        Body::Snapshot {
            meta,
            offset,
            total_bytes,
            data,
        } => format!(
            "Snapshot at ({}, {}) bytes {offset}..{} of {total_bytes}",
            meta.index,
            meta.term,
            offset + data.len() as u64
        ),
        Body::SnapshotResponse {
            index,
            received_bytes,
        } => format!("SnapshotResponse at {index} received {received_bytes}"),
    };
    format!(
        "n{}->n{} t{} {what}",
        message.from, message.to, message.term
    )
}
