//! The client side of RESP2: encoding SET and GET, and reading replies. (`piccolo::proto::resp`
//! is the server's side: it parses commands, not replies.)

use crate::workload::{Values, write_key};

/// A bulk reply longer than this is a protocol error (the server's own limit is 512 MB).
const MAX_BULK_BYTES: usize = 512 << 20;
/// Arrays nested deeper than this are a protocol error (SET and GET never answer with arrays).
const MAX_DEPTH: usize = 8;
/// An array longer than this is a protocol error.
const MAX_ARRAY_LEN: usize = 1 << 20;

/// Appends `SET key value` as a RESP array of bulk strings.
pub fn encode_set(out: &mut Vec<u8>, prefix: &[u8], key: u64, values: &Values, version: u64) {
    out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$");
    push_decimal(out, (prefix.len() + crate::workload::KEY_DIGITS) as u64);
    out.extend_from_slice(b"\r\n");
    write_key(out, prefix, key);
    out.extend_from_slice(b"\r\n$");
    push_decimal(out, values.len(key, version) as u64);
    out.extend_from_slice(b"\r\n");
    values.write(out, key, version);
    out.extend_from_slice(b"\r\n");
}

/// Appends `GET key`.
pub fn encode_get(out: &mut Vec<u8>, prefix: &[u8], key: u64) {
    out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$");
    push_decimal(out, (prefix.len() + crate::workload::KEY_DIGITS) as u64);
    out.extend_from_slice(b"\r\n");
    write_key(out, prefix, key);
    out.extend_from_slice(b"\r\n");
}

fn push_decimal(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// One reply, borrowing from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Integer(i64),
    Bulk(Option<&'a [u8]>),
    /// An array (its elements are skipped: no command this tool sends answers with one).
    Array,
}

/// Parses one reply from the front of `buf`: `Ok(Some((reply, bytes used)))`, or `Ok(None)` if
/// `buf` does not hold a whole reply yet.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, String> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], start: usize, depth: usize) -> Result<Option<(Reply<'_>, usize)>, String> {
    let Some(line_end) = find_crlf(buf, start) else {
        return Ok(None);
    };
    let Some(&kind) = buf.get(start) else {
        return Ok(None);
    };
    let line = &buf[start + 1..line_end];
    let after_line = line_end + 2;
    match kind {
        b'+' => Ok(Some((Reply::Simple(line), after_line))),
        b'-' => Ok(Some((Reply::Error(line), after_line))),
        b':' => Ok(Some((Reply::Integer(integer(line)?), after_line))),
        b'$' => {
            let len = integer(line)?;
            if len == -1 {
                return Ok(Some((Reply::Bulk(None), after_line)));
            }
            if len < 0 || len as u64 > MAX_BULK_BYTES as u64 {
                return Err(format!("bad bulk length {len}"));
            }
            let end = after_line + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err("bulk string not followed by CRLF".into());
            }
            Ok(Some((Reply::Bulk(Some(&buf[after_line..end])), end + 2)))
        }
        b'*' => {
            let len = integer(line)?;
            if len == -1 {
                return Ok(Some((Reply::Array, after_line)));
            }
            if len < 0 || len as u64 > MAX_ARRAY_LEN as u64 || depth >= MAX_DEPTH {
                return Err(format!("bad array (length {len}, depth {depth})"));
            }
            let mut at = after_line;
            for _ in 0..len {
                match parse_at(buf, at, depth + 1)? {
                    Some((_, next)) => at = next,
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array, at)))
        }
        other => Err(format!("unknown reply type byte {other:#04x}")),
    }
}

/// Index of the first `\r\n` at or after `from`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + 1 < buf.len() {
        match buf[at..].iter().position(|&b| b == b'\r') {
            Some(offset) => {
                let cr = at + offset;
                if cr + 1 >= buf.len() {
                    return None;
                }
                if buf[cr + 1] == b'\n' {
                    return Some(cr);
                }
                at = cr + 1;
            }
            None => return None,
        }
    }
    None
}

fn integer(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_set_and_get() {
        let values = Values::new(1, 10, 10);
        let mut out = Vec::new();
        encode_get(&mut out, b"key:", 42);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000042\r\n");
        out.clear();
        encode_set(&mut out, b"k", 1, &values, 3);
        let mut value = Vec::new();
        values.write(&mut value, 1, 3);
        let mut expected = b"*3\r\n$3\r\nSET\r\n$13\r\nk000000000001\r\n$10\r\n".to_vec();
        expected.extend_from_slice(&value);
        expected.extend_from_slice(b"\r\n");
        assert_eq!(out, expected);
    }

    #[test]
    fn parses_each_reply_kind_and_waits_for_more() {
        let stream =
            b"+OK\r\n-ERR no\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n$0\r\n\r\n";
        let mut at = 0;
        let mut replies = Vec::new();
        while at < stream.len() {
            // Every strict prefix of the next reply is "not yet".
            let (reply, used) = parse_reply(&stream[at..]).unwrap().unwrap();
            for cut in 0..used {
                assert_eq!(
                    parse_reply(&stream[at..at + cut]).unwrap(),
                    None,
                    "cut {cut}"
                );
            }
            replies.push(reply);
            at += used;
        }
        assert_eq!(
            replies,
            [
                Reply::Simple(b"OK"),
                Reply::Error(b"ERR no"),
                Reply::Integer(42),
                Reply::Bulk(Some(b"abc")),
                Reply::Bulk(None),
                Reply::Array,
                Reply::Bulk(Some(b"")),
            ]
        );
    }

    #[test]
    fn bulk_values_may_hold_crlf() {
        let (reply, used) = parse_reply(b"$4\r\n\r\n\r\n\r\n").unwrap().unwrap();
        assert_eq!((reply, used), (Reply::Bulk(Some(b"\r\n\r\n")), 10));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_reply(b"?x\r\n").is_err());
        assert!(parse_reply(b"$-5\r\n").is_err());
        assert!(parse_reply(b"$3\r\nabcde").is_err());
        assert!(parse_reply(b":x1\r\n").is_err());
        assert!(parse_reply(b"*-2\r\n").is_err());
    }
}
