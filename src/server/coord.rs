//! The coordinator: commands that must be atomic across workers but cannot be sent in one go.
//!
//! The reactor is the only producer of every request ring, and each worker runs its ring in
//! order. So a command whose requests are all pushed in one dispatch call (an MSET that fits
//! the rings, a transaction of one-key commands) is already serializable at its place in the
//! push order: every other command's requests are before all of its parts on every worker, or
//! after all of them. Two kinds of command break that:
//!
//! - **chunked** ones, too big for the rings, pushed over several poll iterations;
//! - **multi-hop** ones, whose second step depends on the first's answers from other workers
//!   (MSETNX, RENAME, RENAMENX, COPY, EXEC after WATCH: check, then run).
//!
//! Both become a [`Plan`]: a list of [`Step`]s (requests to push, and decisions to take once
//! the answers of the requests before them are in) that holds locks on all its keys from the
//! moment it starts until its last request is pushed. The lock table lives here, on the
//! reactor's thread (it is the sequencer, so no atomics): a plan takes all its keys at once or
//! waits, whole, if any is taken; a later command touching a taken key is held back whole (its
//! bytes stay in its connection's buffer, as for ring backpressure). Releasing after the last
//! push is enough: the rings' FIFO order puts every later command behind the plan's requests.
//! That is VLL's idea (Ren, Thomson, Abadi, 2012: lock requests granted in a global order, no
//! lock manager per key beyond two counters), with the reactor as the one sequencer.
//!
//! The plan's own requests to read (a round) carry [`ROUND`] as their connection, so their
//! replies come back here ([`Coordinator::deliver`]), not to a client; the writes a decision
//! makes carry [`DISCARD`]; the client's answer is an [`Op::Answer`] request, which the worker
//! sends back as it is, in its place in the client's reply order. A plan keeps its requests
//! (owned), so it finishes even if its client disconnects: nothing is left half done and no
//! lock stays taken.
//!
//! Pure: no rings, no sockets. [`Rings`] is how it pushes, so the deterministic test drives the
//! same code with a model of the workers.

use std::collections::VecDeque;

use std::collections::HashMap;

use super::message::{Bytes, ConnId, Op, Outcome, Reply, Request, SetArgs, Watched};
use crate::proto::command::Expiry;

/// The slab index no connection has: requests and replies of the coordinator itself.
pub const COORDINATOR_INDEX: u32 = u32::MAX;
/// A plan's reads: the reply comes back to [`Coordinator::deliver`] (`seq` is the plan's id).
pub const ROUND: ConnId = ConnId {
    index: COORDINATOR_INDEX,
    generation: 0,
};
/// A decision's writes (RENAME's SET and DEL): nobody reads the reply.
pub const DISCARD: ConnId = ConnId {
    index: COORDINATOR_INDEX,
    generation: 1,
};

/// Keys one WATCH may name (its version reads are one round; a part index is a `u16`).
pub const MAX_WATCH_KEYS: usize = u16::MAX as usize + 1;

/// How a plan holds a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Reads only: other readers may hold it too.
    Shared,
    /// Writes: nobody else.
    Exclusive,
}

impl Mode {
    /// The mode an operation needs.
    #[inline]
    pub fn of(op: &Op) -> Mode {
        if op.is_read() {
            Mode::Shared
        } else {
            Mode::Exclusive
        }
    }
}

/// The keys a plan locks, by `store::hash_key`. Two keys with the same hash are one lock: a
/// collision can only make a command wait, never let two conflict.
#[derive(Debug, Default)]
pub struct LockSet {
    keys: HashMap<u64, Mode>,
    /// Every key (a transaction with FLUSHALL, DBSIZE, KEYS or SCAN in it).
    everything: bool,
}

impl LockSet {
    /// Adds a key; a key asked for in both modes is held exclusively.
    pub fn add(&mut self, hash: u64, mode: Mode) {
        let held = self.keys.entry(hash).or_insert(mode);
        if mode == Mode::Exclusive {
            *held = Mode::Exclusive;
        }
    }

    /// Locks every key.
    pub fn add_everything(&mut self) {
        self.everything = true;
    }

