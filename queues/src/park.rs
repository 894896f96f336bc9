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
//! The cure is a `SeqCst` fence between the store and the load on *both* sides (Dekker's pattern;
//! C++20 [atomics.fences]: for two SeqCst fences, one is ordered before the other, and the load
//! after the later fence must see the store before the earlier one). Either the producer's fence
//! comes first, and then D sees the new tail (the consumer does not sleep), or the consumer's
//! fence comes first, and then B sees `sleeping == true` (the producer wakes it). Both can happen
//! at once, which costs only a spurious wake-up. On x86_64 a SeqCst fence is one `mfence` (or a
//! locked instruction), paid once per batch by the producer, not per value.
//!
//! The alternative, one read-modify-write on a shared word by both sides, would make every
//! producer check take the line exclusively; the fence lets the producer read `sleeping` from a
//! shared line, which stays in its cache while the consumer is awake.
//!
//! [`SleepFlag`] is the protocol alone, for sleepers that do not use thread parking (the server's
//! reactor sleeps in `mio::Poll::poll` and is woken through `mio::Waker`). [`Parker`] and
//! [`Unparker`] wrap it with `std::thread::park` for workers.

use crate::CachePadded;
use crate::sync::{Arc, AtomicBool, Ordering, fence, spin_loop, thread};

/// The announcement "I am about to sleep", shared by one sleeper and any number of wakers.
#[derive(Debug, Default)]
pub struct SleepFlag {
    /// Written by the sleeper (`true` in [`prepare`](Self::prepare), `false` in
    /// [`cancel`](Self::cancel)) and by a waker that claims the wake-up (`true -> false`). All
    /// accesses are Relaxed; the SeqCst fences around them carry the ordering.
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
        self.sleeping.store(true, Ordering::Relaxed);
        // SeqCst fence between our store of `sleeping` and the caller's following loads of the
        // queue indices: the consumer half of the Dekker pattern in the module docs.
        fence(Ordering::SeqCst);
    }

    /// Sleeper: back awake (found work after `prepare`, or woke up).
    #[inline]
    pub fn cancel(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Waker, after publishing work: returns true if the sleeper announced sleep and this caller
    /// must wake it. The flag is cleared, so of several wakers racing only one pays for the
    /// wake-up call.
    #[inline]
    pub fn should_wake(&self) -> bool {
        // SeqCst fence between the caller's store of the queue index and our load of `sleeping`:
        // the producer half of the Dekker pattern in the module docs.
        fence(Ordering::SeqCst);
        // Cheap read first: while the sleeper is awake the line stays shared and no RMW is paid.
        self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::Relaxed)
    }

    /// True if the sleeper has announced sleep and nobody has claimed the wake-up yet.
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
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
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if ready() {
                return true;
            }
            for _ in 0..spins {
                spin_loop();
                if ready() {
                    return true;
                }
            }
            self.flag.prepare();
            if ready() {
                self.flag.cancel();
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                self.flag.cancel();
                return false;
            }
            thread::park_timeout(deadline - now);
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
