//! The RESP2 front end: a parsed [`Command`] becomes either a reply the front end writes itself
//! or one or more requests routed by key to the workers that own the keys.
//!
//! Argument errors that need no data (arity, a bad integer, a SET option clash) are answered
//! here, in Redis's wording, so they never cost a trip through a ring. Everything the worker must
//! decide (conditions, existence, overflow) comes back as a typed outcome, worded by
//! [`words`]. Admin commands (PING, HELLO, CLIENT, COMMAND, CONFIG, INFO, ...) are in
//! [`admin`]; this file has the data commands.

pub mod admin;
pub mod transaction;
pub mod words;

use piccolo_queues::Variant;

use super::serve::FrontEnd;
use crate::proto::command::{
    Expiry, SetCondition as ParsedCondition, TimeUnit, parse_expire_ms, parse_getex_options,
    parse_set_options,
};
use crate::proto::resp::{self, Command, Limits, ProtoError, parse_i64};
use crate::proto::{CommandName, reply};
use crate::server::coord::MoveKind;
use crate::server::info::ServerInfo;
use crate::server::message::{Expected, ExpireArgs, ExpireIf, Op, SetArgs, SetCondition, SetIf};
use crate::server::order::{JoinKind, Tag};
use crate::server::route::{self, Dispatch, Multi, Operation, Router, ScanCall, single};
use crate::server::session::Session;
use words::{local, local_error, route_error_text};

/// The error text for commands read but not executed at shutdown.
pub const SHUTTING_DOWN: &[u8] = b"ERR server is shutting down; command not executed";

/// The RESP front end: the request limits it parses with.
#[derive(Clone, Copy, Debug)]
pub struct Resp {
    /// Bounds on one request.
    pub limits: Limits,
}

impl FrontEnd for Resp {
    type Frame<'a> = Command<'a>;
    type Failure = ProtoError;

    #[inline]
    fn next_frame<'a>(
        &'a mut self,
        buffer: &'a [u8],
    ) -> Result<Option<(Command<'a>, usize)>, ProtoError> {
        resp::parse(buffer, &self.limits)
    }

    #[inline]
    fn is_command(frame: &Command<'_>) -> bool {
        !frame.is_empty()
    }

    #[inline]
    fn dispatch<V: Variant>(
        frame: Command<'_>,
        session: &mut Session,
        router: &mut Router<V>,
        info: &ServerInfo,
    ) -> Result<Dispatch, ProtoError> {
        Ok(dispatch(&frame, session, router, info))
    }

    fn refuse(_frame: Command<'_>, session: &mut Session) -> Result<(), ProtoError> {
        local(session, |out| reply::error(out, SHUTTING_DOWN));
        Ok(())
    }

    fn fail(failure: &ProtoError, session: &mut Session) {
        local(session, |out| failure.write_reply(out));
    }
}

