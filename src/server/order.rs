//! Per-connection reply ordering: a small reorder buffer indexed by sequence number.
//!
//! A connection's pipelined commands may go to different workers, which answer at their own
//! pace. Every command that waits for a worker takes the next sequence number and an [`Entry`]
//! at the back of the connection's [`Order`]; replies fill their entry wherever it is, and only
//! the front is ever written out, so the client sees replies in request order.
//!
//! ```text
//!   base_seq = 41
//!   entries:  [ 41: One(None) | 42: One(Some) | 43: Many{remaining 1} | 44: Local(bytes) ]
//!               ^ front: nothing can be written until 41's reply arrives
//! ```
//!
//! Commands the reactor answers itself (PING, CONFIG, ...) are written straight to the output
//! when nothing is pending, and otherwise queued as already-encoded [`Entry::Local`] bytes. The
//! common case, a reply for the front entry, is encoded directly into the output without being
//! stored.

use std::collections::VecDeque;

use super::message::{Reply, ReplyKind, WorkerStats, packed_keys};
use crate::proto::capnp::piccolo_capnp::{ErrorCode, response};
use crate::proto::capnp::{self, MessageEncoder};
use crate::proto::reply;

/// What a Cap'n Proto client's entry needs to build its Response: the client's request id and
/// how to read the worker's reply. RESP entries carry the default tag and ignore it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    /// The Request's `id`, echoed in the Response.
    pub id: u64,
    /// How the reply maps onto the Response union.
    pub shape: Shape,
}

/// How a worker's [`Reply`] maps onto a Cap'n Proto `Response`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shape {
    /// By reply kind: `Ok` → `ok`, `Nil` → `notFound`, `Integer` → `integer`, `Bulk` /
    /// `ValueVersion` → `value`, `Error` → `error`, `KeyPage` → `scanPage`.
    #[default]
    Plain,
    /// A conditional write (set without `returnOld`): `Integer` → `version`,
    /// `Nil` → `conditionFailed`.
    Version,
    /// `cas`: `Integer` → `version`; `Nil` → `conditionFailed` when its `int` is 1 (the key
    /// exists with another version), `notFound` when 0.
    Cas,
}

/// How the parts of a multi-part command are joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// Sum of integer replies (DEL, EXISTS, UNLINK, DBSIZE).
    Sum,
    /// An array of the parts in order (MGET).
    Array,
    /// `+OK` if every part is OK, else the first error (MSET, FLUSHALL).
    AllOk,
    /// INFO: the reactor's text, then sections built from every worker's [`WorkerStats`].
    Info,
    /// One array of every part's keys (KEYS).
    Concat,
}

/// INFO sections that need the workers' numbers.
pub mod info_sections {
    /// `# Memory`.
    pub const MEMORY: u8 = 1;
    /// `# Stats`.
    pub const STATS: u8 = 2;
    /// `# Keyspace`.
    pub const KEYSPACE: u8 = 4;
}

/// The reactor's part of an INFO reply, rendered when the command arrived.
#[derive(Debug, Default)]
pub struct InfoText {
    /// Sections the reactor answers alone (server, clients).
    pub head: String,
    /// The reactor's lines of the stats section.
    pub reactor_stats: String,
    /// Which of [`info_sections`] to build from the workers.
    pub sections: u8,
}

/// A multi-part command waiting for its parts.
#[derive(Debug)]
pub struct Join {
    /// Parts still missing.
    pub remaining: u32,
    /// How to join.
    pub kind: JoinKind,
    /// Running sum for [`JoinKind::Sum`].
    pub sum: i64,
    /// The first error reply seen.
    pub error: Option<Reply>,
    /// Parts for [`JoinKind::Array`] and [`JoinKind::Info`], by part index.
    pub items: Vec<Option<Reply>>,
    /// The reactor's text for [`JoinKind::Info`].
    pub info: Option<Box<InfoText>>,
}

/// One command's place in the reply order.
#[derive(Debug)]
pub enum Entry {
    /// Waits for one reply (single-key commands).
    One(Option<Reply>),
    /// Answered by the reactor: the encoded reply.
    Local(Vec<u8>),
    /// Waits for several parts.
    Many(Box<Join>),
}

