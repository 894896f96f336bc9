//! The byte layout of one record, read and written through plain slices (no `unsafe`).
//!
//! A record is key, value and a small header, padded at its low end to a multiple of
//! [`RECORD_ALIGN`] (4) bytes, because the 4-byte handle counts positions in 4-byte units (see
//! `arena.rs`). The header sits at the record's *high* end, because the log is walked downwards
//! in memory: given the address where a record ends, the walker reads the last 8 bytes (version
//! and flags), learns the header's shape, then the lengths, then the record's start (rounded down
//! to the alignment), which is where the next record ends.
//!
//! ```text
//!  low address                                                                  high address
//!  +---------+-------------+-----------+-----------+---------+------------+---------+-------+
//!  | padding | value bytes | key bytes | value_len | key_len | expiry_ms  | version | flags |
//!  | 0..=3 B |  value_len  |  key_len  |  1/2/4 B  | 1/2/4 B | 8 B or     |  7 B    |  1 B  |
//!  | (zero)  |             |           |    LE     |   LE    | absent, LE |  LE     |       |
//!  +---------+-------------+-----------+-----------+---------+------------+---------+-------+
//!  ^ record start (4-aligned)                                  the last 8 bytes are one  ^
//!                                           little-endian u64: flags << 56 | version     |
//!                                                       record end (4-aligned; the handle
//!                                                                      names this end) ^
//!
//!  flags: bit 0     DEAD: the table no longer points here (overwritten, deleted, relocated)
//!         bit 1     EXPIRY: the 8-byte expiry field is present (its value 0 means "no deadline")
//!         bits 2-3  width code of key_len   (0: 1 byte, 1: 2 bytes, 2: 4 bytes)
//!         bits 4-5  width code of value_len (same codes)
//! ```
//!
//! A 10-byte key with a 32-byte value and no deadline takes 8 + 1 + 1 = 10 header bytes,
//! 52 in all, with no padding. The expiry field exists only on records that were written with a
//! deadline; giving a deadline to a record without the field rewrites the record. The version
//! has 56 bits ([`MAX_VERSION`]): at ten million writes a second a shard would run out after
//! 228 years.

/// The table no longer points at this record.
pub(crate) const FLAG_DEAD: u8 = 1;
/// The 8-byte expiry field is present.
const FLAG_EXPIRY: u8 = 2;
const KEY_WIDTH_SHIFT: u32 = 2;
const VALUE_WIDTH_SHIFT: u32 = 4;

/// The largest header: flags and version, expiry and two 4-byte lengths.
pub(crate) const MAX_HEADER_BYTES: usize = 8 + 8 + 4 + 4;

/// Records start and end at multiples of this many bytes (the handle's unit).
pub(crate) const RECORD_ALIGN: usize = 4;

/// The largest version a record can carry: 56 bits, the rest of the word holds the flags.
pub(crate) const MAX_VERSION: u64 = (1 << 56) - 1;

const VERSION_FLAGS_BYTES: usize = 8;

/// A decoded header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) flags: u8,
    pub(crate) version: u64,
    /// Absolute deadline in ms; 0 means none (also when the field is absent).
    pub(crate) expiry_ms: u64,
    pub(crate) key_len: usize,
    pub(crate) value_len: usize,
    pub(crate) header_len: usize,
}

impl Header {
    /// Bytes the record takes in its segment, padding included.
    pub(crate) fn record_bytes(&self) -> usize {
        padded(self.header_len + self.key_len + self.value_len)
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.flags & FLAG_DEAD != 0
    }

    pub(crate) fn has_expiry_field(&self) -> bool {
        self.flags & FLAG_EXPIRY != 0
    }

    /// True when the record has a deadline and `now_ms` has reached it (Redis: a key with
    /// deadline D is gone at D).
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.expiry_ms != 0 && now_ms >= self.expiry_ms
    }

    /// Index in the tail slice (see [`decode`]) where the key starts.
    pub(crate) fn key_start(&self, tail_len: usize) -> usize {
        tail_len - self.header_len - self.key_len
    }

    /// Index in the tail slice where the value starts (after the padding).
    pub(crate) fn value_start(&self, tail_len: usize) -> usize {
        tail_len - self.header_len - self.key_len - self.value_len
    }

    /// Index in the tail slice where the record (its padding) starts.
    pub(crate) fn record_start(&self, tail_len: usize) -> usize {
        tail_len - self.record_bytes()
    }
}

fn width_code(len: usize) -> (u8, usize) {
    if len <= u8::MAX as usize {
        (0, 1)
    } else if len <= u16::MAX as usize {
        (1, 2)
    } else {
        (2, 4)
    }
}

fn width_of_code(code: u8) -> usize {
    match code & 3 {
        0 => 1,
        1 => 2,
        _ => 4,
    }
}

fn padded(bytes: usize) -> usize {
    bytes.next_multiple_of(RECORD_ALIGN)
}