    /// Whether the set allows `mode` on `hash` (a recorded request must be covered).
    pub fn covers(&self, hash: u64, mode: Mode) -> bool {
        self.everything
            || self
                .keys
                .get(&hash)
                .is_some_and(|&held| held == Mode::Exclusive || mode == Mode::Shared)
    }

    /// Whether it locks every key.
    pub fn is_everything(&self) -> bool {
        self.everything
    }
}

/// One key's holders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    /// This many readers.
    Readers(u32),
    /// One writer.
    Writer,
}

/// The locks the running plans hold.
#[derive(Debug, Default)]
struct LockTable {
    held: HashMap<u64, Held>,
    /// A plan holds every key.
    everything: bool,
}

impl LockTable {
    fn is_empty(&self) -> bool {
        self.held.is_empty() && !self.everything
    }

    fn conflicts(&self, hash: u64, mode: Mode) -> bool {
        if self.everything {
            return true;
        }
        !matches!(
            (self.held.get(&hash), mode),
            (None, _) | (Some(Held::Readers(_)), Mode::Shared)
        )
    }

    /// Takes every lock of `set`, or none.
    fn try_acquire(&mut self, set: &LockSet) -> bool {
        if set.everything {
            if !self.is_empty() {
                return false;
            }
            self.everything = true;
            return true;
        }
        if set
            .keys
            .iter()
            .any(|(&hash, &mode)| self.conflicts(hash, mode))
        {
            return false;
        }
        for (&hash, &mode) in &set.keys {
            let held = self.held.entry(hash).or_insert(Held::Readers(0));
            *held = match (mode, *held) {
                (Mode::Shared, Held::Readers(count)) => Held::Readers(count + 1),
                _ => Held::Writer,
            };
        }
        true
    }

    fn release(&mut self, set: &LockSet) {
        if set.everything {
            debug_assert!(self.everything);
            self.everything = false;
            return;
        }
        for (&hash, &mode) in &set.keys {
            let Some(held) = self.held.get_mut(&hash) else {
                debug_assert!(false, "releasing a lock not held");
                continue;
            };
            match (mode, *held) {
                (Mode::Shared, Held::Readers(count)) if count > 1 => {
                    *held = Held::Readers(count - 1);
                }
                _ => {
                    self.held.remove(&hash);
                }
            }
        }
    }
}

/// Where an answer goes: a client's command (its sequence number, and the part within it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The client.
    pub conn: ConnId,
    /// The command's sequence number.
    pub seq: u32,
    /// The part (inside EXEC, the command's place among the transaction's parts).
    pub part: u16,
}

/// One step of a plan.
#[derive(Debug)]
pub enum Step {
    /// Push `request` to `worker`. A request for [`ROUND`] is a read whose reply the next
    /// decision takes.
    Send {
        /// The worker that owns the request's key.
        worker: usize,
        /// The request.
        request: Request,
    },
    /// Wait until every read pushed since the last decision has answered, then decide.
    Decide(Decision),
}

/// What a plan decides from the replies of its last round.
#[derive(Debug)]
pub enum Decision {
    /// EXEC after WATCH: the round is one check per watched key; EXEC gets the
    /// [`Outcome::Verdict`], and if any check answered 0 the rest of the plan is dropped.
    Watch {
        /// EXEC's answer.
        exec: Target,
    },
    /// WATCH: the round is one version read per key; keep them for `conn`'s EXEC, answer OK.
    RecordWatch {
        /// The client.
        conn: ConnId,
        /// The keys, in the order of the reads.
        keys: Vec<WatchKey>,
        /// WATCH's answer.
        answer: Target,
    },
    /// MSETNX: the round is one EXISTS per key; if all answered 0, push `sets` and answer 1,
    /// else answer 0.
    SetIfNoneExist {
        /// The writes (for [`DISCARD`]).
        sets: Vec<(usize, Request)>,
        /// MSETNX's answer.
        answer: Target,
    },
    /// RENAME, RENAMENX, COPY: the round is a DUMP of the source (part 0) and, unless the
    /// destination may be replaced, an EXISTS of the destination (part 1).
    Move(Box<Move>),
}

