//! RESP command dispatch on the reactor: turns one parsed [`Command`] into either a reply the
//! reactor writes itself (PING, CONFIG, ...) or one or more [`Request`]s routed by key to the
//! workers that own the keys.
//!
//! Argument errors that need no data (arity, a bad integer, a SET option clash) are answered here,
//! with Redis's wording, so they never cost a trip through a ring. Everything the worker must
//! decide (conditions, existence, overflow) is answered by the worker.

use piccolo_queues::Variant;

use super::message::{Bytes, Op, Request, expire_flags, getex_flags, scan_flags, set_flags};
use super::order::{Entry, InfoText, JoinKind, info_sections};
use super::reactor::{Router, ServerInfo, Session};
use crate::proto::command::{
    CommandError, Expiry, SetCondition, TimeUnit, parse_expire_ms, parse_getex_options,
    parse_set_options,
};
use crate::proto::resp::{Command, parse_i64};
use crate::proto::{CommandName, reply};
use crate::store::glob_match;

use super::route::{self, broadcast, single};
pub use super::route::{Dispatch, Fit};

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
        return Dispatch::Done;
    };
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    use CommandName as C;
    if !session.authenticated && !matches!(name, C::Auth | C::Hello | C::Quit) {
        local_error(session, b"NOAUTH Authentication required.");
        return Dispatch::Done;
    }
    let arity_ok = match name {
        C::Ping => argc <= 2,
        C::Echo | C::Get | C::GetDel | C::Type | C::Incr | C::Decr | C::StrLen | C::Ttl => {
            argc == 2
        }
        C::PTtl | C::Persist | C::Select => argc == 2,
        C::Quit | C::DbSize => argc == 1,
        C::FlushDb | C::FlushAll => argc <= 2,
        C::Hello | C::Command => argc >= 1,
        C::Client | C::Config => argc >= 2,
        C::Info => argc <= 2,
        C::Set => argc >= 3,
        C::SetNx | C::IncrBy | C::DecrBy | C::Append => argc == 3,
        C::SetEx | C::PSetEx => argc == 4,
        C::Expire | C::PExpire | C::ExpireAt | C::PExpireAt => argc >= 3,
        C::GetEx | C::Auth | C::Scan => argc >= 2,
        C::Keys | C::GetV => argc == 2,
        C::Cas => argc == 4,
        C::Shutdown => argc <= 2,
        C::MGet | C::Del | C::Unlink | C::Exists => argc >= 2,
        C::MSet => argc >= 3 && argc % 2 == 1,
        // Every name proto knows today is served; this arm keeps the build working when proto
        // learns a new name before the server does.
        #[allow(unreachable_patterns)]
        _ => {
            unknown_command(session, command);
            return Dispatch::Done;
        }
    };
    if !arity_ok {
        let message = format!(
            "ERR wrong number of arguments for '{}' command",
            name.as_str().to_ascii_lowercase()
        );
        local_error(session, message.as_bytes());
        return Dispatch::Done;
    }
    match name {
        C::Ping => {
            if argc == 2 {
                let message = arg(1);
                session
                    .order
                    .local(&mut session.out, |out| reply::bulk(out, message));
            } else {
                session
                    .order
                    .local(&mut session.out, |out| reply::simple_string(out, b"PONG"));
            }
        }
        C::Echo => {
            let message = arg(1);
            session
                .order
                .local(&mut session.out, |out| reply::bulk(out, message));
        }
        C::Quit => {
            session.order.local(&mut session.out, reply::ok);
            session.closing = true;
        }
        C::Hello => hello(command, session, info),
        C::Select => match parse_i64(arg(1)) {
            Some(0) => session.order.local(&mut session.out, reply::ok),
            Some(_) => local_error(session, b"ERR DB index is out of range"),
            None => local_error(session, b"ERR value is not an integer or out of range"),
        },
        C::Client => client(command, session),
        C::Command => command_command(command, session),
        C::Config => config(command, session, info),
        C::Info => return info_command(command, session, router, info),
        C::DbSize => return broadcast(session, router, Op::DbSize, JoinKind::Sum),
        C::FlushDb | C::FlushAll => {
            let mode = arg(1);
            if argc == 2
                && !mode.eq_ignore_ascii_case(b"ASYNC")
                && !mode.eq_ignore_ascii_case(b"SYNC")
            {
                local_error(session, b"ERR syntax error");
            } else {
                return broadcast(session, router, Op::Flush, JoinKind::AllOk);
            }
        }
        C::Get => return single(session, router, Op::Get, arg(1), 0, 0, b"", None),
        C::GetDel => return single(session, router, Op::GetDel, arg(1), 0, 0, b"", None),
        C::Type => return single(session, router, Op::Type, arg(1), 0, 0, b"", None),
        C::StrLen => return single(session, router, Op::StrLen, arg(1), 0, 0, b"", None),
        C::Ttl => return single(session, router, Op::Ttl, arg(1), 0, 0, b"", None),
        C::PTtl => return single(session, router, Op::PTtl, arg(1), 0, 0, b"", None),
        C::Persist => return single(session, router, Op::Persist, arg(1), 0, 0, b"", None),
        C::Incr => return single(session, router, Op::IncrBy, arg(1), 0, 1, b"", None),
        C::Decr => return single(session, router, Op::IncrBy, arg(1), 0, -1, b"", None),
        C::IncrBy | C::DecrBy => {
            let Some(delta) = parse_i64(arg(2)) else {
                local_error(session, b"ERR value is not an integer or out of range");
                return Dispatch::Done;
            };
            let op = if name == C::IncrBy {
                Op::IncrBy
            } else {
                Op::DecrBy
            };
            return single(session, router, op, arg(1), 0, delta, b"", None);
        }
        C::Append => return single(session, router, Op::Append, arg(1), 0, 0, arg(2), None),
        C::Set => {
            let options: Vec<&[u8]> = (3..argc).map(arg).collect();
            return match parse_set_options(&options) {
                Ok(options) => {
                    let (condition, extra) = match options.condition {
                        SetCondition::Always => (set_flags::ALWAYS, None),
                        SetCondition::IfAbsent => (set_flags::IF_ABSENT, None),
                        SetCondition::IfPresent => (set_flags::IF_PRESENT, None),
                        SetCondition::IfEqual(value) => (set_flags::IF_EQUAL, Some(value.into())),
                    };
                    let (expiry, number) = match options.expiry {
                        Expiry::Keep => (set_flags::EXPIRY_KEEP, 0),
                        Expiry::InMs(ms) => (set_flags::EXPIRY_IN_MS, ms as i64),
                        Expiry::AtUnixMs(ms) => (set_flags::EXPIRY_AT_MS, ms as i64),
                        Expiry::Clear | Expiry::Unchanged => (set_flags::EXPIRY_CLEAR, 0),
                    };
                    let mut flags = condition | expiry | set_flags::NAME_SET;
                    if options.return_old {
                        flags |= set_flags::RETURN_OLD;
                    }
                    single(
                        session,
                        router,
                        Op::Set,
                        arg(1),
                        flags,
                        number,
                        arg(2),
                        extra,
                    )
                }
                Err(error) => {
                    command_error(session, error);
                    Dispatch::Done
                }
            };
        }
        C::SetNx => {
            let flags = set_flags::IF_ABSENT | set_flags::REPLY_INTEGER;
            return single(session, router, Op::Set, arg(1), flags, 0, arg(2), None);
        }
        C::SetEx | C::PSetEx => {
            let (unit, command_name, name_flag) = if name == C::SetEx {
                (TimeUnit::Seconds, "setex", set_flags::NAME_SETEX)
            } else {
                (TimeUnit::Milliseconds, "psetex", set_flags::NAME_PSETEX)
            };
            return match parse_expire_ms(arg(2), unit, command_name) {
                Ok(ms) => {
                    let flags = set_flags::EXPIRY_IN_MS | name_flag;
                    single(
                        session,
                        router,
                        Op::Set,
                        arg(1),
                        flags,
                        ms as i64,
                        arg(3),
                        None,
                    )
                }
                Err(error) => {
                    command_error(session, error);
                    Dispatch::Done
                }
            };
        }
        C::Auth => auth(command, session, info),
        C::Scan => return scan(command, session, router),
        C::GetV => return single(session, router, Op::GetV, arg(1), 0, 0, b"", None),
        C::Cas => {
            // Versions are positive and below 2^63 (the store's are 56-bit).
            let Some(version) = parse_i64(arg(2)).filter(|&version| version >= 0) else {
                local_error(session, b"ERR value is not an integer or out of range");
                return Dispatch::Done;
            };
            return single(session, router, Op::Cas, arg(1), 0, version, arg(3), None);
        }
        C::Keys => {
            let pattern = arg(1);
            let workers = router.workers();
            if (0..workers).any(|worker| !router.has_room(worker, 1)) {
                return Dispatch::Blocked;
            }
            let seq = session
                .order
                .push(Entry::many(JoinKind::Concat, workers as u32));
            for worker in 0..workers {
                router.send(
                    worker,
                    Request {
                        conn: session.id,
                        seq,
                        part: worker as u16,
                        op: Op::Keys,
                        flags: 0,
                        hash: 0,
                        number: 0,
                        key: Bytes::empty(),
                        value: Bytes::copy_from(pattern),
                        extra: None,
                    },
                );
            }
        }
        C::Shutdown => {
            let mode = arg(1);
            let known = ["NOSAVE", "SAVE", "NOW", "FORCE"];
            if argc == 2 && mode.eq_ignore_ascii_case(b"ABORT") {
                local_error(session, b"ERR No shutdown in progress.");
            } else if argc == 2
                && !known
                    .iter()
                    .any(|k| mode.eq_ignore_ascii_case(k.as_bytes()))
            {
                local_error(session, b"ERR syntax error");
            } else {
                // As in Redis, a successful SHUTDOWN sends no reply: the connection closes.
                session.shutdown_requested = true;
                session.closing = true;
            }
        }
        C::GetEx => {
            let options: Vec<&[u8]> = (2..argc).map(arg).collect();
            return match parse_getex_options(&options) {
                Ok(expiry) => {
                    let (flags, number) = match expiry {
                        Expiry::Clear => (getex_flags::PERSIST, 0),
                        Expiry::InMs(ms) => (getex_flags::IN_MS, ms as i64),
                        Expiry::AtUnixMs(ms) => (getex_flags::AT_MS, ms as i64),
                        Expiry::Unchanged | Expiry::Keep => (getex_flags::UNCHANGED, 0),
                    };
                    single(session, router, Op::GetEx, arg(1), flags, number, b"", None)
                }
                Err(error) => {
                    command_error(session, error);
                    Dispatch::Done
                }
            };
        }
        C::Expire | C::PExpire | C::ExpireAt | C::PExpireAt => {
            let command_name = match name {
                C::Expire => "expire",
                C::PExpire => "pexpire",
                C::ExpireAt => "expireat",
                _ => "pexpireat",
            };
            let seconds = matches!(name, C::Expire | C::ExpireAt);
            if argc > 3 {
                // NX | XX | GT | LT are left for later.
                let message = format!("ERR Unsupported option {}", String::from_utf8_lossy(arg(3)));
                local_error(session, message.as_bytes());
                return Dispatch::Done;
            }
            let Some(amount) = parse_i64(arg(2)) else {
                local_error(session, b"ERR value is not an integer or out of range");
                return Dispatch::Done;
            };
            let delta_ms = if seconds {
                amount.checked_mul(1000)
            } else {
                Some(amount)
            };
            let Some(delta_ms) = delta_ms else {
                let message = format!("ERR invalid expire time in '{command_name}' command");
                local_error(session, message.as_bytes());
                return Dispatch::Done;
            };
            let mut flags = 0;
            if !seconds {
                flags |= expire_flags::MILLISECONDS;
            }
            if matches!(name, C::ExpireAt | C::PExpireAt) {
                flags |= expire_flags::ABSOLUTE;
            }
            return single(
                session,
                router,
                Op::Expire,
                arg(1),
                flags,
                delta_ms,
                b"",
                None,
            );
        }
        C::MGet => return multi(command, session, router, Op::Get, 1, JoinKind::Array),
        C::Del | C::Unlink => return multi(command, session, router, Op::Del, 1, JoinKind::Sum),
        C::Exists => return multi(command, session, router, Op::Exists, 1, JoinKind::Sum),
        C::MSet => return multi(command, session, router, Op::Set, 2, JoinKind::AllOk),
        // (See the arity match above.)
        #[allow(unreachable_patterns)]
        _ => unknown_command(session, command),
    }
    Dispatch::Done
}

