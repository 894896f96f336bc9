//! One timed run of each scenario, returning one [`Measurement`]: throughput (items through one
//! ring), round trip (ping-pong over two rings) and wake-up latency (a parked consumer). Each
//! checks what it moved before it reports a figure.

use std::hint::spin_loop;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use piccolo_queues::park::Parker;

use crate::item::Item;
use crate::machine::{Clock, Pinning};
use crate::queue::Queue;

#[derive(Clone, Copy, Debug)]
pub enum Measurement {
    /// Items per second, in millions.
    Throughput { mops: f64, seconds: f64, items: u64 },
    /// Per-event latency percentiles in ns; `unparked` counts wake-up samples where the
    /// consumer had not parked (it found the item while still awake).
    Latency {
        p50_ns: f64,
        p99_ns: f64,
        samples: usize,
        unparked: usize,
    },
}

/// The `per_cent` percentile of sorted samples (NaN if there are none).
pub fn percentile(sorted: &[f64], per_cent: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(sorted.len() * per_cent / 100).min(sorted.len() - 1)]
}

pub fn latency(mut samples_ns: Vec<f64>, unparked: usize) -> Measurement {
    samples_ns.sort_by(f64::total_cmp);
    Measurement::Latency {
        p50_ns: percentile(&samples_ns, 50),
        p99_ns: percentile(&samples_ns, 99),
        samples: samples_ns.len(),
        unparked,
    }
}

#[derive(Clone, Copy)]
pub struct ThroughputSetup {
    pub capacity: usize,
    /// Items per push/pop call: 1, or the batch size (already clamped to the capacity).
    pub batch: usize,
    pub items: u64,
}

#[inline(never)]
pub fn produce<Q: Queue, T: Item>(tx: &mut Q::Tx<T>, items: u64, batch: usize) {
    let mut next = 0u64;
    if batch == 1 {
        while next < items {
            let mut value = T::from_sequence(next);
            while let Err(back) = Q::push(tx, value) {
                value = back;
                spin_loop();
            }
            next += 1;
        }
    } else {
        while next < items {
            let wanted = batch.min((items - next) as usize);
            let written = Q::push_run(tx, next, wanted, T::from_sequence);
            if written == 0 {
                spin_loop();
            }
            next += written as u64;
        }
    }
}

/// What the consumer has received so far.
pub struct Tally {
    received: u64,
    checksum: u64,
}

impl Tally {
    /// Accounts for one item; with `CHECK_ORDER` asserts it is the next sequence number and
    /// intact.
    #[inline(always)]
    pub fn take<Q: Queue, T: Item, const CHECK_ORDER: bool>(&mut self, value: T) {
        if CHECK_ORDER {
            assert_eq!(
                value.sequence(),
                self.received,
                "{}: out of order or lost",
                Q::NAME
            );
            assert!(
                value.is_intact(),
                "{}: item {} corrupted",
                Q::NAME,
                self.received
            );
        }
        self.checksum = self.checksum.wrapping_add(value.checksum());
        self.received += 1;
    }
}

/// Receives `items` items and returns the checksum of all of them.
#[inline(never)]
pub fn consume<Q: Queue, T: Item, const CHECK_ORDER: bool>(
    rx: &mut Q::Rx<T>,
    items: u64,
    batch: usize,
) -> u64 {
    let mut tally = Tally {
        received: 0,
        checksum: 0,
    };
    if batch == 1 {
        while tally.received < items {
            match Q::pop(rx) {
                Some(value) => tally.take::<Q, T, CHECK_ORDER>(value),
                None => spin_loop(),
            }
        }
    } else {
        while tally.received < items {
            let wanted = batch.min((items - tally.received) as usize);
            if Q::pop_run(rx, wanted, |value| tally.take::<Q, T, CHECK_ORDER>(value)) == 0 {
                spin_loop();
            }
        }
    }
    tally.checksum
}

/// Keeps a queue handle on cache lines of its own.
///
/// The variants keep each end's private index (`tail`, `head_cache`; rtrb's `cached_*` cells)
/// inside the handle and write it on every operation. Two handles that are neighbours on the
/// stack would share a line, and each push and pop would then bounce it between the cores: a
/// cost of the bench's memory layout, not of the queue.
#[repr(align(128))]
pub struct Alone<T>(pub T);

