//! A node's settings: who it is, whom it talks to, and every bound, in ticks and counts.
//!
//! Time enters the core only as [`crate::raft::Node::tick`] calls. The caller decides how long a
//! tick is; [`TICK_MS`] is the length the defaults are written for (etcd's: heartbeat every
//! tick of 100 ms, an election timeout of 10 ticks, randomized per election to 10..20 ticks,
//! so 1 s up to 2 s).

use super::message::{GroupId, NodeId};

/// The tick length the defaults assume, in milliseconds.
pub const TICK_MS: u64 = 100;

/// How a leader confirms it is still leader before answering a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// ReadIndex (Raft thesis, 6.4): note the commit index, hear from a majority in a heartbeat
    /// round that started after the read arrived, then answer once that index is applied. Needs
    /// no assumption about clocks.
    ReadIndex,
    /// ReadIndex, but skip the round while the leader holds a lease: for a while after a round
    /// that a majority acknowledged, no other leader can exist, because the majority refuses to
    /// vote until its election timeout has run out. Safe only while tick rates differ by at most
    /// `max_drift_percent` (see [`Config::lease_ticks`]).
    Lease {
        /// The bound on clock drift: no node's ticks run more than this many percent faster than
        /// the leader's.
        max_drift_percent: u32,
    },
}

/// A node's configuration. Build one with [`Config::new`] and change what you need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This node's id (not [`super::NONE`]).
    pub id: NodeId,
    /// The group's id, carried in every message.
    pub group: GroupId,
    /// The voters when the node starts without a snapshot (a snapshot carries its own).
    pub voters: Vec<NodeId>,
    /// A leader sends heartbeats every this many ticks.
    pub heartbeat_ticks: u32,
    /// The election timeout's lower bound. Each election draws its timeout from
    /// `election_ticks..2 * election_ticks`; a leader checks its quorum every `election_ticks`.
    pub election_ticks: u32,
    /// Campaign with a pre-vote first, so a node that was cut off does not raise the term and
    /// depose a healthy leader when it comes back.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority for `election_ticks` steps down, and nodes
    /// that heard from a leader within `election_ticks` ignore vote requests.
    pub check_quorum: bool,
    /// How reads are confirmed.
    pub read_mode: ReadMode,
    /// Most entries in one append message.
    pub max_append_entries: usize,
    /// Most payload bytes in one append message (at least one entry is always sent).
    pub max_append_bytes: usize,
    /// Most append messages with entries in flight to one follower (the pipelining window).
    pub max_inflight: usize,
    /// Most entries a leader holds uncommitted; proposals beyond it are refused.
    pub max_uncommitted_entries: usize,
    /// Bytes of snapshot per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Chunks of a snapshot in flight to one follower.
    pub snapshot_inflight_chunks: usize,
    /// Largest snapshot a follower accepts, in bytes (the buffer it will grow to).
    pub max_snapshot_bytes: u64,
    /// Seed of this node's generator (election timeouts only). Give each node its own.
    pub seed: u64,
}

impl Config {
    /// The defaults for node `id` of group `group` among `voters`, seeded with `seed`.
    pub fn new(id: NodeId, group: GroupId, voters: Vec<NodeId>, seed: u64) -> Config {
        Config {
            id,
            group,
            voters,
            heartbeat_ticks: 1,
            election_ticks: 10,
            pre_vote: true,
            check_quorum: true,
            read_mode: ReadMode::ReadIndex,
            max_append_entries: 256,
            max_append_bytes: 1 << 20,
            max_inflight: 64,
            max_uncommitted_entries: 1 << 16,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_inflight_chunks: 4,
            max_snapshot_bytes: 1 << 34,
            seed,
        }
    }

    /// The lease a leader takes from a heartbeat round a majority acknowledged, in the leader's
    /// ticks counted from when that round was sent; `None` in [`ReadMode::ReadIndex`].
    ///
    /// Why it is safe: a follower that acknowledged the round at real time `T` (no earlier than
    /// the send) refuses votes until its own `election_ticks`-th tick after `T`, which comes no
    /// sooner than `T + (election_ticks - 1) * follower_tick`. The leader answers lease reads
    /// until its `lease`-th tick after the send, before `send + lease * leader_tick`. With
    /// `follower_tick >= leader_tick / (1 + drift)`, a lease of
    /// `(election_ticks - 1) / (1 + drift)` ticks ends before any majority could elect another
    /// leader. A restarted node, which forgot when it last heard a leader, refuses votes for its
    /// first `election_ticks` ticks for the same reason.
    pub fn lease_ticks(&self) -> Option<u64> {
        match self.read_mode {
            ReadMode::ReadIndex => None,
            ReadMode::Lease { max_drift_percent } => Some(
                (u64::from(self.election_ticks) - 1) * 100 / (100 + u64::from(max_drift_percent)),
            ),
        }
    }

    /// Checks the settings relate sensibly; the node refuses to start otherwise.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |reason: &'static str| Err(ConfigError { reason });
        if self.id == super::NONE {
            return fail("id 0 means nobody");
        }
        if self.heartbeat_ticks == 0 {
            return fail("heartbeat_ticks must be at least 1");
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return fail("election_ticks must exceed heartbeat_ticks");
        }
        if self.max_append_entries == 0 || self.max_append_bytes == 0 {
            return fail("append limits must be at least 1");
        }
        if self.max_inflight == 0 || self.snapshot_inflight_chunks == 0 {
            return fail("in-flight windows must be at least 1");
        }
        if self.snapshot_chunk_bytes == 0 {
            return fail("snapshot_chunk_bytes must be at least 1");
        }
        if self.max_uncommitted_entries == 0 {
            return fail("max_uncommitted_entries must be at least 1");
        }
        if matches!(self.read_mode, ReadMode::Lease { .. }) {
            if !self.check_quorum {
                return fail("a lease needs check_quorum (followers must refuse votes in lease)");
            }
            if self.lease_ticks() == Some(0) {
                return fail("the lease rounds down to zero ticks: raise election_ticks");
            }
        }
        Ok(())
    }
}

/// A configuration the node refuses, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// What is wrong.
    pub reason: &'static str,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "bad Raft configuration: {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_etcds_and_valid() {
        let config = Config::new(1, 0, vec![1, 2, 3], 1);
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.heartbeat_ticks as u64 * TICK_MS, 100);
        assert_eq!(config.election_ticks as u64 * TICK_MS, 1000);
        assert_eq!(config.lease_ticks(), None);
    }

    #[test]
    fn lease_shrinks_with_the_drift_bound() {
        let mut config = Config::new(1, 0, vec![1, 2, 3], 1);
        config.read_mode = ReadMode::Lease {
            max_drift_percent: 0,
        };
        assert_eq!(config.lease_ticks(), Some(9));
        config.read_mode = ReadMode::Lease {
            max_drift_percent: 10,
        };
        assert_eq!(config.lease_ticks(), Some(8));
        config.read_mode = ReadMode::Lease {
            max_drift_percent: 100,
        };
        assert_eq!(config.lease_ticks(), Some(4));
        config.check_quorum = false;
        assert!(config.validate().is_err());
    }
}
