//! A blocking Cap'n Proto client for Piccolo: the only client code the CLI, the bench tool and
//! the Cerializer use.
//!
//! - [`Client::connect`] with a timeout, which also bounds every send and every wait for an
//!   answer afterwards.
//! - One method per operation of `schema/piccolo.capnp`, with typed answers: a missing key is
//!   `None` (or [`CasOutcome::NotFound`], [`Ttl::Missing`]), a condition that stopped a write is
//!   a value ([`SetOutcome::ConditionFailed`]); only what stops an operation is an [`Error`].
//! - [`Pipeline`]: many requests in one write, answers read back in order and matched by id.
//! - [`Client::reconnect`] on request: after an I/O error, a timeout or a server restart, the
//!   connection is dropped (a late answer must not be taken for the next request's), calls
//!   answer [`Error::NotConnected`], and `reconnect` dials again (and authenticates again if
//!   [`Client::auth`] succeeded before).
//!
//! It speaks plain `std::net::TcpStream` (no async runtime), encodes with the reusable
//! [`MessageEncoder`] and decodes answers in place from a
//! word-aligned receive buffer: in a steady state a request costs one small allocation (the
//! capnp crate's message builder creates its segment table per message) plus the values a
//! method returns as `Vec`s; [`Client::get_into`] and [`Pipeline::execute_with`] return none
//! (`tests/client_alloc.rs` counts).
//!
//! ```no_run
//! use piccolo::client::{CasOutcome, Client};
//! use std::time::Duration;
//!
//! let mut client = Client::connect("127.0.0.1:7379", Duration::from_secs(5))?;
//! client.set(b"greeting", b"hello")?;
//! assert_eq!(client.get(b"greeting")?, Some(b"hello".to_vec()));
//! assert_eq!(client.get(b"nope")?, None);
//!
//! // Compare-and-set: read the version, write only if nobody wrote in between.
//! let value = client.getv(b"greeting")?.expect("just set");
//! match client.cas(b"greeting", value.version, b"hi")? {
//!     CasOutcome::Written(version) => println!("now at version {version}"),
//!     CasOutcome::ConditionFailed => println!("someone else wrote first"),
//!     CasOutcome::NotFound => println!("someone deleted it"),
//! }
//! # Ok::<(), piccolo::client::Error>(())
//! ```

mod conn;
mod error;
mod pipeline;
mod reply;
mod request;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

pub use error::{Error, ErrorCode};
pub use pipeline::Pipeline;
pub use reply::{Reply, ReplyRef, ScanPage, Value};
pub use request::{Condition, Expiry, GetExpiry, Request, SetOptions};

use crate::proto::capnp::MessageEncoder;
use conn::Conn;
use request::{duration_ms, encode};

/// The server's default address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7379";

/// What a `set` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// Written; the key's new version.
    Written(u64),
    /// The condition did not hold; nothing was written.
    ConditionFailed,
}

impl SetOutcome {
    /// The new version, if written.
    pub fn version(self) -> Option<u64> {
        match self {
            SetOutcome::Written(version) => Some(version),
            SetOutcome::ConditionFailed => None,
        }
    }
}

/// What a [`Client::cas`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// Written; the key's new version.
    Written(u64),
    /// The key exists with another version; nothing was written.
    ConditionFailed,
    /// The key does not exist; nothing was written.
    NotFound,
}

/// A key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and does not expire.
    Persistent,
    /// The key expires after this long (ms precision).
    Remaining(Duration),
}

