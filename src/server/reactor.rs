//! The reactor: one thread, one `mio::Poll`, every socket.
//!
//! Each poll iteration:
//!
//! 1. **Sleep** in `poll` only after announcing it on the reactor's [`SleepFlag`] and checking
//!    the reply rings once more (the store-buffer race, see `piccolo_queues::park`); a worker that
//!    publishes replies wakes the reactor through the `mio::Waker` only if it announced sleep.
//!    While requests are in flight, it first spins on the reply rings for up to
//!    `--reactor-spins` rounds (off by default, see [`SPINS_BEFORE_SLEEP`]).
//! 2. **Accept** new connections (up to `--maxclients`), **read** readable ones, and hand their
//!    bytes to the connection's front end ([`FrontEnds::serve`]), which parses and dispatches:
//!    requests are pushed *deferred* into the owning worker's ring.
//! 3. **Drain** every reply ring and file each reply in its connection's reorder buffer
//!    ([`front::deliver`]), which writes replies to the output in request order.
//! 4. **Retry** connections that were blocked for want of ring budget or in-flight room.
//! 5. **Publish**: one `flush` per request ring that got requests, and one `notify` per worker.
//! 6. **Write** every connection with new output.
//!
//! Backpressure: a worker has at most `ring capacity` requests in flight (pushed and not yet
//! answered), so neither its request ring nor its reply ring can overflow; a connection has at
//! most `MAX_IN_FLIGHT_PER_CONN` commands waiting for replies, fewer when its replies are large
//! (`Conn::in_flight_cap`). When either bound is hit the connection stops parsing (its bytes
//! stay in its read buffer) and stops reading its socket. A client whose unwritten output passes
//! `--max-output-bytes` is closed; the check runs as replies are filed.
//!
//! This file owns sockets and the poll loop only: parsing, dispatch, routing and reply
//! encoding live below it (`front`, `route`, `order`), and nothing imports it.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use piccolo_queues::park::{SleepFlag, Unparker};
use piccolo_queues::{RingConsumer, Variant};

use super::coord::COORDINATOR_INDEX;
use super::front::serve::{Buffered, Stop};
use super::front::{self, FrontEnds};
use super::message::{ConnId, Reply};
use super::session::Session;
use super::signal::SignalPipe;

/// Token of the listening socket.
pub const LISTENER: Token = Token(usize::MAX - 1);
/// Token of the `mio::Waker` the workers use.
pub const WAKER: Token = Token(usize::MAX - 2);
/// Token of the signal pipe.
pub const SIGNAL: Token = Token(usize::MAX - 3);

/// Default `--reactor-spins`: rounds of `spin_loop` plus a look at every reply ring before the
/// reactor sleeps while requests are in flight. Off by default: paired redis-benchmark runs
/// with and without the spin showed it costs server CPU per request and throughput on the
/// development VM (docs/PERFORMANCE.md, "The reactor spin on a quiet machine", has the runs
/// and the command).
pub const SPINS_BEFORE_SLEEP: u32 = 0;
/// Commands of one connection waiting for replies, at most.
pub const MAX_IN_FLIGHT_PER_CONN: usize = 1024;
/// Commands in flight for a connection that has had no reply with data yet (see
/// [`Conn::in_flight_cap`]).
const FIRST_IN_FLIGHT: usize = 64;
/// Socket reads per connection per iteration before others get their turn.
const READS_PER_TURN: usize = 16;
/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// An empty read buffer larger than this is shrunk back to one read chunk.
const READ_KEEP_BYTES: usize = 64 * 1024;
/// An output buffer with more capacity than this is shrunk once written out.
const OUT_KEEP_BYTES: usize = 64 * 1024;
/// How long shutdown waits for in-flight requests.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// One client connection.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    session: Session,
    /// `read_buf[read_start..read_end]` holds bytes not yet parsed; the rest is spare room.
    read_buf: Vec<u8>,
    read_start: usize,
    read_end: usize,
    /// `session.out[out_written..]` is not yet written.
    out_written: usize,
    /// The peer closed its side.
    eof: bool,
    /// In the `dirty` list.
    dirty: bool,
    /// Blocked for want of budget: buffered commands still wait to be dispatched, so an EOF
    /// does not close the connection yet.
    blocked: bool,
    /// The largest reply data seen on this connection, in bytes, at least 1 once a reply has come
    /// (0: none yet). Bounds how many
    /// commands may wait for replies, so replies in flight stay near `--max-output-bytes`.
    largest_reply: usize,
    /// Unwritten output passed `--max-output-bytes` when a reply was filed: later replies are
    /// dropped and the connection is closed at the next write pass.
    output_overflow: bool,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// Startup parameters of the reactor.