/// Handles one command.
pub fn dispatch<V: Variant>(
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
    info: &ServerInfo,
) -> Dispatch {
    let argc = command.len();
    let Some(name) = command.name() else {
        unknown_command(session, command);
        transaction::refused(session);
        return Dispatch::Done;
    };
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    use CommandName as C;
    if !session.authenticated && !matches!(name, C::Auth | C::Hello | C::Quit) {
        local_error(session, b"NOAUTH Authentication required.");
        return Dispatch::Done;
    }
    // One source of truth: the table `COMMAND` reports (`proto::spec`). MSET's pairs are the
    // one rule the table cannot say.
    let table_ok = name.spec().arity_ok(argc);
    let arity_ok = table_ok && (!matches!(name, C::MSet | C::MSetNx) || argc % 2 == 1);
    // Inside MULTI, or a wrong arity: out of line, so the common path stays as it was.
    if !arity_ok || session.transaction.is_some() {
        if let Some(done) = unusual(name, command, table_ok, session, info) {
            return done;
        }
    }
    let key = arg(1);
    match name {
        C::Info => return admin::info_command(command, session, router, info),
        name if admin::answers(name) => admin::answer(name, command, session, info),
        C::DbSize => return route::broadcast(session, router, Op::DbSize, JoinKind::Sum),
        C::FlushDb | C::FlushAll => {
            let mode = arg(1);
            if argc == 2
                && !mode.eq_ignore_ascii_case(b"ASYNC")
                && !mode.eq_ignore_ascii_case(b"SYNC")
            {
                local_error(session, b"ERR syntax error");
            } else {
                return route::broadcast(session, router, Op::Flush, JoinKind::AllOk);
            }
        }
        C::Get => return single(session, router, Operation::new(Op::Get, key)),
        C::GetDel => return single(session, router, Operation::new(Op::GetDel, key)),
        C::GetV => return single(session, router, Operation::new(Op::GetV, key)),
        C::Type => return single(session, router, Operation::new(Op::Type, key)),
        C::StrLen => return single(session, router, Operation::new(Op::StrLen, key)),
        C::Ttl => return single(session, router, Operation::new(Op::Ttl, key)),
        C::PTtl => return single(session, router, Operation::new(Op::PTtl, key)),
        C::Persist => return single(session, router, Operation::new(Op::Persist, key)),
        C::Incr => return single(session, router, Operation::new(Op::IncrBy(1), key)),
        C::Decr => return single(session, router, Operation::new(Op::IncrBy(-1), key)),
        C::IncrBy | C::DecrBy => {
            let Some(delta) = parse_i64(arg(2)) else {
                local_error(session, b"ERR value is not an integer or out of range");
                return Dispatch::Done;
            };
            let op = if name == C::IncrBy {
                Op::IncrBy(delta)
            } else {
                Op::DecrBy(delta)
            };
            return single(session, router, Operation::new(op, key));
        }
        C::Append => {
            let operation = Operation::new(Op::Append, key).with_value(arg(2));
            return single(session, router, operation);
        }
        C::Set => {
            remember(session, name);
            let options: Vec<&[u8]> = (3..argc).map(arg).collect();
            let options = match parse_set_options(&options) {
                Ok(options) => options,
                Err(error) => {
                    local(session, |out| error.write_reply(out));
                    return Dispatch::Done;
                }
            };
            let (expiry, return_old) = (options.expiry, options.return_old);
            let condition = match options.condition {
                ParsedCondition::Always => SetCondition::Always,
                ParsedCondition::IfAbsent => SetCondition::IfAbsent,
                ParsedCondition::IfPresent => SetCondition::IfPresent,
                ParsedCondition::IfEqual(value) => {
                    let set_if = SetIf {
                        expected: Expected::Value(value.into()),
                        expiry,
                        return_old,
                    };
                    let op = Op::SetIf(Box::new(set_if));
                    return single(session, router, Operation::new(op, key).with_value(arg(2)));
                }
            };
            let args = SetArgs {
                expiry,
                condition,
                return_old,
            };
            return single(
                session,
                router,
                Operation::new(Op::Set(args), key).with_value(arg(2)),
            );
        }
        C::SetNx => {
            remember(session, name);
            let args = SetArgs {
                condition: SetCondition::IfAbsent,
                ..SetArgs::PLAIN
            };
            let operation = Operation::new(Op::Set(args), key).with_value(arg(2));
            return single(session, router, operation);
        }
        C::SetEx | C::PSetEx => {
            remember(session, name);
            let (unit, command_name) = if name == C::SetEx {
                (TimeUnit::Seconds, "setex")
            } else {
                (TimeUnit::Milliseconds, "psetex")
            };
            return match parse_expire_ms(arg(2), unit, command_name) {
                Ok(ms) => {
                    let args = SetArgs {
                        expiry: Expiry::InMs(ms),
                        ..SetArgs::PLAIN
                    };
                    let operation = Operation::new(Op::Set(args), key).with_value(arg(3));
                    single(session, router, operation)
                }
                Err(error) => {
                    local(session, |out| error.write_reply(out));
                    Dispatch::Done
                }
            };
        }
        C::Cas => {
            remember(session, name);
            // Versions are positive and below 2^63 (the store's are 56-bit).
            let Some(version) = parse_i64(arg(2)).filter(|&version| version >= 0) else {
                local_error(session, b"ERR value is not an integer or out of range");
                return Dispatch::Done;
            };
            let set_if = SetIf {
                expected: Expected::Version(version as u64),
                expiry: Expiry::Clear,
                return_old: false,
            };
            let operation = Operation::new(Op::SetIf(Box::new(set_if)), key).with_value(arg(3));
            return single(session, router, operation);
        }
        C::Keys => return route::keys(session, router, arg(1)),
        C::Scan => return scan(command, session, router),
        C::GetEx => {
            remember(session, name);
            let options: Vec<&[u8]> = (2..argc).map(arg).collect();
            return match parse_getex_options(&options) {
                Ok(expiry) => single(session, router, Operation::new(Op::GetEx(expiry), key)),
                Err(error) => {
                    local(session, |out| error.write_reply(out));
                    Dispatch::Done
                }
            };
        }
        C::Expire | C::PExpire | C::ExpireAt | C::PExpireAt => {
            remember(session, name);
            return expire(name, command, session, router);
        }
        C::MGet => {
            return multi(
                command,
                session,
                router,
                Spread::keys(Op::Get, JoinKind::Array),
            );
        }
        C::Del | C::Unlink => {
            return multi(
                command,
                session,
                router,
                Spread::keys(Op::Del, JoinKind::Sum),
            );
        }
        C::Exists => {
            return multi(
                command,
                session,
                router,
                Spread::keys(Op::Exists, JoinKind::Sum),
            );
        }
        C::MSet => {
            let spread = Spread {
                op: Op::Set(SetArgs::PLAIN),
                stride: 2,
                join: JoinKind::AllOk,
            };
            return multi(command, session, router, spread);
        }
        C::Multi
        | C::Exec
        | C::Discard
        | C::Watch
        | C::Unwatch
        | C::MSetNx
        | C::Rename
        | C::RenameNx
        | C::Copy => return coordinated(name, command, session, router, info),
        // (See the arity match above.)
        #[allow(unreachable_patterns)]
        _ => unknown_command(session, command),
    }
    Dispatch::Done
}

