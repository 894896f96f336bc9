//! `--protocol capnp`: each connection is a `piccolo::client::Client` (the project's Cap'n Proto
//! client library, the only capnp client code the bench uses) driven from its own thread.
//!
//! The library is blocking by design (`&mut self`, one connection per thread), and its
//! [`Pipeline`](piccolo::client::Pipeline) sends a batch in one write and reads the answers in
//! order. So a capnp connection works the way redis-benchmark's connections do: send
//! `--pipeline` requests, wait for all their answers, send the next batch. (RESP connections
//! instead top their pipeline up after every read; see `driver`.) A request's latency runs from
//! just before its batch is encoded to when its answer is handed over.

use std::sync::Barrier;
use std::time::Instant;

use piccolo::client::{Client, ReplyRef};

use crate::driver::{self, Answer, Pending, Phase, Shared, Source};
use crate::report::Stats;
use crate::workload::{Op, write_key};

/// Runs connection `number` to the end on the calling thread. Connects first, then waits at
/// `barrier` so that every connection starts together.
pub fn run_connection(shared: &Shared, number: usize, barrier: &Barrier) -> Result<Stats, String> {
    let config = &shared.config;
    let target = format!("{}:{}", config.host, config.port);
    let client = Client::connect(target.as_str(), config.timeout)
        .map_err(|error| format!("connect to {target}: {error}"));
    barrier.wait();
    let mut client = client?;

    let phase = Phase::starting(config, Instant::now());
    let mut stats = Stats::new();
    stats.measure_from = Some(phase.measure_from);
    let mut source = Source::new(config, number);
    let mut batch: Vec<Pending> = Vec::with_capacity(config.pipeline);
    let mut key = Vec::new();
    let mut value = Vec::new();
    let mut scratch = Vec::new();
    let prefix = config.key_prefix.as_bytes();
    loop {
        let now = Instant::now();
        batch.clear();
        while batch.len() < config.pipeline {
            match source.next(now, &phase) {
                Some(pending) => batch.push(pending),
                None => break,
            }
        }
        if batch.is_empty() {
            return Ok(stats);
        }
        let mut pipeline = client.pipeline();
        for pending in &batch {
            key.clear();
            write_key(&mut key, prefix, pending.key);
            match pending.op {
                Op::Set => {
                    value.clear();
                    shared
                        .values
                        .write(&mut value, pending.key, pending.version);
                    pipeline.set(&key, &value);
                }
                Op::Get => {
                    pipeline.get(&key);
                }
            }
        }
        let mut answered = 0;
        let result = pipeline.execute_with(|index, reply| {
            let answer = match (batch[index].op, &reply) {
                (Op::Set, ReplyRef::Version(_)) => Answer::Stored,
                (Op::Get, ReplyRef::Value { data, .. }) => Answer::Value(data),
                (Op::Get, ReplyRef::NotFound) => Answer::Missing,
                (_, ReplyRef::Error { code, message }) => {
                    Answer::Refused(format!("{code}: {message}"))
                }
                (_, other) => Answer::Unexpected(other.kind_name().into()),
            };
            driver::record(
                shared,
                &mut stats,
                &mut scratch,
                &batch[index],
                answer,
                Instant::now(),
            );
            answered += 1;
        });
        if let Err(error) = result {
            driver::connection_failed(
                number,
                error.to_string(),
                batch.len() - answered,
                &mut stats,
                &shared.progress,
            );
            return Ok(stats);
        }
    }
}
