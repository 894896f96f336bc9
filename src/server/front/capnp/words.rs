//! Cap'n Proto's words, in one place: how every Response a Cap'n Proto client gets is encoded.
//! Worker outcomes ([`CapnpWords`], the reorder buffer's [`Words`] for Cap'n Proto
//! connections), each error kind's code ([`error_code`]), and the Responses the front end
//! writes itself ([`local`], [`local_error`]).
//!
//! Error messages take Redis's words (`front::resp::words::error_text`) without the `ERR `
//! prefix, as the schema asks.

use crate::proto::capnp::piccolo_capnp::{ErrorCode, response};
use crate::proto::capnp::{self, MessageEncoder};
use crate::server::front::resp::words::{error_text, route_error_text};
use crate::server::info;
use crate::server::message::{ErrorKind, Outcome, Reply, packed_keys};
use crate::server::order::{Join, JoinKind, Shape, Tag, Words};
use crate::server::route::RouteError;
use crate::server::session::{Session, Wire};

/// The reorder buffer's words for a Cap'n Proto connection: its Response encoder.
#[derive(Debug)]
pub struct CapnpWords<'a>(pub &'a mut MessageEncoder);

impl Words for CapnpWords<'_> {
    #[inline]
    fn reply(&mut self, reply: &Reply, tag: Tag, out: &mut Vec<u8>) {
        encode_reply(reply, tag, self.0, out);
    }

    fn joined(&mut self, join: &Join, tag: Tag, out: &mut Vec<u8>) {
        if let Some(error) = &join.error {
            encode_reply(error, tag, self.0, out);
            return;
        }
        self.0.encode_response(out, |mut response| {
            response.set_id(tag.id);
            match join.kind {
                JoinKind::Sum => response.set_integer(join.sum),
                JoinKind::AllOk => response.set_ok(()),
                // (`Items`: an MGET split over entries, which Cap'n Proto never asks for.)
                JoinKind::Array | JoinKind::Items => {
                    let mut values = response.init_values(join.items.len() as u32);
                    for (index, item) in join.items.iter().enumerate() {
                        let mut value = values.reborrow().get(index as u32);
                        match item {
                            Some(reply) if reply.outcome == Outcome::Bulk => {
                                value.set_data(reply.data.as_slice());
                            }
                            _ => value.set_absent(()),
                        }
                    }
                }
                JoinKind::Info => {
                    let text = info::render(join.info.as_deref(), &join.items);
                    response.set_info(text.as_str());
                }
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

    fn error(&mut self, kind: ErrorKind, tag: Tag, out: &mut Vec<u8>) {
        write_error(self.0, out, tag, kind);
    }

    /// The schema has no transaction: a Cap'n Proto connection never queues one.
    fn exec(&mut self, _len: Option<usize>, tag: Tag, out: &mut Vec<u8>) {
        debug_assert!(false, "EXEC's answer on a Cap'n Proto connection");
        write_error(self.0, out, tag, ErrorKind::Internal);
    }
}

/// Encodes one worker reply as a Response (see [`Shape`]).
#[inline]
fn encode_reply(reply: &Reply, tag: Tag, encoder: &mut MessageEncoder, out: &mut Vec<u8>) {
    // The hot answers (get's value, set's version) have a fixed layout and are written directly
    // (byte-identical to the builder's output, tested in proto::capnp).
    match reply.outcome {
        Outcome::Stored => return capnp::write_version_response(out, tag.id, reply.int as u64),
        Outcome::Bulk | Outcome::Simple => {
            return capnp::write_value_response(encoder, out, tag.id, reply.data.as_slice(), 0);
        }
        Outcome::ValueVersion => {
            let data = reply.data.as_slice();
            return capnp::write_value_response(encoder, out, tag.id, data, reply.int as u64);
        }
        Outcome::Error(kind) => return write_error(encoder, out, tag, kind),
        _ => {}
    }
    encoder.encode_response(out, |mut response| {
        response.set_id(tag.id);
        match (tag.shape, reply.outcome) {
            (Shape::Version, Outcome::Nil) | (_, Outcome::NotStored) => {
                response.set_condition_failed(())
            }
            (_, Outcome::Nil) => response.set_not_found(()),
            (_, Outcome::Ok) => response.set_ok(()),
            // The coordinator's own reads and EXEC's verdict never reach a client.
            (_, Outcome::Dumped | Outcome::Verdict) => {
                let mut error = response.init_error();
                error.set_code(ErrorCode::Internal);
                error.set_message("internal error");
            }
            (_, Outcome::Integer) => response.set_integer(reply.int),
            (_, Outcome::KeyPage | Outcome::KeyList) => {
                let packed = reply.data.as_slice();
                let mut page = response.init_scan_page();
                page.set_cursor(if reply.outcome == Outcome::KeyPage {
                    reply.int as u64
                } else {
                    0
                });
                let mut keys = page.init_keys(packed_keys(packed).count() as u32);
                for (index, key) in packed_keys(packed).enumerate() {
                    keys.set(index as u32, key);
                }
            }
            (
                _,
                Outcome::Stored
                | Outcome::Bulk
                | Outcome::Simple
                | Outcome::ValueVersion
                | Outcome::Error(_),
            ) => unreachable!("written above"),
        }
    });
}

/// The schema's code for a worker's error.
pub fn error_code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::NotInteger => ErrorCode::NotInteger,
        ErrorKind::Overflow | ErrorKind::DecrementOverflow | ErrorKind::ScanCursorOverflow => {
            ErrorCode::Overflow
        }
        // (As the server answered these before errors were typed; `tooLarge` and a code for
        // memory would say more, and clients may already match on these.)
        ErrorKind::TooLarge | ErrorKind::OutOfMemory => ErrorCode::InvalidArgument,
        ErrorKind::InvalidExpireTime | ErrorKind::NoSuchKey => ErrorCode::InvalidArgument,
        ErrorKind::Internal => ErrorCode::Internal,
    }
}

/// Redis's words without the `ERR ` prefix.
fn message(text: &str) -> &str {
    text.strip_prefix("ERR ").unwrap_or(text)
}

/// An `error` Response for a worker's error kind.
fn write_error(encoder: &mut MessageEncoder, out: &mut Vec<u8>, tag: Tag, kind: ErrorKind) {
    let text = error_text(kind, tag.command);
    capnp::write_error_response(encoder, out, tag.id, error_code(kind), message(&text));
}

/// A Response the front end writes itself, with `id`: now if nothing is pending, else in its
/// place. Only on a Cap'n Proto connection.
pub fn local(session: &mut Session, id: u64, build: impl FnOnce(response::Builder<'_>)) {
    let Wire::Capnp(encoder) = &mut session.wire else {
        debug_assert!(false, "a Cap'n Proto Response on a connection that is not");
        return;
    };
    session.order.local(&mut session.out, |out| {
        encoder.encode_response(out, |mut response| {
            response.set_id(id);
            build(response);
        });
    });
}

/// An `error` Response the front end writes itself.
pub fn local_error(session: &mut Session, id: u64, code: ErrorCode, message: &str) {
    local(session, id, |response| {
        let mut error = response.init_error();
        error.set_code(code);
        error.set_message(message);
    });
}

/// A routing error: `tooLarge`, in Redis's words.
pub fn local_route_error(session: &mut Session, id: u64, error: RouteError) {
    let text = route_error_text(error);
    local_error(session, id, ErrorCode::TooLarge, message(&text));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are the ones the server answered when it still guessed them from the RESP
    /// text (`notInteger`, `overflow`, `internal`, else `invalidArgument`), so clients see no
    /// change; the messages are Redis's words without `ERR `.
    #[test]
    fn error_kinds_keep_their_codes_and_words() {
        let cases = [
            (
                ErrorKind::NotInteger,
                ErrorCode::NotInteger,
                "value is not an integer or out of range",
            ),
            (
                ErrorKind::Overflow,
                ErrorCode::Overflow,
                "increment or decrement would overflow",
            ),
            (
                ErrorKind::DecrementOverflow,
                ErrorCode::Overflow,
                "decrement would overflow",
            ),
            (
                ErrorKind::ScanCursorOverflow,
                ErrorCode::Overflow,
                "scan cursor overflow",
            ),
            (
                ErrorKind::TooLarge,
                ErrorCode::InvalidArgument,
                "string exceeds maximum allowed size (proto-max-bulk-len)",
            ),
            (
                ErrorKind::OutOfMemory,
                ErrorCode::InvalidArgument,
                "OOM command not allowed when used memory > 'maxmemory'.",
            ),
            (ErrorKind::Internal, ErrorCode::Internal, "internal error"),
        ];
        for (kind, code, words) in cases {
            assert_eq!(error_code(kind), code, "{kind:?}");
            assert_eq!(message(&error_text(kind, None)), words, "{kind:?}");
        }
        let expire = error_text(
            ErrorKind::InvalidExpireTime,
            Some(crate::proto::CommandName::PExpire),
        );
        assert_eq!(
            error_code(ErrorKind::InvalidExpireTime),
            ErrorCode::InvalidArgument
        );
        assert_eq!(message(&expire), "invalid expire time in 'pexpire' command");
    }
}
