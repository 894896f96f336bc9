//! RESP's admin commands: everything a client sends that is not about keys, answered by the
//! front end itself without a trip to a worker, except INFO's worker sections. PING, ECHO, QUIT,
//! SELECT, AUTH, HELLO, CLIENT, COMMAND, CONFIG, INFO and SHUTDOWN, with Redis 7's replies and
//! error wording, enough for redis-cli, redis-benchmark and client libraries to start.

use piccolo_queues::Variant;

use super::words::{local, local_error};
use crate::proto::resp::{Command, parse_i64};
use crate::proto::{CommandName, reply};
use crate::server::info::{self, InfoPlan, ServerInfo};
use crate::server::route::{self, Dispatch, Router};
use crate::server::session::{Session, check_credentials};
use crate::store::glob_match;

/// Answers admin command `name` (arity already checked), except INFO ([`info_command`]).
pub fn answer(name: CommandName, command: &Command<'_>, session: &mut Session, info: &ServerInfo) {
    let argc = command.len();
    let arg = |index: usize| command.arg(index).unwrap_or_default();
    use CommandName as C;
    match name {
        C::Ping => {
            if argc == 2 {
                let message = arg(1);
                local(session, |out| reply::bulk(out, message));
            } else {
                local(session, |out| reply::simple_string(out, b"PONG"));
            }
        }
        C::Echo => {
            let message = arg(1);
            local(session, |out| reply::bulk(out, message));
        }
        C::Quit => {
            local(session, reply::ok);
            session.closing = true;
        }
        C::Hello => hello(command, session, info),
        C::Auth => auth(command, session, info),
        C::Select => match parse_i64(arg(1)) {
            Some(0) => local(session, reply::ok),
            Some(_) => local_error(session, b"ERR DB index is out of range"),
            None => local_error(session, b"ERR value is not an integer or out of range"),
        },
        C::Client => client(command, session),
        C::Command => command_command(command, session),
        C::Config => config(command, session, info),
        C::Shutdown => shutdown(command, session),
        _ => unreachable!("{name} is not answered here"),
    }
}

/// Whether [`answer`] answers `name`.
pub fn answers(name: CommandName) -> bool {
    use CommandName as C;
    matches!(
        name,
        C::Ping
            | C::Echo
            | C::Quit
            | C::Hello
            | C::Auth
            | C::Select
            | C::Client
            | C::Command
            | C::Config
            | C::Shutdown
    )
}

