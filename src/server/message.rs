//! What travels through the rings: [`Request`] (reactor → worker) and [`Reply`] (worker →
//! reactor). Both are fixed-size values; small keys and values travel inline in the slot, large
//! ones as an owned heap buffer ([`Bytes`]), so the hot path allocates nothing for small requests.
//!
//! ```text
//!  Request (112 bytes)                                   Reply (72 bytes)
//!  +---------+-----+------+----------+                   +---------+-----+------+---------+
//!  | ConnId  | seq | part | hash u64 |                   | ConnId  | seq | part | outcome |
//!  | idx,gen | u32 | u16  |          |                   | idx,gen | u32 | u16  | 2 B     |
//!  +---------+-----+------+----------+                   +---------+-----+------+---------+
//!  | key (≤22 B inline) | value (≤38 B inline) | op (24 B) |  | int i64 | data (≤46 B inline) |
//! ```
//!
//! A request says what it carries: [`Op`] holds each operation's own arguments (SET's
//! [`SetArgs`], EXPIRE's [`ExpireArgs`], SCAN's [`ScanArgs`], ...). A reply says what happened:
//! an [`Outcome`], with an [`ErrorKind`] when the operation failed. The worker never words an
//! answer; each protocol's front end does (`front::resp::words`, `front::capnp::words`).
//!
//! This module imports nothing from the rest of the server.

use std::mem::size_of;

use crate::proto::command::Expiry;
use crate::store::StoreError;

/// A byte string of at most `N` bytes stored inline, or any length on the heap.
#[derive(Clone, PartialEq, Eq)]
pub enum Bytes<const N: usize> {
    /// Short: `len` bytes of `data` are meaningful.
    Inline {
        /// How many bytes of `data` are used (`<= N`).
        len: u8,
        /// The bytes.
        data: [u8; N],
    },
    /// Long: owned heap copy.
    Heap(Box<[u8]>),
}

impl<const N: usize> Bytes<N> {
    const _FITS_U8: () = assert!(N <= u8::MAX as usize);

    /// An empty string.
    #[inline]
    pub const fn empty() -> Self {
        Bytes::Inline {
            len: 0,
            data: [0; N],
        }
    }

    /// Copies `bytes`: inline when they fit, else one heap allocation.
    #[inline]
    pub fn copy_from(bytes: &[u8]) -> Self {
        if bytes.len() <= N {
            let mut data = [0; N];
            copy_short(&mut data, bytes);
            Bytes::Inline {
                len: bytes.len() as u8,
                data,
            }
        } else {
            Bytes::Heap(bytes.into())
        }
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Inline { len, data } => &data[..usize::from(*len).min(N)],
            Bytes::Heap(bytes) => bytes,
        }
    }
}

/// Copies `from` (at most `N` bytes) to the start of `to` with at most two fixed-size copies
/// that overlap in the middle, instead of a variable-length `copy_from_slice`, which compiles to
/// a call of `memcpy` (call and dispatch cost more than the copy for a 16-byte key, and it
/// happens twice per request: key and value; `benches/iai_request.rs` counts the whole path).
#[inline(always)]
fn copy_short<const N: usize>(to: &mut [u8; N], from: &[u8]) {
    let len = from.len();
    debug_assert!(len <= N);
    if len >= 16 && N >= 16 {
        // 16..=N: whole 16-byte blocks, then the last 16 bytes (overlapping the one before).
        let mut at = 0;
        while at + 16 < len {
            to[at..at + 16].copy_from_slice(&from[at..at + 16]);
            at += 16;
        }
        to[len - 16..len].copy_from_slice(&from[len - 16..len]);
    } else if len >= 8 && N >= 8 {
        to[..8].copy_from_slice(&from[..8]);
        to[len - 8..len].copy_from_slice(&from[len - 8..len]);
    } else if len >= 4 && N >= 4 {
        to[..4].copy_from_slice(&from[..4]);
        to[len - 4..len].copy_from_slice(&from[len - 4..len]);
    } else {
        for (to, from) in to.iter_mut().zip(from) {
            *to = *from;
        }
    }
}

impl<const N: usize> std::fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

/// Names a connection across the rings: its slab index and the generation of that slot, so a
/// reply for a connection that closed (and whose slot was reused) is recognised and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnId {
    /// Index in the reactor's connection slab.
    pub index: u32,
    /// Incremented each time the slot gets a new connection.
    pub generation: u32,
}

