//! The protocol-neutral step of dispatch: an operation on keys becomes [`Request`]s routed by
//! key slot to the workers that own the keys, with one reorder [`Entry`] for the answer.
//!
//! The [`Router`] is the reactor's side of the request rings and the in-flight budget of each
//! worker. Both front ends call the functions here ([`single`], [`multi`], [`broadcast`],
//! [`keys`], [`stats`], [`scan`]); neither builds `Request`s itself, so routing, splitting
//! multi-key operations and the budgets are written once. Errors are returned, never written:
//! each protocol words them its own way.
//!
//! Commands that must stay atomic but cannot be pushed in one go (too big for the rings, or
//! multi-hop: MSETNX, RENAME, COPY, WATCH and EXEC) become plans of the [`Coordinator`]
//! (`coord.rs`), which holds their keys' locks. While no plan runs, every function here takes
//! its direct path after one predictable branch ([`Router`]'s `direct` flag); while one runs,
//! a command waits (returns [`Dispatch::Blocked`]) if it touches a locked key or if its own
//! connection's plan is not fully pushed. While EXEC replays its queued commands, the same
//! functions record requests into EXEC's plan instead of pushing them.

use piccolo_queues::{RingProducer, Variant};

use super::coord::{
    self, Coordinator, Decision, LockSet, Mode, Move, MoveKind, ROUND, Rings, Step, Target,
    WatchKey,
};
use super::info::InfoText;
use super::message::{Bytes, ConnId, Op, Reply, Request, ScanArgs, SetArgs, Watched};
use super::order::{Entry, JoinKind};
use super::session::Session;
use crate::proto::slot;
use crate::store::hash_key;

/// What became of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Answered or sent on its way; drop its bytes from the read buffer.
    Done,
    /// Blocked: a worker's ring budget is exhausted. Leave the bytes in the buffer and retry
    /// once replies have come back.
    Blocked,
}

/// A multi-key operation that can never be routed as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// More keys than a part index can number (65,536) in an answer that cannot be split
    /// (Cap'n Proto's `mget`).
    TooManyKeys,
}

/// The most parts one command may have: a part index is a `u16`.
pub const MAX_PARTS: usize = u16::MAX as usize + 1;

/// The reactor's side of the request rings, the in-flight budget per worker, and the
/// coordinator of the commands that need more than one push.
pub struct Router<V: Variant> {
    lanes: Lanes<V>,
    /// Boxed, as the recording below: the direct path reads only `direct`, and the router
    /// stays small.
    coordinator: Box<Coordinator>,
    /// No plan runs and nothing is being recorded: every command takes its direct path.
    direct: bool,
    /// EXEC is replaying its commands: their requests become steps of its plan.
    recording: Option<Box<Recording>>,
    /// Scratch: requests per worker of the multi-key command being checked.
    counts: Vec<usize>,
}

/// The request rings' producer ends and their budgets.
struct Lanes<V: Variant> {
    producers: Vec<V::Producer<Request>>,
    /// Requests pushed to each worker and not yet answered (reply popped). At most `capacity`.
    in_flight: Vec<usize>,
    capacity: usize,
    /// Workers that got requests since the last publish.
    touched: Vec<bool>,
}

impl<V: Variant> Rings for Lanes<V> {
    #[inline]
    fn has_room(&self, worker: usize) -> bool {
        self.in_flight[worker] < self.capacity
    }

    #[inline]
    fn send(&mut self, worker: usize, request: Request) {
        debug_assert!(self.has_room(worker));
        if self.producers[worker].push_deferred(request).is_err() {
            // The budget makes this impossible: the ring holds at most `in_flight` requests.
            unreachable!("request ring full despite the in-flight budget");
        }
        self.in_flight[worker] += 1;
        self.touched[worker] = true;
    }
}

/// EXEC's plan while its commands are replayed.
struct Recording {
    steps: Vec<Step>,
    /// The locks EXEC took from its commands' key positions; every recorded request must be
    /// covered (checked in debug builds).
    locks: LockSet,
}

/// Whether a multi-key command's requests fit in the workers' ring budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fit {
    /// Send now.
    Now,
    /// Blocked: wait for replies to free room.
    Blocked,
    /// More keys for one worker than its ring holds: only a plan can send it, in chunks.
    Never,
}

