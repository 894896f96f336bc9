//! The scan cursor: where a [`Shard::scan`](super::Shard::scan) call resumes, packed into one
//! integer a client hands back. Pure functions of integers; the walk itself is `scan.rs`.

use crate::store::record;
use crate::store::{MAX_CLEANER_AGE_BYTES, MAX_SEGMENT_BYTES};

/// A scan cursor is `offset << CURSOR_LAG_BITS | lag`: `offset` is the virtual log offset where
/// the next call resumes, in 4-byte units modulo 2^40 (it is read back as the nearest offset at
/// or behind the end of the log, so it names any point up to 4 TiB behind the end), and `lag`
/// is how far that offset was behind the end of the log when the call returned, rounded down
/// (see [`encode_lag`]). 56 bits in all, so the server can multiply a cursor by its number of
/// workers (up to 256) without overflow.
const CURSOR_OFFSET_BITS: u32 = 40;
const CURSOR_LAG_BITS: u32 = 16;
/// Mantissa bits of the lag (a small floating-point number: 5-bit exponent, 11-bit mantissa,
/// so it is exact below 8 KiB and otherwise at most 1/2048 below the true distance).
const LAG_MANTISSA_BITS: u32 = 11;
/// Bits of a shard's scan cursor: every cursor [`Shard::scan`](super::Shard::scan) returns is below `2^56`.
const SCAN_CURSOR_BITS: u32 = CURSOR_OFFSET_BITS + CURSOR_LAG_BITS;
/// How far behind the end of the log a cursor can point: 4 TiB.
const SCAN_WINDOW_BYTES: u64 = (RECORD_UNIT as u64) << CURSOR_OFFSET_BITS;
pub(super) const RECORD_UNIT: usize = record::RECORD_ALIGN;
const _: () = assert!(SCAN_CURSOR_BITS <= 56);
const _: () = assert!(MAX_CLEANER_AGE_BYTES <= SCAN_WINDOW_BYTES / 2);
const _: () = assert!(MAX_SEGMENT_BYTES as u64 <= SCAN_WINDOW_BYTES / 1024);

/// The lag field of a scan cursor: `bytes` (a distance in the log, a multiple of 4) rounded
/// *down* to a 16-bit float of 4-byte units. Rounding down makes the next call over-estimate
/// how much the log grew, which costs extra visits but never loses a key. Zero only for 0.
fn encode_lag(bytes: u64) -> u64 {
    const MANTISSA: u64 = (1 << LAG_MANTISSA_BITS) - 1;
    let units = bytes / RECORD_UNIT as u64;
    if units <= MANTISSA {
        return units;
    }
    let shift = 63 - units.leading_zeros() - LAG_MANTISSA_BITS;
    let exponent = shift as u64 + 1;
    if exponent >= 1 << (CURSOR_LAG_BITS - LAG_MANTISSA_BITS) {
        return (1 << CURSOR_LAG_BITS) - 1; // the largest value, still below `bytes`
    }
    (exponent << LAG_MANTISSA_BITS) | ((units >> shift) & MANTISSA)
}

/// The distance in bytes a lag field stands for (at most the distance that was encoded).
fn decode_lag(field: u64) -> u64 {
    const MANTISSA: u64 = (1 << LAG_MANTISSA_BITS) - 1;
    let field = field & ((1 << CURSOR_LAG_BITS) - 1);
    let (exponent, mantissa) = (field >> LAG_MANTISSA_BITS, field & MANTISSA);
    let units = if exponent == 0 {
        mantissa
    } else {
        ((1 << LAG_MANTISSA_BITS) | mantissa) << (exponent - 1)
    };
    units * RECORD_UNIT as u64
}

pub(super) fn encode_scan_cursor(offset: u64, lag: u64) -> u64 {
    let units = (offset / RECORD_UNIT as u64) & ((1 << CURSOR_OFFSET_BITS) - 1);
    (units << CURSOR_LAG_BITS) | encode_lag(lag)
}

/// `(offset, lag)` of a scan cursor, with `end` the end of the log now. Any `u64` decodes to
/// an offset at or behind `end`; only the low 56 bits are read.
pub(super) fn decode_scan_cursor(cursor: u64, end: u64) -> (u64, u64) {
    let mask = (1 << CURSOR_OFFSET_BITS) - 1;
    let units = (cursor >> CURSOR_LAG_BITS) & mask;
    let behind = (end / RECORD_UNIT as u64).wrapping_sub(units) & mask;
    (
        end.saturating_sub(behind * RECORD_UNIT as u64),
        decode_lag(cursor),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_rounds_down_by_at_most_one_part_in_2048() {
        let mut bytes = 0u64;
        while bytes < 1 << 44 {
            let back = decode_lag(encode_lag(bytes));
            assert!(back <= bytes, "{bytes} -> {back}");
            assert!(bytes - back <= bytes / 2048 + 3, "{bytes} -> {back}");
            assert_eq!(encode_lag(bytes) == 0, bytes < 4);
            assert!(encode_lag(bytes) < 1 << CURSOR_LAG_BITS);
            bytes = bytes * 9 / 8 + 4;
        }
        // Beyond the largest value (about 2^44, four times the window) the lag saturates.
        assert!(decode_lag(encode_lag(u64::MAX)) >= 1 << 43);
    }

    #[test]
    fn cursors_name_offsets_up_to_the_window_behind_the_end() {
        for end in [0u64, 4, 1 << 20, 5 << 40, (1 << 50) + 12] {
            for behind in [0u64, 4, 4096, SCAN_WINDOW_BYTES - 4] {
                let Some(offset) = end.checked_sub(behind) else {
                    continue;
                };
                let cursor = encode_scan_cursor(offset, behind);
                assert!(cursor < 1 << SCAN_CURSOR_BITS);
                assert_eq!(decode_scan_cursor(cursor, end).0, offset);
            }
        }
    }
}
