//! Redis Cluster key slots: `CRC16/XMODEM(key or its {hashtag}) mod 16384`.
//!
//! The reactor computes the slot of every request's key and routes the request to the worker
//! that owns the slot. Computing it exactly as Redis Cluster does lets cluster-aware Redis
//! clients route by themselves once Piccolo has a cluster.
//!
//! The CRC is table-driven: one 256-entry table of `u16` (512 bytes, eight cache lines) built at
//! compile time, one lookup and two shifts per key byte instead of the bit-at-a-time loop's eight
//! shifts and branches. Keys are short, so this needs nothing fancier (slicing-by-8 would need
//! 4 KiB of tables for keys that are mostly under 32 bytes). `benches/iai_proto.rs` (`route`)
//! counts its instructions.

/// Number of slots in a Redis Cluster keyspace.
pub const SLOT_COUNT: u16 = 16384;

const _: () = assert!(SLOT_COUNT.is_power_of_two(), "slot() reduces with a mask");

/// CRC16/XMODEM: polynomial 0x1021, initial value 0, no reflection, no final xor.
const CRC16_POLY: u16 = 0x1021;

/// `CRC16_TABLE[b]` is the CRC of the single byte `b` starting from 0 (MSB-first).
static CRC16_TABLE: [u16; 256] = build_crc16_table();

const fn build_crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ CRC16_POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// CRC16/XMODEM of `bytes` (the checksum Redis Cluster uses for slots).
#[inline]
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        let index = ((crc >> 8) as u8 ^ byte) as usize;
        crc = (crc << 8) ^ CRC16_TABLE[index];
    }
    crc
}

/// The part of `key` that decides its slot: the bytes between the first `{` and the first `}`
/// after it, if there is at least one byte between them; otherwise the whole key.
///
/// This is Redis's rule, byte for byte: `"{user1000}.following"` hashes `"user1000"`,
/// `"foo{}{bar}"` hashes the whole key (the first `{` is followed by an empty tag), and
/// `"foo{{bar}}"` hashes `"{bar"`.
#[inline]
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = find_byte(key, b'{') else {
        return key;
    };
    let after_open = &key[open + 1..];
    match find_byte(after_open, b'}') {
        Some(close) if close > 0 => &after_open[..close],
        _ => key,
    }
}

/// The index of the first `needle` in `haystack`: eight bytes a step (SWAR: a byte of the word
/// XOR a word of needles is zero exactly where the needle is, and `(x - 0x01..) & !x & 0x80..`
/// marks the lowest zero byte exactly), then byte by byte for the tail. Most keys have no
/// `{`, so this scan runs to the end of nearly every key.
#[inline]
fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let needles = ONES * u64::from(needle);
    let mut chunks = haystack.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ needles;
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            // Borrows only run upwards, so the lowest marked byte is the first zero byte.
            return Some(at + zeros.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&byte| byte == needle)
        .map(|index| at + index)
}

/// The Redis Cluster slot of `key`, in `0..SLOT_COUNT`.
#[inline]
pub fn slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOT_COUNT - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, one bit at a time, to check the table against.
    fn crc16_bitwise(bytes: &[u8]) -> u16 {
        let mut crc: u16 = 0;
        for &byte in bytes {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ CRC16_POLY
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    #[test]
    fn crc16_check_value_from_the_redis_cluster_spec() {
        // The Redis Cluster specification: "Output for "123456789": 31C3".
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn known_slots() {
        // Values that `redis-cli cluster keyslot` prints.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        // From the CLUSTER KEYSLOT page of the Redis documentation.
        assert_eq!(slot(b"somekey"), 11058);
        assert_eq!(slot(b"foo{hash_tag}"), 2515);
        assert_eq!(slot(b""), 0);
        assert_eq!(slot(b"123456789"), 0x31C3 & 0x3FFF);
    }

    #[test]
    fn hash_tags_follow_redis() {
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"{"), b"{");
        assert_eq!(hash_tag(b"}{"), b"}{");
        assert_eq!(hash_tag(b"a{b"), b"a{b");
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(hash_tag(b"{x}"), b"x");
    }

    proptest! {
        #[test]
        fn table_matches_bitwise_definition(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(crc16(&bytes), crc16_bitwise(&bytes));
            prop_assert!(slot(&bytes) < SLOT_COUNT);
        }

        /// The word-at-a-time scan agrees with the plain one, on bytes drawn mostly from
        /// around the needles (so needles, near-needles and repeats are common) and at every
        /// length class (whole words, a tail, both).
        #[test]
        fn find_byte_matches_position(
            bytes in proptest::collection::vec(prop_oneof![0x79u8..0x7f, any::<u8>()], 0..40),
            needle in prop_oneof![Just(b'{'), Just(b'}'), any::<u8>()],
        ) {
            prop_assert_eq!(
                find_byte(&bytes, needle),
                bytes.iter().position(|&byte| byte == needle)
            );
        }
    }
}