/// The operation a worker performs on its shard, with the arguments it needs besides the
/// request's key and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// GET: bulk or nil.
    Get,
    /// GETDEL: bulk or nil.
    GetDel,
    /// GETV: the value and its version ([`Outcome::ValueVersion`]) or nil.
    GetV,
    /// EXISTS (one key of it): 1 or 0.
    Exists,
    /// DEL / UNLINK (one key of it): 1 or 0.
    Del,
    /// STRLEN.
    StrLen,
    /// TTL (seconds, rounded as Redis does).
    Ttl,
    /// PTTL.
    PTtl,
    /// TYPE: `string` or `none`.
    Type,
    /// PERSIST.
    Persist,
    /// APPEND the request's value.
    Append,
    /// INCRBY this much (INCR, DECR and DECRBY become this, except DECRBY of `i64::MIN`).
    IncrBy(i64),
    /// DECRBY this much (kept apart for its own overflow error).
    DecrBy(i64),
    /// SET and its family (SETNX, SETEX, PSETEX, MSET, Cap'n Proto's `set` without a condition
    /// on the value or version): write the request's value.
    Set(SetArgs),
    /// A write on a condition that needs more than a few bytes to say: SET IFEQ, CAS, Cap'n
    /// Proto's `set` with `ifEqual` or `ifVersion` and its `cas`. Boxed (one allocation) so
    /// that these rare requests do not make every ring slot larger.
    SetIf(Box<SetIf>),
    /// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT and Cap'n Proto's `expire`.
    Expire(ExpireArgs),
    /// GETEX: the value, and what to do to the deadline ([`Expiry::Keep`] is not used).
    GetEx(Expiry),
    /// SCAN on this worker: one page. The MATCH pattern, if any, is the request's value.
    Scan(ScanArgs),
    /// KEYS on this worker: the request's value is the pattern; the answer is an
    /// [`Outcome::KeyList`].
    Keys,
    /// DBSIZE (this worker's part): the key count.
    DbSize,
    /// FLUSHDB / FLUSHALL (this worker's part).
    Flush,
    /// INFO: this worker's `info::WorkerStats`, packed into the reply's data.
    Stats,
    /// WATCH: the key's version as [`Outcome::Integer`] when it exists; when it does not,
    /// [`Outcome::Nil`] with the shard's last version in `int` (see [`Op::CheckVersion`]).
    Version,
    /// EXEC after WATCH: 1 if the key is as WATCH saw it, else 0 (see [`Watched`]).
    CheckVersion(Watched),
    /// RENAME and COPY's read: the value with its deadline ([`Outcome::Dumped`]) or nil.
    Dump,
    /// An answer the coordinator decided (MSETNX's 1 / 0, RENAME's OK, EXEC's abort): the
    /// worker sends it back as it is, so it takes its place in the reply order like any other.
    Answer {
        /// What to answer.
        outcome: Outcome,
        /// Its integer.
        int: i64,
    },
}

/// What WATCH saw of a key, for [`Op::CheckVersion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watched {
    /// The key existed with this version. Every write gives a key a new version (unique in its
    /// shard), so an equal version means no write since.
    Version(u64),
    /// The key did not exist, and the shard's last version was this. A key created and
    /// deleted since leaves no version behind, so the check asks that no key of the shard was
    /// written since: exact for the created-and-deleted case, conservative (a spurious abort)
    /// when another key of the same worker was written.
    Absent(u64),
}

impl Op {
    /// Whether the operation only reads (the coordinator's locks let readers share a key).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Op::Get
                | Op::GetV
                | Op::Exists
                | Op::StrLen
                | Op::Ttl
                | Op::PTtl
                | Op::Type
                | Op::Version
                | Op::CheckVersion(_)
                | Op::Dump
                | Op::Keys
                | Op::DbSize
                | Op::Scan(_)
                | Op::Stats
        )
    }
}

/// SET's options, as the RESP parser and the Cap'n Proto front end both give them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetArgs {
    /// What the write does to the key's deadline ([`Expiry::Unchanged`] means [`Expiry::Clear`]).
    pub expiry: Expiry,
    /// When the write happens.
    pub condition: SetCondition,
    /// GET: answer the old value (or nil) instead of whether the write happened.
    pub return_old: bool,
}

impl SetArgs {
    /// A plain SET: always write, clear any deadline, answer whether it was written.
    pub const PLAIN: SetArgs = SetArgs {
        expiry: Expiry::Clear,
        condition: SetCondition::Always,
        return_old: false,
    };
}

/// When a [`Op::Set`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetCondition {
    /// No condition.
    Always,
    /// NX: only if the key does not exist.
    IfAbsent,
    /// XX: only if the key exists.
    IfPresent,
}

/// A write on a condition about the key's current value or version ([`Op::SetIf`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetIf {
    /// What the key must hold for the write to happen.
    pub expected: Expected,
    /// What the write does to the key's deadline.
    pub expiry: Expiry,
    /// Answer the old value (or nil) instead of whether the write happened.
    pub return_old: bool,
}

/// What the key must hold for an [`Op::SetIf`] to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// IFEQ: the key exists and its value is these bytes.
    Value(Box<[u8]>),
    /// CAS: the key exists and its version is this one (the store's versions are below 2^56,
    /// so a larger one never matches).
    Version(u64),
}

