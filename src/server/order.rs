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
//! Commands a front end answers itself (PING, CONFIG, ...) are written straight to the output
//! when nothing is pending, and otherwise queued as already-encoded [`Entry::Local`] bytes. The
//! common case, a reply for the front entry, is encoded directly into the output without being
//! stored.
//!
//! The buffer knows no protocol: whoever files a reply passes the connection's [`Words`], the
//! front end's encoder, and each entry keeps the [`Tag`] its front end gave it, which tells the
//! words how to phrase that command's answer.

use std::collections::VecDeque;

use super::info::InfoText;
use super::message::{ErrorKind, Outcome, Reply};
use crate::proto::CommandName;

/// What a front end remembers about a command until its answer is written, when the answer's
/// wording depends on more than the worker's [`Outcome`]. Most commands keep the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    /// Cap'n Proto: the Request's `id`, echoed in the Response (0 on RESP).
    pub id: u64,
    /// The command whose wording the answer takes: RESP's SETNX answers 1 / 0, CAS the new
    /// version, and an invalid expire time names its command (Cap'n Proto's messages take the
    /// same words).
    pub command: Option<CommandName>,
    /// Cap'n Proto: how a write's answer maps onto the Response union.
    pub shape: Shape,
}

/// How a worker's [`Reply`] maps onto a Cap'n Proto `Response`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shape {
    /// By outcome: `Ok` → `ok`, `Nil` → `notFound`, `Integer` → `integer`, `Bulk` /
    /// `ValueVersion` → `value`, `Error` → `error`, `KeyPage` → `scanPage`.
    #[default]
    Plain,
    /// A `set` without `returnOld`: `Stored` → `version`, `Nil` and `NotStored` →
    /// `conditionFailed`.
    Version,
    /// `cas`: `Stored` → `version`; `NotStored` (the key has another version) →
    /// `conditionFailed`, `Nil` (no such key) → `notFound`.
    Cas,
}

/// How a protocol words what the reorder buffer releases. Implemented by each front end
/// (`front::resp::words`, `front::capnp::words`).
pub trait Words {
    /// Writes one worker reply, the answer to a single-key entry tagged `tag` (the hot path).
    fn reply(&mut self, reply: &Reply, tag: Tag, out: &mut Vec<u8>);
    /// Writes the answer of a multi-part entry whose parts are all in.
    fn joined(&mut self, join: &Join, tag: Tag, out: &mut Vec<u8>);
    /// Writes an error that no worker gave (an entry released without its reply: a bug).
    fn error(&mut self, kind: ErrorKind, tag: Tag, out: &mut Vec<u8>);
    /// Writes the head of EXEC's answer: an array of `len` answers (each then written as its
    /// command's entry), or `None` for a transaction that did not run (a watched key changed).
    fn exec(&mut self, len: Option<usize>, tag: Tag, out: &mut Vec<u8>);
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
    /// INFO: the reactor's text, then sections built from every worker's stats.
    Info,
    /// One array of every part's keys (KEYS).
    Concat,
    /// The parts in order with no array header: the rest of an MGET too big for one entry,
    /// whose first entry's header counts every key (RESP only).
    Items,
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
    /// Parts for [`JoinKind::Array`], [`JoinKind::Info`] and [`JoinKind::Concat`], by part
    /// index.
    pub items: Vec<Option<Reply>>,
    /// The reactor's text for [`JoinKind::Info`].
    pub info: Option<Box<InfoText>>,
    /// The array header [`JoinKind::Array`] writes: its parts, or every key of an MGET split
    /// into several entries.
    pub array_len: usize,
}

/// EXEC's answer: one entry per queued command, in order, each filled by the replies whose
/// part falls in its range.
#[derive(Debug, Default)]
pub struct Exec {
    /// The commands' entries and tags.
    pub commands: Vec<(Entry, Tag)>,
    /// The first part of each command (commands answered by the front end take none).
    starts: Vec<u32>,
    /// Parts so far.
    parts: u32,
    /// After WATCH: the coordinator's [`Outcome::Verdict`] has not come yet.
    pub awaiting_verdict: bool,
    /// A watched key had changed: nothing ran, the answer is a nil array.
    pub aborted: bool,
}

impl Exec {
    fn is_complete(&self) -> bool {
        !self.awaiting_verdict
            && (self.aborted || self.commands.iter().all(|(entry, _)| entry.is_complete()))
    }
}

