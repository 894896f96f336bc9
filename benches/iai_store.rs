//! Instruction counts (callgrind) of the store on a shard holding 1M keys (`key:` + 12 digits,
//! 32-byte values, as `redis-benchmark -r 1000000 -d 32` writes them). Each benchmark runs 1,000
//! operations on keys spread over the whole table, so the simulated cache sees a realistic
//! spread of misses; divide by 1,000 for one operation. Loading the shard is the setup,
//! outside the count, and runs uninstrumented (`iai_support`); a warm-up round on other keys
//! then fills the simulated caches.
//!
//! Every benchmark hands its inputs back, so dropping them (the shard, the key list) happens
//! after the count stops.
//!
//! - `get_hit`, `get_miss` (absent keys), `set_new` (absent keys), `set_overwrite` (present
//!   keys, same value size: written in place), `delete` (present keys).

use std::hint::black_box;

use iai_callgrind::{
    Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use piccolo::store::{Config, SetOptions, Shard, hash_key};

mod iai_support;

const KEYS: usize = 1_000_000;
const OPS: usize = 1_000;
const NOW_MS: u64 = 1_750_000_000_000;

fn key(index: usize) -> Vec<u8> {
    format!("key:{index:012}").into_bytes()
}

fn value(index: usize) -> [u8; 32] {
    let mut value = [b'v'; 32];
    value[..8].copy_from_slice(&(index as u64).to_le_bytes());
    value
}

/// `OPS` keys spread over the loaded ones (stride coprime with `KEYS`), or as many absent keys;
/// `first` picks another set (the warm-up's).
fn op_keys(present: bool, first: usize) -> Vec<(u64, Vec<u8>)> {
    (0..OPS)
        .map(|op| {
            let index = ((first + op) * 7_919 + 13) % KEYS;
            let key = if present {
                key(index)
            } else {
                key(KEYS + index)
            };
            (hash_key(&key), key)
        })
        .collect()
}

type Input = (Shard, Vec<(u64, Vec<u8>)>);

fn loaded(present: bool) -> Input {
    iai_support::fix_hash_seed();
    let mut shard = Shard::with_capacity(Config::default(), 0);
    for index in 0..KEYS {
        let key = key(index);
        shard
            .set(
                hash_key(&key),
                &key,
                &value(index),
                SetOptions::default(),
                NOW_MS,
            )
            .expect("set");
    }
    assert_eq!(shard.len(), KEYS);
    // Steady state: finish the table's incremental migrations (and any cleaning) as an idle
    // worker would, so the counts are of the operations alone. What growth costs is measured
    // by `cargo bench --bench store -- growth`; where the last migration ends depends on the
    // partition count, and without this the counts would move with it.
    while shard.needs_cleaning() {
        shard.clean_step(1 << 20);
    }
    iai_support::start_instrumentation();
    // Warm-up: reads of other present keys, then of other absent ones.
    for (hash, key) in op_keys(true, OPS).iter().chain(&op_keys(false, OPS)) {
        black_box(shard.get(*hash, key, NOW_MS));
    }
    (shard, op_keys(present, 0))
}

fn loaded_hits() -> Input {
    loaded(true)
}

fn loaded_misses() -> Input {
    loaded(false)
}

#[library_benchmark]
#[bench::keys_1m_x1000(setup = loaded_hits)]
fn get_hit((mut shard, keys): Input) -> (Input, usize) {
    let mut bytes = 0;
    for (hash, key) in &keys {
        bytes += shard.get(*hash, key, NOW_MS).expect("present").bytes.len();
    }
    assert_eq!(bytes, 32 * OPS);
    ((shard, keys), bytes)
}

#[library_benchmark]
#[bench::keys_1m_x1000(setup = loaded_misses)]
fn get_miss((mut shard, keys): Input) -> (Input, usize) {
    let mut found = 0;
    for (hash, key) in &keys {
        found += usize::from(shard.get(*hash, key, NOW_MS).is_some());
    }
    assert_eq!(found, 0);
    ((shard, keys), found)
}

#[library_benchmark]
#[bench::keys_1m_x1000(setup = loaded_misses)]
fn set_new((mut shard, keys): Input) -> (Input, usize) {
    for (index, (hash, key)) in keys.iter().enumerate() {
        let outcome = shard
            .set(*hash, key, &value(index), SetOptions::default(), NOW_MS)
            .expect("set");
        black_box(outcome);
    }
    let len = shard.len();
    assert_eq!(len, KEYS + OPS);
    ((shard, keys), len)
}

#[library_benchmark]
#[bench::keys_1m_x1000(setup = loaded_hits)]
fn set_overwrite((mut shard, keys): Input) -> (Input, usize) {
    for (index, (hash, key)) in keys.iter().enumerate() {
        let outcome = shard
            .set(*hash, key, &value(index + 1), SetOptions::default(), NOW_MS)
            .expect("set");
        black_box(outcome);
    }
    let len = shard.len();
    assert_eq!(len, KEYS);
    ((shard, keys), len)
}

#[library_benchmark]
#[bench::keys_1m_x1000(setup = loaded_hits)]
fn delete((mut shard, keys): Input) -> (Input, usize) {
    let mut deleted = 0;
    for (hash, key) in &keys {
        deleted += usize::from(shard.delete(*hash, key, NOW_MS));
    }
    assert_eq!(deleted, OPS);
    ((shard, keys), deleted)
}

library_benchmark_group!(
    name = shard_1m;
    benchmarks = get_hit, get_miss, set_new, set_overwrite, delete
);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(
        iai_support::CACHE_ARGS.iter().chain(&["--instr-atstart=no"]),
    ));
    library_benchmark_groups = shard_1m
);
