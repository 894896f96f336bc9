//! Instruction counts (callgrind) of the durability log's append path, with no system call:
//! what a worker adds to each write when persistence is on, before the batch's one `write`.
//! Each benchmark appends 1,000 SET records (redis-benchmark's keys, `key:` + 12 digits, and
//! 32-byte values, `-d 32`) to a log whose buffer has already held a batch that size (the
//! steady state: the buffer keeps its capacity between batches). Divide by 1,000 for one.
//!
//! - `append_set`: `LogWriter::append` of a typed `Set` record (framing, varints, CRC32C,
//!   buffering).
//! - `encode_set`: the codec alone into a reserved buffer (what `append` adds is the
//!   difference).

use std::hint::black_box;
use std::sync::Arc;

use iai_callgrind::{
    Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use piccolo::persist::codec::{self, Record};
use piccolo::persist::sim::SimDir;
use piccolo::persist::{ChainId, FsyncPolicy, LogConfig, LogWriter};

mod iai_support;

const OPS: usize = 1_000;

fn keys() -> Vec<Vec<u8>> {
    (0..OPS)
        .map(|i| iai_support::key(i * 7_919 % 1_000_000))
        .collect()
}

fn set(key: &[u8], version: u64) -> Record<'_> {
    Record::Set {
        key,
        value: iai_support::VALUE,
        version,
        expiry_ms: 0,
    }
}

type Input = (LogWriter<SimDir>, Vec<Vec<u8>>);

/// A log on the simulated disk (no system calls) whose buffer has held one batch.
fn warm_log() -> Input {
    let config = LogConfig {
        policy: FsyncPolicy::No,
        sync_thread: false,
        ..LogConfig::default()
    };
    let chain = ChainId {
        epoch: 1,
        worker: 0,
    };
    let mut log =
        LogWriter::create(Arc::new(SimDir::new()), chain, 1, 1, 0, 1, config, None).expect("log");
    let keys = keys();
    for (index, key) in keys.iter().enumerate() {
        log.append(&set(key, index as u64 + 1));
    }
    log.commit(1).expect("commit");
    assert_eq!(log.pending_bytes(), 0);
    (log, keys)
}

#[library_benchmark]
#[bench::key16_value32_x1000(setup = warm_log)]
fn append_set((mut log, keys): Input) -> (Input, u64) {
    let mut last = 0;
    for (index, key) in keys.iter().enumerate() {
        last = log.append(&set(key, 10_000 + index as u64));
    }
    assert_eq!(last, 2 * OPS as u64);
    assert!(log.pending_bytes() > OPS * 60);
    ((log, keys), last)
}

fn reserved() -> (Vec<u8>, Vec<Vec<u8>>) {
    (Vec::with_capacity(OPS * 128), keys())
}

#[library_benchmark]
#[bench::key16_value32_x1000(setup = reserved)]
fn encode_set((mut out, keys): (Vec<u8>, Vec<Vec<u8>>)) -> ((Vec<u8>, Vec<Vec<u8>>), usize) {
    let mut bytes = 0;
    for (index, key) in keys.iter().enumerate() {
        bytes += codec::encode(&mut out, index as u64 + 1, &set(key, index as u64 + 1));
    }
    assert_eq!(bytes, out.len());
    black_box(&out);
    ((out, keys), bytes)
}

library_benchmark_group!(name = log_append; benchmarks = append_set, encode_set);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(iai_support::CACHE_ARGS));
    library_benchmark_groups = log_append
);