/// A transaction being recorded: the entries its commands would have pushed.
#[derive(Debug)]
struct Capture {
    exec: Box<Exec>,
    /// More parts than a part index numbers.
    overflow: bool,
}

/// One command's place in the reply order.
#[derive(Debug)]
pub enum Entry {
    /// Waits for one reply (single-key commands).
    One(Option<Reply>),
    /// Answered by the front end: the encoded reply.
    Local(Vec<u8>),
    /// Waits for several parts.
    Many(Box<Join>),
    /// EXEC: waits for every queued command's parts.
    Exec(Box<Exec>),
}

impl Entry {
    /// A multi-part entry expecting `parts` replies.
    pub fn many(kind: JoinKind, parts: u32) -> Entry {
        let items = if matches!(
            kind,
            JoinKind::Array | JoinKind::Info | JoinKind::Concat | JoinKind::Items
        ) {
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
            array_len: parts as usize,
        }))
    }

    /// An INFO entry gathering one stats reply per worker.
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
            Entry::Exec(exec) => exec.is_complete(),
        }
    }

    /// Files `reply` in this entry (not the front entry's fast path). Returns false for a
    /// reply the entry did not expect.
    fn file(&mut self, mut reply: Reply) -> bool {
        match self {
            Entry::One(slot @ None) => *slot = Some(reply),
            Entry::Many(join) => {
                join.remaining = join.remaining.saturating_sub(1);
                if matches!(reply.outcome, Outcome::Error(_)) && join.error.is_none() {
                    join.error = Some(reply);
                } else if join.kind == JoinKind::Sum {
                    join.sum = join.sum.saturating_add(reply.int);
                } else if matches!(
                    join.kind,
                    JoinKind::Array | JoinKind::Info | JoinKind::Concat | JoinKind::Items
                ) {
                    let part = usize::from(reply.part);
                    if let Some(item) = join.items.get_mut(part) {
                        *item = Some(reply);
                    }
                }
            }
            Entry::Exec(exec) => {
                if reply.outcome == Outcome::Verdict {
                    exec.awaiting_verdict = false;
                    exec.aborted = reply.int == 0;
                    return true;
                }
                let part = u32::from(reply.part);
                let Some(index) = exec
                    .starts
                    .partition_point(|&start| start <= part)
                    .checked_sub(1)
                else {
                    return false;
                };
                reply.part = (part - exec.starts[index]) as u16;
                return exec.commands[index].0.file(reply);
            }
            Entry::One(Some(_)) | Entry::Local(_) => return false,
        }
        true
    }

    /// Writes this entry's answer with the connection's words.
    fn encode<W: Words>(self, tag: Tag, words: &mut W, out: &mut Vec<u8>) {
        match self {
            Entry::One(Some(reply)) => words.reply(&reply, tag, out),
            Entry::One(None) => {
                debug_assert!(false, "encoding an incomplete entry");
                words.error(ErrorKind::Internal, tag, out);
            }
            Entry::Local(bytes) => out.extend_from_slice(&bytes),
            Entry::Many(join) => words.joined(&join, tag, out),
            Entry::Exec(exec) => {
                if exec.aborted {
                    words.exec(None, tag, out);
                } else {
                    words.exec(Some(exec.commands.len()), tag, out);
                    for (entry, tag) in exec.commands {
                        entry.encode(tag, words, out);
                    }
                }
            }
        }
    }
}

/// The reorder buffer of one connection.
#[derive(Debug, Default)]
pub struct Order {
    /// Sequence number of `entries[0]`.
    base_seq: u32,
    entries: VecDeque<(Entry, Tag)>,
    /// The tag of the next entry (set by the front end, taken by the push or local reply).
    next_tag: Tag,
    /// EXEC is recording its commands' entries (see [`begin_capture`](Self::begin_capture)).
    capture: Option<Capture>,
}

impl Order {
    /// An empty buffer whose first entry gets sequence number `seq` (tests of wrap-around).
    #[cfg(test)]
    pub(crate) fn starting_at(seq: u32) -> Order {
        Order {
            base_seq: seq,
            ..Order::default()
        }
    }

    /// Commands waiting for their turn (complete or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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

    /// Starts recording a transaction: until [`end_capture`](Self::end_capture), entries go
    /// to EXEC's answer ([`record`](Self::record), and local replies), not to the buffer.
    pub fn begin_capture(&mut self) {
        debug_assert!(self.capture.is_none());
        self.capture = Some(Capture {
            exec: Box::default(),
            overflow: false,
        });
    }

