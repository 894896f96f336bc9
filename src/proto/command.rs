//! Command recognition and argument rules that are pure logic: the command-name lookup, SET's
//! options, and the expire-time rules shared by SET, SETEX, PSETEX and GETEX.
//!
//! # Name lookup without allocating
//!
//! Every command name Piccolo knows is at most 15 bytes of ASCII letters. [`CommandName::lookup`]
//! folds the client's bytes to upper case with one mask (`byte & !0x20`, exact here because it
//! maps a byte to an upper-case letter only if the byte was that letter in either case) into a
//! 16-byte buffer whose last byte is the length, reads it as one `u128`, and `match`es it against
//! constants computed at compile time. The compiler turns that `match` into a short tree of
//! integer comparisons: no `String`, no hashing, no per-name `memcmp`.

use crate::decimal::parse_i64;
use core::fmt;

/// Packs an upper-case name into the `u128` key the lookup compares: bytes 0..15 hold the name
/// (zero-padded), byte 15 its length, so that `GET` and `GET\0` differ.
const fn pack(name: &[u8]) -> u128 {
    assert!(name.len() < 16, "command names are shorter than 16 bytes");
    let mut bytes = [0u8; 16];
    let mut index = 0;
    while index < name.len() {
        bytes[index] = name[index];
        index += 1;
    }
    bytes[15] = name.len() as u8;
    u128::from_le_bytes(bytes)
}

/// Like [`pack`] for client input: folds ASCII letters to upper case. `None` if too long.
///
/// The name is read as two little-endian words with at most two fixed-size (overlapping)
/// loads per word, not a byte loop: the lookup runs once per command.
#[inline]
fn pack_folded(name: &[u8]) -> Option<u128> {
    let len = name.len();
    if len >= 16 {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(name[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u64::from(u32::from_le_bytes(name[at..at + 4].try_into().expect("4")));
    let (low, high) = if len >= 8 {
        // Bytes 8..len are the top `len - 8` bytes of the word that ends the name.
        let high = word(len - 8)
            .checked_shr(8 * (16 - len) as u32)
            .unwrap_or(0);
        (word(0), high)
    } else if len >= 4 {
        // Two overlapping 4-byte loads; where they overlap they hold the same bytes.
        (half(0) | (half(len - 4) << (8 * (len - 4))), 0)
    } else {
        let mut low = 0;
        for (index, &byte) in name.iter().enumerate() {
            low |= u64::from(byte) << (8 * index);
        }
        (low, 0)
    };
    // Clearing bit 5 turns 'a'..='z' into 'A'..='Z' and leaves 'A'..='Z' alone. A non-letter
    // byte may change too, but never into a letter, so it can never match a name (all names
    // are letters only: asserted by the test `names_are_upper_case_letters`). Padding bytes
    // are zero and stay zero; byte 15 is the length.
    const FOLD: u64 = 0xDFDF_DFDF_DFDF_DFDF;
    let low = low & FOLD;
    let high = (high & (FOLD >> 8)) | ((len as u64) << 56);
    Some((u128::from(high) << 64) | u128::from(low))
}

macro_rules! command_names {
    ($($variant:ident = $name:literal,)*) => {
        /// A command Piccolo's RESP front end knows, recognised from its name in any case.
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CommandName {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        #[allow(non_upper_case_globals)]
        mod packed {
            $(pub(super) const $variant: u128 = super::pack($name.as_bytes());)*
        }

        impl CommandName {
            /// Every command, in declaration order.
            pub const ALL: &'static [CommandName] = &[$(CommandName::$variant,)*];

            /// Recognises `name` in any letter case; `None` for an unknown command.
            #[inline]
            pub fn lookup(name: &[u8]) -> Option<CommandName> {
                match pack_folded(name)? {
                    $(packed::$variant => Some(CommandName::$variant),)*
                    _ => None,
                }
            }

            /// The upper-case name, as COMMAND and error messages spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CommandName::$variant => $name,)*
                }
            }
        }
    };
}

command_names! {
    Ping = "PING",
    Echo = "ECHO",
    Quit = "QUIT",
    Hello = "HELLO",
    Auth = "AUTH",
    Select = "SELECT",
    Client = "CLIENT",
    Command = "COMMAND",
    Config = "CONFIG",
    Info = "INFO",
    DbSize = "DBSIZE",
    FlushDb = "FLUSHDB",
    FlushAll = "FLUSHALL",
    Shutdown = "SHUTDOWN",
    Get = "GET",
    Set = "SET",
    SetNx = "SETNX",
    SetEx = "SETEX",
    PSetEx = "PSETEX",
    GetDel = "GETDEL",
    GetEx = "GETEX",
    MGet = "MGET",
    MSet = "MSET",
    Del = "DEL",
    Unlink = "UNLINK",
    Exists = "EXISTS",
    Type = "TYPE",
    Incr = "INCR",
    IncrBy = "INCRBY",
    Decr = "DECR",
    DecrBy = "DECRBY",
    Append = "APPEND",
    StrLen = "STRLEN",
    Expire = "EXPIRE",
    PExpire = "PEXPIRE",
    ExpireAt = "EXPIREAT",
    PExpireAt = "PEXPIREAT",
    Ttl = "TTL",
    PTtl = "PTTL",
    Persist = "PERSIST",
    Scan = "SCAN",
    Keys = "KEYS",
    GetV = "GETV",
    Cas = "CAS",
    Multi = "MULTI",
    Exec = "EXEC",
    Discard = "DISCARD",
    Watch = "WATCH",
    Unwatch = "UNWATCH",
    MSetNx = "MSETNX",
    Rename = "RENAME",
    RenameNx = "RENAMENX",
    Copy = "COPY",
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command's arguments broke a rule. `Display` gives the RESP error text (Redis's wording);
/// the connection stays usable.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// `ERR syntax error`: an unknown option or options that exclude each other.
    Syntax,
    /// `ERR value is not an integer or out of range`.
    NotInteger,
    /// `ERR invalid expire time in '<command>' command`; `command` is lower case, as in Redis.
    InvalidExpireTime {
        /// The command's lower-case name.
        command: &'static str,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Syntax => f.write_str("ERR syntax error"),
            CommandError::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            CommandError::InvalidExpireTime { command } => {
                write!(f, "ERR invalid expire time in '{command}' command")
            }
        }
    }
}

