//! Instruction counts (callgrind) of whole requests through an in-process reactor-and-worker
//! pair (`piccolo::server::bench_support::Pair`): RESP parse, dispatch and routing,
//! the request ring, the worker's `execute` on its shard, the reply ring, the reorder buffer
//! and the RESP reply. No sockets, threads or wake-ups: what is left is the user-space work a
//! request costs the server, minus `read`, `write` and `epoll`.
//!
//! The worker's shard holds 100,000 keys (loaded in the setup, outside the count and
//! uninstrumented, see `iai_support`). Cases: one
//! GET, one SET, and 16 pipelined GETs or SETs (`redis-benchmark -P 16`'s batch). The batched
//! ring variant, the server's default, carries them.
//!
//! Group `reactor_worker` sends RESP; group `capnp_request` sends the same requests on the same
//! keys as framed Cap'n Proto Requests (`get`, `set`), through the server's Cap'n Proto front end
//! (`server::front::capnp`): frame length, in-place decode, dispatch, and Responses from the
//! reorder buffer.

use iai_callgrind::{
    Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use piccolo::proto::capnp::{self, FrameLimits, response};
use piccolo::server::bench_support::{NOW_MS, Pair};
use piccolo::store::{SetOptions, hash_key};
use piccolo_queues::batched::Batched;

mod iai_support;

use iai_support::{VALUE, capnp_requests, key, resp_commands};

const KEYS: usize = 100_000;

/// `count` loaded keys spread over the table, from the `first`th on.
fn keys(count: usize, first: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|op| key(((first + op) * 7_919 + 13) % KEYS))
        .collect()
}

/// A pair whose shard holds `KEYS` keys, warmed by one round of the same shape (so buffers
/// have grown), and the input to measure (other keys than the warm-up's).
fn setup(set: bool, count: usize) -> (Pair<Batched>, Vec<u8>) {
    iai_support::fix_hash_seed();
    let mut pair = Pair::<Batched>::new(4096, KEYS);
    load(&mut pair);
    // The warm-up round also checks the pair answers what the server would, so a broken pair
    // fails the run instead of reporting counts of nothing.
    let warm = resp_commands(set, &keys(count, 1_000));
    assert_eq!(pair.round_trip(&warm), expected(set, count));
    (pair, resp_commands(set, &keys(count, 0)))
}

/// Loads `KEYS` keys into the pair's shard (uninstrumented), then switches instrumentation on.
fn load(pair: &mut Pair<Batched>) {
    let shard = pair.shard_mut();
    for index in 0..KEYS {
        let key = key(index);
        shard
            .set(hash_key(&key), &key, VALUE, SetOptions::default(), NOW_MS)
            .expect("set");
    }
    iai_support::start_instrumentation();
}

fn expected(set: bool, count: usize) -> Vec<u8> {
    let one: &[u8] = if set {
        b"+OK\r\n"
    } else {
        b"$32\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
    };
    one.repeat(count)
}

/// [`setup`] for a Cap'n Proto connection: the same keys as framed Requests.
fn setup_capnp(set: bool, count: usize) -> (Pair<Batched>, Vec<u8>) {
    iai_support::fix_hash_seed();
    let mut pair = Pair::<Batched>::new_capnp(4096, KEYS);
    load(&mut pair);
    let warm = capnp_requests(set, &keys(count, 1_000));
    check_responses(pair.round_trip(&warm), set, count);
    let input = capnp_requests(set, &keys(count, 0));
    // The reactor's read buffer keeps frames 8-byte aligned, so it decodes them in place:
    // measure that path, not the copy into the scratch buffer.
    assert_eq!(input.as_ptr() as usize % 8, 0, "input not word-aligned");
    (pair, input)
}

/// Checks that `out` holds `count` Responses with ids 0, 1, .. answering GET (`value`, the
/// stored bytes and a version) or SET (`version`).
fn check_responses(out: &[u8], set: bool, count: usize) {
    let mut scratch = Vec::new();
    let mut start = 0;
    for id in 0..count as u64 {
        let len = capnp::frame_len(&out[start..], &FrameLimits::DEFAULT)
            .expect("a valid frame")
            .expect("a whole frame");
        let message = capnp::decode::<response::Owned>(&out[start..start + len], &mut scratch)
            .expect("decodes");
        let response = message.get().expect("a Response");
        assert_eq!(response.get_id(), id);
        match response.which().expect("a known answer") {
            response::Which::Version(version) if set => assert!(version > 0),
            response::Which::Value(value) if !set => {
                let value = value.expect("a value");
                assert_eq!(value.get_data().expect("data"), VALUE);
                assert!(value.get_version() > 0);
            }
            _ => panic!("unexpected answer to {}", if set { "SET" } else { "GET" }),
        }
        start += len;
    }
    assert_eq!(start, out.len(), "more Responses than requests");
}

#[library_benchmark]
#[bench::get1(args = (false, 1), setup = setup)]
#[bench::set1(args = (true, 1), setup = setup)]
#[bench::get16(args = (false, 16), setup = setup)]
#[bench::set16(args = (true, 16), setup = setup)]
fn request((mut pair, input): (Pair<Batched>, Vec<u8>)) -> ((Pair<Batched>, Vec<u8>), usize) {
    // The inputs go back out so they are dropped after the count stops.
    let len = pair.round_trip(&input).len();
    ((pair, input), len)
}

#[library_benchmark]
#[bench::get1(args = (false, 1), setup = setup_capnp)]
#[bench::set1(args = (true, 1), setup = setup_capnp)]
#[bench::get16(args = (false, 16), setup = setup_capnp)]
#[bench::set16(args = (true, 16), setup = setup_capnp)]
fn round_trip((mut pair, input): (Pair<Batched>, Vec<u8>)) -> ((Pair<Batched>, Vec<u8>), usize) {
    let len = pair.round_trip(&input).len();
    ((pair, input), len)
}

library_benchmark_group!(name = reactor_worker; benchmarks = request);
library_benchmark_group!(name = capnp_request; benchmarks = round_trip);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(
        iai_support::CACHE_ARGS.iter().chain(&["--instr-atstart=no"]),
    ));
    library_benchmark_groups = reactor_worker, capnp_request
);
