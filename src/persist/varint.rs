//! LEB128 variable-length integers: seven bits a byte, low bits first, the high bit set on every
//! byte but the last. A u64 takes 1 to 10 bytes; versions and lengths of small records take 1-3.

/// Bytes `value` takes.
#[inline]
pub fn len(value: u64) -> usize {
    // 1 + floor(bits / 7), with 0 taking one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `value`.
#[inline]
pub fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a value from the start of `bytes`: `(value, bytes used)`, or `None` if the bytes end
/// first or the encoding is longer than 10 bytes or overflows 64 bits.
#[inline]
pub fn get(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        let low = u64::from(byte & 0x7f);
        if index == 9 && (byte > 1) {
            return None; // more than 64 bits
        }
        value |= low << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        for value in [0, 1, 127, 128, 16383, 16384, u64::MAX >> 1, u64::MAX] {
            let mut out = Vec::new();
            put(&mut out, value);
            assert_eq!(out.len(), len(value), "{value}");
            assert_eq!(get(&out), Some((value, out.len())));
        }
        assert_eq!(get(&[0x80; 11]), None);
        assert_eq!(
            get(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        assert_eq!(get(&[]), None);
    }

    proptest! {
        #[test]
        fn round_trip(value in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut out = Vec::new();
            put(&mut out, value);
            prop_assert_eq!(out.len(), len(value));
            out.extend_from_slice(&tail);
            prop_assert_eq!(get(&out), Some((value, len(value))));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            if let Some((_, used)) = get(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }
    }
}
