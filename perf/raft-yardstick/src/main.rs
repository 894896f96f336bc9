//! One workload through one Raft implementation, for callgrind to count (see
//! perf/raft-yardstick.sh). The counted part is the function named `measured_*`; setup (three
//! nodes, an election, a warm-up of 64 entries) is not counted.
//!
//! ```text
//! piccolo-raft-yardstick piccolo|raft-rs single|batch|read
//! ```
//!
//! - `single`: 64 entries of 32 bytes, each proposed alone and driven until all three nodes
//!   applied it.
//! - `batch`: 10 batches of 64 entries.
//! - `read`: 64 ReadIndex reads, one at a time.
//!
//! Both implementations run the same loop: hand out each node's Ready, write it to memory,
//! deliver every message, apply; until the group is quiet.

use std::hint::black_box;
use std::process::ExitCode;

const ENTRY_BYTES: usize = 32;

fn payload(at: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; ENTRY_BYTES];
    bytes[..8].copy_from_slice(&(at as u64).to_le_bytes());
    bytes
}

mod ours {
    use super::*;
    use piccolo::raft::sim::group::Group;
    use piccolo::raft::{Config, Data};

    pub fn setup() -> Group {
        let mut group = Group::new(3, |id| Config::new(id, 1, Vec::new(), id));
        group.elect(1);
        for at in 0..64 {
            group.nodes[0]
                .propose(Data::from(payload(at)))
                .expect("leader");
            group.run();
        }
        group
    }

    #[inline(never)]
    pub fn measured_single(group: &mut Group) {
        for at in 0..64 {
            group.nodes[0]
                .propose(black_box(Data::from(payload(at))))
                .expect("leader");
            group.run();
        }
    }

    #[inline(never)]
    pub fn measured_batch(group: &mut Group) {
        for round in 0..10 {
            let batch: Vec<Data> = (0..64)
                .map(|at| Data::from(payload(round * 64 + at)))
                .collect();
            group.nodes[0]
                .propose_batch(black_box(batch))
                .expect("leader");
            group.run();
        }
    }

    #[inline(never)]
    pub fn measured_read(group: &mut Group) {
        for ctx in 0..64 {
            group.nodes[0].read_index(black_box(ctx)).expect("leader");
            group.run();
        }
    }

    pub fn run(workload: &str) -> (u64, usize) {
        let mut group = setup();
        let (applied, reads) = (group.applied, group.reads.len());
        match workload {
            "single" => measured_single(&mut group),
            "batch" => measured_batch(&mut group),
            _ => measured_read(&mut group),
        }
        (group.applied - applied, group.reads.len() - reads)
    }
}

mod theirs {
    use super::*;
    use raft::eraftpb::{Entry, EntryType, Message};
    use raft::storage::MemStorage;
    use raft::{Config, RawNode, StateRole};

    pub struct Group {
        nodes: Vec<RawNode<MemStorage>>,
        wire: Vec<Message>,
        pub applied: u64,
        pub reads: usize,
    }

    fn apply(applied: &mut u64, entries: Vec<Entry>) {
        for entry in entries {
            if entry.get_entry_type() == EntryType::EntryNormal {
                black_box(entry.data.len());
            }
            *applied += 1;
        }
    }

    impl Group {
        fn new() -> Group {
            let logger = slog::Logger::root(slog::Discard, slog::o!());
            let nodes = (1..=3u64)
                .map(|id| {
                    // The same timing and limits as Piccolo's defaults.
                    let config = Config {
                        id,
                        election_tick: 10,
                        heartbeat_tick: 1,
                        max_size_per_msg: 1 << 20,
                        max_inflight_msgs: 64,
                        pre_vote: true,
                        check_quorum: true,
                        ..Default::default()
                    };
                    config.validate().expect("valid");
                    let storage = MemStorage::new_with_conf_state((vec![1, 2, 3], vec![]));
                    RawNode::new(&config, storage, &logger).expect("node")
                })
                .collect();
            Group {
                nodes,
                wire: Vec::with_capacity(64),
                applied: 0,
                reads: 0,
            }
        }

