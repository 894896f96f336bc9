//! `lamport`: the classic single-producer single-consumer ring.
//!
//! Leslie Lamport, "Specifying Concurrent Program Modules" (TOPLAS 1983), showed that a ring
//! with one writer of `tail` and one writer of `head` needs no lock. This is that ring with C++11
//! style orderings: every `push` loads the consumer's `head` and every `pop` loads the producer's
//! `tail`. Each such load of a line the other core just wrote is a cache miss, so under load both
//! cores keep stealing each other's index lines. It is here as the baseline that shows what the
//! `cached` variant buys; the two differ only in those loads (both pad head and tail onto their
//! own cache lines, so false sharing is not part of the comparison).
//!
//! Memory ordering: the producer writes a slot, then stores `tail` with Release; the consumer
//! loads `tail` with Acquire before it reads the slot, so it sees the value. Symmetrically the
//! consumer moves the value out, then stores `head` with Release; the producer loads `head` with
//! Acquire before it overwrites that slot, so the read happened first.

use crate::ring::{NotSync, RingShared};
use crate::sync::{Arc, Ordering};

/// Marker type naming this variant for generic code (`V: Variant`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lamport;

/// Creates a ring holding up to `capacity` values.
///
/// # Panics
///
/// If `capacity` is 0 or too large to round up to a power of two.
pub fn channel<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let shared = Arc::new(RingShared::new(capacity));
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

/// The writing end. `Send`, not `Clone` or `Sync`: there is exactly one producer.
pub struct Producer<T> {
    shared: Arc<RingShared<T>>,
    _not_sync: NotSync,
}

/// The reading end. `Send`, not `Clone` or `Sync`: there is exactly one consumer.
pub struct Consumer<T> {
    shared: Arc<RingShared<T>>,
    _not_sync: NotSync,
}

impl<T> Producer<T> {
    /// Appends `value`, or gives it back if the ring is full.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        let shared = &*self.shared;
        // Only this thread writes `tail`, so Relaxed reads our own last store.
        let tail = shared.tail.load(Ordering::Relaxed);
        // Acquire: the consumer's read of the slot we may reuse happened before its Release store.
        let head = shared.head.load(Ordering::Acquire);
        if tail.wrapping_sub(head) == shared.capacity {
            return Err(value);
        }
        // SAFETY: `tail - head < capacity`, so slot `tail` is outside [head, tail): uninitialised
        // and, as the only producer, ours until we publish `tail + 1`.
        unsafe { shared.slots.write(tail, value) };
        // Release: publishes the slot write to the consumer's Acquire load of `tail`.
        shared.tail.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Nothing to publish: every push is published at once.
    #[inline(always)]
    fn flush_pending(&mut self) {}
}

impl<T> Consumer<T> {
    /// Removes the oldest value, or returns `None` if the ring is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let shared = &*self.shared;
        // Only this thread writes `head`.
        let head = shared.head.load(Ordering::Relaxed);
        // Acquire: pairs with the producer's Release store so the slot's value is visible.
        let tail = shared.tail.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        // SAFETY: head != tail, so slot `head` is in [head, tail): initialised, and only the
        // consumer reads it; we advance `head` right after, so it is read exactly once.
        let value = unsafe { shared.slots.read(head) };
        // Release: our read of the slot happens before the producer may overwrite it.
        shared.head.store(head.wrapping_add(1), Ordering::Release);
        Some(value)
    }
}

crate::ring::ring_common! {
    marker: Lamport,
    name: "lamport",
    producer_extra: {},
    consumer_extra: {}
}
