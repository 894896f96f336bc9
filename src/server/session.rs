//! What the front ends touch of one connection: the [`Session`], and AUTH's password check.
//!
//! The reactor owns the socket and the read buffer; the session is the part of a connection
//! that command dispatch reads and writes: its reply order, its encoded output, its name and
//! its authentication. The in-process benchmark pair (`bench_support`) builds one without a
//! socket.

use super::info::ServerInfo;
use super::message::ConnId;
use super::order::Order;
use crate::proto::Protocol;
use crate::proto::capnp::MessageEncoder;

/// Per-connection state that command dispatch touches.
#[derive(Debug)]
pub struct Session {
    /// The connection's id in the rings.
    pub id: ConnId,
    /// CLIENT ID.
    pub client_id: u64,
    /// The protocol, once the first byte has told it.
    pub wire: Wire,
    /// Reply order.
    pub order: Order,
    /// Encoded replies not yet written (the reactor writes them out).
    pub out: Vec<u8>,
    /// CLIENT SETNAME.
    pub name: Option<Vec<u8>>,
    /// Close once the output is written (QUIT, protocol error).
    pub closing: bool,
    /// AUTH succeeded (or no password is configured).
    pub authenticated: bool,
    /// The client asked the server to stop (SHUTDOWN).
    pub shutdown_requested: bool,
    /// Inside MULTI: the commands queued for EXEC. `None` outside a transaction. (The keys a
    /// connection WATCHes are kept by the coordinator, which reads their versions.)
    pub transaction: Option<Box<Queued>>,
}

/// A transaction's queued commands (RESP).
#[derive(Debug, Default)]
pub struct Queued {
    /// The commands, as RESP multibulk requests, one after the other.
    pub commands: Vec<u8>,
    /// How many.
    pub count: usize,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    pub refused: bool,
}

/// The protocol a connection speaks, with what encoding it needs.
#[derive(Debug)]
pub enum Wire {
    /// No byte has arrived yet.
    Undecided,
    /// RESP2.
    Resp,
    /// Cap'n Proto, with the connection's reusable Response encoder.
    Capnp(Box<MessageEncoder>),
}

/// Words in each Cap'n Proto connection's reusable Response segment (1 KiB): every Response
/// but large values and long lists fits; those spill to the heap.
pub const CAPNP_FIRST_SEGMENT_WORDS: u32 = 128;

impl Session {
    /// A new connection's session: nothing pending, protocol not known yet, authenticated
    /// unless `info` has a password.
    pub fn new(id: ConnId, client_id: u64, info: &ServerInfo) -> Session {
        Session {
            id,
            client_id,
            wire: Wire::Undecided,
            order: Order::default(),
            out: Vec::new(),
            name: None,
            closing: false,
            authenticated: info.requirepass.is_none(),
            shutdown_requested: false,
            transaction: None,
        }
    }

    /// Sets the protocol from the connection's first byte (`proto::detect`).
    pub fn speak(&mut self, protocol: Protocol) {
        self.wire = match protocol {
            Protocol::Resp => Wire::Resp,
            Protocol::Capnp => {
                Wire::Capnp(Box::new(MessageEncoder::new(CAPNP_FIRST_SEGMENT_WORDS)))
            }
        };
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess matched.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for (index, &byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(index).copied().unwrap_or(!byte));
    }
    difference == 0
}

/// Checks `username` (None for the one-argument form) and `password` against `--requirepass`,
/// as Redis's default user does. Both protocols' AUTH use it.
pub fn check_credentials(username: Option<&[u8]>, password: &[u8], info: &ServerInfo) -> bool {
    let user_ok = username.is_none_or(|user| user == b"default");
    match &info.requirepass {
        // No password: the default user is `nopass`.
        None => user_ok,
        Some(expected) => user_ok && same_secret(password, expected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"hunter2", b"hunter2"));
        assert!(!same_secret(b"hunter", b"hunter2"));
        assert!(!same_secret(b"hunter22", b"hunter2"));
        assert!(!same_secret(b"", b"x"));
        assert!(same_secret(b"", b""));
    }
}
