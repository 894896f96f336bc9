//! RESP2 request parsing: bytes from a connection's read buffer in, one [`Command`] out.
//!
//! [`parse`] is a pure function of the buffer: it looks at the bytes from the start, and returns
//! either a whole command and how many bytes it used, `Ok(None)` when the buffer ends inside a
//! command (read more and call again with the same bytes plus the new ones), or a [`ProtoError`]
//! after which the connection cannot be trusted to be at a command boundary again: the server
//! writes [`ProtoError::write_reply`] and closes, as Redis does.
//!
//! Two request forms, as in Redis:
//!
//! ```text
//! multibulk (what clients send):   *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n
//! inline (telnet, nc):             SET k "hello world"\r\n       (or ending in a bare \n)
//! ```
//!
//! A buffer that starts with `*` is multibulk; anything else is inline. The server decides once
//! per connection whether it speaks RESP at all (see [`super::detect`]).
//!
//! # Why it is fast
//!
//! - Arguments are borrowed slices of the read buffer: a value is never copied by the parser.
//! - Up to [`INLINE_ARGS`] arguments live in a fixed array inside the [`Command`] (on the stack
//!   of the caller); only commands with more arguments (a long MSET) spill into a `Vec`. A
//!   callback per argument would avoid even that, but the server needs random access (`args[1]`
//!   is the key it routes by) and a command object keeps the call sites simple; the array is 128
//!   bytes and costs nothing to fill.
//! - Bulk payloads are skipped by their declared length, never scanned; only the short header
//!   lines (`*3`, `$5`) are searched for `\r`, and those are bounded to [`MAX_HEADER_LINE_BYTES`].
//!
//! # Re-parsing a partial command
//!
//! The parser keeps no state between calls, so a command that arrives in many reads is re-parsed
//! from its start each time. For one large value that costs nothing (its body is skipped by
//! length); for a command with very many arguments each re-parse walks the headers already seen.
//! [`Limits::max_multibulk_count`] bounds that work; a resumable parser is a possible later step
//! if a measurement shows huge MSETs matter.
//!
//! The integer rule (Redis's `string2ll`) is `crate::decimal`'s, shared with the store. The
//! unit tests are in `resp/tests.rs`.

use core::fmt;

/// The one integer parser of the crate; re-exported for the server's argument parsing.
pub(crate) use crate::decimal::parse_i64;

/// Up to this many arguments are stored without allocating. `SET key value EX 10 NX GET` is 7.
pub const INLINE_ARGS: usize = 8;

/// The longest `*<count>` or `$<length>` line (without `\r\n`) that can be valid: a sign and the
/// 19 digits of `i64::MAX`. A longer line is an error at once rather than a wait for more bytes.
pub const MAX_HEADER_LINE_BYTES: usize = 20;

/// Bounds on what one request may declare. Set once at startup from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most arguments in one multibulk request. Redis 6 used 1024 * 1024.
    pub max_multibulk_count: usize,
    /// Longest argument in bytes. Redis's `proto-max-bulk-len` default is 512 MiB.
    pub max_bulk_bytes: usize,
    /// Longest inline request line in bytes. Redis's `PROTO_INLINE_MAX_SIZE` is 64 KiB.
    pub max_inline_bytes: usize,
}

impl Limits {
    /// Redis's defaults.
    pub const REDIS: Limits = Limits {
        max_multibulk_count: 1024 * 1024,
        max_bulk_bytes: 512 * 1024 * 1024,
        max_inline_bytes: 64 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::REDIS
    }
}

/// A malformed request. Every variant is fatal for the connection: after it the parser cannot
/// know where the next command starts, so the server sends the reply and closes (Redis does the
/// same). The server should log [`fmt::Display`] with the client's address.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// The `*<count>` line is not an integer, or the count exceeds the limit.
    InvalidMultibulkLength,
    /// A `$<length>` line is not a non-negative integer, or the length exceeds the limit.
    InvalidBulkLength,
    /// An inline request line is longer than the limit.
    TooBigInlineRequest,
    /// A multibulk argument did not start with `$`; `got` is the byte found instead.
    ExpectedDollar {
        /// The byte where `$` should have been.
        got: u8,
    },
    /// An inline request has a quote that is not closed, or a closing quote not followed by a
    /// space.
    UnbalancedQuotes,
    /// A bulk argument's declared length was not followed by `\r\n`. (Redis skips two bytes
    /// without looking; Piccolo checks, so a wrong length cannot shift the stream silently.)
    MissingBulkTerminator,
}

impl ProtoError {
    /// Whether the connection must be closed after this error: always, for a protocol error.
    /// (A method rather than a fact in the docs so that callers state the decision in code.)
    pub fn closes_connection(&self) -> bool {
        true
    }

