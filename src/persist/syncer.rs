//! The syncer: one thread per worker that runs `fdatasync` off the worker's thread.
//!
//! `fdatasync` of a small batch costs about 3.5 ms on the development VM's disk (and from
//! 20 us on a good NVMe drive to 10 ms and more on networked disks; see docs/durability.md for
//! the figures). A worker that waited for it would stop serving reads, stop ticking (Raft will
//! tick on this thread) and apply one batch per sync. So the worker only *asks*: it writes a
//! batch to the page cache (microseconds), then [`Syncer::request`]s a sync up to that offset
//! and goes on with the next batch. The syncer thread syncs; requests that arrive while it
//! syncs merge into one (the next sync covers them all: group commit across batches). When a
//! sync ends, it publishes the durable seq and calls the worker's `notify` (phase B: unpark
//! the worker, which then releases the replies it held).
//!
//! ```text
//!  worker:  write(batch 1) request(1) write(2) request(2) write(3) request(3) ... poll durable
//!  syncer:       [ fdatasync -> durable 1 ][ fdatasync -> durable 3 ] ...
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use super::fs::{File, SyncHandle};

/// Called by the syncer thread after each sync (phase B: wake the worker).
pub type Notify = Box<dyn Fn() + Send + Sync>;

/// Sync latency and counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Syncs run (successful or not).
    pub syncs: u64,
    /// Their total time, ns.
    pub total_ns: u64,
    /// The longest, ns.
    pub max_ns: u64,
    /// The last one, ns.
    pub last_ns: u64,
}

impl SyncStats {
    /// Counts one sync that took `ns`.
    pub fn record(&mut self, ns: u64) {
        self.syncs += 1;
        self.total_ns += ns;
        self.max_ns = self.max_ns.max(ns);
        self.last_ns = ns;
    }
}

struct State<F: File> {
    /// The file syncs go to (replaced when the log rotates).
    handle: Option<Arc<SyncHandle<F>>>,
    /// The pending request: sync up to this offset, which makes this seq durable.
    job: Option<(u64, u64)>,
    /// A sync is running.
    busy: bool,
    stop: bool,
    error: Option<String>,
    stats: SyncStats,
}

struct Shared<F: File> {
    state: Mutex<State<F>>,
    /// Signalled on a new request (to the thread) and on a finished sync (to waiters).
    changed: Condvar,
    /// The last seq made durable. Written only by the syncer thread (`fetch_max`, Release:
    /// whoever reads a seq with Acquire also sees the sync's stats and error state published
    /// before it); read by the worker.
    durable_seq: AtomicU64,
    /// A sync failed; set once by the syncer thread, never cleared. Release/Acquire as above.
    failed: AtomicBool,
    notify: Option<Notify>,
}

impl<F: File> Shared<F> {
    fn lock(&self) -> MutexGuard<'_, State<F>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A worker's syncer thread.
pub struct Syncer<F: File> {
    shared: Arc<Shared<F>>,
    thread: Option<JoinHandle<()>>,
}

impl<F: File> std::fmt::Debug for Syncer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("durable_seq", &self.durable_seq())
            .finish_non_exhaustive()
    }
}

impl<F: File> Syncer<F> {
    /// Starts the thread (named `name`); `notify` runs after every sync.
    pub fn spawn(name: String, notify: Option<Notify>) -> std::io::Result<Syncer<F>> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                handle: None,
                job: None,
                busy: false,
                stop: false,
                error: None,
                stats: SyncStats::default(),
            }),
            changed: Condvar::new(),
            durable_seq: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            notify,
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&for_thread))?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for a sync making `seq` durable by syncing up to `offset`. `handle`: the file, when
    /// it changed since the last request (the caller has synced the previous file itself).
    pub fn request(&self, handle: Option<SyncHandle<F>>, offset: u64, seq: u64) {
        let mut state = self.shared.lock();
        if let Some(handle) = handle {
            state.handle = Some(Arc::new(handle));
            state.job = None;
        }
        state.job = Some(match state.job {
            Some((old_offset, old_seq)) => (old_offset.max(offset), old_seq.max(seq)),
            None => (offset, seq),
        });
        drop(state);
        self.shared.changed.notify_all();
    }

    /// The last seq made durable by this thread.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// The failure of a sync, if one failed.
    pub fn failure(&self) -> Option<String> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return None;
        }
        self.shared.lock().error.clone()
    }

    /// Whether a sync is pending or running.
    pub fn is_busy(&self) -> bool {
        let state = self.shared.lock();
        state.busy || state.job.is_some()
    }

    /// Waits until no sync is pending or running (shutdown, rotation).
    pub fn wait_idle(&self) {
        let mut state = self.shared.lock();
        while state.busy || state.job.is_some() {
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Sync latency and counts so far.
    pub fn stats(&self) -> SyncStats {
        self.shared.lock().stats
    }
}

impl<F: File> Drop for Syncer<F> {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panicked syncer has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

fn run<F: File>(shared: &Shared<F>) {
    loop {
        let mut state = shared.lock();
        while state.job.is_none() && !state.stop {
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        let Some((offset, seq)) = state.job.take() else {
            return; // stopping, nothing pending
        };
        let Some(handle) = state.handle.clone() else {
            continue;
        };
        state.busy = true;
        drop(state);
        let started = Instant::now();
        let result = handle.sync(offset);
        let ns = started.elapsed().as_nanos() as u64;
        let mut state = shared.lock();
        state.busy = false;
        state.stats.record(ns);
        match result {
            Ok(_) => {
                shared.durable_seq.fetch_max(seq, Ordering::Release);
            }
            Err(error) => {
                if state.error.is_none() {
                    state.error = Some(error.to_string());
                }
                shared.failed.store(true, Ordering::Release);
            }
        }
        drop(state);
        shared.changed.notify_all();
        if let Some(notify) = &shared.notify {
            notify();
        }
    }
}