impl<V: Variant> Router<V> {
    /// A router over the request rings' producer ends, one per worker, with an in-flight
    /// budget of `capacity` requests per worker (at most the smaller of the request and reply
    /// rings' capacities, so neither can overflow).
    pub fn new(producers: Vec<V::Producer<Request>>, capacity: usize) -> Router<V> {
        let workers = producers.len();
        assert!(workers > 0, "a router needs at least one worker");
        assert!(
            capacity > 0,
            "a router needs room for one request per worker"
        );
        Router {
            lanes: Lanes {
                producers,
                in_flight: vec![0; workers],
                capacity,
                touched: vec![false; workers],
            },
            coordinator: Box::default(),
            direct: true,
            recording: None,
            counts: vec![0; workers],
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.lanes.producers.len()
    }

    /// Requests sent to each worker and not yet answered, by worker.
    pub fn in_flight(&self) -> &[usize] {
        &self.lanes.in_flight
    }

    /// Requests in flight over all workers.
    pub fn total_in_flight(&self) -> usize {
        self.lanes.in_flight.iter().sum()
    }

    /// Ring capacity (= in-flight budget) per worker.
    pub fn capacity(&self) -> usize {
        self.lanes.capacity
    }

    /// Plans running (chunked or multi-hop commands not fully pushed).
    pub fn plans(&self) -> usize {
        self.coordinator.plans()
    }

    /// The worker that owns `key`: slots are split into contiguous ranges, one per worker.
    /// With one worker every slot is its own, so the slot (a CRC16 over the key plus the
    /// hash-tag scan) is not computed at all.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> usize {
        let workers = self.lanes.producers.len();
        if workers == 1 {
            return 0;
        }
        usize::from(slot::slot(key)) * workers / usize::from(slot::SLOT_COUNT)
    }

    /// Whether `count` more requests may go to `worker` now.
    #[inline]
    pub fn has_room(&self, worker: usize, count: usize) -> bool {
        self.lanes.in_flight[worker] + count <= self.lanes.capacity
    }

    /// Whether every worker has room for one more request.
    fn all_have_room(&self) -> bool {
        (0..self.workers()).all(|worker| self.has_room(worker, 1))
    }

    /// Pushes (deferred) a request; the caller checked [`has_room`](Self::has_room).
    #[inline]
    fn send(&mut self, worker: usize, request: Request) {
        self.lanes.send(worker, request);
    }

    /// Records that `count` replies of `worker` were popped.
    #[inline]
    pub fn answered(&mut self, worker: usize, count: usize) {
        debug_assert!(count <= self.lanes.in_flight[worker]);
        self.lanes.in_flight[worker] -= count;
    }

    /// A reply whose connection is the coordinator's ([`coord::COORDINATOR_INDEX`]): a plan's
    /// read, or a write nobody reads.
    pub fn coordinator_reply(&mut self, reply: Reply) {
        self.coordinator.deliver(reply);
    }

    /// A connection closed: forget the keys it watched. Its plans, if any, run to the end
    /// (their answers are dropped), so no lock stays taken and nothing is left half done.
    pub fn disconnected(&mut self, conn: ConnId) {
        self.coordinator.forget(conn);
    }

    /// Publishes deferred requests: first the plans push what they can, then one `flush` per
    /// ring that got requests since the last publish, then `wake(worker)`, which returns
    /// whether it woke a sleeping worker. Returns the wake-ups.
    pub fn publish(&mut self, mut wake: impl FnMut(usize) -> bool) -> u64 {
        if !self.direct {
            self.coordinator.pump(&mut self.lanes);
            self.refresh();
        }
        let mut wakeups = 0;
        let lanes = &mut self.lanes;
        for (worker, (producer, touched)) in lanes
            .producers
            .iter_mut()
            .zip(&mut lanes.touched)
            .enumerate()
        {
            if std::mem::take(touched) {
                producer.flush();
                wakeups += u64::from(wake(worker));
            }
        }
        wakeups
    }

    /// Sets the direct-path flag after the coordinator or the recording changed.
    fn refresh(&mut self) {
        self.direct = self.coordinator.is_idle() && self.recording.is_none();
    }

    /// Starts a plan (its locks taken) and pushes what fits now.
    fn start(&mut self, conn: ConnId, locks: LockSet, steps: Vec<Step>) {
        self.coordinator.start(conn, locks, steps, &mut self.lanes);
        self.refresh();
    }