/// A key WATCH read, and what it saw.
#[derive(Clone, Debug)]
pub struct WatchKey {
    /// The key.
    pub key: Box<[u8]>,
    /// `store::hash_key(key)`.
    pub hash: u64,
    /// Its worker.
    pub worker: usize,
    /// What the read saw (`None` until it answered).
    pub seen: Option<Watched>,
}

/// Which move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveKind {
    /// RENAME: OK, or "no such key".
    Rename,
    /// RENAMENX: 1, 0 when the destination exists, or "no such key".
    RenameIfAbsent,
    /// COPY: 1, or 0 (no source, or the destination exists and may not be replaced).
    Copy {
        /// REPLACE was given.
        replace: bool,
    },
}

/// A RENAME, RENAMENX or COPY in progress.
#[derive(Debug)]
pub struct Move {
    /// Which.
    pub kind: MoveKind,
    /// The source key, its hash and worker.
    pub source: (Box<[u8]>, u64, usize),
    /// The destination key, its hash and worker.
    pub destination: (Box<[u8]>, u64, usize),
    /// The command's answer.
    pub answer: Target,
}

/// The coordinator's side of the rings.
pub trait Rings {
    /// Whether one more request may go to `worker` now (the in-flight budget).
    fn has_room(&self, worker: usize) -> bool;
    /// Pushes a request (the caller checked [`has_room`](Self::has_room)).
    fn send(&mut self, worker: usize, request: Request);
}

/// A command in progress.
#[derive(Debug)]
struct Plan {
    id: u32,
    /// Whose command it is (its later commands wait until the plan is pushed).
    conn: ConnId,
    locks: LockSet,
    steps: VecDeque<Step>,
    /// Replies of the current round.
    round: Vec<Reply>,
    /// Reads of the current round pushed and not yet answered.
    waiting: usize,
    /// Reads of the current round pushed (their part numbers).
    pushed_in_round: usize,
}

/// The lock table, the plans in progress and the keys each connection watches.
#[derive(Debug, Default)]
pub struct Coordinator {
    locks: LockTable,
    plans: VecDeque<Plan>,
    next_id: u32,
    /// By connection slab index: the connection's generation and its watched keys.
    watches: HashMap<u32, (u32, Vec<WatchKey>)>,
}

impl Coordinator {
    /// No plan is running (so no lock is held): every command may take the direct path.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.plans.is_empty()
    }

    /// Whether `conn` has a plan not yet fully pushed (its later commands must wait for it).
    pub fn has_plan(&self, conn: ConnId) -> bool {
        self.plans.iter().any(|plan| plan.conn == conn)
    }

    /// Whether a command needing `mode` on `hash` must wait.
    pub fn conflicts(&self, hash: u64, mode: Mode) -> bool {
        self.locks.conflicts(hash, mode)
    }

    /// Whether any lock is held (a command on every key must wait).
    pub fn any_locked(&self) -> bool {
        !self.locks.is_empty()
    }

    /// Takes every lock of `set`, or none (then the command waits, whole). The caller starts a
    /// plan with the set right after.
    pub fn try_lock(&mut self, set: &LockSet) -> bool {
        self.locks.try_acquire(set)
    }

    /// Starts a plan for `conn` holding `locks` (taken by [`try_lock`](Self::try_lock)) and
    /// pushes what fits now.
    pub fn start(
        &mut self,
        conn: ConnId,
        locks: LockSet,
        steps: Vec<Step>,
        rings: &mut impl Rings,
    ) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.plans.push_back(Plan {
            id,
            conn,
            locks,
            steps: steps.into(),
            round: Vec::new(),
            waiting: 0,
            pushed_in_round: 0,
        });
        self.pump(rings);
    }

    /// Pushes every plan's steps as far as the budgets and the answers allow; a plan whose
    /// last request is pushed releases its locks and ends.
    pub fn pump(&mut self, rings: &mut impl Rings) {
        let mut index = 0;
        while index < self.plans.len() {
            let plan = &mut self.plans[index];
            advance(plan, &mut self.watches, rings);
            if plan.steps.is_empty() {
                if let Some(plan) = self.plans.remove(index) {
                    self.locks.release(&plan.locks);
                }
            } else {
                index += 1;
            }
        }
    }

    /// A reply for the coordinator: a round's read, or a decision's write (dropped). A reply
    /// for a plan that has ended is dropped.
    pub fn deliver(&mut self, reply: Reply) {
        if reply.conn != ROUND {
            return;
        }
        if let Some(plan) = self.plans.iter_mut().find(|plan| plan.id == reply.seq) {
            debug_assert!(plan.waiting > 0, "a read nobody waits for");
            plan.waiting = plan.waiting.saturating_sub(1);
            plan.round.push(reply);
        }
    }

    /// Releases locks taken by [`try_lock`](Self::try_lock) for a plan that did not start.
    pub fn unlock(&mut self, set: &LockSet) {
        self.locks.release(set);
    }

    /// The keys `conn` watches.
    pub fn watched(&self, conn: ConnId) -> impl Iterator<Item = &WatchKey> + '_ {
        self.watches
            .get(&conn.index)
            .filter(|(generation, _)| *generation == conn.generation)
            .into_iter()
            .flat_map(|(_, keys)| keys.iter())
    }

    /// The keys `conn` watches (taken: EXEC and DISCARD end the watch).
    pub fn take_watch(&mut self, conn: ConnId) -> Vec<WatchKey> {
        match self.watches.remove(&conn.index) {
            Some((generation, keys)) if generation == conn.generation => keys,
            _ => Vec::new(),
        }
    }

    /// Forgets what `conn` watches (UNWATCH, and when the connection closes).
    pub fn forget(&mut self, conn: ConnId) {
        self.take_watch(conn);
    }

    /// Running plans (the model test and INFO-style checks).
    pub fn plans(&self) -> usize {
        self.plans.len()
    }
}