/// EXPIRE's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpireArgs {
    /// The relative time in ms (may be ≤ 0: the key is deleted), or with `absolute` the Unix
    /// time in ms.
    pub ms: i64,
    /// EXPIREAT / PEXPIREAT: `ms` is a Unix time.
    pub absolute: bool,
    /// NX / XX / GT / LT.
    pub only_if: ExpireIf,
}

/// EXPIRE's conditions on the key's current deadline (Redis 7). No deadline counts as infinite,
/// so GT never sets a deadline on a key without one. The front end refuses NX with any other,
/// and GT with LT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireIf {
    /// NX: only if the key has no deadline.
    pub no_deadline: bool,
    /// XX: only if the key has a deadline.
    pub has_deadline: bool,
    /// GT: only if the new deadline is later than the current one.
    pub later: bool,
    /// LT: only if the new deadline is earlier than the current one.
    pub earlier: bool,
}

impl ExpireIf {
    /// Whether any condition is set.
    pub fn any(self) -> bool {
        self.no_deadline || self.has_deadline || self.later || self.earlier
    }
}

/// SCAN's arguments for one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanArgs {
    /// The shard's own cursor (the client's cursor divided by the worker count).
    pub shard_cursor: u64,
    /// COUNT: keys to look at (the worker caps it at `worker::SCAN_COUNT_MAX`).
    pub count: u32,
    /// MATCH was given: the request's value is the pattern.
    pub has_pattern: bool,
    /// TYPE asked for `string` or was not given; otherwise nothing is emitted, but the scan
    /// walks on.
    pub type_matches: bool,
}

/// Appends `key` to a packed key list (`u32` LE length, then the bytes).
pub fn pack_key(packed: &mut Vec<u8>, key: &[u8]) {
    packed.extend_from_slice(&(key.len() as u32).to_le_bytes());
    packed.extend_from_slice(key);
}

/// The keys of a packed key list (see [`pack_key`]); stops at a malformed tail.
pub fn packed_keys(packed: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = packed;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let key = tail.get(..len)?;
        rest = &tail[len..];
        Some(key)
    })
}

/// Inline capacity of a key in a request (redis-benchmark's `key:000000012345` is 16 bytes).
pub const KEY_INLINE_BYTES: usize = 22;
/// Inline capacity of a value in a request (redis-benchmark's `-d 32` fits).
pub const VALUE_INLINE_BYTES: usize = 38;
/// Inline capacity of a reply's data.
pub const REPLY_INLINE_BYTES: usize = 46;

/// One request for one key (or one worker's part of a broadcast such as DBSIZE).
#[derive(Debug)]
pub struct Request {
    /// Who asked.
    pub conn: ConnId,
    /// The connection's sequence number of the command this belongs to.
    pub seq: u32,
    /// Which part of a multi-key command (0 for single-key commands).
    pub part: u16,
    /// `store::hash_key(key)`, computed once by the reactor (0 for requests without a key).
    pub hash: u64,
    /// The key.
    pub key: Bytes<KEY_INLINE_BYTES>,
    /// The value (SET, APPEND), or the pattern (SCAN's MATCH, KEYS).
    pub value: Bytes<VALUE_INLINE_BYTES>,
    /// What to do.
    pub op: Op,
}

/// What became of a [`Request`]: the shape of its [`Reply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done, nothing to report (FLUSH).
    Ok,
    /// The key does not exist (or, for a version condition, no longer exists).
    Nil,
    /// The integer `int`.
    Integer,
    /// The value `data`.
    Bulk,
    /// A status word `data` (TYPE's `string` or `none`).
    Simple,
    /// A write happened; `int` is the key's new version.
    Stored,
    /// A conditional write did not happen: the key exists but fails the condition (or, for NX
    /// and XX, exists or does not).
    NotStored,
    /// SCAN's page: `int` is the client's next cursor, `data` the packed keys.
    KeyPage,
    /// KEYS (one worker's part): the keys packed in `data`.
    KeyList,
    /// GETV: the value `data` and its version `int`.
    ValueVersion,
    /// RENAME / COPY's read: the value `data` and its deadline `int` (Unix ms, 0 for none).
    Dumped,
    /// EXEC after WATCH: `int` 1 if every watched key was unchanged and the transaction runs,
    /// 0 if one had changed and nothing ran (RESP: a nil array).
    Verdict,
    /// The operation failed.
    Error(ErrorKind),
}

