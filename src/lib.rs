//! Piccolo: an in-memory key:value store built for speed you can measure.
//!
//! A tour of the data path (`docs/DESIGN.md` walks one GET through it; its chapters say why):
//!
//! 1. `proto` turns bytes from a socket into requests (RESP2 or Cap'n Proto) and replies back
//!    into bytes. It never touches a socket.
//! 2. [`server`]'s reactor routes each request by its key's slot to the one worker that owns
//!    it, through the SPSC rings of the `piccolo-queues` crate, and writes the replies back in
//!    order.
//! 3. Each worker owns one [`store::Shard`]: a hashbrown table of 4-byte handles into
//!    bump-allocated arena segments, with versions, expiry, scan and an incremental cleaner.
//!
//! [`client`] is the blocking Cap'n Proto client that `piccolo-cli` and the tools use;
//! [`gateway`] is the Cerializer, a REST/JSON gateway built on it (`piccolo-cerializer`).
//!
//! Layers depend one way: `store` and `proto` import nothing from each other or from above
//! them; both use `decimal` (the one integer parser), which imports nothing.
//!
//! Where the `unsafe` code is (every block says why it is sound in a `// SAFETY:` comment):
//! `store/arena.rs` (record memory), `store/hash.rs` (one `getrandom` call), `proto/capnp.rs`
//! (the reusable segment allocator; the generated schema code has its own), `server` (libc
//! calls: signals, the page size, `malloc_trim`), `bin/piccolo-bench` (one `getrusage` call),
//! and the `piccolo-queues` crate (the ring slots).
//!
//! [`check`] is a linearizability checker for recorded histories, and [`chaos`] the pure parts
//! of the fault-testing harness `piccolo-chaos` (docs/testing.md).

pub mod chaos;
pub mod check;
pub mod client;
mod decimal;
pub mod gateway;
pub mod persist;
pub mod proto;
pub mod raft;
pub mod server;
pub mod store;
