//! The on-disk format: a file header, then records, each framed with its length, a CRC32C and a
//! sequence number. Pure functions over byte slices; `docs/durability.md` draws the layout.
//!
//! ```text
//! file:   header (64 bytes) | frame | frame | ...
//!
//! header: 0  magic          8  "PICCOLOG" (log) or "PICCOSNP" (snapshot)
//!         8  format version 2  u16 LE, 1 here
//!         10 header bytes   2  u16 LE, 64 here (a later version may append fields)
//!         12 flags          4  0
//!         16 epoch          8  one run of the server (see recovery.rs)
//!         24 worker         4  the worker that wrote the file
//!         28 workers        4  how many workers that run had
//!         32 first seq      8  log: seq of its first record; snapshot: the log seq it starts at
//!         40 version mark   8  the shard's last version when the file was started
//!         48 created ms     8  Unix time
//!         56 slot rule      4  1: worker = slot * workers / 16384 (contiguous ranges)
//!         60 crc32c         4  of bytes 0..60
//!
//! frame:  0  crc32c         4  u32 LE, of everything after it (body length and body)
//!         4  body length    4  u32 LE: bytes after this 8-byte prefix (seq + tag + payload)
//!         8  seq            8  u64 LE
//!         16 tag            1
//!         17 payload        body length - 9
//! ```
//!
//! Payloads (`varint` is LEB128, at most 10 bytes for a u64):
//!
//! | tag | record | payload |
//! |---|---|---|
//! | 0x01 | Set | varint version, varint expiry_ms (0: none), varint key length, key, value (the rest) |
//! | 0x02 | Delete | varint version mark, key (the rest) |
//! | 0x03 | Expire | varint version, varint expiry_ms (0: persist), key (the rest) |
//! | 0x04 | Flush | varint version mark |
//! | 0x05 | SyncMark | varint bytes of this file known durable when the record was written |
//! | 0x0F | SnapshotEnd | varint records, varint version mark |
//! | 0x10-0x1F | reserved for Raft (entry, hard state, truncate suffix, compact prefix, snapshot installed) |
//! | 0x80-0xFF | skippable: a reader that does not know the tag steps over the record |
//!
//! Any other tag is refused as written by a newer Piccolo. Records carry the key, never the
//! slot: recovery computes the slot (CRC16) to route each record to its owner.

use super::varint;
use crate::store::MAX_VALUE_BYTES;

/// The format this code writes. A reader accepts every version up to this one.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of a version-1 file header.
pub const HEADER_BYTES: usize = 64;
/// Magic of a log file.
pub const LOG_MAGIC: [u8; 8] = *b"PICCOLOG";
/// Magic of a snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"PICCOSNP";
/// Slot rule 1: worker = slot * workers / 16384 (the server's `Router::owner`).
pub const SLOT_RULE_RANGES: u32 = 1;
/// Bytes before a record's body: length and checksum.
pub const FRAME_PREFIX_BYTES: usize = 8;
/// The smallest body: seq and tag.
pub const MIN_BODY_BYTES: usize = 9;
/// The largest body: a key and a value of the largest sizes plus the fields.
pub const MAX_BODY_BYTES: usize = 2 * MAX_VALUE_BYTES + 64;

const _: () = assert!(MAX_BODY_BYTES <= u32::MAX as usize);
const _: () = assert!(HEADER_BYTES == 60 + 4);

