//! The client's errors: [`Error`] for everything that stops an operation, [`ErrorCode`] for the
//! server's reasons.

use core::fmt;
use std::io;

use crate::proto::capnp::piccolo_capnp;

/// Why an operation failed. "Not found" and "condition failed" are not errors: they are values
/// in the operations' results (`Option`, [`CasOutcome`](super::CasOutcome), ...).
///
/// After [`Error::Io`], [`Error::Timeout`], [`Error::Disconnected`] and [`Error::Protocol`] the
/// connection is dropped (a late answer would be taken for the next request's); every further
/// call returns [`Error::NotConnected`] until [`Client::reconnect`](super::Client::reconnect).
/// [`Error::Server`] leaves the connection usable, except with [`ErrorCode::Malformed`], after
/// which the server closes it.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// The socket failed (connection refused, reset, ...).
    Io(io::Error),
    /// Connecting, sending or waiting for an answer took longer than the client's timeout.
    Timeout,
    /// The server closed the connection.
    Disconnected,
    /// No connection: a previous error dropped it. Call `reconnect`.
    NotConnected,
    /// The server's bytes do not make sense: a frame or message that does not decode, an answer
    /// of the wrong kind for the request, or a Response id that is not the Request's.
    Protocol(String),
    /// The server answered with an error.
    Server {
        /// What a program should act on.
        code: ErrorCode,
        /// For people, worded as the RESP error for the same case.
        message: String,
    },
}

impl Error {
    /// Whether the connection is gone after this error (see the type's documentation).
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Server { code, .. } => *code == ErrorCode::Malformed,
            _ => true,
        }
    }

    /// The server's error code, if this is a server error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Maps a socket error: timeouts (`WouldBlock` from a read timeout on Unix, `TimedOut`
    /// elsewhere and from `connect_timeout`) become [`Error::Timeout`], a reset or broken pipe
    /// [`Error::Disconnected`].
    pub(crate) fn from_io(error: io::Error) -> Error {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Error::Disconnected,
            _ => Error::Io(error),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(error) => write!(f, "{error}"),
            Error::Timeout => write!(f, "timed out"),
            Error::Disconnected => write!(f, "the server closed the connection"),
            Error::NotConnected => write!(f, "not connected (a previous error dropped it)"),
            Error::Protocol(message) => write!(f, "protocol error: {message}"),
            Error::Server { code, message } => write!(f, "server error ({code}): {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        Error::from_io(error)
    }
}

impl From<::capnp::Error> for Error {
    fn from(error: ::capnp::Error) -> Error {
        Error::Protocol(format!("undecodable Response: {error}"))
    }
}

/// The server's reason for an error, the schema's `ErrorCode`: the decisions a program makes
/// differently.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A bug or an unexpected state in the server.
    Internal,
    /// The server does not know the operation (it is older than this client).
    UnknownOperation,
    /// A field has a value the operation does not accept (e.g. an expiry of 0).
    InvalidArgument,
    /// The value is not an integer, or out of range.
    NotInteger,
    /// An increment would overflow.
    Overflow,
    /// A key, value or message exceeds the server's limits.
    TooLarge,
    /// The server sheds load; retry later.
    Busy,
    /// Authenticate first, or the password was wrong.
    Unauthenticated,
    /// The server is stopping.
    ShuttingDown,
    /// (Cluster) the key lives on another node.
    Moved,
    /// The server could not decode the request and closes the connection.
    Malformed,
    /// A code this client does not know (the server is newer); the schema's ordinal.
    Other(u16),
}

impl ErrorCode {
    pub(crate) fn from_wire(
        code: Result<piccolo_capnp::ErrorCode, ::capnp::NotInSchema>,
    ) -> ErrorCode {
        use piccolo_capnp::ErrorCode as W;
        match code {
            Ok(W::Internal) => ErrorCode::Internal,
            Ok(W::UnknownOperation) => ErrorCode::UnknownOperation,
            Ok(W::InvalidArgument) => ErrorCode::InvalidArgument,
            Ok(W::NotInteger) => ErrorCode::NotInteger,
            Ok(W::Overflow) => ErrorCode::Overflow,
            Ok(W::TooLarge) => ErrorCode::TooLarge,
            Ok(W::Busy) => ErrorCode::Busy,
            Ok(W::Unauthenticated) => ErrorCode::Unauthenticated,
            Ok(W::ShuttingDown) => ErrorCode::ShuttingDown,
            Ok(W::Moved) => ErrorCode::Moved,
            Ok(W::Malformed) => ErrorCode::Malformed,
            Err(::capnp::NotInSchema(ordinal)) => ErrorCode::Other(ordinal),
        }
    }

    /// The schema's name for the code (`invalidArgument`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Internal => "internal",
            ErrorCode::UnknownOperation => "unknownOperation",
            ErrorCode::InvalidArgument => "invalidArgument",
            ErrorCode::NotInteger => "notInteger",
            ErrorCode::Overflow => "overflow",
            ErrorCode::TooLarge => "tooLarge",
            ErrorCode::Busy => "busy",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::ShuttingDown => "shuttingDown",
            ErrorCode::Moved => "moved",
            ErrorCode::Malformed => "malformed",
            ErrorCode::Other(_) => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Other(ordinal) => write!(f, "error code {ordinal}"),
            code => f.write_str(code.name()),
        }
    }
}