impl std::error::Error for CommandError {}

impl CommandError {
    /// Appends the RESP error reply.
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "-{self}\r\n");
    }
}

/// The unit of an expire argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// EX, EXAT, SETEX, EXPIRE.
    Seconds,
    /// PX, PXAT, PSETEX, PEXPIRE.
    Milliseconds,
}

/// Parses a SET/SETEX/PSETEX/GETEX expire argument into milliseconds, with Redis's checks:
/// not an integer → [`CommandError::NotInteger`]; zero, negative, or overflowing when converted
/// to milliseconds → [`CommandError::InvalidExpireTime`] naming `command` (lower case).
///
/// The result is still relative or absolute as the option says; the server adds its clock (with
/// an overflow check of its own, which is also an invalid expire time) since proto has no clock.
pub fn parse_expire_ms(
    argument: &[u8],
    unit: TimeUnit,
    command: &'static str,
) -> Result<u64, CommandError> {
    let value = parse_i64(argument).ok_or(CommandError::NotInteger)?;
    let invalid = CommandError::InvalidExpireTime { command };
    if value <= 0 {
        return Err(invalid);
    }
    let value_ms = match unit {
        TimeUnit::Seconds => value.checked_mul(1000).ok_or(invalid)?,
        TimeUnit::Milliseconds => value,
    };
    Ok(value_ms as u64)
}

/// When a SET writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition<'a> {
    /// No condition.
    #[default]
    Always,
    /// NX: only if the key does not exist.
    IfAbsent,
    /// XX: only if the key exists.
    IfPresent,
    /// IFEQ: only if the key exists and its value equals these bytes.
    IfEqual(&'a [u8]),
}

/// What a SET (or GETEX) does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// GETEX without an option: the expiry stays as it is. (SET never gives this.)
    #[default]
    Unchanged,
    /// SET: no expiry afterwards (a plain SET removes any TTL). GETEX: PERSIST.
    Clear,
    /// KEEPTTL: keep the key's current expiry.
    Keep,
    /// EX or PX: expires this many milliseconds from now.
    InMs(u64),
    /// EXAT or PXAT: expires at this Unix time in milliseconds.
    AtUnixMs(u64),
}

