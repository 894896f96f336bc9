//! The HTTP/1.1 side of the Cerializer: one request parsed from a connection's input buffer
//! (with `httparse`), responses rendered into bytes, and the small codecs the API needs
//! (percent-decoding of paths and queries, base64 for binary values).

use std::time::Instant;

/// The methods the API knows; anything else is answered 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
    Other,
}

/// One complete request, owned (it travels to a worker thread).
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    /// The raw request target (path and query, still percent-encoded).
    pub target: String,
    /// `If-Match`, if present.
    pub if_match: Option<String>,
    /// The body (exactly `Content-Length` bytes).
    pub body: Vec<u8>,
    /// When the request was complete (for the latency metric).
    pub started: Instant,
}

/// What [`parse`] found at the start of a buffer.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole request yet. `expect_continue`: the head is complete and asked for
    /// `100 Continue` before the body.
    Partial { expect_continue: bool },
    /// A request of `len` bytes; `close`: the client asked to close after it (or speaks
    /// HTTP/1.0 without keep-alive).
    Complete {
        request: Request,
        len: usize,
        close: bool,
    },
    /// The bytes cannot be a request: answer `status` with `message` and close.
    Invalid {
        status: u16,
        code: &'static str,
        message: String,
    },
}

/// Limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request line and headers, in bytes.
    pub max_head: usize,
    /// Body, in bytes.
    pub max_body: usize,
}

const MAX_HEADERS: usize = 32;

fn invalid(status: u16, code: &'static str, message: impl Into<String>) -> Parsed {
    Parsed::Invalid {
        status,
        code,
        message: message.into(),
    }
}

