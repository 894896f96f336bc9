//! Park and notify: let an idle consumer sleep without losing a wake-up.
//!
//! A worker whose ring is empty should not burn a core, but the producer must not pay a system
//! call for every push either. The protocol: the consumer spins briefly, then *announces* that it
//! is about to sleep, checks the ring one last time, and parks. The producer, after publishing,
//! looks at the announcement and wakes the consumer only if it said it sleeps.
//!
//! # The store-buffer race
//!
//! ```text
//!   producer                         consumer
//!   --------                         --------
//!   tail.store(t + 1)     (A)        sleeping.store(true)   (C)
//!   sleeping.load()  -> ? (B)        tail.load()      -> ? (D)
//! ```
//!
//! Each side stores one location and then loads the other. Release/Acquire does not forbid the
//! outcome "B reads false and D reads the old tail": every x86 core has a store buffer, so each
//! store may still sit in its core's buffer while the following load runs, and the C++/Rust model
//! allows the same. Then the producer skips the wake-up and the consumer parks with a value in the
//! ring: a lost wake-up, and a stall until some later push.
//!
//! Two cures are known. (1) A `SeqCst` fence between the store and the load on *both* sides
//! (Dekker's pattern; C++20 [atomics.order]: if the store is sequenced before fence X, fence Y is
//! sequenced before the load, and X precedes Y in the single total order S, the load sees the
//! store or a later one). (2) Make every access to `sleeping` a read-modify-write with
//! Acquire/Release: RMWs on one location are totally ordered, and each reads the value written by
//! the one just before it, so they form a chain of synchronises-with edges:
//!
//! * if the producer's RMW comes after the consumer's "I sleep" RMW, it reads `true` and wakes the
//!   consumer;
//! * if it comes before, the consumer's RMW reads from it (directly or through later RMWs in the
//!   chain), so the producer's store of `tail` happens-before the consumer's re-check, which then
//!   sees the value and does not sleep.
//!
//! Both can happen at once, which costs only a spurious wake-up.
//!
//! We use (2). The first version used (1), which is shorter and lets the producer read the flag
//! from a shared line; but loom (0.7) reported a lost wake-up for it with two producers sharing
//! one flag (`park_notify_two_producers` in `tests/loom.rs`; the trace: producer B's RMW reads
//! the consumer's `cancel`, the consumer announces sleep again behind a fence, and producer A's
//! load after its own later fence still reads `false`). By the C++20 rule above that execution
//! should be impossible, so we believe it is a gap in loom's model of fences, but we did not want
//! a protocol our checker cannot prove. The RMW version is what loom can prove, and it costs the
//! producer one `xchg` per *batch* (about 20 cycles on x86_64, plus a cache-line transfer only
//! when the sleeper has written the flag since), never per value.
//!
//! [`SleepFlag`] is the protocol alone, for sleepers that do not use thread parking (the server's
//! reactor sleeps in `mio::Poll::poll` and is woken through `mio::Waker`). [`Parker`] and
//! [`Unparker`] wrap it with `std::thread::park` for workers.

use crate::CachePadded;
use crate::sync::{Arc, AtomicBool, Ordering, spin_loop, thread};

/// The announcement "I am about to sleep", shared by one sleeper and any number of wakers.
#[derive(Debug, Default)]
pub struct SleepFlag {
    /// Written by the sleeper (`true` in [`prepare`](Self::prepare), `false` in
    /// [`cancel`](Self::cancel)) and by a waker that claims the wake-up (`true -> false`). Every
    /// access that takes part in the protocol is an AcqRel read-modify-write, so all of them form
    /// one chain of synchronises-with edges (see the module docs).
    sleeping: CachePadded<AtomicBool>,
}

impl SleepFlag {
    /// A flag saying "awake".
    pub fn new() -> Self {
        Self::default()
    }

    /// Sleeper, step 1: announce the intention to sleep. Afterwards the sleeper MUST check its
    /// queues once more: work it finds there may have been published before this announcement
    /// became visible, and nobody will wake it for that work. If it finds work, it calls
    /// [`cancel`](Self::cancel) instead of sleeping.
    #[inline]
    pub fn prepare(&self) {
        // AcqRel RMW: if a waker's RMW came before this one in the flag's modification order, we
        // synchronise with it, so the work it published before is visible to the re-check.
        self.sleeping.swap(true, Ordering::AcqRel);
    }

    /// Sleeper: back awake (found work after `prepare`, or woke up).
    #[inline]
    pub fn cancel(&self) {
        // An RMW, not a store: a plain store would end the chain of RMWs (a release sequence),
        // and a later `prepare` reading it would not synchronise with a waker's earlier RMW.
        self.sleeping.swap(false, Ordering::AcqRel);
    }

    /// Waker, after publishing work: returns true if the sleeper announced sleep and this caller
    /// must wake it. The flag is cleared, so of several wakers racing only one pays for the
    /// wake-up call.
    #[inline]
    pub fn should_wake(&self) -> bool {
        // AcqRel RMW after the caller's store of the queue index (sequenced before it): either we
        // read the sleeper's `true` and wake it, or the sleeper's later RMW synchronises with
        // ours and its re-check sees the index. A plain load here could read a stale `false`
        // (the store-buffer race), so even the common "awake" case pays the RMW.
        self.sleeping.swap(false, Ordering::AcqRel)
    }
}

