//! Cap'n Proto dispatch on the reactor: turns one decoded `Request` into either a Response the
//! reactor writes itself (pong, argument errors, unsupported operations) or [`Request`]s routed
//! by key through [`super::route`], the same layer RESP uses.
//!
//! Each entry in the reorder buffer is tagged with the client's request id and how to read the
//! worker's reply ([`Tag`], [`Shape`]); [`super::order`] encodes the Response when the entry
//! reaches the front, so Responses come back in request order with their ids.
//!
//! [`Request`]: super::message::Request

use piccolo_queues::Variant;

use super::commands::{InfoRequest, check_credentials, info_request};
use super::message::{Op, expire_flags, getex_flags, scan_flags, set_flags};
use super::order::{JoinKind, Shape, Tag};
use super::reactor::{Router, ServerInfo, Session};
use super::route::{self, Dispatch, broadcast, single};
use crate::proto::capnp::piccolo_capnp::{ErrorCode, auth, expire, get_ex, request, set};

/// Handles one decoded Request. `Err` means the message is malformed (a field that does not
/// decode): the caller answers `malformed` and closes the connection.
pub fn dispatch<V: Variant>(
    request: request::Reader<'_>,
    session: &mut Session,
    router: &mut Router<V>,
    info: &ServerInfo,
) -> ::capnp::Result<Dispatch> {
    let id = request.get_id();
    let plain = Tag {
        id,
        shape: Shape::Plain,
    };
    let which = match request.which() {
        Ok(which) => which,
        Err(::capnp::NotInSchema(ordinal)) => {
            if !session.authenticated {
                return Ok(unauthenticated(session, id));
            }
            let message = format!("unknown operation (union member {ordinal})");
            error_response(session, id, ErrorCode::UnknownOperation, &message);
            return Ok(Dispatch::Done);
        }
    };
    if let request::Which::Auth(auth) = which {
        return auth_operation(auth?, id, session, info);
    }
    if !session.authenticated {
        return Ok(unauthenticated(session, id));
    }
    use request::Which as W;
    session.order.set_next_tag(plain);
    let dispatch = match which {
        W::Ping(message) => {
            let message = message?;
            let message: &[u8] = if message.is_empty() { b"PONG" } else { message };
            session
                .order
                .local_capnp(&mut session.out, id, |mut response| {
                    response.set_pong(message)
                });
            Dispatch::Done
        }
        W::Get(key) => single(session, router, Op::GetV, key?, 0, 0, b"", None),
        W::GetV(key) => single(session, router, Op::GetV, key?, 0, 0, b"", None),
        W::GetDel(key) => single(session, router, Op::GetDel, key?, 0, 0, b"", None),
        W::Strlen(key) => single(session, router, Op::StrLen, key?, 0, 0, b"", None),
        W::Persist(key) => single(session, router, Op::Persist, key?, 0, 0, b"", None),
        W::Ttl(key) => single(session, router, Op::PTtl, key?, 0, 0, b"", None),
        W::IncrBy(incr) => {
            let incr = incr?;
            let (key, delta) = (incr.get_key()?, incr.get_delta());
            single(session, router, Op::IncrBy, key, 0, delta, b"", None)
        }
        W::Append(pair) => {
            let pair = pair?;
            let (key, value) = (pair.get_key()?, pair.get_value()?);
            single(session, router, Op::Append, key, 0, 0, value, None)
        }
        W::Expire(expire) => {
            let expire = expire?;
            let key = expire.get_key()?;
            let (flags, number) = match expire.which()? {
                expire::InMs(ms) => (expire_flags::MILLISECONDS, ms),
                expire::AtUnixMs(ms) => (expire_flags::MILLISECONDS | expire_flags::ABSOLUTE, ms),
            };
            single(session, router, Op::Expire, key, flags, number, b"", None)
        }
        W::GetEx(getex) => {
            let getex = getex?;
            let key = getex.get_key()?;
            let (flags, number) = match getex.get_expiry().which()? {
                get_ex::expiry::Keep(()) => (getex_flags::UNCHANGED, 0),
                get_ex::expiry::Persist(()) => (getex_flags::PERSIST, 0),
                get_ex::expiry::InMs(ms) => match positive_ms(ms) {
                    Some(ms) => (getex_flags::IN_MS, ms),
                    None => return Ok(invalid_expire(session, id, "getex")),
                },
                get_ex::expiry::AtUnixMs(ms) => match positive_ms(ms) {
                    Some(ms) => (getex_flags::AT_MS, ms),
                    None => return Ok(invalid_expire(session, id, "getex")),
                },
            };
            single(session, router, Op::GetEx, key, flags, number, b"", None)
        }
        W::Set(set) => return set_operation(set?, id, session, router),
        W::Cas(cas) => {
            let cas = cas?;
            let (key, value) = (cas.get_key()?, cas.get_value()?);
            // The store's versions are below 2^56, so a larger one can never match.
            let expected = i64::try_from(cas.get_version()).unwrap_or(i64::MAX);
            session.order.set_next_tag(Tag {
                id,
                shape: Shape::Cas,
            });
            single(session, router, Op::Cas, key, 0, expected, value, None)
        }
        W::Delete(keys) => {
            let keys = data_list(keys?)?;
            keyed(session, router, Op::Del, JoinKind::Sum, &keys, id)
        }
        W::Exists(keys) => {
            let keys = data_list(keys?)?;
            keyed(session, router, Op::Exists, JoinKind::Sum, &keys, id)
        }
        W::Mget(keys) => {
            let keys = data_list(keys?)?;
            keyed(session, router, Op::Get, JoinKind::Array, &keys, id)
        }
        W::Mset(pairs) => {
            let pairs = pairs?;
            let mut keys = Vec::with_capacity(pairs.len() as usize);
            let mut values = Vec::with_capacity(pairs.len() as usize);
            for pair in pairs.iter() {
                keys.push(pair.get_key()?);
                values.push(pair.get_value()?);
            }
            let parts = keys.len();
            if parts == 0 {
                session
                    .order
                    .local_capnp(&mut session.out, id, |mut response| response.set_ok(()));
                return Ok(Dispatch::Done);
            }
            let key = |index: usize| keys[index];
            let value = |index: usize| values[index];
            match route::multi(session, router, Op::Set, JoinKind::AllOk, parts, key, value) {
                Ok(dispatch) => dispatch,
                Err(error) => {
                    let message = error.to_string();
                    let session_out = &mut session.out;
                    session
                        .order
                        .local_capnp_error(session_out, id, message.as_bytes());
                    Dispatch::Done
                }
            }
        }
        W::Dbsize(()) => broadcast(session, router, Op::DbSize, JoinKind::Sum),
        W::Flush(()) => broadcast(session, router, Op::Flush, JoinKind::AllOk),
        W::Scan(scan) => {
            let scan = scan?;
            let pattern = scan.get_match()?;
            // 0 means the server's default, 10 as in Redis; the worker caps it as it caps
            // RESP's COUNT.
            let count = match scan.get_count() {
                0 => 10,
                count => u64::from(count),
            };
            let (pattern, flags) = if pattern.is_empty() {
                (None, 0)
            } else {
                (Some(pattern), scan_flags::MATCH)
            };
            route::scan(session, router, scan.get_cursor(), count, pattern, flags)
        }
        W::Auth(_) => unreachable!("answered before the authentication check"),
        W::Info(section) => {
            let section = section?.as_bytes();
            let section: &[u8] = if section.is_empty() {
                b"default"
            } else {
                section
            };
            match info_request(section, session, router, info) {
                InfoRequest::Local(text) => {
                    session
                        .order
                        .local_capnp(&mut session.out, id, |mut response| {
                            response.set_info(text.as_str())
                        });
                    Dispatch::Done
                }
                InfoRequest::Sent => Dispatch::Done,
                InfoRequest::Blocked => Dispatch::Blocked,
            }
        }
    };
    Ok(dispatch)
}

