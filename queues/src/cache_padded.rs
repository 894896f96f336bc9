//! [`CachePadded`]: keep a value alone on its own cache line(s).

use core::fmt;
use core::ops::{Deref, DerefMut};

/// Aligns and pads `T` so that no other value shares its cache line(s).
///
/// Two atomics written by different cores must not share a cache line, or every write by one core
/// invalidates the line in the other core's cache even though the other core never reads that
/// atomic ("false sharing"). In a ring buffer the producer writes the tail and the consumer writes
/// the head; sharing a line would make each push and pop pay a cache-line transfer.
///
/// # Why 128 bytes, not 64
///
/// x86_64 cache lines are 64 bytes, but since Sandy Bridge Intel's L2 *spatial prefetcher* fetches
/// lines in aligned pairs (Intel optimisation manual, "Spatial Prefetcher"), so two values 64 bytes
/// apart can still ping-pong as if they shared a line. AMD Zen cores have an adjacent-line
/// prefetcher too. On aarch64, the big cores of Apple M-series and several Neoverse parts use
/// 128-byte lines outright. 128 bytes covers both cases for the cost of some padding; on other
/// targets 64 bytes is the common line size.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), repr(align(128)))]
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    repr(align(64))
)]
#[derive(Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CachePadded<T> {
    value: T,
}

impl<T> CachePadded<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Self { value }
    }

    /// Returns the inner value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for CachePadded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for CachePadded<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for CachePadded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachePadded")
            .field("value", &self.value)
            .finish()
    }
}

impl<T> From<T> for CachePadded<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::CachePadded;

    #[test]
    fn alignment_and_size_are_a_whole_line() {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        let line = 128;
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let line = 64;
        assert_eq!(core::mem::align_of::<CachePadded<u8>>(), line);
        assert_eq!(core::mem::size_of::<CachePadded<u8>>(), line);
        let big = core::mem::size_of::<CachePadded<[u8; 129]>>();
        assert!(big >= 129 && big % line == 0 && big < 129 + line);
        let pair = [CachePadded::new(1u64), CachePadded::new(2u64)];
        let a = &pair[0] as *const _ as usize;
        let b = &pair[1] as *const _ as usize;
        assert_eq!(b - a, line);
        assert_eq!(*pair[1], 2);
    }
}
