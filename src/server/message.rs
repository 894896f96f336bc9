//! What travels through the rings: [`Request`] (reactor → worker) and [`Reply`] (worker →
//! reactor). Both are fixed-size values; small keys and values travel inline in the slot, large
//! ones as an owned heap buffer ([`Bytes`]), so the hot path allocates nothing for small requests.
//!
//! ```text
//!  Request (≤ 128 bytes)                         Reply (≤ 128 bytes)
//!  +-----------+-----+------+----+-------+       +-----------+-----+------+------+-----+------+
//!  | ConnId    | seq | part | op | flags |       | ConnId    | seq | part | kind | int | data |
//!  | idx,gen   | u32 | u16  | u8 | u8    |       | idx,gen   | u32 | u16  | u8   | i64 | ≤46B |
//!  +-----------+-----+------+----+-------+       +-----------+-----+------+------+-----+------+
//!  | hash u64 | number i64 | key (≤22 B inline) | value (≤38 B inline) | extra (IFEQ, heap) |
//! ```

use std::mem::size_of;

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
/// a call of `memcpy` (about 15 instructions of call and dispatch for a 16-byte key, and it
/// happens twice per request: key and value).
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

/// The operation a worker performs on its shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// GET: bulk or nil.
    Get,
    /// SET and its family; `flags` hold condition, expiry kind, GET and the reply style.
    Set,
    /// GETDEL: bulk or nil.
    GetDel,
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
    /// INCRBY `number` (INCR, DECR, DECRBY are turned into this by the reactor, except
    /// DECRBY of `i64::MIN`, which is [`Op::DecrBy`]).
    IncrBy,
    /// DECRBY `number` (kept separate for its own overflow error).
    DecrBy,
    /// APPEND `value`.
    Append,
    /// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT: `number` is the relative time in ms (may be
    /// ≤ 0: deletes), or with [`expire_flags::ABSOLUTE`] the Unix time in ms.
    Expire,
    /// GETEX: `flags` is one of [`getex_flags`]; `number` the time in ms.
    GetEx,
    /// PERSIST.
    Persist,
    /// DBSIZE (this worker's part): the key count.
    DbSize,
    /// FLUSHDB / FLUSHALL (this worker's part).
    Flush,
    /// INFO: this worker's [`WorkerStats`], packed into the reply's data.
    Stats,
    /// SCAN on this worker: `number` is the shard's cursor (as `u64` bits), `hash` carries
    /// COUNT, `value` the MATCH pattern when `flags` has [`scan_flags::MATCH`]. The reply is a
    /// [`ReplyKind::KeyPage`] whose `int` is the client's next cursor.
    Scan,
    /// KEYS on this worker: `value` is the pattern; the reply is a [`ReplyKind::KeyList`].
    Keys,
    /// GETV: the value and its version ([`ReplyKind::ValueVersion`]) or nil.
    GetV,
    /// CAS: write `value` if the key's version is `number`; the new version, or nil.
    Cas,
    /// SET for Cap'n Proto: as [`Op::Set`] (same flags), but a write answers the key's new
    /// version (an integer) instead of OK.
    SetVersion,
}

/// SCAN flags.
pub mod scan_flags {
    /// `value` holds a MATCH pattern.
    pub const MATCH: u8 = 1;
    /// TYPE asked for a type other than `string`: emit nothing, but walk on.
    pub const NO_TYPE_MATCH: u8 = 2;
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

/// What a worker reports for INFO (the reply to [`Op::Stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Keys in the shard (expired ones not yet removed included, as Redis's DBSIZE).
    pub keys: u64,
    /// Bytes the shard holds (segments, table, index).
    pub memory_bytes: u64,
    /// Requests executed.
    pub requests: u64,
    /// Batches drained (each: one clock read, one flush, at most one reactor wake-up).
    pub batches: u64,
    /// Times the worker found its ring empty and waited (spin, then park).
    pub idle_waits: u64,
    /// Wake-ups the worker sent to the reactor (`mio::Waker::wake`).
    pub reactor_wakeups: u64,
    /// Keys removed because their deadline passed.
    pub expired_keys: u64,
    /// Idle waits that ended in a park (the reactor had to wake the worker with a futex call);
    /// the rest of `idle_waits` found work while spinning.
    pub parks: u64,
    /// Key lookups by reads (GET, MGET, GETDEL, GETEX, GETV, EXISTS, TYPE, TTL, PTTL) that
    /// found the key.
    pub keyspace_hits: u64,
    /// Key lookups by reads that did not find it.
    pub keyspace_misses: u64,
    /// Keys with a deadline.
    pub expires: u64,
    /// Bytes of live records.
    pub live_bytes: u64,
    /// Bytes of dead records not yet cleaned.
    pub garbage_bytes: u64,
    /// Bytes of the hash table.
    pub table_bytes: u64,
    /// Pages the worker touched ahead of need while idle (`Shard::prefault_step`).
    pub pages_prefaulted: u64,
}

