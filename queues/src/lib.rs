//! Hand-written single-producer single-consumer (SPSC) ring buffers, in four variants behind one
//! API, plus the two tools the Piccolo server needs around them: [`CachePadded`] and a
//! park/notify protocol ([`park`]).
//!
//! # The variants
//!
//! | module      | trick                                                           | from |
//! |-------------|-----------------------------------------------------------------|------|
//! | [`lamport`] | both indices shared, each read on every operation               | Lamport 1983 |
//! | [`cached`]  | each end caches the other's index, reloads only when full/empty | Rigtorp's SPSCQueue, rtrb |
//! | [`batched`] | `cached` + chunks: write or read a run, publish with one store  | MCRingBuffer, B-Queue, FastForward |
//! | [`mutex`]   | `Mutex<VecDeque<T>>`                                            | the reference point |
//!
//! All four have the same names: `channel::<T>(capacity) -> (Producer<T>, Consumer<T>)`,
//! `Producer::push(&mut self, T) -> Result<(), T>` (the value comes back when full),
//! `Consumer::pop(&mut self) -> Option<T>`, `len`, `capacity`, and `is_abandoned` (the other end
//! was dropped). Ends are `Send` but neither `Clone` nor `Sync`. Values still in a ring when both
//! ends are gone are dropped exactly once.
//!
//! Generic code names a variant with a marker type implementing [`Variant`]
//! ([`lamport::Lamport`], [`cached::Cached`], [`batched::Batched`], [`mutex::Locked`]); the calls
//! are monomorphised, so choosing a variant costs no virtual call:
//!
//! ```
//! use piccolo_queues::{RingConsumer, RingProducer, Variant, cached::Cached};
//!
//! fn round_trip<V: Variant>() -> Option<u64> {
//!     let (mut tx, mut rx) = V::channel::<u64>(4);
//!     tx.push(7).unwrap();
//!     rx.pop()
//! }
//! assert_eq!(round_trip::<Cached>(), Some(7));
//! ```
//!
//! # How it is checked
//!
//! Every atomic and cell goes through the private `sync` module, which switches to `loom` under
//! `--cfg loom`; `tests/loom.rs` model-checks each variant and the park/notify protocol. The
//! stress tests in `tests/stress.rs` move 10 million sequence numbers through each variant.

#![warn(missing_docs)]

mod cache_padded;
mod ring;
mod slots;
mod sync;

pub mod batched;
pub mod cached;
pub mod lamport;
pub mod mutex;
pub mod park;

pub use cache_padded::CachePadded;

/// The writing end of any variant.
pub trait RingProducer<T>: Send {
    /// Appends `value` and makes it visible to the consumer, or gives it back if the ring is full.
    fn push(&mut self, value: T) -> Result<(), T>;

    /// Appends `value`, possibly without making it visible until [`flush`](Self::flush). Only the
    /// `batched` variant defers; the others publish at once. Gives `value` back if full.
    #[inline]
    fn push_deferred(&mut self, value: T) -> Result<(), T> {
        self.push(value)
    }

    /// Makes every deferred value visible (one store for the whole run in `batched`).
    #[inline]
    fn flush(&mut self) {}

    /// Values in the ring now (exact only while the consumer is idle).
    fn len(&self) -> usize;

    /// True if the ring holds no values now.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most values the ring holds.
    fn capacity(&self) -> usize;

    /// True once the consumer has been dropped.
    fn is_abandoned(&self) -> bool;
}

/// The reading end of any variant.
pub trait RingConsumer<T>: Send {
    /// Removes the oldest value, or returns `None` if the ring is empty.
    fn pop(&mut self) -> Option<T>;

    /// Removes up to `max` values, oldest first, passing each to `sink`; returns how many. The
    /// `batched` variant reads the producer's index once and releases the slots with one store.
    #[inline]
    fn pop_batch(&mut self, max: usize, mut sink: impl FnMut(T)) -> usize {
        let mut count = 0;
        while count < max {
            match self.pop() {
                Some(value) => sink(value),
                None => break,
            }
            count += 1;
        }
        count
    }

    /// Values in the ring now (exact only while the producer is idle).
    fn len(&self) -> usize;

    /// True if the ring holds no values now.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most values the ring holds.
    fn capacity(&self) -> usize;

    /// True once the producer has been dropped (values it published are still there to pop).
    fn is_abandoned(&self) -> bool;
}

/// A queue variant, named by a marker type, for generic (monomorphised) code.
pub trait Variant: Send + Sync + 'static {
    /// Short lowercase name, as used on the command line (`--queue cached`).
    const NAME: &'static str;
    /// The variant's writing end.
    type Producer<T: Send>: RingProducer<T>;
    /// The variant's reading end.
    type Consumer<T: Send>: RingConsumer<T>;
    /// Creates a ring holding up to `capacity` values (at least 1).
    fn channel<T: Send>(capacity: usize) -> (Self::Producer<T>, Self::Consumer<T>);
}

/// The names of the four variants, in the order of the docs.
pub const VARIANT_NAMES: [&str; 4] = [
    lamport::Lamport::NAME,
    cached::Cached::NAME,
    batched::Batched::NAME,
    mutex::Locked::NAME,
];