    /// Whether a command of `conn` on `hash` in `mode` must wait for a plan.
    fn must_wait(&self, conn: ConnId, hash: u64, mode: Mode) -> bool {
        self.coordinator.has_plan(conn) || self.coordinator.conflicts(hash, mode)
    }

    /// Whether `keys` keys, counted per worker, fit in the budgets.
    fn fit<'k>(&mut self, keys: impl Iterator<Item = &'k [u8]>) -> Fit {
        self.counts.iter_mut().for_each(|count| *count = 0);
        for key in keys {
            let worker = self.owner(key);
            self.counts[worker] += 1;
        }
        let mut fit = Fit::Now;
        for (worker, &count) in self.counts.iter().enumerate() {
            if count > self.lanes.capacity {
                return Fit::Never;
            }
            if !self.has_room(worker, count) {
                fit = Fit::Blocked;
            }
        }
        fit
    }
}

/// One keyed operation: what to do, to which key, with which value.
#[derive(Clone, Debug)]
pub struct Operation<'a> {
    /// What to do.
    pub op: Op,
    /// The key.
    pub key: &'a [u8],
    /// The value (SET, APPEND) or pattern; empty for most operations.
    pub value: &'a [u8],
}

impl<'a> Operation<'a> {
    /// `op` on `key`, with no value.
    #[inline]
    pub fn new(op: Op, key: &'a [u8]) -> Operation<'a> {
        Operation {
            op,
            key,
            value: b"",
        }
    }

    /// The same, carrying `value`.
    #[inline]
    pub fn with_value(self, value: &'a [u8]) -> Operation<'a> {
        Operation { value, ..self }
    }
}

/// The request for `operation` on its key, part `part` of command `seq` of `session`.
#[inline(always)]
fn request(session: &Session, seq: u32, part: u16, operation: Operation<'_>) -> Request {
    Request {
        conn: session.id,
        seq,
        part,
        hash: hash_key(operation.key),
        key: Bytes::copy_from(operation.key),
        value: Bytes::copy_from(operation.value),
        op: operation.op,
    }
}

/// [`request`] for an operation without a key (to every worker, SCAN): no hash.
fn keyless_request(session: &Session, seq: u32, part: u16, operation: Operation<'_>) -> Request {
    debug_assert!(operation.key.is_empty());
    Request {
        conn: session.id,
        seq,
        part,
        hash: 0,
        key: Bytes::empty(),
        value: Bytes::copy_from(operation.value),
        op: operation.op,
    }
}

/// Sends a one-key operation to the key's worker.
#[inline]
pub fn single<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    operation: Operation<'_>,
) -> Dispatch {
    let worker = router.owner(operation.key);
    if !router.direct {
        return single_coordinated(session, router, operation, worker);
    }
    if !router.has_room(worker, 1) {
        return Dispatch::Blocked;
    }
    let seq = session.order.push(Entry::One(None));
    router.send(worker, request(session, seq, 0, operation));
    Dispatch::Done
}

/// [`single`] while a plan runs or EXEC records.
#[cold]
#[inline(never)]
fn single_coordinated<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    operation: Operation<'_>,
    worker: usize,
) -> Dispatch {
    if router.recording.is_some() {
        let request = request(session, 0, 0, operation);
        record(session, router, Entry::One(None), vec![(worker, request)]);
        return Dispatch::Done;
    }
    let hash = hash_key(operation.key);
    if router.must_wait(session.id, hash, Mode::of(&operation.op)) || !router.has_room(worker, 1) {
        return Dispatch::Blocked;
    }
    let seq = session.order.push(Entry::One(None));
    router.send(worker, request(session, seq, 0, operation));
    Dispatch::Done
}

/// Records a command of the transaction EXEC is replaying: its entry goes into EXEC's answer,
/// its requests (numbered from the command's first part) into EXEC's plan.
fn record<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    entry: Entry,
    requests: Vec<(usize, Request)>,
) {
    let Some(recording) = router.recording.as_mut() else {
        debug_assert!(false, "recording without a recording");
        return;
    };
    let Some((seq, first)) = session.order.record(entry, requests.len()) else {
        // Too many parts: EXEC answers an error and drops the plan.
        return;
    };
    for (index, (worker, mut request)) in requests.into_iter().enumerate() {
        debug_assert!(
            if request.key.as_slice().is_empty() {
                request.op == Op::Stats || recording.locks.is_everything()
            } else {
                recording.locks.covers(request.hash, Mode::of(&request.op))
            },
            "EXEC recorded a request its locks do not cover: {request:?}"
        );
        request.seq = seq;
        request.part = first + index as u16;
        recording.steps.push(Step::Send { worker, request });
    }
}

