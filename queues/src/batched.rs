//! `batched`: the `cached` ring plus chunk operations that publish many values with one store.
//!
//! Even with cached indices, each `push` stores `tail` and each `pop` stores `head`. When the other
//! core is reading that line at the same time, every store can cost a cache-line transfer. The
//! batched variant lets each end do its work for a whole run of values and then publish once:
//!
//! * producer: [`Producer::write_chunk`] reserves `n` slots (or [`Producer::write_batch`] takes as
//!   many as fit), values are moved in one by one, and dropping or committing the chunk publishes
//!   the new `tail` once. [`Producer::push_deferred`] + [`Producer::flush`] do the same without a
//!   guard object, which is what the server's reactor uses to publish a whole poll iteration.
//! * consumer: [`Consumer::read_chunk`] loads `tail` once, hands out up to `max` values, and stores
//!   `head` once when the chunk is dropped.
//!
//! This is the idea behind MCRingBuffer (Lee, Bu, Chandranmenon, "A lock-free, cache-efficient
//! multi-core synchronization mechanism for line-rate network traffic monitoring", IPDPS 2010),
//! which publishes its indices every *batch size* operations, and behind B-Queue's and
//! FastForward's batched look-ahead. Unlike MCRingBuffer's fixed batch, the batch here is what the
//! caller has at hand, so a lone value is never held back waiting for company: the caller decides
//! when to publish.
//!
//! Memory ordering is unchanged from `lamport`: the one Release store of `tail` after writing a
//! run of slots publishes all of them (every slot write is sequenced before that store), and the
//! one Release store of `head` after reading a run hands all those slots back.

use crate::ring::{NotSync, RingShared};
use crate::sync::{Arc, Ordering};

/// Marker type naming this variant for generic code (`V: Variant`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Batched;

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
            published_tail: 0,
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

/// Why [`Producer::write_chunk`] could not reserve the slots asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkError {
    /// Fewer free slots than requested; `available` were free when checked.
    TooFewSlots {
        /// Free slots at the time of the check.
        available: usize,
    },
}

impl core::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ChunkError::TooFewSlots { available } => {
                write!(f, "only {available} free slots in the ring")
            }
        }
    }
}

impl std::error::Error for ChunkError {}

/// The writing end. `Send`, not `Clone` or `Sync`: there is exactly one producer.
pub struct Producer<T> {
    shared: Arc<RingShared<T>>,
    /// Position of the next slot to write; values in `[published_tail, tail)` are written but not
    /// yet visible to the consumer.
    tail: usize,
    /// The last value stored into `shared.tail`.
    published_tail: usize,
    /// The consumer's `head` as last loaded; never ahead of the real one.
    head_cache: usize,
    _not_sync: NotSync,
}

/// The reading end. `Send`, not `Clone` or `Sync`: there is exactly one consumer.
pub struct Consumer<T> {
    shared: Arc<RingShared<T>>,
    /// Our own index; equal to `shared.head` whenever no [`ReadChunk`] is alive.
    head: usize,
    /// The producer's `tail` as last loaded; never ahead of the real one.
    tail_cache: usize,
    _not_sync: NotSync,
}

impl<T> Producer<T> {
    /// Free slots by the cached `head`; reloads it (Acquire) if fewer than `wanted` look free.
    #[inline]
    fn free_slots(&mut self, wanted: usize) -> usize {
        let capacity = self.shared.capacity;
        let free = capacity - self.tail.wrapping_sub(self.head_cache);
        if free >= wanted {
            return free;
        }
        // Acquire pairs with the consumer's Release store of `head`: its reads of the slots we
        // are about to reuse happened before.
        self.head_cache = self.shared.head.load(Ordering::Acquire);
        capacity - self.tail.wrapping_sub(self.head_cache)
    }

    /// Moves `value` into the next slot without publishing it.
    ///
    /// # Safety
    ///
    /// The caller must have checked with `free_slots` that a slot is free.
    #[inline(always)]
    unsafe fn write_unpublished(&mut self, value: T) {
        debug_assert!(self.tail.wrapping_sub(self.head_cache) < self.shared.capacity);
        // SAFETY: the caller checked a slot is free; slot `tail` is outside [head, tail) and only
        // the producer touches it until `tail` is published.
        unsafe { self.shared.slots.write(self.tail, value) };
        self.tail = self.tail.wrapping_add(1);
    }

    /// Appends `value` and publishes it (with anything deferred before), or gives it back if
    /// the ring is full.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        self.push_deferred(value)?;
        self.flush();
        Ok(())
    }

    /// Writes `value` into the ring without making it visible to the consumer; it (and every
    /// earlier deferred value) becomes visible at the next [`flush`](Self::flush), `push`, chunk
    /// commit, or when the producer is dropped. Gives `value` back if the ring is full.
    #[inline]
    pub fn push_deferred(&mut self, value: T) -> Result<(), T> {
        if self.free_slots(1) == 0 {
            return Err(value);
        }
        // SAFETY: free_slots(1) returned at least 1.
        unsafe { self.write_unpublished(value) };
        Ok(())
    }

    /// Publishes every value written since the last publication with one Release store.
    #[inline]
    pub fn flush(&mut self) {
        if self.tail != self.published_tail {
            // Release: every slot write before this store is visible to the consumer's Acquire
            // load of `tail`.
            self.shared.tail.store(self.tail, Ordering::Release);
            self.published_tail = self.tail;
        }
    }

    #[inline(always)]
    fn flush_pending(&mut self) {
        self.flush();
    }

    /// Values written but not yet published.
    pub fn pending(&self) -> usize {
        self.tail.wrapping_sub(self.published_tail)
    }

    /// Reserves exactly `n` slots. Values pushed into the chunk are published together when it is
    /// committed or dropped.
    pub fn write_chunk(&mut self, n: usize) -> Result<WriteChunk<'_, T>, ChunkError> {
        let available = self.free_slots(n);
        if available < n {
            return Err(ChunkError::TooFewSlots { available });
        }
        let end = self.tail.wrapping_add(n);
        Ok(WriteChunk {
            producer: self,
            end,
            growable: false,
        })
    }

    /// Opens a chunk that takes as many values as fit (it reloads the consumer's `head` when it
    /// runs out of slots known to be free), published together when committed or dropped.
    pub fn write_batch(&mut self) -> WriteChunk<'_, T> {
        let free = self.free_slots(usize::MAX);
        let end = self.tail.wrapping_add(free);
        WriteChunk {
            producer: self,
            end,
            growable: true,
        }
    }
}

