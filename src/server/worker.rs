//! A worker: one pinned thread that owns one [`Shard`] and touches it alone.
//!
//! The loop: drain a batch of [`Request`]s from the request ring (one `pop_batch`), read the
//! clock once for the batch, [`execute`] each request on the shard (INFO's stats and SCAN pages
//! are answered here, with the worker's counters and index), push each [`Reply`] deferred
//! into the reply ring, publish the batch with one `flush`, and wake the reactor through its
//! [`SleepFlag`] and `mio::Waker` only if it announced that it sleeps: at most one wake-up per
//! batch. When the ring is empty the worker spins briefly, then parks ([`Parker::wait_timeout`]);
//! how long it spins adapts to whether spinning has been finding work ([`SpinBudget`]);
//! every `IDLE_TICK` it wakes on its own to run a bounded step of active expiry and of the
//! cleaner. An empty shard parks without a timeout, so an idle server uses no CPU.
//!
//! Never blocks on a full reply ring: the reactor keeps at most `capacity` requests in flight
//! per worker (counted from push to reply), so the reply ring always has room.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use piccolo_queues::park::{Parker, SleepFlag, Unparker};
use piccolo_queues::{RingConsumer, RingProducer, Variant};

use super::execute::{error_reply, execute};
use super::info::WorkerStats;
use super::message::{Bytes, ErrorKind, Op, Outcome, Reply, Request, ScanArgs, pack_key};
use crate::store::{Config, Shard};

/// Most requests taken from the ring in one batch (one clock read, one flush, one wake-up).
pub const BATCH_MAX: usize = 256;
/// Default spins before parking (each one `spin_loop` hint plus a look at the ring).
pub const SPINS_BEFORE_PARK: u32 = 200;
/// The fewest spins [`SpinBudget`] shrinks to (unless `--worker-spins` is lower): enough to
/// notice that work has started arriving within a spin again.
pub const SPINS_MIN: u32 = 8;

/// How many times an idle worker spins before it parks, adapted the way adaptive mutexes adapt
/// their spinning: a wait that found work while spinning doubles the budget (up to the
/// configured `--worker-spins`), a wait that ended in a park halves it (down to
/// [`SPINS_MIN`]). Spinning pays only when the next request comes within the spin window (many
/// clients); with one pipelining client the gap between batches is a network round trip, far
/// longer than the window, and every spin was burnt CPU before a park anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpinBudget {
    current: u32,
    max: u32,
}

impl SpinBudget {
    /// A budget that starts at, and never exceeds, `max` spins.
    pub fn new(max: u32) -> SpinBudget {
        SpinBudget { current: max, max }
    }

    /// Spins for the next wait.
    pub fn spins(&self) -> u32 {
        self.current
    }

    /// Records how the last wait ended: `parked` when it had to park (the spins were wasted).
    pub fn record(&mut self, parked: bool) {
        let min = SPINS_MIN.min(self.max);
        self.current = if parked {
            (self.current / 2).max(min)
        } else {
            self.current.saturating_mul(2).clamp(min, self.max)
        };
    }
}

/// How often an idle worker with keys wakes up for expiry and cleaning.
pub const IDLE_TICK: Duration = Duration::from_millis(100);
/// Records looked at by one active-expiry step.
pub const EXPIRE_STEP_WORK: usize = 2000;
/// Pages (4 KiB) one pre-faulting step of an idle worker may touch; the ring is checked
/// between steps, so a step must stay short (docs/PERFORMANCE.md, "The longest operation:
/// pre-faulting and replay", has its cost and the bench that measures it).
pub const PREFAULT_STEP_PAGES: usize = 8;
/// Bytes of a victim segment one cleaner step may walk.
pub const CLEAN_STEP_BYTES: usize = 64 * 1024;

/// What a worker thread owns.
pub struct Worker<V: Variant> {
    /// Requests from the reactor.
    pub requests: V::Consumer<Request>,
    /// Replies to the reactor.
    pub replies: V::Producer<Reply>,
    /// The reactor's sleep announcement (it sleeps in `mio::Poll::poll`).
    pub reactor_sleep: Arc<SleepFlag>,
    /// Wakes the reactor.
    pub reactor_waker: Arc<mio::Waker>,
    /// Set by the reactor thread when the server stops.
    pub shutdown: Arc<AtomicBool>,
    /// Spins before parking when the ring is empty (`--worker-spins`).
    pub spins: u32,
    /// This worker's index (SCAN cursors name the worker).
    pub index: usize,
    /// How many workers there are.
    pub workers: usize,
}