pub struct ReactorConfig {
    /// Connections at most.
    pub maxclients: usize,
    /// Output bytes pending for one client before it is disconnected.
    pub max_output_bytes: usize,
    /// Largest read buffer per connection.
    pub max_query_bytes: usize,
    /// Looks at the reply rings before sleeping while requests are in flight
    /// (`--reactor-spins`; 0 turns it off).
    pub spins_before_sleep: u32,
}

/// The reactor's kernel-facing ends: its poll, the bound listener, the signal pipe, and the sleep
/// flag the workers read before waking it.
pub struct ReactorIo {
    /// The poll (the workers' `mio::Waker` is registered on it with [`WAKER`]).
    pub poll: Poll,
    /// The bound listener.
    pub listener: TcpListener,
    /// SIGINT and SIGTERM.
    pub signals: SignalPipe,
    /// The reactor's sleep announcement.
    pub sleep: std::sync::Arc<SleepFlag>,
}

/// The reactor's ends of the workers: their reply rings and how to wake each.
pub struct WorkerEnds<V: Variant> {
    /// Reply rings, by worker.
    pub replies: Vec<V::Consumer<Reply>>,
    /// Wakes each worker.
    pub unparkers: Vec<Unparker>,
}

/// The reactor thread's state.
pub struct Reactor<V: Variant> {
    poll: Poll,
    listener: Option<TcpListener>,
    signals: SignalPipe,
    /// The front ends, the router and the server's numbers.
    fronts: FrontEnds<V>,
    replies: Vec<V::Consumer<Reply>>,
    unparkers: Vec<Unparker>,
    sleep: std::sync::Arc<SleepFlag>,
    slots: Vec<Slot>,
    free_slots: Vec<usize>,
    /// Connections with output to write.
    dirty: Vec<usize>,
    /// Connections blocked for want of budget; retried after replies arrive.
    blocked: Vec<usize>,
    /// Connections that used up their turn; retried next iteration without sleeping.
    yielded: Vec<usize>,
    config: ReactorConfig,
    next_client_id: u64,
    stopping: bool,
    /// When shutdown gives up waiting for in-flight requests.
    stop_deadline: Option<Instant>,
    /// Commands answered with the shutting-down error (see `refuse_unparsed`).
    refused_at_shutdown: usize,
}

impl<V: Variant> Reactor<V> {
    /// Builds the reactor around a bound listener (`io`), the front ends with the request
    /// rings' producer ends, and the reply rings' consumer ends (`workers`).
    pub fn new(
        io: ReactorIo,
        fronts: FrontEnds<V>,
        workers: WorkerEnds<V>,
        config: ReactorConfig,
    ) -> io::Result<Reactor<V>> {
        let ReactorIo {
            poll,
            mut listener,
            signals,
            sleep,
        } = io;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let signal_fd: RawFd = signals.fd();
        poll.registry()
            .register(&mut SourceFd(&signal_fd), SIGNAL, Interest::READABLE)?;
        Ok(Reactor {
            poll,
            listener: Some(listener),
            signals,
            fronts,
            replies: workers.replies,
            unparkers: workers.unparkers,
            sleep,
            slots: Vec::new(),
            free_slots: Vec::new(),
            dirty: Vec::new(),
            blocked: Vec::new(),
            yielded: Vec::new(),
            config,
            next_client_id: 1,
            stopping: false,
            stop_deadline: None,
            refused_at_shutdown: 0,
        })
    }

