//! What a client can ask: [`Request`], one per operation of the schema, and the options of `set`.

use std::time::Duration;

use crate::proto::capnp::MessageEncoder;
use crate::proto::capnp::piccolo_capnp::request;

/// When a `set` writes (the schema's `Set.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition<'a> {
    /// Always (a plain SET).
    #[default]
    Always,
    /// Only if the key does not exist (SET NX; [`Client::insert`](super::Client::insert)).
    IfAbsent,
    /// Only if the key exists (SET XX; [`Client::update`](super::Client::update)).
    IfPresent,
    /// Only if the key exists with exactly this version (compare-and-set).
    IfVersion(u64),
    /// Only if the key exists and its value equals these bytes (SET IFEQ).
    IfEqual(&'a [u8]),
}

/// What a `set` does with the key's time to live (the schema's `Set.expiry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// No expiry afterwards (a plain SET removes one).
    #[default]
    Clear,
    /// Keep the key's current expiry (KEEPTTL).
    Keep,
    /// Expire after this long (PX; rounded down to whole ms, and must be at least 1 ms).
    In(Duration),
    /// Expire at this Unix time in ms (PXAT).
    AtUnixMs(u64),
}

/// Options of [`Client::set_with`](super::Client::set_with) and `set_get`: a condition and an
/// expiry, both defaulting to a plain SET.
///
/// ```
/// use piccolo::client::{Condition, Expiry, SetOptions};
/// use std::time::Duration;
///
/// let options = SetOptions::new().if_absent().ttl(Duration::from_secs(60));
/// assert_eq!(options.condition, Condition::IfAbsent);
/// assert_eq!(options.expiry, Expiry::In(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions<'a> {
    /// When to write.
    pub condition: Condition<'a>,
    /// What to do with the time to live.
    pub expiry: Expiry,
}

impl<'a> SetOptions<'a> {
    /// A plain SET: always write, clear the expiry.
    pub fn new() -> SetOptions<'a> {
        SetOptions::default()
    }

    /// Write only if the key does not exist.
    pub fn if_absent(mut self) -> Self {
        self.condition = Condition::IfAbsent;
        self
    }

    /// Write only if the key exists.
    pub fn if_present(mut self) -> Self {
        self.condition = Condition::IfPresent;
        self
    }

    /// Write only if the key exists with this version.
    pub fn if_version(mut self, version: u64) -> Self {
        self.condition = Condition::IfVersion(version);
        self
    }

    /// Write only if the key's value is `expected`.
    pub fn if_equal(mut self, expected: &'a [u8]) -> Self {
        self.condition = Condition::IfEqual(expected);
        self
    }

    /// Expire after `ttl`.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.expiry = Expiry::In(ttl);
        self
    }

    /// Keep the key's current expiry.
    pub fn keep_ttl(mut self) -> Self {
        self.expiry = Expiry::Keep;
        self
    }
}

