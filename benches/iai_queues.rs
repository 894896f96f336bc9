//! Instruction counts (callgrind) of the rings between reactor and workers, for each variant:
//! 64 values the size of the server's `Request`, moved through a ring of 4096 slots (the
//! server's default) on one thread.
//!
//! - `single`: push one, pop one, 64 times (the ring is never more than one deep).
//! - `batched`: push 64 deferred, one flush, one `pop_batch` of 64, as the reactor and workers
//!   use the rings.
//!
//! The ring ends go back out of each benchmark, so freeing them is not counted.
//!
//! Single-threaded on purpose: the counts are the instructions of the ring code itself. The
//! cross-core costs (cache-line transfers) are what `cargo bench --bench queues` measures.

use std::hint::black_box;

use iai_callgrind::{
    Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use piccolo::server::message::Request;
use piccolo_queues::batched::Batched;
use piccolo_queues::cached::Cached;
use piccolo_queues::lamport::Lamport;
use piccolo_queues::mutex::Locked;
use piccolo_queues::{RingConsumer, RingProducer, Variant};

mod iai_support;

const VALUES: usize = 64;
const CAPACITY: usize = 4096;

/// A stand-in for `Request` of the same size, cheap to make.
type Payload = [u64; size_of::<Request>() / 8];

type Ends<V> = (
    <V as Variant>::Producer<Payload>,
    <V as Variant>::Consumer<Payload>,
);

/// A ring that already carried a few values (so first-touch costs are outside the count).
fn ring<V: Variant>() -> Ends<V> {
    let (mut tx, mut rx) = V::channel::<Payload>(CAPACITY);
    for index in 0..2 * VALUES {
        tx.push([index as u64; size_of::<Request>() / 8])
            .expect("room");
        rx.pop().expect("a value");
    }
    (tx, rx)
}

fn run_single<V: Variant>((mut tx, mut rx): Ends<V>) -> (Ends<V>, u64) {
    let mut sum = 0;
    for index in 0..VALUES {
        if tx
            .push(black_box([index as u64; size_of::<Request>() / 8]))
            .is_err()
        {
            panic!("ring full");
        }
        sum += rx.pop().expect("a value")[0];
    }
    ((tx, rx), sum)
}

fn run_batch<V: Variant>((mut tx, mut rx): Ends<V>) -> (Ends<V>, u64) {
    for index in 0..VALUES {
        if tx
            .push_deferred(black_box([index as u64; size_of::<Request>() / 8]))
            .is_err()
        {
            panic!("ring full");
        }
    }
    tx.flush();
    let mut sum = 0;
    let popped = rx.pop_batch(VALUES, |value| sum += value[0]);
    assert_eq!(popped, VALUES);
    ((tx, rx), sum)
}

#[library_benchmark]
#[bench::lamport(ring::<Lamport>())]
fn single_lamport(ends: Ends<Lamport>) -> (Ends<Lamport>, u64) {
    run_single::<Lamport>(ends)
}

#[library_benchmark]
#[bench::cached(ring::<Cached>())]
fn single_cached(ends: Ends<Cached>) -> (Ends<Cached>, u64) {
    run_single::<Cached>(ends)
}

#[library_benchmark]
#[bench::batched(ring::<Batched>())]
fn single_batched(ends: Ends<Batched>) -> (Ends<Batched>, u64) {
    run_single::<Batched>(ends)
}

#[library_benchmark]
#[bench::mutex(ring::<Locked>())]
fn single_mutex(ends: Ends<Locked>) -> (Ends<Locked>, u64) {
    run_single::<Locked>(ends)
}

#[library_benchmark]
#[bench::lamport(ring::<Lamport>())]
fn batch_lamport(ends: Ends<Lamport>) -> (Ends<Lamport>, u64) {
    run_batch::<Lamport>(ends)
}

#[library_benchmark]
#[bench::cached(ring::<Cached>())]
fn batch_cached(ends: Ends<Cached>) -> (Ends<Cached>, u64) {
    run_batch::<Cached>(ends)
}

#[library_benchmark]
#[bench::batched(ring::<Batched>())]
fn batch_batched(ends: Ends<Batched>) -> (Ends<Batched>, u64) {
    run_batch::<Batched>(ends)
}

#[library_benchmark]
#[bench::mutex(ring::<Locked>())]
fn batch_mutex(ends: Ends<Locked>) -> (Ends<Locked>, u64) {
    run_batch::<Locked>(ends)
}

library_benchmark_group!(
    name = push_pop_single;
    benchmarks = single_lamport, single_cached, single_batched, single_mutex
);
library_benchmark_group!(
    name = push_pop_batch64;
    benchmarks = batch_lamport, batch_cached, batch_batched, batch_mutex
);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(iai_support::CACHE_ARGS));
    library_benchmark_groups = push_pop_single, push_pop_batch64
);
