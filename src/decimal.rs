//! Decimal integers as Redis reads and writes them: [`parse_i64`] and [`format_i64`].
//!
//! A leaf module: it imports nothing from the crate. `proto` (RESP lengths, command arguments)
//! and `store` (INCR on a stored value) both need the same parser, and neither may depend on the
//! other (`store` knows no protocol; `proto` knows no shard), so the one copy lives below both.

/// Parses a decimal `i64` the way Redis's `string2ll` does: an optional `-`, no `+`, no spaces,
/// no leading zeros (except `0` itself), no overflow.
#[inline]
pub(crate) fn parse_i64(digits: &[u8]) -> Option<i64> {
    let (negative, magnitude) = match digits {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, digits),
    };
    match magnitude {
        [] => return None,
        [b'0'] => return if negative { None } else { Some(0) },
        [b'0', ..] => return None,
        _ => {}
    }
    if magnitude.len() > 19 {
        return None;
    }
    // Accumulate as negative so that i64::MIN is representable.
    let mut value: i64 = 0;
    for &byte in magnitude {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(digit))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// Formats `value` in decimal into `buffer`; returns the used tail of it. What [`parse_i64`]
/// reads back to `value`. (RESP replies use `proto::reply`'s formatter, which appends to the
/// output buffer directly.)
pub(crate) fn format_i64(value: i64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut at = buffer.len();
    let mut magnitude = value.unsigned_abs();
    loop {
        at -= 1;
        buffer[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if value < 0 {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_i64_matches_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"+1",
            b"01",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1a",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Every `i64` formats as `std` formats it and parses back to itself.
        #[test]
        fn format_then_parse_is_the_identity(value in any::<i64>()) {
            let mut buffer = [0u8; 20];
            let digits = format_i64(value, &mut buffer);
            let expected = value.to_string();
            prop_assert_eq!(digits, expected.as_bytes());
            prop_assert_eq!(parse_i64(digits), Some(value));
        }

        /// On any short byte string the parser agrees with `std` where the text is canonical
        /// (what `std` prints for the number it reads), and refuses everything else.
        #[test]
        fn parse_agrees_with_std_on_canonical_text(bytes in proptest::collection::vec(
            prop_oneof![8 => b'0'..=b'9', 1 => Just(b'-'), 1 => Just(b'+'), 1 => any::<u8>()],
            0..22)) {
            let canonical = std::str::from_utf8(&bytes).ok()
                .and_then(|text| text.parse::<i64>().ok())
                .filter(|value| value.to_string().as_bytes() == bytes.as_slice());
            prop_assert_eq!(parse_i64(&bytes), canonical);
        }
    }
}