impl Entry {
    /// A multi-part entry expecting `parts` replies.
    pub fn many(kind: JoinKind, parts: u32) -> Entry {
        let items = if matches!(kind, JoinKind::Array | JoinKind::Info | JoinKind::Concat) {
            (0..parts).map(|_| None).collect()
        } else {
            Vec::new()
        };
        Entry::Many(Box::new(Join {
            remaining: parts,
            kind,
            sum: 0,
            error: None,
            items,
            info: None,
        }))
    }

    /// An INFO entry gathering one [`WorkerStats`] per worker.
    pub fn info(text: InfoText, workers: u32) -> Entry {
        let mut entry = Entry::many(JoinKind::Info, workers);
        if let Entry::Many(join) = &mut entry {
            join.info = Some(Box::new(text));
        }
        entry
    }

    fn is_complete(&self) -> bool {
        match self {
            Entry::One(reply) => reply.is_some(),
            Entry::Local(_) => true,
            Entry::Many(join) => join.remaining == 0,
        }
    }

    /// Writes this entry's answer in the connection's protocol: RESP when `capnp` is `None`.
    fn encode_for(self, tag: Tag, capnp: Option<&mut MessageEncoder>, out: &mut Vec<u8>) {
        match capnp {
            None => self.encode(out),
            Some(encoder) => self.encode_capnp(tag, encoder, out),
        }
    }

    /// Writes this entry as a Cap'n Proto Response with the client's id.
    fn encode_capnp(self, tag: Tag, encoder: &mut MessageEncoder, out: &mut Vec<u8>) {
        match self {
            Entry::Local(bytes) => out.extend_from_slice(&bytes),
            Entry::One(Some(reply)) => encode_reply_capnp(&reply, tag, encoder, out),
            Entry::One(None) => {
                debug_assert!(false, "encoding an incomplete entry");
                encode_error_capnp(encoder, out, tag.id, b"ERR internal error: reply missing");
            }
            Entry::Many(join) => {
                if let Some(error) = &join.error {
                    encode_reply_capnp(error, tag, encoder, out);
                    return;
                }
                encoder.encode_response(out, |mut response| {
                    response.set_id(tag.id);
                    match join.kind {
                        JoinKind::Sum => response.set_integer(join.sum),
                        JoinKind::AllOk => response.set_ok(()),
                        JoinKind::Array => {
                            let mut values = response.init_values(join.items.len() as u32);
                            for (index, item) in join.items.iter().enumerate() {
                                let mut value = values.reborrow().get(index as u32);
                                match item {
                                    Some(reply) if reply.kind == ReplyKind::Bulk => {
                                        value.set_data(reply.data.as_slice());
                                    }
                                    _ => value.set_absent(()),
                                }
                            }
                        }
                        JoinKind::Info => response.set_info(render_info(&join).as_str()),
                        JoinKind::Concat => {
                            let parts = || join.items.iter().flatten();
                            let total: usize = parts()
                                .map(|part| packed_keys(part.data.as_slice()).count())
                                .sum();
                            let mut page = response.init_scan_page();
                            page.set_cursor(0);
                            let mut keys = page.init_keys(total as u32);
                            let all = parts().flat_map(|part| packed_keys(part.data.as_slice()));
                            for (index, key) in all.enumerate() {
                                keys.set(index as u32, key);
                            }
                        }
                    }
                });
            }
        }
    }