/// The options of `SET key value [NX | XX | IFEQ v] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetOptions<'a> {
    /// NX, XX, IFEQ, or none.
    pub condition: SetCondition<'a>,
    /// [`Expiry::Clear`] when no expiry option is given (a plain SET removes any TTL).
    pub expiry: Expiry,
    /// GET: reply with the old value (or nil) instead of OK.
    pub return_old: bool,
}

/// The expire option `option` names, if it is one: its unit and whether it is absolute.
fn expire_option(option: &[u8]) -> Option<(TimeUnit, bool)> {
    let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
    if is("EX") {
        Some((TimeUnit::Seconds, false))
    } else if is("PX") {
        Some((TimeUnit::Milliseconds, false))
    } else if is("EXAT") {
        Some((TimeUnit::Seconds, true))
    } else if is("PXAT") {
        Some((TimeUnit::Milliseconds, true))
    } else {
        None
    }
}

/// An expire option seen while scanning: its argument, unit, and whether it is absolute.
type ExpireArgument<'a> = (&'a [u8], TimeUnit, bool);

/// Turns the last expire option given into an [`Expiry`], checking its value.
fn expiry_from(expire: ExpireArgument<'_>, command: &'static str) -> Result<Expiry, CommandError> {
    let (value, unit, absolute) = expire;
    let value_ms = parse_expire_ms(value, unit, command)?;
    Ok(if absolute {
        Expiry::AtUnixMs(value_ms)
    } else {
        Expiry::InMs(value_ms)
    })
}

/// Parses SET's options: `options` are the arguments after the value. Redis's rules and order
/// of checks: first every option's syntax (an unknown option, options that exclude each other,
/// a missing argument → `ERR syntax error`; repeating the same option is allowed and the last
/// one wins), then the expire value (not an integer → `NotInteger`; ≤ 0 → `InvalidExpireTime`).
pub fn parse_set_options<'a>(options: &[&'a [u8]]) -> Result<SetOptions<'a>, CommandError> {
    let mut condition = SetCondition::Always;
    let mut return_old = false;
    let mut keep_ttl = false;
    let mut expire: Option<ExpireArgument<'a>> = None;
    let mut index = 0;
    while index < options.len() {
        let option = options[index];
        let next = options.get(index + 1).copied();
        let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
        let expire_kind = expire_option(option);
        // An expire option conflicts with KEEPTTL and with a different expire option.
        let expire_allowed = expire_kind.is_some_and(|kind| {
            !keep_ttl && expire.is_none_or(|(_, unit, absolute)| (unit, absolute) == kind)
        });
        let ifeq_allowed =
            is("IFEQ") && matches!(condition, SetCondition::Always | SetCondition::IfEqual(_));
        if is("NX") && matches!(condition, SetCondition::Always | SetCondition::IfAbsent) {
            condition = SetCondition::IfAbsent;
        } else if is("XX") && matches!(condition, SetCondition::Always | SetCondition::IfPresent) {
            condition = SetCondition::IfPresent;
        } else if is("GET") {
            return_old = true;
        } else if is("KEEPTTL") && expire.is_none() {
            keep_ttl = true;
        } else if let (true, Some(value)) = (ifeq_allowed, next) {
            condition = SetCondition::IfEqual(value);
            index += 1;
        } else if let (Some((unit, absolute)), Some(value), true) =
            (expire_kind, next, expire_allowed)
        {
            expire = Some((value, unit, absolute));
            index += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        index += 1;
    }
    let expiry = match expire {
        Some(expire) => expiry_from(expire, "set")?,
        None if keep_ttl => Expiry::Keep,
        None => Expiry::Clear,
    };
    Ok(SetOptions {
        condition,
        expiry,
        return_old,
    })
}

