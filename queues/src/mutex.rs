//! `mutex`: a `Mutex<VecDeque<T>>` behind the same API; the reference point for "why lock-free".
//!
//! Every push and pop takes the lock: an atomic read-modify-write to acquire it and a store (or
//! another RMW) to release it, on a line both cores write. Uncontended that is two atomic RMWs per
//! operation instead of the lock-free rings' one plain store; contended, a thread may sleep in the
//! kernel (std's futex-based mutex). The benchmark shows what that costs.

use std::collections::VecDeque;

use crate::ring::NotSync;
use crate::sync::{Arc, AtomicBool, Mutex, Ordering};

/// Marker type naming this variant for generic code (`V: Variant`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Locked;

struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    capacity: usize,
    producer_alive: AtomicBool,
    consumer_alive: AtomicBool,
}

/// Creates a queue holding up to `capacity` values.
///
/// # Panics
///
/// If `capacity` is 0.
pub fn channel<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(capacity > 0, "a ring needs a capacity of at least 1");
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::with_capacity(capacity)),
        capacity,
        producer_alive: AtomicBool::new(true),
        consumer_alive: AtomicBool::new(true),
    });
    (
        Producer {
            shared: shared.clone(),
            _not_sync: NotSync::default(),
        },
        Consumer {
            shared,
            _not_sync: NotSync::default(),
        },
    )
}

/// The writing end. `Send`, not `Clone` or `Sync`.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    _not_sync: NotSync,
}

/// The reading end. `Send`, not `Clone` or `Sync`.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    _not_sync: NotSync,
}

impl<T> Shared<T> {
    /// Values in the queue now.
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> impl core::ops::DerefMut<Target = VecDeque<T>> + '_ {
        // A panic while holding the lock cannot leave the VecDeque half-updated in a way that
        // matters to us (push_back/pop_front are atomic with respect to unwinding), so a
        // poisoned lock is still usable.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<T> Producer<T> {
    /// Appends `value`, or gives it back if the queue is full.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        let mut queue = self.shared.lock();
        if queue.len() == self.shared.capacity {
            return Err(value);
        }
        queue.push_back(value);
        Ok(())
    }

    /// Nothing to publish: every push is published at once.
    #[inline(always)]
    fn flush_pending(&mut self) {}
}

impl<T> Consumer<T> {
    /// Removes the oldest value, or returns `None` if the queue is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.shared.lock().pop_front()
    }
}

crate::ring::ring_common! {
    marker: Locked,
    name: "mutex",
    producer_extra: {},
    consumer_extra: {
        /// One lock for the whole batch.
        fn pop_batch(&mut self, max: usize, mut sink: impl FnMut(T)) -> usize {
            let mut queue = self.shared.lock();
            let count = queue.len().min(max);
            queue.drain(..count).for_each(&mut sink);
            count
        }
    }
}