/// Bytes of a record with these lengths, padding included.
pub(crate) fn record_bytes(key_len: usize, value_len: usize, expiry_field: bool) -> usize {
    padded(header_bytes(key_len, value_len, expiry_field) + key_len + value_len)
}

fn header_bytes(key_len: usize, value_len: usize, expiry_field: bool) -> usize {
    VERSION_FLAGS_BYTES
        + if expiry_field { 8 } else { 0 }
        + width_code(key_len).1
        + width_code(value_len).1
}

/// Write a header into `buffer` in memory order (lowest address first); returns its length.
/// `expiry_ms` of `None` leaves the expiry field out. The padding is not part of the header
/// (the arena writes it).
pub(crate) fn encode_header(
    buffer: &mut [u8; MAX_HEADER_BYTES],
    key_len: usize,
    value_len: usize,
    version: u64,
    expiry_ms: Option<u64>,
) -> usize {
    debug_assert!(key_len <= u32::MAX as usize && value_len <= u32::MAX as usize);
    let (key_code, key_width) = width_code(key_len);
    let (value_code, value_width) = width_code(value_len);
    let mut at = 0;
    buffer[at..at + value_width].copy_from_slice(&(value_len as u32).to_le_bytes()[..value_width]);
    at += value_width;
    buffer[at..at + key_width].copy_from_slice(&(key_len as u32).to_le_bytes()[..key_width]);
    at += key_width;
    let mut flags = (key_code << KEY_WIDTH_SHIFT) | (value_code << VALUE_WIDTH_SHIFT);
    if let Some(expiry_ms) = expiry_ms {
        buffer[at..at + 8].copy_from_slice(&expiry_ms.to_le_bytes());
        at += 8;
        flags |= FLAG_EXPIRY;
    }
    buffer[at..at + 8].copy_from_slice(&version_word(version, flags).to_le_bytes());
    at += 8;
    debug_assert_eq!(at, header_bytes(key_len, value_len, expiry_ms.is_some()));
    at
}

/// A little-endian length of 1, 2 or 4 bytes (the whole of `bytes`), without a variable-length
/// copy (which compiles to a call of `memcpy`).
fn read_le(bytes: &[u8]) -> usize {
    match *bytes {
        [byte] => usize::from(byte),
        [low, high] => usize::from(u16::from_le_bytes([low, high])),
        _ => u32::from_le_bytes(bytes.try_into().expect("1, 2 or 4 bytes")) as usize,
    }
}

fn read_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fn version_word(version: u64, flags: u8) -> u64 {
    assert!(version <= MAX_VERSION, "record versions have 56 bits");
    (u64::from(flags) << 56) | version
}

/// Decode the header of the record that ends at the end of `tail`.
pub(crate) fn decode(tail: &[u8]) -> Header {
    let header = decode_raw(tail);
    debug_assert!(
        header.record_bytes() <= tail.len(),
        "record runs past its segment"
    );
    header
}

fn decode_raw(tail: &[u8]) -> Header {
    let end = tail.len();
    let word = read_u64(&tail[end - VERSION_FLAGS_BYTES..end]);
    let flags = (word >> 56) as u8;
    let version = word & MAX_VERSION;
    let mut at = end - VERSION_FLAGS_BYTES;
    let mut expiry_ms = 0;
    if flags & FLAG_EXPIRY != 0 {
        expiry_ms = read_u64(&tail[at - 8..at]);
        at -= 8;
    }
    let key_width = width_of_code(flags >> KEY_WIDTH_SHIFT);
    let value_width = width_of_code(flags >> VALUE_WIDTH_SHIFT);
    let (key_len, value_len) = if at >= 8 {
        // Both lengths (2 to 8 bytes) sit in the 8 bytes below `at`: one load, two shifts.
        // key_len is the top `key_width` bytes of the little-endian word, value_len the
        // `value_width` bytes under it.
        let word = read_u64(&tail[at - 8..at]);
        let key_len = word >> (64 - 8 * key_width as u32);
        let below_key = word << (8 * key_width as u32);
        let value_len = below_key >> (64 - 8 * value_width as u32);
        (key_len as usize, value_len as usize)
    } else {
        // A record at the very start of its segment with a tiny key and value.
        let key_len = read_le(&tail[at - key_width..at]);
        let value_len = read_le(&tail[at - key_width - value_width..at - key_width]);
        (key_len, value_len)
    };
    at -= key_width + value_width;
    Header {
        flags,
        version,
        expiry_ms,
        key_len,
        value_len,
        header_len: end - at,
    }
}

