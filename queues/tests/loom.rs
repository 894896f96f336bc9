//! Model checks with loom: every interleaving (up to the preemption bound) of producer and
//! consumer, for each variant and for park/notify.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p piccolo-queues --test loom --release`

#![cfg(loom)]

mod common;

use common::DropCounter;

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::Arc;
use loom::thread;
use piccolo_queues::park::Parker;
use piccolo_queues::{RingConsumer, RingProducer, Variant};

fn push_spinning<T, P: RingProducer<T>>(tx: &mut P, mut value: T) {
    loop {
        match tx.push(value) {
            Ok(()) => return,
            Err(back) => {
                value = back;
                thread::yield_now();
            }
        }
    }
}

/// Three values through a ring of two: the producer meets a full ring, the consumer an empty one,
/// and the positions wrap around the slot array.
fn push_pop_full_empty_wrap<V: Variant>() {
    loom::model(|| {
        let (mut tx, mut rx) = V::channel::<usize>(2);
        let producer = thread::spawn(move || {
            for i in 0..3 {
                push_spinning(&mut tx, i);
            }
        });
        let mut expected = 0;
        while expected < 3 {
            match rx.pop() {
                Some(value) => {
                    assert_eq!(value, expected);
                    expected += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.pop(), None);
    });
}

/// Deferred pushes become visible together at `flush`; the consumer takes them as a batch.
fn deferred_batch<V: Variant>() {
    loom::model(|| {
        let (mut tx, mut rx) = V::channel::<usize>(2);
        let producer = thread::spawn(move || {
            tx.push_deferred(10).unwrap();
            tx.push_deferred(11).unwrap();
            tx.flush();
        });
        let mut seen = Vec::new();
        while seen.len() < 2 {
            if rx.pop_batch(2, |value| seen.push(value)) == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(seen, [10, 11]);
        producer.join().unwrap();
    });
}

/// Values left inside are dropped exactly once when both ends are gone, whichever end goes last.
fn drop_with_items_inside<V: Variant>() {
    loom::model(|| {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = V::channel::<DropCounter>(2);
        let producer_drops = drops.clone();
        let producer = thread::spawn(move || {
            for id in 0..2u64 {
                // The counter is a plain std atomic: loom runs the model's threads one at a time
                // on one OS thread, so this oracle is exact and adds no states to explore.
                let value = DropCounter::new(id, &producer_drops);
                assert!(tx.push(value).is_ok(), "two values fit in a ring of two");
            }
            // `tx` drops here, possibly while the consumer is popping.
        });
        if let Some(value) = rx.pop() {
            assert_eq!(value.id, 0);
        }
        drop(rx);
        producer.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// A consumer that is told the producer is gone still finds every value published before.
fn abandonment_sees_all<V: Variant>() {
    loom::model(|| {
        let (mut tx, mut rx) = V::channel::<usize>(2);
        let producer = thread::spawn(move || {
            tx.push(7).unwrap();
        });
        while !rx.is_abandoned() {
            thread::yield_now();
        }
        assert_eq!(rx.pop(), Some(7));
        producer.join().unwrap();
    });
}

for_each_variant!(
    push_pop_full_empty_wrap,
    deferred_batch,
    drop_with_items_inside,
    abandonment_sees_all,
);

/// The chunk API of `batched`: a reserved chunk and a read chunk, each published with one store.
#[test]
fn batched_chunks() {
    loom::model(|| {
        let (mut tx, mut rx) = piccolo_queues::batched::channel::<usize>(3);
        let producer = thread::spawn(move || {
            let mut chunk = tx.write_chunk(3).unwrap();
            for i in 0..3 {
                chunk.push(i).unwrap();
            }
            chunk.commit();
        });
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let chunk = rx.read_chunk(2);
            if chunk.len() == 0 {
                drop(chunk);
                thread::yield_now();
            } else {
                seen.extend(chunk);
            }
        }
        assert_eq!(seen, [0, 1, 2]);
        producer.join().unwrap();
    });
}

/// No lost wake-up: the consumer parks (no spinning) until a value arrives; the producer pushes
/// and notifies. If the store-buffer race were open, loom would find an execution where the
/// consumer parks forever and report a deadlock.
#[test]
fn park_notify_no_lost_wakeup() {
    loom::model(|| {
        let (mut tx, mut rx) = piccolo_queues::cached::channel::<usize>(2);
        let parker = Parker::new();
        let unparker = parker.unparker(thread::current());
        let producer = thread::spawn(move || {
            tx.push(1).unwrap();
            unparker.notify();
            tx.push(2).unwrap();
            unparker.notify();
        });
        let mut got = Vec::new();
        while got.len() < 2 {
            parker.wait(0, || match rx.pop() {
                Some(value) => {
                    got.push(value);
                    true
                }
                None => false,
            });
        }
        assert_eq!(got, [1, 2]);
        producer.join().unwrap();
    });
}

/// Two producers (as the reactor is woken by several workers) share one sleep flag: each wakes
/// the consumer only if it announced sleep, and the consumer never sleeps through a value.
#[test]
fn park_notify_two_producers() {
    loom::model(|| {
        let (mut tx_a, mut rx_a) = piccolo_queues::cached::channel::<usize>(1);
        let (mut tx_b, mut rx_b) = piccolo_queues::cached::channel::<usize>(1);
        let parker = Parker::new();
        let unparker_a = parker.unparker(thread::current());
        let unparker_b = unparker_a.clone();
        let woken = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let woken_b = woken.clone();
        let a = thread::spawn(move || {
            tx_a.push(1).unwrap();
            unparker_a.notify();
        });
        let b = thread::spawn(move || {
            tx_b.push(2).unwrap();
            if unparker_b.notify() {
                woken_b.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
            }
        });
        let mut sum = 0;
        let mut count = 0;
        while count < 2 {
            parker.wait(0, || {
                let mut found = false;
                for value in [rx_a.pop(), rx_b.pop()].into_iter().flatten() {
                    sum += value;
                    count += 1;
                    found = true;
                }
                found
            });
        }
        assert_eq!(sum, 3);
        a.join().unwrap();
        b.join().unwrap();
        assert!(woken.load(loom::sync::atomic::Ordering::Relaxed) <= 1);
    });
}
