//! Instruction counts (callgrind) of the protocol steps of the hot path, on the load
//! `redis-benchmark -P 16 -d 32` sends: 16 pipelined GETs or SETs of 16-byte keys and 32-byte
//! values.
//!
//! - `resp_parse`: [`resp::parse`] over a buffer of 16 commands, until it is empty.
//! - `capnp_decode`: the same 16 requests as Cap'n Proto frames: frame length, in-place decode,
//!   reading the key (and value).
//! - `reply_encode`: 16 RESP replies (`$32` bulk for GET, `+OK` for SET) and 16 Cap'n Proto
//!   Responses (`value`, `version`), through the message builder and through the direct writers
//!   ([`capnp::write_value_response`], [`capnp::write_version_response`]).
//! - `route`: the key slot (CRC16, hash tags) and the table hash of 16 keys.
//!
//! Each benchmark hands its inputs back, so freeing them is not counted.
//!
//! Run with `cargo bench --bench iai_proto` (needs valgrind and `iai-callgrind-runner` 0.16.1;
//! `perf/iai/gate.sh` installs the runner). `docs/performance-guards.md` explains the gate.

use std::hint::black_box;

use iai_callgrind::{
    Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use iai_support::VALUE;
use piccolo::proto::capnp::{self, FrameLimits, MessageEncoder, request};
use piccolo::proto::resp::{self, Limits};
use piccolo::proto::{reply, slot};
use piccolo::store::hash_key;

mod iai_support;

const PIPELINE: usize = 16;
const KEYS: usize = 1_000_000;

/// The 16 keys: spread over a million, as `redis-benchmark -r 1000000` draws them.
fn keys() -> Vec<Vec<u8>> {
    iai_support::fix_hash_seed();
    (0..PIPELINE)
        .map(|index| iai_support::key(index * 7919 % KEYS))
        .collect()
}

/// 16 pipelined RESP commands: GET key, or SET key value.
fn resp_input(set: bool) -> Vec<u8> {
    iai_support::resp_commands(set, &keys())
}

/// Frames, and the decoder's scratch space.
type CapnpInput = (Vec<u8>, Vec<::capnp::Word>);

/// The same 16 requests as Cap'n Proto frames.
fn capnp_input(set: bool) -> CapnpInput {
    (
        iai_support::capnp_requests(set, &keys()),
        Vec::with_capacity(64),
    )
}

#[library_benchmark]
#[bench::get16(resp_input(false))]
#[bench::set16(resp_input(true))]
fn resp_parse(input: Vec<u8>) -> (Vec<u8>, usize) {
    let limits = Limits::REDIS;
    let mut start = 0;
    let mut bytes = 0;
    while start < input.len() {
        let (command, used) = resp::parse(&input[start..], &limits)
            .expect("valid RESP")
            .expect("whole commands");
        bytes += command.iter().map(<[u8]>::len).sum::<usize>();
        black_box(command.name());
        start += used;
    }
    assert_eq!(start, input.len());
    (input, bytes)
}

#[library_benchmark]
#[bench::get16(capnp_input(false))]
#[bench::set16(capnp_input(true))]
fn capnp_decode((input, mut scratch): CapnpInput) -> (CapnpInput, usize) {
    let limits = FrameLimits::DEFAULT;
    let mut start = 0;
    let mut bytes = 0;
    while start < input.len() {
        let len = capnp::frame_len(&input[start..], &limits)
            .expect("valid frame")
            .expect("whole frames");
        let frame = &input[start..start + len];
        let message = capnp::decode_request(frame, &mut scratch).expect("decodes");
        let request = message.get().expect("a Request");
        bytes += request.get_id() as usize;
        match request.which().expect("known variant") {
            request::Which::Get(key) => bytes += key.expect("key").len(),
            request::Which::Set(set) => {
                let set = set.expect("set");
                bytes += set.get_key().expect("key").len() + set.get_value().expect("value").len();
            }
            _ => unreachable!("only GET and SET here"),
        }
        start += len;
    }
    ((input, scratch), bytes)
}

#[library_benchmark]
#[bench::get16(Vec::with_capacity(4096))]
fn reply_resp_bulk(mut out: Vec<u8>) -> Vec<u8> {
    for _ in 0..PIPELINE {
        reply::bulk(&mut out, black_box(VALUE));
    }
    out
}

#[library_benchmark]
#[bench::set16(Vec::with_capacity(4096))]
fn reply_resp_ok(mut out: Vec<u8>) -> Vec<u8> {
    for _ in 0..PIPELINE {
        reply::ok(black_box(&mut out));
    }
    out
}

fn warm_encoder() -> (MessageEncoder, Vec<u8>) {
    let mut encoder = MessageEncoder::new(128);
    let mut out = Vec::with_capacity(8192);
    encoder.encode_response(&mut out, |mut response| response.set_ok(()));
    out.clear();
    (encoder, out)
}

#[library_benchmark]
#[bench::get16(warm_encoder())]
fn reply_capnp_value(
    (mut encoder, mut out): (MessageEncoder, Vec<u8>),
) -> (MessageEncoder, Vec<u8>) {
    for id in 0..PIPELINE {
        encoder.encode_response(&mut out, |mut response| {
            response.set_id(id as u64);
            let mut value = response.init_value();
            value.set_data(black_box(VALUE));
            value.set_version(id as u64 + 1);
        });
    }
    (encoder, out)
}

#[library_benchmark]
#[bench::set16(warm_encoder())]
fn reply_capnp_version(
    (mut encoder, mut out): (MessageEncoder, Vec<u8>),
) -> (MessageEncoder, Vec<u8>) {
    for id in 0..PIPELINE {
        encoder.encode_response(&mut out, |mut response| {
            response.set_id(id as u64);
            response.set_version(black_box(id as u64 + 1));
        });
    }
    (encoder, out)
}

#[library_benchmark]
#[bench::get16(warm_encoder())]
fn reply_capnp_value_direct(
    (mut encoder, mut out): (MessageEncoder, Vec<u8>),
) -> (MessageEncoder, Vec<u8>) {
    for id in 0..PIPELINE {
        capnp::write_value_response(
            &mut encoder,
            &mut out,
            id as u64,
            black_box(VALUE),
            id as u64 + 1,
        );
    }
    (encoder, out)
}

#[library_benchmark]
#[bench::set16(Vec::with_capacity(8192))]
fn reply_capnp_version_direct(mut out: Vec<u8>) -> Vec<u8> {
    for id in 0..PIPELINE {
        capnp::write_version_response(&mut out, id as u64, black_box(id as u64 + 1));
    }
    out
}

#[library_benchmark]
#[bench::keys16(keys())]
fn route(keys: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, u64) {
    let mut sum = 0u64;
    for key in &keys {
        sum = sum.wrapping_add(u64::from(slot::slot(key)));
        sum = sum.wrapping_add(hash_key(key));
    }
    (keys, sum)
}

library_benchmark_group!(name = parse; benchmarks = resp_parse, capnp_decode);
library_benchmark_group!(
    name = encode;
    benchmarks = reply_resp_bulk,
        reply_resp_ok,
        reply_capnp_value,
        reply_capnp_version,
        reply_capnp_value_direct,
        reply_capnp_version_direct
);
library_benchmark_group!(name = routing; benchmarks = route);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(iai_support::CACHE_ARGS));
    library_benchmark_groups = parse, encode, routing
);
