//! The client's steady state allocates at most once per request: a counting global allocator
//! watches `set`, `get_into`, `cas`, `incr` and a pipeline read with `execute_with`, once
//! buffers have grown. The one allocation is the capnp crate's: `message::Builder` keeps its
//! segment table in a `Vec` that is created for every message (the reused first segment itself
//! is not reallocated); reading answers allocates nothing. (A `#[global_allocator]` is per
//! binary, hence its own test file; the server is another process.)

use piccolo::client::{CasOutcome, Client, ReplyRef};

mod common;

use common::{Server, TIMEOUT};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations;

/// One round of the operations under watch; returns a checksum so nothing is optimised away.
fn round(client: &mut Client, keys: &[Vec<u8>], value: &mut Vec<u8>) -> u64 {
    let mut sum = 0;
    for key in keys {
        let version = client
            .set(key, b"0123456789abcdef0123456789abcdef")
            .unwrap();
        assert_eq!(client.get_into(key, value).unwrap(), Some(version));
        let outcome = client.cas(key, version, b"fedcba9876543210fedcba9876543210");
        assert!(matches!(outcome.unwrap(), CasOutcome::Written(_)));
        sum += client.incr(b"counter", 1).unwrap() as u64;
    }
    let mut pipeline = client.pipeline();
    for key in keys {
        pipeline.get(key);
    }
    pipeline
        .execute_with(|_, reply| {
            if let ReplyRef::Value { data, .. } = reply {
                sum += data.len() as u64;
            }
        })
        .unwrap();
    sum
}

#[test]
fn steady_state_operations_allocate_at_most_once_per_request() {
    let server = Server::start(&["--workers", "2"]);
    let mut client = Client::connect(server.addr, TIMEOUT).unwrap();
    let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key:{i}").into_bytes()).collect();
    let mut value = Vec::with_capacity(64);
    // Warm up: buffers reach their size.
    let warm = round(&mut client, &keys, &mut value);
    let before = allocations();
    let sum = round(&mut client, &keys, &mut value);
    let allocated = allocations() - before;
    assert!(sum > warm);
    // 200 keys x (set, get_into, cas, incr) + a pipeline of 200 gets.
    let requests = 200 * 4 + 200;
    assert!(
        allocated <= requests,
        "{allocated} allocations for {requests} requests"
    );
    // The counter does count this client's allocations: a `get` returns an owned Vec.
    let before = allocations();
    assert!(client.get(b"key:1").unwrap().is_some());
    assert!(allocations() > before);
}