/// A multi-key operation: `op` on `parts` keys (and values), joined by `join`.
pub struct Multi<K, W> {
    /// The operation each part performs.
    pub op: Op,
    /// How the parts' answers are joined.
    pub join: JoinKind,
    /// How many keys.
    pub parts: usize,
    /// The key of part `i`.
    pub key: K,
    /// The value of part `i` (empty when the operation takes none).
    pub value: W,
    /// An array answer of more than [`MAX_PARTS`] may be split over several entries (RESP,
    /// whose array is a header and then its items; not Cap'n Proto's one `values` list).
    pub split_arrays: bool,
}

/// Splits a multi-key operation into one request per key, each sent to its key's worker, joined
/// by `multi.join`. When every part fits the budgets now, all are pushed in this call, which
/// makes the command atomic (the rings keep push order); when some worker's part is larger
/// than its ring, the command becomes a plan that locks its keys and pushes in chunks.
pub fn multi<'k, V: Variant, K, W>(
    session: &mut Session,
    router: &mut Router<V>,
    multi: Multi<K, W>,
) -> Result<Dispatch, RouteError>
where
    K: Fn(usize) -> &'k [u8],
    W: Fn(usize) -> &'k [u8],
{
    let parts = multi.parts;
    let split = multi.join == JoinKind::Array && parts > MAX_PARTS;
    if split && !multi.split_arrays {
        return Err(RouteError::TooManyKeys);
    }
    if !router.direct {
        if router.recording.is_some() {
            if split {
                return Err(RouteError::TooManyKeys);
            }
            let requests = multi_requests(session, router, &multi, 0, parts);
            record(
                session,
                router,
                Entry::many(multi.join, parts as u32),
                requests,
            );
            return Ok(Dispatch::Done);
        }
        let mode = Mode::of(&multi.op);
        let wait = router.coordinator.has_plan(session.id)
            || (0..parts).any(|index| {
                router
                    .coordinator
                    .conflicts(hash_key((multi.key)(index)), mode)
            });
        if wait {
            return Ok(Dispatch::Blocked);
        }
    }
    let fit = if parts > MAX_PARTS {
        Fit::Never
    } else {
        router.fit((0..parts).map(&multi.key))
    };
    match fit {
        Fit::Now => {}
        Fit::Blocked => return Ok(Dispatch::Blocked),
        Fit::Never => return Ok(chunked(session, router, &multi)),
    }
    let seq = session.order.push(Entry::many(multi.join, parts as u32));
    for index in 0..parts {
        let operation =
            Operation::new(multi.op.clone(), (multi.key)(index)).with_value((multi.value)(index));
        let worker = router.owner(operation.key);
        router.send(worker, request(session, seq, index as u16, operation));
    }
    Ok(Dispatch::Done)
}

/// The requests of parts `from..to` of `multi` (sequence numbers filled in by the caller).
fn multi_requests<'k, V: Variant, K, W>(
    session: &Session,
    router: &Router<V>,
    multi: &Multi<K, W>,
    from: usize,
    to: usize,
) -> Vec<(usize, Request)>
where
    K: Fn(usize) -> &'k [u8],
    W: Fn(usize) -> &'k [u8],
{
    (from..to)
        .map(|index| {
            let operation = Operation::new(multi.op.clone(), (multi.key)(index))
                .with_value((multi.value)(index));
            let worker = router.owner(operation.key);
            (
                worker,
                request(session, 0, (index - from) as u16, operation),
            )
        })
        .collect()
}

