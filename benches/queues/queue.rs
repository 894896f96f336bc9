//! The queues under test, behind one adapter trait: piccolo's four variants, `rtrb`,
//! `crossbeam_queue::ArrayQueue` and `std::sync::mpsc::sync_channel`.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use crossbeam_queue::ArrayQueue;
use piccolo_queues::{RingConsumer, RingProducer, Variant, batched, cached, lamport, mutex};

/// One queue under test, seen through the operations the scenarios need.
pub trait Queue: 'static {
    /// Name in tables and on the chart.
    const NAME: &'static str;
    /// How a batch of items is written and read (for the table's notes).
    const BATCH_NOTE: &'static str;
    /// True for the queues that are an order of magnitude slower; they get fewer items per run
    /// so the whole bench stays within a few minutes.
    const SLOW: bool;

    type Tx<T: Send>: Send;
    type Rx<T: Send>: Send;

    fn channel<T: Send>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>);
    fn push<T: Send>(tx: &mut Self::Tx<T>, value: T) -> Result<(), T>;
    fn pop<T: Send>(rx: &mut Self::Rx<T>) -> Option<T>;

    /// Writes items `first, first + 1, ..` (made by `make`), at most `count`, as many as fit now;
    /// publishes them and returns how many were written.
    #[inline]
    fn push_run<T: Send>(
        tx: &mut Self::Tx<T>,
        first: u64,
        count: usize,
        make: impl Fn(u64) -> T,
    ) -> usize {
        let mut written = 0;
        while written < count {
            if Self::push(tx, make(first + written as u64)).is_err() {
                break;
            }
            written += 1;
        }
        written
    }

    /// Reads up to `max` items, passing each to `sink`; returns how many.
    #[inline]
    fn pop_run<T: Send>(rx: &mut Self::Rx<T>, max: usize, mut sink: impl FnMut(T)) -> usize {
        let mut read = 0;
        while read < max {
            match Self::pop(rx) {
                Some(value) => sink(value),
                None => break,
            }
            read += 1;
        }
        read
    }
}

/// A piccolo variant, through the crate's own generic traits.
pub struct Piccolo<V>(PhantomData<V>);

impl<V: Variant> Queue for Piccolo<V> {
    const NAME: &'static str = V::NAME;
    const BATCH_NOTE: &'static str = "push_deferred x n + flush; pop_batch(n)";
    const SLOW: bool = false;

    type Tx<T: Send> = V::Producer<T>;
    type Rx<T: Send> = V::Consumer<T>;

    fn channel<T: Send>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        V::channel(capacity)
    }
    #[inline]
    fn push<T: Send>(tx: &mut Self::Tx<T>, value: T) -> Result<(), T> {
        tx.push(value)
    }
    #[inline]
    fn pop<T: Send>(rx: &mut Self::Rx<T>) -> Option<T> {
        rx.pop()
    }
    #[inline]
    fn push_run<T: Send>(
        tx: &mut Self::Tx<T>,
        first: u64,
        count: usize,
        make: impl Fn(u64) -> T,
    ) -> usize {
        // `batched` defers the publication to `flush` (one Release store for the run); the other
        // variants publish on every `push_deferred`, so for them this is a loop of pushes.
        let mut written = 0;
        while written < count {
            if tx.push_deferred(make(first + written as u64)).is_err() {
                break;
            }
            written += 1;
        }
        tx.flush();
        written
    }
    #[inline]
    fn pop_run<T: Send>(rx: &mut Self::Rx<T>, max: usize, sink: impl FnMut(T)) -> usize {
        rx.pop_batch(max, sink)
    }
}

pub type Lamport = Piccolo<lamport::Lamport>;
pub type Cached = Piccolo<cached::Cached>;
pub type Batched = Piccolo<batched::Batched>;
pub type Mutex = Piccolo<mutex::Locked>;

/// `rtrb::RingBuffer`, with its chunk API for batches.
pub struct Rtrb;

impl Queue for Rtrb {
    const NAME: &'static str = "rtrb";
    const BATCH_NOTE: &'static str = "write_chunk_uninit(n).fill_from_iter; read_chunk(n)";
    const SLOW: bool = false;