/// One pass: a producer and a consumer thread move `setup.items` items; returns the time from
/// the producer's start to the consumer's last item, and the consumer's checksum.
pub fn transfer<Q: Queue, T: Item, const CHECK_ORDER: bool>(
    setup: ThroughputSetup,
    pinning: Pinning,
) -> (Duration, u64) {
    let (tx, rx) = Q::channel::<T>(setup.capacity);
    let (mut tx, mut rx) = (Alone(tx), Alone(rx));
    let start_line = Barrier::new(2);
    thread::scope(|scope| {
        let producer = scope.spawn(|| {
            pinning.pin_first();
            start_line.wait();
            let started = Instant::now();
            produce::<Q, T>(&mut tx.0, setup.items, setup.batch);
            started
        });
        let consumer = scope.spawn(|| {
            pinning.pin_second();
            start_line.wait();
            let checksum = consume::<Q, T, CHECK_ORDER>(&mut rx.0, setup.items, setup.batch);
            (Instant::now(), checksum)
        });
        let started = producer.join().expect("producer panicked");
        let (finished, checksum) = consumer.join().expect("consumer panicked");
        (finished.duration_since(started), checksum)
    })
}

pub fn throughput<Q: Queue, T: Item>(
    setup: ThroughputSetup,
    pinning: Pinning,
    first: bool,
) -> Measurement {
    if first {
        let check = ThroughputSetup {
            items: setup.items.min(200_000),
            ..setup
        };
        let (_, checksum) = transfer::<Q, T, true>(check, pinning);
        assert_eq!(
            checksum,
            T::expected_checksum(check.items),
            "{}: checksum",
            Q::NAME
        );
    }
    let (elapsed, checksum) = transfer::<Q, T, false>(setup, pinning);
    assert_eq!(
        checksum,
        T::expected_checksum(setup.items),
        "{}: checksum",
        Q::NAME
    );
    let seconds = elapsed.as_secs_f64();
    Measurement::Throughput {
        mops: setup.items as f64 / seconds / 1e6,
        seconds,
        items: setup.items,
    }
}

/// Sent to the echo thread to make it stop.
pub const STOP: u64 = u64::MAX;

#[inline(never)]
pub fn echo<Q: Queue>(rx: &mut Q::Rx<u64>, tx: &mut Q::Tx<u64>) {
    loop {
        let value = loop {
            match Q::pop(rx) {
                Some(value) => break value,
                None => spin_loop(),
            }
        };
        if value == STOP {
            return;
        }
        let mut value = value;
        while let Err(back) = Q::push(tx, value) {
            value = back;
            spin_loop();
        }
    }
}

/// Sends `0..round_trips` one at a time, waits for each to come back, and records each round
/// trip in clock ticks.
#[inline(never)]
pub fn ping<Q: Queue>(
    tx: &mut Q::Tx<u64>,
    rx: &mut Q::Rx<u64>,
    round_trips: u64,
    clock: Clock,
    samples: &mut Vec<u64>,
) {
    for sequence in 0..round_trips {
        let sent = clock.ticks();
        if Q::push(tx, sequence).is_err() {
            panic!("{}: ring full with one item in flight", Q::NAME);
        }
        let back = loop {
            match Q::pop(rx) {
                Some(value) => break value,
                None => spin_loop(),
            }
        };
        let received = clock.ticks();
        assert_eq!(back, sequence, "{}: echo returned the wrong item", Q::NAME);
        samples.push(received.wrapping_sub(sent));
    }
}

pub fn round_trip<Q: Queue>(
    round_trips: u64,
    clock: Clock,
    pinning: Pinning,
    first: bool,
) -> Measurement {
    let pass = |count: u64| {
        let (out_tx, out_rx) = Q::channel::<u64>(1024);
        let (back_tx, back_rx) = Q::channel::<u64>(1024);
        let (mut out_tx, mut out_rx) = (Alone(out_tx), Alone(out_rx));
        let (mut back_tx, mut back_rx) = (Alone(back_tx), Alone(back_rx));
        let mut samples = Vec::with_capacity(count as usize);
        thread::scope(|scope| {
            scope.spawn(|| {
                pinning.pin_second();
                echo::<Q>(&mut out_rx.0, &mut back_tx.0);
            });
            // The pinger gets its own thread too: pinning the main thread would shrink the
            // affinity mask of everything it spawns later.
            scope.spawn(|| {
                pinning.pin_first();
                ping::<Q>(&mut out_tx.0, &mut back_rx.0, count, clock, &mut samples);
                let mut stop = STOP;
                while let Err(back) = Q::push(&mut out_tx.0, stop) {
                    stop = back;
                    spin_loop();
                }
            });
        });
        samples
    };
    if first {
        // Untimed check: every item comes back, in order (asserted in `ping`).
        assert_eq!(
            pass(round_trips.min(10_000)).len() as u64,
            round_trips.min(10_000)
        );
    }
    let samples = pass(round_trips);
    latency(
        samples
            .into_iter()
            .map(|ticks| clock.ticks_to_ns(ticks))
            .collect(),
        0,
    )
}

