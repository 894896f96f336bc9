//! The subset of EDN (extensible data notation, Clojure's data syntax) that Jepsen histories use:
//! `nil`, booleans, integers, other numbers (kept as text), strings, characters, keywords,
//! symbols, vectors, lists, maps, sets, tagged values (`#jepsen.history.Op{...}`: the tag is
//! kept, the value read), `;` comments and `#_` discards. Commas are whitespace.
//!
//! Hand-written rather than a dependency: histories need perhaps a fifth of EDN, the reader is
//! about 300 lines, and every crate that parses EDN brings serde or a runtime we do not use.
//! Nesting is bounded ([`MAX_DEPTH`]) so that a hostile file cannot overflow the stack.

use std::fmt;

/// The deepest nesting of collections the reader accepts.
pub const MAX_DEPTH: usize = 64;

/// An EDN value. Floats, big integers and decimals stay as their text ([`Value::Number`]) so
/// that values can be compared, hashed and written back exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits an `i64`.
    Int(i64),
    /// Any other number, as written (`1.5`, `12N`, `3M`, `1e9`).
    Number(String),
    /// A string, unescaped.
    Str(String),
    /// A character literal such as `\a`.
    Char(char),
    /// A keyword, without its leading `:` (`:ok` is `Keyword("ok")`).
    Keyword(String),
    /// A symbol (`jepsen.util`, `foo/bar`).
    Symbol(String),
    /// `[a b]`.
    Vector(Vec<Value>),
    /// `(a b)`.
    List(Vec<Value>),
    /// `{k v ...}`, in the order written.
    Map(Vec<(Value, Value)>),
    /// `#{a b}`, in the order written.
    Set(Vec<Value>),
    /// `#tag value`.
    Tagged(String, Box<Value>),
}

impl Value {
    /// The value under keyword `key` if `self` is a map (or a tagged map).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Value::Keyword(name) if name == key => Some(v),
                _ => None,
            }),
            Value::Tagged(_, inner) => inner.get(key),
            _ => None,
        }
    }

    /// The keyword's name, if `self` is a keyword.
    pub fn as_keyword(&self) -> Option<&str> {
        match self {
            Value::Keyword(name) => Some(name),
            _ => None,
        }
    }

    /// The integer, if `self` is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(number) => Some(*number),
            _ => None,
        }
    }

    /// The elements, if `self` is a vector or a list (Jepsen writes tuples as vectors, but
    /// some tools print them as lists).
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Vector(items) | Value::List(items) => Some(items),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// Writes EDN that [`parse`] reads back to an equal value.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn items(out: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_str(" ")?;
                }
                write!(out, "{item}")?;
            }
            Ok(())
        }
        match self {
            Value::Nil => out.write_str("nil"),
            Value::Bool(flag) => write!(out, "{flag}"),
            Value::Int(number) => write!(out, "{number}"),
            Value::Number(text) | Value::Symbol(text) => out.write_str(text),
            Value::Str(text) => {
                out.write_str("\"")?;
                for c in text.chars() {
                    match c {
                        '"' => out.write_str("\\\"")?,
                        '\\' => out.write_str("\\\\")?,
                        '\n' => out.write_str("\\n")?,
                        '\t' => out.write_str("\\t")?,
                        '\r' => out.write_str("\\r")?,
                        c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
                        c => write!(out, "{c}")?,
                    }
                }
                out.write_str("\"")
            }
            Value::Char(c) => match c {
                '\n' => out.write_str("\\newline"),
                ' ' => out.write_str("\\space"),
                '\t' => out.write_str("\\tab"),
                '\r' => out.write_str("\\return"),
                c => write!(out, "\\{c}"),
            },
            Value::Keyword(name) => write!(out, ":{name}"),
            Value::Vector(values) => {
                out.write_str("[")?;
                items(out, values)?;
                out.write_str("]")
            }
            Value::List(values) => {
                out.write_str("(")?;
                items(out, values)?;
                out.write_str(")")
            }
            Value::Set(values) => {
                out.write_str("#{")?;
                items(out, values)?;
                out.write_str("}")
            }
            Value::Map(entries) => {
                out.write_str("{")?;
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.write_str(", ")?;
                    }
                    write!(out, "{key} {value}")?;
                }
                out.write_str("}")
            }
            Value::Tagged(tag, value) => write!(out, "#{tag} {value}"),
        }
    }
}

/// Why a text is not EDN the reader accepts: a message and the byte offset where it noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdnError {
    /// Byte offset in the parsed text.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for EdnError {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(out, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for EdnError {}

