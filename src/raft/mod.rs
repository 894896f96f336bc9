//! Raft consensus as a pure state machine (sans-IO), and the simulator that proves it.
//!
//! A tour:
//!
//! - [`Node`] is one member of one Raft group. Messages ([`Node::step`]), ticks
//!   ([`Node::tick`]), proposals ([`Node::propose`]) and reads ([`Node::read_index`]) go in; a
//!   [`Ready`] comes out: messages to send, entries and hard state to write, committed entries
//!   to apply, confirmed reads. The caller does the I/O and reports durable writes back
//!   ([`Node::on_persisted`]). No sockets, files, clocks or threads here: time is a tick count
//!   and randomness comes from a seed in the [`Config`].
//! - [`log`] is the in-memory log and its marks (applied, committed, persisted, unstable);
//!   [`progress`] is what a leader knows of each follower (probe, pipelined replicate,
//!   snapshot transfer).
//! - [`message`] holds the values that cross the wire and the disk; their Cap'n Proto form
//!   lives in `proto::peer` (this module imports nothing from `proto`).
//! - [`sim`] is a deterministic simulator: seeded networks that drop, duplicate, delay,
//!   reorder and partition; crashes that keep only what was durable; skewed clocks; and checks
//!   of Raft's safety properties after every step.
//!
//! `docs/raft.md` is the chapter: the algorithm as built, the persistence contract, each
//! invariant and fault, and the bugs the simulator found.
//!
//! The module owns one group's consensus. It must not touch I/O or import `proto`, `store` or
//! `server`; a caller runs many groups by keeping many nodes and routing by
//! [`message::GroupId`].

pub mod config;
pub mod log;
pub mod message;
pub mod node;
pub mod progress;
pub mod rng;
pub mod sim;

pub use config::{Config, ConfigError, ReadMode, TICK_MS};
pub use message::{
    Body, Data, Entry, EntryKind, GroupId, HardState, Index, Membership, Message, NONE, NodeId,
    Snapshot, SnapshotMeta, Term,
};
pub use node::{
    CompactError, LogMark, Node, ProposeError, ReadError, ReadState, Ready, Restored, Role,
    StepError,
};
pub use rng::Rng;
