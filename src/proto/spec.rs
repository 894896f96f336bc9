//! The command table: for every [`CommandName`], what Redis's `COMMAND` reports about it (arity,
//! flags, key positions) and what `COMMAND DOCS` reports (summary, since, group), plus the one
//! rule `COMMAND` cannot express (a maximum argument count). The server's arity check and its
//! `COMMAND` replies both read this table, so they cannot disagree.
//!
//! Arity follows Redis: a positive number is the exact argument count (the command name
//! included), a negative one `-N` means at least `N`.
//!
//! Why the file is long (over 800 lines): nearly all of it is the table, one `spec(...)` call
//! per command that rustfmt lays out an argument per line. Splitting the table would only
//! scatter it; the code around it is short.

use super::command::CommandName;

/// Flags, as `COMMAND` lists them (Redis's lower-case names).
pub mod flags {
    /// May modify the keyspace.
    pub const WRITE: u16 = 1;
    /// Only reads.
    pub const READONLY: u16 = 1 << 1;
    /// May grow memory use (refused under `maxmemory` in Redis).
    pub const DENYOOM: u16 = 1 << 2;
    /// Runs in constant or logarithmic time.
    pub const FAST: u16 = 1 << 3;
    /// Administrative.
    pub const ADMIN: u16 = 1 << 4;
    /// Allowed before the client has authenticated.
    pub const NO_AUTH: u16 = 1 << 5;
    /// Its reply may differ between two calls with the same data (random order, time).
    pub const NONDETERMINISTIC_OUTPUT: u16 = 1 << 6;
    /// Allowed while the server is loading.
    pub const LOADING: u16 = 1 << 7;
    /// Allowed on a stale replica.
    pub const STALE: u16 = 1 << 8;

    /// Every flag with its name, in the order `COMMAND` lists them.
    pub const NAMES: &[(u16, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NONDETERMINISTIC_OUTPUT, "nondeterministic_output"),
        (NO_AUTH, "no_auth"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
    ];
}

/// What the server knows about one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Redis's arity: exact count if positive, minimum `-arity` if negative (name included).
    pub arity: i32,
    /// Largest argument count accepted (name included), 0 for no limit. Not shown by `COMMAND`.
    pub max_args: u32,
    /// Bits of [`flags`].
    pub flags: u16,
    /// Position of the first key (0: no keys).
    pub first_key: i32,
    /// Position of the last key (-1: the last argument).
    pub last_key: i32,
    /// Distance between keys.
    pub step: i32,
    /// `COMMAND DOCS` group: `string`, `generic`, `connection`, `server`, `transactions`.
    pub group: &'static str,
    /// The Redis version that introduced it (`piccolo` for Piccolo's own).
    pub since: &'static str,
    /// One line of help.
    pub summary: &'static str,
}

impl CommandSpec {
    /// Whether `argc` arguments (the name included) satisfy arity and maximum.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let within_max = self.max_args == 0 || argc <= self.max_args as usize;
        let arity_ok = if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= self.arity.unsigned_abs() as usize
        };
        arity_ok && within_max
    }

    /// Flag names, in `COMMAND`'s order.
    pub fn flag_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        flags::NAMES
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, name)| *name)
    }

    /// ACL categories, as `COMMAND` lists them: read/write, the group's, then speed.
    pub fn acl_categories(&self) -> Vec<&'static str> {
        let mut categories = Vec::with_capacity(4);
        if self.flags & flags::WRITE != 0 {
            categories.push("@write");
        }
        if self.flags & flags::READONLY != 0 {
            categories.push("@read");
        }
        categories.push(match self.group {
            "string" => "@string",
            "generic" => "@keyspace",
            "connection" => "@connection",
            "transactions" => "@transaction",
            _ => "@admin",
        });
        categories.push(if self.flags & flags::FAST != 0 {
            "@fast"
        } else {
            "@slow"
        });
        categories
    }
}

