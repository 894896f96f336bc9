//! RESP's words, in one place: how every answer a RESP client gets is encoded. Worker outcomes
//! ([`RespWords`], the reorder buffer's [`Words`] for RESP connections), the error texts in
//! Redis's exact wording ([`error_text`], [`route_error_text`]; Cap'n Proto's messages reuse
//! them), and the replies the front end writes itself ([`local_error`], [`local`]).

use std::borrow::Cow;

use crate::proto::{CommandName, reply};
use crate::server::info;
use crate::server::message::{ErrorKind, Outcome, Reply, packed_keys};
use crate::server::order::{Join, JoinKind, Tag, Words};
use crate::server::route::RouteError;
use crate::server::session::Session;

/// The reorder buffer's words for a RESP connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct RespWords;

impl Words for RespWords {
    #[inline]
    fn reply(&mut self, reply: &Reply, tag: Tag, out: &mut Vec<u8>) {
        encode_reply(reply, tag.command, out);
    }

    fn joined(&mut self, join: &Join, tag: Tag, out: &mut Vec<u8>) {
        if let Some(error) = &join.error {
            // MGET and INFO answer without the failed part; the others answer the error.
            if !matches!(join.kind, JoinKind::Array | JoinKind::Info) {
                encode_reply(error, tag.command, out);
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
                let text = info::render(join.info.as_deref(), &join.items);
                reply::bulk(out, text.as_bytes());
            }
            JoinKind::Array | JoinKind::Items => {
                if join.kind == JoinKind::Array {
                    reply::array_header(out, join.array_len);
                }
                for item in &join.items {
                    match item {
                        Some(part) => encode_reply(part, tag.command, out),
                        None => reply::null_bulk(out),
                    }
                }
            }
        }
    }

    fn error(&mut self, kind: ErrorKind, tag: Tag, out: &mut Vec<u8>) {
        reply::error(out, error_text(kind, tag.command).as_bytes());
    }

    fn exec(&mut self, len: Option<usize>, _tag: Tag, out: &mut Vec<u8>) {
        match len {
            Some(len) => reply::array_header(out, len),
            None => out.extend_from_slice(b"*-1\r\n"),
        }
    }
}

/// Writes one worker reply for `command` (which decides how a write's outcome reads: SETNX
/// answers 1 / 0, CAS the new version, the others OK / nil).
#[inline]
fn encode_reply(reply: &Reply, command: Option<CommandName>, out: &mut Vec<u8>) {
    match reply.outcome {
        Outcome::Ok => reply::ok(out),
        Outcome::Nil => reply::null_bulk(out),
        Outcome::Integer => reply::integer(out, reply.int),
        Outcome::Bulk => reply::bulk(out, reply.data.as_slice()),
        Outcome::Simple => reply::simple_string(out, reply.data.as_slice()),
        Outcome::Stored => match command {
            Some(CommandName::SetNx) => reply::integer(out, 1),
            Some(CommandName::Cas) => reply::integer(out, reply.int),
            _ => reply::ok(out),
        },
        Outcome::NotStored => match command {
            Some(CommandName::SetNx) => reply::integer(out, 0),
            _ => reply::null_bulk(out),
        },
        Outcome::KeyPage => {
            reply::array_header(out, 2);
            reply::bulk(out, (reply.int as u64).to_string().as_bytes());
            let keys = reply.data.as_slice();
            reply::array_header(out, packed_keys(keys).count());
            packed_keys(keys).for_each(|key| reply::bulk(out, key));
        }
        Outcome::ValueVersion => {
            reply::array_header(out, 2);
            reply::bulk(out, reply.data.as_slice());
            reply::integer(out, reply.int);
        }
        // The coordinator's own reads and EXEC's verdict never reach a client's words.
        Outcome::Dumped | Outcome::Verdict => {
            debug_assert!(false, "an internal outcome reached a client: {reply:?}");
            reply::error(out, b"ERR internal error");
        }
        Outcome::KeyList => {
            let keys = reply.data.as_slice();
            reply::array_header(out, packed_keys(keys).count());
            packed_keys(keys).for_each(|key| reply::bulk(out, key));
        }
        Outcome::Error(kind) => reply::error(out, error_text(kind, command).as_bytes()),
    }
}

/// A worker's error in Redis's words. An invalid expire time names the command (lower case, as
/// Redis does; `set` when the tag names none).
pub fn error_text(kind: ErrorKind, command: Option<CommandName>) -> Cow<'static, str> {
    Cow::Borrowed(match kind {
        ErrorKind::NotInteger => "ERR value is not an integer or out of range",
        ErrorKind::Overflow => "ERR increment or decrement would overflow",
        ErrorKind::DecrementOverflow => "ERR decrement would overflow",
        ErrorKind::TooLarge => "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ErrorKind::OutOfMemory => "OOM command not allowed when used memory > 'maxmemory'.",
        ErrorKind::ScanCursorOverflow => "ERR scan cursor overflow",
        ErrorKind::NoSuchKey => "ERR no such key",
        ErrorKind::Internal => "ERR internal error",
        ErrorKind::InvalidExpireTime => {
            debug_assert!(command.is_some(), "an expiry's tag names its command");
            let name = command.map_or("set", CommandName::as_str);
            return Cow::Owned(format!(
                "ERR invalid expire time in '{}' command",
                name.to_ascii_lowercase()
            ));
        }
    })
}

