//! State shared by the two ends of the lock-free rings (`lamport`, `cached`, `batched`).
//!
//! ```text
//!   Arc<RingShared<T>>
//!   +--------------------------------------------+  <- 128-byte aligned
//!   | head: AtomicUsize   (written by consumer)  |
//!   +--------------------------------------------+  <- next 128-byte line
//!   | tail: AtomicUsize   (written by producer)  |
//!   +--------------------------------------------+
//!   | capacity, slots pointer, alive flags       |  read-mostly
//!   +--------------------------------------------+
//! ```
//!
//! The three variants differ only in *how often* each end reads the other end's index, and when
//! it publishes its own; the layout, the slots and the drop logic are the same and live here.

use crate::CachePadded;
use crate::slots::Slots;
use crate::sync::{AtomicBool, AtomicUsize, Ordering};

pub(crate) struct RingShared<T> {
    /// Position of the next value to pop. Written only by the consumer (Release), read by the
    /// producer (Acquire) to learn which slots it may overwrite. `tail - head` is in
    /// `0 ..= capacity` (wrapping arithmetic).
    pub(crate) head: CachePadded<AtomicUsize>,
    /// Position one past the last published value. Written only by the producer (Release), read
    /// by the consumer (Acquire) to learn which slots hold values.
    pub(crate) tail: CachePadded<AtomicUsize>,
    /// How many values the ring may hold (what the user asked for; the slot array may be larger).
    pub(crate) capacity: usize,
    /// Set (Release) once by the producer's `Drop`, read (Acquire) by the consumer.
    pub(crate) producer_alive: AtomicBool,
    /// Set (Release) once by the consumer's `Drop`, read (Acquire) by the producer.
    pub(crate) consumer_alive: AtomicBool,
    pub(crate) slots: Slots<T>,
}

// SAFETY: the ring moves `T` values from the producer's thread to the consumer's thread, so `T`
// must be `Send`. The slots are only touched under the head/tail protocol, which gives each slot a
// single owner at a time, so sharing `RingShared` between the two threads is sound.
unsafe impl<T: Send> Sync for RingShared<T> {}
// SAFETY: as above; the struct owns `T` values and moving it moves them.
unsafe impl<T: Send> Send for RingShared<T> {}

impl<T> RingShared<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        let slots = Slots::new(capacity);
        debug_assert!(slots.len() >= capacity);
        Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            capacity,
            producer_alive: AtomicBool::new(true),
            consumer_alive: AtomicBool::new(true),
            slots,
        }
    }

    /// Items in the ring as seen now; exact when the other side is idle.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        // Load head first: tail only grows, so reading it second can only over-count, and we
        // clamp to capacity.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.capacity)
    }
}

impl<T> Drop for RingShared<T> {
    fn drop(&mut self) {
        // Both ends are gone (the last `Arc` is dropping, and `Arc`'s drop synchronises with every
        // earlier drop of a clone), so the latest head and tail are visible and we are alone.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        debug_assert!(tail.wrapping_sub(head) <= self.capacity);
        // SAFETY: exactly the positions in [head, tail) hold values, and no other thread exists.
        unsafe { self.slots.drop_range(head, tail) };
    }
}

/// Makes a type `!Sync` while keeping it `Send`: ring ends are used from one thread at a time.
pub(crate) type NotSync = core::marker::PhantomData<core::cell::Cell<()>>;

/// Writes what the four variants share around their `push`/`pop`: the accessors, the
/// `Drop` impls that mark an end as gone, the [`RingProducer`](crate::RingProducer) and
/// [`RingConsumer`](crate::RingConsumer) impls (each variant may add trait methods in
/// `producer_extra`/`consumer_extra`), and the [`Variant`](crate::Variant) impl.
///
/// The module must define `channel`, `Producer<T>` and `Consumer<T>` (each with a `shared` field
/// whose target has `len()`, `capacity`, `producer_alive` and `consumer_alive`, as
/// [`RingShared`] does), `Producer::push`, `Consumer::pop`, and
/// `Producer::flush_pending(&mut self)` (publishes deferred writes; empty where there are none).
macro_rules! ring_common {
    (
        marker: $marker:ident,
        name: $name:literal,
        producer_extra: { $($producer_extra:tt)* },
        consumer_extra: { $($consumer_extra:tt)* }
    ) => {
        impl<T> Producer<T> {
            /// Values published to the ring now (exact only while the consumer is idle).
            pub fn len(&self) -> usize {
                self.shared.len()
            }

            /// True if no published value is in the ring now.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The most values the ring holds.
            pub fn capacity(&self) -> usize {
                self.shared.capacity
            }

            /// True once the consumer has been dropped: pushed values would never be read.
            pub fn is_abandoned(&self) -> bool {
                !self.shared.consumer_alive.load(Ordering::Acquire)
            }
        }

        impl<T> Consumer<T> {
            /// Values in the ring now (exact only while the producer is idle).
            pub fn len(&self) -> usize {
                self.shared.len()
            }

            /// True if the ring holds no values now.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The most values the ring holds.
            pub fn capacity(&self) -> usize {
                self.shared.capacity
            }

            /// True once the producer has been dropped. Values it published before are still
            /// there: after this returns true, drain with `pop` until `None`.
            pub fn is_abandoned(&self) -> bool {
                !self.shared.producer_alive.load(Ordering::Acquire)
            }
        }

        impl<T> Drop for Producer<T> {
            fn drop(&mut self) {
                self.flush_pending();
                // Release: a consumer that sees `false` also sees every value published above.
                self.shared.producer_alive.store(false, Ordering::Release);
            }
        }

        impl<T> Drop for Consumer<T> {
            fn drop(&mut self) {
                self.shared.consumer_alive.store(false, Ordering::Release);
            }
        }

        impl<T: Send> $crate::RingProducer<T> for Producer<T> {
            #[inline]
            fn push(&mut self, value: T) -> Result<(), T> {
                Producer::push(self, value)
            }
            fn len(&self) -> usize {
                Producer::len(self)
            }
            fn capacity(&self) -> usize {
                Producer::capacity(self)
            }
            fn is_abandoned(&self) -> bool {
                Producer::is_abandoned(self)
            }
            $($producer_extra)*
        }

        impl<T: Send> $crate::RingConsumer<T> for Consumer<T> {
            #[inline]
            fn pop(&mut self) -> Option<T> {
                Consumer::pop(self)
            }
            fn len(&self) -> usize {
                Consumer::len(self)
            }
            fn capacity(&self) -> usize {
                Consumer::capacity(self)
            }
            fn is_abandoned(&self) -> bool {
                Consumer::is_abandoned(self)
            }
            $($consumer_extra)*
        }

        impl $crate::Variant for $marker {
            const NAME: &'static str = $name;
            type Producer<T: Send> = Producer<T>;
            type Consumer<T: Send> = Consumer<T>;
            fn channel<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
                channel(capacity)
            }
        }
    };
}
pub(crate) use ring_common;