/// A wrong arity (answered, and marking a transaction being queued), or a command inside MULTI
/// (queued, unless it is one that runs at once). `None`: dispatch it as usual. Inside MULTI,
/// Redis checks only the table's arity before queueing; MSET's pairs are checked when EXEC runs
/// it.
#[cold]
#[inline(never)]
fn unusual(
    name: CommandName,
    command: &Command<'_>,
    table_ok: bool,
    session: &mut Session,
    info: &ServerInfo,
) -> Option<Dispatch> {
    let argc = command.len();
    let pairs_ok = !matches!(name, CommandName::MSet | CommandName::MSetNx) || argc % 2 == 1;
    let queueing = session.transaction.is_some() && !transaction::runs_inside_multi(name);
    if !table_ok || !(pairs_ok || queueing) {
        let message = format!(
            "ERR wrong number of arguments for '{}' command",
            name.as_str().to_ascii_lowercase()
        );
        local_error(session, message.as_bytes());
        transaction::refused(session);
        return Some(Dispatch::Done);
    }
    if queueing {
        transaction::queue(command, session, info);
        return Some(Dispatch::Done);
    }
    None
}

/// The commands that go through the coordinator or MULTI's state (out of line: the common
/// path's `dispatch` stays small enough to be inlined into the framing loop).
#[cold]
#[inline(never)]
fn coordinated<V: Variant>(
    name: CommandName,
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
    info: &ServerInfo,
) -> Dispatch {
    use CommandName as C;
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    match name {
        C::Multi => transaction::multi(session),
        C::Exec => return transaction::exec(session, router, info, dispatch::<V>),
        C::Discard => transaction::discard(session, router),
        C::Watch => return transaction::watch(command, session, router),
        C::Unwatch => transaction::unwatch(session, router),
        C::MSetNx => {
            let parts = (command.len() - 1) / 2;
            let key = |index: usize| arg(1 + 2 * index);
            let value = |index: usize| arg(2 + 2 * index);
            return route::set_if_none_exist(session, router, parts, key, value);
        }
        C::Rename | C::RenameNx => {
            let kind = if name == C::Rename {
                MoveKind::Rename
            } else {
                MoveKind::RenameIfAbsent
            };
            return route::move_key(session, router, kind, arg(1), arg(2));
        }
        C::Copy => return copy(command, session, router),
        _ => unreachable!("{name} is not coordinated"),
    }
    Dispatch::Done
}