    /// Appends the RESP error reply, e.g. `-ERR Protocol error: invalid bulk length\r\n`.
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "-{self}\r\n");
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ERR Protocol error: ")?;
        match *self {
            ProtoError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtoError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtoError::TooBigInlineRequest => f.write_str("too big inline request"),
            ProtoError::ExpectedDollar { got } => {
                // Redis prints the raw byte; a reply line must not carry control bytes, so those
                // are escaped.
                if got.is_ascii_graphic() || got == b' ' {
                    write!(f, "expected '$', got '{}'", got as char)
                } else {
                    write!(f, "expected '$', got '\\x{got:02x}'")
                }
            }
            ProtoError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            ProtoError::MissingBulkTerminator => f.write_str("expected '\\r\\n' after bulk data"),
        }
    }
}

impl std::error::Error for ProtoError {}

/// One request: its arguments, the command name first. Borrowed from the read buffer, except
/// for inline requests with quotes, whose unescaped words are owned (a rare, interactive path).
///
/// An empty `Command` (no arguments) comes from a blank inline line or `*0\r\n` / `*-1\r\n`;
/// Redis answers nothing to those, and the server should skip them.
pub struct Command<'a> {
    repr: Repr<'a>,
}

enum Repr<'a> {
    /// `len` arguments, all within `buf`: when `len <= INLINE_ARGS` as `[start, end)` offsets
    /// into `buf` in `inline[..len]` (8 bytes each instead of a 16-byte slice, which keeps a
    /// `Command` small enough to be moved without a call of `memcpy`), else all in `spill`.
    Borrowed {
        buf: &'a [u8],
        len: u32,
        inline: [[u32; 2]; INLINE_ARGS],
        spill: Vec<&'a [u8]>,
    },
    /// Words of an inline request that had quotes (escapes need new bytes).
    Owned(Vec<Vec<u8>>),
}

/// [`Command::push_range`]'s cold path: the first spilled argument copies the inline ones
/// (all of `inline`, then) into `spill` first; later ones only append.
#[cold]
#[inline(never)]
fn spill_push<'a>(
    buf: &'a [u8],
    inline: &[[u32; 2]],
    spill: &mut Vec<&'a [u8]>,
    start: usize,
    end: usize,
) {
    if spill.is_empty() {
        spill.extend(
            inline
                .iter()
                .map(|&[start, end]| &buf[start as usize..end as usize]),
        );
    }
    spill.push(&buf[start..end]);
}

impl<'a> Command<'a> {
    /// An empty command whose arguments will be slices of `buf`.
    fn with_expected(buf: &'a [u8], count: usize) -> Self {
        let spill = if count > INLINE_ARGS {
            // The count comes from the client: reserve only what a small buffer could justify,
            // and let the Vec grow as arguments really arrive.
            Vec::with_capacity(count.min(1024))
        } else {
            Vec::new()
        };
        Command {
            repr: Repr::Borrowed {
                buf,
                len: 0,
                inline: [[0; 2]; INLINE_ARGS],
                spill,
            },
        }
    }

    /// Appends `buf[start..end]`, where `buf` is the one given to
    /// [`with_expected`](Self::with_expected). The common case stores two offsets; the
    /// `(INLINE_ARGS + 1)`-th argument moves everything to the spill `Vec`.
    #[inline(always)]
    fn push_range(&mut self, start: usize, end: usize) {
        let Repr::Borrowed {
            buf,
            len,
            inline,
            spill,
        } = &mut self.repr
        else {
            unreachable!("arguments are only pushed while parsing borrowed ones");
        };
        debug_assert!(
            start <= end && end <= buf.len(),
            "argument outside the buffer"
        );
        let count = *len as usize;
        if count < INLINE_ARGS && spill.is_empty() && end <= u32::MAX as usize {
            inline[count] = [start as u32, end as u32];
        } else {
            spill_push(buf, &inline[..count.min(INLINE_ARGS)], spill, start, end);
        }
        *len += 1;
    }

    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Borrowed { len, .. } => *len as usize,
            Repr::Owned(words) => words.len(),
        }
    }

    /// Whether the request had no arguments at all (a blank line): skip it, reply nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The argument at `index` (0 is the command name).
    #[inline]
    pub fn arg(&self, index: usize) -> Option<&[u8]> {
        match &self.repr {
            Repr::Borrowed {
                buf,
                len,
                inline,
                spill,
            } => {
                if index >= *len as usize {
                    None
                } else if spill.is_empty() {
                    let [start, end] = inline[index];
                    buf.get(start as usize..end as usize)
                } else {
                    Some(spill[index])
                }
            }
            Repr::Owned(words) => words.get(index).map(Vec::as_slice),
        }
    }

    /// The arguments in order, the command name first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |index| self.arg(index).unwrap_or_default())
    }

    /// The recognised command name, if the first argument is one Piccolo knows.
    pub fn name(&self) -> Option<super::CommandName> {
        self.arg(0).and_then(super::CommandName::lookup)
    }

    /// The arguments copied out, for tests and logging.
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|arg| String::from_utf8_lossy(arg)))
            .finish()
    }
}

