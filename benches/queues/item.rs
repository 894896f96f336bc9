//! What travels through the queues: a `u64` or a 64-byte array, made from a sequence number
//! and checked on arrival.

/// What travels through the queues: made from a sequence number, checkable on arrival.
pub trait Item: Copy + Send + 'static {
    const LABEL: &'static str;
    fn from_sequence(sequence: u64) -> Self;
    fn sequence(&self) -> u64;
    /// True if every word is what `from_sequence(self.sequence())` wrote.
    fn is_intact(&self) -> bool;
    /// Folds every word, so the consumer really reads the whole item.
    fn checksum(&self) -> u64;
    /// Sum of `checksum` over items `0..count`.
    fn expected_checksum(count: u64) -> u64;
}

impl Item for u64 {
    const LABEL: &'static str = "u64";
    #[inline(always)]
    fn from_sequence(sequence: u64) -> Self {
        sequence
    }
    #[inline(always)]
    fn sequence(&self) -> u64 {
        *self
    }
    fn is_intact(&self) -> bool {
        true
    }
    #[inline(always)]
    fn checksum(&self) -> u64 {
        *self
    }
    fn expected_checksum(count: u64) -> u64 {
        (0..count).fold(0u64, |sum, sequence| sum.wrapping_add(sequence))
    }
}

/// A 64-byte item: word `k` holds `sequence + k`.
pub type Wide = [u64; 8];
const _: () = assert!(size_of::<Wide>() == 64);

impl Item for Wide {
    const LABEL: &'static str = "[u64; 8]";
    #[inline(always)]
    fn from_sequence(sequence: u64) -> Self {
        core::array::from_fn(|k| sequence.wrapping_add(k as u64))
    }
    #[inline(always)]
    fn sequence(&self) -> u64 {
        self[0]
    }
    fn is_intact(&self) -> bool {
        *self == Self::from_sequence(self[0])
    }
    #[inline(always)]
    fn checksum(&self) -> u64 {
        self.iter().fold(0u64, |sum, word| sum.wrapping_add(*word))
    }
    fn expected_checksum(count: u64) -> u64 {
        (0..count).fold(0u64, |sum, sequence| {
            sum.wrapping_add(Self::from_sequence(sequence).checksum())
        })
    }
}