/// Parses the request at the start of `buf`.
pub fn parse(buf: &[u8], limits: Limits) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head {
                return invalid(431, "header_too_large", "request head too large");
            }
            return Parsed::Partial {
                expect_continue: false,
            };
        }
        Err(httparse::Error::TooManyHeaders) => {
            return invalid(431, "header_too_large", "too many header fields");
        }
        Err(error) => return invalid(400, "malformed", format!("malformed request: {error}")),
    };
    if head_len > limits.max_head {
        return invalid(431, "header_too_large", "request head too large");
    }
    let version = request.version.unwrap_or(1);
    let mut close = version == 0;
    let mut content_length: Option<usize> = None;
    let mut if_match = None;
    let mut expect_continue = false;
    for header in request.headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .map(str::trim)
                .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|text| text.parse::<usize>().ok());
            match (parsed, content_length) {
                (None, _) => return invalid(400, "malformed", "invalid Content-Length"),
                (Some(new), Some(old)) if new != old => {
                    return invalid(400, "malformed", "conflicting Content-Length");
                }
                (Some(new), _) => content_length = Some(new),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return invalid(
                411,
                "length_required",
                "Transfer-Encoding is not supported; send Content-Length",
            );
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("if-match") {
            match std::str::from_utf8(value) {
                Ok(text) => if_match = Some(text.trim().to_owned()),
                Err(_) => return invalid(400, "malformed", "If-Match is not text"),
            }
        } else if name.eq_ignore_ascii_case("expect") && value.eq_ignore_ascii_case(b"100-continue")
        {
            expect_continue = true;
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > limits.max_body {
        return invalid(
            413,
            "too_large",
            format!(
                "body of {body_len} bytes exceeds the limit of {} bytes",
                limits.max_body
            ),
        );
    }
    if buf.len() < head_len + body_len {
        return Parsed::Partial { expect_continue };
    }
    let method = match request.method.unwrap_or("") {
        "GET" => Method::Get,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        _ => Method::Other,
    };
    Parsed::Complete {
        request: Request {
            method,
            target: request.path.unwrap_or("/").to_owned(),
            if_match,
            body: buf[head_len..head_len + body_len].to_vec(),
            started: Instant::now(),
        },
        len: head_len + body_len,
        close,
    }
}

/// The reason phrase of the statuses the gateway answers.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A response before rendering.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra header lines, each ending in `\r\n`.
    pub headers: String,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: String::new(),
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// An error: `{"code": ..., "message": ...}`.
    pub fn error(status: u16, code: &str, message: impl std::fmt::Display) -> Response {
        Response::json(
            status,
            &serde_json::json!({ "code": code, "message": message.to_string() }),
        )
    }

    /// No body (204).
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: "",
            headers: String::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header line.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push_str(name);
        self.headers.push_str(": ");
        self.headers.push_str(value);
        self.headers.push_str("\r\n");
        self
    }

    /// Appends the response's bytes to `out`; `close` adds `Connection: close`.
    pub fn render(&self, close: bool, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(out, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        if self.status != 204 {
            if !self.content_type.is_empty() {
                let _ = write!(out, "Content-Type: {}\r\n", self.content_type);
            }
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(self.headers.as_bytes());
        out.extend_from_slice(b"\r\n");
        if self.status != 204 {
            out.extend_from_slice(&self.body);
        }
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `text`; `plus_is_space` for query strings (form encoding). `None` for a `%`
/// not followed by two hex digits.
pub fn percent_decode(text: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let high = hex_value(*bytes.get(i + 1)?)?;
                let low = hex_value(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Splits a query string into decoded `(name, value)` pairs; `None` if one does not decode.
pub fn query_pairs(query: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = String::from_utf8(percent_decode(name, true)?).ok()?;
        pairs.push((name, percent_decode(value, true)?));
    }
    Some(pairs)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The strings [`base64_decode`] accepts, as a regular expression (for the OpenAPI document).
pub const BASE64_PATTERN: &str = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding required, no whitespace); `None` if it is not. Accepts
/// exactly the strings [`BASE64_PATTERN`] matches.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (index, quad) in bytes.chunks(4).enumerate() {
        let last = index + 1 == quads;
        let padding = quad.iter().rev().take_while(|&&b| b == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &byte in &quad[..4 - padding] {
            let value = BASE64.iter().position(|&symbol| symbol == byte)? as u32;
            n = n << 6 | value;
        }
        n <<= 6 * padding as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Bits beyond the last byte are ignored (as most decoders do; the OpenAPI pattern
        // cannot tell them apart either).
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64_encode(&data);
            assert_eq!(base64_decode(&text), Some(data));
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm8="), Some(b"fo".to_vec()));
        assert_eq!(
            base64_decode("Zm9="),
            Some(b"fo".to_vec()),
            "trailing bits are ignored"
        );
        assert_eq!(base64_decode("Zm8"), None);
        assert_eq!(base64_decode("Z=8="), None);
        assert_eq!(base64_decode("Zm8!"), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20c", false), Some(b"a/b c".to_vec()));
        assert_eq!(percent_decode("a+b", false), Some(b"a+b".to_vec()));
        assert_eq!(percent_decode("a+b", true), Some(b"a b".to_vec()));
        assert_eq!(percent_decode("%ff", false), Some(vec![0xff]));
        assert_eq!(percent_decode("%f", false), None);
        assert_eq!(percent_decode("%zz", false), None);
    }

    #[test]
    fn parses_pipelined_requests_and_limits() {
        let limits = Limits {
            max_head: 1024,
            max_body: 10,
        };
        let two =
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPUT /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let Parsed::Complete {
            request,
            len,
            close,
        } = parse(two, limits)
        else {
            panic!("complete")
        };
        assert_eq!(
            (request.method, request.target.as_str(), close),
            (Method::Get, "/a", false)
        );
        let Parsed::Complete { request, .. } = parse(&two[len..], limits) else {
            panic!("complete")
        };
        assert_eq!(request.body, b"abc");
        assert!(matches!(
            parse(b"PUT /b HTTP/1.1\r\nContent-Length: 11\r\n\r\n", limits),
            Parsed::Invalid { status: 413, .. }
        ));
        assert!(matches!(
            parse(b"PUT /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", limits),
            Parsed::Partial { .. }
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.0\r\n\r\n", limits),
            Parsed::Complete { close: true, .. }
        ));
        assert!(matches!(
            parse(b"\x01\x02 / HTTP/1.1\r\n\r\n", limits),
            Parsed::Invalid { status: 400, .. }
        ));
    }
}