/// One operation, borrowed from the caller's buffers; [`Pipeline::push`](super::Pipeline::push)
/// takes any of them, and the [`Client`](super::Client) methods build them for you.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Answered by `pong` with the same bytes (`PONG` for empty bytes).
    Ping(&'a [u8]),
    /// The value and its version, or not found.
    Get(&'a [u8]),
    /// As `Get` (the schema's `getV`).
    GetV(&'a [u8]),
    /// A SET with its options; with `return_old` the answer is the old value.
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
        /// Condition and expiry.
        options: SetOptions<'a>,
        /// Answer the old value instead of the new version (SET ... GET).
        return_old: bool,
    },
    /// Compare-and-set on the key's version.
    Cas {
        /// The key.
        key: &'a [u8],
        /// The version last read.
        version: u64,
        /// The new value.
        value: &'a [u8],
    },
    /// Removes the keys; answers how many existed.
    Delete(&'a [&'a [u8]]),
    /// How many of the keys exist.
    Exists(&'a [&'a [u8]]),
    /// The value, then removed.
    GetDel(&'a [u8]),
    /// Adds `delta` to an integer value (a missing key counts as 0).
    IncrBy {
        /// The key.
        key: &'a [u8],
        /// Negative to decrement.
        delta: i64,
    },
    /// Appends to the value; answers the new length.
    Append {
        /// The key.
        key: &'a [u8],
        /// The bytes to append.
        value: &'a [u8],
    },
    /// The value's length (0 when missing).
    Strlen(&'a [u8]),
    /// PEXPIRE: zero or negative removes the key.
    ExpireInMs {
        /// The key.
        key: &'a [u8],
        /// Milliseconds from now.
        ms: i64,
    },
    /// PEXPIREAT: a time in the past removes the key.
    ExpireAtUnixMs {
        /// The key.
        key: &'a [u8],
        /// Unix time in ms.
        unix_ms: i64,
    },
    /// Removes the expiry.
    Persist(&'a [u8]),
    /// Time to live in ms; -1 without expiry; -2 when missing.
    Ttl(&'a [u8]),
    /// Values of several keys.
    Mget(&'a [&'a [u8]]),
    /// Sets several keys.
    Mset(&'a [(&'a [u8], &'a [u8])]),
    /// One page of a scan.
    Scan {
        /// 0 to start; then the cursor of the previous page.
        cursor: u64,
        /// A hint of how many keys to return; 0 for the server's default.
        count: u32,
        /// A glob pattern (Redis's MATCH); empty for every key.
        pattern: &'a [u8],
    },
    /// Number of keys.
    DbSize,
    /// Removes every key.
    Flush,
    /// INFO text for a section (empty: the default sections).
    Info(&'a str),
    /// Authenticates the connection; an empty username is the default user.
    Auth {
        /// Empty or `default`.
        username: &'a str,
        /// The server's `--requirepass`.
        password: &'a [u8],
    },
}

/// Whole milliseconds of `duration`, saturating.
pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Appends `request` with `id`, framed, to `out`.
pub(crate) fn encode(
    id: u64,
    request: &Request<'_>,
    encoder: &mut MessageEncoder,
    out: &mut Vec<u8>,
) {
    encoder.encode_request(out, |mut builder| {
        builder.set_id(id);
        build(request, builder);
    });
}

fn build(request: &Request<'_>, mut builder: request::Builder<'_>) {
    match *request {
        Request::Ping(message) => builder.set_ping(message),
        Request::Get(key) => builder.set_get(key),
        Request::GetV(key) => builder.set_get_v(key),
        Request::Set {
            key,
            value,
            options,
            return_old,
        } => {
            let mut set = builder.init_set();
            set.set_key(key);
            set.set_value(value);
            set.set_return_old(return_old);
            let mut condition = set.reborrow().get_condition();
            match options.condition {
                Condition::Always => condition.set_always(()),
                Condition::IfAbsent => condition.set_if_absent(()),
                Condition::IfPresent => condition.set_if_present(()),
                Condition::IfVersion(version) => condition.set_if_version(version),
                Condition::IfEqual(expected) => condition.set_if_equal(expected),
            }
            let mut expiry = set.get_expiry();
            match options.expiry {
                Expiry::Clear => expiry.set_clear(()),
                Expiry::Keep => expiry.set_keep(()),
                Expiry::In(ttl) => expiry.set_in_ms(duration_ms(ttl)),
                Expiry::AtUnixMs(unix_ms) => expiry.set_at_unix_ms(unix_ms),
            }
        }
        Request::Cas {
            key,
            version,
            value,
        } => {
            let mut cas = builder.init_cas();
            cas.set_key(key);
            cas.set_version(version);
            cas.set_value(value);
        }
        Request::Delete(keys) => set_keys(builder.init_delete(keys.len() as u32), keys),
        Request::Exists(keys) => set_keys(builder.init_exists(keys.len() as u32), keys),
        Request::Mget(keys) => set_keys(builder.init_mget(keys.len() as u32), keys),
        Request::GetDel(key) => builder.set_get_del(key),
        Request::IncrBy { key, delta } => {
            let mut incr = builder.init_incr_by();
            incr.set_key(key);
            incr.set_delta(delta);
        }
        Request::Append { key, value } => {
            let mut append = builder.init_append();
            append.set_key(key);
            append.set_value(value);
        }
        Request::Strlen(key) => builder.set_strlen(key),
        Request::ExpireInMs { key, ms } => {
            let mut expire = builder.init_expire();
            expire.set_key(key);
            expire.set_in_ms(ms);
        }
        Request::ExpireAtUnixMs { key, unix_ms } => {
            let mut expire = builder.init_expire();
            expire.set_key(key);
            expire.set_at_unix_ms(unix_ms);
        }
        Request::Persist(key) => builder.set_persist(key),
        Request::Ttl(key) => builder.set_ttl(key),
        Request::Mset(pairs) => {
            let mut list = builder.init_mset(pairs.len() as u32);
            for (index, (key, value)) in pairs.iter().enumerate() {
                let mut pair = list.reborrow().get(index as u32);
                pair.set_key(key);
                pair.set_value(value);
            }
        }
        Request::Scan {
            cursor,
            count,
            pattern,
        } => {
            let mut scan = builder.init_scan();
            scan.set_cursor(cursor);
            scan.set_count(count);
            scan.set_match(pattern);
        }
        Request::DbSize => builder.set_dbsize(()),
        Request::Flush => builder.set_flush(()),
        Request::Info(section) => builder.set_info(section),
        Request::Auth { username, password } => {
            let mut auth = builder.init_auth();
            auth.set_username(username);
            auth.set_password(password);
        }
    }
}

fn set_keys(mut list: ::capnp::data_list::Builder<'_>, keys: &[&[u8]]) {
    for (index, key) in keys.iter().enumerate() {
        list.set(index as u32, key);
    }
}
