//! The Cap'n Proto front end: a framed, decoded `Request` becomes either a Response the front
//! end writes itself (pong, argument errors, unsupported operations) or requests routed by key
//! through `route`, the same layer RESP uses.
//!
//! Each entry in the reorder buffer is tagged with the client's request id and how to read the
//! worker's answer ([`Tag`], [`Shape`]); [`words`] encodes the Response when the entry reaches
//! the front, so Responses come back in request order with their ids.
//!
//! A frame header that breaks a limit, or a message that does not decode, gets one `error`
//! Response (`tooLarge` / `malformed`, id 0 when the id could not be read), a log line, and a
//! close: the stream cannot be resynchronised. Other connections carry on.

pub mod words;

use std::fmt;

use piccolo_queues::Variant;

use super::serve::FrontEnd;
use crate::proto::CommandName;
use crate::proto::capnp::piccolo_capnp::{ErrorCode, auth, expire, get_ex, request, set};
use crate::proto::capnp::{self, FrameError, FrameLimits, Message};
use crate::proto::command::Expiry;
use crate::server::info::{self, InfoPlan, ServerInfo};
use crate::server::message::{Expected, ExpireArgs, ExpireIf, Op, SetArgs, SetCondition, SetIf};
use crate::server::order::{JoinKind, Shape, Tag};
use crate::server::route::{self, Dispatch, Multi, Operation, Router, ScanCall, single};
use crate::server::session::{Session, check_credentials};
use words::{local, local_error, local_route_error};

/// The message of the error answered to requests read but not executed at shutdown.
pub const SHUTTING_DOWN: &str = "server is shutting down; command not executed";

/// The Cap'n Proto front end: frame limits, and where an unaligned frame is copied to be read
/// (reused by every connection).
#[derive(Debug)]
pub struct Capnp {
    limits: FrameLimits,
    scratch: Vec<::capnp::Word>,
}

impl Capnp {
    /// A front end that accepts frames of at most `max_query_bytes` (and the default limits).
    pub fn new(max_query_bytes: usize) -> Capnp {
        Capnp {
            limits: FrameLimits {
                max_message_bytes: FrameLimits::DEFAULT.max_message_bytes.min(max_query_bytes),
                ..FrameLimits::DEFAULT
            },
            scratch: Vec::new(),
        }
    }
}

/// A Cap'n Proto stream that cannot go on.
#[derive(Debug)]
pub enum Failure {
    /// A frame header breaks a limit (`tooLarge`).
    Frame(FrameError),
    /// A message or field does not decode (`malformed`). Boxed: the error is large and rare,
    /// and every `Result` on the hot path carries room for it.
    Malformed(Box<::capnp::Error>),
}

impl From<::capnp::Error> for Failure {
    #[cold]
    fn from(error: ::capnp::Error) -> Failure {
        Failure::Malformed(Box::new(error))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Frame(error) => write!(f, "{error}"),
            Failure::Malformed(error) => write!(f, "malformed Cap'n Proto request: {error}"),
        }
    }
}

impl FrontEnd for Capnp {
    type Frame<'a> = Message<'a, request::Owned>;
    type Failure = Failure;

    #[inline]
    fn next_frame<'a>(
        &'a mut self,
        buffer: &'a [u8],
    ) -> Result<Option<(Self::Frame<'a>, usize)>, Failure> {
        let Some(len) = capnp::frame_len(buffer, &self.limits).map_err(Failure::Frame)? else {
            return Ok(None);
        };
        let message = capnp::decode_request(&buffer[..len], &mut self.scratch)?;
        Ok(Some((message, len)))
    }

    #[inline]
    fn dispatch<V: Variant>(
        frame: Self::Frame<'_>,
        session: &mut Session,
        router: &mut Router<V>,
        info: &ServerInfo,
    ) -> Result<Dispatch, Failure> {
        Ok(dispatch(frame.get()?, session, router, info)?)
    }

    fn refuse(frame: Self::Frame<'_>, session: &mut Session) -> Result<(), Failure> {
        let id = frame.get()?.get_id();
        local_error(session, id, ErrorCode::ShuttingDown, SHUTTING_DOWN);
        Ok(())
    }

    fn fail(failure: &Failure, session: &mut Session) {
        let code = match failure {
            Failure::Frame(_) => ErrorCode::TooLarge,
            Failure::Malformed(_) => ErrorCode::Malformed,
        };
        local_error(session, 0, code, &failure.to_string());
    }
}