/// Parses the command at the start of `buf`.
///
/// - `Ok(Some((command, consumed_bytes)))`: a whole command; drop `consumed_bytes` from the
///   buffer before parsing the next one.
/// - `Ok(None)`: `buf` ends inside a command; call again when more bytes have arrived.
/// - `Err(error)`: malformed; reply with the error and close the connection.
///
/// Never panics, whatever the bytes.
pub fn parse<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Command<'a>, usize)>, ProtoError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

/// Finds the `\r\n`-terminated line starting at `start`. Returns the line and the index after
/// its `\r\n`, `Ok(None)` if the buffer ends first, or `error` if no valid header can be that
/// long or `\r` is not followed by `\n`.
#[inline]
fn header_line(
    buf: &[u8],
    start: usize,
    error: ProtoError,
) -> Result<Option<(&[u8], usize)>, ProtoError> {
    let rest = buf.get(start..).unwrap_or_default();
    let window = &rest[..rest.len().min(MAX_HEADER_LINE_BYTES + 1)];
    match window.iter().position(|&byte| byte == b'\r') {
        Some(cr) => match rest.get(cr + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((&rest[..cr], start + cr + 2))),
            Some(_) => Err(error),
        },
        None if rest.len() > MAX_HEADER_LINE_BYTES => Err(error),
        None => Ok(None),
    }
}

/// The fast path for a header line that holds a plain length: 1 to 18 digits with no leading
/// zero, then `\r\n`, all in `buf`. Scans and converts in one pass; returns the length and the
/// index after the `\r\n`. `None` for everything else (zero, a sign, an incomplete or
/// malformed line, a long number), which the caller hands to the general path
/// ([`header_line`] and [`parse_i64`]) so that errors and partial input are handled in one place.
#[inline(always)]
fn plain_length(buf: &[u8], start: usize) -> Option<(usize, usize)> {
    let rest = buf.get(start..)?;
    let first = rest.first()?.wrapping_sub(b'1');
    if first > 8 {
        return None;
    }
    let mut value = usize::from(first) + 1;
    let mut at = 1;
    loop {
        let digit = rest.get(at)?.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        if at == 18 {
            return None;
        }
        value = value * 10 + usize::from(digit);
        at += 1;
    }
    match rest.get(at..at + 2)? {
        b"\r\n" => Some((value, start + at + 2)),
        _ => None,
    }
}

fn parse_multibulk<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Command<'a>, usize)>, ProtoError> {
    debug_assert_eq!(buf.first(), Some(&b'*'));
    let (count, mut pos) = match plain_length(buf, 1) {
        Some((count, pos)) if count <= limits.max_multibulk_count => (count, pos),
        _ => {
            let Some((count_line, pos)) = header_line(buf, 1, ProtoError::InvalidMultibulkLength)?
            else {
                return Ok(None);
            };
            let count = parse_i64(count_line).ok_or(ProtoError::InvalidMultibulkLength)?;
            if count <= 0 {
                // `*0` and `*-1`: Redis consumes them and answers nothing.
                return Ok(Some((Command::with_expected(buf, 0), pos)));
            }
            let count = usize::try_from(count).map_err(|_| ProtoError::InvalidMultibulkLength)?;
            if count > limits.max_multibulk_count {
                return Err(ProtoError::InvalidMultibulkLength);
            }
            (count, pos)
        }
    };

    let mut command = Command::with_expected(buf, count);
    for _ in 0..count {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&got) => return Err(ProtoError::ExpectedDollar { got }),
        }
        let (length, body_start) = match plain_length(buf, pos + 1) {
            Some((length, body_start)) if length <= limits.max_bulk_bytes => (length, body_start),
            _ => {
                let Some((length_line, body_start)) =
                    header_line(buf, pos + 1, ProtoError::InvalidBulkLength)?
                else {
                    return Ok(None);
                };
                let length = parse_i64(length_line)
                    .and_then(|length| usize::try_from(length).ok())
                    .filter(|&length| length <= limits.max_bulk_bytes)
                    .ok_or(ProtoError::InvalidBulkLength)?;
                (length, body_start)
            }
        };
        let body_end = body_start
            .checked_add(length)
            .ok_or(ProtoError::InvalidBulkLength)?;
        let Some(terminator) = buf.get(body_end..body_end.saturating_add(2)) else {
            return Ok(None);
        };
        match terminator {
            b"\r\n" => {}
            [b'\r'] | [] => return Ok(None),
            _ => return Err(ProtoError::MissingBulkTerminator),
        }
        command.push_range(body_start, body_end);
        pos = body_end + 2;
    }
    debug_assert_eq!(command.len(), count);
    debug_assert!(pos <= buf.len());
    Ok(Some((command, pos)))
}

