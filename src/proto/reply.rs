//! RESP2 reply encoding: appends replies to a connection's output `Vec<u8>`.
//!
//! ```text
//! simple string  +OK\r\n          error    -ERR unknown command\r\n
//! integer        :42\r\n          bulk     $5\r\nhello\r\n      null bulk   $-1\r\n
//! array          *2\r\n<two replies>                         null array  *-1\r\n
//! ```
//!
//! Each function appends one reply (or an array header, followed by the caller's elements) and
//! never fails: the output buffer's bound is the server's business (it disconnects a client whose
//! output grows past its limit), not the encoder's.
//!
//! # Integer formatting
//!
//! Integers appear in every bulk header and every counter reply, so they are formatted by hand:
//! two digits at a time from a 200-byte table into a stack buffer, then one `extend_from_slice`.
//! `itoa` does the same and is already in the dependency graph (through `serde_json`), but the
//! function is 30 lines, lets one-digit values skip the loop (the 10-99 byte bulk header has its
//! own one-store path, `bulk_header`), and keeps the shared `Cargo.toml` unchanged; a property
//! test checks it against `std`'s formatting.

/// `"00" "01" ... "99"`: the two ASCII digits of every value below 100.
static DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut value = 0;
    while value < 100 {
        table[value * 2] = b'0' + (value / 10) as u8;
        table[value * 2 + 1] = b'0' + (value % 10) as u8;
        value += 1;
    }
    table
};

/// Longest decimal form of a `u64` (20 digits) or an `i64` (a sign and 19 digits).
const MAX_DECIMAL_BYTES: usize = 20;

/// Appends the decimal digits of `value`.
#[inline]
fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    if value < 10 {
        out.push(b'0' + value as u8);
        return;
    }
    let mut buffer = [0u8; MAX_DECIMAL_BYTES];
    let mut start = MAX_DECIMAL_BYTES;
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        start -= 2;
        buffer[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if value >= 10 {
        let pair = value as usize * 2;
        start -= 2;
        buffer[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        buffer[start] = b'0' + value as u8;
    }
    out.extend_from_slice(&buffer[start..]);
}

/// Appends the decimal form of `value` (with `-` when negative).
#[inline]
pub fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_u64(out, value.unsigned_abs());
}

