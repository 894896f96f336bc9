//! `cached`: each end keeps a private copy of the other end's index.
//!
//! The trick (Erik Rigtorp's `SPSCQueue`, and the `rtrb` crate; first described for SPSC rings as
//! "cached indices" in FastForward/MCRingBuffer-era work): the producer remembers the last `head`
//! it read and only reloads the shared `head` when the ring *looks* full by that stale copy; the
//! consumer does the same with `tail` when the ring looks empty. A stale copy is always safe,
//! because the other end's index only moves forward: a stale `head` under-estimates free space,
//! a stale `tail` under-estimates available values. While the ring is neither nearly full nor
//! nearly empty, a push touches only the producer's own line and the slot, and the consumer's
//! line stays in the consumer's cache.
//!
//! Each end also keeps its *own* index in a plain field, so it never loads its own atomic.
//!
//! Memory ordering is Lamport's (see `lamport`): Release on each store of an index, Acquire on
//! each load of the other end's index. Fewer loads change nothing in that argument.

use crate::ring::{NotSync, RingShared};
use crate::sync::{Arc, Ordering};

/// Marker type naming this variant for generic code (`V: Variant`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cached;

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
            tail: 0,
            head_cache: 0,
            _not_sync: NotSync::default(),
        },
        Consumer {
            shared,
            head: 0,
            tail_cache: 0,
            _not_sync: NotSync::default(),
        },
    )
}

/// The writing end. `Send`, not `Clone` or `Sync`: there is exactly one producer.
pub struct Producer<T> {
    shared: Arc<RingShared<T>>,
    /// Our own index; equal to `shared.tail` after every push.
    tail: usize,
    /// The consumer's `head` as last loaded; never ahead of the real one.
    head_cache: usize,
    _not_sync: NotSync,
}

/// The reading end. `Send`, not `Clone` or `Sync`: there is exactly one consumer.
pub struct Consumer<T> {
    shared: Arc<RingShared<T>>,
    /// Our own index; equal to `shared.head` after every pop.
    head: usize,
    /// The producer's `tail` as last loaded; never ahead of the real one.
    tail_cache: usize,
    _not_sync: NotSync,
}

impl<T> Producer<T> {
    /// Appends `value`, or gives it back if the ring is full.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        let shared = &*self.shared;
        let tail = self.tail;
        if tail.wrapping_sub(self.head_cache) == shared.capacity {
            // Looks full by the stale copy: refresh it. Acquire pairs with the consumer's Release
            // store of `head`, so its read of the slot we are about to reuse happened first.
            self.head_cache = shared.head.load(Ordering::Acquire);
            if tail.wrapping_sub(self.head_cache) == shared.capacity {
                return Err(value);
            }
        }
        // SAFETY: `tail - head_cache < capacity` and head_cache <= head, so slot `tail` is outside
        // [head, tail): uninitialised, and ours as the only producer until we publish.
        unsafe { shared.slots.write(tail, value) };
        self.tail = tail.wrapping_add(1);
        // Release: publishes the slot write to the consumer's Acquire load of `tail`.
        shared.tail.store(self.tail, Ordering::Release);
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
        let head = self.head;
        if head == self.tail_cache {
            // Looks empty by the stale copy: refresh. Acquire pairs with the producer's Release
            // store of `tail`, so the slot's value is visible.
            self.tail_cache = shared.tail.load(Ordering::Acquire);
            if head == self.tail_cache {
                return None;
            }
        }
        // SAFETY: head < tail_cache <= tail, so slot `head` is initialised; only the consumer reads
        // it, and we advance `head` right after, so it is read exactly once.
        let value = unsafe { shared.slots.read(head) };
        self.head = head.wrapping_add(1);
        // Release: our read of the slot happens before the producer may overwrite it.
        shared.head.store(self.head, Ordering::Release);
        Some(value)
    }
}

crate::ring::ring_common! {
    marker: Cached,
    name: "cached",
    producer_extra: {},
    consumer_extra: {}
}
