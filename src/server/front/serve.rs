//! The framing loop, written once for every protocol: take whole requests from a connection's
//! buffered bytes, one at a time, and dispatch them (or, at shutdown, refuse them) until the
//! bytes run out, a worker's budget or the connection's in-flight bound blocks, or the
//! connection must close.
//!
//! A protocol plugs in as a [`FrontEnd`]: how to find the next whole request
//! ([`FrontEnd::next_frame`]), what to do with it ([`FrontEnd::dispatch`]), how to refuse it
//! ([`FrontEnd::refuse`]) and how to answer a stream it cannot resynchronise
//! ([`FrontEnd::fail`]). The reactor, shutdown and the in-process benchmark pair all run
//! [`serve`] and [`refuse`].

use std::fmt;

use piccolo_queues::Variant;

use crate::server::info::ServerInfo;
use crate::server::route::{Dispatch, Router};
use crate::server::session::Session;

/// One protocol's request side.
pub trait FrontEnd {
    /// A whole request taken from the buffer (it may borrow the buffer and the front end's
    /// scratch space).
    type Frame<'a>
    where
        Self: 'a;
    /// A stream the connection cannot recover from (the connection is answered and closed).
    type Failure: fmt::Display;

    /// The next whole request at the start of `buffer` and its length in bytes; `Ok(None)`
    /// when it has not all arrived yet.
    #[allow(clippy::type_complexity)]
    fn next_frame<'a>(
        &'a mut self,
        buffer: &'a [u8],
    ) -> Result<Option<(Self::Frame<'a>, usize)>, Self::Failure>;

    /// Whether the frame is a command (RESP's empty inline lines are not: skipped, not counted).
    fn is_command(_frame: &Self::Frame<'_>) -> bool {
        true
    }

    /// Answers the request or routes it to the workers.
    fn dispatch<V: Variant>(
        frame: Self::Frame<'_>,
        session: &mut Session,
        router: &mut Router<V>,
        info: &ServerInfo,
    ) -> Result<Dispatch, Self::Failure>;

    /// Answers the request with the shutting-down error without running it. `Err`: the request
    /// cannot be read well enough to answer it (refusing stops there).
    fn refuse(frame: Self::Frame<'_>, session: &mut Session) -> Result<(), Self::Failure>;

    /// Answers a failure (the protocol's error reply); the caller closes the connection.
    fn fail(failure: &Self::Failure, session: &mut Session);
}

/// Why [`serve`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// It needs more bytes.
    More,
    /// Blocked by a worker's budget or the connection's in-flight bound; retry after replies.
    Blocked,
    /// The connection is closing (QUIT, SHUTDOWN, a protocol error).
    Closing,
}

/// What [`serve`] did with a buffer.
#[derive(Debug)]
pub struct Served {
    /// Bytes consumed from the front of the buffer.
    pub used: usize,
    /// Why it stopped.
    pub stop: Stop,
    /// The failure that closes the connection, worded for the log.
    pub failure: Option<String>,
}

/// What every connection's dispatch shares: the router and what INFO reports.
pub struct Shared<'a, V: Variant> {
    /// The request rings and budgets.
    pub router: &'a mut Router<V>,
    /// The server's numbers (dispatch counts commands in it).
    pub info: &'a mut ServerInfo,
}

/// A connection's bytes not yet parsed, and how many of its commands may wait for replies.
#[derive(Clone, Copy, Debug)]
pub struct Buffered<'a> {
    /// The bytes.
    pub bytes: &'a [u8],
    /// Commands that may be waiting for replies at once (`Order::len`).
    pub in_flight_cap: usize,
}

/// Answers `failure` and closes the connection.
#[cold]
#[inline(never)]
fn failed<F: FrontEnd>(failure: &F::Failure, session: &mut Session, used: usize) -> Served {
    F::fail(failure, session);
    session.closing = true;
    Served {
        used,
        stop: Stop::Closing,
        failure: Some(failure.to_string()),
    }
}

#[inline]
fn served(used: usize, stop: Stop) -> Served {
    Served {
        used,
        stop,
        failure: None,
    }
}

/// Runs every whole request in `buffered` through `front` while the connection has fewer than
/// `in_flight_cap` commands waiting. Counts each command dispatched in
/// `info.commands_processed` as it goes (a later INFO in the same buffer sees it).
pub fn serve<F: FrontEnd, V: Variant>(
    front: &mut F,
    session: &mut Session,
    shared: Shared<'_, V>,
    buffered: Buffered<'_>,
) -> Served {
    let Shared { router, info } = shared;
    let Buffered {
        bytes: buffer,
        in_flight_cap,
    } = buffered;
    let mut used = 0;
    if session.closing {
        return served(0, Stop::Closing);
    }
    while used < buffer.len() {
        if session.order.len() >= in_flight_cap {
            return served(used, Stop::Blocked);
        }
        match front.next_frame(&buffer[used..]) {
            Ok(None) => break,
            Ok(Some((frame, len))) => {
                if F::is_command(&frame) {
                    match F::dispatch(frame, session, router, info) {
                        Ok(Dispatch::Done) => info.commands_processed += 1,
                        Ok(Dispatch::Blocked) => return served(used, Stop::Blocked),
                        Err(failure) => return failed::<F>(&failure, session, used),
                    }
                }
                used += len;
                if session.closing {
                    return served(used, Stop::Closing);
                }
            }
            Err(failure) => return failed::<F>(&failure, session, used),
        }
    }
    served(used, Stop::More)
}

/// At shutdown: answers every whole request in `buffer` with the shutting-down error, in its
/// place after the replies still in flight, until the output passes `max_output_bytes` or a
/// request cannot be read. Returns the bytes consumed and the requests refused.
pub fn refuse<F: FrontEnd>(
    front: &mut F,
    session: &mut Session,
    buffer: &[u8],
    max_output_bytes: usize,
) -> (usize, usize) {
    let mut used = 0;
    let mut refused = 0;
    while let Ok(Some((frame, len))) = front.next_frame(&buffer[used..]) {
        if session.out.len() > max_output_bytes {
            break;
        }
        if F::is_command(&frame) {
            if F::refuse(frame, session).is_err() {
                break;
            }
            refused += 1;
        }
        used += len;
    }
    (used, refused)
}