/// Record tags.
pub mod tag {
    /// A key's whole post-state: value, version, absolute expiry.
    pub const SET: u8 = 0x01;
    /// A key deleted.
    pub const DELETE: u8 = 0x02;
    /// A key's expiry and version changed, value unchanged (applied only if the key exists).
    pub const EXPIRE: u8 = 0x03;
    /// Every key of the writing worker deleted.
    pub const FLUSH: u8 = 0x04;
    /// How many bytes of this file a sync had made durable when the record was written: damage
    /// below that offset is corruption, damage past it a torn tail.
    pub const SYNC_MARK: u8 = 0x05;
    /// The last record of a complete snapshot.
    pub const SNAPSHOT_END: u8 = 0x0F;
    /// Reserved: a Raft log entry of one partition (partition, term, index, commands).
    pub const RAFT_ENTRY: u8 = 0x10;
    /// Reserved: a partition's durable term, vote and commit index.
    pub const RAFT_HARD_STATE: u8 = 0x11;
    /// Reserved: a partition's entries from an index on are void (a new leader overwrote them).
    pub const RAFT_TRUNCATE_SUFFIX: u8 = 0x12;
    /// Reserved: a partition's entries up to an index are covered by a snapshot.
    pub const RAFT_COMPACT_PREFIX: u8 = 0x13;
    /// Reserved: a partition's state was replaced by a snapshot from its leader.
    pub const RAFT_SNAPSHOT_INSTALLED: u8 = 0x14;
    /// Tags with this bit may be skipped by a reader that does not know them.
    pub const SKIPPABLE: u8 = 0x80;
}

/// What kind of file a header starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A worker's write-ahead log segment.
    Log,
    /// A worker's snapshot.
    Snapshot,
}

/// A file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// Log or snapshot.
    pub kind: FileKind,
    /// The format the file was written in.
    pub format_version: u16,
    /// The run of the server that wrote it.
    pub epoch: u64,
    /// The worker that wrote it.
    pub worker: u32,
    /// How many workers that run had.
    pub workers: u32,
    /// Log: the seq of its first record. Snapshot: the log seq replay starts from.
    pub first_seq: u64,
    /// The shard's last version when the file was started.
    pub version_mark: u64,
    /// Unix time of creation, ms.
    pub created_ms: u64,
    /// How slots map to workers ([`SLOT_RULE_RANGES`]).
    pub slot_rule: u32,
}

/// Why a header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// Fewer bytes than a header.
    TooShort(usize),
    /// Not a Piccolo data file.
    BadMagic,
    /// Written by a newer Piccolo.
    NewerFormat(u16),
    /// The header's checksum does not match.
    BadChecksum,
    /// A field is out of range.
    Invalid(&'static str),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::TooShort(len) => write!(f, "header cut short ({len} bytes)"),
            HeaderError::BadMagic => f.write_str("not a Piccolo data file (bad magic)"),
            HeaderError::NewerFormat(version) => write!(
                f,
                "format version {version} is newer than this Piccolo reads ({FORMAT_VERSION})"
            ),
            HeaderError::BadChecksum => f.write_str("header checksum mismatch"),
            HeaderError::Invalid(what) => write!(f, "invalid header: {what}"),
        }
    }
}