/// Why an operation failed. Each protocol words it (RESP in Redis's words, Cap'n Proto as an
/// error code and a message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The value is not a decimal 64-bit integer (INCR family).
    NotInteger,
    /// The increment would overflow a 64-bit integer.
    Overflow,
    /// DECRBY with `i64::MIN`, whose negation does not exist.
    DecrementOverflow,
    /// A key or value is larger than the store's limit.
    TooLarge,
    /// The store could not get memory.
    OutOfMemory,
    /// A relative expiry that leaves the 64-bit range once added to the clock. The wording
    /// names the command, which only the front end knows.
    InvalidExpireTime,
    /// SCAN's next cursor does not fit in 64 bits.
    ScanCursorOverflow,
    /// RENAME of a key that does not exist.
    NoSuchKey,
    /// A bug: a request that should never reach where it did.
    Internal,
}

impl From<StoreError> for ErrorKind {
    fn from(error: StoreError) -> ErrorKind {
        match error {
            StoreError::NotAnInteger => ErrorKind::NotInteger,
            StoreError::Overflow => ErrorKind::Overflow,
            StoreError::DecrementOverflow => ErrorKind::DecrementOverflow,
            StoreError::TooLarge { .. } => ErrorKind::TooLarge,
            StoreError::OutOfMemory => ErrorKind::OutOfMemory,
        }
    }
}

/// The answer to one [`Request`].
#[derive(Debug)]
pub struct Reply {
    /// Copied from the request.
    pub conn: ConnId,
    /// Copied from the request.
    pub seq: u32,
    /// Copied from the request.
    pub part: u16,
    /// What happened.
    pub outcome: Outcome,
    /// Integer payload.
    pub int: i64,
    /// Bytes payload (value, status word, packed keys).
    pub data: Bytes<REPLY_INLINE_BYTES>,
}

impl Reply {
    /// A reply with `outcome` and no payload, for `request`.
    #[inline]
    pub fn to(request: &Request, outcome: Outcome) -> Reply {
        Reply {
            conn: request.conn,
            seq: request.seq,
            part: request.part,
            outcome,
            int: 0,
            data: Bytes::empty(),
        }
    }
}

// The ring slots: a Request is 112 bytes (its `Op` fits in 24 bytes, see `Op::SetIf`), a Reply 72.
const _: () = assert!(size_of::<Op>() <= 24);
const _: () = assert!(size_of::<Request>() <= 112);
const _: () = assert!(size_of::<Reply>() <= 72);
const _: () = assert!(size_of::<Bytes<KEY_INLINE_BYTES>>() == 24);
const _: () = assert!(size_of::<Bytes<VALUE_INLINE_BYTES>>() == 40);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_inline_and_heap() {
        let short = Bytes::<KEY_INLINE_BYTES>::copy_from(b"key:000000012345");
        assert!(matches!(short, Bytes::Inline { .. }));
        assert_eq!(short.as_slice(), b"key:000000012345");
        let long = Bytes::<KEY_INLINE_BYTES>::copy_from(&[7u8; 100]);
        assert!(matches!(long, Bytes::Heap(_)));
        assert_eq!(long.as_slice(), &[7u8; 100][..]);
        let exact = Bytes::<KEY_INLINE_BYTES>::copy_from(&[1u8; KEY_INLINE_BYTES]);
        assert!(matches!(exact, Bytes::Inline { .. }));
        assert_eq!(Bytes::<4>::empty().as_slice(), b"");
    }

    /// Every length the inline form takes, in every inline size used, copies exactly (the
    /// short copy's overlapping blocks cover each length class: 0-3, 4-7, 8-15, 16 and up).
    #[test]
    fn bytes_inline_copies_every_length() {
        fn check<const N: usize>() {
            let source: Vec<u8> = (1..=N as u8).collect();
            for len in 0..=N {
                let bytes = Bytes::<N>::copy_from(&source[..len]);
                assert!(matches!(bytes, Bytes::Inline { .. }), "length {len} of {N}");
                assert_eq!(bytes.as_slice(), &source[..len], "length {len} of {N}");
                if let Bytes::Inline { data, .. } = bytes {
                    assert!(
                        data[len..].iter().all(|&byte| byte == 0),
                        "tail of {len}/{N}"
                    );
                }
            }
        }
        check::<KEY_INLINE_BYTES>();
        check::<VALUE_INLINE_BYTES>();
        check::<REPLY_INLINE_BYTES>();
        check::<3>();
        check::<16>();
    }

    #[test]
    fn packed_keys_round_trip() {
        let mut packed = Vec::new();
        for key in [&b"a"[..], b"", b"key:123"] {
            pack_key(&mut packed, key);
        }
        let keys: Vec<&[u8]> = packed_keys(&packed).collect();
        assert_eq!(keys, [&b"a"[..], b"", b"key:123"]);
        // A truncated tail is ignored, never read past.
        assert_eq!(packed_keys(&packed[..packed.len() - 1]).count(), 2);
        assert_eq!(packed_keys(&[1, 0]).count(), 0);
    }
}