#[derive(Clone, Copy)]
pub struct WakeSetup {
    pub wake_ups: u64,
    /// How long the producer waits before each push, so the consumer is surely parked.
    pub gap: Duration,
}

/// Item of the wake-up scenario: `[sequence, stamp_ns]`, stamped just before the push.
pub type Stamp = [u64; 2];

pub fn now_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Consumer parks with piccolo's `Parker` (no spinning) around any queue; the producer pushes a
/// time stamp and calls `Unparker::notify`.
pub fn wake_up_parker<Q: Queue>(setup: WakeSetup, pinning: Pinning, first: bool) -> Measurement {
    let pass = |wake_ups: u64| {
        let (tx, rx) = Q::channel::<Stamp>(1024);
        let (mut tx, mut rx) = (Alone(tx), Alone(rx));
        let parker = Parker::new();
        let epoch = Instant::now();
        thread::scope(|scope| {
            let consumer = scope.spawn(|| {
                pinning.pin_second();
                let mut samples = Vec::with_capacity(wake_ups as usize);
                let mut unparked = 0;
                for sequence in 0..wake_ups {
                    let mut item = None;
                    let parks = parker.wait(0, || {
                        item = Q::pop(&mut rx.0);
                        item.is_some()
                    });
                    let arrived = now_ns(epoch);
                    let [got, stamp] = item.expect("wait returned without an item");
                    assert_eq!(got, sequence, "{}: wrong wake-up item", Q::NAME);
                    if parks == 0 {
                        // Found the item before parking (the consumer had not been scheduled
                        // since the last wake-up): not a wake-up, so not a sample.
                        unparked += 1;
                    } else {
                        samples.push(arrived.saturating_sub(stamp) as f64);
                    }
                }
                (samples, unparked)
            });
            let unparker = parker.unparker(consumer.thread().clone());
            scope.spawn(move || {
                pinning.pin_first();
                for sequence in 0..wake_ups {
                    thread::sleep(setup.gap);
                    let mut item = [sequence, now_ns(epoch)];
                    while let Err(back) = Q::push(&mut tx.0, item) {
                        item = back;
                        spin_loop();
                    }
                    unparker.notify();
                }
            });
            consumer.join().expect("consumer panicked")
        })
    };
    if first {
        pass(setup.wake_ups.min(20));
    }
    let (samples, unparked) = pass(setup.wake_ups);
    latency(samples, unparked)
}

/// The std peer: `sync_channel`'s own blocking `recv()`, which parks in the kernel.
pub fn wake_up_std_recv(setup: WakeSetup, pinning: Pinning, first: bool) -> Measurement {
    let pass = |wake_ups: u64| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Stamp>(1024);
        let epoch = Instant::now();
        thread::scope(|scope| {
            let consumer = scope.spawn(move || {
                pinning.pin_second();
                let mut samples = Vec::with_capacity(wake_ups as usize);
                for sequence in 0..wake_ups {
                    let [got, stamp] = rx.recv().expect("sender gone");
                    let arrived = now_ns(epoch);
                    assert_eq!(got, sequence, "std-mpsc recv: wrong wake-up item");
                    samples.push(arrived.saturating_sub(stamp) as f64);
                }
                samples
            });
            scope.spawn(move || {
                pinning.pin_first();
                for sequence in 0..wake_ups {
                    thread::sleep(setup.gap);
                    tx.send([sequence, now_ns(epoch)]).expect("receiver gone");
                }
            });
            consumer.join().expect("consumer panicked")
        })
    };
    if first {
        pass(setup.wake_ups.min(20));
    }
    latency(pass(setup.wake_ups), 0)
}
