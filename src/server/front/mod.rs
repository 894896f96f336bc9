//! The front ends: one per protocol, each turning a connection's bytes into answers and routed
//! requests, and the worker's typed outcomes back into that protocol's words.
//!
//! - [`serve`]: the framing loop, written once for every protocol ([`serve::FrontEnd`]).
//! - [`resp`]: RESP2 (data commands; [`resp::admin`] for the rest; [`resp::words`]).
//! - [`capnp`]: Cap'n Proto ([`capnp::words`]).
//!
//! [`FrontEnds`] holds both front ends with what every connection shares (the router and
//! [`ServerInfo`]) and picks the protocol a connection speaks. The reactor and the in-process
//! benchmark pair drive connections through it; nothing here touches a socket.

pub mod capnp;
pub mod resp;
pub mod serve;

use piccolo_queues::Variant;

use self::capnp::Capnp;
use self::capnp::words::CapnpWords;
use self::resp::Resp;
use self::resp::words::RespWords;
use self::serve::{Buffered, Served, Shared, Stop};
use super::info::ServerInfo;
use super::message::Reply;
use super::route::Router;
use super::session::{Session, Wire};
use crate::proto::detect;
use crate::proto::resp::Limits;

/// Both front ends, the router and the server's numbers: what the reactor (or the benchmark
/// pair) needs to serve any connection.
pub struct FrontEnds<V: Variant> {
    /// The request rings and in-flight budgets.
    pub router: Router<V>,
    /// What INFO, CONFIG and HELLO report.
    pub info: ServerInfo,
    resp: Resp,
    capnp: Capnp,
}

impl<V: Variant> FrontEnds<V> {
    /// Front ends with RESP's `limits` and Cap'n Proto frames bounded by
    /// `info.max_query_bytes`.
    pub fn new(router: Router<V>, info: ServerInfo, limits: Limits) -> FrontEnds<V> {
        let capnp = Capnp::new(info.max_query_bytes);
        FrontEnds {
            router,
            info,
            resp: Resp { limits },
            capnp,
        }
    }

    /// Serves `buffered`: decides the connection's protocol from its first byte if not yet
    /// known, then dispatches every whole request (see [`serve::serve`]).
    // Always inlined: two callers (the reactor and the benchmark pair), and the call would be
    // paid on every read.
    #[inline(always)]
    pub fn serve(&mut self, session: &mut Session, buffered: Buffered<'_>) -> Served {
        if let (Wire::Undecided, Some(&first)) = (&session.wire, buffered.bytes.first()) {
            session.speak(detect(first));
        }
        let shared = Shared {
            router: &mut self.router,
            info: &mut self.info,
        };
        match session.wire {
            Wire::Undecided => Served {
                used: 0,
                stop: Stop::More,
                failure: None,
            },
            Wire::Resp => serve::serve(&mut self.resp, session, shared, buffered),
            Wire::Capnp(_) => serve::serve(&mut self.capnp, session, shared, buffered),
        }
    }

    /// Refuses every whole request in `buffer` with the shutting-down error (see
    /// [`serve::refuse`]). Returns the bytes consumed and the requests refused.
    pub fn refuse(
        &mut self,
        session: &mut Session,
        buffer: &[u8],
        max_output_bytes: usize,
    ) -> (usize, usize) {
        match session.wire {
            Wire::Undecided => (0, 0),
            Wire::Resp => serve::refuse(&mut self.resp, session, buffer, max_output_bytes),
            Wire::Capnp(_) => serve::refuse(&mut self.capnp, session, buffer, max_output_bytes),
        }
    }
}

/// Files a worker's reply in the session's reorder buffer, encoded in the connection's
/// protocol. Returns whether anything was written to the output.
#[inline]
pub fn deliver(session: &mut Session, reply: Reply) -> bool {
    match &mut session.wire {
        Wire::Resp => session
            .order
            .deliver(reply, &mut RespWords, &mut session.out),
        Wire::Capnp(encoder) => {
            let words = &mut CapnpWords(encoder);
            session.order.deliver(reply, words, &mut session.out)
        }
        Wire::Undecided => {
            debug_assert!(false, "a reply for a connection that sent nothing");
            false
        }
    }
}
