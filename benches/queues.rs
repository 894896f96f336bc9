//! Queue comparison: piccolo's four SPSC variants against `rtrb`, `crossbeam_queue::ArrayQueue`
//! and `std::sync::mpsc::sync_channel`, in one run.
//!
//! ```text
//! cargo bench --bench queues -- [--runs N] [--quick] [--out DIR]
//! ```
//!
//! How it is organised:
//!
//! * [`Queue`] is a small adapter trait, one impl per queue. Every scenario is a generic function
//!   over it, so each (queue, scenario) pair is its own monomorphised loop: no virtual call and no
//!   branch on the queue kind in the hot path. The functions that hold the hot loops are
//!   `#[inline(never)]` so they show up by name in `perf report`.
//! * A scenario is a list of contenders, each a boxed closure that does one run and returns one
//!   measurement (the box is called once per run, never per item).
//! * Runs are interleaved: in round `r` every scenario runs every queue once, starting at queue
//!   `r` (rotating order), so slow drift (thermal, other processes) hits all queues alike. The
//!   figure reported is the median of the rounds.
//! * Before its first timed run, each (queue, scenario) pair runs an untimed pass that checks the
//!   consumer receives exactly `0..n` in order; every timed run checks the item count and a
//!   checksum of everything received.
//!
//! Threads are pinned (producer and consumer on different cores) when `core_affinity` reports at
//! least two cores; the output says whether that happened.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::spin_loop;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use piccolo_queues::park::Parker;
use piccolo_queues::{RingConsumer, RingProducer, Variant, batched, cached, lamport, mutex};

// ---------------------------------------------------------------------------------------------
// Adapters
// ---------------------------------------------------------------------------------------------

/// One queue under test, seen through the operations the scenarios need.
trait Queue: 'static {
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
struct Piccolo<V>(PhantomData<V>);

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

type Lamport = Piccolo<lamport::Lamport>;
type Cached = Piccolo<cached::Cached>;
type Batched = Piccolo<batched::Batched>;
type Mutex = Piccolo<mutex::Locked>;

/// `rtrb::RingBuffer`, with its chunk API for batches.
struct Rtrb;

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
struct Crossbeam;

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
struct StdSync;

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

// ---------------------------------------------------------------------------------------------
// Items
// ---------------------------------------------------------------------------------------------

/// What travels through the queues: made from a sequence number, checkable on arrival.
trait Item: Copy + Send + 'static {
    const LABEL: &'static str;
    fn from_sequence(sequence: u64) -> Self;
    fn sequence(&self) -> u64;
    /// True if every word is what `from_sequence(self.sequence())` wrote.
    fn is_intact(&self) -> bool;
    /// Folds every word, so the consumer really reads the whole item.
    fn checksum(&self) -> u64;
    /// Sum of `checksum` over items `0..count`.
    fn expected_checksum(count: u64) -> u64;
}

impl Item for u64 {
    const LABEL: &'static str = "u64";
    #[inline(always)]
    fn from_sequence(sequence: u64) -> Self {
        sequence
    }
    #[inline(always)]
    fn sequence(&self) -> u64 {
        *self
    }
    fn is_intact(&self) -> bool {
        true
    }
    #[inline(always)]
    fn checksum(&self) -> u64 {
        *self
    }
    fn expected_checksum(count: u64) -> u64 {
        (0..count).fold(0u64, |sum, sequence| sum.wrapping_add(sequence))
    }
}

/// A 64-byte item: word `k` holds `sequence + k`.
type Wide = [u64; 8];
const _: () = assert!(size_of::<Wide>() == 64);