/// Parses exactly one value from `text` (surrounding whitespace and comments allowed).
pub fn parse(text: &str) -> Result<Value, EdnError> {
    let mut reader = Reader {
        text: text.as_bytes(),
        source: text,
        at: 0,
    };
    let value = reader.value(0)?;
    reader.skip_blank()?;
    if reader.at < reader.text.len() {
        return Err(reader.error("more text after the value"));
    }
    Ok(value)
}

struct Reader<'a> {
    text: &'a [u8],
    source: &'a str,
    at: usize,
}

fn is_delimiter(byte: u8) -> bool {
    byte.is_ascii_whitespace()
        || matches!(byte, b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}')
        || byte == b'"'
        || byte == b';'
}

impl Reader<'_> {
    fn error(&self, message: &str) -> EdnError {
        EdnError {
            offset: self.at,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded forms.
    fn skip_blank(&mut self) -> Result<(), EdnError> {
        loop {
            match self.peek() {
                Some(byte) if byte.is_ascii_whitespace() || byte == b',' => self.at += 1,
                Some(b';') => {
                    while let Some(byte) = self.peek() {
                        self.at += 1;
                        if byte == b'\n' {
                            break;
                        }
                    }
                }
                Some(b'#') if self.text.get(self.at + 1) == Some(&b'_') => {
                    self.at += 2;
                    self.value(0)?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// The run of non-delimiter bytes starting here (a number, symbol, keyword body).
    fn token(&mut self) -> &str {
        let start = self.at;
        while let Some(byte) = self.peek() {
            if is_delimiter(byte) {
                break;
            }
            self.at += 1;
        }
        &self.source[start..self.at]
    }

    fn value(&mut self, depth: usize) -> Result<Value, EdnError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_blank()?;
        let Some(byte) = self.peek() else {
            return Err(self.error("expected a value, found the end"));
        };
        match byte {
            b'[' => {
                self.at += 1;
                Ok(Value::Vector(self.items(b']', depth)?))
            }
            b'(' => {
                self.at += 1;
                Ok(Value::List(self.items(b')', depth)?))
            }
            b'{' => {
                self.at += 1;
                let items = self.items(b'}', depth)?;
                if items.len() % 2 != 0 {
                    return Err(self.error("a map needs an even number of forms"));
                }
                let mut entries = Vec::with_capacity(items.len() / 2);
                let mut items = items.into_iter();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    entries.push((key, value));
                }
                Ok(Value::Map(entries))
            }
            b'#' => {
                self.at += 1;
                if self.peek() == Some(b'{') {
                    self.at += 1;
                    return Ok(Value::Set(self.items(b'}', depth)?));
                }
                let tag = self.token().to_string();
                if tag.is_empty() {
                    return Err(self.error("a # must start a set, a discard or a tag"));
                }
                let inner = self.value(depth + 1)?;
                Ok(Value::Tagged(tag, Box::new(inner)))
            }
            b'"' => self.string(),
            b'\\' => self.character(),
            b')' | b']' | b'}' => Err(self.error("a closing bracket without its opening")),
            b':' => {
                self.at += 1;
                let name = self.token();
                if name.is_empty() {
                    return Err(self.error("an empty keyword"));
                }
                Ok(Value::Keyword(name.to_string()))
            }
            _ => {
                let start = self.at;
                let token = self.token();
                if token.is_empty() {
                    self.at = start;
                    return Err(self.error("unexpected character"));
                }
                Ok(atom(token))
            }
        }
    }

    /// Values up to `close`; the opening bracket is already consumed.
    fn items(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, EdnError> {
        let mut items = Vec::new();
        loop {
            self.skip_blank()?;
            match self.peek() {
                None => return Err(self.error("a collection is not closed")),
                Some(byte) if byte == close => {
                    self.at += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    fn string(&mut self) -> Result<Value, EdnError> {
        self.at += 1; // the opening quote
        let mut text = String::new();
        loop {
            let rest = &self.source[self.at..];
            let Some(stop) = rest.find(['"', '\\']) else {
                return Err(self.error("a string is not closed"));
            };
            text.push_str(&rest[..stop]);
            self.at += stop;
            if self.peek() == Some(b'"') {
                self.at += 1;
                return Ok(Value::Str(text));
            }
            self.at += 1; // the backslash
            let Some(escape) = self.peek() else {
                return Err(self.error("a string ends inside an escape"));
            };
            self.at += 1;
            match escape {
                b'"' => text.push('"'),
                b'\\' => text.push('\\'),
                b'n' => text.push('\n'),
                b't' => text.push('\t'),
                b'r' => text.push('\r'),
                b'b' => text.push('\u{8}'),
                b'f' => text.push('\u{c}'),
                b'u' => {
                    let hex = self.source.get(self.at..self.at + 4).unwrap_or("");
                    let code = u32::from_str_radix(hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| self.error("a bad \\u escape"))?;
                    self.at += 4;
                    text.push(code);
                }
                _ => return Err(self.error("an unknown escape in a string")),
            }
        }
    }

    fn character(&mut self) -> Result<Value, EdnError> {
        self.at += 1; // the backslash
        let rest = &self.source[self.at..];
        let Some(first) = rest.chars().next() else {
            return Err(self.error("a character literal at the end"));
        };
        // A named character is a run of letters; a single character may be a delimiter.
        let word_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let (c, len) = match &rest[..word_len] {
            "newline" => ('\n', 7),
            "space" => (' ', 5),
            "tab" => ('\t', 3),
            "return" => ('\r', 6),
            _ => (first, first.len_utf8()),
        };
        self.at += len;
        Ok(Value::Char(c))
    }
}

/// A token that is not a collection, string, character or keyword.
fn atom(token: &str) -> Value {
    match token {
        "nil" => return Value::Nil,
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let bytes = token.as_bytes();
    let digits_start = usize::from(matches!(bytes[0], b'-' | b'+'));
    if bytes.get(digits_start).is_some_and(u8::is_ascii_digit) {
        return match token.parse::<i64>() {
            Ok(number) => Value::Int(number),
            Err(_) => Value::Number(token.to_string()),
        };
    }
    Value::Symbol(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(name: &str) -> Value {
        Value::Keyword(name.to_string())
    }

    #[test]
    fn reads_a_jepsen_op_map() {
        let value = parse(r#"{:process 0, :type :invoke, :f :cas, :key "x", :value [1 2]}"#)
            .expect("valid");
        assert_eq!(value.get("process"), Some(&Value::Int(0)));
        assert_eq!(value.get("type"), Some(&kw("invoke")));
        assert_eq!(value.get("key"), Some(&Value::Str("x".into())));
        assert_eq!(
            value.get("value"),
            Some(&Value::Vector(vec![Value::Int(1), Value::Int(2)]))
        );
        assert_eq!(value.get("missing"), None);
    }

    #[test]
    fn reads_every_kind_of_atom() {
        let value = parse(
            r#"[nil true false -12 +7 1.5 12N 99999999999999999999 "a\"b\\c\n\u0041" \x \newline
               :ns/kw sym.bol (1 2) #{3} #inst "2020" #_ ignored ; a comment
               ]"#,
        )
        .expect("valid");
        let expected = Value::Vector(vec![
            Value::Nil,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(-12),
            Value::Int(7),
            Value::Number("1.5".into()),
            Value::Number("12N".into()),
            Value::Number("99999999999999999999".into()),
            Value::Str("a\"b\\c\nA".into()),
            Value::Char('x'),
            Value::Char('\n'),
            kw("ns/kw"),
            Value::Symbol("sym.bol".into()),
            Value::List(vec![Value::Int(1), Value::Int(2)]),
            Value::Set(vec![Value::Int(3)]),
            Value::Tagged("inst".into(), Box::new(Value::Str("2020".into()))),
        ]);
        assert_eq!(value, expected);
    }

    #[test]
    fn writes_what_it_reads() {
        let text = r#"{:a [1 -2 "q\"\\\n" :k nil true], :b #{(x y)}, :c #tag {:d \space}}"#;
        let value = parse(text).expect("valid");
        let written = value.to_string();
        assert_eq!(parse(&written).expect("written EDN reads back"), value);
    }

    #[test]
    fn rejects_broken_text_with_an_offset() {
        for (text, offset) in [
            ("[1 2", 4),
            ("{:a}", 4),
            ("]", 0),
            ("\"open", 1),
            ("1 2", 2),
            ("", 0),
            ("\"\\q\"", 3),
            ("#", 1),
        ] {
            let error = parse(text).expect_err(text);
            assert_eq!(error.offset, offset, "{text}: {error}");
        }
    }

    #[test]
    fn bounds_nesting() {
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(
            parse(&deep)
                .expect_err("too deep")
                .message
                .contains("deeply")
        );
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&fine).is_ok());
    }
}