/// Tags the command's entry with its name, for the commands whose answer reads by it: a write's
/// outcome (SETNX answers 1 / 0, CAS the version, SET OK / nil) and an invalid expire time,
/// which names the command. The others keep the default tag.
#[inline]
fn remember(session: &mut Session, name: CommandName) {
    session.order.set_next_tag(Tag {
        command: Some(name),
        ..Tag::default()
    });
}

/// Redis's `unknown command 'x', with args beginning with: 'a' 'b' ` reply.
fn unknown_command(session: &mut Session, command: &Command<'_>) {
    let name = command.arg(0).unwrap_or_default();
    let mut message = b"ERR unknown command '".to_vec();
    message.extend_from_slice(&name[..name.len().min(128)]);
    message.extend_from_slice(b"', with args beginning with: ");
    let mut args_len = 0;
    for arg in command.iter().skip(1) {
        if args_len >= 128 {
            break;
        }
        let take = arg.len().min(128 - args_len);
        message.push(b'\'');
        message.extend_from_slice(&arg[..take]);
        message.extend_from_slice(b"' ");
        args_len += take + 3;
    }
    local_error(session, &message);
}

/// `EXPIRE key amount [NX | XX | GT | LT]` and its millisecond and absolute forms.
fn expire<V: Variant>(
    name: CommandName,
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
) -> Dispatch {
    use CommandName as C;
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    let seconds = matches!(name, C::Expire | C::ExpireAt);
    // Options first, as Redis checks them before the number.
    let mut only_if = ExpireIf::default();
    for index in 3..command.len() {
        let option = arg(index);
        if option.eq_ignore_ascii_case(b"NX") {
            only_if.no_deadline = true;
        } else if option.eq_ignore_ascii_case(b"XX") {
            only_if.has_deadline = true;
        } else if option.eq_ignore_ascii_case(b"GT") {
            only_if.later = true;
        } else if option.eq_ignore_ascii_case(b"LT") {
            only_if.earlier = true;
        } else {
            let message = format!("ERR Unsupported option {}", String::from_utf8_lossy(option));
            local_error(session, message.as_bytes());
            return Dispatch::Done;
        }
    }
    if only_if.no_deadline && (only_if.has_deadline || only_if.later || only_if.earlier) {
        local_error(
            session,
            b"ERR NX and XX, GT or LT options at the same time are not compatible",
        );
        return Dispatch::Done;
    }
    if only_if.later && only_if.earlier {
        local_error(
            session,
            b"ERR GT and LT options at the same time are not compatible",
        );
        return Dispatch::Done;
    }
    let Some(amount) = parse_i64(arg(2)) else {
        local_error(session, b"ERR value is not an integer or out of range");
        return Dispatch::Done;
    };
    let ms = if seconds {
        amount.checked_mul(1000)
    } else {
        Some(amount)
    };
    let Some(ms) = ms else {
        let message = format!(
            "ERR invalid expire time in '{}' command",
            name.as_str().to_ascii_lowercase()
        );
        local_error(session, message.as_bytes());
        return Dispatch::Done;
    };
    let args = ExpireArgs {
        ms,
        absolute: matches!(name, C::ExpireAt | C::PExpireAt),
        only_if,
    };
    route::single(session, router, Operation::new(Op::Expire(args), arg(1)))
}