/// [`decode`] for bytes that may not end a record (a position taken from a client's scan
/// cursor): `None` unless the header is well formed and the record fits in `tail`. Never panics.
pub(crate) fn decode_checked(tail: &[u8]) -> Option<Header> {
    let end = tail.len();
    if end < VERSION_FLAGS_BYTES || end % RECORD_ALIGN != 0 {
        return None;
    }
    let flags = tail[end - 1];
    if flags >> 6 != 0
        || (flags >> KEY_WIDTH_SHIFT) & 3 == 3
        || (flags >> VALUE_WIDTH_SHIFT) & 3 == 3
    {
        return None;
    }
    let widths = VERSION_FLAGS_BYTES
        + if flags & FLAG_EXPIRY != 0 { 8 } else { 0 }
        + width_of_code(flags >> KEY_WIDTH_SHIFT)
        + width_of_code(flags >> VALUE_WIDTH_SHIFT);
    if widths > end {
        return None;
    }
    let header = decode_raw(tail);
    let bytes = (header.header_len as u64) + header.key_len as u64 + header.value_len as u64;
    (bytes.next_multiple_of(RECORD_ALIGN as u64) <= end as u64).then_some(header)
}

pub(crate) fn key<'a>(tail: &'a [u8], header: &Header) -> &'a [u8] {
    let start = header.key_start(tail.len());
    &tail[start..start + header.key_len]
}

pub(crate) fn value<'a>(tail: &'a [u8], header: &Header) -> &'a [u8] {
    let start = header.value_start(tail.len());
    &tail[start..start + header.value_len]
}

pub(crate) fn value_mut<'a>(tail: &'a mut [u8], header: &Header) -> &'a mut [u8] {
    let start = header.value_start(tail.len());
    &mut tail[start..start + header.value_len]
}

pub(crate) fn set_version(tail: &mut [u8], version: u64) {
    let end = tail.len();
    let flags = tail[end - 1];
    tail[end - VERSION_FLAGS_BYTES..end]
        .copy_from_slice(&version_word(version, flags).to_le_bytes());
}

/// Overwrite the expiry field, which must be present.
pub(crate) fn set_expiry(tail: &mut [u8], header: &Header, expiry_ms: u64) {
    debug_assert!(header.has_expiry_field());
    let end = tail.len();
    let at = end - VERSION_FLAGS_BYTES;
    tail[at - 8..at].copy_from_slice(&expiry_ms.to_le_bytes());
}

pub(crate) fn set_dead(tail: &mut [u8]) {
    let end = tail.len();
    tail[end - 1] |= FLAG_DEAD;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(key: &[u8], value: &[u8], version: u64, expiry: Option<u64>) -> Vec<u8> {
        let mut header = [0u8; MAX_HEADER_BYTES];
        let n = encode_header(&mut header, key.len(), value.len(), version, expiry);
        let mut record = Vec::new();
        let raw = n + key.len() + value.len();
        record.resize(raw.next_multiple_of(RECORD_ALIGN) - raw, 0);
        record.extend_from_slice(value);
        record.extend_from_slice(key);
        record.extend_from_slice(&header[..n]);
        assert_eq!(
            record.len(),
            record_bytes(key.len(), value.len(), expiry.is_some())
        );
        record
    }

    #[test]
    fn header_round_trips_for_every_width() {
        for &(key_len, value_len) in &[
            (0, 0),
            (1, 1),
            (3, 2),
            (10, 32),
            (255, 256),
            (300, 70_000),
            (65_536, 1),
            (70_000, 0),
        ] {
            for (expiry, prefix) in [None, Some(0), Some(123_456_789)]
                .into_iter()
                .flat_map(|expiry| [(expiry, 7), (expiry, 0)])
            {
                // With no bytes before it (prefix 0), a record with a short key and value has
                // fewer than 8 bytes below its lengths' end: decode's one-load fast path cannot
                // be used and the byte-wise path must give the same answer.
                let key = vec![b'k'; key_len];
                let value = vec![b'v'; value_len];
                let mut tail = vec![0xAA; prefix];
                tail.extend(build(&key, &value, 42, expiry));
                let header = decode(&tail);
                assert_eq!(header.version, 42);
                assert_eq!(header.expiry_ms, expiry.unwrap_or(0));
                assert_eq!(super::key(&tail, &header), &key[..]);
                assert_eq!(super::value(&tail, &header), &value[..]);
                assert_eq!(header.record_start(tail.len()), prefix);
                assert_eq!(header.record_bytes() % RECORD_ALIGN, 0);
                assert!(!header.is_dead());
                set_dead(&mut tail);
                set_version(&mut tail, 43);
                let header = decode(&tail);
                assert!(header.is_dead());
                assert_eq!(header.version, 43);
            }
        }
    }

    #[test]
    fn small_record_is_52_bytes() {
        assert_eq!(record_bytes(10, 32, false), 52);
        assert_eq!(record_bytes(5, 32, false), 48);
    }

    #[test]
    fn version_keeps_its_56_bits_and_the_flags() {
        let mut tail = build(b"k", b"v", MAX_VERSION, Some(5));
        set_dead(&mut tail);
        let header = decode(&tail);
        assert_eq!(header.version, MAX_VERSION);
        assert!(header.is_dead() && header.has_expiry_field());
        set_version(&mut tail, 7);
        let header = decode(&tail);
        assert_eq!((header.version, header.expiry_ms), (7, 5));
        assert!(header.is_dead());
    }
}