fn shutdown(command: &Command<'_>, session: &mut Session) {
    let argc = command.len();
    let mode = command.arg(1).unwrap_or_default();
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

/// `INFO [section]`: the reactor's sections at once, the workers' through [`route::stats`].
pub fn info_command<V: Variant>(
    command: &Command<'_>,
    session: &mut Session,
    router: &mut Router<V>,
    info: &ServerInfo,
) -> Dispatch {
    let section = command.arg(1).unwrap_or(b"default");
    match info::plan(section, info, router.in_flight()) {
        InfoPlan::Local(text) => {
            local(session, |out| reply::bulk(out, text.as_bytes()));
            Dispatch::Done
        }
        InfoPlan::Workers(text) => route::stats(session, router, text),
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
        local(session, reply::ok);
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
    local(session, |out| {
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
        local(session, reply::ok);
    } else if is(b"GETNAME") {
        if argc != 2 {
            return subcommand_arity(session, "client", subcommand);
        }
        let name = session.name.clone();
        local(session, |out| match &name {
            Some(name) => reply::bulk(out, name),
            None => reply::null_bulk(out),
        });
    } else if is(b"ID") {
        if argc != 2 {
            return subcommand_arity(session, "client", subcommand);
        }
        let id = session.client_id as i64;
        local(session, |out| reply::integer(out, id));
    } else if is(b"SETINFO") {
        if argc != 4 {
            return subcommand_arity(session, "client", subcommand);
        }
        let attribute = arg(2);
        if attribute.eq_ignore_ascii_case(b"LIB-NAME") || attribute.eq_ignore_ascii_case(b"LIB-VER")
        {
            local(session, reply::ok);
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
    let argc = command.len();
    if argc == 1 {
        local(session, |out| {
            reply::array_header(out, CommandName::ALL.len());
            for &name in CommandName::ALL {
                command_entry(out, name);
            }
        });
        return;
    }
    let subcommand = command.arg(1).unwrap_or_default();
    let is = |name: &[u8]| subcommand.eq_ignore_ascii_case(name);
    // The names given after the subcommand (none: every command, in table order).
    let named = || -> Vec<Option<CommandName>> {
        if argc == 2 {
            CommandName::ALL.iter().copied().map(Some).collect()
        } else {
            command.iter().skip(2).map(CommandName::lookup).collect()
        }
    };
    if is(b"COUNT") {
        if argc != 2 {
            return subcommand_arity(session, "command", subcommand);
        }
        let count = CommandName::ALL.len() as i64;
        local(session, |out| reply::integer(out, count));
    } else if is(b"LIST") {
        if argc != 2 {
            // FILTERBY is not supported.
            return local_error(session, b"ERR syntax error");
        }
        local(session, |out| {
            reply::array_header(out, CommandName::ALL.len());
            for &name in CommandName::ALL {
                reply::bulk(out, name.as_str().to_ascii_lowercase().as_bytes());
            }
        });
    } else if is(b"INFO") {
        let names = named();
        local(session, |out| {
            reply::array_header(out, names.len());
            for name in names {
                match name {
                    Some(name) => command_entry(out, name),
                    None => reply::null_bulk(out),
                }
            }
        });
    } else if is(b"DOCS") {
        // A map (flattened into an array in RESP2): name, then the docs as a map. Unknown
        // names are left out, as Redis does.
        let names: Vec<CommandName> = named().into_iter().flatten().collect();
        local(session, |out| {
            reply::array_header(out, names.len() * 2);
            for name in names {
                let spec = name.spec();
                reply::bulk(out, name.as_str().to_ascii_lowercase().as_bytes());
                reply::array_header(out, 6);
                reply::bulk(out, b"summary");
                reply::bulk(out, spec.summary.as_bytes());
                reply::bulk(out, b"since");
                reply::bulk(out, spec.since.as_bytes());
                reply::bulk(out, b"group");
                reply::bulk(out, spec.group.as_bytes());
            }
        });
    } else if is(b"GETKEYS") {
        command_getkeys(command, session);
    } else if is(b"HELP") {
        let lines: [&[u8]; 7] = [
            b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"(no subcommand): every command's details",
            b"COUNT: the number of commands",
            b"LIST: every command's name",
            b"INFO [<command-name> ...]: details of the commands named (all if none)",
            b"DOCS [<command-name> ...]: summary, since and group of the commands named",
            b"GETKEYS <full-command>: the keys of a full command",
        ];
        local(session, |out| {
            reply::array_header(out, lines.len());
            for line in lines {
                reply::simple_string(out, line);
            }
        });
    } else {
        unknown_subcommand(session, subcommand, "COMMAND");
    }
}

/// One `COMMAND` / `COMMAND INFO` entry, Redis 7's ten fields: name, arity, flags, first key,
/// last key, step, ACL categories, tips, key specifications, subcommands (the last three
/// empty).
fn command_entry(out: &mut Vec<u8>, name: CommandName) {
    let spec = name.spec();
    reply::array_header(out, 10);
    reply::bulk(out, name.as_str().to_ascii_lowercase().as_bytes());
    reply::integer(out, i64::from(spec.arity));
    let flag_names: Vec<&str> = spec.flag_names().collect();
    reply::array_header(out, flag_names.len());
    for flag in flag_names {
        reply::simple_string(out, flag.as_bytes());
    }
    reply::integer(out, i64::from(spec.first_key));
    reply::integer(out, i64::from(spec.last_key));
    reply::integer(out, i64::from(spec.step));
    let categories = spec.acl_categories();
    reply::array_header(out, categories.len());
    for category in categories {
        reply::simple_string(out, category.as_bytes());
    }
    for _ in 0..3 {
        reply::array_header(out, 0);
    }
}

/// `COMMAND GETKEYS cmd arg...`: the keys of the command, from the table's key positions.
fn command_getkeys(command: &Command<'_>, session: &mut Session) {
    let argc = command.len();
    if argc < 3 {
        return subcommand_arity(session, "command", command.arg(1).unwrap_or_default());
    }
    let Some(name) = CommandName::lookup(command.arg(2).unwrap_or_default()) else {
        return local_error(session, b"ERR Invalid command specified");
    };
    let spec = name.spec();
    let args = argc - 2;
    if !spec.arity_ok(args) || (name == CommandName::MSet && args % 2 == 0) {
        return local_error(
            session,
            b"ERR Invalid number of arguments specified for command",
        );
    }
    if spec.first_key == 0 {
        return local_error(session, b"ERR The command has no key arguments");
    }
    let first = spec.first_key as usize;
    let last = if spec.last_key < 0 {
        args - spec.last_key.unsigned_abs() as usize
    } else {
        spec.last_key as usize
    };
    let keys: Vec<&[u8]> = (first..=last)
        .step_by(spec.step as usize)
        .filter_map(|index| command.arg(2 + index))
        .collect();
    local(session, |out| {
        reply::array_header(out, keys.len());
        for key in keys {
            reply::bulk(out, key);
        }
    });
}

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
    local(session, |out| {
        reply::array_header(out, matched.len() * 2);
        for (name, value) in matched {
            reply::bulk(out, name.as_bytes());
            reply::bulk(out, value.as_bytes());
        }
    });
}