/// Runs `plan` as far as it can go now.
fn advance(
    plan: &mut Plan,
    watches: &mut HashMap<u32, (u32, Vec<WatchKey>)>,
    rings: &mut impl Rings,
) {
    loop {
        match plan.steps.front() {
            None => return,
            Some(Step::Send { worker, .. }) => {
                if !rings.has_room(*worker) {
                    return;
                }
                let Some(Step::Send {
                    worker,
                    mut request,
                }) = plan.steps.pop_front()
                else {
                    unreachable!("the front step is a send");
                };
                if request.conn == ROUND {
                    request.seq = plan.id;
                    request.part = plan.pushed_in_round as u16;
                    plan.pushed_in_round += 1;
                    plan.waiting += 1;
                }
                rings.send(worker, request);
            }
            Some(Step::Decide(_)) => {
                if plan.waiting > 0 {
                    return;
                }
                let Some(Step::Decide(decision)) = plan.steps.pop_front() else {
                    unreachable!("the front step is a decision");
                };
                let mut round = std::mem::take(&mut plan.round);
                round.sort_by_key(|reply| reply.part);
                plan.pushed_in_round = 0;
                match decide(decision, &round, watches) {
                    Next::Continue(steps) => {
                        for step in steps.into_iter().rev() {
                            plan.steps.push_front(step);
                        }
                    }
                    Next::Instead(steps) => plan.steps = steps.into(),
                }
            }
        }
    }
}

/// What follows a decision.
enum Next {
    /// These steps, then the rest of the plan.
    Continue(Vec<Step>),
    /// These steps instead of the rest of the plan.
    Instead(Vec<Step>),
}

/// The step that answers `target` with `outcome` and `int`.
pub fn answer(target: Target, outcome: Outcome, int: i64) -> Step {
    Step::Send {
        worker: 0,
        request: Request {
            conn: target.conn,
            seq: target.seq,
            part: target.part,
            hash: 0,
            key: Bytes::empty(),
            value: Bytes::empty(),
            op: Op::Answer { outcome, int },
        },
    }
}

/// A request on `key` for `conn` (a plan's read: [`ROUND`]; a decision's write: [`DISCARD`]).
pub fn keyed(conn: ConnId, hash: u64, key: &[u8], value: &[u8], op: Op) -> Request {
    Request {
        conn,
        seq: 0,
        part: 0,
        hash,
        key: Bytes::copy_from(key),
        value: Bytes::copy_from(value),
        op,
    }
}