/// How a multi-key command lays out its arguments: `op` on keys from argument 1 on, every
/// `stride` arguments (2: key and value), the answers joined by `join`.
struct Spread {
    op: Op,
    stride: usize,
    join: JoinKind,
}

impl Spread {
    /// Keys only (MGET, DEL, EXISTS).
    fn keys(op: Op, join: JoinKind) -> Spread {
        Spread {
            op,
            stride: 1,
            join,
        }
    }
}

/// [`route::multi`] for a RESP command laid out as `spread` says; routing errors answered in
/// Redis's style.
fn multi<V: Variant>(
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
    spread: Spread,
) -> Dispatch {
    let Spread { op, stride, join } = spread;
    let parts = (command.len() - 1) / stride;
    let key = |index: usize| command.arg(1 + index * stride).unwrap_or_default();
    let value = |index: usize| {
        if stride == 2 {
            command.arg(2 + index * stride).unwrap_or_default()
        } else {
            b""
        }
    };
    let multi = Multi {
        op,
        join,
        parts,
        key,
        value,
        split_arrays: true,
    };
    match route::multi(session, router, multi) {
        Ok(dispatch) => dispatch,
        Err(error) => {
            local_error(session, route_error_text(error).as_bytes());
            Dispatch::Done
        }
    }
}

/// `COPY source destination [DB destination-db] [REPLACE]`. There is one database, so a DB
/// other than 0 is out of range (Redis has 16 by default).
fn copy<V: Variant>(
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
) -> Dispatch {
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    let mut replace = false;
    let mut index = 3;
    while index < command.len() {
        let option = arg(index);
        if option.eq_ignore_ascii_case(b"REPLACE") {
            replace = true;
        } else if option.eq_ignore_ascii_case(b"DB") && index + 1 < command.len() {
            index += 1;
            match parse_i64(arg(index)) {
                Some(0) => {}
                Some(_) => {
                    local_error(session, b"ERR DB index is out of range");
                    return Dispatch::Done;
                }
                None => {
                    local_error(session, b"ERR value is not an integer or out of range");
                    return Dispatch::Done;
                }
            }
        } else {
            local_error(session, b"ERR syntax error");
            return Dispatch::Done;
        }
        index += 1;
    }
    if arg(1) == arg(2) {
        local_error(session, b"ERR source and destination objects are the same");
        return Dispatch::Done;
    }
    route::move_key(session, router, MoveKind::Copy { replace }, arg(1), arg(2))
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
fn scan<V: Variant>(
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
) -> Dispatch {
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    let cursor_text = arg(1);
    let cursor = if cursor_text.is_empty() || !cursor_text.iter().all(u8::is_ascii_digit) {
        None
    } else {
        std::str::from_utf8(cursor_text)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
    };
    let Some(cursor) = cursor else {
        local_error(session, b"ERR invalid cursor");
        return Dispatch::Done;
    };
    let mut call = ScanCall {
        cursor,
        count: 10,
        pattern: None,
        type_matches: true,
    };
    let mut index = 2;
    while index < command.len() {
        let option = arg(index);
        let Some(value) = command.arg(index + 1) else {
            local_error(session, b"ERR syntax error");
            return Dispatch::Done;
        };
        if option.eq_ignore_ascii_case(b"COUNT") {
            match parse_i64(value) {
                None => {
                    local_error(session, b"ERR value is not an integer or out of range");
                    return Dispatch::Done;
                }
                Some(value) if value < 1 => {
                    local_error(session, b"ERR syntax error");
                    return Dispatch::Done;
                }
                // The worker caps COUNT far below u32::MAX anyway.
                Some(value) => call.count = u32::try_from(value).unwrap_or(u32::MAX),
            }
        } else if option.eq_ignore_ascii_case(b"MATCH") {
            call.pattern = Some(value);
        } else if option.eq_ignore_ascii_case(b"TYPE") {
            if !value.eq_ignore_ascii_case(b"string") {
                call.type_matches = false;
            }
        } else {
            local_error(session, b"ERR syntax error");
            return Dispatch::Done;
        }
        index += 2;
    }
    route::scan(session, router, call)
}
