//! Two real threads move 10 million sequence numbers through each variant; the consumer checks
//! FIFO order, so any loss, duplication or reordering fails the test.

#![cfg(not(loom))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use common::DropCounter;
use piccolo_queues::{RingConsumer, RingProducer, Variant};

const ITEMS: u64 = 10_000_000;

/// The test harness runs tests in parallel, but each stress test already keeps two threads busy:
/// on a 2-core machine, running them together makes every spinning thread wait for a core. One
/// at a time is faster in total.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Producer pushes `0..ITEMS` (some with `push`, some deferred and flushed in runs), consumer pops
/// (singly and in batches) and checks each is the next number.
fn ten_million_in_order<V: Variant>() {
    let _one = exclusive();
    for capacity in [2, 1024] {
        let (mut tx, mut rx) = V::channel::<u64>(capacity);
        let producer = thread::spawn(move || {
            let mut next = 0u64;
            while next < ITEMS {
                // Alternate single pushes and deferred runs of up to 7, flushed once.
                let run = if next % 3 == 0 { 1 } else { 7 };
                let mut written = 0;
                while written < run && next < ITEMS {
                    match tx.push_deferred(next) {
                        Ok(()) => {
                            next += 1;
                            written += 1;
                        }
                        Err(_) => {
                            tx.flush();
                            thread::yield_now();
                        }
                    }
                }
                tx.flush();
            }
        });
        let mut expected = 0u64;
        while expected < ITEMS {
            let got = if expected % 2 == 0 {
                match rx.pop() {
                    Some(value) => {
                        assert_eq!(value, expected, "capacity {capacity}");
                        expected += 1;
                        1
                    }
                    None => 0,
                }
            } else {
                rx.pop_batch(32, |value| {
                    assert_eq!(value, expected, "capacity {capacity}");
                    expected += 1;
                })
            };
            if got == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.pop(), None, "nothing past the last number");
        assert!(rx.is_abandoned());
    }
}

/// Owned values under concurrency: every value is dropped exactly once, whether the consumer
/// takes it or it is left in the ring when both ends go.
fn drops_under_concurrency<V: Variant>() {
    let _one = exclusive();
    const TAKEN: u64 = 100_000;
    const CAPACITY: usize = 64;
    // The producer makes exactly what the consumer takes plus one full ring.
    const MADE: u64 = TAKEN + CAPACITY as u64;
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = V::channel::<DropCounter>(CAPACITY);
    let producer_drops = drops.clone();
    let producer = thread::spawn(move || {
        for id in 0..MADE {
            let mut value = DropCounter::new(id, &producer_drops);
            loop {
                match tx.push(value) {
                    Ok(()) => break,
                    Err(back) => {
                        value = back;
                        thread::yield_now();
                    }
                }
            }
        }
        // Hand the producer back so the leftovers are in the ring when both ends drop.
        tx
    });
    let mut taken = 0u64;
    while taken < TAKEN {
        if let Some(value) = rx.pop() {
            assert_eq!(value.id, taken);
            taken += 1;
        }
    }
    let tx = producer.join().unwrap();
    let left = rx.len();
    assert_eq!(
        left, CAPACITY,
        "the producer's last values wait in the ring"
    );
    drop(rx);
    drop(tx);
    assert_eq!(drops.load(Ordering::Relaxed) as u64, MADE);
    assert_eq!(taken, TAKEN);
}

/// The chunk API of `batched` with random chunk sizes on both sides.
#[test]
fn batched_chunks_ten_million() {
    let _one = exclusive();
    use piccolo_queues::batched;
    let (mut tx, mut rx) = batched::channel::<u64>(1000);
    let producer = thread::spawn(move || {
        let mut next = 0u64;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        while next < ITEMS {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let want = (seed % 40 + 1).min(ITEMS - next) as usize;
            if seed & 1 == 0 {
                if let Ok(mut chunk) = tx.write_chunk(want) {
                    for _ in 0..want {
                        chunk.push(next).unwrap();
                        next += 1;
                    }
                    assert_eq!(chunk.commit(), want);
                }
            } else {
                let mut batch = tx.write_batch();
                for _ in 0..want {
                    if batch.push(next).is_err() {
                        break;
                    }
                    next += 1;
                }
            }
        }
    });
    let mut expected = 0u64;
    let mut seed = 42u64;
    while expected < ITEMS {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let max = (seed >> 33) as usize % 50 + 1;
        for value in rx.read_chunk(max) {
            assert_eq!(value, expected);
            expected += 1;
        }
    }
    producer.join().unwrap();
    assert_eq!(rx.pop(), None);
}

for_each_variant!(ten_million_in_order, drops_under_concurrency);