    /// Whether a transaction is being recorded.
    #[inline]
    pub fn capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// Records `entry`, a command of the transaction with `parts` parts: returns the sequence
    /// number EXEC's entry will have and the command's first part, or `None` when the
    /// transaction has more parts than a part index numbers (EXEC then answers an error).
    pub fn record(&mut self, entry: Entry, parts: usize) -> Option<(u32, u16)> {
        let seq = self.base_seq.wrapping_add(self.entries.len() as u32);
        let tag = std::mem::take(&mut self.next_tag);
        let capture = self.capture.as_mut()?;
        let first = capture.exec.parts;
        let end = u64::from(first) + parts as u64;
        if end > u64::from(u16::MAX) + 1 {
            capture.overflow = true;
            return None;
        }
        capture.exec.starts.push(first);
        capture.exec.commands.push((entry, tag));
        capture.exec.parts = end as u32;
        Some((seq, first as u16))
    }

    /// Ends the recording: EXEC's entry is pushed (its sequence number returned), waiting for
    /// the WATCH verdict if `watched`; or, if the transaction had too many parts, dropped
    /// (`None`). Call [`write_ready`](Self::write_ready) next: the entry may be complete
    /// already (every command answered by the front end).
    pub fn end_capture(&mut self, watched: bool) -> Option<u32> {
        let mut capture = self.capture.take()?;
        if capture.overflow {
            return None;
        }
        capture.exec.awaiting_verdict = watched;
        Some(self.push(Entry::Exec(capture.exec)))
    }

    /// Writes the complete entries at the front (after [`end_capture`](Self::end_capture)).
    pub fn write_ready<W: Words>(&mut self, words: &mut W, out: &mut Vec<u8>) -> bool {
        self.drain_ready(words, out)
    }

    /// A reply the front end computed: written now if nothing is pending, else queued.
    pub fn local(&mut self, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
        let tag = std::mem::take(&mut self.next_tag);
        if let Some(capture) = &mut self.capture {
            let mut bytes = Vec::new();
            write(&mut bytes);
            let exec = &mut capture.exec;
            exec.starts.push(exec.parts);
            exec.commands.push((Entry::Local(bytes), tag));
            return;
        }
        if self.entries.is_empty() {
            write(out);
        } else {
            let mut bytes = Vec::new();
            write(&mut bytes);
            self.entries.push_back((Entry::Local(bytes), tag));
        }
    }

    /// Files a worker's reply; writes to `out` every entry that became writable at the front.
    /// Returns whether anything was written. A reply that matches no pending entry (which the
    /// generation check in the reactor should make impossible) is dropped.
    pub fn deliver<W: Words>(&mut self, reply: Reply, words: &mut W, out: &mut Vec<u8>) -> bool {
        let index = reply.seq.wrapping_sub(self.base_seq) as usize;
        let Some((entry, tag)) = self.entries.get_mut(index) else {
            debug_assert!(false, "reply for no pending entry: {reply:?}");
            return false;
        };
        if let Entry::One(None) = entry {
            if index == 0 {
                // The common case: the front's reply; encode it without storing it.
                words.reply(&reply, *tag, out);
                let front = self.entries.pop_front();
                debug_assert!(matches!(front, Some((Entry::One(None), _))));
                // An empty `One` owns nothing: skip the drop glue of every other kind of entry.
                std::mem::forget(front);
                self.base_seq = self.base_seq.wrapping_add(1);
                self.drain_ready(words, out);
                return true;
            }
        }
        if !entry.file(reply) {
            debug_assert!(false, "a reply its entry did not expect");
            return false;
        }
        if index == 0 {
            self.drain_ready(words, out)
        } else {
            false
        }
    }

    /// Writes complete entries from the front. Returns whether anything was written.
    fn drain_ready<W: Words>(&mut self, words: &mut W, out: &mut Vec<u8>) -> bool {
        let mut wrote = false;
        while self
            .entries
            .front()
            .is_some_and(|(entry, _)| entry.is_complete())
        {
            if let Some((entry, tag)) = self.entries.pop_front() {
                entry.encode(tag, words, out);
                self.base_seq = self.base_seq.wrapping_add(1);
                wrote = true;
            }
        }
        wrote
    }
}