/// The sleeping side: used by the one thread that waits (a worker).
#[derive(Debug)]
pub struct Parker {
    flag: Arc<SleepFlag>,
}

/// The waking side: cloneable, used by producers. Made by [`Parker::unparker`] with the handle of
/// the thread that waits.
#[derive(Debug, Clone)]
pub struct Unparker {
    flag: Arc<SleepFlag>,
    thread: thread::Thread,
}

impl Default for Parker {
    fn default() -> Self {
        Self::new()
    }
}

impl Parker {
    /// A parker whose thread is awake.
    pub fn new() -> Self {
        Self {
            flag: Arc::new(SleepFlag::new()),
        }
    }

    /// The waking side for the thread that will call [`wait`](Self::wait) (pass its handle, e.g.
    /// `join_handle.thread().clone()` or `std::thread::current()` from inside it).
    pub fn unparker(&self, thread: thread::Thread) -> Unparker {
        Unparker {
            flag: self.flag.clone(),
            thread,
        }
    }

    /// Blocks the calling thread until `ready()` returns true: checks, spins `spins` times
    /// (checking between spins), then announces sleep, checks once more, and parks until an
    /// [`Unparker::notify`]. Returns how many times it parked (0 if work was found while spinning),
    /// so callers can count parks.
    ///
    /// Must be called only from the thread whose handle was given to [`unparker`](Self::unparker).
    pub fn wait(&self, spins: u32, mut ready: impl FnMut() -> bool) -> u32 {
        let mut parks = 0;
        loop {
            if ready() {
                return parks;
            }
            for _ in 0..spins {
                spin_loop();
                if ready() {
                    return parks;
                }
            }
            self.flag.prepare();
            if ready() {
                self.flag.cancel();
                return parks;
            }
            // A notify between `prepare` and here leaves an unpark token, so `park` returns at
            // once; spurious returns are fine because the loop checks `ready` again.
            thread::park();
            parks += 1;
            self.flag.cancel();
        }
    }

    /// Like [`wait`](Self::wait), but gives up after `timeout` (so an idle worker can do periodic
    /// work such as active expiry). Returns whether `ready()` became true.
    #[cfg(not(loom))]
    pub fn wait_timeout(
        &self,
        spins: u32,
        timeout: std::time::Duration,
        ready: impl FnMut() -> bool,
    ) -> bool {
        self.wait_timeout_counted(spins, timeout, ready).0
    }

    /// [`wait_timeout`](Self::wait_timeout) that also returns how many times the thread
    /// actually parked (0 if work came while it spun), so a caller can tell parks, which cost a
    /// futex wake-up from the other side, from waits that ended while spinning.
    #[cfg(not(loom))]
    pub fn wait_timeout_counted(
        &self,
        spins: u32,
        timeout: std::time::Duration,
        mut ready: impl FnMut() -> bool,
    ) -> (bool, u32) {
        let deadline = std::time::Instant::now() + timeout;
        let mut parks = 0;
        loop {
            if ready() {
                return (true, parks);
            }
            for _ in 0..spins {
                spin_loop();
                if ready() {
                    return (true, parks);
                }
            }
            self.flag.prepare();
            if ready() {
                self.flag.cancel();
                return (true, parks);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                self.flag.cancel();
                return (false, parks);
            }
            thread::park_timeout(deadline - now);
            parks += 1;
            self.flag.cancel();
        }
    }
}

impl Unparker {
    /// Call after publishing work. Wakes the waiting thread if it announced sleep; returns whether
    /// this call woke it.
    #[inline]
    pub fn notify(&self) -> bool {
        if self.flag.should_wake() {
            self.thread.unpark();
            true
        } else {
            false
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wait_timeout_counted_tells_parks_from_spins() {
        let parker = Parker::new();
        // Work already there: no park.
        assert_eq!(
            parker.wait_timeout_counted(10, Duration::from_millis(1), || true),
            (true, 0)
        );
        // Work found while spinning (the third look): no park either.
        let mut looks = 0;
        let found = parker.wait_timeout_counted(10, Duration::from_secs(5), || {
            looks += 1;
            looks >= 3
        });
        assert_eq!(found, (true, 0));
        // No work: it parks (at least once) and times out. (Only a thread descheduled for the
        // whole timeout between its spins and its deadline check could time out unparked.)
        let (found, parks) = parker.wait_timeout_counted(10, Duration::from_millis(200), || false);
        assert!(!found);
        assert!(parks >= 1);
        // Woken by a notify from another thread once work is published.
        let work = Arc::new(AtomicBool::new(false));
        let unparker = parker.unparker(thread::current());
        let publisher = {
            let work = work.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                work.store(true, Ordering::Release);
                unparker.notify();
            })
        };
        let (found, _) = parker
            .wait_timeout_counted(10, Duration::from_secs(20), || work.load(Ordering::Acquire));
        // Whether it parked first depends on scheduling; that it is woken does not.
        assert!(found);
        publisher.join().unwrap();
        // The plain form answers the same question without the count.
        assert!(parker.wait_timeout(10, Duration::from_millis(1), || true));
        assert!(!parker.wait_timeout(0, Duration::from_millis(1), || false));
    }
}
