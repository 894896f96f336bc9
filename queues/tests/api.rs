//! The common API, checked the same way on every variant.

#![cfg(not(loom))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::DropCounter;
use piccolo_queues::{RingConsumer, RingProducer, Variant};

fn fifo_single_thread<V: Variant>() {
    let (mut tx, mut rx) = V::channel::<u32>(3);
    assert_eq!(tx.capacity(), 3);
    assert_eq!(rx.capacity(), 3);
    assert!(rx.is_empty());
    assert_eq!(rx.pop(), None);
    // Many laps around a ring of 3 (array of 4): wrap-around on every lap.
    for lap in 0..100u32 {
        for i in 0..3 {
            assert_eq!(tx.push(lap * 10 + i), Ok(()));
        }
        assert_eq!(tx.len(), 3);
        assert_eq!(tx.push(999), Err(999), "a full ring gives the value back");
        assert_eq!(rx.pop(), Some(lap * 10));
        assert_eq!(tx.push(lap * 10 + 3), Ok(()));
        assert_eq!(tx.push(998), Err(998));
        for i in 1..4 {
            assert_eq!(rx.pop(), Some(lap * 10 + i));
        }
        assert_eq!(rx.pop(), None);
        assert_eq!(rx.len(), 0);
    }
}

fn capacity_one<V: Variant>() {
    let (mut tx, mut rx) = V::channel::<&str>(1);
    assert_eq!(tx.push("a"), Ok(()));
    assert_eq!(tx.push("b"), Err("b"));
    assert_eq!(rx.pop(), Some("a"));
    assert_eq!(rx.pop(), None);
    assert_eq!(tx.push("c"), Ok(()));
    assert_eq!(rx.pop(), Some("c"));
}

fn deferred_and_batches<V: Variant>() {
    let (mut tx, mut rx) = V::channel::<u64>(64);
    for i in 0..40 {
        tx.push_deferred(i).unwrap();
    }
    tx.flush();
    let mut seen = Vec::new();
    assert_eq!(rx.pop_batch(32, |v| seen.push(v)), 32);
    assert_eq!(rx.pop_batch(32, |v| seen.push(v)), 8);
    assert_eq!(rx.pop_batch(32, |v| seen.push(v)), 0);
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    // Deferred pushes also stop at capacity.
    for i in 0..64 {
        tx.push_deferred(i).unwrap();
    }
    assert_eq!(tx.push_deferred(64), Err(64));
    tx.flush();
    assert_eq!(rx.pop_batch(usize::MAX, |_| {}), 64);
}

fn abandonment<V: Variant>() {
    let (mut tx, rx) = V::channel::<u8>(2);
    assert!(!tx.is_abandoned());
    drop(rx);
    assert!(tx.is_abandoned());
    let (mut tx2, mut rx2) = V::channel::<u8>(2);
    tx2.push(1).unwrap();
    assert!(!rx2.is_abandoned());
    drop(tx2);
    assert!(rx2.is_abandoned());
    assert_eq!(
        rx2.pop(),
        Some(1),
        "values pushed before the drop are still readable"
    );
    assert_eq!(rx2.pop(), None);
    let _ = tx.push(1);
}

fn drops_exactly_once<V: Variant>() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let (mut tx, mut rx) = V::channel::<DropCounter>(8);
        for i in 0..8 {
            assert!(tx.push(DropCounter::new(i, &drops)).is_ok());
        }
        // The rejected value comes back and is dropped here, once.
        let back = tx.push(DropCounter::new(99, &drops)).unwrap_err();
        assert_eq!(back.id, 99);
        drop(back);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        // Pop three (dropped by us), leave five inside.
        for i in 0..3 {
            assert_eq!(rx.pop().map(|v| v.id), Some(i));
        }
        assert_eq!(drops.load(Ordering::Relaxed), 4);
        // Wrap around so the values left inside straddle the end of the array.
        for i in 8..11 {
            assert!(tx.push(DropCounter::new(i, &drops)).is_ok());
        }
        drop(tx);
        assert_eq!(
            drops.load(Ordering::Relaxed),
            4,
            "dropping one end drops nothing"
        );
        drop(rx);
    }
    // 12 made in all: 1 rejected + 3 popped + 8 left inside.
    assert_eq!(drops.load(Ordering::Relaxed), 12);
    // Deferred values that were never flushed are published by the producer's drop, then dropped
    // once with the ring.
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, rx) = V::channel::<DropCounter>(4);
    tx.push_deferred(DropCounter::new(1, &drops)).unwrap();
    drop(tx);
    drop(rx);
    assert_eq!(drops.load(Ordering::Relaxed), 1);
}