/// A connection to one Piccolo server. Not thread-safe by design (`&mut self` everywhere): use
/// one per thread.
pub struct Client {
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    conn: Option<Conn>,
    out: Vec<u8>,
    encoder: MessageEncoder,
    next_id: u64,
    /// Username and password of the last successful `auth`, replayed by `reconnect`.
    credentials: Option<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addrs", &self.addrs)
            .field("timeout", &self.timeout)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `addr` (every address it resolves to is tried in turn), waiting at most
    /// `timeout` for each; `timeout` also bounds every later send and wait for an answer.
    ///
    /// ```no_run
    /// use piccolo::client::Client;
    /// use std::time::Duration;
    ///
    /// let mut client = Client::connect("localhost:7379", Duration::from_secs(2))?;
    /// assert_eq!(client.ping(b"")?, b"PONG");
    /// # Ok::<(), piccolo::client::Error>(())
    /// ```
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> Result<Client, Error> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(Error::Io)?.collect();
        if addrs.is_empty() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the address resolves to nothing",
            )));
        }
        let mut client = Client {
            addrs,
            timeout,
            conn: None,
            out: Vec::with_capacity(4096),
            encoder: MessageEncoder::new(1024),
            next_id: 1,
            credentials: None,
        };
        client.dial()?;
        Ok(client)
    }

    fn dial(&mut self) -> Result<(), Error> {
        self.conn = None;
        let timeout = Some(self.timeout).filter(|timeout| !timeout.is_zero());
        let mut last = Error::NotConnected;
        for addr in &self.addrs {
            let stream = match timeout {
                Some(timeout) => TcpStream::connect_timeout(addr, timeout),
                None => TcpStream::connect(addr),
            };
            match stream {
                Ok(stream) => {
                    stream.set_read_timeout(timeout)?;
                    stream.set_write_timeout(timeout)?;
                    stream.set_nodelay(true)?;
                    self.conn = Some(Conn::new(stream));
                    return Ok(());
                }
                Err(error) => last = Error::from_io(error),
            }
        }
        Err(last)
    }

    /// Drops the connection (if any) and connects again to the same address, then
    /// authenticates with the credentials of the last successful [`Client::auth`], if any.
    ///
    /// ```no_run
    /// use piccolo::client::{Client, Error};
    /// use std::time::Duration;
    ///
    /// let mut client = Client::connect("127.0.0.1:7379", Duration::from_secs(2))?;
    /// let value = match client.get(b"k") {
    ///     Err(error) if error.is_fatal() => {
    ///         client.reconnect()?;
    ///         client.get(b"k")?
    ///     }
    ///     other => other?,
    /// };
    /// # Ok::<(), Error>(())
    /// ```
    pub fn reconnect(&mut self) -> Result<(), Error> {
        self.dial()?;
        if let Some((username, password)) = self.credentials.clone() {
            self.auth_user(&username, &password)?;
        }
        Ok(())
    }

    /// Whether the client holds a connection (false after a fatal error, until
    /// [`Client::reconnect`]).
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The address connected to (the first one tried when not connected).
    pub fn addr(&self) -> SocketAddr {
        self.conn
            .as_ref()
            .and_then(|conn| conn.stream.peer_addr().ok())
            .unwrap_or(self.addrs[0])
    }

    /// The timeout for connecting, sending and each wait for an answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Drops the connection after a fatal error.
    fn check<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(error) = &result {
            if error.is_fatal() {
                self.conn = None;
            }
        }
        result
    }

    /// Sends one request and hands its answer to `handle`. The building block of every
    /// operation method; use it for a request those do not cover.
    ///
    /// ```no_run
    /// use piccolo::client::{Client, ReplyRef, Request};
    /// use std::time::Duration;
    ///
    /// let mut client = Client::connect("127.0.0.1:7379", Duration::from_secs(2))?;
    /// let length = client.call(&Request::Strlen(b"k"), |reply| match reply {
    ///     ReplyRef::Integer(length) => Ok(length),
    ///     other => Err(other.unexpected("strlen")),
    /// })?;
    /// # Ok::<(), piccolo::client::Error>(())
    /// ```
    pub fn call<T>(
        &mut self,
        request: &Request<'_>,
        handle: impl FnOnce(ReplyRef<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.out.clear();
        encode(id, request, &mut self.encoder, &mut self.out);
        let result = match self.conn.as_mut() {
            None => Err(Error::NotConnected),
            Some(conn) => match conn.stream_write(&self.out) {
                Err(error) => Err(error),
                Ok(()) => conn.next_reply(id, handle).and_then(|result| result),
            },
        };
        self.check(result)
    }

    /// Starts a [`Pipeline`] on this connection.
    pub fn pipeline(&mut self) -> Pipeline<'_> {
        Pipeline::new(self)
    }

    // ----- operations --------------------------------------------------------------------

    /// Ping: the server answers with the same bytes (`PONG` for empty bytes).
    pub fn ping(&mut self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.call(&Request::Ping(message), |reply| match reply {
            ReplyRef::Pong(data) => Ok(data.to_vec()),
            other => Err(other.unexpected("ping")),
        })
    }

    /// Authenticates the connection with the server's `--requirepass` (the default user).
    /// [`Client::reconnect`] replays it.
    ///
    /// ```no_run
    /// use piccolo::client::{Client, ErrorCode};
    /// use std::time::Duration;
    ///
    /// let mut client = Client::connect("127.0.0.1:7379", Duration::from_secs(2))?;
    /// match client.auth(b"guess") {
    ///     Err(error) if error.code() == Some(ErrorCode::Unauthenticated) => {
    ///         println!("wrong password")
    ///     }
    ///     other => other?,
    /// }
    /// # Ok::<(), piccolo::client::Error>(())
    /// ```
    pub fn auth(&mut self, password: &[u8]) -> Result<(), Error> {
        self.auth_user("", password)
    }

    /// Authenticates as `username` (only `default` is known to the server; empty is the
    /// one-argument form).
    pub fn auth_user(&mut self, username: &str, password: &[u8]) -> Result<(), Error> {
        self.call(&Request::Auth { username, password }, |reply| match reply {
            ReplyRef::Ok => Ok(()),
            other => Err(other.unexpected("auth")),
        })?;
        self.credentials = Some((username.to_owned(), password.to_vec()));
        Ok(())
    }

    /// The value of `key`, or `None`.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.call(&Request::Get(key), |reply| match reply {
            ReplyRef::Value { data, .. } => Ok(Some(data.to_vec())),
            ReplyRef::NotFound => Ok(None),
            other => Err(other.unexpected("get")),
        })
    }

    /// The value of `key` into `out` (cleared first), without allocating once `out` is large
    /// enough; the version, or `None` when the key does not exist.
    pub fn get_into(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<Option<u64>, Error> {
        out.clear();
        self.call(&Request::Get(key), |reply| match reply {
            ReplyRef::Value { data, version } => {
                out.extend_from_slice(data);
                Ok(Some(version))
            }
            ReplyRef::NotFound => Ok(None),
            other => Err(other.unexpected("get")),
        })
    }

    /// The value of `key` with its version (for [`Client::cas`]), or `None`.
    pub fn getv(&mut self, key: &[u8]) -> Result<Option<Value>, Error> {
        self.call(&Request::GetV(key), |reply| match reply {
            ReplyRef::Value { data, version } => Ok(Some(Value {
                data: data.to_vec(),
                version,
            })),
            ReplyRef::NotFound => Ok(None),
            other => Err(other.unexpected("getV")),
        })
    }

    /// Sets `key` (a plain SET: any expiry is removed); the new version.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<u64, Error> {
        match self.set_with(key, value, SetOptions::new())? {
            SetOutcome::Written(version) => Ok(version),
            SetOutcome::ConditionFailed => Err(Error::Protocol(
                "an unconditional set answered conditionFailed".into(),
            )),
        }
    }

    /// Sets `key` with a condition and an expiry.
    ///
    /// ```no_run
    /// use piccolo::client::{Client, SetOptions, SetOutcome};
    /// use std::time::Duration;
    ///
    /// let mut client = Client::connect("127.0.0.1:7379", Duration::from_secs(2))?;
    /// let lock = SetOptions::new().if_absent().ttl(Duration::from_secs(30));
    /// match client.set_with(b"lock", b"me", lock)? {
    ///     SetOutcome::Written(_) => println!("locked"),
    ///     SetOutcome::ConditionFailed => println!("someone holds it"),
    /// }
    /// # Ok::<(), piccolo::client::Error>(())
    /// ```
    pub fn set_with(
        &mut self,
        key: &[u8],
        value: &[u8],
        options: SetOptions<'_>,
    ) -> Result<SetOutcome, Error> {
        let request = Request::Set {
            key,
            value,
            options,
            return_old: false,
        };
        self.call(&request, |reply| match reply {
            ReplyRef::Version(version) => Ok(SetOutcome::Written(version)),
            ReplyRef::ConditionFailed => Ok(SetOutcome::ConditionFailed),
            other => Err(other.unexpected("set")),
        })
    }

    /// Sets `key` and answers its old value (SET ... GET), whether or not the condition let
    /// the write happen.
    pub fn set_get(
        &mut self,
        key: &[u8],
        value: &[u8],
        options: SetOptions<'_>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let request = Request::Set {
            key,
            value,
            options,
            return_old: true,
        };
        self.call(&request, |reply| match reply {
            ReplyRef::Value { data, .. } => Ok(Some(data.to_vec())),
            ReplyRef::NotFound => Ok(None),
            other => Err(other.unexpected("set")),
        })
    }

    /// Sets `key` only if it does not exist: the new version, or `None` when it existed.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<Option<u64>, Error> {
        Ok(self
            .set_with(key, value, SetOptions::new().if_absent())?
            .version())
    }

    /// Sets `key` only if it exists (its expiry is removed, as with any plain set): the new
    /// version, or `None` when it did not exist.
    pub fn update(&mut self, key: &[u8], value: &[u8]) -> Result<Option<u64>, Error> {
        Ok(self
            .set_with(key, value, SetOptions::new().if_present())?
            .version())
    }

    /// Writes `value` only if `key` still has `version`.
    pub fn cas(&mut self, key: &[u8], version: u64, value: &[u8]) -> Result<CasOutcome, Error> {
        let request = Request::Cas {
            key,
            version,
            value,
        };
        self.call(&request, |reply| match reply {
            ReplyRef::Version(version) => Ok(CasOutcome::Written(version)),
            ReplyRef::ConditionFailed => Ok(CasOutcome::ConditionFailed),
            ReplyRef::NotFound => Ok(CasOutcome::NotFound),
            other => Err(other.unexpected("cas")),
        })
    }

    /// Deletes `key`; whether it existed.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, Error> {
        Ok(self.delete_many(&[key])? == 1)
    }

    /// Deletes `keys`; how many existed.
    pub fn delete_many(&mut self, keys: &[&[u8]]) -> Result<u64, Error> {
        self.count(&Request::Delete(keys), "delete")
    }

    /// Whether `key` exists.
    pub fn exists(&mut self, key: &[u8]) -> Result<bool, Error> {
        Ok(self.exists_many(&[key])? == 1)
    }

    /// How many of `keys` exist (a key named twice counts twice).
    pub fn exists_many(&mut self, keys: &[&[u8]]) -> Result<u64, Error> {
        self.count(&Request::Exists(keys), "exists")
    }

    /// The value of `key`, which is then removed; `None` when it did not exist.
    pub fn get_del(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.call(&Request::GetDel(key), |reply| match reply {
            ReplyRef::Value { data, .. } => Ok(Some(data.to_vec())),
            ReplyRef::NotFound => Ok(None),
            other => Err(other.unexpected("getDel")),
        })
    }

    /// The value of `key` (or `None`), changing its time to live as `expiry` says (GETEX).
    pub fn get_ex(&mut self, key: &[u8], expiry: GetExpiry) -> Result<Option<Vec<u8>>, Error> {
        self.call(&Request::GetEx { key, expiry }, |reply| match reply {
            ReplyRef::Value { data, .. } => Ok(Some(data.to_vec())),
            ReplyRef::NotFound => Ok(None),
            other => Err(other.unexpected("getEx")),
        })
    }

    /// Adds `delta` to the integer in `key` (a missing key counts as 0); the result.
    /// A value that is not an integer is [`ErrorCode::NotInteger`].
    pub fn incr(&mut self, key: &[u8], delta: i64) -> Result<i64, Error> {
        self.integer(&Request::IncrBy { key, delta }, "incrBy")
    }

    /// Appends `value`; the new length.
    pub fn append(&mut self, key: &[u8], value: &[u8]) -> Result<u64, Error> {
        self.count(&Request::Append { key, value }, "append")
    }

    /// The length of the value (0 for a missing key).
    pub fn strlen(&mut self, key: &[u8]) -> Result<u64, Error> {
        self.count(&Request::Strlen(key), "strlen")
    }

    /// Makes `key` expire after `ttl` (zero removes it now); whether the key exists.
    pub fn expire(&mut self, key: &[u8], ttl: Duration) -> Result<bool, Error> {
        let ms = i64::try_from(duration_ms(ttl)).unwrap_or(i64::MAX);
        Ok(self.count(&Request::ExpireInMs { key, ms }, "expire")? == 1)
    }

    /// Makes `key` expire at a Unix time in ms (the past removes it now); whether it exists.
    pub fn expire_at(&mut self, key: &[u8], unix_ms: i64) -> Result<bool, Error> {
        let request = Request::ExpireAtUnixMs { key, unix_ms };
        Ok(self.count(&request, "expire")? == 1)
    }

    /// Removes the expiry of `key`; whether it had one.
    pub fn persist(&mut self, key: &[u8]) -> Result<bool, Error> {
        Ok(self.count(&Request::Persist(key), "persist")? == 1)
    }

    /// The time to live of `key`.
    pub fn ttl(&mut self, key: &[u8]) -> Result<Ttl, Error> {
        match self.integer(&Request::Ttl(key), "ttl")? {
            -2 => Ok(Ttl::Missing),
            -1 => Ok(Ttl::Persistent),
            ms if ms >= 0 => Ok(Ttl::Remaining(Duration::from_millis(ms as u64))),
            other => Err(Error::Protocol(format!("ttl answered {other}"))),
        }
    }

    /// The values of `keys`, in order.
    pub fn mget(&mut self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        self.call(&Request::Mget(keys), |reply| match reply {
            ReplyRef::Values(values) if values.len() == keys.len() => Ok(values
                .iter()
                .map(|value| value.map(<[u8]>::to_vec))
                .collect()),
            other => Err(other.unexpected("mget")),
        })
    }

    /// Sets every pair (plain sets).
    pub fn mset(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), Error> {
        self.ok(&Request::Mset(pairs), "mset")
    }

    /// One page of a scan: start with cursor 0, pass each page's cursor to the next call, stop
    /// when it is 0. `count` is a hint (0: the server's default); `pattern` a glob (empty:
    /// every key).
    ///
    /// ```no_run
    /// use piccolo::client::Client;
    /// use std::time::Duration;
    ///
    /// let mut client = Client::connect("127.0.0.1:7379", Duration::from_secs(2))?;
    /// let mut cursor = 0;
    /// loop {
    ///     let page = client.scan(cursor, 100, b"user:*")?;
    ///     for key in &page.keys {
    ///         println!("{}", String::from_utf8_lossy(key));
    ///     }
    ///     cursor = page.cursor;
    ///     if cursor == 0 {
    ///         break;
    ///     }
    /// }
    /// # Ok::<(), piccolo::client::Error>(())
    /// ```
    pub fn scan(&mut self, cursor: u64, count: u32, pattern: &[u8]) -> Result<ScanPage, Error> {
        let request = Request::Scan {
            cursor,
            count,
            pattern,
        };
        self.call(&request, |reply| match reply {
            ReplyRef::ScanPage { cursor, keys } => Ok(ScanPage {
                cursor,
                keys: keys.iter().map(|key| key.to_vec()).collect(),
            }),
            other => Err(other.unexpected("scan")),
        })
    }

    /// Every key matching `pattern` (empty: all), by scanning to the end; each key once,
    /// sorted.
    pub fn scan_all(&mut self, pattern: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        let mut keys = std::collections::BTreeSet::new();
        let mut cursor = 0;
        loop {
            let page = self.scan(cursor, 1000, pattern)?;
            keys.extend(page.keys);
            cursor = page.cursor;
            if cursor == 0 {
                return Ok(keys.into_iter().collect());
            }
        }
    }

    /// The number of keys.
    pub fn dbsize(&mut self) -> Result<u64, Error> {
        self.count(&Request::DbSize, "dbsize")
    }

    /// Removes every key.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.ok(&Request::Flush, "flush")
    }

    /// INFO text of `section` (empty: the default sections).
    pub fn info(&mut self, section: &str) -> Result<String, Error> {
        self.call(&Request::Info(section), |reply| match reply {
            ReplyRef::Info(text) => Ok(text.to_owned()),
            other => Err(other.unexpected("info")),
        })
    }

    // ----- helpers -----------------------------------------------------------------------

    fn integer(&mut self, request: &Request<'_>, name: &str) -> Result<i64, Error> {
        self.call(request, |reply| match reply {
            ReplyRef::Integer(number) => Ok(number),
            other => Err(other.unexpected(name)),
        })
    }

    fn count(&mut self, request: &Request<'_>, name: &str) -> Result<u64, Error> {
        let number = self.integer(request, name)?;
        u64::try_from(number).map_err(|_| Error::Protocol(format!("{name} answered {number}")))
    }

    fn ok(&mut self, request: &Request<'_>, name: &str) -> Result<(), Error> {
        self.call(request, |reply| match reply {
            ReplyRef::Ok => Ok(()),
            other => Err(other.unexpected(name)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Client>();
        send::<Error>();
    }

    #[test]
    fn requests_decode_as_the_server_reads_them() {
        use crate::proto::capnp::decode_request;
        use crate::proto::capnp::piccolo_capnp::{request, set};
        let mut encoder = MessageEncoder::default();
        let mut out = Vec::new();
        let options = SetOptions::new()
            .if_version(7)
            .ttl(Duration::from_millis(1500));
        let request = Request::Set {
            key: b"k",
            value: b"v",
            options,
            return_old: true,
        };
        encode(42, &request, &mut encoder, &mut out);
        let mut scratch = Vec::new();
        let message = decode_request(&out, &mut scratch).unwrap();
        let reader = message.get().unwrap();
        assert_eq!(reader.get_id(), 42);
        let Ok(request::Which::Set(set)) = reader.which() else {
            panic!("a set")
        };
        let set = set.unwrap();
        assert_eq!(set.get_key().unwrap(), b"k");
        assert_eq!(set.get_value().unwrap(), b"v");
        assert!(set.get_return_old());
        assert!(matches!(
            set.get_condition().which(),
            Ok(set::condition::IfVersion(7))
        ));
        assert!(matches!(
            set.get_expiry().which(),
            Ok(set::expiry::InMs(1500))
        ));
    }
}
