//! Instruction counts (callgrind) of the Raft core: a 3-node group in one process
//! (`raft::sim::group`: perfect network, writes durable at once), so everything counted is the
//! three cores' own work (stepping, readying, the leader's commit rule, applying), plus the
//! moves of messages between them.
//!
//! - `commit::one_at_a_time`: 64 entries of 32 bytes, each proposed alone and driven until all
//!   three nodes applied it (one round trip per entry).
//! - `commit::batched`: 10 batches of 64 entries, each batch proposed at once.
//! - `read::read_index`: 64 linearizable reads, each confirmed by its own heartbeat round.
//!
//! The setup (three nodes, an election, a warm-up of 64 entries) is not counted. Each benchmark
//! checks what it measured (entries applied on every node, reads answered) before returning.
//! `perf/raft-yardstick.sh` runs the same workloads through tikv/raft-rs for comparison.
//!
//! Run with `cargo bench --bench iai_raft` (needs valgrind and `iai-callgrind-runner` 0.16.1;
//! `perf/iai/gate.sh` installs the runner).

use std::hint::black_box;

use iai_callgrind::{
    Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use piccolo::raft::sim::group::Group;
use piccolo::raft::{Config, Data};

mod iai_support;

/// Payload bytes per entry (redis-benchmark's `-d 32`).
const ENTRY_BYTES: usize = 32;

fn payload(at: usize) -> Data {
    let mut bytes = [0u8; ENTRY_BYTES];
    bytes[..8].copy_from_slice(&(at as u64).to_le_bytes());
    Data::from(&bytes[..])
}

/// Three nodes, node 1 elected, 64 entries committed to warm the buffers up.
fn group() -> Group {
    let mut group = Group::new(3, |id| Config::new(id, 1, Vec::new(), id));
    group.elect(1);
    for at in 0..64 {
        group.nodes[0].propose(payload(at)).expect("leader");
        group.run();
    }
    group
}

#[library_benchmark]
#[bench::single64(group())]
fn one_at_a_time(mut group: Group) -> Group {
    let before = group.applied;
    for at in 0..64 {
        group.nodes[0]
            .propose(black_box(payload(at)))
            .expect("leader");
        group.run();
    }
    assert_eq!(group.applied - before, 3 * 64);
    group
}

#[library_benchmark]
#[bench::batch640(group())]
fn batched(mut group: Group) -> Group {
    let before = group.applied;
    for round in 0..10 {
        let batch: Vec<Data> = (0..64).map(|at| payload(round * 64 + at)).collect();
        group.nodes[0]
            .propose_batch(black_box(batch))
            .expect("leader");
        group.run();
    }
    assert_eq!(group.applied - before, 3 * 640);
    group
}

#[library_benchmark]
#[bench::reads64(group())]
fn read_index(mut group: Group) -> Group {
    let before = group.reads.len();
    for ctx in 0..64 {
        group.nodes[0].read_index(black_box(ctx)).expect("leader");
        group.run();
    }
    assert_eq!(group.reads.len() - before, 64);
    group
}

library_benchmark_group!(name = commit; benchmarks = one_at_a_time, batched);
library_benchmark_group!(name = read; benchmarks = read_index);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(iai_support::CACHE_ARGS));
    library_benchmark_groups = commit, read
);