/// A multi-key command too big for the rings: a plan that locks every key (shared for reads,
/// exclusive for writes; or waits, whole, if one is taken) and pushes the parts in chunks as
/// the budgets allow. A sum or all-OK answer is one entry whatever the count (part indexes are
/// not read); an array of more than [`MAX_PARTS`] is split into entries of at most that many,
/// the first writing the header for all (RESP).
fn chunked<'k, V: Variant, K, W>(
    session: &mut Session,
    router: &mut Router<V>,
    multi: &Multi<K, W>,
) -> Dispatch
where
    K: Fn(usize) -> &'k [u8],
    W: Fn(usize) -> &'k [u8],
{
    let parts = multi.parts;
    let mode = Mode::of(&multi.op);
    let mut locks = LockSet::default();
    for index in 0..parts {
        locks.add(hash_key((multi.key)(index)), mode);
    }
    if !router.coordinator.try_lock(&locks) {
        return Dispatch::Blocked;
    }
    let mut steps = Vec::with_capacity(parts);
    let per_entry = if multi.join == JoinKind::Array {
        MAX_PARTS
    } else {
        parts.max(1)
    };
    let mut from = 0;
    while from < parts {
        let to = (from + per_entry).min(parts);
        let (kind, len) = match multi.join {
            JoinKind::Array if from > 0 => (JoinKind::Items, to - from),
            join => (join, to - from),
        };
        let mut entry = Entry::many(kind, len as u32);
        if let Entry::Many(join) = &mut entry {
            join.array_len = if from == 0 { parts } else { len };
        }
        let seq = session.order.push(entry);
        for (worker, mut request) in multi_requests(session, router, multi, from, to) {
            request.seq = seq;
            steps.push(Step::Send { worker, request });
        }
        from = to;
    }
    router.start(session.id, locks, steps);
    Dispatch::Done
}

/// Sends `op` to every worker (DBSIZE, FLUSHALL) and joins the answers by `join`.
pub fn broadcast<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    op: Op,
    join: JoinKind,
) -> Dispatch {
    let entry = Entry::many(join, router.workers() as u32);
    to_every_worker(session, router, entry, Operation::new(op, b""))
}

/// KEYS: every worker lists its keys that match `pattern`; the answer is all of them.
pub fn keys<V: Variant>(session: &mut Session, router: &mut Router<V>, pattern: &[u8]) -> Dispatch {
    let entry = Entry::many(JoinKind::Concat, router.workers() as u32);
    let operation = Operation::new(Op::Keys, b"").with_value(pattern);
    to_every_worker(session, router, entry, operation)
}

/// INFO's worker sections: every worker reports its stats, and the entry keeps `text`, the
/// reactor's part, until they are in.
pub fn stats<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    text: InfoText,
) -> Dispatch {
    let entry = Entry::info(text, router.workers() as u32);
    to_every_worker(session, router, entry, Operation::new(Op::Stats, b""))
}

/// Sends `operation` (without a key) to every worker, with `entry` waiting in the reorder
/// buffer for all their answers (one part per worker).
fn to_every_worker<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    entry: Entry,
    operation: Operation<'_>,
) -> Dispatch {
    if !router.direct {
        if router.recording.is_some() {
            let requests = (0..router.workers())
                .map(|worker| {
                    let request = keyless_request(session, 0, 0, operation.clone());
                    (worker, request)
                })
                .collect();
            record(session, router, entry, requests);
            return Dispatch::Done;
        }
        // INFO's stats read no key; everything else here reads or writes every key.
        let every_key = operation.op != Op::Stats;
        if router.coordinator.has_plan(session.id) || (every_key && router.coordinator.any_locked())
        {
            return Dispatch::Blocked;
        }
    }
    if !router.all_have_room() {
        return Dispatch::Blocked;
    }
    let seq = session.order.push(entry);
    for worker in 0..router.workers() {
        let request = keyless_request(session, seq, worker as u16, operation.clone());
        router.send(worker, request);
    }
    Dispatch::Done
}

/// One SCAN call as the client makes it.
#[derive(Clone, Copy, Debug)]
pub struct ScanCall<'a> {
    /// The client's cursor: `shard_cursor * workers + worker` (see `worker::client_cursor`).
    pub cursor: u64,
    /// COUNT.
    pub count: u32,
    /// MATCH.
    pub pattern: Option<&'a [u8]>,
    /// TYPE asked for `string` or was not given.
    pub type_matches: bool,
}