#[allow(clippy::too_many_arguments)]
const fn spec(
    arity: i32,
    max_args: u32,
    flags: u16,
    first_key: i32,
    last_key: i32,
    step: i32,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
) -> CommandSpec {
    CommandSpec {
        arity,
        max_args,
        flags,
        first_key,
        last_key,
        step,
        group,
        since,
        summary,
    }
}

impl CommandName {
    /// This command's entry in the table.
    pub fn spec(self) -> &'static CommandSpec {
        use CommandName as C;
        use flags::*;
        const CONN: u16 = NO_AUTH | LOADING | STALE | FAST;
        const R: u16 = READONLY | FAST;
        const W: u16 = WRITE | DENYOOM | FAST;
        const WF: u16 = WRITE | FAST;
        match self {
            C::Ping => {
                &const {
                    spec(
                        -1,
                        2,
                        FAST,
                        0,
                        0,
                        0,
                        "connection",
                        "1.0.0",
                        "Returns the server's liveliness response.",
                    )
                }
            }
            C::Echo => {
                &const {
                    spec(
                        2,
                        0,
                        FAST,
                        0,
                        0,
                        0,
                        "connection",
                        "1.0.0",
                        "Returns the given string.",
                    )
                }
            }
            C::Quit => {
                &const {
                    spec(
                        -1,
                        0,
                        CONN,
                        0,
                        0,
                        0,
                        "connection",
                        "1.0.0",
                        "Closes the connection.",
                    )
                }
            }
            C::Hello => {
                &const {
                    spec(
                        -1,
                        0,
                        CONN,
                        0,
                        0,
                        0,
                        "connection",
                        "6.0.0",
                        "Handshakes with the server (protocol 2 only).",
                    )
                }
            }
            C::Auth => {
                &const {
                    spec(
                        -2,
                        0,
                        CONN,
                        0,
                        0,
                        0,
                        "connection",
                        "1.0.0",
                        "Authenticates the connection.",
                    )
                }
            }
            C::Select => {
                &const {
                    spec(
                        2,
                        0,
                        LOADING | STALE | FAST,
                        0,
                        0,
                        0,
                        "connection",
                        "1.0.0",
                        "Changes the selected database (only 0 exists).",
                    )
                }
            }
            C::Client => {
                &const {
                    spec(
                        -2,
                        0,
                        LOADING | STALE,
                        0,
                        0,
                        0,
                        "connection",
                        "2.4.0",
                        "A container for client connection commands (SETNAME, GETNAME, ID, SETINFO).",
                    )
                }
            }
            C::Command => {
                &const {
                    spec(
                        -1,
                        0,
                        LOADING | STALE,
                        0,
                        0,
                        0,
                        "server",
                        "2.8.13",
                        "Returns detailed information about all commands.",
                    )
                }
            }
            C::Config => {
                &const {
                    spec(
                        -2,
                        0,
                        ADMIN | LOADING | STALE,
                        0,
                        0,
                        0,
                        "server",
                        "2.0.0",
                        "Reads configuration parameters (GET only).",
                    )
                }
            }
            C::Info => {
                &const {
                    spec(
                        -1,
                        2,
                        LOADING | STALE,
                        0,
                        0,
                        0,
                        "server",
                        "1.0.0",
                        "Returns information and statistics about the server.",
                    )
                }
            }
            C::DbSize => {
                &const {
                    spec(
                        1,
                        0,
                        READONLY | FAST,
                        0,
                        0,
                        0,
                        "server",
                        "1.0.0",
                        "Returns the number of keys in the database.",
                    )
                }
            }
            C::FlushDb => {
                &const {
                    spec(
                        -1,
                        2,
                        WRITE,
                        0,
                        0,
                        0,
                        "server",
                        "1.0.0",
                        "Removes all keys from the current database.",
                    )
                }
            }
            C::FlushAll => {
                &const {
                    spec(
                        -1,
                        2,
                        WRITE,
                        0,
                        0,
                        0,
                        "server",
                        "1.0.0",
                        "Removes all keys from all databases.",
                    )
                }
            }
            C::Shutdown => {
                &const {
                    spec(
                        -1,
                        2,
                        ADMIN | NO_AUTH | LOADING | STALE,
                        0,
                        0,
                        0,
                        "server",
                        "1.0.0",
                        "Stops the server (nothing is persisted).",
                    )
                }
            }
            C::Get => {
                &const {
                    spec(
                        2,
                        0,
                        R,
                        1,
                        1,
                        1,
                        "string",
                        "1.0.0",
                        "Returns the string value of a key.",
                    )
                }
            }
            C::Set => {
                &const {
                    spec(
                        -3,
                        0,
                        WRITE | DENYOOM,
                        1,
                        1,
                        1,
                        "string",
                        "1.0.0",
                        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
                    )
                }
            }
            C::SetNx => {
                &const {
                    spec(
                        3,
                        0,
                        W,
                        1,
                        1,
                        1,
                        "string",
                        "1.0.0",
                        "Set the string value of a key only when the key doesn't exist.",
                    )
                }
            }
            C::SetEx => {
                &const {
                    spec(
                        4,
                        0,
                        WRITE | DENYOOM,
                        1,
                        1,
                        1,
                        "string",
                        "2.0.0",
                        "Sets the string value and expiration time of a key.",
                    )
                }
            }
            C::PSetEx => {
                &const {
                    spec(
                        4,
                        0,
                        WRITE | DENYOOM,
                        1,
                        1,
                        1,
                        "string",
                        "2.6.0",
                        "Sets both string value and expiration time in milliseconds of a key.",
                    )
                }
            }
            C::GetDel => {
                &const {
                    spec(
                        2,
                        0,
                        WF,
                        1,
                        1,
                        1,
                        "string",
                        "6.2.0",
                        "Returns the string value of a key after deleting the key.",
                    )
                }
            }
            C::GetEx => {
                &const {
                    spec(
                        -2,
                        0,
                        WF,
                        1,
                        1,
                        1,
                        "string",
                        "6.2.0",
                        "Returns the string value of a key after setting its expiration time.",
                    )
                }
            }
            C::MGet => {
                &const {
                    spec(
                        -2,
                        0,
                        R,
                        1,
                        -1,
                        1,
                        "string",
                        "1.0.0",
                        "Atomically returns the string values of one or more keys.",
                    )
                }
            }
            C::MSet => {
                &const {
                    spec(
                        -3,
                        0,
                        WRITE | DENYOOM,
                        1,
                        -1,
                        2,
                        "string",
                        "1.0.1",
                        "Atomically creates or modifies the string values of one or more keys.",
                    )
                }
            }
            C::Del => {
                &const {
                    spec(
                        -2,
                        0,
                        WRITE,
                        1,
                        -1,
                        1,
                        "generic",
                        "1.0.0",
                        "Deletes one or more keys.",
                    )
                }
            }
            C::Unlink => {
                &const {
                    spec(
                        -2,
                        0,
                        WF,
                        1,
                        -1,
                        1,
                        "generic",
                        "4.0.0",
                        "Asynchronously deletes one or more keys.",
                    )
                }
            }
            C::Exists => {
                &const {
                    spec(
                        -2,
                        0,
                        R,
                        1,
                        -1,
                        1,
                        "generic",
                        "1.0.0",
                        "Determines whether one or more keys exist.",
                    )
                }
            }
            C::Type => {
                &const {
                    spec(
                        2,
                        0,
                        R,
                        1,
                        1,
                        1,
                        "generic",
                        "1.0.0",
                        "Determines the type of value stored at a key.",
                    )
                }
            }
            C::Incr => {
                &const {
                    spec(
                        2,
                        0,
                        W,
                        1,
                        1,
                        1,
                        "string",
                        "1.0.0",
                        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
                    )
                }
            }
            C::IncrBy => {
                &const {
                    spec(
                        3,
                        0,
                        W,
                        1,
                        1,
                        1,
                        "string",
                        "1.0.0",
                        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
                    )
                }
            }
            C::Decr => {
                &const {
                    spec(
                        2,
                        0,
                        W,
                        1,
                        1,
                        1,
                        "string",
                        "1.0.0",
                        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
                    )
                }
            }
            C::DecrBy => {
                &const {
                    spec(
                        3,
                        0,
                        W,
                        1,
                        1,
                        1,
                        "string",
                        "1.0.0",
                        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
                    )
                }
            }
            C::Append => {
                &const {
                    spec(
                        3,
                        0,
                        W,
                        1,
                        1,
                        1,
                        "string",
                        "2.0.0",
                        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
                    )
                }
            }
            C::StrLen => {
                &const {
                    spec(
                        2,
                        0,
                        R,
                        1,
                        1,
                        1,
                        "string",
                        "2.2.0",
                        "Returns the length of a string value.",
                    )
                }
            }
            C::Expire => {
                &const {
                    spec(
                        -3,
                        0,
                        WF,
                        1,
                        1,
                        1,
                        "generic",
                        "1.0.0",
                        "Sets the expiration time of a key in seconds.",
                    )
                }
            }
            C::PExpire => {
                &const {
                    spec(
                        -3,
                        0,
                        WF,
                        1,
                        1,
                        1,
                        "generic",
                        "2.6.0",
                        "Sets the expiration time of a key in milliseconds.",
                    )
                }
            }
            C::ExpireAt => {
                &const {
                    spec(
                        -3,
                        0,
                        WF,
                        1,
                        1,
                        1,
                        "generic",
                        "1.2.0",
                        "Sets the expiration time of a key to a Unix timestamp.",
                    )
                }
            }
            C::PExpireAt => {
                &const {
                    spec(
                        -3,
                        0,
                        WF,
                        1,
                        1,
                        1,
                        "generic",
                        "2.6.0",
                        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
                    )
                }
            }
            C::Ttl => {
                &const {
                    spec(
                        2,
                        0,
                        R,
                        1,
                        1,
                        1,
                        "generic",
                        "1.0.0",
                        "Returns the expiration time in seconds of a key.",
                    )
                }
            }
            C::PTtl => {
                &const {
                    spec(
                        2,
                        0,
                        R,
                        1,
                        1,
                        1,
                        "generic",
                        "2.6.0",
                        "Returns the expiration time in milliseconds of a key.",
                    )
                }
            }
            C::Persist => {
                &const {
                    spec(
                        2,
                        0,
                        WF,
                        1,
                        1,
                        1,
                        "generic",
                        "2.2.0",
                        "Removes the expiration time of a key.",
                    )
                }
            }
            C::Scan => {
                &const {
                    spec(
                        -2,
                        0,
                        READONLY,
                        0,
                        0,
                        0,
                        "generic",
                        "2.8.0",
                        "Iterates over the key names in the database.",
                    )
                }
            }
            C::Keys => {
                &const {
                    spec(
                        2,
                        0,
                        READONLY,
                        0,
                        0,
                        0,
                        "generic",
                        "1.0.0",
                        "Returns all key names that match a pattern.",
                    )
                }
            }
            C::GetV => {
                &const {
                    spec(
                        2,
                        0,
                        R,
                        1,
                        1,
                        1,
                        "string",
                        "piccolo",
                        "Returns the value of a key and its version (for CAS).",
                    )
                }
            }
            C::Cas => {
                &const {
                    spec(
                        4,
                        0,
                        W,
                        1,
                        1,
                        1,
                        "string",
                        "piccolo",
                        "Sets the value of a key if its version is the given one; returns the new version.",
                    )
                }
            }
            C::Multi => {
                &const {
                    spec(
                        1,
                        0,
                        LOADING | STALE | FAST,
                        0,
                        0,
                        0,
                        "transactions",
                        "1.2.0",
                        "Starts a transaction.",
                    )
                }
            }
            C::Exec => {
                &const {
                    spec(
                        1,
                        0,
                        LOADING | STALE,
                        0,
                        0,
                        0,
                        "transactions",
                        "1.2.0",
                        "Executes all commands in a transaction.",
                    )
                }
            }
            C::Discard => {
                &const {
                    spec(
                        1,
                        0,
                        LOADING | STALE | FAST,
                        0,
                        0,
                        0,
                        "transactions",
                        "2.0.0",
                        "Discards a transaction.",
                    )
                }
            }
            C::Watch => {
                &const {
                    spec(
                        -2,
                        0,
                        LOADING | STALE | FAST,
                        1,
                        -1,
                        1,
                        "transactions",
                        "2.2.0",
                        "Monitors changes to keys to determine the execution of a transaction.",
                    )
                }
            }
            C::Unwatch => {
                &const {
                    spec(
                        1,
                        0,
                        LOADING | STALE | FAST,
                        0,
                        0,
                        0,
                        "transactions",
                        "2.2.0",
                        "Forgets about watched keys of a transaction.",
                    )
                }
            }
            C::MSetNx => {
                &const {
                    spec(
                        -3,
                        0,
                        WRITE | DENYOOM,
                        1,
                        -1,
                        2,
                        "string",
                        "1.0.1",
                        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
                    )
                }
            }
            C::Rename => {
                &const {
                    spec(
                        3,
                        0,
                        WRITE,
                        1,
                        2,
                        1,
                        "generic",
                        "1.0.0",
                        "Renames a key and overwrites the destination.",
                    )
                }
            }
            C::RenameNx => {
                &const {
                    spec(
                        3,
                        0,
                        WRITE | FAST,
                        1,
                        2,
                        1,
                        "generic",
                        "1.0.0",
                        "Renames a key only when the target key name doesn't exist.",
                    )
                }
            }
            C::Copy => {
                &const {
                    spec(
                        -3,
                        0,
                        WRITE | DENYOOM,
                        1,
                        2,
                        1,
                        "generic",
                        "6.2.0",
                        "Copies the value of a key to a new key.",
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_consistent_entry() {
        for &name in CommandName::ALL {
            let spec = name.spec();
            assert_ne!(spec.arity, 0, "{name}");
            assert!(!spec.summary.is_empty() && !spec.since.is_empty(), "{name}");
            assert!(
                matches!(
                    spec.group,
                    "string" | "generic" | "connection" | "server" | "transactions"
                ),
                "{name}"
            );
            if spec.first_key == 0 {
                assert_eq!((spec.last_key, spec.step), (0, 0), "{name}");
            } else {
                assert!(spec.step >= 1, "{name}");
                // A command with keys takes at least the key.
                assert!(spec.arity.unsigned_abs() as i32 > spec.first_key, "{name}");
            }
            assert!(
                spec.flags & flags::WRITE == 0 || spec.flags & flags::READONLY == 0,
                "{name}"
            );
            if spec.max_args != 0 {
                assert!(spec.arity < 0 && spec.max_args >= spec.arity.unsigned_abs());
            }
        }
    }

    #[test]
    fn arity_follows_redis_rules() {
        let get = CommandName::Get.spec();
        assert!(!get.arity_ok(1) && get.arity_ok(2) && !get.arity_ok(3));
        let set = CommandName::Set.spec();
        assert!(!set.arity_ok(2) && set.arity_ok(3) && set.arity_ok(9));
        let ping = CommandName::Ping.spec();
        assert!(ping.arity_ok(1) && ping.arity_ok(2) && !ping.arity_ok(3));
    }
}