/// `set`: the condition, expiry and `returnOld` map onto SET's flags. `ifVersion` maps onto
/// CAS with the same expiry and `returnOld` flags (the expiry's ms in `extra`, since CAS's
/// `number` is the expected version); the worker does write and expiry in one `Shard::set`.
fn set_operation<V: Variant>(
    set: set::Reader<'_>,
    id: u64,
    session: &mut Session,
    router: &mut Router<V>,
) -> ::capnp::Result<Dispatch> {
    let (key, value) = (set.get_key()?, set.get_value()?);
    let return_old = set.get_return_old();
    let expiry = set.get_expiry().which()?;
    let (condition, extra) = match set.get_condition().which()? {
        set::condition::Always(()) => (set_flags::ALWAYS, None),
        set::condition::IfAbsent(()) => (set_flags::IF_ABSENT, None),
        set::condition::IfPresent(()) => (set_flags::IF_PRESENT, None),
        set::condition::IfEqual(expected) => (set_flags::IF_EQUAL, Some(expected?.into())),
        set::condition::IfVersion(expected) => {
            // The store's versions are below 2^56, so a larger one can never match.
            let expected = i64::try_from(expected).unwrap_or(i64::MAX);
            let (mut flags, number) = match expiry_flags(expiry) {
                Some(pair) => pair,
                None => return Ok(invalid_expire(session, id, "set")),
            };
            let shape = if return_old {
                flags |= set_flags::RETURN_OLD;
                Shape::Plain
            } else {
                Shape::Version
            };
            let extra: Option<Box<[u8]>> = match flags & set_flags::EXPIRY_MASK {
                set_flags::EXPIRY_IN_MS | set_flags::EXPIRY_AT_MS => {
                    Some(Box::new(number.to_le_bytes()))
                }
                _ => None,
            };
            session.order.set_next_tag(Tag { id, shape });
            return Ok(single(
                session,
                router,
                Op::Cas,
                key,
                flags,
                expected,
                value,
                extra,
            ));
        }
    };
    let Some((expiry_flags, number)) = expiry_flags(expiry) else {
        return Ok(invalid_expire(session, id, "set"));
    };
    let mut flags = condition | expiry_flags | set_flags::NAME_SET;
    let (op, shape) = if return_old {
        flags |= set_flags::RETURN_OLD;
        (Op::Set, Shape::Plain)
    } else {
        (Op::SetVersion, Shape::Version)
    };
    session.order.set_next_tag(Tag { id, shape });
    Ok(single(
        session, router, op, key, flags, number, value, extra,
    ))
}