    /// Runs until SIGINT or SIGTERM, then drains in-flight requests (bounded) and returns.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if !self.yielded.is_empty() {
                Some(Duration::ZERO)
            } else if self.stop_deadline.is_some() {
                Some(Duration::from_millis(10))
            } else {
                None
            };
            let mut sleeping = timeout != Some(Duration::ZERO);
            // Requests in flight: their replies usually come within tens of µs, so look at the
            // reply rings for a while before sleeping. A reply caught here saves the worker's
            // eventfd write and this thread's sleep and wake-up in `epoll_wait`.
            if sleeping
                && self.config.spins_before_sleep > 0
                && self.fronts.router.total_in_flight() > 0
            {
                for _ in 0..self.config.spins_before_sleep {
                    std::hint::spin_loop();
                    if self.replies.iter().any(|ring| !ring.is_empty()) {
                        sleeping = false;
                        break;
                    }
                }
            }
            let timeout = if sleeping {
                timeout
            } else {
                Some(Duration::ZERO)
            };
            let timeout = if sleeping {
                self.sleep.prepare();
                if self.replies.iter().any(|ring| !ring.is_empty()) {
                    self.sleep.cancel();
                    Some(Duration::ZERO)
                } else {
                    timeout
                }
            } else {
                timeout
            };
            let polled = self.poll.poll(&mut events, timeout);
            if sleeping {
                self.sleep.cancel();
            }
            match polled {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    SIGNAL => {
                        if self.signals.drain() && !self.stopping {
                            eprintln!("piccolo-server: signal received, shutting down");
                            self.begin_stop();
                        }
                    }
                    Token(index) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            // The peer's FIN can arrive with the data; then no later event
                            // reports it, so only an event without read-closed may trust a
                            // short read to mean "nothing left" (see `service_input`).
                            let short_read_drains = !event.is_read_closed() && !event.is_error();
                            self.service_input_after(index, short_read_drains);
                        }
                        if event.is_writable() {
                            self.mark_dirty(index);
                        }
                    }
                }
            }
            let got_replies = self.drain_replies();
            if got_replies {
                for index in std::mem::take(&mut self.blocked) {
                    self.service_input(index);
                }
            }
            for index in std::mem::take(&mut self.yielded) {
                self.service_input(index);
            }
            let unparkers = &self.unparkers;
            let wakeups = self
                .fronts
                .router
                .publish(|worker| unparkers[worker].notify());
            self.fronts.info.wakeups_to_workers += wakeups;
            self.write_dirty();
            if let Some(deadline) = self.stop_deadline {
                if self.fronts.router.total_in_flight() == 0 || Instant::now() >= deadline {
                    self.write_dirty();
                    return Ok(());
                }
            }
        }
    }

    /// Stops accepting and reading; in-flight requests are still answered.
    fn begin_stop(&mut self) {
        self.stopping = true;
        self.stop_deadline = Some(Instant::now() + SHUTDOWN_DRAIN);
        if let Some(mut listener) = self.listener.take() {
            // Dropping closes the socket; deregistering first keeps epoll tidy.
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.blocked.clear();
        self.yielded.clear();
        self.refuse_unparsed();
    }

    /// At shutdown: every whole command already read but not yet parsed (a blocked or yielded
    /// connection's buffer) gets an error reply, in its place after the replies still in
    /// flight, instead of silence. Bytes still in the socket are not read, and refusing stops
    /// at the output bound (a blocked buffer holds a few hundred KiB, so it is not reached in
    /// practice).
    fn refuse_unparsed(&mut self) {
        let max_output_bytes = self.config.max_output_bytes;
        for index in 0..self.slots.len() {
            let Some(conn) = self.slots[index].conn.as_mut() else {
                continue;
            };
            if conn.session.closing || conn.read_start == conn.read_end {
                continue;
            }
            let buffer = std::mem::take(&mut conn.read_buf);
            let (start, end) = (conn.read_start, conn.read_end);
            let (used, refused) =
                self.fronts
                    .refuse(&mut conn.session, &buffer[start..end], max_output_bytes);
            conn.give_back_read_buffer(buffer, start + used, end);
            if refused > 0 {
                self.refused_at_shutdown += refused;
                self.mark_dirty(index);
            }
        }
        if self.refused_at_shutdown > 0 {
            eprintln!(
                "piccolo-server: {} commands read but not executed got a shutting-down error",
                self.refused_at_shutdown
            );
        }
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // EMFILE and friends: log and try again on the next event.
                    eprintln!("piccolo-server: accept failed: {error}");
                    return;
                }
            };
            self.fronts.info.total_connections += 1;
            if self.fronts.info.connected_clients >= self.config.maxclients {
                let mut stream = stream;
                // Best effort: the client learns why, as Redis does it.
                let _ = stream.write(b"-ERR max number of clients reached\r\n");
                continue;
            }
            let _ = stream.set_nodelay(true);
            self.add_connection(stream, peer);
        }
    }

    fn add_connection(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        let index = match self.free_slots.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                self.slots.len() - 1
            }
        };
        let Ok(index_u32) = u32::try_from(index) else {
            return;
        };
        if let Err(error) = self.poll.registry().register(
            &mut stream,
            Token(index),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            eprintln!("piccolo-server: cannot register {peer}: {error}");
            self.free_slots.push(index);
            return;
        }
        let slot = &mut self.slots[index];
        slot.generation = slot.generation.wrapping_add(1);
        let client_id = self.next_client_id;
        self.next_client_id += 1;
        let id = ConnId {
            index: index_u32,
            generation: slot.generation,
        };
        slot.conn = Some(Conn {
            stream,
            peer,
            session: Session::new(id, client_id, &self.fronts.info),
            read_buf: Vec::new(),
            read_start: 0,
            read_end: 0,
            out_written: 0,
            eof: false,
            dirty: false,
            blocked: false,
            largest_reply: 0,
            output_overflow: false,
        });
        self.fronts.info.connected_clients += 1;
    }

    fn close(&mut self, index: usize, reason: Option<&str>) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let Some(mut conn) = slot.conn.take() else {
            return;
        };
        if let Some(reason) = reason {
            eprintln!("piccolo-server: closing {}: {reason}", conn.peer);
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.free_slots.push(index);
        self.fronts.info.connected_clients -= 1;
        self.fronts.router.disconnected(conn.session.id);
        // In-flight replies for this connection come back with a stale generation and are
        // dropped in `drain_replies`.
    }

    fn mark_dirty(&mut self, index: usize) {
        if let Some(Some(conn)) = self.slots.get_mut(index).map(|slot| slot.conn.as_mut()) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    /// Parses what is buffered and reads more, until the socket is drained, the connection is
    /// blocked, or its turn is over.
    fn service_input(&mut self, index: usize) {
        self.service_input_after(index, false);
    }

    /// [`service_input`](Self::service_input) for a readiness event. With `short_read_drains`, a
    /// read that returns fewer bytes than the buffer had room for ends the reading: the kernel
    /// handed over everything it had, so another read would only return WouldBlock, one wasted
    /// system call per request at pipeline depth 1 (`strace -c`: two `recvfrom` per request, half
    /// of them EAGAIN). With edge-triggered epoll, data or a FIN arriving after this read raises
    /// a new event. The caller passes false when the event already reported the peer's FIN (it
    /// may sit behind the data, and no new event would report it) and for calls not made for an
    /// event (blocked or yielded connections), which keep reading until WouldBlock.
    fn service_input_after(&mut self, index: usize, short_read_drains: bool) {
        if self.stopping {
            return;
        }
        let mut reads = 0;
        // A short read emptied the socket: parse what came, then stop without another read.
        let mut drained = false;
        loop {
            let stop = self.parse_buffered(index);
            if let Some(conn) = self
                .slots
                .get_mut(index)
                .and_then(|slot| slot.conn.as_mut())
            {
                conn.blocked = stop == Stop::Blocked;
            }
            match stop {
                Stop::More => {}
                Stop::Blocked => {
                    self.blocked.push(index);
                    break;
                }
                Stop::Closing => break,
            }
            let Some(conn) = self
                .slots
                .get_mut(index)
                .and_then(|slot| slot.conn.as_mut())
            else {
                return;
            };
            if conn.eof || drained {
                break;
            }
            if reads == READS_PER_TURN {
                self.yielded.push(index);
                break;
            }
            reads += 1;
            match read_some(conn, self.config.max_query_bytes) {
                Ok(ReadResult::Data) => {}
                Ok(ReadResult::Short) => {
                    if short_read_drains {
                        drained = true;
                    }
                }
                Ok(ReadResult::WouldBlock) => break,
                Ok(ReadResult::Eof) => {
                    conn.eof = true;
                }
                Ok(ReadResult::TooBig) => {
                    self.close(index, Some("query buffer limit exceeded"));
                    return;
                }
                Err(error) => {
                    let reason = format!("read error: {error}");
                    self.close(index, Some(&reason));
                    return;
                }
            }
        }
        self.mark_dirty(index);
    }

    /// Serves the connection's buffered bytes through its front end.
    fn parse_buffered(&mut self, index: usize) -> Stop {
        let Some(conn) = self
            .slots
            .get_mut(index)
            .and_then(|slot| slot.conn.as_mut())
        else {
            return Stop::Closing;
        };
        let buffer = std::mem::take(&mut conn.read_buf);
        let (start, end) = (conn.read_start, conn.read_end);
        let buffered = Buffered {
            bytes: &buffer[start..end],
            in_flight_cap: conn.in_flight_cap(self.config.max_output_bytes),
        };
        let served = self.fronts.serve(&mut conn.session, buffered);
        if let Some(failure) = &served.failure {
            eprintln!("piccolo-server: closing {}: {failure}", conn.peer);
        }
        conn.give_back_read_buffer(buffer, start + served.used, end);
        if std::mem::take(&mut conn.session.shutdown_requested) && !self.stopping {
            eprintln!("piccolo-server: SHUTDOWN from {}, shutting down", conn.peer);
            self.begin_stop();
        }
        served.stop
    }

    /// Pops every reply and files it; returns whether any arrived.
    fn drain_replies(&mut self) -> bool {
        let mut any = false;
        let max_output_bytes = self.config.max_output_bytes;
        for worker in 0..self.replies.len() {
            let slots = &mut self.slots;
            let dirty = &mut self.dirty;
            let router = &mut self.fronts.router;
            let count = self.replies[worker].pop_batch(usize::MAX, |reply: Reply| {
                let index = reply.conn.index as usize;
                let Some(slot) = slots.get_mut(index) else {
                    // No connection has this index: the coordinator's own (`coord.rs`).
                    if reply.conn.index == COORDINATOR_INDEX {
                        router.coordinator_reply(reply);
                    }
                    return;
                };
                if slot.generation != reply.conn.generation {
                    return;
                }
                let Some(conn) = slot.conn.as_mut() else {
                    return;
                };
                if conn.output_overflow {
                    // The connection closes at the next write pass; nothing more is encoded.
                    return;
                }
                conn.largest_reply = conn.largest_reply.max(reply.data.as_slice().len().max(1));
                let session = &mut conn.session;
                let mut wrote = front::deliver(session, reply);
                // Checked as replies are filed, not only after a write, so a client that does
                // not read overshoots the bound by one reply at most.
                if session.out.len() - conn.out_written > max_output_bytes {
                    conn.output_overflow = true;
                    wrote = true;
                }
                if wrote && !conn.dirty {
                    conn.dirty = true;
                    dirty.push(index);
                }
            });
            self.fronts.router.answered(worker, count);
            any |= count > 0;
        }
        any
    }

    /// Writes pending output of every dirty connection; closes those that are done or that
    /// exceed the output bound.
    fn write_dirty(&mut self) {
        for index in std::mem::take(&mut self.dirty) {
            let Some(conn) = self
                .slots
                .get_mut(index)
                .and_then(|slot| slot.conn.as_mut())
            else {
                continue;
            };
            conn.dirty = false;
            if conn.output_overflow {
                let reason = format!(
                    "output buffer of {} bytes exceeds the limit of {} (client not reading)",
                    conn.session.out.len() - conn.out_written,
                    self.config.max_output_bytes
                );
                self.close(index, Some(&reason));
                continue;
            }
            let mut failed = None;
            while conn.out_written < conn.session.out.len() {
                match conn.stream.write(&conn.session.out[conn.out_written..]) {
                    Ok(0) => {
                        failed = Some("write returned 0".to_string());
                        break;
                    }
                    Ok(written) => conn.out_written += written,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        failed = Some(format!("write error: {error}"));
                        break;
                    }
                }
            }
            if let Some(reason) = failed {
                self.close(index, Some(&reason));
                continue;
            }
            if conn.out_written == conn.session.out.len() {
                conn.session.out.clear();
                conn.out_written = 0;
                if conn.session.out.capacity() > OUT_KEEP_BYTES {
                    conn.session.out.shrink_to(OUT_KEEP_BYTES);
                }
                let done_reading = conn.session.closing || (conn.eof && !conn.blocked);
                if done_reading && conn.session.order.is_empty() {
                    self.close(index, None);
                }
                continue;
            }
            let pending = conn.session.out.len() - conn.out_written;
            if pending > self.config.max_output_bytes {
                let reason = format!(
                    "output buffer of {pending} bytes exceeds the limit of {} (client not reading)",
                    self.config.max_output_bytes
                );
                self.close(index, Some(&reason));
                continue;
            }
            // Compact now and then so a slow reader's buffer does not only grow.
            if conn.out_written > OUT_KEEP_BYTES && conn.out_written * 2 > conn.session.out.len() {
                conn.session.out.drain(..conn.out_written);
                conn.out_written = 0;
            }
        }
    }
}