fn ends_are_send<V: Variant>() {
    fn is_send<X: Send>(_: &X) {}
    let (tx, rx) = V::channel::<String>(2);
    is_send(&tx);
    is_send(&rx);
    let handle = std::thread::spawn(move || {
        let mut tx = tx;
        tx.push("hello".to_string()).unwrap();
        tx
    });
    let _tx = handle.join().unwrap();
    let mut rx = rx;
    assert_eq!(rx.pop().as_deref(), Some("hello"));
}

for_each_variant!(
    fifo_single_thread,
    capacity_one,
    deferred_and_batches,
    abandonment,
    drops_exactly_once,
    ends_are_send,
);

#[test]
fn zero_capacity_is_refused() {
    for result in [
        std::panic::catch_unwind(|| drop(piccolo_queues::lamport::channel::<u8>(0))),
        std::panic::catch_unwind(|| drop(piccolo_queues::cached::channel::<u8>(0))),
        std::panic::catch_unwind(|| drop(piccolo_queues::batched::channel::<u8>(0))),
        std::panic::catch_unwind(|| drop(piccolo_queues::mutex::channel::<u8>(0))),
    ] {
        assert!(result.is_err());
    }
}

#[test]
fn batched_chunks() {
    use piccolo_queues::batched::{self, ChunkError};
    let (mut tx, mut rx) = batched::channel::<u32>(5);
    {
        let mut chunk = tx.write_chunk(3).unwrap();
        assert_eq!(chunk.remaining(), 3);
        for i in 0..3 {
            chunk.push(i).unwrap();
        }
        assert_eq!(
            chunk.push(3),
            Err(3),
            "a fixed chunk holds exactly what it reserved"
        );
        assert_eq!(rx.pop(), None, "nothing is visible before the commit");
        assert_eq!(chunk.commit(), 3);
    }
    assert_eq!(
        tx.write_chunk(3).err(),
        Some(ChunkError::TooFewSlots { available: 2 })
    );
    {
        let mut chunk = rx.read_chunk(2);
        assert_eq!(chunk.len(), 2);
        assert_eq!(chunk.next(), Some(0));
        // Dropped after one: the second stays in the ring.
    }
    assert_eq!(rx.len(), 2);
    let mut batch = tx.write_batch();
    let mut pushed = 0;
    while batch.push(100 + pushed).is_ok() {
        pushed += 1;
    }
    drop(batch);
    assert_eq!(pushed, 3);
    let all: Vec<u32> = rx.read_chunk(usize::MAX).collect();
    assert_eq!(all, vec![1, 2, 100, 101, 102]);
    // A growable batch finds slots freed while it is open.
    let (mut tx, mut rx) = batched::channel::<u32>(2);
    tx.push(1).unwrap();
    tx.push(2).unwrap();
    assert_eq!(rx.pop(), Some(1));
    let mut batch = tx.write_batch();
    assert_eq!(batch.push(3), Ok(()));
    assert_eq!(batch.push(4), Err(4));
    drop(batch);
    assert_eq!(rx.read_chunk(9).collect::<Vec<_>>(), vec![2, 3]);
}

#[test]
fn variant_names() {
    assert_eq!(
        piccolo_queues::VARIANT_NAMES,
        ["lamport", "cached", "batched", "mutex"]
    );
}