fn decide(
    decision: Decision,
    round: &[Reply],
    watches: &mut HashMap<u32, (u32, Vec<WatchKey>)>,
) -> Next {
    let answered = |outcome: Outcome, int: i64, target: Target| {
        Next::Continue(vec![answer(target, outcome, int)])
    };
    match decision {
        Decision::Watch { exec } => {
            let unchanged = round
                .iter()
                .all(|reply| reply.outcome == Outcome::Integer && reply.int == 1);
            let verdict = answer(exec, Outcome::Verdict, i64::from(unchanged));
            if unchanged {
                Next::Continue(vec![verdict])
            } else {
                Next::Instead(vec![verdict])
            }
        }
        Decision::RecordWatch {
            conn,
            mut keys,
            answer: target,
        } => {
            debug_assert_eq!(round.len(), keys.len());
            for (key, reply) in keys.iter_mut().zip(round) {
                key.seen = Some(match reply.outcome {
                    Outcome::Integer => Watched::Version(reply.int as u64),
                    _ => Watched::Absent(reply.int as u64),
                });
            }
            let entry = watches
                .entry(conn.index)
                .or_insert_with(|| (conn.generation, Vec::new()));
            if entry.0 != conn.generation {
                *entry = (conn.generation, Vec::new());
            }
            entry.1.extend(keys);
            answered(Outcome::Ok, 0, target)
        }
        Decision::SetIfNoneExist {
            sets,
            answer: target,
        } => {
            let none_exist = round.iter().all(|reply| reply.int == 0);
            if !none_exist {
                return answered(Outcome::Integer, 0, target);
            }
            let mut steps: Vec<Step> = sets
                .into_iter()
                .map(|(worker, request)| Step::Send { worker, request })
                .collect();
            steps.push(answer(target, Outcome::Integer, 1));
            Next::Continue(steps)
        }
        Decision::Move(decided) => decide_move(*decided, round),
    }
}

fn decide_move(decided: Move, round: &[Reply]) -> Next {
    let Move {
        kind,
        source,
        destination,
        answer: target,
    } = decided;
    let dump = round.iter().find(|reply| reply.part == 0);
    let destination_exists = round
        .iter()
        .any(|reply| reply.part == 1 && reply.outcome == Outcome::Integer && reply.int != 0);
    let Some(dump) = dump.filter(|reply| reply.outcome == Outcome::Dumped) else {
        let step = match kind {
            MoveKind::Copy { .. } => answer(target, Outcome::Integer, 0),
            _ => answer(
                target,
                Outcome::Error(super::message::ErrorKind::NoSuchKey),
                0,
            ),
        };
        return Next::Continue(vec![step]);
    };
    if source.0 == destination.0 {
        // RENAME key key: the key stays; COPY of a key onto itself is refused before this.
        let (outcome, int) = match kind {
            MoveKind::Rename => (Outcome::Ok, 0),
            _ => (Outcome::Integer, 0),
        };
        return Next::Continue(vec![answer(target, outcome, int)]);
    }
    let may_replace = match kind {
        MoveKind::Rename => true,
        MoveKind::RenameIfAbsent => false,
        MoveKind::Copy { replace } => replace,
    };
    if destination_exists && !may_replace {
        return Next::Continue(vec![answer(target, Outcome::Integer, 0)]);
    }
    let expiry = match dump.int {
        0 => Expiry::Clear,
        deadline_ms => Expiry::AtUnixMs(deadline_ms as u64),
    };
    let set = Op::Set(SetArgs {
        expiry,
        ..SetArgs::PLAIN
    });
    let (destination_key, destination_hash, destination_worker) = destination;
    let value = dump.data.as_slice();
    let mut steps = vec![Step::Send {
        worker: destination_worker,
        request: keyed(DISCARD, destination_hash, &destination_key, value, set),
    }];
    if !matches!(kind, MoveKind::Copy { .. }) {
        let (source_key, source_hash, source_worker) = source;
        steps.push(Step::Send {
            worker: source_worker,
            request: keyed(DISCARD, source_hash, &source_key, b"", Op::Del),
        });
    }
    let (outcome, int) = match kind {
        MoveKind::Rename => (Outcome::Ok, 0),
        _ => (Outcome::Integer, 1),
    };
    steps.push(answer(target, outcome, int));
    Next::Continue(steps)
}