/// The current Unix time in ms.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl<V: Variant> Worker<V> {
    /// Runs the worker loop on the calling thread until shutdown. Sends the thread's
    /// [`Unparker`] through `ready` first, so the reactor can wake it.
    pub fn run(mut self, ready: std::sync::mpsc::Sender<Unparker>) {
        let parker = Parker::new();
        // The receiver waits for this; if it is gone the server is failing to start anyway.
        let _ = ready.send(parker.unparker(std::thread::current()));
        drop(ready);
        let mut shard = Shard::new(Config::default());
        let mut last_maintenance_ms = unix_now_ms();
        let mut stats = WorkerStats::default();
        let mut budget = SpinBudget::new(self.spins);
        // `table_migrations + segments_released` when the heap was last trimmed.
        let mut trimmed_at = 0u64;
        loop {
            let now_ms = unix_now_ms();
            let replies = &mut self.replies;
            let shard_ref = &mut shard;
            let stats_ref = &mut stats;
            let (index, workers) = (self.index, self.workers);
            let count = self.requests.pop_batch(BATCH_MAX, |request| {
                let reply = match request.op {
                    Op::Stats => stats_reply(shard_ref, stats_ref, &request),
                    Op::Scan(args) => {
                        scan_reply(shard_ref, &request, args, now_ms, (index, workers))
                    }
                    _ => {
                        let read = Read::of(&request.op);
                        let reply = execute(shard_ref, request, now_ms);
                        match read.and_then(|read| read.hit(&reply)) {
                            Some(true) => stats_ref.keyspace_hits += 1,
                            Some(false) => stats_ref.keyspace_misses += 1,
                            None => {}
                        }
                        reply
                    }
                };
                push_reply(replies, reply);
            });
            if count > 0 {
                stats.requests += count as u64;
                stats.batches += 1;
                self.replies.flush();
                if self.reactor_sleep.should_wake() {
                    stats.reactor_wakeups += 1;
                    // A failed wake (the reactor is gone) leaves nothing to do here.
                    let _ = self.reactor_waker.wake();
                }
                if shard.needs_cleaning() {
                    shard.clean_step(CLEAN_STEP_BYTES);
                }
                if now_ms.saturating_sub(last_maintenance_ms) >= IDLE_TICK.as_millis() as u64 {
                    shard.expire_step(now_ms, EXPIRE_STEP_WORK);
                    last_maintenance_ms = now_ms;
                }
                continue;
            }
            if self.shutdown.load(Ordering::Acquire) {
                break;
            }
            // Nothing to serve: map the memory the next writes will fill, a few pages at a time,
            // looking at the ring between steps (docs/store.md, "Pre-faulting"). A step that did
            // nothing (the allocator refused) falls through to the wait.
            // (`is_prefaulted` first: it is O(1), `is_empty` may walk the partitions.)
            if !shard.is_prefaulted()
                && !shard.is_empty()
                && shard.prefault_step(PREFAULT_STEP_PAGES) > 0
            {
                continue;
            }
            let requests = &self.requests;
            let shutdown = &self.shutdown;
            let ready = || !requests.is_empty() || shutdown.load(Ordering::Acquire);
            stats.idle_waits += 1;
            if shard.is_empty() {
                let parks = parker.wait(budget.spins(), ready);
                budget.record(parks > 0);
                stats.parks += u64::from(parks.min(1));
                continue;
            }
            let (woken, parks) = parker.wait_timeout_counted(budget.spins(), IDLE_TICK, ready);
            budget.record(parks > 0 || !woken);
            stats.parks += u64::from(parks.min(1));
            if !woken {
                // Idle for a tick: bounded maintenance, then back to waiting.
                let now_ms = unix_now_ms();
                shard.expire_step(now_ms, EXPIRE_STEP_WORK);
                if shard.needs_cleaning() {
                    shard.clean_step(CLEAN_STEP_BYTES);
                } else {
                    // Memory was freed since the last trim (old partition tables, released
                    // segments) and the shard has settled: give the allocator's free pages
                    // back, once per such change.
                    let counters = shard.work_counters();
                    let freed = counters.table_migrations + counters.segments_released;
                    if freed != trimmed_at {
                        release_free_heap_memory();
                        trimmed_at = freed;
                    }
                }
                last_maintenance_ms = now_ms;
            }
        }
    }
}