impl FileHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut bytes = [0u8; HEADER_BYTES];
        bytes[0..8].copy_from_slice(match self.kind {
            FileKind::Log => &LOG_MAGIC,
            FileKind::Snapshot => &SNAPSHOT_MAGIC,
        });
        bytes[8..10].copy_from_slice(&self.format_version.to_le_bytes());
        bytes[10..12].copy_from_slice(&(HEADER_BYTES as u16).to_le_bytes());
        bytes[12..16].copy_from_slice(&0u32.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.epoch.to_le_bytes());
        bytes[24..28].copy_from_slice(&self.worker.to_le_bytes());
        bytes[28..32].copy_from_slice(&self.workers.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.first_seq.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.version_mark.to_le_bytes());
        bytes[48..56].copy_from_slice(&self.created_ms.to_le_bytes());
        bytes[56..60].copy_from_slice(&self.slot_rule.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Reads a header from the start of a file; returns it and its length in bytes (where the
    /// first frame starts).
    pub fn decode(bytes: &[u8]) -> Result<(FileHeader, usize), HeaderError> {
        if bytes.len() < 12 {
            return Err(HeaderError::TooShort(bytes.len()));
        }
        let kind = match &bytes[0..8] {
            magic if magic == LOG_MAGIC => FileKind::Log,
            magic if magic == SNAPSHOT_MAGIC => FileKind::Snapshot,
            _ => return Err(HeaderError::BadMagic),
        };
        let format_version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if format_version > FORMAT_VERSION {
            return Err(HeaderError::NewerFormat(format_version));
        }
        if format_version == 0 {
            return Err(HeaderError::Invalid("format version 0"));
        }
        let header_bytes = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
        if header_bytes != HEADER_BYTES {
            // Version 1 knows one header size; a later version reading this file checks the
            // size its version implies.
            return Err(HeaderError::Invalid("header size"));
        }
        if bytes.len() < HEADER_BYTES {
            return Err(HeaderError::TooShort(bytes.len()));
        }
        let crc = u32::from_le_bytes(bytes[60..64].try_into().expect("4 bytes"));
        if crc != crc32c::crc32c(&bytes[..60]) {
            return Err(HeaderError::BadChecksum);
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let header = FileHeader {
            kind,
            format_version,
            epoch: u64_at(16),
            worker: u32_at(24),
            workers: u32_at(28),
            first_seq: u64_at(32),
            version_mark: u64_at(40),
            created_ms: u64_at(48),
            slot_rule: u32_at(56),
        };
        if header.workers == 0 || header.worker >= header.workers {
            return Err(HeaderError::Invalid("worker out of range"));
        }
        if header.workers > u32::from(crate::proto::slot::SLOT_COUNT) {
            return Err(HeaderError::Invalid("more workers than slots"));
        }
        if header.slot_rule != SLOT_RULE_RANGES {
            return Err(HeaderError::Invalid("unknown slot rule"));
        }
        if header.first_seq == 0 {
            return Err(HeaderError::Invalid("first seq 0"));
        }
        Ok((header, HEADER_BYTES))
    }
}

/// One record, borrowing its key and value from the bytes it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// The key's whole state after a write.
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
        /// The version the write gave it.
        version: u64,
        /// Absolute deadline, ms since the Unix epoch; 0 for none.
        expiry_ms: u64,
    },
    /// The key was deleted.
    Delete {
        /// The key.
        key: &'a [u8],
        /// The shard's last version at the time (recovery raises the counter past it).
        version_mark: u64,
    },
    /// The key's deadline changed (and its version); applied only if the key exists.
    Expire {
        /// The key.
        key: &'a [u8],
        /// The version the change gave the key.
        version: u64,
        /// The new deadline; 0 removes it (PERSIST).
        expiry_ms: u64,
    },
    /// Every key of the writing worker was deleted (FLUSHALL).
    Flush {
        /// The shard's last version at the time.
        version_mark: u64,
    },
    /// This many bytes of the file were durable when the record was written.
    SyncMark {
        /// Durable bytes of the file (header included).
        durable_bytes: u64,
    },
    /// The end of a complete snapshot.
    SnapshotEnd {
        /// Records before this one.
        records: u64,
        /// The shard's last version when the snapshot was sealed.
        version_mark: u64,
    },
    /// A skippable record of a tag this version does not know.
    Skipped {
        /// Its tag.
        tag: u8,
    },
}

impl Record<'_> {
    /// The record's key, if it names one.
    pub fn key(&self) -> Option<&[u8]> {
        match *self {
            Record::Set { key, .. } | Record::Delete { key, .. } | Record::Expire { key, .. } => {
                Some(key)
            }
            _ => None,
        }
    }

    /// The largest version the record mentions (versions and version marks).
    pub fn max_version(&self) -> u64 {
        match *self {
            Record::Set { version, .. } | Record::Expire { version, .. } => version,
            Record::Delete { version_mark, .. }
            | Record::Flush { version_mark }
            | Record::SnapshotEnd { version_mark, .. } => version_mark,
            Record::SyncMark { .. } | Record::Skipped { .. } => 0,
        }
    }

    /// Bytes of the record's body (seq, tag, payload).
    pub fn body_bytes(&self) -> usize {
        let fields = match *self {
            Record::Set {
                key,
                value,
                version,
                expiry_ms,
            } => {
                varint::len(version)
                    + varint::len(expiry_ms)
                    + varint::len(key.len() as u64)
                    + key.len()
                    + value.len()
            }
            Record::Delete { key, version_mark } => varint::len(version_mark) + key.len(),
            Record::Expire {
                key,
                version,
                expiry_ms,
            } => varint::len(version) + varint::len(expiry_ms) + key.len(),
            Record::Flush { version_mark } => varint::len(version_mark),
            Record::SyncMark { durable_bytes } => varint::len(durable_bytes),
            Record::SnapshotEnd {
                records,
                version_mark,
            } => varint::len(records) + varint::len(version_mark),
            Record::Skipped { .. } => 0,
        };
        MIN_BODY_BYTES + fields
    }
}

