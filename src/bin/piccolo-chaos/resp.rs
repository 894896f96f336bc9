//! The clients' wire: one blocking RESP2 connection with read and write timeouts. A timeout
//! or a broken connection is an error the caller records as an indeterminate operation, and
//! then the connection is dropped: a late reply must never be taken for the next request's.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The largest bulk reply accepted (the harness' values are small numbers).
const MAX_BULK_BYTES: usize = 1 << 20;
/// The most elements an array reply may have.
const MAX_ARRAY_LEN: usize = 1024;

/// A RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

impl Connection {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&request)?;
        self.read_reply(0)
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let read = self
            .reader
            .by_ref()
            .take(64 * 1024)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        if !line.ends_with(b"\r\n") {
            return Err(invalid("a reply line without CRLF"));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| invalid("a reply line that is not UTF-8"))
    }

    fn read_reply(&mut self, depth: usize) -> io::Result<Reply> {
        if depth > 4 {
            return Err(invalid("replies nested too deeply"));
        }
        let line = self.line()?;
        let (kind, rest) = line
            .split_at_checked(1)
            .ok_or_else(|| invalid("an empty reply line"))?;
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| invalid("a bad length or integer"))
        };
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(number()?),
            "$" => {
                let length = number()?;
                if length < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let length = usize::try_from(length).map_err(|_| invalid("a bad bulk length"))?;
                if length > MAX_BULK_BYTES {
                    return Err(invalid("a bulk reply larger than the harness accepts"));
                }
                let mut data = vec![0; length + 2];
                self.reader.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(invalid("a bulk reply without CRLF"));
                }
                data.truncate(length);
                Reply::Bulk(Some(data))
            }
            "*" => {
                let length = number()?;
                if length < 0 {
                    return Ok(Reply::Array(None));
                }
                let length = usize::try_from(length).map_err(|_| invalid("a bad array length"))?;
                if length > MAX_ARRAY_LEN {
                    return Err(invalid("an array reply longer than the harness accepts"));
                }
                let mut items = Vec::with_capacity(length);
                for _ in 0..length {
                    items.push(self.read_reply(depth + 1)?);
                }
                Reply::Array(Some(items))
            }
            _ => return Err(invalid("an unknown reply type")),
        })
    }
}