/// Appends `<prefix><value>\r\n`.
#[inline]
fn line_with_number(out: &mut Vec<u8>, prefix: u8, value: i64) {
    out.push(prefix);
    push_i64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// `+OK\r\n`, the most common reply.
#[inline]
pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// `+<text>\r\n`. `text` must not contain `\r` or `\n` (a bug in the caller: checked in debug
/// builds; in release such bytes are replaced by spaces so the stream stays well formed).
#[inline]
pub fn simple_string(out: &mut Vec<u8>, text: &[u8]) {
    debug_assert!(
        !text.contains(&b'\r') && !text.contains(&b'\n'),
        "simple string with CR or LF"
    );
    out.push(b'+');
    push_line_safe(out, text);
}

/// `-<message>\r\n`. `message` starts with the error code, as in Redis: `ERR unknown command`,
/// `WRONGTYPE ...`. Like Redis's `addReplyError`, `\r` and `\n` inside the message (which may
/// quote client input) become spaces, so a message can never break the stream.
#[inline]
pub fn error(out: &mut Vec<u8>, message: &[u8]) {
    out.push(b'-');
    push_line_safe(out, message);
}

fn push_line_safe(out: &mut Vec<u8>, text: &[u8]) {
    if text.iter().any(|&byte| byte == b'\r' || byte == b'\n') {
        out.extend(text.iter().map(|&byte| {
            if byte == b'\r' || byte == b'\n' {
                b' '
            } else {
                byte
            }
        }));
    } else {
        out.extend_from_slice(text);
    }
    out.extend_from_slice(b"\r\n");
}

/// `:<value>\r\n`.
#[inline]
pub fn integer(out: &mut Vec<u8>, value: i64) {
    line_with_number(out, b':', value);
}

/// `$<len>\r\n<bytes>\r\n`.
#[inline]
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 16);
    bulk_header(out, bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n` alone, for a caller that appends the `len` bytes and the final `\r\n` itself
/// (e.g. a value copied in pieces). Pairs with [`bulk_trailer`].
#[inline]
pub fn bulk_header(out: &mut Vec<u8>, len: usize) {
    if (10..100).contains(&len) {
        // The common case (a small value): the whole 5-byte header in one fixed-size store.
        let pair = len * 2;
        let digits = &DIGIT_PAIRS[pair..pair + 2];
        out.extend_from_slice(&[b'$', digits[0], digits[1], b'\r', b'\n']);
        return;
    }
    out.push(b'$');
    push_u64(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// The `\r\n` that ends a bulk started with [`bulk_header`].
#[inline]
pub fn bulk_trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// `$-1\r\n`: the null bulk (GET of a missing key).
#[inline]
pub fn null_bulk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// `*<len>\r\n`: an array header; the caller appends `len` replies after it.
#[inline]
pub fn array_header(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    push_u64(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// `*-1\r\n`: the null array.
#[inline]
pub fn null_array(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*-1\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out);
        out
    }

    #[test]
    fn exact_bytes() {
        assert_eq!(encoded(ok), b"+OK\r\n");
        assert_eq!(encoded(|out| simple_string(out, b"PONG")), b"+PONG\r\n");
        assert_eq!(
            encoded(|out| error(out, b"ERR syntax error")),
            b"-ERR syntax error\r\n"
        );
        assert_eq!(
            encoded(|out| error(out, b"ERR bad\r\nname")),
            b"-ERR bad  name\r\n"
        );
        assert_eq!(encoded(|out| integer(out, 0)), b":0\r\n");
        assert_eq!(encoded(|out| integer(out, -2)), b":-2\r\n");
        assert_eq!(
            encoded(|out| integer(out, i64::MIN)),
            b":-9223372036854775808\r\n"
        );
        assert_eq!(
            encoded(|out| integer(out, i64::MAX)),
            b":9223372036854775807\r\n"
        );
        assert_eq!(encoded(|out| bulk(out, b"hello")), b"$5\r\nhello\r\n");
        assert_eq!(encoded(|out| bulk(out, b"")), b"$0\r\n\r\n");
        assert_eq!(encoded(|out| bulk(out, b"a\r\nb")), b"$4\r\na\r\nb\r\n");
        assert_eq!(encoded(null_bulk), b"$-1\r\n");
        assert_eq!(encoded(null_array), b"*-1\r\n");
        let array = encoded(|out| {
            array_header(out, 3);
            bulk(out, b"a");
            null_bulk(out);
            integer(out, 10);
        });
        assert_eq!(array, b"*3\r\n$1\r\na\r\n$-1\r\n:10\r\n");
        let pieces = encoded(|out| {
            bulk_header(out, 6);
            out.extend_from_slice(b"abc");
            out.extend_from_slice(b"def");
            bulk_trailer(out);
        });
        assert_eq!(pieces, b"$6\r\nabcdef\r\n");
    }

    #[test]
    fn bulk_of_every_small_length() {
        for len in 0..300 {
            let value = vec![b'v'; len];
            let mut expected = format!("${len}\r\n").into_bytes();
            expected.extend_from_slice(&value);
            expected.extend_from_slice(b"\r\n");
            assert_eq!(encoded(|out| bulk(out, &value)), expected, "length {len}");
        }
    }

    #[test]
    fn every_small_integer() {
        for value in 0..1_000u64 {
            assert_eq!(
                encoded(|out| push_u64(out, value)),
                value.to_string().into_bytes()
            );
        }
    }

    #[test]
    fn integers_at_digit_boundaries() {
        let mut power: u64 = 1;
        loop {
            for value in [power - 1, power, power + 1] {
                assert_eq!(
                    encoded(|out| push_u64(out, value)),
                    value.to_string().into_bytes()
                );
            }
            match power.checked_mul(10) {
                Some(next) => power = next,
                None => break,
            }
        }
        assert_eq!(
            encoded(|out| push_u64(out, u64::MAX)),
            u64::MAX.to_string().into_bytes()
        );
    }

    proptest! {
        #[test]
        fn integer_formatting_matches_std(value in any::<i64>()) {
            prop_assert_eq!(encoded(|out| push_i64(out, value)), value.to_string().into_bytes());
        }
    }
}