impl WorkerStats {
    /// Fields, in wire order.
    const FIELDS: usize = 15;

    fn fields(&self) -> [u64; Self::FIELDS] {
        [
            self.keys,
            self.memory_bytes,
            self.requests,
            self.batches,
            self.idle_waits,
            self.reactor_wakeups,
            self.expired_keys,
            self.parks,
            self.keyspace_hits,
            self.keyspace_misses,
            self.expires,
            self.live_bytes,
            self.garbage_bytes,
            self.table_bytes,
            self.pages_prefaulted,
        ]
    }

    /// Packs the stats as little-endian `u64`s.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.fields()
            .iter()
            .flat_map(|field| field.to_le_bytes())
            .collect()
    }

    /// Unpacks [`to_bytes`](Self::to_bytes); missing fields read as 0.
    pub fn from_bytes(bytes: &[u8]) -> WorkerStats {
        let mut fields = [0u64; Self::FIELDS];
        for (field, chunk) in fields.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *field = u64::from_le_bytes(word);
        }
        let [
            keys,
            memory_bytes,
            requests,
            batches,
            idle_waits,
            reactor_wakeups,
            expired_keys,
            parks,
            keyspace_hits,
            keyspace_misses,
            expires,
            live_bytes,
            garbage_bytes,
            table_bytes,
            pages_prefaulted,
        ] = fields;
        WorkerStats {
            keys,
            memory_bytes,
            requests,
            batches,
            idle_waits,
            reactor_wakeups,
            expired_keys,
            parks,
            keyspace_hits,
            keyspace_misses,
            expires,
            live_bytes,
            garbage_bytes,
            table_bytes,
            pages_prefaulted,
        }
    }
}

/// SET flags: the condition (bits 0-1).
pub mod set_flags {
    /// No condition.
    pub const ALWAYS: u8 = 0;
    /// NX.
    pub const IF_ABSENT: u8 = 1;
    /// XX.
    pub const IF_PRESENT: u8 = 2;
    /// IFEQ; the expected value is in `Request::extra`.
    pub const IF_EQUAL: u8 = 3;
    /// Mask of the condition bits.
    pub const CONDITION_MASK: u8 = 3;
    /// Expiry (bits 2-3): clear any deadline (plain SET).
    pub const EXPIRY_CLEAR: u8 = 0 << 2;
    /// KEEPTTL.
    pub const EXPIRY_KEEP: u8 = 1 << 2;
    /// EX / PX / SETEX / PSETEX: `number` ms from now.
    pub const EXPIRY_IN_MS: u8 = 2 << 2;
    /// EXAT / PXAT: `number` is an absolute Unix time in ms.
    pub const EXPIRY_AT_MS: u8 = 3 << 2;
    /// Mask of the expiry bits.
    pub const EXPIRY_MASK: u8 = 3 << 2;
    /// GET: reply with the old value.
    pub const RETURN_OLD: u8 = 1 << 4;
    /// SETNX: reply 1 / 0 instead of OK / nil.
    pub const REPLY_INTEGER: u8 = 1 << 5;
    /// Name in errors (bits 6-7): `set`.
    pub const NAME_SET: u8 = 0 << 6;
    /// `setex`.
    pub const NAME_SETEX: u8 = 1 << 6;
    /// `psetex`.
    pub const NAME_PSETEX: u8 = 2 << 6;
    /// Mask of the name bits.
    pub const NAME_MASK: u8 = 3 << 6;
}

/// EXPIRE flags: which command (for error messages) and whether `number` is absolute.
pub mod expire_flags {
    /// PEXPIRE / PEXPIREAT (milliseconds).
    pub const MILLISECONDS: u8 = 1;
    /// EXPIREAT / PEXPIREAT (`number` is a Unix time in ms).
    pub const ABSOLUTE: u8 = 2;
    /// NX: only if the key has no deadline.
    pub const NX: u8 = 4;
    /// XX: only if the key has a deadline.
    pub const XX: u8 = 8;
    /// GT: only if the new deadline is later than the current one (no deadline counts as
    /// infinite, so GT never sets a deadline on a key without one).
    pub const GT: u8 = 16;
    /// LT: only if the new deadline is earlier than the current one (no deadline counts as
    /// infinite).
    pub const LT: u8 = 32;
    /// Any of the conditions.
    pub const CONDITIONS: u8 = NX | XX | GT | LT;
}

