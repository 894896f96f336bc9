//! What the server answers: [`ReplyRef`] borrowed from the receive buffer (for callbacks that
//! should not allocate), [`Reply`] owned.

use super::error::{Error, ErrorCode};
use crate::proto::capnp::piccolo_capnp::{maybe_value, response};

/// A value and its version (the version changes on every write of the key; pass it to
/// [`Client::cas`](super::Client::cas)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The bytes.
    pub data: Vec<u8>,
    /// The key's version; 0 when the operation does not report one.
    pub version: u64,
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Pass it to the next scan; 0 when the iteration is complete.
    pub cursor: u64,
    /// Keys of this page (a key may appear on more than one page, as in Redis).
    pub keys: Vec<Vec<u8>>,
}

/// An answer, borrowed from the client's receive buffer until the callback returns.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyRef<'a> {
    /// Done (mset, flush, auth).
    Ok,
    /// A value that exists, with its version.
    Value {
        /// The bytes.
        data: &'a [u8],
        /// The key's version (0 when not reported).
        version: u64,
    },
    /// The key does not exist.
    NotFound,
    /// Counts, lengths, ttl in ms, incrBy results.
    Integer(i64),
    /// mget: one entry per key.
    Values(Vec<Option<&'a [u8]>>),
    /// A scan page.
    ScanPage {
        /// The next cursor (0: done).
        cursor: u64,
        /// The keys.
        keys: Vec<&'a [u8]>,
    },
    /// INFO text.
    Info(&'a str),
    /// A write succeeded: the key's new version.
    Version(u64),
    /// A conditional write did not happen.
    ConditionFailed,
    /// The ping's bytes.
    Pong(&'a [u8]),
    /// The server refused the request.
    Error {
        /// The reason.
        code: ErrorCode,
        /// For people.
        message: &'a str,
    },
}

impl<'a> ReplyRef<'a> {
    /// Reads a Response (lazily decoded fields are checked here).
    pub(crate) fn decode(response: response::Reader<'a>) -> Result<ReplyRef<'a>, Error> {
        use response::Which as W;
        let which = response.which().map_err(|::capnp::NotInSchema(ordinal)| {
            Error::Protocol(format!("unknown Response kind (union member {ordinal})"))
        })?;
        Ok(match which {
            W::Ok(()) => ReplyRef::Ok,
            W::Value(value) => {
                let value = value?;
                ReplyRef::Value {
                    data: value.get_data()?,
                    version: value.get_version(),
                }
            }
            W::NotFound(()) => ReplyRef::NotFound,
            W::Integer(number) => ReplyRef::Integer(number),
            W::Values(list) => {
                let list = list?;
                let mut values = Vec::with_capacity(list.len() as usize);
                for item in list.iter() {
                    values.push(match item.which() {
                        Ok(maybe_value::Absent(())) => None,
                        Ok(maybe_value::Data(data)) => Some(data?),
                        Err(_) => return Err(Error::Protocol("unknown MaybeValue kind".into())),
                    });
                }
                ReplyRef::Values(values)
            }
            W::ScanPage(page) => {
                let page = page?;
                let keys = page.get_keys()?;
                ReplyRef::ScanPage {
                    cursor: page.get_cursor(),
                    keys: keys.iter().collect::<Result<_, _>>()?,
                }
            }
            W::Info(text) => ReplyRef::Info(text_of(text?)?),
            W::Error(error) => {
                let error = error?;
                ReplyRef::Error {
                    code: ErrorCode::from_wire(error.get_code()),
                    message: text_of(error.get_message()?)?,
                }
            }
            W::Version(version) => ReplyRef::Version(version),
            W::ConditionFailed(()) => ReplyRef::ConditionFailed,
            W::Pong(data) => ReplyRef::Pong(data?),
        })
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Reply {
        match self {
            ReplyRef::Ok => Reply::Ok,
            ReplyRef::Value { data, version } => Reply::Value(Value {
                data: data.to_vec(),
                version: *version,
            }),
            ReplyRef::NotFound => Reply::NotFound,
            ReplyRef::Integer(number) => Reply::Integer(*number),
            ReplyRef::Values(values) => Reply::Values(
                values
                    .iter()
                    .map(|value| value.map(<[u8]>::to_vec))
                    .collect(),
            ),
            ReplyRef::ScanPage { cursor, keys } => Reply::ScanPage(ScanPage {
                cursor: *cursor,
                keys: keys.iter().map(|key| key.to_vec()).collect(),
            }),
            ReplyRef::Info(text) => Reply::Info((*text).to_owned()),
            ReplyRef::Version(version) => Reply::Version(*version),
            ReplyRef::ConditionFailed => Reply::ConditionFailed,
            ReplyRef::Pong(data) => Reply::Pong(data.to_vec()),
            ReplyRef::Error { code, message } => Reply::Error {
                code: *code,
                message: (*message).to_owned(),
            },
        }
    }

    /// The error for an answer `operation` does not expect: the server's own error as
    /// [`Error::Server`], anything else as [`Error::Protocol`].
    pub fn unexpected(&self, operation: &str) -> Error {
        match self {
            ReplyRef::Error { code, message } => Error::Server {
                code: *code,
                message: (*message).to_owned(),
            },
            other => Error::Protocol(format!(
                "unexpected answer to {operation}: {}",
                other.kind_name()
            )),
        }
    }

    /// The schema's name of the answer's kind (`value`, `notFound`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            ReplyRef::Ok => "ok",
            ReplyRef::Value { .. } => "value",
            ReplyRef::NotFound => "notFound",
            ReplyRef::Integer(_) => "integer",
            ReplyRef::Values(_) => "values",
            ReplyRef::ScanPage { .. } => "scanPage",
            ReplyRef::Info(_) => "info",
            ReplyRef::Version(_) => "version",
            ReplyRef::ConditionFailed => "conditionFailed",
            ReplyRef::Pong(_) => "pong",
            ReplyRef::Error { .. } => "error",
        }
    }
}

fn text_of(text: ::capnp::text::Reader<'_>) -> Result<&str, Error> {
    text.to_str()
        .map_err(|_| Error::Protocol("a Text field is not UTF-8".into()))
}

/// An owned answer (what [`Pipeline::execute`](super::Pipeline::execute) returns).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done.
    Ok,
    /// A value that exists.
    Value(Value),
    /// The key does not exist.
    NotFound,
    /// Counts, lengths, ttl in ms, incrBy results.
    Integer(i64),
    /// mget: one entry per key.
    Values(Vec<Option<Vec<u8>>>),
    /// A scan page.
    ScanPage(ScanPage),
    /// INFO text.
    Info(String),
    /// A write succeeded: the key's new version.
    Version(u64),
    /// A conditional write did not happen.
    ConditionFailed,
    /// The ping's bytes.
    Pong(Vec<u8>),
    /// The server refused this request (the others in a pipeline are unaffected).
    Error {
        /// The reason.
        code: ErrorCode,
        /// For people.
        message: String,
    },
}
