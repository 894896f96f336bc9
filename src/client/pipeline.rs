//! [`Pipeline`]: many requests in one write, answers read in order.

use super::Client;
use super::error::Error;
use super::reply::{Reply, ReplyRef};
use super::request::{Request, SetOptions, encode};

/// A batch of requests sent with one write (or a few, for batches over 256 KiB), whose
/// answers come back in order, each matched to its request by id.
///
/// Made by [`Client::pipeline`]; it reuses the client's buffers, so a loop of pipelines read
/// with [`Pipeline::execute_with`] allocates only the capnp builder's one small table per
/// request once the buffers have grown. A server error
/// for one request is that request's answer ([`Reply::Error`]); the others still run.
///
/// ```no_run
/// use piccolo::client::{Client, Reply};
/// use std::time::Duration;
///
/// let mut client = Client::connect("127.0.0.1:7379", Duration::from_secs(5))?;
/// let mut pipeline = client.pipeline();
/// for i in 0..100 {
///     pipeline.set(format!("key:{i}").as_bytes(), b"value");
/// }
/// pipeline.get(b"key:7");
/// let replies = pipeline.execute()?;
/// assert_eq!(replies.len(), 101);
/// assert!(matches!(&replies[100], Reply::Value(value) if value.data == b"value"));
/// # Ok::<(), piccolo::client::Error>(())
/// ```
pub struct Pipeline<'c> {
    client: &'c mut Client,
    first_id: u64,
    count: usize,
}

impl<'c> Pipeline<'c> {
    pub(super) fn new(client: &'c mut Client) -> Pipeline<'c> {
        client.out.clear();
        let first_id = client.next_id;
        Pipeline {
            client,
            first_id,
            count: 0,
        }
    }

    /// Adds a request.
    pub fn push(&mut self, request: &Request<'_>) -> &mut Self {
        let id = self.first_id.wrapping_add(self.count as u64);
        encode(id, request, &mut self.client.encoder, &mut self.client.out);
        self.count += 1;
        self
    }

    /// Adds a `get`.
    pub fn get(&mut self, key: &[u8]) -> &mut Self {
        self.push(&Request::Get(key))
    }

    /// Adds a plain `set`.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.set_with(key, value, SetOptions::new())
    }

    /// Adds a `set` with options.
    pub fn set_with(&mut self, key: &[u8], value: &[u8], options: SetOptions<'_>) -> &mut Self {
        self.push(&Request::Set {
            key,
            value,
            options,
            return_old: false,
        })
    }

    /// Adds a `delete` of one key.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.push(&Request::Delete(&[key]))
    }

    /// Adds an `incrBy`.
    pub fn incr(&mut self, key: &[u8], delta: i64) -> &mut Self {
        self.push(&Request::IncrBy { key, delta })
    }

    /// Requests added so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no request was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sends every request and returns the answers, in request order.
    pub fn execute(self) -> Result<Vec<Reply>, Error> {
        let mut replies = Vec::with_capacity(self.count);
        self.execute_with(|_, reply| replies.push(reply.to_owned()))?;
        Ok(replies)
    }

    /// Sends every request and hands each answer, borrowed from the receive buffer, to
    /// `handle(index, reply)` in request order. Nothing is allocated per answer (except for
    /// the lists of `mget` and `scan`).
    pub fn execute_with(self, mut handle: impl FnMut(usize, ReplyRef<'_>)) -> Result<(), Error> {
        let Pipeline {
            client,
            first_id,
            count,
        } = self;
        client.next_id = first_id.wrapping_add(count as u64);
        if count == 0 {
            return Ok(());
        }
        let result = (|| {
            let conn = client.conn.as_mut().ok_or(Error::NotConnected)?;
            let mut index = 0;
            let written = conn.write_draining(&client.out, first_id, count, |reply| {
                handle(index, reply);
                index += 1;
            })?;
            debug_assert_eq!(written, index);
            while index < count {
                let id = first_id.wrapping_add(index as u64);
                conn.next_reply(id, |reply| handle(index, reply))?;
                index += 1;
            }
            Ok(())
        })();
        client.check(result)
    }
}