impl Conn {
    /// How many commands may wait for replies: [`MAX_IN_FLIGHT_PER_CONN`], but no more than
    /// the room left under `max_output_bytes` holds replies as large as the largest this
    /// connection has had ([`FIRST_IN_FLIGHT`] before its first reply), and at least
    /// one. Pipelines of small replies keep the full depth; a client pipelining GETs of a large
    /// value does not get hundreds of copies of it in flight.
    fn in_flight_cap(&self, max_output_bytes: usize) -> usize {
        if self.largest_reply == 0 {
            return FIRST_IN_FLIGHT;
        }
        let pending = self.session.out.len() - self.out_written;
        let room = max_output_bytes.saturating_sub(pending);
        (room / self.largest_reply).clamp(1, MAX_IN_FLIGHT_PER_CONN)
    }

    /// Puts the read buffer back after parsing consumed `[.., start)` of `[.., end)`. When
    /// everything was consumed it resets the positions, and if a large request grew the buffer,
    /// shrinks it so an idle connection does not keep that much.
    fn give_back_read_buffer(&mut self, buffer: Vec<u8>, start: usize, end: usize) {
        self.read_buf = buffer;
        self.read_start = start;
        if start == end {
            self.read_start = 0;
            self.read_end = 0;
            if self.read_buf.len() > READ_KEEP_BYTES {
                self.read_buf.truncate(READ_CHUNK_BYTES);
                self.read_buf.shrink_to_fit();
            }
        }
    }
}