/// Sends one SCAN page request to the worker the client's cursor names. One worker is scanned
/// at a time; a worker that finishes hands the client on to the next one.
pub fn scan<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    call: ScanCall<'_>,
) -> Dispatch {
    let workers = router.workers() as u64;
    let worker = (call.cursor % workers) as usize;
    let args = ScanArgs {
        shard_cursor: call.cursor / workers,
        count: call.count,
        has_pattern: call.pattern.is_some(),
        type_matches: call.type_matches,
    };
    let operation =
        Operation::new(Op::Scan(args), b"").with_value(call.pattern.unwrap_or_default());
    if !router.direct {
        if router.recording.is_some() {
            let request = keyless_request(session, 0, 0, operation);
            record(session, router, Entry::One(None), vec![(worker, request)]);
            return Dispatch::Done;
        }
        if router.coordinator.has_plan(session.id) || router.coordinator.any_locked() {
            return Dispatch::Blocked;
        }
    }
    if !router.has_room(worker, 1) {
        return Dispatch::Blocked;
    }
    let seq = session.order.push(Entry::One(None));
    router.send(worker, keyless_request(session, seq, 0, operation));
    Dispatch::Done
}

/// Runs a multi-hop command: one entry waits for the answer the plan's decision sends. In a
/// transaction being recorded, the plan's steps join EXEC's plan (its locks were taken by
/// EXEC); otherwise the command takes `locks` (or waits, whole) and starts its own plan.
fn hop<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    locks: LockSet,
    build: impl FnOnce(Target) -> Vec<Step>,
) -> Dispatch {
    if let Some(recording) = router.recording.as_mut() {
        if let Some((seq, part)) = session.order.record(Entry::One(None), 1) {
            let target = Target {
                conn: session.id,
                seq,
                part,
            };
            recording.steps.extend(build(target));
        }
        return Dispatch::Done;
    }
    if router.coordinator.has_plan(session.id) || !router.coordinator.try_lock(&locks) {
        return Dispatch::Blocked;
    }
    let seq = session.order.push(Entry::One(None));
    let target = Target {
        conn: session.id,
        seq,
        part: 0,
    };
    let steps = build(target);
    router.start(session.id, locks, steps);
    Dispatch::Done
}

/// A read whose reply the plan's next decision takes.
fn read(worker: usize, key: &[u8], op: Op) -> Step {
    Step::Send {
        worker,
        request: coord::keyed(ROUND, hash_key(key), key, b"", op),
    }
}

/// MSETNX: `parts` pairs, written only if none of the keys exists; answers 1 or 0. One round
/// of EXISTS, then the writes, all under exclusive locks.
pub fn set_if_none_exist<'k, V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    parts: usize,
    key: impl Fn(usize) -> &'k [u8],
    value: impl Fn(usize) -> &'k [u8],
) -> Dispatch {
    let mut locks = LockSet::default();
    for index in 0..parts {
        locks.add(hash_key(key(index)), Mode::Exclusive);
    }
    let owners: Vec<usize> = (0..parts).map(|index| router.owner(key(index))).collect();
    hop(session, router, locks, |target| {
        let mut steps: Vec<Step> = (0..parts)
            .map(|index| read(owners[index], key(index), Op::Exists))
            .collect();
        let sets = (0..parts)
            .map(|index| {
                let (key, value) = (key(index), value(index));
                let op = Op::Set(SetArgs::PLAIN);
                let request = coord::keyed(coord::DISCARD, hash_key(key), key, value, op);
                (owners[index], request)
            })
            .collect();
        steps.push(Step::Decide(Decision::SetIfNoneExist {
            sets,
            answer: target,
        }));
        steps
    })
}

/// RENAME, RENAMENX and COPY: read the source (and whether the destination exists), then write
/// the destination and, for a rename, delete the source. The front end refuses COPY of a key
/// onto itself.
pub fn move_key<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    kind: MoveKind,
    source: &[u8],
    destination: &[u8],
) -> Dispatch {
    let (source_hash, destination_hash) = (hash_key(source), hash_key(destination));
    let (source_worker, destination_worker) = (router.owner(source), router.owner(destination));
    let mut locks = LockSet::default();
    let source_mode = match kind {
        MoveKind::Copy { .. } => Mode::Shared,
        _ => Mode::Exclusive,
    };
    locks.add(source_hash, source_mode);
    locks.add(destination_hash, Mode::Exclusive);
    let check_destination = matches!(
        kind,
        MoveKind::RenameIfAbsent | MoveKind::Copy { replace: false }
    );
    hop(session, router, locks, |target| {
        let mut steps = vec![read(source_worker, source, Op::Dump)];
        if check_destination {
            steps.push(read(destination_worker, destination, Op::Exists));
        }
        steps.push(Step::Decide(Decision::Move(Box::new(Move {
            kind,
            source: (source.into(), source_hash, source_worker),
            destination: (destination.into(), destination_hash, destination_worker),
            answer: target,
        }))));
        steps
    })
}

