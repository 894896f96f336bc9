//! One connection: the socket and a word-aligned receive buffer cut into frames.
//!
//! The receive buffer is a `Vec<Word>`, so it starts 8-byte aligned; frames are whole words and
//! are consumed whole, so every frame starts aligned too and is decoded in place, without a copy.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::ops::Range;

use ::capnp::Word;

use super::error::Error;
use super::reply::ReplyRef;
use crate::proto::capnp::piccolo_capnp::response;
use crate::proto::capnp::{self as wire, FrameLimits};

/// First size of the receive buffer: 64 KiB.
const INITIAL_WORDS: usize = 8 * 1024;

pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    buf: Vec<Word>,
    /// Start of the bytes not yet consumed (a multiple of 8).
    start: usize,
    /// End of the bytes received.
    end: usize,
    /// For `proto::capnp::decode`; unused while frames stay aligned, which they do.
    scratch: Vec<Word>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Word::allocate_zeroed_vec(INITIAL_WORDS),
            start: 0,
            end: 0,
            scratch: Vec::new(),
        }
    }

    /// Writes all of `bytes`.
    pub(crate) fn stream_write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes).map_err(Error::from_io)
    }

    /// The byte range of the next whole frame, if it has arrived; no I/O.
    fn take_frame(&mut self) -> Result<Option<Range<usize>>, Error> {
        let bytes = &Word::words_to_bytes(&self.buf)[self.start..self.end];
        match wire::frame_len(bytes, &FrameLimits::DEFAULT) {
            Ok(Some(len)) => Ok(Some(self.start..self.start + len)),
            Ok(None) => Ok(None),
            Err(error) => Err(Error::Protocol(error.to_string())),
        }
    }

    /// Reads once into the buffer (blocking or not, as the socket is set), making room first.
    /// `Ok(0)` never happens: end of stream is [`Error::Disconnected`].
    fn read_some(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            let (start, end) = (self.start, self.end);
            Word::words_to_bytes_mut(&mut self.buf).copy_within(start..end, 0);
            self.end -= start;
            self.start = 0;
        }
        let capacity = self.buf.len() * 8;
        if self.end == capacity {
            // A frame larger than the buffer: double it (frame_len has bounded the frame).
            self.buf
                .resize(self.buf.len() * 2, ::capnp::word(0, 0, 0, 0, 0, 0, 0, 0));
        }
        let end = self.end;
        let read = self
            .stream
            .read(&mut Word::words_to_bytes_mut(&mut self.buf)[end..])?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += read;
        Ok(read)
    }

    /// Waits for the next frame and hands its Response to `handle`, checking that its id is
    /// `expected_id`.
    pub(crate) fn next_reply<T>(
        &mut self,
        expected_id: u64,
        handle: impl FnOnce(ReplyRef<'_>) -> T,
    ) -> Result<T, Error> {
        let range = loop {
            if let Some(range) = self.take_frame()? {
                break range;
            }
            self.read_some()?;
        };
        self.handle_frame(range, expected_id, handle)
    }

    /// Handles every whole frame already received (no I/O), at most `limit`; returns how many.
    pub(crate) fn ready_replies(
        &mut self,
        first_id: u64,
        limit: usize,
        mut handle: impl FnMut(ReplyRef<'_>),
    ) -> Result<usize, Error> {
        let mut handled = 0;
        while handled < limit {
            let Some(range) = self.take_frame()? else {
                break;
            };
            self.handle_frame(range, first_id.wrapping_add(handled as u64), &mut handle)?;
            handled += 1;
        }
        Ok(handled)
    }

    fn handle_frame<T>(
        &mut self,
        range: Range<usize>,
        expected_id: u64,
        handle: impl FnOnce(ReplyRef<'_>) -> T,
    ) -> Result<T, Error> {
        let end = range.end;
        let frame = &Word::words_to_bytes(&self.buf)[range];
        let message = wire::decode::<response::Owned>(frame, &mut self.scratch)?;
        let response = message.get()?;
        let id = response.get_id();
        let reply = ReplyRef::decode(response)?;
        if id != expected_id {
            // The server answers an undecodable Request with id 0 (it could not read the id)
            // and closes; report that as the server's error.
            if let ReplyRef::Error { .. } = reply {
                return Err(reply.unexpected("a request"));
            }
            return Err(Error::Protocol(format!(
                "Response id {id}, expected {expected_id}"
            )));
        }
        let result = handle(reply);
        self.start = end;
        Ok(result)
    }

    /// Writes `bytes`; while it writes, reads answers already available (without waiting) and
    /// hands them to `handle`, so a long pipeline does not fill the server's output buffer
    /// while the client is not reading. Returns how many answers were handled.
    pub(crate) fn write_draining(
        &mut self,
        bytes: &[u8],
        first_id: u64,
        expected: usize,
        mut handle: impl FnMut(ReplyRef<'_>),
    ) -> Result<usize, Error> {
        /// Bytes written between two drains.
        const CHUNK: usize = 256 * 1024;
        if bytes.len() <= CHUNK {
            self.stream.write_all(bytes)?;
            return Ok(0);
        }
        let mut handled = 0;
        let mut chunks = bytes.chunks(CHUNK).peekable();
        while let Some(chunk) = chunks.next() {
            self.stream.write_all(chunk)?;
            if chunks.peek().is_none() {
                break;
            }
            self.stream.set_nonblocking(true)?;
            let drained = self.drain_nonblocking(first_id, expected, &mut handled, &mut handle);
            self.stream.set_nonblocking(false)?;
            drained?;
        }
        Ok(handled)
    }

    fn drain_nonblocking(
        &mut self,
        first_id: u64,
        expected: usize,
        handled: &mut usize,
        handle: &mut impl FnMut(ReplyRef<'_>),
    ) -> Result<(), Error> {
        loop {
            let id = first_id.wrapping_add(*handled as u64);
            *handled += self.ready_replies(id, expected - *handled, &mut *handle)?;
            match self.read_some() {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(error.into()),
            }
        }
    }
}