/// Handles one decoded Request. `Err` means the message is malformed (a field that does not
/// decode): the caller answers `malformed` and closes the connection.
pub fn dispatch<V: Variant>(
    request: request::Reader<'_>,
    session: &mut Session,
    router: &mut Router<V>,
    info: &ServerInfo,
) -> ::capnp::Result<Dispatch> {
    let id = request.get_id();
    let which = match request.which() {
        Ok(which) => which,
        Err(::capnp::NotInSchema(ordinal)) => {
            if !session.authenticated {
                return Ok(unauthenticated(session, id));
            }
            let message = format!("unknown operation (union member {ordinal})");
            local_error(session, id, ErrorCode::UnknownOperation, &message);
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
    let tagged = |command: Option<CommandName>, shape: Shape| Tag { id, command, shape };
    session.order.set_next_tag(tagged(None, Shape::Plain));
    let dispatch = match which {
        W::Ping(message) => {
            let message = message?;
            let message: &[u8] = if message.is_empty() { b"PONG" } else { message };
            local(session, id, |mut response| response.set_pong(message));
            Dispatch::Done
        }
        W::Get(key) | W::GetV(key) => single(session, router, Operation::new(Op::GetV, key?)),
        W::GetDel(key) => single(session, router, Operation::new(Op::GetDel, key?)),
        W::Strlen(key) => single(session, router, Operation::new(Op::StrLen, key?)),
        W::Persist(key) => single(session, router, Operation::new(Op::Persist, key?)),
        W::Ttl(key) => single(session, router, Operation::new(Op::PTtl, key?)),
        W::IncrBy(incr) => {
            let incr = incr?;
            let operation = Operation::new(Op::IncrBy(incr.get_delta()), incr.get_key()?);
            single(session, router, operation)
        }
        W::Append(pair) => {
            let pair = pair?;
            let operation =
                Operation::new(Op::Append, pair.get_key()?).with_value(pair.get_value()?);
            single(session, router, operation)
        }
        W::Expire(expire) => {
            let expire = expire?;
            let key = expire.get_key()?;
            let (ms, absolute) = match expire.which()? {
                expire::InMs(ms) => (ms, false),
                expire::AtUnixMs(ms) => (ms, true),
            };
            let args = ExpireArgs {
                ms,
                absolute,
                only_if: ExpireIf::default(),
            };
            // An invalid expire time reads as PEXPIRE's (the times are in ms).
            session
                .order
                .set_next_tag(tagged(Some(CommandName::PExpire), Shape::Plain));
            single(session, router, Operation::new(Op::Expire(args), key))
        }
        W::GetEx(getex) => {
            let getex = getex?;
            let key = getex.get_key()?;
            let expiry = match getex.get_expiry().which()? {
                get_ex::expiry::Keep(()) => Expiry::Unchanged,
                get_ex::expiry::Persist(()) => Expiry::Clear,
                get_ex::expiry::InMs(ms) => match positive_ms(ms) {
                    Some(ms) => Expiry::InMs(ms),
                    None => return Ok(invalid_expire(session, id, "getex")),
                },
                get_ex::expiry::AtUnixMs(ms) => match positive_ms(ms) {
                    Some(ms) => Expiry::AtUnixMs(ms),
                    None => return Ok(invalid_expire(session, id, "getex")),
                },
            };
            session
                .order
                .set_next_tag(tagged(Some(CommandName::GetEx), Shape::Plain));
            single(session, router, Operation::new(Op::GetEx(expiry), key))
        }
        W::Set(set) => return set_operation(set?, id, session, router),
        W::Cas(cas) => {
            let cas = cas?;
            let set_if = SetIf {
                expected: Expected::Version(cas.get_version()),
                expiry: Expiry::Clear,
                return_old: false,
            };
            let operation = Operation::new(Op::SetIf(Box::new(set_if)), cas.get_key()?)
                .with_value(cas.get_value()?);
            session
                .order
                .set_next_tag(tagged(Some(CommandName::Set), Shape::Cas));
            single(session, router, operation)
        }
        W::Delete(keys) => {
            let keys = data_list(keys?)?;
            keyed(
                session,
                router,
                id,
                Keyed::new(Op::Del, JoinKind::Sum, &keys),
            )
        }
        W::Exists(keys) => {
            let keys = data_list(keys?)?;
            keyed(
                session,
                router,
                id,
                Keyed::new(Op::Exists, JoinKind::Sum, &keys),
            )
        }
        W::Mget(keys) => {
            let keys = data_list(keys?)?;
            keyed(
                session,
                router,
                id,
                Keyed::new(Op::Get, JoinKind::Array, &keys),
            )
        }
        W::Mset(pairs) => {
            let pairs = pairs?;
            let mut keys = Vec::with_capacity(pairs.len() as usize);
            let mut values = Vec::with_capacity(pairs.len() as usize);
            for pair in pairs.iter() {
                keys.push(pair.get_key()?);
                values.push(pair.get_value()?);
            }
            if keys.is_empty() {
                local(session, id, |mut response| response.set_ok(()));
                return Ok(Dispatch::Done);
            }
            let multi = Multi {
                op: Op::Set(SetArgs::PLAIN),
                join: JoinKind::AllOk,
                parts: keys.len(),
                key: |index: usize| keys[index],
                value: |index: usize| values[index],
                split_arrays: false,
            };
            match route::multi(session, router, multi) {
                Ok(dispatch) => dispatch,
                Err(error) => {
                    local_route_error(session, id, error);
                    Dispatch::Done
                }
            }
        }
        W::Dbsize(()) => route::broadcast(session, router, Op::DbSize, JoinKind::Sum),
        W::Flush(()) => route::broadcast(session, router, Op::Flush, JoinKind::AllOk),
        W::Scan(scan) => {
            let scan = scan?;
            let pattern = scan.get_match()?;
            let call = ScanCall {
                cursor: scan.get_cursor(),
                // 0 means the server's default, 10 as in Redis; the worker caps it as it caps
                // RESP's COUNT.
                count: match scan.get_count() {
                    0 => 10,
                    count => count,
                },
                pattern: (!pattern.is_empty()).then_some(pattern),
                type_matches: true,
            };
            route::scan(session, router, call)
        }
        W::Auth(_) => unreachable!("answered before the authentication check"),
        W::Info(section) => {
            let section = section?.as_bytes();
            let section: &[u8] = if section.is_empty() {
                b"default"
            } else {
                section
            };
            match info::plan(section, info, router.in_flight()) {
                InfoPlan::Local(text) => {
                    local(session, id, |mut response| response.set_info(text.as_str()));
                    Dispatch::Done
                }
                InfoPlan::Workers(text) => route::stats(session, router, text),
            }
        }
    };
    Ok(dispatch)
}

/// `set`: the condition, expiry and `returnOld` become an [`Op::Set`], or for `ifEqual` and
/// `ifVersion` an [`Op::SetIf`]; either way the worker does write and expiry in one
/// `Shard::set`. Without `returnOld` a write answers the key's new version.
fn set_operation<V: Variant>(
    set: set::Reader<'_>,
    id: u64,
    session: &mut Session,
    router: &mut Router<V>,
) -> ::capnp::Result<Dispatch> {
    let (key, value) = (set.get_key()?, set.get_value()?);
    let return_old = set.get_return_old();
    let Some(expiry) = expiry(set.get_expiry().which()?) else {
        return Ok(invalid_expire(session, id, "set"));
    };
    let condition = match set.get_condition().which()? {
        set::condition::Always(()) => Ok(SetCondition::Always),
        set::condition::IfAbsent(()) => Ok(SetCondition::IfAbsent),
        set::condition::IfPresent(()) => Ok(SetCondition::IfPresent),
        set::condition::IfEqual(expected) => Err(Expected::Value(expected?.into())),
        set::condition::IfVersion(version) => Err(Expected::Version(version)),
    };
    let op = match condition {
        Ok(condition) => Op::Set(SetArgs {
            expiry,
            condition,
            return_old,
        }),
        Err(expected) => Op::SetIf(Box::new(SetIf {
            expected,
            expiry,
            return_old,
        })),
    };
    let shape = if return_old {
        Shape::Plain
    } else {
        Shape::Version
    };
    session.order.set_next_tag(Tag {
        id,
        command: Some(CommandName::Set),
        shape,
    });
    Ok(single(
        session,
        router,
        Operation::new(op, key).with_value(value),
    ))
}

/// SET's expiry for a `set` expiry; `None` when a time is not positive.
fn expiry(expiry: set::expiry::Which) -> Option<Expiry> {
    Some(match expiry {
        set::expiry::Clear(()) => Expiry::Clear,
        set::expiry::Keep(()) => Expiry::Keep,
        set::expiry::InMs(ms) => Expiry::InMs(positive_ms(ms)?),
        set::expiry::AtUnixMs(ms) => Expiry::AtUnixMs(positive_ms(ms)?),
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
        local_error(
            session,
            id,
            ErrorCode::InvalidArgument,
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
    } else if check_credentials(username, password, info) {
        session.authenticated = true;
        local(session, id, |mut response| response.set_ok(()));
    } else {
        local_error(
            session,
            id,
            ErrorCode::Unauthenticated,
            "WRONGPASS invalid username-password pair or user is disabled.",
        );
    }
    Ok(Dispatch::Done)
}

fn unauthenticated(session: &mut Session, id: u64) -> Dispatch {
    local_error(
        session,
        id,
        ErrorCode::Unauthenticated,
        "Authentication required.",
    );
    Dispatch::Done
}

/// A positive time in ms that fits an `i64`, as SET's and GETEX's expiries must be.
fn positive_ms(ms: u64) -> Option<u64> {
    i64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(|ms| ms as u64)
}

fn invalid_expire(session: &mut Session, id: u64, command: &str) -> Dispatch {
    let message = format!("invalid expire time in '{command}' command");
    local_error(session, id, ErrorCode::InvalidArgument, &message);
    Dispatch::Done
}

/// Collects a list of keys (a malformed element makes the whole message malformed).
fn data_list<'a>(list: ::capnp::data_list::Reader<'a>) -> ::capnp::Result<Vec<&'a [u8]>> {
    list.iter().collect()
}

/// A multi-key operation: `op` on every key of `keys`, the answers joined by `join`.
struct Keyed<'a, 'k> {
    op: Op,
    join: JoinKind,
    keys: &'a [&'k [u8]],
}

impl<'a, 'k> Keyed<'a, 'k> {
    fn new(op: Op, join: JoinKind, keys: &'a [&'k [u8]]) -> Self {
        Keyed { op, join, keys }
    }
}

/// A multi-key operation through [`route::multi`], for Request `id`.
fn keyed<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    id: u64,
    keyed: Keyed<'_, '_>,
) -> Dispatch {
    let Keyed { op, join, keys } = keyed;
    if keys.is_empty() {
        // Redis refuses DEL/EXISTS/MGET without keys; the schema allows an empty list, whose
        // answer needs no worker.
        local(session, id, |mut response| {
            if join == JoinKind::Array {
                response.init_values(0);
            } else {
                response.set_integer(0);
            }
        });
        return Dispatch::Done;
    }
    let multi = Multi {
        op,
        join,
        parts: keys.len(),
        key: |index: usize| keys[index],
        value: |_| &b""[..],
        split_arrays: false,
    };
    match route::multi(session, router, multi) {
        Ok(dispatch) => dispatch,
        Err(error) => {
            local_route_error(session, id, error);
            Dispatch::Done
        }
    }
}
