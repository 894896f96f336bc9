//! The one hash function of the store: [`hash_key`].
//!
//! The reactor computes it once per request and passes it along; the shard never hashes a key
//! again, except to rebuild its table when the table grows (or when the cleaner or a scan needs to
//! find the table slot of a record it walks to), which is why the function is fixed here rather
//! than chosen by each caller.
//!
//! Design: 16 bytes at a time are mixed with a *folded multiply* (the 128-bit product of two
//! 64-bit words, high half XOR low half), which moves every input bit into both halves of the
//! result; hashbrown takes its bucket index from the low bits and its 7-bit tag from the top bits,
//! so both ends must be good. The length is mixed in first, so `"a"` and `"a\0"` differ. Short
//! tails are read with overlapping loads instead of a byte loop. It is deterministic (no per-process
//! seed): fine for a cache behind a trusted network, not resistant to deliberate collision
//! attacks (HashDoS). A keyed seed would need the shard to know the seed too; see the design notes.

const MULTIPLIER_A: u64 = 0x9e37_79b9_7f4a_7c15; // 2^64 / golden ratio, odd
const MULTIPLIER_B: u64 = 0xc2b2_ae3d_27d4_eb4f; // odd, high bit set, bits well spread
const MULTIPLIER_C: u64 = 0x1656_67b1_9e37_79f9; // odd, bits well spread
const SEED: u64 = 0x2d35_8dcc_aa6c_78a5;

#[inline(always)]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let product = (x as u128) * (y as u128);
    (product as u64) ^ ((product >> 64) as u64)
}

#[inline(always)]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[inline(always)]
fn read_u32(bytes: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as u64
}

/// Hash a key the way every caller of the store must: the `hash` argument of every [`Shard`]
/// operation is `hash_key(key)`.
///
/// [`Shard`]: super::Shard
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    let len = key.len();
    let mut state = SEED ^ folded_multiply(len as u64 ^ MULTIPLIER_C, MULTIPLIER_A);
    let mut rest = key;
    while rest.len() > 16 {
        let low = read_u64(rest, 0);
        let high = read_u64(rest, 8);
        state = folded_multiply(low ^ state ^ MULTIPLIER_A, high ^ MULTIPLIER_B);
        rest = &rest[16..];
    }
    // 0 ..= 16 bytes left; read them as two words with overlapping loads.
    let n = rest.len();
    let (low, high) = if n >= 8 {
        (read_u64(rest, 0), read_u64(rest, n - 8))
    } else if n >= 4 {
        (read_u32(rest, 0), read_u32(rest, n - 4))
    } else if n > 0 {
        let a = rest[0] as u64;
        let b = rest[n / 2] as u64;
        let c = rest[n - 1] as u64;
        (a | (c << 8), b)
    } else {
        (0, 0)
    };
    state = folded_multiply(low ^ state ^ MULTIPLIER_B, high ^ MULTIPLIER_C);
    folded_multiply(state ^ MULTIPLIER_A, MULTIPLIER_B ^ len as u64)
}

#[cfg(test)]
mod tests {
    use super::hash_key;
    use std::collections::HashSet;

    #[test]
    fn is_deterministic_and_length_aware() {
        assert_eq!(hash_key(b"key:1"), hash_key(b"key:1"));
        assert_ne!(hash_key(b"a"), hash_key(b"a\0"));
        assert_ne!(hash_key(b""), hash_key(b"\0"));
        assert_ne!(hash_key(b"ab"), hash_key(b"ba"));
    }

    #[test]
    fn sequential_keys_spread_over_low_and_high_bits() {
        let n = 100_000u64;
        let hashes: Vec<u64> = (0..n)
            .map(|i| hash_key(format!("key:{i}").as_bytes()))
            .collect();
        let distinct: HashSet<u64> = hashes.iter().copied().collect();
        assert_eq!(distinct.len(), n as usize);
        // Low 12 bits (bucket index of a 4096-bucket table) and top 7 bits (hashbrown's tag):
        // every bucket gets a fair share.
        let mut low = vec![0u32; 4096];
        let mut top = vec![0u32; 128];
        for h in &hashes {
            low[(h & 4095) as usize] += 1;
            top[(h >> 57) as usize] += 1;
        }
        let expected_low = n as f64 / 4096.0;
        assert!(
            low.iter()
                .all(|&c| (c as f64) < expected_low * 2.0 && c > 0)
        );
        let expected_top = n as f64 / 128.0;
        assert!(
            top.iter()
                .all(|&c| ((c as f64) - expected_top).abs() < expected_top * 0.2)
        );
    }
}