/// GETEX flags.
pub mod getex_flags {
    /// No option: the deadline stays.
    pub const UNCHANGED: u8 = 0;
    /// PERSIST.
    pub const PERSIST: u8 = 1;
    /// EX / PX: `number` ms from now.
    pub const IN_MS: u8 = 2;
    /// EXAT / PXAT: `number` is a Unix time in ms.
    pub const AT_MS: u8 = 3;
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
    /// What to do.
    pub op: Op,
    /// Op-specific flags ([`set_flags`] for SET; for EXPIRE bit 0 means PEXPIRE).
    pub flags: u8,
    /// `store::hash_key(key)`, computed once by the reactor.
    pub hash: u64,
    /// Op-specific number: increment, expiry in ms, ...
    pub number: i64,
    /// The key.
    pub key: Bytes<KEY_INLINE_BYTES>,
    /// The value (SET, APPEND).
    pub value: Bytes<VALUE_INLINE_BYTES>,
    /// Rarely used extra bytes (the IFEQ comparand).
    pub extra: Option<Box<[u8]>>,
}

/// The shape of a [`Reply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplyKind {
    /// `+OK`.
    Ok,
    /// Null bulk (`$-1`).
    Nil,
    /// Integer `int`.
    Integer,
    /// Bulk string `data`.
    Bulk,
    /// Simple string `data`.
    Simple,
    /// Error `data` (the text after `-`).
    Error,
    /// SCAN's page: `[int as decimal cursor, [keys packed in data]]`.
    KeyPage,
    /// KEYS (one worker's part): the keys packed in `data`.
    KeyList,
    /// GETV: `[data as bulk, int]`.
    ValueVersion,
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
    /// Shape.
    pub kind: ReplyKind,
    /// Integer payload.
    pub int: i64,
    /// Bytes payload (bulk, simple string, error text).
    pub data: Bytes<REPLY_INLINE_BYTES>,
}

impl Reply {
    /// A reply of `kind` with no payload, for `request`.
    #[inline]
    pub fn to(request: &Request, kind: ReplyKind) -> Reply {
        Reply {
            conn: request.conn,
            seq: request.seq,
            part: request.part,
            kind,
            int: 0,
            data: Bytes::empty(),
        }
    }

    /// Writes this reply in RESP2.
    #[inline]
    pub fn encode(&self, out: &mut Vec<u8>) {
        use crate::proto::reply;
        match self.kind {
            ReplyKind::Ok => reply::ok(out),
            ReplyKind::Nil => reply::null_bulk(out),
            ReplyKind::Integer => reply::integer(out, self.int),
            ReplyKind::Bulk => reply::bulk(out, self.data.as_slice()),
            ReplyKind::Simple => reply::simple_string(out, self.data.as_slice()),
            ReplyKind::Error => reply::error(out, self.data.as_slice()),
            ReplyKind::KeyPage => {
                reply::array_header(out, 2);
                reply::bulk(out, (self.int as u64).to_string().as_bytes());
                let keys = self.data.as_slice();
                reply::array_header(out, packed_keys(keys).count());
                packed_keys(keys).for_each(|key| reply::bulk(out, key));
            }
            ReplyKind::ValueVersion => {
                reply::array_header(out, 2);
                reply::bulk(out, self.data.as_slice());
                reply::integer(out, self.int);
            }
            ReplyKind::KeyList => {
                let keys = self.data.as_slice();
                reply::array_header(out, packed_keys(keys).count());
                packed_keys(keys).for_each(|key| reply::bulk(out, key));
            }
        }
    }
}

const _: () = assert!(size_of::<Request>() <= 128);
const _: () = assert!(size_of::<Reply>() <= 128);
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

    #[test]
    fn worker_stats_round_trip() {
        let stats = WorkerStats {
            keys: 1,
            memory_bytes: 2,
            requests: 3,
            batches: 4,
            idle_waits: 5,
            reactor_wakeups: 6,
            expired_keys: u64::MAX,
            parks: 7,
            keyspace_hits: 8,
            keyspace_misses: 9,
            expires: 10,
            live_bytes: 11,
            garbage_bytes: 12,
            table_bytes: 13,
            pages_prefaulted: 14,
        };
        assert_eq!(WorkerStats::from_bytes(&stats.to_bytes()), stats);
        assert_eq!(WorkerStats::from_bytes(b""), WorkerStats::default());
    }
}
