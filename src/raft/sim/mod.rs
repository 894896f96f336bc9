//! A deterministic simulator for the Raft core: one seed, one run, every time.
//!
//! - [`world`]: nodes (core, disk, state machine), a network, a clock and an event queue; the
//!   invariants are checked after every event.
//! - [`net`]: which links are cut and what happens to each message (loss, duplication, delay,
//!   reordering).
//! - [`disk`]: what survives a crash, the writes in flight, torn writes.
//! - [`machine`]: the replicated state machine (a small map with client sessions and a digest).
//! - [`check`]: the safety properties and the first violation.
//! - [`plan`]: randomized runs: a fault plan drawn from the seed, clients, a safety phase, a
//!   liveness phase ([`plan::run_seed`], what `piccolo-sim` runs).
//! - [`group`]: a fault-free group in one process, for benchmarks.
//! - [`lab`]: a harness in the manner of MIT 6.5840's Raft tester (`one`, `check_one_leader`,
//!   `n_committed`, disconnect, crash, restart), for the scenario tests in `tests/raft_lab.rs`.
//!
//! Nothing here touches a clock, a socket or a file: the simulator is as pure as the core, so
//! it lives in the library and the `piccolo-sim` binary uses it as is.

pub mod check;
pub mod disk;
pub mod group;
pub mod lab;
pub mod machine;
pub mod net;
pub mod plan;
pub mod world;

pub use check::{Invariant, Violation};
pub use plan::{Outcome, Plan, RunOptions, run_seed};
pub use world::{MS, Options, SECOND, Stats, Wire, World};