        /// The same loop as Piccolo's `Group::run`, through raft-rs's Ready protocol.
        pub fn run(&mut self) {
            loop {
                for node in &mut self.nodes {
                    while node.has_ready() {
                        let mut ready = node.ready();
                        self.wire.extend(ready.take_messages());
                        if !ready.snapshot().is_empty() {
                            let snapshot = ready.snapshot().clone();
                            node.mut_store()
                                .wl()
                                .apply_snapshot(snapshot)
                                .expect("snapshot");
                        }
                        apply(&mut self.applied, ready.take_committed_entries());
                        if !ready.entries().is_empty() {
                            node.mut_store()
                                .wl()
                                .append(ready.entries())
                                .expect("append");
                        }
                        if let Some(hard_state) = ready.hs() {
                            node.mut_store().wl().set_hardstate(hard_state.clone());
                        }
                        self.reads += ready.read_states().len();
                        self.wire.extend(ready.take_persisted_messages());
                        let mut light = node.advance(ready);
                        if let Some(commit) = light.commit_index() {
                            node.mut_store().wl().mut_hard_state().set_commit(commit);
                        }
                        self.wire.extend(light.take_messages());
                        apply(&mut self.applied, light.take_committed_entries());
                        node.advance_apply();
                    }
                }
                if self.wire.is_empty() {
                    return;
                }
                let batch = std::mem::take(&mut self.wire);
                for message in batch {
                    let at = (message.to - 1) as usize;
                    self.nodes[at].step(message).expect("step");
                }
            }
        }

        pub fn leader(&mut self) -> &mut RawNode<MemStorage> {
            &mut self.nodes[0]
        }
    }

    pub fn setup() -> Group {
        let mut group = Group::new();
        group.nodes[0].campaign().expect("campaign");
        group.run();
        assert_eq!(group.nodes[0].raft.state, StateRole::Leader);
        for at in 0..64 {
            group.leader().propose(vec![], payload(at)).expect("leader");
            group.run();
        }
        group
    }

    #[inline(never)]
    pub fn measured_single(group: &mut Group) {
        for at in 0..64 {
            group
                .leader()
                .propose(vec![], black_box(payload(at)))
                .expect("leader");
            group.run();
        }
    }

    #[inline(never)]
    pub fn measured_batch(group: &mut Group) {
        for round in 0..10 {
            // raft-rs has no batch proposal call: the batch is proposed entry by entry and
            // handed out in one Ready, as its users do.
            for at in 0..64 {
                group
                    .leader()
                    .propose(vec![], black_box(payload(round * 64 + at)))
                    .expect("leader");
            }
            group.run();
        }
    }

    #[inline(never)]
    pub fn measured_read(group: &mut Group) {
        for ctx in 0..64u64 {
            group
                .leader()
                .read_index(black_box(ctx.to_le_bytes().to_vec()));
            group.run();
        }
    }

    pub fn run(workload: &str) -> (u64, usize) {
        let mut group = setup();
        let (applied, reads) = (group.applied, group.reads);
        match workload {
            "single" => measured_single(&mut group),
            "batch" => measured_batch(&mut group),
            _ => measured_read(&mut group),
        }
        (group.applied - applied, group.reads - reads)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [implementation, workload] = args.as_slice() else {
        eprintln!("usage: piccolo-raft-yardstick piccolo|raft-rs single|batch|read");
        return ExitCode::from(2);
    };
    if !matches!(workload.as_str(), "single" | "batch" | "read") {
        eprintln!("unknown workload {workload}");
        return ExitCode::from(2);
    }
    let (applied, reads) = match implementation.as_str() {
        "piccolo" => ours::run(workload),
        "raft-rs" => theirs::run(workload),
        other => {
            eprintln!("unknown implementation {other}");
            return ExitCode::from(2);
        }
    };
    // Check the work was done before anyone trusts a count of it.
    let (want_applied, want_reads) = match workload.as_str() {
        "single" => (3 * 64, 0),
        "batch" => (3 * 640, 0),
        _ => (0, 64),
    };
    if applied != want_applied || reads != want_reads {
        eprintln!(
            "{implementation} {workload}: applied {applied} (want {want_applied}), reads {reads} (want {want_reads})"
        );
        return ExitCode::FAILURE;
    }
    println!("{implementation} {workload}: applied {applied}, reads {reads}");
    ExitCode::SUCCESS
}
