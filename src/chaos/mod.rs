//! The fault-testing harness' pure parts: recording a history from concurrent clients
//! ([`recorder`]), summing it up ([`summary`]: outcomes, faults, availability per second, time
//! to recover), and drawing it ([`timeline`]: throughput and latency over time with the fault
//! windows shaded). None of them touches a clock, a socket or a process: times come in as
//! numbers, so the same history always gives the same outputs.
//!
//! The parts that do touch the world (starting the server, clients on sockets, the nemesis'
//! signals) live in the `piccolo-chaos` binary, which feeds these. A cluster, once it exists,
//! plugs in there: more server processes and more kinds of fault windows, the same recorder,
//! summary, picture and checker. `docs/testing.md` is the chapter.

pub mod recorder;
pub mod summary;
pub mod timeline;