/// SET's expiry flags and ms for a `set` expiry; `None` when a time is not positive.
fn expiry_flags(expiry: set::expiry::Which) -> Option<(u8, i64)> {
    Some(match expiry {
        set::expiry::Clear(()) => (set_flags::EXPIRY_CLEAR, 0),
        set::expiry::Keep(()) => (set_flags::EXPIRY_KEEP, 0),
        set::expiry::InMs(ms) => (set_flags::EXPIRY_IN_MS, positive_ms(ms)?),
        set::expiry::AtUnixMs(ms) => (set_flags::EXPIRY_AT_MS, positive_ms(ms)?),
    })
}

/// `auth`: checks the password as RESP's AUTH does (an empty username is the one-argument
/// form). A wrong password answers `unauthenticated` and leaves the connection as it was.
fn auth_operation(
    auth: auth::Reader<'_>,
    id: u64,
    session: &mut Session,
    info: &ServerInfo,
) -> ::capnp::Result<Dispatch> {
    let username = auth.get_username()?.as_bytes();
    let password = auth.get_password()?;
    let username = if username.is_empty() {
        None
    } else {
        Some(username)
    };
    if username.is_none() && info.requirepass.is_none() {
        error_response(
            session,
            id,
            ErrorCode::InvalidArgument,
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
    } else if check_credentials(username, password, info) {
        session.authenticated = true;
        session
            .order
            .local_capnp(&mut session.out, id, |mut response| response.set_ok(()));
    } else {
        error_response(
            session,
            id,
            ErrorCode::Unauthenticated,
            "WRONGPASS invalid username-password pair or user is disabled.",
        );
    }
    Ok(Dispatch::Done)
}

fn unauthenticated(session: &mut Session, id: u64) -> Dispatch {
    error_response(
        session,
        id,
        ErrorCode::Unauthenticated,
        "Authentication required.",
    );
    Dispatch::Done
}

/// A positive time in ms that fits an `i64`, as SET's and GETEX's expiries must be.
fn positive_ms(ms: u64) -> Option<i64> {
    i64::try_from(ms).ok().filter(|&ms| ms > 0)
}

fn invalid_expire(session: &mut Session, id: u64, command: &str) -> Dispatch {
    let message = format!("ERR invalid expire time in '{command}' command");
    let out = &mut session.out;
    session.order.local_capnp_error(out, id, message.as_bytes());
    Dispatch::Done
}

/// Collects a list of keys (a malformed element makes the whole message malformed).
fn data_list<'a>(list: ::capnp::data_list::Reader<'a>) -> ::capnp::Result<Vec<&'a [u8]>> {
    list.iter().collect()
}

/// A multi-key operation over `keys` through [`route::multi`].
fn keyed<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    op: Op,
    kind: JoinKind,
    keys: &[&[u8]],
    id: u64,
) -> Dispatch {
    if keys.is_empty() {
        // Redis refuses DEL/EXISTS/MGET without keys; the schema allows an empty list, whose
        // answer needs no worker.
        session
            .order
            .local_capnp(&mut session.out, id, |mut response| {
                if kind == JoinKind::Array {
                    response.init_values(0);
                } else {
                    response.set_integer(0);
                }
            });
        return Dispatch::Done;
    }
    let key = |index: usize| keys[index];
    match route::multi(session, router, op, kind, keys.len(), key, |_| b"") {
        Ok(dispatch) => dispatch,
        Err(error) => {
            let message = error.to_string();
            let out = &mut session.out;
            session.order.local_capnp_error(out, id, message.as_bytes());
            Dispatch::Done
        }
    }
}

/// An `error` Response with an explicit code.
fn error_response(session: &mut Session, id: u64, code: ErrorCode, message: &str) {
    session.order.local_capnp(&mut session.out, id, |response| {
        let mut error = response.init_error();
        error.set_code(code);
        error.set_message(message);
    });
}
