//! Piccolo: an in-memory key:value store built for speed you can measure.
//!
//! A tour of the data path (see `docs/DESIGN.md` for the reasons behind each step):
//!
//! 1. `proto` turns bytes from a socket into requests (RESP2 or Cap'n Proto) and replies back
//!    into bytes. It never touches a socket.
//! 2. The reactor (later, `server`) routes each request by its key's slot to the one worker that
//!    owns it, through the SPSC rings of the `piccolo-queues` crate.
//! 3. Each worker owns one [`store::Shard`]: a hashbrown table of 8-byte handles into
//!    bump-allocated arena segments, with versions, expiry, scan and an incremental cleaner.
//!
//! [`client`] is the blocking Cap'n Proto client that `piccolo-cli` and the tools use;
//! [`gateway`] is the Cerializer, a REST/JSON gateway built on it (`piccolo-cerializer`).
//! [`check`] is a linearizability checker for recorded histories, and [`chaos`] the pure parts
//! of the fault-testing harness `piccolo-chaos` (docs/testing.md).

pub mod chaos;
pub mod check;
pub mod client;
pub mod gateway;
pub mod proto;
pub mod server;
pub mod store;
