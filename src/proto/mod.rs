//! Wire codecs: RESP2 and Cap'n Proto, as pure functions over byte buffers.
//!
//! This module owns the bytes-to-requests and replies-to-bytes steps of the data path. It never
//! touches a socket, a thread or a clock: the reactor hands it a connection's read buffer and an
//! output `Vec<u8>`, and gets back commands, lengths and errors. That keeps every rule here
//! testable byte for byte, including the awkward inputs (split reads, garbage, absurd lengths).
//!
//! - [`detect`]: which protocol a connection speaks, from its first byte.
//! - [`resp`]: the RESP2 request parser ([`resp::parse`]) and its [`resp::Limits`].
//! - [`reply`]: the RESP2 reply encoder.
//! - [`command`]: command names ([`CommandName`]) and SET/GETEX option rules.
//! - [`capnp`]: Cap'n Proto stream framing, in-place decoding, reusable encoding, and the
//!   generated schema code.
//! - [`spec`]: the command table (arity, flags, key positions, docs) behind `COMMAND`.
//! - [`slot`]: the Redis Cluster key slot that routes a request to its worker.
//! - [`peer`]: Raft peer messages (`schema/peer.capnp`) to and from [`crate::raft::Message`].
//!
//! `docs/protocols.md` explains the choices.

pub mod capnp;
pub mod command;
pub mod peer;
pub mod reply;
pub mod resp;
pub mod slot;
pub mod spec;

pub use command::CommandName;

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2: multibulk (`*`) or inline commands.
    Resp,
    /// Cap'n Proto messages with standard stream framing.
    Capnp,
}

/// Decides a connection's protocol from the first byte it sends; the choice then holds for the
/// connection's life (as memcached does for its text and binary protocols).
///
/// Bytes `0x00..=0x08` mean Cap'n Proto: a framed message starts with its segment count minus
/// one as a little-endian `u32`, so a message of 1 to 9 segments starts with such a byte.
/// Everything else means RESP: `*` for multibulk, a letter for an inline command, and tab,
/// `\r`, `\n` or space (`0x09`, `0x0d`, `0x0a`, `0x20`) for someone typing into telnet, which
/// is why the Cap'n Proto range stops at `0x08`.
///
/// Edge case: a client whose *first* message has more than 9 segments (first byte `0x09` or
/// more) is taken for RESP and gets a protocol error. Cap'n Proto clients should send a first
/// message of one segment (any small request; Piccolo's client does), which every writer
/// produces for small messages. Later messages may have any count up to the frame limit.
#[inline]
pub fn detect(first_byte: u8) -> Protocol {
    if first_byte <= MAX_CAPNP_FIRST_BYTE {
        Protocol::Capnp
    } else {
        Protocol::Resp
    }
}

/// The largest first byte taken for Cap'n Proto (see [`detect`]).
pub const MAX_CAPNP_FIRST_BYTE: u8 = 0x08;

const _: () = assert!(
    MAX_CAPNP_FIRST_BYTE < b'\t',
    "telnet users may start with a tab"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_by_first_byte() {
        assert_eq!(detect(0x00), Protocol::Capnp);
        assert_eq!(detect(0x08), Protocol::Capnp);
        for byte in [
            b'*', b'P', b'p', b'\t', b'\r', b'\n', b' ', 0x09, 0x7f, 0xff,
        ] {
            assert_eq!(detect(byte), Protocol::Resp, "{byte:#04x}");
        }
        let mut encoder = capnp::MessageEncoder::default();
        let mut frame = Vec::new();
        encoder.encode_request(&mut frame, |mut request| request.set_ping(b""));
        assert_eq!(detect(frame[0]), Protocol::Capnp);
    }
}