    fn encode(self, out: &mut Vec<u8>) {
        match self {
            Entry::One(Some(reply)) => reply.encode(out),
            Entry::One(None) => {
                debug_assert!(false, "encoding an incomplete entry");
                reply::error(out, b"ERR internal error: reply missing");
            }
            Entry::Local(bytes) => out.extend_from_slice(&bytes),
            Entry::Many(join) => {
                if let Some(error) = &join.error {
                    if !matches!(join.kind, JoinKind::Array | JoinKind::Info) {
                        // (Concat too: an error in any part is the answer.)
                        error.encode(out);
                        return;
                    }
                }
                match join.kind {
                    JoinKind::Sum => reply::integer(out, join.sum),
                    JoinKind::AllOk => reply::ok(out),
                    JoinKind::Concat => {
                        let parts = || join.items.iter().flatten();
                        let total: usize = parts()
                            .map(|part| packed_keys(part.data.as_slice()).count())
                            .sum();
                        reply::array_header(out, total);
                        for part in parts() {
                            for key in packed_keys(part.data.as_slice()) {
                                reply::bulk(out, key);
                            }
                        }
                    }
                    JoinKind::Info => {
                        let text = render_info(&join);
                        reply::bulk(out, text.as_bytes());
                    }
                    JoinKind::Array => {
                        reply::array_header(out, join.items.len());
                        for item in &join.items {
                            match item {
                                Some(reply) => reply.encode(out),
                                None => reply::null_bulk(out),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Encodes one worker reply as a Response (see [`Shape`]).
fn encode_reply_capnp(reply: &Reply, tag: Tag, encoder: &mut MessageEncoder, out: &mut Vec<u8>) {
    if reply.kind == ReplyKind::Error {
        encode_error_capnp(encoder, out, tag.id, reply.data.as_slice());
        return;
    }
    // The hot answers (get's value, set's version) have a fixed layout and are written directly
    // (byte-identical to the builder's output, tested in proto::capnp). The arms mirror the
    // builder's match below, with the same precedence.
    match (tag.shape, reply.kind) {
        (Shape::Version | Shape::Cas, ReplyKind::Integer) => {
            return capnp::write_version_response(out, tag.id, reply.int as u64);
        }
        (_, ReplyKind::Bulk | ReplyKind::Simple) => {
            return capnp::write_value_response(encoder, out, tag.id, reply.data.as_slice(), 0);
        }
        (_, ReplyKind::ValueVersion) => {
            let data = reply.data.as_slice();
            return capnp::write_value_response(encoder, out, tag.id, data, reply.int as u64);
        }
        _ => {}
    }
    encoder.encode_response(out, |mut response| {
        response.set_id(tag.id);
        match (tag.shape, reply.kind) {
            (Shape::Version | Shape::Cas, ReplyKind::Integer) => {
                response.set_version(reply.int as u64)
            }
            (Shape::Version, ReplyKind::Nil) => response.set_condition_failed(()),
            (Shape::Cas, ReplyKind::Nil) if reply.int != 0 => response.set_condition_failed(()),
            (_, ReplyKind::Ok) => response.set_ok(()),
            (_, ReplyKind::Nil) => response.set_not_found(()),
            (_, ReplyKind::Integer) => response.set_integer(reply.int),
            (_, ReplyKind::Bulk | ReplyKind::Simple) => {
                let mut value = response.init_value();
                value.set_data(reply.data.as_slice());
            }
            (_, ReplyKind::ValueVersion) => {
                let mut value = response.init_value();
                value.set_data(reply.data.as_slice());
                value.set_version(reply.int as u64);
            }
            (_, ReplyKind::KeyPage | ReplyKind::KeyList) => {
                let packed = reply.data.as_slice();
                let mut page = response.init_scan_page();
                page.set_cursor(if reply.kind == ReplyKind::KeyPage {
                    reply.int as u64
                } else {
                    0
                });
                let mut keys = page.init_keys(packed_keys(packed).count() as u32);
                for (index, key) in packed_keys(packed).enumerate() {
                    keys.set(index as u32, key);
                }
            }
            (_, ReplyKind::Error) => unreachable!("errors are encoded above"),
        }
    });
}

/// The schema's error code for a RESP-worded error message.
pub fn error_code(message: &[u8]) -> ErrorCode {
    let contains = |needle: &[u8]| message.windows(needle.len()).any(|window| window == needle);
    if contains(b"not an integer") {
        ErrorCode::NotInteger
    } else if contains(b"overflow") {
        ErrorCode::Overflow
    } else if contains(b"too many keys") || contains(b"too large") || contains(b"too big") {
        ErrorCode::TooLarge
    } else if message.starts_with(b"ERR internal") {
        ErrorCode::Internal
    } else {
        ErrorCode::InvalidArgument
    }
}

/// Encodes an `error` Response from a RESP-worded message (the `ERR ` prefix dropped, as the
/// schema asks).
pub fn encode_error_capnp(
    encoder: &mut MessageEncoder,
    out: &mut Vec<u8>,
    id: u64,
    message: &[u8],
) {
    let text = message.strip_prefix(b"ERR ").unwrap_or(message);
    let text = String::from_utf8_lossy(text);
    crate::proto::capnp::write_error_response(encoder, out, id, error_code(message), &text);
}

/// INFO's text: the reactor's sections, then memory, stats and keyspace from the workers.
fn render_info(join: &Join) -> String {
    use std::fmt::Write as _;
    let empty = InfoText::default();
    let info = join.info.as_deref().unwrap_or(&empty);
    let workers: Vec<WorkerStats> = join
        .items
        .iter()
        .map(|item| {
            item.as_ref().map_or_else(WorkerStats::default, |reply| {
                WorkerStats::from_bytes(reply.data.as_slice())
            })
        })
        .collect();
    let sum = |field: fn(&WorkerStats) -> u64| workers.iter().map(field).sum::<u64>();
    let mut text = info.head.clone();
    // Writing into a String cannot fail.
    if info.sections & info_sections::MEMORY != 0 {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let used = sum(|stats| stats.memory_bytes);
        let rss = resident_bytes().unwrap_or(0);
        let _ = write!(
            text,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\n\
             used_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\n\
             maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
             store_live_bytes:{}\r\nstore_garbage_bytes:{}\r\nstore_table_bytes:{}\r\n\
             store_pages_prefaulted:{}\r\n",
            human_bytes(used),
            human_bytes(rss),
            sum(|stats| stats.live_bytes),
            sum(|stats| stats.garbage_bytes),
            sum(|stats| stats.table_bytes),
            sum(|stats| stats.pages_prefaulted),
        );
        for (index, stats) in workers.iter().enumerate() {
            let _ = write!(text, "worker{index}_memory:{}\r\n", stats.memory_bytes);
        }
    }
    if info.sections & info_sections::STATS != 0 {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let _ = write!(
            text,
            "# Stats\r\n{}keyspace_hits:{}\r\nkeyspace_misses:{}\r\nworker_requests:{}\r\n\
             worker_batches:{}\r\nworker_idle_waits:{}\r\nworker_parks:{}\r\n\
             wakeups_to_reactor:{}\r\nexpired_keys:{}\r\n",
            info.reactor_stats,
            sum(|stats| stats.keyspace_hits),
            sum(|stats| stats.keyspace_misses),
            sum(|stats| stats.requests),
            sum(|stats| stats.batches),
            sum(|stats| stats.idle_waits),
            sum(|stats| stats.parks),
            sum(|stats| stats.reactor_wakeups),
            sum(|stats| stats.expired_keys),
        );
        for (index, stats) in workers.iter().enumerate() {
            let _ = write!(
                text,
                "worker{index}:keys={},requests={},batches={},idle_waits={},parks={},\
                 wakeups_to_reactor={}\r\n",
                stats.keys,
                stats.requests,
                stats.batches,
                stats.idle_waits,
                stats.parks,
                stats.reactor_wakeups
            );
        }
    }
    if info.sections & info_sections::KEYSPACE != 0 {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        text.push_str("# Keyspace\r\n");
        let keys = sum(|stats| stats.keys);
        if keys > 0 {
            // avg_ttl is not estimated; 0 is what Redis reports before it has sampled any.
            let expires = sum(|stats| stats.expires);
            let _ = write!(text, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
        }
    }
    text
}

/// The process's resident set in bytes, from `/proc/self/statm` (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: `sysconf` only reads a configuration value; it has no memory-safety preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page_size).ok().filter(|&size| size > 0)?)
}

/// Redis's `_human` form: bytes as B, K, M, G with two decimals.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, unit) in UNITS {
        if bytes >= size {
            return format!("{:.2}{unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes}B")
}

/// The reorder buffer of one connection.
#[derive(Debug, Default)]
pub struct Order {
    /// Sequence number of `entries[0]`.
    base_seq: u32,
    entries: VecDeque<(Entry, Tag)>,
    /// The tag of the next entry pushed (set by Cap'n Proto dispatch, taken by the push).
    next_tag: Tag,
    /// `Some` on a Cap'n Proto connection: replies are encoded as Responses with it.
    capnp: Option<Box<MessageEncoder>>,
}

impl Order {
    /// Commands waiting for their turn (complete or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Switches the connection to Cap'n Proto Responses, encoded in a reusable first segment
    /// of `first_segment_words` words (larger Responses spill to the heap).
    pub fn use_capnp(&mut self, first_segment_words: u32) {
        self.capnp = Some(Box::new(MessageEncoder::new(first_segment_words)));
    }

    /// Whether replies are encoded as Cap'n Proto Responses.
    pub fn is_capnp(&self) -> bool {
        self.capnp.is_some()
    }

    /// Sets the tag of the next entry ([`push`](Self::push) or a queued local reply).
    pub fn set_next_tag(&mut self, tag: Tag) {
        self.next_tag = tag;
    }

    /// Appends an entry and returns its sequence number.
    pub fn push(&mut self, entry: Entry) -> u32 {
        let seq = self.base_seq.wrapping_add(self.entries.len() as u32);
        let tag = std::mem::take(&mut self.next_tag);
        self.entries.push_back((entry, tag));
        seq
    }

    /// A reply computed by the reactor: written now if nothing is pending, else queued.
    pub fn local(&mut self, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
        let tag = std::mem::take(&mut self.next_tag);
        if self.entries.is_empty() {
            write(out);
        } else {
            let mut bytes = Vec::new();
            write(&mut bytes);
            self.entries.push_back((Entry::Local(bytes), tag));
        }
    }

    /// A Cap'n Proto Response computed by the reactor (pong, argument errors), with `id`:
    /// written now if nothing is pending, else queued. Only on a Cap'n Proto connection.
    pub fn local_capnp(
        &mut self,
        out: &mut Vec<u8>,
        id: u64,
        build: impl FnOnce(response::Builder<'_>),
    ) {
        let Some(encoder) = self.capnp.as_deref_mut() else {
            debug_assert!(false, "local_capnp on a RESP connection");
            return;
        };
        let mut bytes = Vec::new();
        let target = if self.entries.is_empty() {
            &mut *out
        } else {
            &mut bytes
        };
        encoder.encode_response(target, |mut response| {
            response.set_id(id);
            build(response);
        });
        if !bytes.is_empty() {
            self.entries
                .push_back((Entry::Local(bytes), Tag::default()));
        }
    }

    /// A Cap'n Proto `error` Response with the code for `message` (RESP wording).
    pub fn local_capnp_error(&mut self, out: &mut Vec<u8>, id: u64, message: &[u8]) {
        let code = error_code(message);
        let text = message.strip_prefix(b"ERR ").unwrap_or(message);
        let text = String::from_utf8_lossy(text);
        self.local_capnp(out, id, |response| {
            let mut error = response.init_error();
            error.set_code(code);
            error.set_message(&*text);
        });
    }

    /// Files a worker's reply; writes to `out` every entry that became writable at the front.
    /// Returns whether anything was written. A reply that matches no pending entry (which the
    /// generation check in the reactor should make impossible) is dropped.
    pub fn deliver(&mut self, reply: Reply, out: &mut Vec<u8>) -> bool {
        let index = reply.seq.wrapping_sub(self.base_seq) as usize;
        let Some((entry, tag)) = self.entries.get_mut(index) else {
            debug_assert!(false, "reply for no pending entry: {reply:?}");
            return false;
        };
        match entry {
            Entry::One(slot @ None) => {
                if index == 0 {
                    // The common case: the front's reply; encode it without storing it.
                    match self.capnp.as_deref_mut() {
                        None => reply.encode(out),
                        Some(encoder) => encode_reply_capnp(&reply, *tag, encoder, out),
                    }
                    self.entries.pop_front();
                    self.base_seq = self.base_seq.wrapping_add(1);
                    self.drain_ready(out);
                    return true;
                }
                *slot = Some(reply);
            }
            Entry::Many(join) => {
                join.remaining = join.remaining.saturating_sub(1);
                if reply.kind == ReplyKind::Error && join.error.is_none() {
                    join.error = Some(reply);
                } else if join.kind == JoinKind::Sum {
                    join.sum = join.sum.saturating_add(reply.int);
                } else if matches!(
                    join.kind,
                    JoinKind::Array | JoinKind::Info | JoinKind::Concat
                ) {
                    let part = usize::from(reply.part);
                    if let Some(item) = join.items.get_mut(part) {
                        *item = Some(reply);
                    }
                }
            }
            Entry::One(Some(_)) | Entry::Local(_) => {
                debug_assert!(false, "second reply for one entry: {reply:?}");
                return false;
            }
        }
        if index == 0 {
            self.drain_ready(out)
        } else {
            false
        }
    }

    /// Writes complete entries from the front. Returns whether anything was written.
    fn drain_ready(&mut self, out: &mut Vec<u8>) -> bool {
        let mut wrote = false;
        while self
            .entries
            .front()
            .is_some_and(|(entry, _)| entry.is_complete())
        {
            if let Some((entry, tag)) = self.entries.pop_front() {
                entry.encode_for(tag, self.capnp.as_deref_mut(), out);
                self.base_seq = self.base_seq.wrapping_add(1);
                wrote = true;
            }
        }
        wrote
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::message::{Bytes, ConnId};

    fn reply(seq: u32, part: u16, kind: ReplyKind, int: i64, data: &[u8]) -> Reply {
        Reply {
            conn: ConnId {
                index: 0,
                generation: 0,
            },
            seq,
            part,
            kind,
            int,
            data: Bytes::copy_from(data),
        }
    }

    #[test]
    fn replies_are_written_in_request_order() {
        let mut order = Order::default();
        let mut out = Vec::new();
        let a = order.push(Entry::One(None));
        let b = order.push(Entry::many(JoinKind::Array, 2));
        order.local(&mut out, |out| reply::simple_string(out, b"PONG"));
        let c = order.push(Entry::many(JoinKind::Sum, 2));
        assert!(out.is_empty());
        assert!(!order.deliver(reply(b, 1, ReplyKind::Bulk, 0, b"y"), &mut out));
        assert!(!order.deliver(reply(c, 0, ReplyKind::Integer, 1, b""), &mut out));
        assert!(order.deliver(reply(a, 0, ReplyKind::Ok, 0, b""), &mut out));
        assert_eq!(out, b"+OK\r\n");
        assert!(order.deliver(reply(b, 0, ReplyKind::Nil, 0, b""), &mut out));
        assert_eq!(out, b"+OK\r\n*2\r\n$-1\r\n$1\r\ny\r\n+PONG\r\n");
        assert!(order.deliver(reply(c, 1, ReplyKind::Integer, 1, b""), &mut out));
        assert_eq!(out, b"+OK\r\n*2\r\n$-1\r\n$1\r\ny\r\n+PONG\r\n:2\r\n");
        assert!(order.is_empty());
        order.local(&mut out, reply::ok);
        assert!(out.ends_with(b":2\r\n+OK\r\n"));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut order = Order {
            base_seq: u32::MAX - 1,
            ..Order::default()
        };
        let mut out = Vec::new();
        let seqs: Vec<u32> = (0..4).map(|_| order.push(Entry::One(None))).collect();
        assert_eq!(seqs, [u32::MAX - 1, u32::MAX, 0, 1]);
        for &seq in seqs.iter().rev() {
            order.deliver(
                reply(seq, 0, ReplyKind::Integer, i64::from(seq % 7), b""),
                &mut out,
            );
        }
        assert_eq!(out, b":2\r\n:3\r\n:0\r\n:1\r\n");
    }

    #[test]
    fn join_reports_the_first_error() {
        let mut order = Order::default();
        let mut out = Vec::new();
        let seq = order.push(Entry::many(JoinKind::AllOk, 2));
        order.deliver(reply(seq, 0, ReplyKind::Error, 0, b"ERR boom"), &mut out);
        order.deliver(reply(seq, 1, ReplyKind::Ok, 0, b""), &mut out);
        assert_eq!(out, b"-ERR boom\r\n");
    }
}
