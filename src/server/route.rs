//! The protocol-neutral step of dispatch: an operation on keys becomes [`Request`]s routed by
//! key slot to the workers that own the keys, with one reorder [`Entry`] for the answer.
//!
//! The [`Router`] is the reactor's side of the request rings and the in-flight budget of each
//! worker. Both front ends call the functions here ([`single`], [`multi`], [`broadcast`],
//! [`keys`], [`stats`], [`scan`]); neither builds `Request`s itself, so routing, splitting
//! multi-key operations and the budgets are written once. Errors are returned, never written:
//! each protocol words them its own way.

use piccolo_queues::{RingProducer, Variant};

use super::info::InfoText;
use super::message::{Bytes, Op, Request, ScanArgs};
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
    /// More keys than a part index can number (65,536).
    TooManyKeys,
    /// More keys for one worker than its ring holds.
    TooManyForOneWorker {
        /// The ring capacity.
        capacity: usize,
    },
}

/// The most parts one command may have: a part index is a `u16`.
pub const MAX_PARTS: usize = u16::MAX as usize + 1;

/// The reactor's side of the request rings, and the in-flight budget per worker.
pub struct Router<V: Variant> {
    producers: Vec<V::Producer<Request>>,
    /// Requests pushed to each worker and not yet answered (reply popped). At most `capacity`.
    in_flight: Vec<usize>,
    capacity: usize,
    /// Workers that got requests since the last publish.
    touched: Vec<bool>,
    /// Scratch: requests per worker of the multi-key command being checked.
    counts: Vec<usize>,
}

/// Whether a multi-key command's requests fit in the workers' ring budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fit {
    /// Send now.
    Now,
    /// Blocked: wait for replies to free room.
    Blocked,
    /// More keys for one worker than its ring holds.
    Never,
}

impl<V: Variant> Router<V> {
    /// A router over the request rings' producer ends, one per worker, with an in-flight
    /// budget of `capacity` requests per worker (at most the smaller of the request and reply
    /// rings' capacities, so neither can overflow).
    pub fn new(producers: Vec<V::Producer<Request>>, capacity: usize) -> Router<V> {
        let workers = producers.len();
        assert!(workers > 0, "a router needs at least one worker");
        Router {
            producers,
            in_flight: vec![0; workers],
            capacity,
            touched: vec![false; workers],
            counts: vec![0; workers],
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.producers.len()
    }

    /// Requests sent to each worker and not yet answered, by worker.
    pub fn in_flight(&self) -> &[usize] {
        &self.in_flight
    }

    /// Requests in flight over all workers.
    pub fn total_in_flight(&self) -> usize {
        self.in_flight.iter().sum()
    }

    /// Ring capacity (= in-flight budget) per worker.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The worker that owns `key`: slots are split into contiguous ranges, one per worker.
    /// With one worker every slot is its own, so the slot (a CRC16 over the key plus the
    /// hash-tag scan) is not computed at all.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> usize {
        let workers = self.producers.len();
        if workers == 1 {
            return 0;
        }
        usize::from(slot::slot(key)) * workers / usize::from(slot::SLOT_COUNT)
    }

    /// Whether `count` more requests may go to `worker` now.
    #[inline]
    pub fn has_room(&self, worker: usize, count: usize) -> bool {
        self.in_flight[worker] + count <= self.capacity
    }

    /// Whether every worker has room for one more request.
    fn all_have_room(&self) -> bool {
        (0..self.workers()).all(|worker| self.has_room(worker, 1))
    }

    /// Pushes (deferred) a request; the caller checked [`has_room`](Self::has_room).
    #[inline]
    fn send(&mut self, worker: usize, request: Request) {
        debug_assert!(self.has_room(worker, 1));
        if self.producers[worker].push_deferred(request).is_err() {
            // The budget makes this impossible: the ring holds at most `in_flight` requests.
            unreachable!("request ring full despite the in-flight budget");
        }
        self.in_flight[worker] += 1;
        self.touched[worker] = true;
    }

    /// Records that `count` replies of `worker` were popped.
    #[inline]
    pub fn answered(&mut self, worker: usize, count: usize) {
        debug_assert!(count <= self.in_flight[worker]);
        self.in_flight[worker] -= count;
    }

    /// Publishes deferred requests: one `flush` per ring that got requests since the last
    /// publish, then `wake(worker)`, which returns whether it woke a sleeping worker. Returns
    /// the wake-ups.
    pub fn publish(&mut self, mut wake: impl FnMut(usize) -> bool) -> u64 {
        let mut wakeups = 0;
        for (worker, (producer, touched)) in
            self.producers.iter_mut().zip(&mut self.touched).enumerate()
        {
            if std::mem::take(touched) {
                producer.flush();
                wakeups += u64::from(wake(worker));
            }
        }
        wakeups
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
            if count > self.capacity {
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
    if !router.has_room(worker, 1) {
        return Dispatch::Blocked;
    }
    let seq = session.order.push(Entry::One(None));
    router.send(worker, request(session, seq, 0, operation));
    Dispatch::Done
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
}

/// Splits a multi-key operation into one request per key, each sent to its key's worker, joined
/// by `multi.join`. Checks every budget before sending anything, so a command is sent whole or
/// not at all.
pub fn multi<'k, V: Variant, K, W>(
    session: &mut Session,
    router: &mut Router<V>,
    multi: Multi<K, W>,
) -> Result<Dispatch, RouteError>
where
    K: Fn(usize) -> &'k [u8],
    W: Fn(usize) -> &'k [u8],
{
    let Multi {
        op,
        join,
        parts,
        key,
        value,
    } = multi;
    if parts > MAX_PARTS {
        return Err(RouteError::TooManyKeys);
    }
    match router.fit((0..parts).map(&key)) {
        Fit::Now => {}
        Fit::Blocked => return Ok(Dispatch::Blocked),
        Fit::Never => {
            return Err(RouteError::TooManyForOneWorker {
                capacity: router.capacity(),
            });
        }
    }
    let seq = session.order.push(Entry::many(join, parts as u32));
    for index in 0..parts {
        let operation = Operation::new(op.clone(), key(index)).with_value(value(index));
        let worker = router.owner(operation.key);
        router.send(worker, request(session, seq, index as u16, operation));
    }
    Ok(Dispatch::Done)
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
    if !router.has_room(worker, 1) {
        return Dispatch::Blocked;
    }
    let args = ScanArgs {
        shard_cursor: call.cursor / workers,
        count: call.count,
        has_pattern: call.pattern.is_some(),
        type_matches: call.type_matches,
    };
    let seq = session.order.push(Entry::One(None));
    let operation =
        Operation::new(Op::Scan(args), b"").with_value(call.pattern.unwrap_or_default());
    router.send(worker, keyless_request(session, seq, 0, operation));
    Dispatch::Done
}