/// Appends one framed record to `out`; returns the frame's length.
///
/// # Panics
///
/// If the record is larger than [`MAX_BODY_BYTES`] (the store refuses such keys and values
/// first), or is a [`Record::Skipped`] (nothing to write).
#[inline]
pub fn encode(out: &mut Vec<u8>, seq: u64, record: &Record<'_>) -> usize {
    let body_len = record.body_bytes();
    assert!(body_len <= MAX_BODY_BYTES, "record too large");
    let start = out.len();
    out.reserve(FRAME_PREFIX_BYTES + body_len);
    // The checksum's place first, then the length, so one CRC pass covers length and body.
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    match *record {
        Record::Set {
            key,
            value,
            version,
            expiry_ms,
        } => {
            out.push(tag::SET);
            varint::put(out, version);
            varint::put(out, expiry_ms);
            varint::put(out, key.len() as u64);
            out.extend_from_slice(key);
            out.extend_from_slice(value);
        }
        Record::Delete { key, version_mark } => {
            out.push(tag::DELETE);
            varint::put(out, version_mark);
            out.extend_from_slice(key);
        }
        Record::Expire {
            key,
            version,
            expiry_ms,
        } => {
            out.push(tag::EXPIRE);
            varint::put(out, version);
            varint::put(out, expiry_ms);
            out.extend_from_slice(key);
        }
        Record::Flush { version_mark } => {
            out.push(tag::FLUSH);
            varint::put(out, version_mark);
        }
        Record::SyncMark { durable_bytes } => {
            out.push(tag::SYNC_MARK);
            varint::put(out, durable_bytes);
        }
        Record::SnapshotEnd {
            records,
            version_mark,
        } => {
            out.push(tag::SNAPSHOT_END);
            varint::put(out, records);
            varint::put(out, version_mark);
        }
        Record::Skipped { .. } => panic!("a skipped record is not written"),
    }
    debug_assert_eq!(out.len() - start, FRAME_PREFIX_BYTES + body_len);
    let crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    FRAME_PREFIX_BYTES + body_len
}

/// Why bytes did not decode as a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The bytes end inside the frame: this many bytes would be needed in all.
    Incomplete {
        /// Bytes the frame would take (prefix included), if its length field is believed.
        needed: usize,
    },
    /// The length field is impossible (too small or too large).
    BadLength(u32),
    /// The checksum does not match.
    BadChecksum,
    /// The checksum matches but the payload does not parse: written by a buggy or newer writer.
    BadPayload(&'static str),
    /// The checksum matches but the tag is unknown and not skippable (a newer format).
    UnknownTag(u8),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Incomplete { needed } => {
                write!(f, "record cut short (its frame needs {needed} bytes)")
            }
            FrameError::BadLength(len) => write!(f, "impossible record length {len}"),
            FrameError::BadChecksum => f.write_str("record checksum mismatch"),
            FrameError::BadPayload(what) => write!(f, "malformed record: {what}"),
            FrameError::UnknownTag(tag) => {
                write!(
                    f,
                    "unknown record tag {tag:#04x} (written by a newer Piccolo?)"
                )
            }
        }
    }
}