/// Bytes Redis treats as spaces between inline words (C's `isspace`).
#[inline]
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Bytes that end an unquoted inline word (Redis's `sdssplitargs`: vertical tab and form feed
/// do not; they are only skipped between words).
#[inline]
fn ends_word(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | b'\r' | b'\t')
}

fn parse_inline<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Command<'a>, usize)>, ProtoError> {
    let window = &buf[..buf.len().min(limits.max_inline_bytes.saturating_add(1))];
    let Some(newline) = window.iter().position(|&byte| byte == b'\n') else {
        return if buf.len() > limits.max_inline_bytes {
            Err(ProtoError::TooBigInlineRequest)
        } else {
            Ok(None)
        };
    };
    if newline > limits.max_inline_bytes {
        return Err(ProtoError::TooBigInlineRequest);
    }
    let mut line = &buf[..newline];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    let consumed = newline + 1;
    // Redis splits the line as a C string: a NUL byte ends it, and what follows is ignored.
    if let Some(nul) = line.iter().position(|&byte| byte == 0) {
        line = &line[..nul];
    }

    if !line.iter().any(|&byte| byte == b'"' || byte == b'\'') {
        let mut command = Command::with_expected(line, 0);
        let mut pos = 0;
        loop {
            while pos < line.len() && is_space(line[pos]) {
                pos += 1;
            }
            if pos == line.len() {
                break;
            }
            let start = pos;
            while pos < line.len() && !ends_word(line[pos]) {
                pos += 1;
            }
            debug_assert!(pos > start, "a word starts at a non-space byte");
            command.push_range(start, pos);
        }
        return Ok(Some((command, consumed)));
    }

    let words = split_quoted(line).ok_or(ProtoError::UnbalancedQuotes)?;
    Ok(Some((
        Command {
            repr: Repr::Owned(words),
        },
        consumed,
    )))
}

/// Splits an inline line with quotes into words, following Redis's `sdssplitargs`:
///
/// - `"..."`: `\xHH` is a byte in hex; `\n \r \t \b \a` are control bytes; `\` before any other
///   byte is that byte.
/// - `'...'`: only `\'` is an escape.
/// - A quote may open in the middle of a word (`foo"bar baz"` is `foobar baz`), but a closing
///   quote must be followed by a space or the end of the line.
///
/// Returns `None` for unbalanced quotes.
fn split_quoted(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Bare,
        Double,
        Single,
    }
    let mut words = Vec::new();
    let mut pos = 0;
    loop {
        while pos < line.len() && is_space(line[pos]) {
            pos += 1;
        }
        if pos == line.len() {
            return Some(words);
        }
        let mut word = Vec::new();
        let mut state = State::Bare;
        loop {
            let byte = line.get(pos).copied();
            match (state, byte) {
                (State::Bare, None) => break,
                (State::Double | State::Single, None) => return None,
                (State::Bare, Some(byte)) if ends_word(byte) => break,
                (State::Bare, Some(b'"')) => state = State::Double,
                (State::Bare, Some(b'\'')) => state = State::Single,
                (State::Bare, Some(byte)) => word.push(byte),
                (State::Double, Some(b'\\')) => match line.get(pos + 1..) {
                    Some([b'x', high, low, ..])
                        if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() =>
                    {
                        word.push(hex_value(*high) << 4 | hex_value(*low));
                        pos += 3;
                    }
                    Some([escaped, ..]) => {
                        word.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => *other,
                        });
                        pos += 1;
                    }
                    _ => word.push(b'\\'),
                },
                (State::Single, Some(b'\\')) if line.get(pos + 1) == Some(&b'\'') => {
                    word.push(b'\'');
                    pos += 1;
                }
                (State::Double, Some(b'"')) | (State::Single, Some(b'\'')) => {
                    if line.get(pos + 1).is_some_and(|&next| !is_space(next)) {
                        return None;
                    }
                    pos += 1;
                    break;
                }
                (State::Double | State::Single, Some(byte)) => word.push(byte),
            }
            pos += 1;
        }
        words.push(word);
    }
}

#[inline]
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
