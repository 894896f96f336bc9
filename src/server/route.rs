//! The protocol-neutral step of dispatch: an operation on keys becomes [`Request`]s routed by
//! key slot to the workers that own the keys, with one reorder [`Entry`] for the answer.
//!
//! Both front ends call it: [`super::commands`] for RESP and [`super::capnp_dispatch`] for Cap'n Proto.
//! Neither builds `Request`s for keyed operations itself, so routing, splitting multi-key
//! operations and the ring budgets are written once. Errors are returned, never written: each
//! protocol words them its own way.

use core::fmt;

use piccolo_queues::Variant;

use super::message::{Bytes, Op, Request, scan_flags};
use super::order::{Entry, JoinKind};
use super::reactor::{Router, Session};
use crate::store::hash_key;

/// What became of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Answered or sent on its way; drop its bytes from the read buffer.
    Done,
    /// A worker's ring budget is exhausted: leave the bytes in the buffer and retry once
    /// replies have come back.
    Blocked,
}

/// Whether a multi-key command's requests fit in the workers' ring budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Send now.
    Yes,
    /// Wait for replies to free room.
    NotNow,
    /// More keys for one worker than its ring holds.
    Never,
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

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::TooManyKeys => {
                write!(f, "ERR too many keys in one command (at most 65536 here)")
            }
            RouteError::TooManyForOneWorker { capacity } => write!(
                f,
                "ERR too many keys for one worker in one command (at most {capacity} here)"
            ),
        }
    }
}

/// Sends a one-key request to the key's worker.
#[allow(clippy::too_many_arguments)]
pub fn single<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    op: Op,
    key: &[u8],
    flags: u8,
    number: i64,
    value: &[u8],
    extra: Option<Box<[u8]>>,
) -> Dispatch {
    let worker = router.owner(key);
    if !router.has_room(worker, 1) {
        return Dispatch::Blocked;
    }
    let seq = session.order.push(Entry::One(None));
    router.send(
        worker,
        Request {
            conn: session.id,
            seq,
            part: 0,
            op,
            flags,
            hash: hash_key(key),
            number,
            key: Bytes::copy_from(key),
            value: Bytes::copy_from(value),
            extra,
        },
    );
    Dispatch::Done
}

/// Splits a multi-key operation into one request per key (`key(i)` and `value(i)` for part
/// `i` of `parts`), each sent to its key's worker, joined by `kind`. Checks every budget before
/// sending anything, so a command is sent whole or not at all.
pub fn multi<'k, V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    op: Op,
    kind: JoinKind,
    parts: usize,
    key: impl Fn(usize) -> &'k [u8],
    value: impl Fn(usize) -> &'k [u8],
) -> Result<Dispatch, RouteError> {
    if parts > usize::from(u16::MAX) + 1 {
        return Err(RouteError::TooManyKeys);
    }
    router.clear_counts();
    for index in 0..parts {
        router.count(key(index));
    }
    match router.counts_fit() {
        Fit::Yes => {}
        Fit::NotNow => return Ok(Dispatch::Blocked),
        Fit::Never => {
            return Err(RouteError::TooManyForOneWorker {
                capacity: router.capacity(),
            });
        }
    }
    let seq = session.order.push(Entry::many(kind, parts as u32));
    for index in 0..parts {
        let key = key(index);
        let worker = router.owner(key);
        router.send(
            worker,
            Request {
                conn: session.id,
                seq,
                part: index as u16,
                op,
                flags: 0,
                hash: hash_key(key),
                number: 0,
                key: Bytes::copy_from(key),
                value: Bytes::copy_from(value(index)),
                extra: None,
            },
        );
    }
    Ok(Dispatch::Done)
}

/// Sends `op` to every worker (DBSIZE, FLUSHALL) and joins the answers.
pub fn broadcast<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    op: Op,
    kind: JoinKind,
) -> Dispatch {
    let entry = Entry::many(kind, router.workers() as u32);
    broadcast_entry(session, router, op, entry)
}

/// Sends `op` to every worker, with `entry` waiting in the reorder buffer for all their answers
/// (one part per worker).
pub fn broadcast_entry<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    op: Op,
    entry: Entry,
) -> Dispatch {
    let workers = router.workers();
    if (0..workers).any(|worker| !router.has_room(worker, 1)) {
        return Dispatch::Blocked;
    }
    let seq = session.order.push(entry);
    for worker in 0..workers {
        router.send(
            worker,
            Request {
                conn: session.id,
                seq,
                part: worker as u16,
                op,
                flags: 0,
                hash: 0,
                number: 0,
                key: Bytes::empty(),
                value: Bytes::empty(),
                extra: None,
            },
        );
    }
    Dispatch::Done
}

/// Sends one SCAN page request to the worker the client's cursor names
/// (`cursor = shard_cursor * workers + worker`, see `worker::client_cursor`).
/// `flags` are [`scan_flags`]; [`scan_flags::MATCH`] must be set exactly when `pattern` is.
pub fn scan<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    cursor: u64,
    count: u64,
    pattern: Option<&[u8]>,
    flags: u8,
) -> Dispatch {
    debug_assert_eq!(pattern.is_some(), flags & scan_flags::MATCH != 0);
    let workers = router.workers() as u64;
    let worker = (cursor % workers) as usize;
    let shard_cursor = cursor / workers;
    if !router.has_room(worker, 1) {
        return Dispatch::Blocked;
    }
    let seq = session.order.push(Entry::One(None));
    router.send(
        worker,
        Request {
            conn: session.id,
            seq,
            part: 0,
            op: Op::Scan,
            flags,
            // SCAN carries COUNT in the hash field (there is no key to hash).
            hash: count,
            number: shard_cursor as i64,
            key: Bytes::empty(),
            value: Bytes::copy_from(pattern.unwrap_or_default()),
            extra: None,
        },
    );
    Dispatch::Done
}
