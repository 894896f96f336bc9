//! Instruction counts (callgrind) of whole requests through an in-process reactor-and-worker
//! pair (`piccolo::server::reactor::bench_support::Pair`): RESP parse, dispatch and routing,
//! the request ring, the worker's `execute` on its shard, the reply ring, the reorder buffer
//! and the RESP reply. No sockets, threads or wake-ups: what is left is the user-space work a
//! request costs the server, minus `read`, `write` and `epoll`.
//!
//! The worker's shard holds 100,000 keys (loaded in the setup, outside the count and
//! uninstrumented, see `iai_support`). Cases: one
//! GET, one SET, and 16 pipelined GETs or SETs (`redis-benchmark -P 16`'s batch). The batched
//! ring variant, the server's default, carries them.

use iai_callgrind::{
    Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use piccolo::server::reactor::bench_support::{NOW_MS, Pair};
use piccolo::store::{SetOptions, hash_key};
use piccolo_queues::batched::Batched;

mod iai_support;

const KEYS: usize = 100_000;
const VALUE: &[u8; 32] = b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn key(index: usize) -> Vec<u8> {
    format!("key:{index:012}").into_bytes()
}

fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `count` pipelined GETs (or SETs) of loaded keys spread over the table.
fn commands(set: bool, count: usize, first: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for op in 0..count {
        let key = key(((first + op) * 7_919 + 13) % KEYS);
        if set {
            out.extend_from_slice(b"*3\r\n");
            bulk(&mut out, b"SET");
            bulk(&mut out, &key);
            bulk(&mut out, VALUE);
        } else {
            out.extend_from_slice(b"*2\r\n");
            bulk(&mut out, b"GET");
            bulk(&mut out, &key);
        }
    }
    out
}

/// A pair whose shard holds `KEYS` keys, warmed by one round of the same shape (so buffers
/// have grown), and the input to measure (other keys than the warm-up's).
fn setup(set: bool, count: usize) -> (Pair<Batched>, Vec<u8>) {
    iai_support::fix_hash_seed();
    let mut pair = Pair::<Batched>::new(4096, KEYS);
    let shard = pair.shard_mut();
    for index in 0..KEYS {
        let key = key(index);
        shard
            .set(hash_key(&key), &key, VALUE, SetOptions::default(), NOW_MS)
            .expect("set");
    }
    iai_support::start_instrumentation();
    // The warm-up round also checks the pair answers what the server would, so a broken pair
    // fails the run instead of reporting counts of nothing.
    let warm = commands(set, count, 1_000);
    assert_eq!(pair.round_trip(&warm), expected(set, count));
    (pair, commands(set, count, 0))
}

fn expected(set: bool, count: usize) -> Vec<u8> {
    let one: &[u8] = if set {
        b"+OK\r\n"
    } else {
        b"$32\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
    };
    one.repeat(count)
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

library_benchmark_group!(name = reactor_worker; benchmarks = request);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(
        iai_support::CACHE_ARGS.iter().chain(&["--instr-atstart=no"]),
    ));
    library_benchmark_groups = reactor_worker
);
