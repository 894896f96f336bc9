//! An in-process reactor-and-worker pair for the instruction-count benchmarks
//! (`benches/iai_request.rs`): no sockets, no threads, no clock.
//!
//! [`Pair::round_trip`] takes the bytes a client would send and runs them through the same code
//! the server runs, in the same order: RESP parse ([`resp::parse`]), dispatch
//! ([`super::super::commands::dispatch`]) and routing into the worker's request ring, the
//! deferred publish, the worker's batch pop and [`super::super::worker::execute`] on its shard,
//! the reply ring, and the connection's reorder buffer, which encodes the replies. What it leaves
//! out is only what needs the kernel: `read`/`write`, `epoll` and the wake-ups. It is public for
//! the benchmarks only and not part of the supported API.
//!
//! A pair made with [`Pair::new_capnp`] is a Cap'n Proto connection instead: its
//! [`Pair::round_trip`] takes framed Requests and runs what `Reactor::parse_capnp` runs
//! ([`capnp::frame_len`], [`capnp::decode_request`], [`capnp_dispatch::dispatch`]), then the same
//! rings and worker, and its reorder buffer encodes Responses.

use std::net::SocketAddr;
use std::time::Instant;

use piccolo_queues::{RingConsumer, RingProducer, Variant};

use super::{CAPNP_FIRST_SEGMENT_WORDS, Router, ServerInfo, Session};
use crate::proto::capnp::{self, FrameLimits};
use crate::proto::resp::{self, Limits};
use crate::server::capnp_dispatch;
use crate::server::commands::{Dispatch, dispatch};
use crate::server::message::{ConnId, Reply, Request};
use crate::server::order::Order;
use crate::server::worker::execute;
use crate::store::{Config, Shard};

/// The fixed "now" of the pair's worker (ms since the epoch), so runs are repeatable.
pub const NOW_MS: u64 = 1_750_000_000_000;

/// One reactor's connection state, its router with one worker, and that worker's shard.
pub struct Pair<V: Variant> {
    router: Router<V>,
    requests: V::Consumer<Request>,
    replies_tx: V::Producer<Reply>,
    replies: V::Consumer<Reply>,
    shard: Shard,
    session: Session,
    info: ServerInfo,
    limits: Limits,
    /// `Some` for a Cap'n Proto connection: the reactor's frame limits and its scratch space
    /// for unaligned frames.
    capnp: Option<(FrameLimits, Vec<::capnp::Word>)>,
}

impl<V: Variant> Pair<V> {
    /// A pair with rings of `ring_capacity` slots and a shard sized for `keys` keys.
    pub fn new(ring_capacity: usize, keys: usize) -> Pair<V> {
        let (request_tx, requests) = V::channel::<Request>(ring_capacity);
        let (replies_tx, replies) = V::channel::<Reply>(ring_capacity);
        let limits = Limits::REDIS;
        let addr: SocketAddr = crate::server::DEFAULT_ADDR
            .parse()
            .expect("the default address parses");
        Pair {
            router: Router {
                producers: vec![request_tx],
                in_flight: vec![0],
                capacity: ring_capacity,
                touched: vec![false],
                counts: vec![0],
            },
            requests,
            replies_tx,
            replies,
            shard: Shard::with_capacity(Config::default(), keys),
            session: Session {
                id: ConnId {
                    index: 0,
                    generation: 0,
                },
                client_id: 1,
                order: Order::default(),
                out: Vec::new(),
                name: None,
                closing: false,
                authenticated: true,
                shutdown_requested: false,
            },
            info: ServerInfo {
                version: env!("CARGO_PKG_VERSION"),
                addr,
                workers: 1,
                queue: V::NAME,
                started: Instant::now(),
                maxclients: 1,
                connected_clients: 1,
                total_connections: 1,
                commands_processed: 0,
                wakeups_to_workers: 0,
                limits,
                max_query_bytes: crate::server::MAX_QUERY_BYTES,
                requirepass: None,
            },
            limits,
            capnp: None,
        }
    }