/// Parses GETEX's options (the arguments after the key): `[EX s | PX ms | EXAT s | PXAT ms |
/// PERSIST]`. No option gives [`Expiry::Unchanged`]; the same rules as SET otherwise.
pub fn parse_getex_options(options: &[&[u8]]) -> Result<Expiry, CommandError> {
    let mut expire: Option<ExpireArgument<'_>> = None;
    let mut persist = false;
    let mut index = 0;
    while index < options.len() {
        let option = options[index];
        let expire_kind = expire_option(option);
        let expire_allowed = expire_kind.is_some_and(|kind| {
            !persist && expire.is_none_or(|(_, unit, absolute)| (unit, absolute) == kind)
        });
        if option.eq_ignore_ascii_case(b"PERSIST") && expire.is_none() {
            persist = true;
        } else if let (Some((unit, absolute)), Some(&value), true) =
            (expire_kind, options.get(index + 1), expire_allowed)
        {
            expire = Some((value, unit, absolute));
            index += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        index += 1;
    }
    match expire {
        Some(expire) => expiry_from(expire, "getex"),
        None if persist => Ok(Expiry::Clear),
        None => Ok(Expiry::Unchanged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_upper_case_letters() {
        for name in CommandName::ALL {
            assert!(
                name.as_str().bytes().all(|byte| byte.is_ascii_uppercase()),
                "{name}"
            );
            assert!(name.as_str().len() < 16);
        }
    }

    /// The word-wise packing equals the byte-wise definition (fold each byte, then [`pack`]'s
    /// layout) for every length and many byte values, letters or not.
    #[test]
    fn pack_folded_matches_the_bytewise_definition() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..20 {
            for round in 0..200 {
                let name: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Half the bytes letters (either case), half anything.
                        if round % 2 == 0 {
                            b"aAzZgGeEtT"[(seed % 10) as usize]
                        } else {
                            seed as u8
                        }
                    })
                    .collect();
                let expected = (len < 16).then(|| {
                    let mut bytes = [0u8; 16];
                    for (slot, &byte) in bytes.iter_mut().zip(&name) {
                        *slot = byte & !0x20;
                    }
                    bytes[15] = len as u8;
                    u128::from_le_bytes(bytes)
                });
                assert_eq!(pack_folded(&name), expected, "{name:?}");
            }
        }
    }

    #[test]
    fn lookup_any_case() {
        for &name in CommandName::ALL {
            let upper = name.as_str();
            assert_eq!(CommandName::lookup(upper.as_bytes()), Some(name));
            assert_eq!(
                CommandName::lookup(upper.to_ascii_lowercase().as_bytes()),
                Some(name)
            );
            let mixed: String = upper
                .chars()
                .enumerate()
                .map(|(index, c)| {
                    if index % 2 == 0 {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    }
                })
                .collect();
            assert_eq!(CommandName::lookup(mixed.as_bytes()), Some(name));
        }
        assert_eq!(CommandName::lookup(b"set"), Some(CommandName::Set));
        assert_eq!(
            CommandName::lookup(b"pExpireAt"),
            Some(CommandName::PExpireAt)
        );
    }

    #[test]
    fn lookup_rejects_near_misses() {
        for bad in [
            &b""[..],
            b"GE",
            b"GETT",
            b"GET\0",
            b"G\x05T",
            b"GET ",
            b"\xc7\xc5\xd4",
            b"FLUSHALLFLUSHALL",
            b"SETNXX",
            b"g\xe5t",
        ] {
            assert_eq!(
                CommandName::lookup(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn args(list: &[&'static str]) -> Vec<&'static [u8]> {
        list.iter().map(|arg| arg.as_bytes()).collect()
    }

    fn set(list: &[&'static str]) -> Result<SetOptions<'static>, CommandError> {
        parse_set_options(&args(list))
    }

    #[test]
    fn set_options() {
        let plain = SetOptions {
            condition: SetCondition::Always,
            expiry: Expiry::Clear,
            return_old: false,
        };
        assert_eq!(set(&[]), Ok(plain));
        assert_eq!(
            set(&["nx"]),
            Ok(SetOptions {
                condition: SetCondition::IfAbsent,
                ..plain
            })
        );
        assert_eq!(
            set(&["XX", "GET"]),
            Ok(SetOptions {
                condition: SetCondition::IfPresent,
                return_old: true,
                ..plain
            })
        );
        assert_eq!(
            set(&["EX", "10"]),
            Ok(SetOptions {
                expiry: Expiry::InMs(10_000),
                ..plain
            })
        );
        assert_eq!(
            set(&["px", "10"]),
            Ok(SetOptions {
                expiry: Expiry::InMs(10),
                ..plain
            })
        );
        assert_eq!(
            set(&["EXAT", "5"]),
            Ok(SetOptions {
                expiry: Expiry::AtUnixMs(5000),
                ..plain
            })
        );
        assert_eq!(
            set(&["PXAT", "5"]),
            Ok(SetOptions {
                expiry: Expiry::AtUnixMs(5),
                ..plain
            })
        );
        assert_eq!(
            set(&["KEEPTTL"]),
            Ok(SetOptions {
                expiry: Expiry::Keep,
                ..plain
            })
        );
        assert_eq!(
            set(&["IFEQ", "old", "GET", "PX", "7"]),
            Ok(SetOptions {
                condition: SetCondition::IfEqual(b"old"),
                expiry: Expiry::InMs(7),
                return_old: true
            })
        );
        assert_eq!(
            set(&["GET", "GET"]),
            Ok(SetOptions {
                return_old: true,
                ..plain
            })
        );
        // Repeating an option is allowed, as in Redis; the last value wins.
        assert_eq!(
            set(&["NX", "nx"]),
            Ok(SetOptions {
                condition: SetCondition::IfAbsent,
                ..plain
            })
        );
        assert_eq!(
            set(&["EX", "1", "EX", "2"]),
            Ok(SetOptions {
                expiry: Expiry::InMs(2000),
                ..plain
            })
        );
        assert_eq!(
            set(&["KEEPTTL", "KEEPTTL"]),
            Ok(SetOptions {
                expiry: Expiry::Keep,
                ..plain
            })
        );
    }

    #[test]
    fn set_option_errors() {
        for bad in [
            &["NX", "XX"][..],
            &["XX", "NX"],
            &["NX", "IFEQ", "v"],
            &["IFEQ", "v", "XX"],
            &["IFEQ"],
            &["EX"],
            &["EX", "1", "PX", "1"],
            &["EX", "1", "KEEPTTL"],
            &["KEEPTTL", "EX", "1"],
            &["BOGUS"],
            &["EX", "notanumber", "NX", "XX"],
        ] {
            assert_eq!(set(bad), Err(CommandError::Syntax), "{bad:?}");
        }
        assert_eq!(set(&["EX", "abc"]), Err(CommandError::NotInteger));
        assert_eq!(
            set(&["EX", "0"]),
            Err(CommandError::InvalidExpireTime { command: "set" })
        );
        assert_eq!(
            set(&["PX", "-5"]),
            Err(CommandError::InvalidExpireTime { command: "set" })
        );
        assert_eq!(
            set(&["EX", "9223372036854775807"]),
            Err(CommandError::InvalidExpireTime { command: "set" })
        );
        assert_eq!(
            set(&["EX", "99999999999999999999"]),
            Err(CommandError::NotInteger)
        );
        assert_eq!(
            set(&["EX", "0"]).unwrap_err().to_string(),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            set(&["NX", "XX"]).unwrap_err().to_string(),
            "ERR syntax error"
        );
        assert_eq!(
            set(&["EX", "x"]).unwrap_err().to_string(),
            "ERR value is not an integer or out of range"
        );
        let mut reply = Vec::new();
        CommandError::Syntax.write_reply(&mut reply);
        assert_eq!(reply, b"-ERR syntax error\r\n");
    }

    #[test]
    fn getex_options() {
        let getex = |list: &[&'static str]| parse_getex_options(&args(list));
        assert_eq!(getex(&[]), Ok(Expiry::Unchanged));
        assert_eq!(getex(&["persist"]), Ok(Expiry::Clear));
        assert_eq!(getex(&["EX", "2"]), Ok(Expiry::InMs(2000)));
        assert_eq!(getex(&["PXAT", "2"]), Ok(Expiry::AtUnixMs(2)));
        assert_eq!(getex(&["EX", "2", "PERSIST"]), Err(CommandError::Syntax));
        assert_eq!(getex(&["PERSIST", "EX", "2"]), Err(CommandError::Syntax));
        assert_eq!(getex(&["KEEPTTL"]), Err(CommandError::Syntax));
        assert_eq!(getex(&["EX"]), Err(CommandError::Syntax));
        assert_eq!(
            getex(&["EX", "0"]),
            Err(CommandError::InvalidExpireTime { command: "getex" })
        );
    }

    #[test]
    fn expire_arguments() {
        assert_eq!(
            parse_expire_ms(b"10", TimeUnit::Seconds, "setex"),
            Ok(10_000)
        );
        assert_eq!(
            parse_expire_ms(b"-1", TimeUnit::Milliseconds, "psetex")
                .unwrap_err()
                .to_string(),
            "ERR invalid expire time in 'psetex' command"
        );
    }
}
