//! MULTI, EXEC, DISCARD, WATCH and UNWATCH on RESP, in Redis 7's semantics and words.
//!
//! Inside MULTI, every command but EXEC, DISCARD, MULTI, WATCH and QUIT is checked as Redis
//! checks it before queueing (a known name, its arity) and kept as RESP bytes; an unknown
//! command or a wrong arity answers its error and marks the transaction, whose EXEC then
//! answers EXECABORT. Every other error (a bad integer, a SET option clash) is found when EXEC
//! runs the command and takes its place in EXEC's array, as in Redis.
//!
//! EXEC takes the locks of every key its commands name (from the command table's key
//! positions, and every key for a command on all of them, like FLUSHALL), then replays the
//! queued bytes through the usual dispatch while the router records (`route::exec_begin`):
//! the replies the front end writes and the entries routing would push become EXEC's answer,
//! and the requests become one plan (`coord.rs`), checked first against WATCH's versions.

use crate::proto::resp::{self, Command};
use crate::proto::spec::flags;
use crate::proto::{CommandName, reply};
use crate::server::coord::{LockSet, MAX_WATCH_KEYS, Mode};
use crate::server::info::ServerInfo;
use crate::server::route::{self, Dispatch, ExecError, Router};
use crate::server::session::{Queued, Session};
use crate::store::hash_key;
use piccolo_queues::Variant;

use super::words::{RespWords, local, local_error};

/// Commands one transaction may queue. Redis has no limit; here EXEC's answer numbers its
/// parts with a `u16`, so a transaction of more could never run.
pub const MAX_QUEUED_COMMANDS: usize = u16::MAX as usize + 1;

/// Whether `name` runs at once inside MULTI instead of being queued.
pub fn runs_inside_multi(name: CommandName) -> bool {
    use CommandName as C;
    matches!(name, C::Exec | C::Discard | C::Multi | C::Watch | C::Quit)
}

/// A command refused while queueing (unknown, wrong arity): EXEC will answer EXECABORT.
pub fn refused(session: &mut Session) {
    if let Some(queued) = session.transaction.as_mut() {
        queued.refused = true;
    }
}

/// Queues `command` (checked by the caller) and answers QUEUED.
pub fn queue(command: &Command<'_>, session: &mut Session, info: &ServerInfo) {
    let Some(queued) = session.transaction.as_mut() else {
        debug_assert!(false, "queueing outside MULTI");
        return;
    };
    let size: usize = command.iter().map(|arg| arg.len() + 16).sum::<usize>() + 16;
    if queued.count >= MAX_QUEUED_COMMANDS || queued.commands.len() + size > info.max_query_bytes {
        queued.refused = true;
        let message = format!(
            "ERR Piccolo queues at most {MAX_QUEUED_COMMANDS} commands and {} bytes in a \
             transaction",
            info.max_query_bytes
        );
        local_error(session, message.as_bytes());
        return;
    }
    let bytes = &mut queued.commands;
    bytes.push(b'*');
    bytes.extend_from_slice(command.len().to_string().as_bytes());
    bytes.extend_from_slice(b"\r\n");
    for arg in command.iter() {
        bytes.push(b'$');
        bytes.extend_from_slice(arg.len().to_string().as_bytes());
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(arg);
        bytes.extend_from_slice(b"\r\n");
    }
    queued.count += 1;
    local(session, |out| reply::simple_string(out, b"QUEUED"));
}

/// MULTI.
pub fn multi(session: &mut Session) {
    if session.transaction.is_some() {
        local_error(session, b"ERR MULTI calls can not be nested");
        return;
    }
    session.transaction = Some(Box::default());
    local(session, reply::ok);
}

/// DISCARD: drops the queue and the watched keys.
pub fn discard<V: Variant>(session: &mut Session, router: &mut Router<V>) {
    if session.transaction.take().is_none() {
        local_error(session, b"ERR DISCARD without MULTI");
        return;
    }
    route::unwatch(session, router);
    local(session, reply::ok);
}