fn local_error(session: &mut Session, message: &[u8]) {
    session
        .order
        .local(&mut session.out, |out| reply::error(out, message));
}

fn command_error(session: &mut Session, error: CommandError) {
    session
        .order
        .local(&mut session.out, |out| error.write_reply(out));
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

/// [`route::multi`] for a RESP command: keys (and values, `stride` 2) from argument 1 on;
/// routing errors answered in Redis's style.
fn multi<V: Variant>(
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
    op: Op,
    stride: usize,
    kind: JoinKind,
) -> Dispatch {
    let parts = (command.len() - 1) / stride;
    let key = |index: usize| command.arg(1 + index * stride).unwrap_or_default();
    let value = |index: usize| {
        if stride == 2 {
            command.arg(2 + index * stride).unwrap_or_default()
        } else {
            b""
        }
    };
    match route::multi(session, router, op, kind, parts, key, value) {
        Ok(dispatch) => dispatch,
        Err(error) => {
            local_error(session, error.to_string().as_bytes());
            Dispatch::Done
        }
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`. The client's cursor is
/// `shard_cursor * workers + worker` (see `worker::client_cursor`): one worker is scanned at a
/// time, and a worker that finishes hands the client on to the next one.
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
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut flags = 0;
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
                Some(value) => count = value,
            }
        } else if option.eq_ignore_ascii_case(b"MATCH") {
            pattern = Some(value);
        } else if option.eq_ignore_ascii_case(b"TYPE") {
            if !value.eq_ignore_ascii_case(b"string") {
                flags |= scan_flags::NO_TYPE_MATCH;
            }
        } else {
            local_error(session, b"ERR syntax error");
            return Dispatch::Done;
        }
        index += 2;
    }
    if pattern.is_some() {
        flags |= scan_flags::MATCH;
    }
    route::scan(session, router, cursor, count as u64, pattern, flags)
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
/// as Redis's default user does.
pub(super) fn check_credentials(
    username: Option<&[u8]>,
    password: &[u8],
    info: &ServerInfo,
) -> bool {
    let user_ok = username.is_none_or(|user| user == b"default");
    match &info.requirepass {
        // No password: the default user is `nopass`.
        None => user_ok,
        Some(expected) => user_ok && same_secret(password, expected),
    }
}

fn auth(command: &Command<'_>, session: &mut Session, info: &ServerInfo) {
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    let (username, password) = match command.len() {
        2 => (None, arg(1)),
        3 => (Some(arg(1)), arg(2)),
        _ => return local_error(session, b"ERR syntax error"),
    };
    if username.is_none() && info.requirepass.is_none() {
        return local_error(
            session,
            b"ERR AUTH <password> called without any password configured for the default user. \
              Are you sure your configuration is correct?",
        );
    }
    if check_credentials(username, password, info) {
        session.authenticated = true;
        session.order.local(&mut session.out, reply::ok);
    } else {
        local_error(
            session,
            b"WRONGPASS invalid username-password pair or user is disabled.",
        );
    }
}

fn hello(command: &Command<'_>, session: &mut Session, info: &ServerInfo) {
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    if command.len() >= 2 {
        match parse_i64(arg(1)) {
            None => {
                local_error(
                    session,
                    b"ERR Protocol version is not an integer or out of range",
                );
                return;
            }
            Some(2) => {}
            Some(_) => {
                local_error(
                    session,
                    b"NOPROTO sorry, this protocol version is not supported",
                );
                return;
            }
        }
    }
    let mut index = 2;
    let mut new_name = None;
    let mut credentials = None;
    while index < command.len() {
        let option = arg(index);
        if option.eq_ignore_ascii_case(b"SETNAME") && index + 1 < command.len() {
            new_name = Some(arg(index + 1));
            index += 2;
        } else if option.eq_ignore_ascii_case(b"AUTH") && index + 2 < command.len() {
            credentials = Some((arg(index + 1), arg(index + 2)));
            index += 3;
        } else {
            let message = format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            );
            local_error(session, message.as_bytes());
            return;
        }
    }
    match credentials {
        Some((username, password)) => {
            if !check_credentials(Some(username), password, info) {
                return local_error(
                    session,
                    b"WRONGPASS invalid username-password pair or user is disabled.",
                );
            }
            session.authenticated = true;
        }
        None if !session.authenticated => {
            return local_error(
                session,
                b"NOAUTH HELLO must be called with the client already authenticated, otherwise \
                  the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the \
                  client and select the RESP protocol version at the same time",
            );
        }
        None => {}
    }
    if let Some(name) = new_name {
        if !valid_client_name(name) {
            local_error(
                session,
                b"ERR Client names cannot contain spaces, newlines or special characters.",
            );
            return;
        }
        session.name = (!name.is_empty()).then(|| name.to_vec());
    }
    let client_id = session.client_id;
    session.order.local(&mut session.out, |out| {
        reply::array_header(out, 14);
        reply::bulk(out, b"server");
        reply::bulk(out, b"piccolo");
        reply::bulk(out, b"version");
        reply::bulk(out, info.version.as_bytes());
        reply::bulk(out, b"proto");
        reply::integer(out, 2);
        reply::bulk(out, b"id");
        reply::integer(out, client_id as i64);
        reply::bulk(out, b"mode");
        reply::bulk(out, b"standalone");
        reply::bulk(out, b"role");
        reply::bulk(out, b"master");
        reply::bulk(out, b"modules");
        reply::array_header(out, 0);
    });
}

fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&byte| (b'!'..=b'~').contains(&byte))
}

fn unknown_subcommand(session: &mut Session, subcommand: &[u8], command: &str) {
    let message = format!(
        "ERR unknown subcommand '{}'. Try {command} HELP.",
        String::from_utf8_lossy(subcommand)
    );
    local_error(session, message.as_bytes());
}

fn subcommand_arity(session: &mut Session, command: &str, subcommand: &[u8]) {
    let message = format!(
        "ERR wrong number of arguments for '{command}|{}' command",
        String::from_utf8_lossy(subcommand).to_ascii_lowercase()
    );
    local_error(session, message.as_bytes());
}

fn client(command: &Command<'_>, session: &mut Session) {
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    let subcommand = arg(1);
    let is = |name: &[u8]| subcommand.eq_ignore_ascii_case(name);
    let argc = command.len();
    if is(b"SETNAME") {
        if argc != 3 {
            return subcommand_arity(session, "client", subcommand);
        }
        let name = arg(2);
        if !valid_client_name(name) {
            return local_error(
                session,
                b"ERR Client names cannot contain spaces, newlines or special characters.",
            );
        }
        session.name = (!name.is_empty()).then(|| name.to_vec());
        session.order.local(&mut session.out, reply::ok);
    } else if is(b"GETNAME") {
        if argc != 2 {
            return subcommand_arity(session, "client", subcommand);
        }
        let name = session.name.clone();
        session.order.local(&mut session.out, |out| match &name {
            Some(name) => reply::bulk(out, name),
            None => reply::null_bulk(out),
        });
    } else if is(b"ID") {
        if argc != 2 {
            return subcommand_arity(session, "client", subcommand);
        }
        let id = session.client_id as i64;
        session
            .order
            .local(&mut session.out, |out| reply::integer(out, id));
    } else if is(b"SETINFO") {
        if argc != 4 {
            return subcommand_arity(session, "client", subcommand);
        }
        let attribute = arg(2);
        if attribute.eq_ignore_ascii_case(b"LIB-NAME") || attribute.eq_ignore_ascii_case(b"LIB-VER")
        {
            session.order.local(&mut session.out, reply::ok);
        } else {
            let message = format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(attribute)
            );
            local_error(session, message.as_bytes());
        }
    } else {
        unknown_subcommand(session, subcommand, "CLIENT");
    }
}

fn command_command(command: &Command<'_>, session: &mut Session) {
    if command.len() == 1 {
        // The full command table is left for later; an empty one is valid RESP.
        session
            .order
            .local(&mut session.out, |out| reply::array_header(out, 0));
        return;
    }
    let subcommand = command.arg(1).unwrap_or_default();
    if subcommand.eq_ignore_ascii_case(b"COUNT") {
        let count = SERVED_COMMANDS as i64;
        session
            .order
            .local(&mut session.out, |out| reply::integer(out, count));
    } else if subcommand.eq_ignore_ascii_case(b"DOCS") {
        session
            .order
            .local(&mut session.out, |out| reply::array_header(out, 0));
    } else {
        unknown_subcommand(session, subcommand, "COMMAND");
    }
}

/// Commands served: every `CommandName`.
const SERVED_COMMANDS: usize = CommandName::ALL.len();

fn config(command: &Command<'_>, session: &mut Session, info: &ServerInfo) {
    let subcommand = command.arg(1).unwrap_or_default();
    if !subcommand.eq_ignore_ascii_case(b"GET") {
        unknown_subcommand(session, subcommand, "CONFIG");
        return;
    }
    if command.len() < 3 {
        return subcommand_arity(session, "config", subcommand);
    }
    let parameters: [(&str, String); 11] = [
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("databases", "1".into()),
        ("maxclients", info.maxclients.to_string()),
        ("port", info.addr.port().to_string()),
        ("bind", info.addr.ip().to_string()),
        ("maxmemory", "0".into()),
        ("timeout", "0".into()),
        ("proto-max-bulk-len", info.limits.max_bulk_bytes.to_string()),
        (
            "client-query-buffer-limit",
            info.max_query_bytes.to_string(),
        ),
        ("io-threads", info.workers.to_string()),
    ];
    let mut matched: Vec<&(&str, String)> = Vec::new();
    for pattern in command.iter().skip(2) {
        let pattern = pattern.to_ascii_lowercase();
        for parameter in &parameters {
            let seen = matched.iter().any(|seen| seen.0 == parameter.0);
            if !seen && glob_match(&pattern, parameter.0.as_bytes()) {
                matched.push(parameter);
            }
        }
    }
    session.order.local(&mut session.out, |out| {
        reply::array_header(out, matched.len() * 2);
        for (name, value) in matched {
            reply::bulk(out, name.as_bytes());
            reply::bulk(out, value.as_bytes());
        }
    });
}

fn info_command<V: Variant>(
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
    info: &ServerInfo,
) -> Dispatch {
    let section = command.arg(1).unwrap_or(b"default");
    match info_request(section, session, router, info) {
        InfoRequest::Local(text) => {
            session
                .order
                .local(&mut session.out, |out| reply::bulk(out, text.as_bytes()));
            Dispatch::Done
        }
        InfoRequest::Sent => Dispatch::Done,
        InfoRequest::Blocked => Dispatch::Blocked,
    }
}

/// What became of an INFO request.
pub enum InfoRequest {
    /// The sections asked for need no worker: the whole text, for the caller to encode.
    Local(String),
    /// Sent to every worker; the reorder entry renders the text.
    Sent,
    /// A worker's ring budget is exhausted; retry later.
    Blocked,
}

/// INFO for `section` (any case; `default`, `all`, `everything` or one section name), shared
/// by RESP and Cap'n Proto.
pub fn info_request<V: Variant>(
    section: &[u8],
    session: &mut Session,
    router: &mut Router<V>,
    info: &ServerInfo,
) -> InfoRequest {
    let section = section.to_ascii_lowercase();
    let all = matches!(section.as_slice(), b"default" | b"all" | b"everything");
    let mut sections = 0;
    if all || section == b"memory" {
        sections |= info_sections::MEMORY;
    }
    if all || section == b"stats" {
        sections |= info_sections::STATS;
    }
    if all || section == b"keyspace" {
        sections |= info_sections::KEYSPACE;
    }
    let workers = router.workers();
    if sections != 0 && (0..workers).any(|worker| !router.has_room(worker, 1)) {
        return InfoRequest::Blocked;
    }
    let mut text = String::new();
    if all || section == b"server" {
        text.push_str(&format!(
            "# Server\r\nredis_version:7.2.0\r\npiccolo_version:{}\r\nredis_mode:standalone\r\n\
             os:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\
             workers:{}\r\nqueue:{}\r\n",
            info.version,
            std::env::consts::OS,
            std::process::id(),
            info.addr.port(),
            info.started.elapsed().as_secs(),
            info.workers,
            info.queue,
        ));
    }
    if all || section == b"clients" {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        text.push_str(&format!(
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\
             total_connections_received:{}\r\n",
            info.connected_clients, info.maxclients, info.total_connections,
        ));
    }
    if sections == 0 {
        return InfoRequest::Local(text);
    }
    let mut reactor_stats = format!(
        "total_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
         wakeups_to_workers:{}\r\n",
        info.total_connections, info.commands_processed, info.wakeups_to_workers,
    );
    for worker in 0..workers {
        reactor_stats.push_str(&format!(
            "worker{worker}_in_flight:{}\r\n",
            router.in_flight(worker)
        ));
    }
    let text = InfoText {
        head: text,
        reactor_stats,
        sections,
    };
    match route::broadcast_entry(
        session,
        router,
        Op::Stats,
        Entry::info(text, workers as u32),
    ) {
        Dispatch::Done => InfoRequest::Sent,
        Dispatch::Blocked => InfoRequest::Blocked,
    }
}