impl Item for Wide {
    const LABEL: &'static str = "[u64; 8]";
    #[inline(always)]
    fn from_sequence(sequence: u64) -> Self {
        core::array::from_fn(|k| sequence.wrapping_add(k as u64))
    }
    #[inline(always)]
    fn sequence(&self) -> u64 {
        self[0]
    }
    fn is_intact(&self) -> bool {
        *self == Self::from_sequence(self[0])
    }
    #[inline(always)]
    fn checksum(&self) -> u64 {
        self.iter().fold(0u64, |sum, word| sum.wrapping_add(*word))
    }
    fn expected_checksum(count: u64) -> u64 {
        (0..count).fold(0u64, |sum, sequence| {
            sum.wrapping_add(Self::from_sequence(sequence).checksum())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Threads and clocks
// ---------------------------------------------------------------------------------------------

/// Which cores the two sides of every run are pinned to, if any.
#[derive(Clone, Copy)]
struct Pinning {
    cores: Option<(core_affinity::CoreId, core_affinity::CoreId)>,
}

impl Pinning {
    fn detect() -> Self {
        let cores = core_affinity::get_core_ids()
            .filter(|ids| ids.len() >= 2)
            .map(|ids| (ids[0], ids[1]));
        Self { cores }
    }

    fn describe(&self) -> String {
        match self.cores {
            Some((a, b)) => format!(
                "yes (producer/pinger on core {}, consumer/echo on core {})",
                a.id, b.id
            ),
            None => "no (fewer than 2 cores reported); threads float".to_string(),
        }
    }

    fn pin_first(&self) {
        if let Some((core, _)) = self.cores {
            assert!(
                core_affinity::set_for_current(core),
                "pinning to core {} failed",
                core.id
            );
        }
    }

    fn pin_second(&self) {
        if let Some((_, core)) = self.cores {
            assert!(
                core_affinity::set_for_current(core),
                "pinning to core {} failed",
                core.id
            );
        }
    }
}

/// A cheap clock for per-round-trip timing: the TSC on x86_64 when the CPU says it ticks at a
/// constant rate, calibrated against `Instant`; `Instant` itself elsewhere.
#[derive(Clone, Copy)]
struct Clock {
    use_tsc: bool,
    ticks_per_ns: f64,
    epoch: Instant,
}

impl Clock {
    fn new() -> Self {
        let epoch = Instant::now();
        let constant_tsc = cfg!(target_arch = "x86_64")
            && std::fs::read_to_string("/proc/cpuinfo")
                .map(|info| info.contains("constant_tsc") && info.contains("nonstop_tsc"))
                .unwrap_or(false);
        if !constant_tsc {
            return Self {
                use_tsc: false,
                ticks_per_ns: 1.0,
                epoch,
            };
        }
        let probe = Self {
            use_tsc: true,
            ticks_per_ns: 1.0,
            epoch,
        };
        let start_ticks = probe.ticks();
        let start = Instant::now();
        thread::sleep(Duration::from_millis(50));
        let ticks = probe.ticks() - start_ticks;
        let ns = start.elapsed().as_nanos() as f64;
        Self {
            use_tsc: true,
            ticks_per_ns: ticks as f64 / ns,
            epoch,
        }
    }

    #[inline(always)]
    fn ticks(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.use_tsc {
            // SAFETY: `rdtsc` exists on every x86_64 CPU and has no memory effects.
            return unsafe { core::arch::x86_64::_rdtsc() };
        }
        self.epoch.elapsed().as_nanos() as u64
    }

    fn ticks_to_ns(&self, ticks: u64) -> f64 {
        ticks as f64 / self.ticks_per_ns
    }

    fn describe(&self) -> String {
        if self.use_tsc {
            format!(
                "rdtsc ({:.3} GHz, calibrated against Instant)",
                self.ticks_per_ns
            )
        } else {
            "std::time::Instant".to_string()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Measurement {
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
fn percentile(sorted: &[f64], per_cent: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(sorted.len() * per_cent / 100).min(sorted.len() - 1)]
}

fn latency(mut samples_ns: Vec<f64>, unparked: usize) -> Measurement {
    samples_ns.sort_by(f64::total_cmp);
    Measurement::Latency {
        p50_ns: percentile(&samples_ns, 50),
        p99_ns: percentile(&samples_ns, 99),
        samples: samples_ns.len(),
        unparked,
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 1 and 2: throughput
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct ThroughputSetup {
    capacity: usize,
    /// Items per push/pop call: 1, or the batch size (already clamped to the capacity).
    batch: usize,
    items: u64,
}

#[inline(never)]
fn produce<Q: Queue, T: Item>(tx: &mut Q::Tx<T>, items: u64, batch: usize) {
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
struct Tally {
    received: u64,
    checksum: u64,
}

impl Tally {
    /// Accounts for one item; with `CHECK_ORDER` asserts it is the next sequence number and
    /// intact.
    #[inline(always)]
    fn take<Q: Queue, T: Item, const CHECK_ORDER: bool>(&mut self, value: T) {
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
fn consume<Q: Queue, T: Item, const CHECK_ORDER: bool>(
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
struct Alone<T>(T);

/// One pass: a producer and a consumer thread move `setup.items` items; returns the time from
/// the producer's start to the consumer's last item, and the consumer's checksum.
fn transfer<Q: Queue, T: Item, const CHECK_ORDER: bool>(
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

fn throughput<Q: Queue, T: Item>(
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

// ---------------------------------------------------------------------------------------------
// Scenario 3: ping-pong round trip
// ---------------------------------------------------------------------------------------------

/// Sent to the echo thread to make it stop.
const STOP: u64 = u64::MAX;

#[inline(never)]
fn echo<Q: Queue>(rx: &mut Q::Rx<u64>, tx: &mut Q::Tx<u64>) {
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
fn ping<Q: Queue>(
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

fn round_trip<Q: Queue>(
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

// ---------------------------------------------------------------------------------------------
// Scenario 4: wake-up latency of a parked consumer
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct WakeSetup {
    wake_ups: u64,
    /// How long the producer waits before each push, so the consumer is surely parked.
    gap: Duration,
}

/// Item of the wake-up scenario: `[sequence, stamp_ns]`, stamped just before the push.
type Stamp = [u64; 2];

fn now_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Consumer parks with piccolo's `Parker` (no spinning) around any queue; the producer pushes a
/// time stamp and calls `Unparker::notify`.
fn wake_up_parker<Q: Queue>(setup: WakeSetup, pinning: Pinning, first: bool) -> Measurement {
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
fn wake_up_std_recv(setup: WakeSetup, pinning: Pinning, first: bool) -> Measurement {
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

// ---------------------------------------------------------------------------------------------
// Plan: scenarios, contenders, rounds
// ---------------------------------------------------------------------------------------------

type RunFn = Box<dyn Fn(bool) -> Measurement>;

struct Contender {
    queue: &'static str,
    run: RunFn,
}

struct Scenario {
    /// Stable identifier (JSON key).
    key: String,
    /// Column heading.
    title: String,
    contenders: Vec<Contender>,
}

struct Options {
    runs: usize,
    quick: bool,
    out: Option<PathBuf>,
    /// Run only the scenarios whose key contains this (for profiling one scenario).
    scenario: Option<String>,
}

impl Options {
    fn parse() -> Self {
        let mut options = Options {
            runs: 5,
            quick: false,
            out: None,
            scenario: None,
        };
        let mut runs_given = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // cargo passes `--bench` to harness = false benches.
                "--bench" => {}
                "--quick" => options.quick = true,
                "--runs" => {
                    options.runs = args
                        .next()
                        .and_then(|value| value.parse().ok())
                        .filter(|&runs| runs >= 1)
                        .unwrap_or_else(|| usage("--runs needs a number >= 1"));
                    runs_given = true;
                }
                "--out" => {
                    options.out = Some(PathBuf::from(
                        args.next()
                            .unwrap_or_else(|| usage("--out needs a directory")),
                    ));
                }
                "--scenario" => {
                    options.scenario = Some(
                        args.next()
                            .unwrap_or_else(|| usage("--scenario needs part of a scenario key")),
                    );
                }
                "-h" | "--help" => usage(""),
                other => usage(&format!("unknown argument {other:?}")),
            }
        }
        if options.quick && !runs_given {
            // A smoke test for CI: one run of everything, correctness checks included.
            options.runs = 1;
        }
        options
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("queues bench: {problem}");
    }
    eprintln!(
        "usage: cargo bench --bench queues -- [--runs N (default 5; 1 with --quick)] [--quick] [--out DIR] [--scenario PART_OF_KEY, e.g. cap1024/batch32]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}

/// Items per throughput run for a fast queue at large capacity; everything else scales down.
const ITEMS_FULL: u64 = 16_000_000;
/// Batch size of the batch scenarios (clamped to the capacity).
const BATCH: usize = 32;

struct Scale {
    items: u64,
    round_trips: u64,
    wake: WakeSetup,
}

impl Scale {
    fn new(quick: bool) -> Self {
        let gap = Duration::from_micros(200);
        if quick {
            Scale {
                items: ITEMS_FULL / 100,
                round_trips: 5_000,
                wake: WakeSetup { wake_ups: 50, gap },
            }
        } else {
            Scale {
                items: ITEMS_FULL,
                round_trips: 200_000,
                wake: WakeSetup {
                    wake_ups: 2_000,
                    gap,
                },
            }
        }
    }

    /// Items for queue `Q` at `capacity` with `item_bytes`-byte items.
    fn items_for<Q: Queue>(&self, capacity: usize, item_bytes: usize) -> u64 {
        let mut items = self.items;
        if capacity <= 2 {
            // Every item costs a cache-line round trip at capacity 2.
            items /= 8;
        }
        if item_bytes > 8 {
            items /= 2;
        }
        if Q::SLOW {
            items /= 4;
        }
        items
    }
}

fn throughput_contender<Q: Queue, T: Item>(
    capacity: usize,
    batch: usize,
    scale: &Scale,
    pinning: Pinning,
) -> Contender {
    let setup = ThroughputSetup {
        capacity,
        batch,
        items: scale.items_for::<Q>(capacity, size_of::<T>()),
    };
    Contender {
        queue: Q::NAME,
        run: Box::new(move |first| throughput::<Q, T>(setup, pinning, first)),
    }
}

/// The seven queues of the throughput and round-trip scenarios, in table order.
///
/// `for_each_queue!(f::<_, T>(args))` calls `f::<Q, T>(args)` for each queue `Q`.
macro_rules! for_each_queue {
    ($make:ident ::<_ $(, $extra:ty)*> ( $($arg:expr),* )) => {
        vec![
            $make::<Lamport $(, $extra)*>($($arg),*),
            $make::<Cached $(, $extra)*>($($arg),*),
            $make::<Batched $(, $extra)*>($($arg),*),
            $make::<Mutex $(, $extra)*>($($arg),*),
            $make::<Rtrb $(, $extra)*>($($arg),*),
            $make::<Crossbeam $(, $extra)*>($($arg),*),
            $make::<StdSync $(, $extra)*>($($arg),*),
        ]
    };
}

fn batch_notes() -> Vec<(&'static str, &'static str)> {
    fn note<Q: Queue>() -> (&'static str, &'static str) {
        (Q::NAME, Q::BATCH_NOTE)
    }
    for_each_queue!(note::<_>())
}

fn throughput_scenario<T: Item + Contenders>(
    capacity: usize,
    batch: usize,
    scale: &Scale,
    pinning: Pinning,
) -> Scenario {
    let batch = batch.min(capacity);
    let contenders = T::contenders(capacity, batch, scale, pinning);
    let mode = if batch == 1 {
        "x1".to_string()
    } else {
        format!("x{batch}")
    };
    Scenario {
        key: format!(
            "throughput/{}/cap{capacity}/batch{batch}",
            T::LABEL.replace(' ', "")
        ),
        title: format!("{} cap {capacity} {mode}", T::LABEL),
        contenders,
    }
}

/// The throughput contenders for items of type `T`, one per queue.
trait Contenders {
    fn contenders(capacity: usize, batch: usize, scale: &Scale, pinning: Pinning)
    -> Vec<Contender>;
}

impl<T: Item> Contenders for T {
    fn contenders(
        capacity: usize,
        batch: usize,
        scale: &Scale,
        pinning: Pinning,
    ) -> Vec<Contender> {
        for_each_queue!(throughput_contender::<_, T>(
            capacity, batch, scale, pinning
        ))
    }
}

fn round_trip_contender<Q: Queue>(scale: &Scale, clock: Clock, pinning: Pinning) -> Contender {
    let round_trips = scale.round_trips;
    Contender {
        queue: Q::NAME,
        run: Box::new(move |first| round_trip::<Q>(round_trips, clock, pinning, first)),
    }
}

fn wake_up_contender<Q: Queue>(scale: &Scale, pinning: Pinning) -> Contender {
    let setup = scale.wake;
    Contender {
        queue: Q::NAME,
        run: Box::new(move |first| wake_up_parker::<Q>(setup, pinning, first)),
    }
}

/// Name of the extra wake-up contender.
const STD_RECV: &str = "std-mpsc recv()";

fn plan(scale: &Scale, clock: Clock, pinning: Pinning) -> Vec<Scenario> {
    let mut scenarios = Vec::new();
    for capacity in [2, 1024, 65536] {
        for batch in [1, BATCH] {
            scenarios.push(throughput_scenario::<u64>(capacity, batch, scale, pinning));
        }
    }
    scenarios.push(throughput_scenario::<Wide>(1024, 1, scale, pinning));
    scenarios.push(Scenario {
        key: "round_trip/u64/cap1024".to_string(),
        title: "round trip".to_string(),
        contenders: for_each_queue!(round_trip_contender::<_>(scale, clock, pinning)),
    });
    let mut wake_ups = for_each_queue!(wake_up_contender::<_>(scale, pinning));
    let setup = scale.wake;
    wake_ups.push(Contender {
        queue: STD_RECV,
        run: Box::new(move |first| wake_up_std_recv(setup, pinning, first)),
    });
    scenarios.push(Scenario {
        key: "wake_up/parked".to_string(),
        title: "wake-up".to_string(),
        contenders: wake_ups,
    });
    scenarios
}

/// All runs of one (scenario, queue) pair, in round order.
type Runs = Vec<Measurement>;

fn run_rounds(scenarios: &[Scenario], runs: usize) -> Vec<Vec<Runs>> {
    let mut results: Vec<Vec<Runs>> = scenarios
        .iter()
        .map(|scenario| scenario.contenders.iter().map(|_| Vec::new()).collect())
        .collect();
    for round in 0..runs {
        let round_started = Instant::now();
        for (scenario, scenario_results) in scenarios.iter().zip(&mut results) {
            let count = scenario.contenders.len();
            for offset in 0..count {
                let index = (round + offset) % count;
                let measurement = (scenario.contenders[index].run)(round == 0);
                scenario_results[index].push(measurement);
            }
        }
        eprintln!(
            "round {}/{runs} done in {:.1} s",
            round + 1,
            round_started.elapsed().as_secs_f64()
        );
    }
    results
}

// ---------------------------------------------------------------------------------------------
// Summaries
// ---------------------------------------------------------------------------------------------

fn median(mut values: Vec<f64>) -> f64 {
    assert!(!values.is_empty());
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Median figures of one (scenario, queue) pair.
#[derive(Clone, Copy, Debug)]
enum Summary {
    Throughput {
        mops: f64,
        min: f64,
        max: f64,
    },
    Latency {
        p50_ns: f64,
        p99_ns: f64,
        unparked: usize,
    },
}

fn summarise(runs: &Runs) -> Summary {
    match runs[0] {
        Measurement::Throughput { .. } => {
            let mops: Vec<f64> = runs
                .iter()
                .map(|run| match run {
                    Measurement::Throughput { mops, .. } => *mops,
                    Measurement::Latency { .. } => unreachable!("mixed measurements"),
                })
                .collect();
            let min = mops.iter().copied().fold(f64::INFINITY, f64::min);
            let max = mops.iter().copied().fold(0.0, f64::max);
            Summary::Throughput {
                mops: median(mops),
                min,
                max,
            }
        }
        Measurement::Latency { .. } => {
            let mut p50 = Vec::new();
            let mut p99 = Vec::new();
            let mut unparked = 0;
            for run in runs {
                if let Measurement::Latency {
                    p50_ns,
                    p99_ns,
                    unparked: u,
                    ..
                } = run
                {
                    p50.push(*p50_ns);
                    p99.push(*p99_ns);
                    unparked += u;
                }
            }
            Summary::Latency {
                p50_ns: median(p50),
                p99_ns: median(p99),
                unparked,
            }
        }
    }
}

/// Every figure the reports need, by scenario key, then queue name.
#[derive(Default)]
struct Table {
    /// Medians over the runs.
    summaries: BTreeMap<String, BTreeMap<&'static str, Summary>>,
    /// The headline figure of each run (Mops/s, or p50 ns for latencies), in round order, for
    /// ratios paired within a round.
    per_run: BTreeMap<String, BTreeMap<&'static str, Vec<f64>>>,
}

impl Table {
    fn get(&self, key: &str) -> Option<&BTreeMap<&'static str, Summary>> {
        self.summaries.get(key)
    }

    /// Median over the rounds of `a / b`, each ratio taken within one round.
    fn paired_ratio(&self, key_a: &str, a: &str, key_b: &str, b: &str) -> Option<f64> {
        let runs_a = self.per_run.get(key_a)?.get(a)?;
        let runs_b = self.per_run.get(key_b)?.get(b)?;
        let ratios: Vec<f64> = runs_a.iter().zip(runs_b).map(|(a, b)| a / b).collect();
        (!ratios.is_empty()).then(|| median(ratios))
    }
}

fn headline(measurement: &Measurement) -> f64 {
    match measurement {
        Measurement::Throughput { mops, .. } => *mops,
        Measurement::Latency { p50_ns, .. } => *p50_ns,
    }
}

fn mops(table: &Table, key: &str, queue: &str) -> Option<f64> {
    match table.get(key)?.get(queue)? {
        Summary::Throughput { mops, .. } => Some(*mops),
        Summary::Latency { .. } => None,
    }
}

fn p50(table: &Table, key: &str, queue: &str) -> Option<f64> {
    match table.get(key)?.get(queue)? {
        Summary::Latency { p50_ns, .. } => Some(*p50_ns),
        Summary::Throughput { .. } => None,
    }
}

const KEY_SINGLE: &str = "throughput/u64/cap1024/batch1";
const KEY_BATCH: &str = "throughput/u64/cap1024/batch32";
const KEY_ROUND_TRIP: &str = "round_trip/u64/cap1024";
const KEY_WAKE: &str = "wake_up/parked";

fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or("n/a".to_string(), |ratio| format!("{ratio:.2}x"))
}

struct Target {
    what: &'static str,
    /// Median over the rounds of the ratio within each round: the verdict's basis, because
    /// both sides of a paired ratio ran minutes apart at most and usually under the same
    /// conditions (on a VM the two vCPUs' placement can change between rounds).
    ratio: Option<f64>,
    /// Ratio of the two medians, for comparison with the tables.
    ratio_of_medians: Option<f64>,
    /// True if the target is "at least", false if "at most".
    at_least: bool,
    bound: f64,
}

impl Target {
    fn verdict(&self) -> &'static str {
        match self.ratio {
            None => "n/a",
            Some(ratio)
                if (self.at_least && ratio >= self.bound)
                    || (!self.at_least && ratio <= self.bound) =>
            {
                "PASS"
            }
            Some(_) => "MISS",
        }
    }

    /// One line of the text report.
    fn line(&self) -> String {
        let relation = if self.at_least { ">=" } else { "<=" };
        format!(
            "{:<48} {:>7}  (of medians {:>7})  target {relation} {:.1}x  {}",
            self.what,
            format_ratio(self.ratio),
            format_ratio(self.ratio_of_medians),
            self.bound,
            self.verdict()
        )
    }
}

fn targets(table: &Table) -> Vec<Target> {
    let medians = |key_a: &str, a: &str, key_b: &str, b: &str| {
        let figure =
            |key: &str, queue: &str| mops(table, key, queue).or_else(|| p50(table, key, queue));
        Some(figure(key_a, a)? / figure(key_b, b)?)
    };
    let target = |what, (key_a, a), (key_b, b), at_least, bound| Target {
        what,
        ratio: table.paired_ratio(key_a, a, key_b, b),
        ratio_of_medians: medians(key_a, a, key_b, b),
        at_least,
        bound,
    };
    vec![
        target(
            "cached throughput / rtrb (x1)",
            (KEY_SINGLE, "cached"),
            (KEY_SINGLE, "rtrb"),
            true,
            1.0,
        ),
        target(
            "cached round trip p50 / rtrb",
            (KEY_ROUND_TRIP, "cached"),
            (KEY_ROUND_TRIP, "rtrb"),
            false,
            1.1,
        ),
        target(
            "batched x32 throughput / rtrb x1",
            (KEY_BATCH, "batched"),
            (KEY_SINGLE, "rtrb"),
            true,
            2.0,
        ),
        target(
            "cached throughput / crossbeam (x1)",
            (KEY_SINGLE, "cached"),
            (KEY_SINGLE, "crossbeam"),
            true,
            3.0,
        ),
        target(
            "batched x32 throughput / crossbeam x32 (loop)",
            (KEY_BATCH, "batched"),
            (KEY_BATCH, "crossbeam"),
            true,
            3.0,
        ),
        target(
            "batched x32 throughput / crossbeam x1",
            (KEY_BATCH, "batched"),
            (KEY_SINGLE, "crossbeam"),
            true,
            3.0,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Reports: text, Markdown, JSON, SVG
// ---------------------------------------------------------------------------------------------

struct Context {
    options: Options,
    pinning: Pinning,
    clock: Clock,
    machine: Vec<(&'static str, String)>,
    load_before: String,
    load_after: String,
    wall_seconds: f64,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn machine_description() -> Vec<(&'static str, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let cores = thread::available_parallelism().map_or("unknown".to_string(), |n| n.to_string());
    let kernel =
        read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc = command_output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".to_string());
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
        .unwrap_or_else(|| "unknown".to_string());
    vec![
        ("CPU", cpu),
        ("cores", cores),
        ("kernel", kernel),
        ("rustc", rustc),
        ("date", date),
    ]
}

fn load_average() -> String {
    read_trimmed("/proc/loadavg")
        .map(|load| {
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    let mut line = "cargo bench --bench queues".to_string();
    if !args.is_empty() {
        line.push_str(" -- ");
        line.push_str(&args.join(" "));
    }
    line
}

fn format_cell(summary: Option<&Summary>, latency_p99: bool) -> String {
    match summary {
        None => "-".to_string(),
        Some(Summary::Throughput { mops, .. }) => format!("{mops:.1}"),
        Some(Summary::Latency { p50_ns, p99_ns, .. }) => {
            if latency_p99 {
                format!("{p99_ns:.0}")
            } else {
                format!("{p50_ns:.0}")
            }
        }
    }
}

/// A table as text cells: a heading row and one row per queue.
struct Grid {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// The throughput grid and the latency grid. Queue order is the plan's.
fn table_rows(scenarios: &[Scenario], table: &Table) -> (Grid, Grid) {
    let mut queues: Vec<&'static str> = Vec::new();
    for scenario in scenarios {
        for contender in &scenario.contenders {
            if !queues.contains(&contender.queue) {
                queues.push(contender.queue);
            }
        }
    }
    let throughput: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| s.key.starts_with("throughput/"))
        .collect();
    let mut throughput_head = vec!["queue".to_string()];
    throughput_head.extend(throughput.iter().map(|s| s.title.clone()));
    let latency_head: Vec<String> = [
        "queue",
        "round trip p50",
        "round trip p99",
        "wake-up p50",
        "wake-up p99",
        "not parked",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut throughput_rows = Vec::new();
    let mut latency_rows = Vec::new();
    for queue in queues {
        let cells: Vec<String> = throughput
            .iter()
            .map(|s| format_cell(table.get(&s.key).and_then(|row| row.get(queue)), false))
            .collect();
        if cells.iter().any(|cell| cell != "-") {
            let mut row = vec![queue.to_string()];
            row.extend(cells);
            throughput_rows.push(row);
        }
        let round_trip = table.get(KEY_ROUND_TRIP).and_then(|row| row.get(queue));
        let wake = table.get(KEY_WAKE).and_then(|row| row.get(queue));
        let unparked = match wake {
            Some(Summary::Latency { unparked, .. }) => unparked.to_string(),
            _ => "-".to_string(),
        };
        latency_rows.push(vec![
            queue.to_string(),
            format_cell(round_trip, false),
            format_cell(round_trip, true),
            format_cell(wake, false),
            format_cell(wake, true),
            unparked,
        ]);
    }
    (
        Grid {
            head: throughput_head,
            rows: throughput_rows,
        },
        Grid {
            head: latency_head,
            rows: latency_rows,
        },
    )
}

fn plain_table(grid: &Grid) -> String {
    let (head, rows) = (&grid.head, &grid.rows);
    let mut widths: Vec<usize> = head.iter().map(String::len).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    let line = |cells: &[String], text: &mut String| {
        for (column, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if column == 0 {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "  {cell:>width$}");
            }
        }
        text.push('\n');
    };
    line(head, &mut text);
    let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    line(&rule, &mut text);
    for row in rows {
        line(row, &mut text);
    }
    text
}

fn markdown_table(grid: &Grid) -> String {
    let (head, rows) = (&grid.head, &grid.rows);
    let mut text = format!("| {} |\n", head.join(" | "));
    text.push('|');
    for column in 0..head.len() {
        text.push_str(if column == 0 { "---|" } else { "---:|" });
    }
    text.push('\n');
    for row in rows {
        let _ = writeln!(text, "| {} |", row.join(" | "));
    }
    text
}

fn notes(context: &Context, scale: &Scale) -> Vec<String> {
    let mut notes = vec![
        format!(
            "Figures are the median of {} runs; runs are interleaved (each round runs every queue once, in rotating order).",
            context.options.runs
        ),
        format!("Pinning: {}.", context.pinning.describe()),
        format!("Round-trip clock: {}.", context.clock.describe()),
        format!(
            "Throughput runs move {} u64 items (capacity 2: /8; [u64; 8]: /2; std-mpsc: /4); round trip: {} per run, over two rings of capacity 1024 with one item in flight; wake-up: {} per run, the producer sleeps {} µs before each push so the consumer has parked.",
            scale.items,
            scale.round_trips,
            scale.wake.wake_ups,
            scale.wake.gap.as_micros()
        ),
        format!(
            "Batches are of {BATCH} items, clamped to the capacity (so batches of 2 at capacity 2). How each queue moves a batch:"
        ),
    ];
    for (queue, note) in batch_notes() {
        notes.push(format!("  - {queue}: {note}"));
    }
    notes.push("Piccolo's lamport, cached and mutex publish on every push_deferred, so their batch column is a loop of pushes plus pop_batch (a loop of pops for them).".to_string());
    notes.push(format!(
        "Wake-up: the consumer parks with piccolo's Parker (spins 0) around each queue, including rtrb, crossbeam and std-mpsc (polled with try_recv); the producer stamps the time, pushes, and calls Unparker::notify. `{STD_RECV}` is std's own blocking recv(), which parks in the kernel. `not parked` counts wake-ups (over all runs) where the consumer found the item before it parked; they are left out of the percentiles."
    ));
    notes.push("std-mpsc in the throughput and round-trip scenarios is driven with try_send/try_recv and spins like the others.".to_string());
    if context.options.quick {
        notes.push(
            "QUICK MODE: few items per run, figures are a smoke test, not a measurement."
                .to_string(),
        );
    }
    notes
}

fn print_report(context: &Context, scale: &Scale, scenarios: &[Scenario], table: &Table) {
    let (throughput, latency) = table_rows(scenarios, table);
    println!();
    println!("Throughput, Mops/s (millions of items per second; higher is better)");
    print!("{}", plain_table(&throughput));
    println!();
    println!("Latency, ns (lower is better)");
    print!("{}", plain_table(&latency));
    println!();
    println!(
        "Targets (capacity 1024, u64 items, same run; ratio = median over rounds of the ratio within each round):"
    );
    for target in targets(table) {
        println!("  {}", target.line());
    }
    println!();
    for note in notes(context, scale) {
        println!("{note}");
    }
    println!(
        "Load average before: {}; after: {}.",
        context.load_before, context.load_after
    );
}

fn markdown(context: &Context, scale: &Scale, scenarios: &[Scenario], table: &Table) -> String {
    let (throughput, latency) = table_rows(scenarios, table);
    let mut text = String::from("# Queue comparison\n\n");
    let _ = writeln!(text, "Command: `{}`\n", command_line());
    text.push_str("| machine | |\n|---|---|\n");
    for (what, value) in &context.machine {
        let _ = writeln!(text, "| {what} | {value} |");
    }
    let _ = writeln!(text, "| pinned | {} |", context.pinning.describe());
    let _ = writeln!(
        text,
        "| load average (1, 5, 15 min) before / after | {} / {} |",
        context.load_before, context.load_after
    );
    let _ = writeln!(text, "| wall time | {:.0} s |\n", context.wall_seconds);
    text.push_str("## Throughput, Mops/s (higher is better)\n\n");
    text.push_str(&markdown_table(&throughput));
    text.push_str("\n## Latency, ns (lower is better)\n\n");
    text.push_str(&markdown_table(&latency));
    text.push_str("\n## Targets (capacity 1024, u64 items)\n\n");
    text.push_str(
        "Ratio: the median over rounds of the ratio within each round (the verdict's basis); ",
    );
    text.push_str("of medians: the ratio of the two medians in the tables above.\n\n");
    text.push_str("| target | ratio | of medians | bound | verdict |\n|---|---:|---:|---:|---|\n");
    for target in targets(table) {
        let relation = if target.at_least { "≥" } else { "≤" };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {relation} {:.1}x | {} |",
            target.what,
            format_ratio(target.ratio),
            format_ratio(target.ratio_of_medians),
            target.bound,
            target.verdict()
        );
    }
    text.push_str("\n## Notes\n\n");
    for note in notes(context, scale) {
        if note.starts_with("  - ") {
            let _ = writeln!(text, "  {}", note.trim_start());
        } else {
            let _ = writeln!(text, "- {note}");
        }
    }
    text.push_str("\nRaw figures of every run: `queues.json`. Chart: `queues.svg`.\n");
    text
}

fn json(
    context: &Context,
    scenarios: &[Scenario],
    results: &[Vec<Runs>],
    table: &Table,
) -> serde_json::Value {
    use serde_json::json;
    let scenario_values: Vec<serde_json::Value> = scenarios
        .iter()
        .zip(results)
        .map(|(scenario, per_queue)| {
            let queues: serde_json::Map<String, serde_json::Value> = scenario
                .contenders
                .iter()
                .zip(per_queue)
                .map(|(contender, runs)| {
                    let runs: Vec<serde_json::Value> = runs
                        .iter()
                        .map(|run| match run {
                            Measurement::Throughput { mops, seconds, items } => {
                                json!({ "mops": mops, "seconds": seconds, "items": items })
                            }
                            Measurement::Latency { p50_ns, p99_ns, samples, unparked } => {
                                json!({ "p50_ns": p50_ns, "p99_ns": p99_ns, "samples": samples, "not_parked": unparked })
                            }
                        })
                        .collect();
                    let median = match table.summaries[&scenario.key][contender.queue] {
                        Summary::Throughput { mops, min, max } => json!({ "mops": mops, "min_mops": min, "max_mops": max }),
                        Summary::Latency { p50_ns, p99_ns, unparked } => {
                            json!({ "p50_ns": p50_ns, "p99_ns": p99_ns, "not_parked": unparked })
                        }
                    };
                    (contender.queue.to_string(), json!({ "median": median, "runs": runs }))
                })
                .collect();
            json!({ "key": scenario.key, "title": scenario.title, "queues": queues })
        })
        .collect();
    let machine: serde_json::Map<String, serde_json::Value> = context
        .machine
        .iter()
        .map(|(what, value)| (what.to_string(), json!(value)))
        .collect();
    let targets: Vec<serde_json::Value> = targets(table)
        .iter()
        .map(|target| {
            json!({ "target": target.what, "paired_ratio_median": target.ratio, "ratio_of_medians": target.ratio_of_medians, "at_least": target.at_least, "bound": target.bound, "verdict": target.verdict() })
        })
        .collect();
    json!({
        "command": command_line(),
        "runs": context.options.runs,
        "quick": context.options.quick,
        "machine": machine,
        "pinned": context.pinning.describe(),
        "clock": context.clock.describe(),
        "load_before": context.load_before,
        "load_after": context.load_after,
        "wall_seconds": context.wall_seconds,
        "scenarios": scenario_values,
        "targets": targets,
    })
}

/// Escapes text for SVG.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" axis maximum and tick step for values up to `max`.
fn axis(max: f64) -> (f64, f64) {
    let max = max.max(1e-9);
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0] {
        let step = step * magnitude;
        if max / step <= 6.0 {
            return ((max / step).ceil() * step, step);
        }
    }
    (max, max)
}

/// One horizontal bar panel of the chart. `series` are (legend, colour, value per queue).
struct Panel<'a> {
    title: String,
    unit: &'static str,
    queues: &'a [&'static str],
    series: Vec<(&'static str, &'static str, Vec<Option<f64>>)>,
}

const SVG_WIDTH: f64 = 960.0;
const LABEL_WIDTH: f64 = 120.0;
const BAR_HEIGHT: f64 = 16.0;
const BAR_GAP: f64 = 3.0;
const GROUP_GAP: f64 = 12.0;

/// Draws `panel` with its top at `top`; returns the SVG and the panel's height.
fn svg_panel(panel: &Panel, top: f64) -> (String, f64) {
    let mut svg = String::new();
    let plot_left = LABEL_WIDTH;
    let plot_width = SVG_WIDTH - LABEL_WIDTH - 90.0;
    let max = panel
        .series
        .iter()
        .flat_map(|(_, _, values)| values.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let (axis_max, step) = axis(max);
    let x = |value: f64| plot_left + value / axis_max * plot_width;
    let _ = writeln!(
        svg,
        r#"<text x="{plot_left}" y="{}" class="title">{}</text>"#,
        top + 18.0,
        xml(&panel.title)
    );
    // Legend.
    let mut legend_x = plot_left;
    for (legend, colour, _) in &panel.series {
        let _ = writeln!(
            svg,
            r#"<rect x="{legend_x}" y="{}" width="12" height="12" fill="{colour}"/>"#,
            top + 28.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" class="legend">{}</text>"#,
            legend_x + 17.0,
            top + 38.5,
            xml(legend)
        );
        legend_x += 30.0 + 7.5 * legend.len() as f64;
    }
    let plot_top = top + 52.0;
    let group_height = panel.series.len() as f64 * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
    let plot_height = panel.queues.len() as f64 * (group_height + GROUP_GAP);
    // Grid and axis labels.
    let mut tick = 0.0;
    while tick <= axis_max + step / 2.0 {
        let tick_x = x(tick);
        let _ = writeln!(
            svg,
            r#"<line x1="{tick_x:.1}" y1="{plot_top}" x2="{tick_x:.1}" y2="{:.1}" class="grid"/>"#,
            plot_top + plot_height
        );
        let _ = writeln!(
            svg,
            r#"<text x="{tick_x:.1}" y="{:.1}" class="tick">{}</text>"#,
            plot_top + plot_height + 14.0,
            if step < 1.0 {
                format!("{tick:.1}")
            } else {
                format!("{tick:.0}")
            }
        );
        tick += step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" class="axis">{}</text>"#,
        plot_left + plot_width / 2.0,
        plot_top + plot_height + 32.0,
        panel.unit
    );
    for (row, queue) in panel.queues.iter().enumerate() {
        let group_top = plot_top + row as f64 * (group_height + GROUP_GAP) + GROUP_GAP / 2.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="queue">{}</text>"#,
            plot_left - 8.0,
            group_top + group_height / 2.0 + 4.5,
            xml(queue)
        );
        for (index, (_, colour, values)) in panel.series.iter().enumerate() {
            let bar_top = group_top + index as f64 * (BAR_HEIGHT + BAR_GAP);
            let Some(value) = values[row] else { continue };
            let width = (x(value) - plot_left).max(1.0);
            let _ = writeln!(
                svg,
                r#"<rect x="{plot_left}" y="{bar_top:.1}" width="{width:.1}" height="{BAR_HEIGHT}" fill="{colour}"/>"#
            );
            let label = if value >= 100.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.1}")
            };
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="value">{label}</text>"#,
                plot_left + width + 4.0,
                bar_top + BAR_HEIGHT - 4.0
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<line x1="{plot_left}" y1="{plot_top}" x2="{plot_left}" y2="{:.1}" class="axisline"/>"#,
        plot_top + plot_height
    );
    (svg, plot_top - top + plot_height + 48.0)
}

fn chart(context: &Context, table: &Table) -> String {
    let queues: Vec<&'static str> = vec![
        "lamport",
        "cached",
        "batched",
        "mutex",
        "rtrb",
        "crossbeam",
        "std-mpsc",
    ];
    let column = |key: &str| -> Vec<Option<f64>> {
        queues.iter().map(|queue| mops(table, key, queue)).collect()
    };
    let round_trip: Vec<Option<f64>> = queues
        .iter()
        .map(|queue| p50(table, KEY_ROUND_TRIP, queue))
        .collect();
    let panels = [
        Panel {
            title: "Throughput, u64 items, capacity 1024 (higher is better)".to_string(),
            unit: "millions of items per second (Mops/s)",
            queues: &queues,
            series: vec![
                ("single items", "#4e79a7", column(KEY_SINGLE)),
                ("batches of 32", "#f28e2b", column(KEY_BATCH)),
            ],
        },
        Panel {
            title: "Ping-pong round trip, one item in flight, p50 (lower is better)".to_string(),
            unit: "nanoseconds per round trip",
            queues: &queues,
            series: vec![("round trip p50", "#59a14f", round_trip)],
        },
    ];
    let mut body = String::new();
    let mut top = 50.0;
    for panel in &panels {
        let (svg, height) = svg_panel(panel, top);
        body.push_str(&svg);
        top += height;
    }
    let subtitle = format!(
        "median of {} runs · {} · {} cores · pinned: {} · {}",
        context.options.runs,
        context.machine.first().map_or("", |(_, cpu)| cpu.as_str()),
        context
            .machine
            .get(1)
            .map_or("", |(_, cores)| cores.as_str()),
        if context.pinning.cores.is_some() {
            "yes"
        } else {
            "no"
        },
        context.machine.get(4).map_or("", |(_, date)| date.as_str()),
    );
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{top:.0}" viewBox="0 0 {SVG_WIDTH} {top:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<style>
  .heading {{ font-size: 18px; font-weight: bold; fill: #222; }}
  .sub {{ font-size: 12px; fill: #555; }}
  .title {{ font-size: 14px; font-weight: bold; fill: #222; }}
  .legend {{ font-size: 12px; fill: #333; }}
  .queue {{ font-size: 13px; fill: #222; text-anchor: end; }}
  .value {{ font-size: 11px; fill: #222; }}
  .tick {{ font-size: 11px; fill: #555; text-anchor: middle; }}
  .axis {{ font-size: 12px; fill: #333; text-anchor: middle; }}
  .grid {{ stroke: #ddd; stroke-width: 1; }}
  .axisline {{ stroke: #333; stroke-width: 1; }}
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="16" y="24" class="heading">Piccolo queues vs rtrb, crossbeam ArrayQueue, std sync_channel</text>
<text x="16" y="42" class="sub">{}</text>
{body}</svg>
"##,
        xml(&subtitle)
    )
}

fn write_files(
    dir: &Path,
    markdown: &str,
    svg: &str,
    json: &serde_json::Value,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("queues.md"), markdown)?;
    std::fs::write(dir.join("queues.svg"), svg)?;
    let mut json_text = serde_json::to_string_pretty(json).map_err(std::io::Error::other)?;
    json_text.push('\n');
    std::fs::write(dir.join("queues.json"), json_text)
}

fn main() {
    let options = Options::parse();
    let started = Instant::now();
    let load_before = load_average();
    // Before any thread is pinned (affinity masks are inherited).
    let machine = machine_description();
    let pinning = Pinning::detect();
    let clock = Clock::new();
    let scale = Scale::new(options.quick);
    let mut scenarios = plan(&scale, clock, pinning);
    if let Some(part) = &options.scenario {
        scenarios.retain(|scenario| scenario.key.contains(part.as_str()));
        if scenarios.is_empty() {
            usage(&format!("no scenario key contains {part:?}"));
        }
    }
    eprintln!(
        "queues bench: {} scenarios, {} runs each, pinned: {}",
        scenarios.len(),
        options.runs,
        pinning.describe()
    );
    let results = run_rounds(&scenarios, options.runs);
    let mut table = Table::default();
    for (scenario, per_queue) in scenarios.iter().zip(&results) {
        for (contender, runs) in scenario.contenders.iter().zip(per_queue) {
            let key = scenario.key.clone();
            table
                .summaries
                .entry(key.clone())
                .or_default()
                .insert(contender.queue, summarise(runs));
            table
                .per_run
                .entry(key)
                .or_default()
                .insert(contender.queue, runs.iter().map(headline).collect());
        }
    }
    let context = Context {
        pinning,
        clock,
        machine,
        load_before,
        load_after: load_average(),
        wall_seconds: started.elapsed().as_secs_f64(),
        options,
    };
    print_report(&context, &scale, &scenarios, &table);
    if let Some(dir) = &context.options.out {
        let markdown = markdown(&context, &scale, &scenarios, &table);
        let svg = chart(&context, &table);
        let json = json(&context, &scenarios, &results, &table);
        if let Err(error) = write_files(dir, &markdown, &svg, &json) {
            eprintln!("queues bench: cannot write to {}: {error}", dir.display());
            std::process::exit(1);
        }
        println!(
            "Wrote {0}/queues.md, {0}/queues.svg, {0}/queues.json",
            dir.display()
        );
    }
}
