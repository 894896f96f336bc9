//! The replicated state machine the simulator runs on every node: a tiny key-value map with
//! per-client sessions, and a running digest of every entry applied.
//!
//! The digest is what makes state-machine safety cheap to check: after applying index `i`, every
//! node's digest must equal the one the first node to apply `i` had, so one `u64` comparison
//! checks the whole history up to `i`. A snapshot carries the digest, so a node that catches up
//! from a snapshot is checked the same way.

use crate::raft::message::{Entry, EntryKind, Index, Term};

/// Keys of the map.
pub const KEYS: usize = 8;

/// First byte of a client command ([`Command`]); entries starting otherwise are opaque (the
/// 6.5840-style tests propose raw values).
const COMMAND_TAG: u8 = 0xC1;

/// A client's write: `key := value`, the `seq`-th write of `client`. Retries carry the same
/// `seq`, and the session table applies each `(client, seq)` once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// Which client.
    pub client: u32,
    /// Its write number, from 1.
    pub seq: u32,
    /// Which key (below [`KEYS`]).
    pub key: u8,
    /// The value written.
    pub value: u64,
}

impl Command {
    /// Bytes of an encoded command.
    pub const BYTES: usize = 18;

    /// The entry payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        out.push(COMMAND_TAG);
        out.extend_from_slice(&self.client.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.push(self.key);
        out.extend_from_slice(&self.value.to_le_bytes());
        out
    }

    /// Reads a payload written by [`Command::encode`].
    pub fn decode(data: &[u8]) -> Option<Command> {
        if data.len() != Self::BYTES || data[0] != COMMAND_TAG {
            return None;
        }
        Some(Command {
            client: u32::from_le_bytes(data[1..5].try_into().ok()?),
            seq: u32::from_le_bytes(data[5..9].try_into().ok()?),
            key: data[9],
            value: u64::from_le_bytes(data[10..18].try_into().ok()?),
        })
    }
}

/// FNV-1a over bytes, then a mix: a stable hash for payloads (the std hasher is seeded per
/// process, which would break replay).
pub fn hash_bytes(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in data {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(hash)
}

/// A 64-bit finalizer (from SplitMix64).
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The digest after applying `entry` on top of `digest`.
#[inline]
pub fn chain(digest: u64, index: Index, term: Term, data_hash: u64) -> u64 {
    mix(digest ^ mix(index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ term.rotate_left(32) ^ data_hash))
}

/// One node's state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The last index applied (or restored from a snapshot).
    pub applied: Index,
    /// The digest of everything applied.
    pub digest: u64,
    /// The map.
    pub values: [u64; KEYS],
    /// The last `seq` applied per client.
    pub sessions: Vec<u32>,
    /// Filler bytes added to snapshots so transfers take several chunks.
    pub padding: usize,
}

impl Machine {
    /// An empty machine; its snapshots carry `padding` filler bytes.
    pub fn new(padding: usize) -> Machine {
        Machine {
            applied: 0,
            digest: 0,
            values: [0; KEYS],
            sessions: Vec::new(),
            padding,
        }
    }

    /// Applies one committed entry (the caller checked it is the next one).
    pub fn apply(&mut self, entry: &Entry) {
        self.applied = entry.index;
        self.digest = chain(
            self.digest,
            entry.index,
            entry.term,
            hash_bytes(&entry.data),
        );
        if entry.kind != EntryKind::Normal {
            return;
        }
        if let Some(command) = Command::decode(&entry.data) {
            let client = command.client as usize;
            if self.sessions.len() <= client {
                self.sessions.resize(client + 1, 0);
            }
            if command.seq > self.sessions[client] {
                self.sessions[client] = command.seq;
                self.values[command.key as usize % KEYS] = command.value;
            }
        }
    }

    /// The snapshot bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + KEYS * 8 + self.sessions.len() * 4 + self.padding);
        out.extend_from_slice(&self.applied.to_le_bytes());
        out.extend_from_slice(&self.digest.to_le_bytes());
        for value in self.values {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&(self.sessions.len() as u32).to_le_bytes());
        for seq in &self.sessions {
            out.extend_from_slice(&seq.to_le_bytes());
        }
        out.extend_from_slice(&(self.padding as u32).to_le_bytes());
        out.extend((0..self.padding).map(|at| (at as u8) ^ (self.digest as u8)));
        out
    }

    /// Reads snapshot bytes written by [`Machine::encode`].
    pub fn decode(data: &[u8]) -> Option<Machine> {
        let mut at = 0;
        let mut take = |bytes: usize| -> Option<&[u8]> {
            let slice = data.get(at..at + bytes)?;
            at += bytes;
            Some(slice)
        };
        let u64_of = |slice: &[u8]| u64::from_le_bytes(slice.try_into().expect("8 bytes"));
        let u32_of = |slice: &[u8]| u32::from_le_bytes(slice.try_into().expect("4 bytes"));
        let applied = u64_of(take(8)?);
        let digest = u64_of(take(8)?);
        let mut values = [0; KEYS];
        for value in &mut values {
            *value = u64_of(take(8)?);
        }
        let sessions_len = u32_of(take(4)?) as usize;
        let mut sessions = Vec::with_capacity(sessions_len.min(1024));
        for _ in 0..sessions_len {
            sessions.push(u32_of(take(4)?));
        }
        let padding = u32_of(take(4)?) as usize;
        take(padding)?;
        if at != data.len() {
            return None;
        }
        Some(Machine {
            applied,
            digest,
            values,
            sessions,
            padding,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_apply_each_write_once_and_snapshots_round_trip() {
        let mut machine = Machine::new(40);
        let write = Command {
            client: 2,
            seq: 1,
            key: 3,
            value: 77,
        };
        let entry = |index: Index, data: Vec<u8>| Entry {
            term: 1,
            index,
            kind: EntryKind::Normal,
            data: data.into(),
        };
        machine.apply(&entry(1, write.encode()));
        let retry = Command { value: 99, ..write };
        machine.apply(&entry(2, retry.encode()));
        assert_eq!(machine.values[3], 77, "a retried write applies once");
        assert_eq!(Command::decode(&write.encode()), Some(write));
        let bytes = machine.encode();
        assert_eq!(Machine::decode(&bytes), Some(machine.clone()));
        assert_eq!(Machine::decode(&bytes[..bytes.len() - 1]), None);
    }
}
