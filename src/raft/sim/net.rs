//! The simulated network: which links are cut, and what happens to each message on the links
//! that are up (dropped, duplicated, delayed a little or a lot, which reorders them).

use crate::raft::rng::Rng;

/// Per-message faults of the links that are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFaults {
    /// Chance a message is lost, per mille (the issue asks for 0 to 30%).
    pub drop_per_mille: u32,
    /// Chance a message arrives twice, per mille.
    pub duplicate_per_mille: u32,
    /// Usual one-way delay, microseconds: `low..high`.
    pub delay_us: (u64, u64),
    /// Chance of a long delay instead, per mille (this is what reorders messages).
    pub long_delay_per_mille: u32,
    /// The long delay, microseconds: `low..high`.
    pub long_delay_us: (u64, u64),
}

impl LinkFaults {
    /// A reliable network: no loss, no duplicates, 0.1 to 1 ms of delay.
    pub const RELIABLE: LinkFaults = LinkFaults {
        drop_per_mille: 0,
        duplicate_per_mille: 0,
        delay_us: (100, 1_000),
        long_delay_per_mille: 0,
        long_delay_us: (0, 1),
    };

    /// The 6.5840 tester's unreliable network: 10% of messages lost, delays up to 27 ms.
    pub const UNRELIABLE: LinkFaults = LinkFaults {
        drop_per_mille: 100,
        duplicate_per_mille: 0,
        delay_us: (100, 27_000),
        long_delay_per_mille: 0,
        long_delay_us: (0, 1),
    };
}

/// Links between `n` nodes.
#[derive(Debug, Clone)]
pub struct Net {
    n: usize,
    /// `blocked[from * n + to]`: messages from `from` to `to` are lost.
    blocked: Vec<bool>,
    /// Faults of the links that are up.
    pub faults: LinkFaults,
    rng: Rng,
}

impl Net {
    /// A fully connected network of `n` nodes.
    pub fn new(n: usize, faults: LinkFaults, rng: Rng) -> Net {
        Net {
            n,
            blocked: vec![false; n * n],
            faults,
            rng,
        }
    }

    /// Nodes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether `from` can reach `to`.
    #[inline]
    pub fn linked(&self, from: usize, to: usize) -> bool {
        !self.blocked[from * self.n + to]
    }

    /// Cuts or restores the one-way link `from -> to`.
    pub fn set_link(&mut self, from: usize, to: usize, up: bool) {
        self.blocked[from * self.n + to] = !up;
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.blocked.fill(false);
    }

    /// Cuts `node` off from everyone, both ways (6.5840's `disconnect`).
    pub fn isolate(&mut self, node: usize) {
        for other in 0..self.n {
            if other != node {
                self.set_link(node, other, false);
                self.set_link(other, node, false);
            }
        }
    }

    /// Reconnects `node` with every node that is itself connected to someone (6.5840's
    /// `connect`: links to nodes that are still disconnected stay down).
    pub fn connect(&mut self, node: usize, connected: &[bool]) {
        for (other, &up) in connected.iter().enumerate().take(self.n) {
            if other != node && up {
                self.set_link(node, other, true);
                self.set_link(other, node, true);
            }
        }
    }

    /// Splits the nodes into groups (`group_of[node]`); only nodes of one group talk.
    pub fn partition(&mut self, group_of: &[usize]) {
        for from in 0..self.n {
            for to in 0..self.n {
                self.set_link(from, to, group_of[from] == group_of[to]);
            }
        }
    }

    /// Each node talks only with its two neighbours on a ring (Jepsen's "majorities ring" for
    /// five nodes: every node sees a majority, and no two see the same one).
    pub fn ring(&mut self) {
        for from in 0..self.n {
            for to in 0..self.n {
                let distance = (from + self.n - to) % self.n;
                let near = distance <= 1 || distance == self.n - 1;
                self.set_link(from, to, near);
            }
        }
    }

    /// Two halves that talk only through `bridge`, which is in both.
    pub fn bridge(&mut self, bridge: usize, group_of: &[usize]) {
        self.partition(group_of);
        for other in 0..self.n {
            self.set_link(bridge, other, true);
            self.set_link(other, bridge, true);
        }
    }

    /// The delays of the copies of one message about to go `from -> to`: none (lost), one, or
    /// two (duplicated). Each copy draws its own delay, so copies and neighbours reorder.
    pub fn deliveries(&mut self, from: usize, to: usize) -> ([u64; 2], usize) {
        if !self.linked(from, to) || self.rng.chance(self.faults.drop_per_mille) {
            return ([0; 2], 0);
        }
        let copies = if self.rng.chance(self.faults.duplicate_per_mille) {
            2
        } else {
            1
        };
        let mut delays = [0; 2];
        for delay in delays.iter_mut().take(copies) {
            *delay = if self.rng.chance(self.faults.long_delay_per_mille) {
                let (low, high) = self.faults.long_delay_us;
                self.rng.range(low, high.max(low + 1))
            } else {
                let (low, high) = self.faults.delay_us;
                self.rng.range(low, high.max(low + 1))
            };
        }
        (delays, copies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_cut_the_right_links() {
        let mut net = Net::new(5, LinkFaults::RELIABLE, Rng::new(1));
        net.ring();
        assert!(net.linked(0, 1) && net.linked(0, 4) && !net.linked(0, 2));
        net.partition(&[0, 0, 1, 1, 1]);
        assert!(net.linked(0, 1) && !net.linked(1, 2) && net.linked(3, 4));
        net.bridge(2, &[0, 0, 0, 1, 1]);
        assert!(net.linked(0, 2) && net.linked(2, 4) && !net.linked(0, 4));
        net.heal();
        net.isolate(3);
        assert!(!net.linked(3, 0) && !net.linked(0, 3) && net.linked(0, 1));
        let connected = [true, true, true, false, true];
        net.connect(3, &connected);
        assert!(net.linked(3, 0));
        net.set_link(0, 1, false);
        assert!(!net.linked(0, 1) && net.linked(1, 0), "asymmetric cut");
        assert_eq!(net.deliveries(0, 1).1, 0);
    }

    #[test]
    fn drop_rate_is_roughly_what_was_asked() {
        let faults = LinkFaults {
            drop_per_mille: 300,
            ..LinkFaults::RELIABLE
        };
        let mut net = Net::new(2, faults, Rng::new(9));
        let delivered: usize = (0..10_000).map(|_| net.deliveries(0, 1).1).sum();
        assert!((6_500..7_500).contains(&delivered), "{delivered}");
    }
}
