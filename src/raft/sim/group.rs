//! The simplest possible cluster: a few nodes in one process, a perfect network, instant
//! durable writes. For benchmarks (instructions per committed entry, with nothing but the core
//! being measured) and for quick experiments. The [`super::world::World`] is the one with faults.

use crate::raft::config::Config;
use crate::raft::message::{Message, NodeId};
use crate::raft::node::{Node, ReadState, Restored, Role};

/// Nodes `1..=n` wired to each other directly.
#[derive(Debug)]
pub struct Group {
    /// The nodes; node `id` is at `id - 1`.
    pub nodes: Vec<Node>,
    /// Messages sent and not yet delivered.
    wire: Vec<Message>,
    /// Entries applied, over all nodes.
    pub applied: u64,
    /// Reads confirmed, over all nodes.
    pub reads: Vec<ReadState>,
}

impl Group {
    /// `n` fresh nodes, each configured by `configure(id)` (voters `1..=n`).
    pub fn new(n: usize, configure: impl Fn(NodeId) -> Config) -> Group {
        let nodes = (1..=n as NodeId)
            .map(|id| {
                let mut config = configure(id);
                config.id = id;
                config.voters = (1..=n as NodeId).collect();
                Node::new(config, Restored::default()).expect("a valid configuration")
            })
            .collect();
        Group {
            nodes,
            wire: Vec::with_capacity(64),
            applied: 0,
            reads: Vec::new(),
        }
    }

    /// Ticks node `id` until it campaigns, then runs until it leads and has committed its
    /// no-op.
    pub fn elect(&mut self, id: NodeId) {
        let at = (id - 1) as usize;
        while self.nodes[at].role() == Role::Follower {
            self.nodes[at].tick();
        }
        self.run();
        assert_eq!(
            self.nodes[at].role(),
            Role::Leader,
            "node {id} won its election"
        );
        assert!(self.nodes[at].committed_in_term());
    }

    /// Hands out every Ready (persisting at once, delivering every message) until the group
    /// is quiet. Returns the number of messages delivered.
    pub fn run(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            for node in &mut self.nodes {
                while node.has_ready() {
                    let ready = node.ready();
                    let mark = ready.persisted_mark();
                    self.wire.extend(ready.messages);
                    self.wire.extend(ready.persisted_messages);
                    if let Some(mark) = mark {
                        node.on_persisted(mark);
                    }
                    self.applied += ready.committed_entries.len() as u64;
                    self.reads.extend(ready.read_states);
                }
            }
            if self.wire.is_empty() {
                return delivered;
            }
            // Deliver in the order sent; new messages wait for the next pass.
            let batch = std::mem::take(&mut self.wire);
            delivered += batch.len();
            for message in batch {
                let at = (message.to - 1) as usize;
                self.nodes[at]
                    .step(message)
                    .expect("messages are routed to their node");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::Data;

    #[test]
    fn proposals_and_reads_complete() {
        let mut group = Group::new(3, |id| Config::new(id, 1, Vec::new(), id));
        group.elect(1);
        let before = group.applied;
        let batch: Vec<Data> = (0..64u8).map(|at| Data::from(&[at; 16][..])).collect();
        group.nodes[0].propose_batch(batch).expect("leader");
        group.run();
        assert_eq!(
            group.applied - before,
            3 * 64,
            "each node applied the batch"
        );
        group.nodes[0].read_index(7).expect("leader");
        group.run();
        assert_eq!(group.reads.last().map(|read| read.ctx), Some(7));
    }
}