enum ReadResult {
    /// The buffer filled up: the socket may hold more.
    Data,
    /// Fewer bytes than the buffer had room for: the receive queue held no more data just now.
    Short,
    WouldBlock,
    Eof,
    TooBig,
}

/// One `read` into the connection's buffer, growing or compacting it as needed.
fn read_some(conn: &mut Conn, max_query_bytes: usize) -> io::Result<ReadResult> {
    if conn.read_start > 0 && conn.read_end == conn.read_buf.len() {
        conn.read_buf.copy_within(conn.read_start..conn.read_end, 0);
        conn.read_end -= conn.read_start;
        conn.read_start = 0;
    }
    if conn.read_end == conn.read_buf.len() {
        if conn.read_buf.len() >= max_query_bytes {
            return Ok(ReadResult::TooBig);
        }
        let grown = (conn.read_buf.len() * 2)
            .max(READ_CHUNK_BYTES)
            .min(max_query_bytes);
        conn.read_buf.resize(grown, 0);
    }
    loop {
        match conn.stream.read(&mut conn.read_buf[conn.read_end..]) {
            Ok(0) => return Ok(ReadResult::Eof),
            Ok(read) => {
                let room = conn.read_buf.len() - conn.read_end;
                conn.read_end += read;
                return Ok(if read < room {
                    ReadResult::Short
                } else {
                    ReadResult::Data
                });
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                return Ok(ReadResult::WouldBlock);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}
