//! An in-process reactor-and-worker pair for the instruction-count benchmarks
//! (`benches/iai_request.rs`): no sockets, no threads, no clock.
//!
//! [`Pair::round_trip`] takes the bytes a client would send and runs them through the same code
//! the server runs, in the same order: the connection's front end ([`FrontEnds::serve`]: framing,
//! RESP parse or Cap'n Proto decode, dispatch and routing into the worker's request ring), the
//! deferred publish, the worker's batch pop and [`execute`] on its shard, the reply ring, and
//! [`front::deliver`] into the connection's reorder buffer, which encodes the replies. What it
//! leaves out is only what needs the kernel: `read`/`write`, `epoll` and the wake-ups. It is
//! public for the benchmarks only and not part of the supported API.

use std::net::SocketAddr;
use std::time::Instant;

use piccolo_queues::{RingConsumer, RingProducer, Variant};

use super::execute::execute;
use super::front::serve::{Buffered, Stop};
use super::front::{self, FrontEnds};
use super::info::ServerInfo;
use super::message::{ConnId, Reply, Request};
use super::route::Router;
use super::session::Session;
use crate::proto::Protocol;
use crate::proto::resp::Limits;
use crate::store::{Config, Shard};

/// The fixed "now" of the pair's worker (ms since the epoch), so runs are repeatable.
pub const NOW_MS: u64 = 1_750_000_000_000;

/// One reactor's connection state, its front ends with one worker, and that worker's shard.
pub struct Pair<V: Variant> {
    fronts: FrontEnds<V>,
    requests: V::Consumer<Request>,
    replies_tx: V::Producer<Reply>,
    replies: V::Consumer<Reply>,
    shard: Shard,
    session: Session,
}

impl<V: Variant> Pair<V> {
    /// A RESP pair with rings of `ring_capacity` slots and a shard sized for `keys` keys.
    pub fn new(ring_capacity: usize, keys: usize) -> Pair<V> {
        Pair::speaking(Protocol::Resp, ring_capacity, keys)
    }

    /// [`Pair::new`] for a Cap'n Proto connection: [`Pair::round_trip`] takes framed Requests
    /// and returns Responses.
    pub fn new_capnp(ring_capacity: usize, keys: usize) -> Pair<V> {
        Pair::speaking(Protocol::Capnp, ring_capacity, keys)
    }

    fn speaking(protocol: Protocol, ring_capacity: usize, keys: usize) -> Pair<V> {
        let (request_tx, requests) = V::channel::<Request>(ring_capacity);
        let (replies_tx, replies) = V::channel::<Reply>(ring_capacity);
        let addr: SocketAddr = crate::server::DEFAULT_ADDR
            .parse()
            .expect("the default address parses");
        let limits = Limits::REDIS;
        let info = ServerInfo {
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
        };
        let id = ConnId {
            index: 0,
            generation: 0,
        };
        let mut session = Session::new(id, 1, &info);
        session.speak(protocol);
        Pair {
            fronts: FrontEnds::new(Router::new(vec![request_tx], ring_capacity), info, limits),
            requests,
            replies_tx,
            replies,
            shard: Shard::with_capacity(Config::default(), keys),
            session,
        }
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
        let buffered = Buffered {
            bytes: input,
            in_flight_cap: usize::MAX,
        };
        let served = self.fronts.serve(&mut self.session, buffered);
        assert_eq!(served.failure, None, "benchmark input is valid");
        assert_eq!(served.stop, Stop::More, "the ring budget ran out");
        assert_eq!(
            served.used,
            input.len(),
            "benchmark input holds whole commands"
        );
        // Reactor: publish the deferred requests (no worker to wake here).
        self.fronts.router.publish(|_| false);
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
        let session = &mut self.session;
        let count = self.replies.pop_batch(usize::MAX, |reply| {
            front::deliver(session, reply);
        });
        self.fronts.router.answered(0, count);
        &self.session.out
    }
}