/// Gives the allocator's free memory back to the system: `malloc_trim(0)` with glibc, which
/// returns the top of each heap and `madvise`s away whole free pages inside it (freed partition
/// tables stay there as resident holes otherwise; `benches/store.rs`'s memory run measures what
/// that costs per key, docs/PERFORMANCE.md, "The store shard", (a)). It walks the allocator's
/// free lists, so an idle worker calls it, once per change
/// (see the idle tick in `Worker::run`). Does nothing with other allocators.
pub fn release_free_heap_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` has no preconditions; glibc takes each arena's lock while it
    // trims, so it is safe beside other threads' allocations.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Pushes a reply; the reactor's in-flight bound guarantees room, so the loop below only runs
/// if that invariant is broken (it then waits for the reactor rather than losing the reply).
#[inline]
fn push_reply<P: RingProducer<Reply>>(replies: &mut P, reply: Reply) {
    let mut reply = reply;
    loop {
        match replies.push_deferred(reply) {
            Ok(()) => return,
            Err(back) => {
                debug_assert!(false, "reply ring full: the in-flight bound is broken");
                if replies.is_abandoned() {
                    return;
                }
                replies.flush();
                std::thread::yield_now();
                reply = back;
            }
        }
    }
}

/// Most keys one SCAN call looks at, whatever COUNT asks (a call blocks the worker).
pub const SCAN_COUNT_MAX: usize = 100_000;

/// Encodes a worker's shard cursor as the client's cursor: `shard_cursor * workers + worker`,
/// so the client's cursor names the worker as well. `None` if it does not fit in 64 bits.
pub fn client_cursor(shard_cursor: u64, worker: usize, workers: usize) -> Option<u64> {
    shard_cursor
        .checked_mul(workers as u64)?
        .checked_add(worker as u64)
}

/// One SCAN page on this worker's shard. `(index, workers)`: this worker's index and how many
/// there are, which the client's cursor encodes.
fn scan_reply(
    shard: &mut Shard,
    request: &Request,
    args: ScanArgs,
    now_ms: u64,
    (index, workers): (usize, usize),
) -> Reply {
    let pattern = args.has_pattern.then(|| request.value.as_slice());
    let count = (args.count as usize).clamp(1, SCAN_COUNT_MAX);
    let mut packed = Vec::new();
    let next = shard.scan(args.shard_cursor, count, pattern, now_ms, |key| {
        if args.type_matches {
            pack_key(&mut packed, key);
        }
    });
    // A finished worker hands the client on to the next worker's first page.
    let cursor = if next != 0 {
        client_cursor(next, index, workers)
    } else if index + 1 < workers {
        Some(index as u64 + 1)
    } else {
        Some(0)
    };
    let Some(cursor) = cursor else {
        return error_reply(request, ErrorKind::ScanCursorOverflow);
    };
    let mut reply = Reply::to(request, Outcome::KeyPage);
    reply.int = cursor as i64;
    reply.data = Bytes::copy_from(&packed);
    reply
}

/// The reads that count in INFO's keyspace hits and misses, by how their reply tells a hit.
#[derive(Clone, Copy)]
enum Read {
    /// GET, GETDEL, GETEX, GETV: anything but nil (errors count as neither).
    Value,
    /// EXISTS: 1.
    Exists,
    /// TTL, PTTL: anything but -2.
    Ttl,
    /// TYPE: not `none`.
    Type,
}

impl Read {
    /// The kind of read `op` is, if it counts.
    #[inline]
    fn of(op: &Op) -> Option<Read> {
        match op {
            Op::Get | Op::GetDel | Op::GetEx(_) | Op::GetV => Some(Read::Value),
            Op::Exists => Some(Read::Exists),
            Op::Ttl | Op::PTtl => Some(Read::Ttl),
            Op::Type => Some(Read::Type),
            _ => None,
        }
    }

    /// Whether the read found its key (`None`: it failed). Decided from the reply, so
    /// `execute` stays free of counters.
    #[inline]
    fn hit(self, reply: &Reply) -> Option<bool> {
        match self {
            Read::Value => match reply.outcome {
                Outcome::Nil => Some(false),
                Outcome::Error(_) => None,
                _ => Some(true),
            },
            Read::Exists => Some(reply.int != 0),
            Read::Ttl => Some(reply.int != -2),
            Read::Type => Some(reply.data.as_slice() != b"none"),
        }
    }
}

fn stats_reply(shard: &Shard, stats: &mut WorkerStats, request: &Request) -> Reply {
    let memory = shard.memory();
    stats.keys = shard.len() as u64;
    stats.memory_bytes = memory.total_bytes() as u64;
    stats.expired_keys = memory.expired_keys;
    stats.expires = shard.volatile_keys() as u64;
    stats.live_bytes = memory.live_bytes as u64;
    stats.garbage_bytes = memory.garbage_bytes as u64;
    stats.table_bytes = memory.table_bytes as u64;
    stats.pages_prefaulted = shard.work_counters().pages_prefaulted;
    let mut reply = Reply::to(request, Outcome::Bulk);
    reply.data = Bytes::copy_from(&stats.to_bytes());
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_budget_halves_on_parks_and_doubles_on_finds() {
        let mut budget = SpinBudget::new(200);
        assert_eq!(budget.spins(), 200);
        // One client pipelining: every wait parks; the budget falls to the floor and stays.
        let mut seen = Vec::new();
        for _ in 0..10 {
            budget.record(true);
            seen.push(budget.spins());
        }
        assert_eq!(seen, [100, 50, 25, 12, SPINS_MIN, 8, 8, 8, 8, 8]);
        // Work starts arriving within the window: it grows back to the configured maximum.
        for _ in 0..10 {
            budget.record(false);
        }
        assert_eq!(budget.spins(), 200);
    }

    #[test]
    fn spin_budget_respects_a_small_or_zero_maximum() {
        let mut none = SpinBudget::new(0);
        none.record(false);
        assert_eq!(none.spins(), 0);
        none.record(true);
        assert_eq!(none.spins(), 0);
        let mut few = SpinBudget::new(3);
        few.record(true);
        assert_eq!(
            few.spins(),
            3,
            "the floor is the maximum when the maximum is below it"
        );
        few.record(false);
        assert_eq!(few.spins(), 3);
    }
}
