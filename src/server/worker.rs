//! A worker: one pinned thread that owns one [`Shard`] and touches it alone.
//!
//! The loop: drain a batch of [`Request`]s from the request ring (one `pop_batch`), read the
//! clock once for the batch, execute each request on the shard, push each [`Reply`] deferred
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

use super::message::{
    Bytes, Op, Reply, ReplyKind, Request, WorkerStats, expire_flags, getex_flags, pack_key,
    scan_flags, set_flags,
};
use crate::store::{Condition, Config, Expiry, SetOptions, Shard, StoreError};

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
/// Pages (4 KiB) one pre-faulting step of an idle worker may touch: about 20 us of page
/// faults on the development VM, a few on bare metal; the ring is checked between steps.
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
                    Op::Scan => scan_reply(shard_ref, &request, now_ms, index, workers),
                    op => {
                        let reply = execute(shard_ref, request, now_ms);
                        match lookup_hit(op, &reply) {
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
            // looking at the ring between steps (DESIGN.md, "Pre-faulting"). A step that did
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
/// tables stay there as holes otherwise: 5.6 B/key of RSS at 1M keys, PERFORMANCE.md, store,
/// (a)). It walks the allocator's free lists, so an idle worker calls it, once per change
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

fn scan_reply(
    shard: &mut Shard,
    request: &Request,
    now_ms: u64,
    index: usize,
    workers: usize,
) -> Reply {
    let pattern = (request.flags & scan_flags::MATCH != 0).then(|| request.value.as_slice());
    let emit_none = request.flags & scan_flags::NO_TYPE_MATCH != 0;
    let count = (request.hash as usize).clamp(1, SCAN_COUNT_MAX);
    let mut packed = Vec::new();
    let next = shard.scan(request.number as u64, count, pattern, now_ms, |key| {
        if !emit_none {
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
        return error_reply(request, "ERR scan cursor overflow");
    };
    let mut reply = Reply::to(request, ReplyKind::KeyPage);
    reply.int = cursor as i64;
    reply.data = Bytes::copy_from(&packed);
    reply
}

fn keys_reply(shard: &mut Shard, request: &Request, now_ms: u64) -> Reply {
    let pattern = request.value.as_slice();
    let mut packed = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = shard.scan(cursor, 1024, Some(pattern), now_ms, |key| {
            pack_key(&mut packed, key);
        });
        if cursor == 0 {
            break;
        }
    }
    let mut reply = Reply::to(request, ReplyKind::KeyList);
    reply.data = Bytes::copy_from(&packed);
    reply
}

/// Whether a read found its key, for INFO's keyspace hits and misses (`None`: not a read that
/// counts). Decided from the reply, so `execute` stays free of counters; errors count as
/// neither.
#[inline]
fn lookup_hit(op: Op, reply: &Reply) -> Option<bool> {
    match op {
        Op::Get | Op::GetDel | Op::GetEx | Op::GetV => match reply.kind {
            ReplyKind::Nil => Some(false),
            ReplyKind::Error => None,
            _ => Some(true),
        },
        Op::Exists => Some(reply.int != 0),
        Op::Ttl | Op::PTtl => Some(reply.int != -2),
        Op::Type => Some(reply.data.as_slice() != b"none"),
        _ => None,
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
    let mut reply = Reply::to(request, ReplyKind::Bulk);
    reply.data = Bytes::copy_from(&stats.to_bytes());
    reply
}

fn error_reply(request: &Request, message: &str) -> Reply {
    let mut reply = Reply::to(request, ReplyKind::Error);
    reply.data = Bytes::copy_from(message.as_bytes());
    reply
}

fn store_error(request: &Request, error: StoreError) -> Reply {
    error_reply(request, &error.to_string())
}

fn integer(request: &Request, value: i64) -> Reply {
    let mut reply = Reply::to(request, ReplyKind::Integer);
    reply.int = value;
    reply
}

fn bulk_or_nil(request: &Request, value: Option<&[u8]>) -> Reply {
    match value {
        Some(bytes) => {
            let mut reply = Reply::to(request, ReplyKind::Bulk);
            reply.data = Bytes::copy_from(bytes);
            reply
        }
        None => Reply::to(request, ReplyKind::Nil),
    }
}

/// `now_ms + delta_ms` as a deadline, or `None` when it leaves the `i64` range (Redis's
/// "invalid expire time"). A result at or before now is clamped to 0, which deletes.
fn deadline_from(now_ms: u64, delta_ms: i64) -> Option<u64> {
    let deadline = (now_ms as i64).checked_add(delta_ms)?;
    Some(deadline.max(0) as u64)
}

/// Executes one request on the shard. Pure apart from the shard: the time is passed in.
pub fn execute(shard: &mut Shard, request: Request, now_ms: u64) -> Reply {
    let hash = request.hash;
    let key = request.key.as_slice();
    match request.op {
        Op::Get => {
            let value = shard.get(hash, key, now_ms);
            bulk_or_nil(&request, value.map(|value| value.bytes))
        }
        Op::GetDel => {
            let value = shard.get_delete(hash, key, now_ms);
            bulk_or_nil(&request, value.map(|value| value.bytes))
        }
        Op::Set | Op::SetVersion => execute_set(shard, &request, now_ms),
        Op::Exists => integer(&request, i64::from(shard.exists(hash, key, now_ms))),
        Op::Del => integer(&request, i64::from(shard.delete(hash, key, now_ms))),
        Op::StrLen => integer(&request, shard.strlen(hash, key, now_ms) as i64),
        Op::PTtl => integer(&request, shard.ttl_ms(hash, key, now_ms)),
        Op::Ttl => {
            let ttl_ms = shard.ttl_ms(hash, key, now_ms);
            // Redis rounds to the nearest second: (ttl + 500) / 1000.
            let ttl = if ttl_ms < 0 {
                ttl_ms
            } else {
                ttl_ms.saturating_add(500) / 1000
            };
            integer(&request, ttl)
        }
        Op::Type => {
            let mut reply = Reply::to(&request, ReplyKind::Simple);
            let name: &[u8] = if shard.exists(hash, key, now_ms) {
                b"string"
            } else {
                b"none"
            };
            reply.data = Bytes::copy_from(name);
            reply
        }
        Op::IncrBy => match shard.incr_by(hash, key, request.number, now_ms) {
            Ok(counter) => integer(&request, counter.value),
            Err(error) => store_error(&request, error),
        },
        Op::DecrBy => match shard.decr_by(hash, key, request.number, now_ms) {
            Ok(counter) => integer(&request, counter.value),
            Err(error) => store_error(&request, error),
        },
        Op::Append => match shard.append(hash, key, request.value.as_slice(), now_ms) {
            Ok(appended) => integer(&request, appended.len as i64),
            Err(error) => store_error(&request, error),
        },
        Op::Expire => {
            let deadline_ms = if request.flags & expire_flags::ABSOLUTE != 0 {
                Some(request.number.max(0) as u64)
            } else {
                deadline_from(now_ms, request.number)
            };
            let Some(deadline_ms) = deadline_ms else {
                let name = if request.flags & expire_flags::MILLISECONDS != 0 {
                    "pexpire"
                } else {
                    "expire"
                };
                return error_reply(
                    &request,
                    &format!("ERR invalid expire time in '{name}' command"),
                );
            };
            if request.flags & expire_flags::CONDITIONS != 0
                && !expire_condition_holds(shard, &request, deadline_ms, now_ms)
            {
                return integer(&request, 0);
            }
            match shard.expire_at(hash, key, deadline_ms, now_ms) {
                Ok(found) => integer(&request, i64::from(found.is_some())),
                Err(error) => store_error(&request, error),
            }
        }
        Op::GetEx => execute_getex(shard, &request, now_ms),
        Op::Persist => integer(
            &request,
            i64::from(shard.persist(hash, key, now_ms).is_some()),
        ),
        Op::DbSize => integer(&request, shard.len() as i64),
        Op::Flush => {
            shard.flush();
            Reply::to(&request, ReplyKind::Ok)
        }
        Op::Keys => keys_reply(shard, &request, now_ms),
        Op::GetV => match shard.get(hash, key, now_ms) {
            Some(value) => {
                let mut reply = Reply::to(&request, ReplyKind::ValueVersion);
                reply.data = Bytes::copy_from(value.bytes);
                reply.int = value.version as i64;
                reply
            }
            None => Reply::to(&request, ReplyKind::Nil),
        },
        Op::Cas => execute_cas(shard, &request, now_ms),
        // Answered in the worker loop, which owns the counters and knows the worker's index.
        Op::Stats | Op::Scan => error_reply(
            &request,
            "ERR internal error: stats outside the worker loop",
        ),
    }
}

/// CAS (RESP) and Cap'n Proto's `cas` / `set` with `ifVersion`: write if the key's version is
/// `number`. `flags` may carry [`set_flags`]' expiry kind and `RETURN_OLD` (Cap'n Proto only;
/// RESP's CAS sends 0: clear the expiry, answer the version); the expiry's ms then travel in
/// `extra` as an `i64` LE. Write and expiry are one `Shard::set`, so the answered version is
/// the key's final one.
///
/// Answers: the new version (integer); the old value or nil with `RETURN_OLD`; nil when not
/// written, with `int` 1 if the key exists (a stale version) and 0 if it does not, which
/// Cap'n Proto's `cas` answers as `conditionFailed` / `notFound` (RESP's nil ignores `int`).
fn execute_cas(shard: &mut Shard, request: &Request, now_ms: u64) -> Reply {
    let (hash, key) = (request.hash, request.key.as_slice());
    let expiry_number = request
        .extra
        .as_deref()
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map_or(0, i64::from_le_bytes);
    let Some(expiry) = requested_expiry(request.flags, expiry_number, now_ms) else {
        return error_reply(request, "ERR invalid expire time in 'set' command");
    };
    let return_old = request.flags & set_flags::RETURN_OLD != 0;
    let options = SetOptions {
        condition: Condition::IfVersion(request.number as u64),
        expiry,
        return_old,
    };
    match shard.set(hash, key, request.value.as_slice(), options, now_ms) {
        Err(error) => store_error(request, error),
        Ok(outcome) if return_old => bulk_or_nil(request, outcome.old.as_deref()),
        Ok(outcome) if outcome.stored => integer(request, outcome.version as i64),
        Ok(_) => {
            let mut reply = Reply::to(request, ReplyKind::Nil);
            reply.int = i64::from(shard.exists(hash, key, now_ms));
            reply
        }
    }
}

/// EXPIRE's NX / XX / GT / LT against the key's current deadline, as Redis 7 decides them: a
/// key without a deadline counts as an infinite TTL (GT fails, LT holds). `deadline_ms` is the
/// new deadline (0 for one in the past). An absent key fails (the caller's reply is 0 anyway).
/// The read and the following `expire_at` run in the same worker step, so nothing can come
/// between them.
fn expire_condition_holds(
    shard: &mut Shard,
    request: &Request,
    deadline_ms: u64,
    now_ms: u64,
) -> bool {
    let ttl_ms = shard.ttl_ms(request.hash, request.key.as_slice(), now_ms);
    if ttl_ms == -2 {
        return false;
    }
    // None: no deadline (infinite).
    let current = (ttl_ms >= 0).then(|| now_ms.saturating_add(ttl_ms as u64));
    let flags = request.flags;
    if flags & expire_flags::NX != 0 && current.is_some() {
        return false;
    }
    if flags & expire_flags::XX != 0 && current.is_none() {
        return false;
    }
    if flags & expire_flags::GT != 0 && current.is_none_or(|current| deadline_ms <= current) {
        return false;
    }
    if flags & expire_flags::LT != 0 && current.is_some_and(|current| deadline_ms >= current) {
        return false;
    }
    true
}

fn execute_getex(shard: &mut Shard, request: &Request, now_ms: u64) -> Reply {
    let (hash, key) = (request.hash, request.key.as_slice());
    let deadline_ms = match request.flags {
        getex_flags::IN_MS => match deadline_from(now_ms, request.number) {
            Some(deadline_ms) => Some(deadline_ms),
            None => return error_reply(request, "ERR invalid expire time in 'getex' command"),
        },
        getex_flags::AT_MS => Some(request.number.max(0) as u64),
        _ => None,
    };
    let reply = bulk_or_nil(
        request,
        shard.get(hash, key, now_ms).map(|value| value.bytes),
    );
    if reply.kind == ReplyKind::Nil {
        return reply;
    }
    if request.flags == getex_flags::PERSIST {
        shard.persist(hash, key, now_ms);
    } else if let Some(deadline_ms) = deadline_ms {
        if let Err(error) = shard.expire_at(hash, key, deadline_ms, now_ms) {
            return store_error(request, error);
        }
    }
    reply
}

/// The expiry a SET-like request asks for: `flags`' [`set_flags`] expiry kind, with `number_ms`
/// its relative ms or absolute Unix ms. `None` when a relative expiry is out of range (the
/// caller words the error for its command).
fn requested_expiry(flags: u8, number_ms: i64, now_ms: u64) -> Option<Expiry> {
    Some(match flags & set_flags::EXPIRY_MASK {
        set_flags::EXPIRY_KEEP => Expiry::Keep,
        set_flags::EXPIRY_IN_MS => Expiry::At(deadline_from(now_ms, number_ms)?),
        set_flags::EXPIRY_AT_MS => Expiry::At(number_ms.max(0) as u64),
        _ => Expiry::Clear,
    })
}

fn execute_set(shard: &mut Shard, request: &Request, now_ms: u64) -> Reply {
    let flags = request.flags;
    let condition = match flags & set_flags::CONDITION_MASK {
        set_flags::IF_ABSENT => Condition::IfAbsent,
        set_flags::IF_PRESENT => Condition::IfPresent,
        set_flags::IF_EQUAL => Condition::IfValueEquals(request.extra.as_deref().unwrap_or(&[])),
        _ => Condition::Always,
    };
    let Some(expiry) = requested_expiry(flags, request.number, now_ms) else {
        let name = match flags & set_flags::NAME_MASK {
            set_flags::NAME_SETEX => "setex",
            set_flags::NAME_PSETEX => "psetex",
            _ => "set",
        };
        return error_reply(
            request,
            &format!("ERR invalid expire time in '{name}' command"),
        );
    };
    let return_old = flags & set_flags::RETURN_OLD != 0;
    let options = SetOptions {
        condition,
        expiry,
        return_old,
    };
    match shard.set(
        request.hash,
        request.key.as_slice(),
        request.value.as_slice(),
        options,
        now_ms,
    ) {
        Err(error) => store_error(request, error),
        Ok(outcome) => {
            if flags & set_flags::REPLY_INTEGER != 0 {
                integer(request, i64::from(outcome.stored))
            } else if return_old {
                bulk_or_nil(request, outcome.old.as_deref())
            } else if outcome.stored && request.op == Op::SetVersion {
                integer(request, outcome.version as i64)
            } else if outcome.stored {
                Reply::to(request, ReplyKind::Ok)
            } else {
                Reply::to(request, ReplyKind::Nil)
            }
        }
    }
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