    /// [`Pair::new`] for a Cap'n Proto connection: the session encodes Responses (with the
    /// reactor's first-segment size) and [`Pair::round_trip`] takes framed Requests.
    pub fn new_capnp(ring_capacity: usize, keys: usize) -> Pair<V> {
        let mut pair = Pair::new(ring_capacity, keys);
        pair.session.order.use_capnp(CAPNP_FIRST_SEGMENT_WORDS);
        // As `Reactor::parse_capnp` bounds frames.
        let limits = FrameLimits {
            max_message_bytes: FrameLimits::DEFAULT
                .max_message_bytes
                .min(pair.info.max_query_bytes),
            ..FrameLimits::DEFAULT
        };
        pair.capnp = Some((limits, Vec::new()));
        pair
    }

    /// The worker's shard, to load keys before measuring.
    pub fn shard_mut(&mut self) -> &mut Shard {
        &mut self.shard
    }

    /// Runs every whole command in `input` (RESP, or framed Cap'n Proto Requests for a pair
    /// from [`Pair::new_capnp`]) through reactor and worker and returns the bytes the client
    /// would read. Panics on a protocol error, on a command left unparsed, or if the ring budget
    /// runs out (the caller sends at most `ring_capacity` commands at once).
    pub fn round_trip(&mut self, input: &[u8]) -> &[u8] {
        self.session.out.clear();
        // Reactor: parse and dispatch everything buffered (requests are pushed deferred).
        if self.capnp.is_some() {
            self.parse_capnp(input);
        } else {
            self.parse_resp(input);
        }
        // Reactor: publish the deferred requests (no worker to wake here).
        if std::mem::take(&mut self.router.touched[0]) {
            self.router.producers[0].flush();
        }
        // Worker: one batch, then publish the replies.
        let shard = &mut self.shard;
        let replies_tx = &mut self.replies_tx;
        self.requests.pop_batch(usize::MAX, |request| {
            let reply = execute(shard, request, NOW_MS);
            if replies_tx.push_deferred(reply).is_err() {
                unreachable!("reply ring full despite the in-flight budget");
            }
        });
        self.replies_tx.flush();
        // Reactor: file the replies; the reorder buffer writes them out in order.
        let in_flight = &mut self.router.in_flight[0];
        let session = &mut self.session;
        self.replies.pop_batch(usize::MAX, |reply| {
            *in_flight -= 1;
            session.order.deliver(reply, &mut session.out);
        });
        &self.session.out
    }

    /// The RESP half of `Reactor::parse`.
    fn parse_resp(&mut self, input: &[u8]) {
        let mut start = 0;
        while start < input.len() {
            let (command, used) = resp::parse(&input[start..], &self.limits)
                .expect("benchmark input is valid RESP")
                .expect("benchmark input holds whole commands");
            let outcome = dispatch(&command, &mut self.session, &mut self.router, &self.info);
            assert_eq!(outcome, Dispatch::Done, "the ring budget ran out");
            self.info.commands_processed += 1;
            start += used;
        }
    }

    /// `Reactor::parse_capnp`: frame, decode in place (or via the scratch buffer when `input`
    /// is not 8-byte aligned), dispatch.
    fn parse_capnp(&mut self, input: &[u8]) {
        let Some((limits, scratch)) = self.capnp.as_mut() else {
            unreachable!("only called for a Cap'n Proto pair");
        };
        let mut start = 0;
        while start < input.len() {
            let len = capnp::frame_len(&input[start..], limits)
                .expect("benchmark frames are within the limits")
                .expect("benchmark input holds whole frames");
            let frame = &input[start..start + len];
            let outcome = capnp::decode_request(frame, scratch).and_then(|message| {
                let request = message.get()?;
                capnp_dispatch::dispatch(request, &mut self.session, &mut self.router, &self.info)
            });
            let outcome = outcome.expect("benchmark input is a valid Request");
            assert_eq!(outcome, Dispatch::Done, "the ring budget ran out");
            self.info.commands_processed += 1;
            start += len;
        }
    }
}