/// A routing error in Redis's style.
pub fn route_error_text(error: RouteError) -> String {
    match error {
        RouteError::TooManyKeys => {
            "ERR too many keys in one command (at most 65536 here)".to_string()
        }
    }
}

/// A reply the front end writes itself: now if nothing is pending, else in its place.
#[inline]
pub fn local(session: &mut Session, write: impl FnOnce(&mut Vec<u8>)) {
    session.order.local(&mut session.out, write);
}

/// An error reply the front end writes itself (`message` in Redis's words, with its code).
pub fn local_error(session: &mut Session, message: &[u8]) {
    local(session, |out| reply::error(out, message));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::message::{Bytes, ConnId};
    use crate::server::order::{Entry, Order};

    fn reply(seq: u32, part: u16, outcome: Outcome, int: i64, data: &[u8]) -> Reply {
        Reply {
            conn: ConnId {
                index: 0,
                generation: 0,
            },
            seq,
            part,
            outcome,
            int,
            data: Bytes::copy_from(data),
        }
    }

    #[test]
    fn replies_are_written_in_request_order() {
        let mut order = Order::default();
        let mut out = Vec::new();
        let words = &mut RespWords;
        let a = order.push(Entry::One(None));
        let b = order.push(Entry::many(JoinKind::Array, 2));
        order.local(&mut out, |out| reply::simple_string(out, b"PONG"));
        let c = order.push(Entry::many(JoinKind::Sum, 2));
        assert!(out.is_empty());
        assert!(!order.deliver(reply(b, 1, Outcome::Bulk, 0, b"y"), words, &mut out));
        assert!(!order.deliver(reply(c, 0, Outcome::Integer, 1, b""), words, &mut out));
        assert!(order.deliver(reply(a, 0, Outcome::Ok, 0, b""), words, &mut out));
        assert_eq!(out, b"+OK\r\n");
        assert!(order.deliver(reply(b, 0, Outcome::Nil, 0, b""), words, &mut out));
        assert_eq!(out, b"+OK\r\n*2\r\n$-1\r\n$1\r\ny\r\n+PONG\r\n");
        assert!(order.deliver(reply(c, 1, Outcome::Integer, 1, b""), words, &mut out));
        assert_eq!(out, b"+OK\r\n*2\r\n$-1\r\n$1\r\ny\r\n+PONG\r\n:2\r\n");
        assert!(order.is_empty());
        order.local(&mut out, reply::ok);
        assert!(out.ends_with(b":2\r\n+OK\r\n"));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut order = Order::starting_at(u32::MAX - 1);
        let mut out = Vec::new();
        let seqs: Vec<u32> = (0..4).map(|_| order.push(Entry::One(None))).collect();
        assert_eq!(seqs, [u32::MAX - 1, u32::MAX, 0, 1]);
        for &seq in seqs.iter().rev() {
            let int = i64::from(seq % 7);
            order.deliver(
                reply(seq, 0, Outcome::Integer, int, b""),
                &mut RespWords,
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
        let error = Outcome::Error(ErrorKind::NotInteger);
        order.deliver(reply(seq, 0, error, 0, b""), &mut RespWords, &mut out);
        order.deliver(reply(seq, 1, Outcome::Ok, 0, b""), &mut RespWords, &mut out);
        assert_eq!(out, b"-ERR value is not an integer or out of range\r\n");
    }

    /// A write's outcome reads as the command that asked: OK / nil, 1 / 0 for SETNX, the
    /// version for CAS; an invalid expire time names the command.
    #[test]
    fn outcomes_are_worded_by_command() {
        let words = |outcome: Outcome, int: i64, command: Option<CommandName>| {
            let mut out = Vec::new();
            encode_reply(&reply(0, 0, outcome, int, b""), command, &mut out);
            String::from_utf8(out).expect("RESP is text here")
        };
        assert_eq!(words(Outcome::Stored, 7, Some(CommandName::Set)), "+OK\r\n");
        assert_eq!(
            words(Outcome::Stored, 7, Some(CommandName::SetNx)),
            ":1\r\n"
        );
        assert_eq!(words(Outcome::Stored, 7, Some(CommandName::Cas)), ":7\r\n");
        assert_eq!(
            words(Outcome::NotStored, 0, Some(CommandName::Set)),
            "$-1\r\n"
        );
        assert_eq!(
            words(Outcome::NotStored, 0, Some(CommandName::SetNx)),
            ":0\r\n"
        );
        let expire = Outcome::Error(ErrorKind::InvalidExpireTime);
        assert_eq!(
            words(expire, 0, Some(CommandName::PSetEx)),
            "-ERR invalid expire time in 'psetex' command\r\n"
        );
        assert_eq!(
            words(expire, 0, Some(CommandName::PExpire)),
            "-ERR invalid expire time in 'pexpire' command\r\n"
        );
    }
}