/// WATCH: reads the keys' versions and keeps them for the connection's EXEC; answers OK once
/// they are kept. Holds the keys shared until the reads are pushed, so WATCH takes effect at
/// its place in the dispatch order even when the reads wait for ring room. At most
/// [`coord::MAX_WATCH_KEYS`] keys per call (the front end checks).
pub fn watch<'k, V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    keys: impl Iterator<Item = &'k [u8]>,
) -> Dispatch {
    let watched: Vec<WatchKey> = keys
        .map(|key| WatchKey {
            key: key.into(),
            hash: hash_key(key),
            worker: router.owner(key),
            seen: None,
        })
        .collect();
    let conn = session.id;
    let mut locks = LockSet::default();
    for key in &watched {
        locks.add(key.hash, Mode::Shared);
    }
    hop(session, router, locks, |target| {
        let mut steps: Vec<Step> = watched
            .iter()
            .map(|key| read(key.worker, &key.key, Op::Version))
            .collect();
        steps.push(Step::Decide(Decision::RecordWatch {
            conn,
            keys: watched,
            answer: target,
        }));
        steps
    })
}

/// UNWATCH (and DISCARD, and EXEC once it has run): forget the connection's watched keys.
pub fn unwatch<V: Variant>(session: &Session, router: &mut Router<V>) {
    router.coordinator.forget(session.id);
}

/// Starts EXEC: waits while the connection's own plan (a WATCH) is not fully pushed, then
/// takes `locks` (the queued commands' keys) and the watched keys (shared), or waits, whole;
/// then records. The front end replays the queued commands through the usual dispatch, whose
/// routing calls record instead of pushing, then calls [`exec_end`].
pub fn exec_begin<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    mut locks: LockSet,
) -> Dispatch {
    if router.coordinator.has_plan(session.id) {
        return Dispatch::Blocked;
    }
    for key in router.coordinator.watched(session.id) {
        locks.add(key.hash, Mode::Shared);
    }
    if !router.coordinator.try_lock(&locks) {
        return Dispatch::Blocked;
    }
    router.recording = Some(Box::new(Recording {
        steps: Vec::new(),
        locks,
    }));
    session.order.begin_capture();
    router.refresh();
    Dispatch::Done
}

/// A transaction EXEC cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecError {
    /// More parts than a part index numbers (65,536 keys over all its commands).
    TooManyParts,
}

/// Ends EXEC: pushes its entry and starts its plan: after WATCH, a round of version checks and
/// the verdict, then every recorded request in order; the locks go when the last is pushed.
/// The caller writes what is ready (`Order::write_ready`).
pub fn exec_end<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
) -> Result<(), ExecError> {
    let Some(recording) = router.recording.take() else {
        debug_assert!(false, "exec_end without exec_begin");
        return Ok(());
    };
    let watched = router.coordinator.take_watch(session.id);
    router.refresh();
    let Some(seq) = session.order.end_capture(!watched.is_empty()) else {
        router.coordinator.unlock(&recording.locks);
        return Err(ExecError::TooManyParts);
    };
    let mut steps = Vec::with_capacity(watched.len() + 1 + recording.steps.len());
    if !watched.is_empty() {
        for key in watched {
            // Every WATCH plan has ended (exec_begin waited), so each key has what it saw; a
            // key without would fail the check (no shard's last version is u64::MAX).
            let seen = key.seen.unwrap_or(Watched::Absent(u64::MAX));
            let request = coord::keyed(ROUND, key.hash, &key.key, b"", Op::CheckVersion(seen));
            steps.push(Step::Send {
                worker: key.worker,
                request,
            });
        }
        steps.push(Step::Decide(Decision::Watch {
            exec: Target {
                conn: session.id,
                seq,
                part: 0,
            },
        }));
    }
    steps.extend(recording.steps);
    router.start(session.id, recording.locks, steps);
    Ok(())
}