/// A decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The record's sequence number.
    pub seq: u64,
    /// The record.
    pub record: Record<'a>,
    /// Bytes the frame takes (prefix included).
    pub len: usize,
}

/// Decodes the frame at the start of `bytes`. Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < FRAME_PREFIX_BYTES {
        return Err(FrameError::Incomplete {
            needed: FRAME_PREFIX_BYTES + MIN_BODY_BYTES,
        });
    }
    let body_len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if (body_len as usize) < MIN_BODY_BYTES || body_len as usize > MAX_BODY_BYTES {
        return Err(FrameError::BadLength(body_len));
    }
    let len = FRAME_PREFIX_BYTES + body_len as usize;
    if bytes.len() < len {
        return Err(FrameError::Incomplete { needed: len });
    }
    let crc = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let body = &bytes[FRAME_PREFIX_BYTES..len];
    if crc != crc32c::crc32c(&bytes[4..len]) {
        return Err(FrameError::BadChecksum);
    }
    let seq = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
    let record = decode_payload(body[8], &body[9..])?;
    Ok(Frame { seq, record, len })
}

fn decode_payload(tag: u8, payload: &[u8]) -> Result<Record<'_>, FrameError> {
    let mut at = 0;
    let mut field = |what: &'static str| -> Result<u64, FrameError> {
        let (value, used) = varint::get(&payload[at..]).ok_or(FrameError::BadPayload(what))?;
        at += used;
        Ok(value)
    };
    let record = match tag {
        tag::SET => {
            let version = field("set version")?;
            let expiry_ms = field("set expiry")?;
            let key_len = field("set key length")?;
            let rest = &payload[at..];
            if key_len > rest.len() as u64 {
                return Err(FrameError::BadPayload("set key length"));
            }
            let (key, value) = rest.split_at(key_len as usize);
            Record::Set {
                key,
                value,
                version,
                expiry_ms,
            }
        }
        tag::DELETE => {
            let version_mark = field("delete version mark")?;
            Record::Delete {
                key: &payload[at..],
                version_mark,
            }
        }
        tag::EXPIRE => {
            let version = field("expire version")?;
            let expiry_ms = field("expire deadline")?;
            Record::Expire {
                key: &payload[at..],
                version,
                expiry_ms,
            }
        }
        tag::FLUSH => {
            let version_mark = field("flush version mark")?;
            if at != payload.len() {
                return Err(FrameError::BadPayload("flush trailing bytes"));
            }
            Record::Flush { version_mark }
        }
        tag::SYNC_MARK => {
            let durable_bytes = field("sync mark")?;
            if at != payload.len() {
                return Err(FrameError::BadPayload("sync mark trailing bytes"));
            }
            Record::SyncMark { durable_bytes }
        }
        tag::SNAPSHOT_END => {
            let records = field("snapshot record count")?;
            let version_mark = field("snapshot version mark")?;
            if at != payload.len() {
                return Err(FrameError::BadPayload("snapshot end trailing bytes"));
            }
            Record::SnapshotEnd {
                records,
                version_mark,
            }
        }
        tag if tag & tag::SKIPPABLE != 0 => Record::Skipped { tag },
        tag => return Err(FrameError::UnknownTag(tag)),
    };
    if let Record::Set { version, .. } | Record::Expire { version, .. } = record {
        if version == 0 || version > crate::store::MAX_VERSION {
            return Err(FrameError::BadPayload("version out of range"));
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, u64, u64, u8)> {
        (
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..200),
            1..=crate::store::MAX_VERSION,
            prop_oneof![Just(0u64), any::<u64>()],
            0u8..6,
        )
    }

    fn make<'a>(key: &'a [u8], value: &'a [u8], version: u64, expiry: u64, kind: u8) -> Record<'a> {
        match kind {
            0 => Record::Set {
                key,
                value,
                version,
                expiry_ms: expiry,
            },
            1 => Record::Delete {
                key,
                version_mark: version,
            },
            2 => Record::Expire {
                key,
                version,
                expiry_ms: expiry,
            },
            3 => Record::Flush {
                version_mark: version,
            },
            4 => Record::SyncMark {
                durable_bytes: expiry,
            },
            _ => Record::SnapshotEnd {
                records: expiry,
                version_mark: version,
            },
        }
    }

    #[test]
    fn header_round_trip_and_checks() {
        let header = FileHeader {
            kind: FileKind::Snapshot,
            format_version: FORMAT_VERSION,
            epoch: 7,
            worker: 2,
            workers: 3,
            first_seq: 1234,
            version_mark: 99,
            created_ms: 1_750_000_000_000,
            slot_rule: SLOT_RULE_RANGES,
        };
        let bytes = header.encode();
        assert_eq!(FileHeader::decode(&bytes), Ok((header, HEADER_BYTES)));
        for at in 0..HEADER_BYTES {
            let mut bad = bytes;
            bad[at] ^= 0x10;
            assert!(FileHeader::decode(&bad).is_err(), "flip at {at} accepted");
        }
        let mut newer = bytes;
        newer[8] = 2;
        assert_eq!(FileHeader::decode(&newer), Err(HeaderError::NewerFormat(2)));
        assert!(FileHeader::decode(&bytes[..40]).is_err());
    }

    #[test]
    fn a_zero_filled_tail_is_never_a_record() {
        assert_eq!(decode(&[0u8; 64]), Err(FrameError::BadLength(0)));
    }

    #[test]
    fn unknown_tags_are_refused_unless_skippable() {
        for (tag, skippable) in [(0x10u8, false), (0x7f, false), (0x80, true), (0xff, true)] {
            let mut out = Vec::new();
            encode(&mut out, 1, &Record::Flush { version_mark: 1 });
            out[16] = tag;
            // Refresh the checksum as a newer writer would have computed it.
            let crc = crc32c::crc32c(&out[4..]);
            out[0..4].copy_from_slice(&crc.to_le_bytes());
            match decode(&out) {
                Ok(frame) => {
                    assert!(skippable);
                    assert_eq!(frame.record, Record::Skipped { tag });
                }
                Err(error) => {
                    assert!(!skippable);
                    assert_eq!(error, FrameError::UnknownTag(tag));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn round_trip((key, value, version, expiry, kind) in record_strategy(), seq in 1u64..) {
            let record = make(&key, &value, version, expiry, kind);
            let mut out = vec![0xAA; 3];
            let len = encode(&mut out, seq, &record);
            prop_assert_eq!(len, out.len() - 3);
            let frame = decode(&out[3..]).unwrap();
            prop_assert_eq!(frame, Frame { seq, record, len });
        }

        /// Any change of one byte is caught (CRC32C detects every burst of up to 32 bits, and a
        /// changed length either fails its bounds or moves the checksummed span); any cut is
        /// reported as incomplete; nothing panics.
        #[test]
        fn damage_is_detected(
            (key, value, version, expiry, kind) in record_strategy(),
            flip in any::<prop::sample::Index>(),
            xor in 1u8..=255,
            cut in any::<prop::sample::Index>(),
        ) {
            let record = make(&key, &value, version, expiry, kind);
            let mut out = Vec::new();
            encode(&mut out, 42, &record);
            let mut flipped = out.clone();
            let at = flip.index(flipped.len());
            flipped[at] ^= xor;
            prop_assert!(decode(&flipped).is_err(), "xor {:#x} at {} accepted", xor, at);
            let cut = cut.index(out.len());
            let is_incomplete = matches!(decode(&out[..cut]), Err(FrameError::Incomplete { .. }));
            prop_assert!(is_incomplete);
        }

        /// Arbitrary bytes never panic the decoder and never decode to a frame longer than
        /// the input.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(frame) = decode(&bytes) {
                prop_assert!(frame.len <= bytes.len());
            }
            let _ = FileHeader::decode(&bytes);
        }
    }
}