/// WATCH key [key ...].
pub fn watch<V: Variant>(
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
) -> Dispatch {
    if session.transaction.is_some() {
        local_error(session, b"ERR WATCH inside MULTI is not allowed");
        return Dispatch::Done;
    }
    if command.len() - 1 > MAX_WATCH_KEYS {
        let message = format!("ERR Piccolo watches at most {MAX_WATCH_KEYS} keys per WATCH");
        local_error(session, message.as_bytes());
        return Dispatch::Done;
    }
    route::watch(session, router, command.iter().skip(1))
}

/// UNWATCH.
pub fn unwatch<V: Variant>(session: &mut Session, router: &mut Router<V>) {
    route::unwatch(session, router);
    local(session, reply::ok);
}

/// How EXEC runs one queued command: the front end's own dispatch (passed in, so this file does
/// not import its parent).
pub type DispatchFn<V> = fn(&Command<'_>, &mut Session, &mut Router<V>, &ServerInfo) -> Dispatch;

/// EXEC: runs the queued commands as one atomic step, or answers EXECABORT, or (a watched key
/// changed) a nil array. Waits, whole, while a key it needs is locked or the connection's WATCH
/// has not finished.
pub fn exec<V: Variant>(
    session: &mut Session,
    router: &mut Router<V>,
    info: &ServerInfo,
    dispatch: DispatchFn<V>,
) -> Dispatch {
    let Some(queued) = session.transaction.as_deref() else {
        local_error(session, b"ERR EXEC without MULTI");
        return Dispatch::Done;
    };
    if queued.refused {
        session.transaction = None;
        route::unwatch(session, router);
        local_error(
            session,
            b"EXECABORT Transaction discarded because of previous errors.",
        );
        return Dispatch::Done;
    }
    let locks = lock_set(queued, info);
    if route::exec_begin(session, router, locks) == Dispatch::Blocked {
        return Dispatch::Blocked;
    }
    let Some(queued) = session.transaction.take() else {
        unreachable!("checked above");
    };
    for_each_queued(&queued, info, |command| {
        // Recording never waits for a budget or a lock: EXEC holds them all.
        let dispatched = dispatch(command, session, router, info);
        debug_assert_eq!(dispatched, Dispatch::Done);
    });
    match route::exec_end(session, router) {
        Ok(()) => {
            session.order.write_ready(&mut RespWords, &mut session.out);
        }
        Err(ExecError::TooManyParts) => local_error(
            session,
            b"ERR transaction too large (at most 65536 keys over all its commands here)",
        ),
    }
    Dispatch::Done
}

/// Calls `each` with every queued command, in order.
fn for_each_queued(queued: &Queued, info: &ServerInfo, mut each: impl FnMut(&Command<'_>)) {
    let mut at = 0;
    while at < queued.commands.len() {
        match resp::parse(&queued.commands[at..], &info.limits) {
            Ok(Some((command, len))) => {
                each(&command);
                at += len;
            }
            // The bytes were written by `queue` from a parsed command.
            _ => {
                debug_assert!(false, "a queued command does not parse");
                return;
            }
        }
    }
}

/// The locks EXEC takes: every key the queued commands name at the command table's key
/// positions (shared for read-only commands, exclusive for the rest), and every key for a
/// command that reads or writes the whole keyspace without naming keys (FLUSHALL, DBSIZE,
/// KEYS, SCAN).
fn lock_set(queued: &Queued, info: &ServerInfo) -> LockSet {
    let mut locks = LockSet::default();
    for_each_queued(queued, info, |command| {
        let Some(name) = command.name() else {
            return;
        };
        let spec = name.spec();
        let touches_data = spec.flags & (flags::WRITE | flags::READONLY) != 0;
        if spec.first_key <= 0 {
            if touches_data {
                locks.add_everything();
            }
            return;
        }
        let mode = if spec.flags & flags::WRITE != 0 {
            Mode::Exclusive
        } else {
            Mode::Shared
        };
        let argc = command.len() as i64;
        let last = if spec.last_key < 0 {
            argc + i64::from(spec.last_key)
        } else {
            i64::from(spec.last_key)
        };
        let mut position = i64::from(spec.first_key);
        while position <= last.min(argc - 1) {
            if let Some(key) = command.arg(position as usize) {
                locks.add(hash_key(key), mode);
            }
            position += i64::from(spec.step.max(1));
        }
    });
    locks
}
