//! The slot array shared by the three lock-free variants.
//!
//! ```text
//!   positions are free-running counters; slot = position & mask
//!
//!   head (consumer)            tail (producer)
//!     v                          v
//!   +----+----+----+----+----+----+----+----+
//!   | .. | v3 | v4 | v5 | v6 | .. | .. | .. |   len = tail - head  (wrapping)
//!   +----+----+----+----+----+----+----+----+   0 <= len <= capacity <= slots.len()
//!   slots in [head, tail) hold initialised values owned by the ring;
//!   slots outside it are uninitialised and owned by nobody.
//! ```
//!
//! Positions are `usize` counters that only grow (wrapping on overflow, which at one push per
//! nanosecond takes 584 years on 64-bit targets); `tail - head` with wrapping subtraction is the
//! length. The slot array has a power-of-two length so `position & mask` replaces a division; the
//! ring's *capacity* is the number the user asked for, which may be smaller than the array.

use core::mem::MaybeUninit;

use crate::sync::UnsafeCell;

/// A fixed array of possibly-uninitialised slots. It does not know which slots are initialised;
/// the owning ring tracks that with its head and tail and must call [`Slots::drop_range`] before
/// the array goes away.
pub(crate) struct Slots<T> {
    cells: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
}

impl<T> Slots<T> {
    /// Allocates `capacity.next_power_of_two()` uninitialised slots.
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a ring needs a capacity of at least 1");
        let len = capacity
            .checked_next_power_of_two()
            .expect("ring capacity too large");
        let cells = (0..len)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect::<Box<[_]>>();
        Self {
            cells,
            mask: len - 1,
        }
    }

    /// The cell for `position`, without a bounds check on the hot path.
    #[inline(always)]
    fn cell(&self, position: usize) -> &UnsafeCell<MaybeUninit<T>> {
        let index = position & self.mask;
        debug_assert!(index < self.cells.len());
        // SAFETY: `cells.len()` is a power of two and `mask == cells.len() - 1` (set together in
        // `new`, never changed), so `position & mask < cells.len()` for every position.
        unsafe { self.cells.get_unchecked(index) }
    }

    /// Moves `value` into the slot for `position`.
    ///
    /// # Safety
    ///
    /// The slot must be uninitialised and the caller must be the only thread that can touch it
    /// until it publishes `position + 1` with Release ordering (it is the producer and the slot is
    /// outside `[head, tail)`).
    #[inline(always)]
    pub(crate) unsafe fn write(&self, position: usize, value: T) {
        let cell = self.cell(position);
        // SAFETY: the caller guarantees exclusive access to this uninitialised slot.
        cell.with_mut(|slot| unsafe { (*slot).write(value) });
    }

    /// Moves the value out of the slot for `position`, leaving it uninitialised.
    ///
    /// # Safety
    ///
    /// The slot must be initialised, and the caller must be the only thread that can touch it: it
    /// is the consumer, `position` is in `[head, tail)`, and it loaded `tail` with Acquire ordering
    /// (so the producer's write happened before this read). The caller must then treat the slot
    /// as uninitialised (advance `head` past it).
    #[inline(always)]
    pub(crate) unsafe fn read(&self, position: usize) -> T {
        let cell = self.cell(position);
        // SAFETY: the caller guarantees the slot is initialised and exclusively ours.
        cell.with(|slot| unsafe { (*slot).assume_init_read() })
    }

    /// Drops the values in positions `[head, tail)`.
    ///
    /// # Safety
    ///
    /// Exactly the slots in `[head, tail)` must be initialised, and no other thread may access the
    /// array (both ring ends are gone). After this call all slots are uninitialised.
    pub(crate) unsafe fn drop_range(&mut self, head: usize, tail: usize) {
        debug_assert!(tail.wrapping_sub(head) <= self.cells.len());
        let mut position = head;
        while position != tail {
            let cell = self.cell(position);
            // SAFETY: the slot is in [head, tail) so it is initialised, and we are alone.
            cell.with_mut(|slot| unsafe { (*slot).assume_init_drop() });
            position = position.wrapping_add(1);
        }
    }

    /// Number of slots in the array (a power of two, at least the capacity).
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }
}