    type Tx<T: Send> = rtrb::Producer<T>;
    type Rx<T: Send> = rtrb::Consumer<T>;

    fn channel<T: Send>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        rtrb::RingBuffer::new(capacity)
    }
    #[inline]
    fn push<T: Send>(tx: &mut Self::Tx<T>, value: T) -> Result<(), T> {
        tx.push(value).map_err(|rtrb::PushError::Full(value)| value)
    }
    #[inline]
    fn pop<T: Send>(rx: &mut Self::Rx<T>) -> Option<T> {
        rx.pop().ok()
    }
    #[inline]
    fn push_run<T: Send>(
        tx: &mut Self::Tx<T>,
        first: u64,
        count: usize,
        make: impl Fn(u64) -> T,
    ) -> usize {
        // rtrb reserves exactly `n` slots or reports how many are free; take what is free.
        let chunk = match tx.write_chunk_uninit(count) {
            Ok(chunk) => chunk,
            Err(rtrb::chunks::ChunkError::TooFewSlots(0)) => return 0,
            Err(rtrb::chunks::ChunkError::TooFewSlots(free)) => match tx.write_chunk_uninit(free) {
                Ok(chunk) => chunk,
                Err(_) => unreachable!("the producer is the only one taking free slots"),
            },
        };
        chunk.fill_from_iter((first..).map(make))
    }
    #[inline]
    fn pop_run<T: Send>(rx: &mut Self::Rx<T>, max: usize, mut sink: impl FnMut(T)) -> usize {
        let chunk = match rx.read_chunk(max) {
            Ok(chunk) => chunk,
            Err(rtrb::chunks::ChunkError::TooFewSlots(0)) => return 0,
            Err(rtrb::chunks::ChunkError::TooFewSlots(ready)) => match rx.read_chunk(ready) {
                Ok(chunk) => chunk,
                Err(_) => unreachable!("the consumer is the only one taking items"),
            },
        };
        let count = chunk.len();
        chunk.into_iter().for_each(&mut sink);
        count
    }
}

/// `crossbeam_queue::ArrayQueue`: a bounded MPMC queue, used here with one thread on each side.
pub struct Crossbeam;

impl Queue for Crossbeam {
    const NAME: &'static str = "crossbeam";
    const BATCH_NOTE: &'static str = "loop of n push / n pop (no batch API)";
    const SLOW: bool = false;

    type Tx<T: Send> = Arc<ArrayQueue<T>>;
    type Rx<T: Send> = Arc<ArrayQueue<T>>;

    fn channel<T: Send>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        let queue = Arc::new(ArrayQueue::new(capacity));
        (queue.clone(), queue)
    }
    #[inline]
    fn push<T: Send>(tx: &mut Self::Tx<T>, value: T) -> Result<(), T> {
        tx.push(value)
    }
    #[inline]
    fn pop<T: Send>(rx: &mut Self::Rx<T>) -> Option<T> {
        rx.pop()
    }
}

/// `std::sync::mpsc::sync_channel`, driven with `try_send`/`try_recv` so it spins like the
/// others (its blocking `recv` appears only in the wake-up scenario).
pub struct StdSync;

impl Queue for StdSync {
    const NAME: &'static str = "std-mpsc";
    const BATCH_NOTE: &'static str = "loop of n try_send / n try_recv (no batch API)";
    const SLOW: bool = true;

    type Tx<T: Send> = SyncSender<T>;
    type Rx<T: Send> = Receiver<T>;

    fn channel<T: Send>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        std::sync::mpsc::sync_channel(capacity)
    }
    #[inline]
    fn push<T: Send>(tx: &mut Self::Tx<T>, value: T) -> Result<(), T> {
        match tx.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(value)) => Err(value),
            Err(TrySendError::Disconnected(_)) => panic!("std-mpsc: receiver gone mid-run"),
        }
    }
    #[inline]
    fn pop<T: Send>(rx: &mut Self::Rx<T>) -> Option<T> {
        // Empty or disconnected: a finished producer is noticed by the item count, never by
        // disconnection.
        rx.try_recv().ok()
    }
}