/// Reserved slots in the ring, filled with [`WriteChunk::push`] and published by
/// [`WriteChunk::commit`] or on drop. A chunk is never published twice or lost: values pushed
/// into it belong to the ring as soon as `push` returns.
pub struct WriteChunk<'a, T> {
    producer: &'a mut Producer<T>,
    /// One past the last position this chunk may write.
    end: usize,
    /// Whether `push` may look for more free slots once `end` is reached.
    growable: bool,
}

impl<T> WriteChunk<'_, T> {
    /// Moves `value` into the next reserved slot, or gives it back if the chunk is used up.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.producer.tail == self.end {
            if !self.growable {
                return Err(value);
            }
            let free = self.producer.free_slots(usize::MAX);
            if free == 0 {
                return Err(value);
            }
            self.end = self.producer.tail.wrapping_add(free);
        }
        // SAFETY: tail != end and every position in [tail, end) was free when reserved (the
        // consumer can only free more slots, never take them back).
        unsafe { self.producer.write_unpublished(value) };
        Ok(())
    }

    /// Slots reserved and not yet written (for a growable batch: known free without reloading).
    pub fn remaining(&self) -> usize {
        self.end.wrapping_sub(self.producer.tail)
    }

    /// Publishes the values pushed into this chunk; returns how many were published.
    pub fn commit(self) -> usize {
        let count = self.producer.pending();
        drop(self);
        count
    }
}

impl<T> Drop for WriteChunk<'_, T> {
    fn drop(&mut self) {
        self.producer.flush();
    }
}

impl<T> Consumer<T> {
    /// Removes the oldest value, or returns `None` if the ring is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let mut chunk = self.read_chunk(1);
        chunk.next()
    }

    /// Values known to be available, reloading the producer's `tail` (Acquire) when fewer than
    /// `wanted` are known.
    #[inline]
    fn available(&mut self, wanted: usize) -> usize {
        let known = self.tail_cache.wrapping_sub(self.head);
        if known >= wanted {
            return known;
        }
        // Acquire pairs with the producer's Release store of `tail`: the slot writes before it
        // are visible to us.
        self.tail_cache = self.shared.tail.load(Ordering::Acquire);
        self.tail_cache.wrapping_sub(self.head)
    }

    /// Takes up to `max` values (as many as are published now), handed out by iterating the
    /// chunk. The slots go back to the producer with one store when the chunk is dropped; values
    /// not taken by then stay in the ring for the next read.
    #[inline]
    pub fn read_chunk(&mut self, max: usize) -> ReadChunk<'_, T> {
        let count = self.available(max).min(max);
        let head = self.head;
        ReadChunk {
            end: head.wrapping_add(count),
            head,
            consumer: self,
        }
    }
}

/// A run of published values, taken by iterating. Dropping it hands the slots read so far back to
/// the producer with one Release store.
pub struct ReadChunk<'a, T> {
    consumer: &'a mut Consumer<T>,
    /// Position of the next value to hand out. Kept here, not in the consumer, so the loop over a
    /// chunk works on a local and writes the consumer back once, on drop.
    head: usize,
    /// One past the last position this chunk may read.
    end: usize,
}

impl<T> Iterator for ReadChunk<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        let head = self.head;
        if head == self.end {
            return None;
        }
        // SAFETY: head < end <= tail_cache <= tail, so slot `head` is initialised and published;
        // only the consumer reads it, and advancing `head` now means it is read exactly once (the
        // shared `head` is stored when the chunk drops, before which the producer cannot reuse it).
        let value = unsafe { self.consumer.shared.slots.read(head) };
        self.head = head.wrapping_add(1);
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end.wrapping_sub(self.head);
        (left, Some(left))
    }
}

impl<T> ExactSizeIterator for ReadChunk<'_, T> {}

impl<T> Drop for ReadChunk<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.head == self.consumer.head {
            // Nothing taken: skip the store, so polling an empty ring writes no shared line.
            return;
        }
        self.consumer.head = self.head;
        // Release: our reads of the slots happen before the producer may overwrite them.
        self.consumer
            .shared
            .head
            .store(self.head, Ordering::Release);
    }
}

crate::ring::ring_common! {
    marker: Batched,
    name: "batched",
    producer_extra: {
        #[inline]
        fn push_deferred(&mut self, value: T) -> Result<(), T> {
            Producer::push_deferred(self, value)
        }
        #[inline]
        fn flush(&mut self) {
            Producer::flush(self)
        }
    },
    consumer_extra: {
        #[inline]
        fn pop_batch(&mut self, max: usize, mut sink: impl FnMut(T)) -> usize {
            let chunk = self.read_chunk(max);
            let count = chunk.len();
            chunk.for_each(&mut sink);
            count
        }
    }
}
