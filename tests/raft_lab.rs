//! The scenarios of MIT 6.5840's Raft lab tests (3A election, 3B agreement, 3C persistence,
//! 3D snapshots), one test each and named after them, run on the simulator
//! (`piccolo::raft::sim::lab`), with the bounds the course's tester uses
//! (`/work/shared/REFERENCE.md`). Then the scenarios this project adds: pre-vote, check-quorum,
//! ReadIndex and lease reads under partitions and skewed clocks, failover time, slow fsyncs,
//! torn writes, and runs through the wire codec.
//!
//! Every test runs in simulated time (a few seconds of real time for the whole file in a debug
//! build) and checks every safety invariant after every event underneath. Each uses a fixed
//! seed, printed on failure; set `RAFT_LAB_SEED` to run them all with another one.

use piccolo::proto::peer;
use piccolo::raft::sim::lab::{ELECTION_TIMEOUT_US, Lab, MAX_LOG_BYTES, SNAPSHOT_INTERVAL};
use piccolo::raft::sim::world::{Notice, Options};
use piccolo::raft::sim::{MS, RunOptions, SECOND, Wire, run_seed};
use piccolo::raft::{Data, ReadMode, Role};

/// The seed of a test: its own, unless `RAFT_LAB_SEED` says otherwise.
fn seed(own: u64) -> u64 {
    std::env::var("RAFT_LAB_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(own)
}

fn lab(nodes: usize, reliable: bool, snapshot: bool, own_seed: u64) -> Lab {
    Lab::new(nodes, reliable, snapshot, seed(own_seed))
}

fn wire() -> Wire {
    let mut buffer = Vec::new();
    Box::new(move |message| {
        buffer.clear();
        peer::encode(message, &mut buffer);
        let copy = peer::decode(&buffer).map_err(|error| error.to_string())?;
        Ok((copy, buffer.len()))
    })
}

// ------------------------------------------------------------------------------------------
// 3A: leader election.

#[test]
fn initial_election_3a() {
    let mut lab = lab(3, true, false, 301);
    lab.check_one_leader();
    // Everyone agrees on the term.
    lab.sleep_us(50 * MS);
    let term1 = lab.check_terms();
    assert!(term1 >= 1, "term is {term1}, but should be at least 1");
    // Without failures, the leader and term stay.
    lab.sleep_us(2 * ELECTION_TIMEOUT_US);
    let term2 = lab.check_terms();
    assert_eq!(
        term1, term2,
        "the term changed although there were no failures"
    );
    lab.check_one_leader();
}

#[test]
fn re_election_3a() {
    let mut lab = lab(3, true, false, 302);
    let leader1 = lab.check_one_leader();
    // If the leader disconnects, a new one is elected.
    lab.disconnect(leader1);
    lab.check_one_leader();
    // The old leader rejoining does not disturb the new one.
    lab.connect(leader1);
    let leader2 = lab.check_one_leader();
    // No quorum: no leader.
    lab.disconnect(leader2);
    lab.disconnect((leader2 + 1) % 3);
    lab.sleep_us(2 * ELECTION_TIMEOUT_US);
    lab.check_no_leader();
    // A quorum again: a leader.
    lab.connect((leader2 + 1) % 3);
    lab.check_one_leader();
    // The last node rejoining does not prevent a leader.
    lab.connect(leader2);
    lab.check_one_leader();
}

#[test]
fn many_elections_3a() {
    let nodes = 7;
    let mut lab = lab(nodes, true, false, 303);
    lab.check_one_leader();
    for _ in 0..10 {
        let cut: Vec<usize> = (0..3)
            .map(|_| lab.rng.below(nodes as u64) as usize)
            .collect();
        for &node in &cut {
            lab.disconnect(node);
        }
        // Either the current leader is still alive, or the remaining four elect one.
        lab.check_one_leader();
        for &node in &cut {
            lab.connect(node);
        }
    }
    lab.check_one_leader();
    // At most 10 heartbeats a second: requests over the run stay within 7 nodes' election
    // traffic plus 6 heartbeats a tick.
    let seconds = lab.world.time_us() / SECOND + 1;
    assert!(
        lab.rpc_total() <= seconds * 6 * 10 * 3,
        "{} requests in {seconds} s",
        lab.rpc_total()
    );
}

// ------------------------------------------------------------------------------------------
// 3B: log agreement.

#[test]
fn basic_agree_3b() {
    let mut lab = lab(3, true, false, 311);
    // The first leader's no-op takes index 1 (see the lab module); commands follow it.
    let mut expected = None;
    for value in 1..=3u64 {
        let probe = expected.unwrap_or(2);
        let (count, _) = lab.n_committed(probe);
        assert_eq!(count, 0, "some have committed before Start()");
        let index = lab.one(Lab::command(value * 100), 3, false);
        if let Some(expected) = expected {
            assert_eq!(index, expected, "got index {index} but expected {expected}");
        } else {
            assert_eq!(index, 2, "the first command follows the no-op");
        }
        expected = Some(index + 1);
    }
}

#[test]
fn rpc_bytes_3b() {
    // Bytes counted as encoded by the real wire codec.
    let mut lab = lab(3, true, false, 312);
    lab.world.set_wire(wire());
    lab.one(Lab::command(99), 3, false);
    let bytes0 = lab.bytes_total();
    let mut sent = 0u64;
    for _ in 0..10 {
        let payload: Vec<u8> = (0..5000).map(|_| lab.rng.below(256) as u8).collect();
        sent += payload.len() as u64;
        lab.one(payload.into(), 3, false);
    }
    let got = lab.bytes_total() - bytes0;
    let expected = 3 * sent;
    assert!(
        got <= expected + 50_000,
        "too many RPC bytes; got {got}, expected at most {}",
        expected + 50_000
    );
}

#[test]
fn follower_failure_3b() {
    let mut lab = lab(3, true, false, 313);
    lab.one(Lab::command(101), 3, false);
    let leader1 = lab.check_one_leader();
    lab.disconnect((leader1 + 1) % 3);
    // The leader and the remaining follower agree.
    lab.one(Lab::command(102), 2, false);
    lab.sleep_us(ELECTION_TIMEOUT_US);
    lab.one(Lab::command(103), 2, false);
    // With both followers gone, nothing commits.
    let leader2 = lab.check_one_leader();
    lab.disconnect((leader2 + 1) % 3);
    lab.disconnect((leader2 + 2) % 3);
    let (index, _) = lab
        .start(leader2, Lab::command(104))
        .unwrap_or_else(|| lab.fatal("leader rejected Start()"));
    assert_eq!(
        index, 5,
        "expected index 5 (after the no-op and three commands)"
    );
    lab.sleep_us(2 * ELECTION_TIMEOUT_US);
    let (count, _) = lab.n_committed(index);
    assert_eq!(count, 0, "{count} committed but no majority");
}

#[test]
fn leader_failure_3b() {
    let mut lab = lab(3, true, false, 314);
    lab.one(Lab::command(101), 3, false);
    let leader1 = lab.check_one_leader();
    lab.disconnect(leader1);
    // The followers elect a new leader.
    lab.one(Lab::command(102), 2, false);
    lab.sleep_us(ELECTION_TIMEOUT_US);
    lab.one(Lab::command(103), 2, false);
    let leader2 = lab.check_one_leader();
    lab.disconnect(leader2);
    // Submit to everyone: no one has a majority.
    let before = lab.world.checker.chosen_len();
    for i in 0..3 {
        lab.start(i, Lab::command(104));
    }
    lab.sleep_us(2 * ELECTION_TIMEOUT_US);
    // Nothing committed after 103 (the remaining node cannot even commit a no-op).
    assert_eq!(
        lab.world.checker.chosen_len(),
        before,
        "committed without a majority"
    );
}

#[test]
fn fail_agree_3b() {
    let mut lab = lab(3, true, false, 315);
    lab.one(Lab::command(101), 3, false);
    let leader = lab.check_one_leader();
    lab.disconnect((leader + 1) % 3);
    lab.one(Lab::command(102), 2, false);
    lab.one(Lab::command(103), 2, false);
    lab.sleep_us(ELECTION_TIMEOUT_US);
    lab.one(Lab::command(104), 2, false);
    lab.one(Lab::command(105), 2, false);
    // The follower rejoins; the full set keeps the agreements and agrees on new ones.
    lab.connect((leader + 1) % 3);
    lab.one(Lab::command(106), 3, true);
    lab.sleep_us(ELECTION_TIMEOUT_US);
    lab.one(Lab::command(107), 3, true);
}

#[test]
fn fail_no_agree_3b() {
    let mut lab = lab(5, true, false, 316);
    let first = lab.one(Lab::command(10), 5, false);
    let leader = lab.check_one_leader();
    // Three of five followers go.
    for offset in 1..=3 {
        lab.disconnect((leader + offset) % 5);
    }
    let (index, _) = lab
        .start(leader, Lab::command(20))
        .unwrap_or_else(|| lab.fatal("leader rejected Start()"));
    assert_eq!(
        index,
        first + 1,
        "expected index {}, got {index}",
        first + 1
    );
    lab.sleep_us(2 * ELECTION_TIMEOUT_US);
    let (count, _) = lab.n_committed(index);
    assert_eq!(count, 0, "{count} committed but no majority");
    // Repair. The majority may have elected a leader among themselves, forgetting index
    // `first + 1` (then its no-op takes that place).
    for offset in 1..=3 {
        lab.connect((leader + offset) % 5);
    }
    let leader2 = lab.check_one_leader();
    let (index2, _) = lab
        .start(leader2, Lab::command(30))
        .unwrap_or_else(|| lab.fatal("leader2 rejected Start()"));
    assert!(
        (first + 1..=first + 3).contains(&index2),
        "unexpected index {index2}"
    );
    lab.one(Lab::command(1000), 5, true);
}

#[test]
fn concurrent_starts_3b() {
    let mut lab = lab(3, true, false, 317);
    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            lab.sleep_us(3 * SECOND);
        }
        let leader = lab.check_one_leader();
        let Some((_, term)) = lab.start(leader, Lab::command(1)) else {
            continue;
        };
        // Five commands "at once": all at the same instant of simulated time.
        let mut indexes = Vec::new();
        for i in 0..5u64 {
            match lab.start(leader, Lab::command(100 + i)) {
                Some((index, now)) if now == term => indexes.push(index),
                _ => continue 'tries,
            }
        }
        let mut values = Vec::new();
        for index in indexes {
            match lab.wait(index, 3, Some(term)) {
                Some(data) => values.push(data),
                None => continue 'tries,
            }
        }
        for i in 0..5u64 {
            assert!(
                values.contains(&Lab::command(100 + i)),
                "cmd {} missing",
                100 + i
            );
        }
        success = true;
        break;
    }
    assert!(success, "term changed too often");
}

#[test]
fn rejoin_3b() {
    let mut lab = lab(3, true, false, 318);
    lab.one(Lab::command(101), 3, true);
    let leader1 = lab.check_one_leader();
    lab.disconnect(leader1);
    // The old leader tries to agree on entries it cannot commit.
    for value in [102, 103, 104] {
        lab.start(leader1, Lab::command(value));
    }
    // The new leader commits, also at the index the old one used.
    lab.one(Lab::command(103), 2, true);
    let leader2 = lab.check_one_leader();
    lab.disconnect(leader2);
    // The old leader returns.
    lab.connect(leader1);
    lab.one(Lab::command(104), 2, true);
    lab.connect(leader2);
    lab.one(Lab::command(105), 3, true);
}

#[test]
fn backup_3b() {
    let mut lab = lab(5, true, false, 319);
    let value = lab.random_command();
    lab.one(value, 5, true);
    // The leader and one follower in a partition.
    let leader1 = lab.check_one_leader();
    for offset in 2..=4 {
        lab.disconnect((leader1 + offset) % 5);
    }
    // Lots of commands that will not commit.
    for _ in 0..50 {
        let value = lab.random_command();
        lab.start(leader1, value);
    }
    lab.sleep_us(ELECTION_TIMEOUT_US / 2);
    lab.disconnect(leader1);
    lab.disconnect((leader1 + 1) % 5);
    // The other partition recovers and commits lots.
    for offset in 2..=4 {
        lab.connect((leader1 + offset) % 5);
    }
    for _ in 0..50 {
        let value = lab.random_command();
        lab.one(value, 3, true);
    }
    // Again a leader and one follower cut off, with lots that will not commit.
    let leader2 = lab.check_one_leader();
    let mut other = (leader1 + 2) % 5;
    if leader2 == other {
        other = (leader2 + 1) % 5;
    }
    lab.disconnect(other);
    for _ in 0..50 {
        let value = lab.random_command();
        lab.start(leader2, value);
    }
    lab.sleep_us(ELECTION_TIMEOUT_US / 2);
    // The original leader's partition returns: it must back up over 50 conflicting entries.
    for i in 0..5 {
        lab.disconnect(i);
    }
    lab.connect(leader1);
    lab.connect((leader1 + 1) % 5);
    lab.connect(other);
    let rounds_before = lab.rpc_total();
    for _ in 0..50 {
        let value = lab.random_command();
        lab.one(value, 3, true);
    }
    // Everyone.
    for i in 0..5 {
        lab.connect(i);
    }
    let value = lab.random_command();
    lab.one(value, 5, true);
    // Fast backtracking: skipping whole terms, the stale logs were repaired in a handful of
    // round trips, not one per entry.
    let used = lab.rpc_total() - rounds_before;
    assert!(
        used < 2_000,
        "{used} requests to back up and commit 51 entries"
    );
}

#[test]
fn count_3b() {
    let mut lab = lab(3, true, false, 320);
    let leader = lab.check_one_leader();
    let total1 = lab.rpc_total();
    assert!(
        (1..=30).contains(&total1),
        "too many or few RPCs ({total1}) to elect initial leader"
    );
    let mut counted = None;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            lab.sleep_us(3 * SECOND);
        }
        let leader = if attempt == 0 {
            leader
        } else {
            lab.check_one_leader()
        };
        let total1 = lab.rpc_total();
        let iterations = 10u64;
        let Some((start_index, term)) = lab.start(leader, Lab::command(1)) else {
            continue;
        };
        let mut commands = Vec::new();
        for i in 1..=iterations {
            let value = lab.rng.next_u64() >> 1;
            commands.push(value);
            match lab.start(leader, Lab::command(value)) {
                Some((index, now)) if now == term => {
                    assert_eq!(index, start_index + i, "Start() failed");
                }
                _ => continue 'tries,
            }
        }
        for i in 1..=iterations {
            match lab.wait(start_index + i, 3, Some(term)) {
                Some(data) => assert_eq!(
                    data,
                    Lab::command(commands[(i - 1) as usize]),
                    "wrong value committed for index {}",
                    start_index + i
                ),
                None => continue 'tries,
            }
        }
        if (0..3).any(|i| lab.state(i).is_some_and(|(now, _)| now != term)) {
            continue;
        }
        let total2 = lab.rpc_total();
        assert!(
            total2 - total1 <= (iterations + 1 + 3) * 3,
            "too many RPCs ({}) for {iterations} entries",
            total2 - total1
        );
        counted = Some(total2);
        break;
    }
    let total2 = counted.unwrap_or_else(|| lab.fatal("term changed too often"));
    lab.sleep_us(SECOND);
    let total3 = lab.rpc_total();
    assert!(
        total3 - total2 <= 3 * 20,
        "too many RPCs ({}) for 1 second of idleness",
        total3 - total2
    );
}

// ------------------------------------------------------------------------------------------
// 3C: persistence.

#[test]
fn persist1_3c() {
    let mut lab = lab(3, true, false, 331);
    lab.one(Lab::command(11), 3, true);
    // Crash and restart everyone.
    for i in 0..3 {
        lab.crash(i);
    }
    for i in 0..3 {
        lab.restart(i);
    }
    lab.one(Lab::command(12), 3, true);
    let leader1 = lab.check_one_leader();
    lab.crash(leader1);
    lab.restart(leader1);
    lab.one(Lab::command(13), 3, true);
    let leader2 = lab.check_one_leader();
    lab.crash(leader2);
    lab.one(Lab::command(14), 2, true);
    lab.restart(leader2);
    // Wait for leader2 to rejoin before crashing another.
    let index = lab.world.checker.chosen_len();
    lab.wait(index, 3, None);
    let i3 = (lab.check_one_leader() + 1) % 3;
    lab.crash(i3);
    lab.one(Lab::command(15), 2, true);
    lab.restart(i3);
    lab.one(Lab::command(16), 3, true);
}

#[test]
fn persist2_3c() {
    let mut lab = lab(5, true, false, 332);
    let mut index = 1;
    for _ in 0..5 {
        lab.one(Lab::command(10 + index), 5, true);
        index += 1;
        let leader1 = lab.check_one_leader();
        lab.crash((leader1 + 1) % 5);
        lab.crash((leader1 + 2) % 5);
        lab.one(Lab::command(10 + index), 3, true);
        index += 1;
        lab.crash(leader1);
        lab.crash((leader1 + 3) % 5);
        lab.crash((leader1 + 4) % 5);
        lab.restart((leader1 + 1) % 5);
        lab.restart((leader1 + 2) % 5);
        lab.sleep_us(ELECTION_TIMEOUT_US);
        lab.restart((leader1 + 3) % 5);
        lab.one(Lab::command(10 + index), 3, true);
        index += 1;
        lab.restart((leader1 + 4) % 5);
        lab.restart(leader1);
    }
    lab.one(Lab::command(1000), 5, true);
}

#[test]
fn persist3_3c() {
    let mut lab = lab(3, true, false, 333);
    lab.one(Lab::command(101), 3, true);
    let leader = lab.check_one_leader();
    lab.disconnect((leader + 2) % 3);
    lab.one(Lab::command(102), 2, true);
    lab.crash(leader);
    lab.crash((leader + 1) % 3);
    lab.connect((leader + 2) % 3);
    lab.restart(leader);
    lab.one(Lab::command(103), 2, true);
    lab.restart((leader + 1) % 3);
    lab.one(Lab::command(104), 3, true);
}

/// Figure 8 of the Raft paper: leaders come and go with partly replicated logs; an entry of an
/// old term must never count as committed just because a majority holds it.
fn figure8(lab: &mut Lab, unreliable: bool) {
    let nodes = lab.n();
    let value = lab.random_command();
    lab.one(value, 1, true);
    let mut up = nodes;
    for round in 0..1000 {
        if unreliable && round == 200 {
            lab.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..nodes {
            if lab.is_up(i) && lab.is_connected(i) {
                let value = lab.random_command();
                if lab.start(i, value).is_some() {
                    leader = Some(i);
                }
            }
        }
        let pause = if lab.rng.below(1000) < 100 {
            lab.rng.below(ELECTION_TIMEOUT_US / 2)
        } else {
            lab.rng.below(13 * MS)
        };
        lab.sleep_us(pause);
        if let Some(leader) = leader {
            if !unreliable || lab.rng.below(1000) < (ELECTION_TIMEOUT_US / MS) / 2 {
                if unreliable {
                    lab.disconnect(leader);
                } else {
                    lab.crash(leader);
                }
                up -= 1;
            }
        }
        if up < 3 {
            let s = lab.rng.below(nodes as u64) as usize;
            if unreliable && !lab.is_connected(s) {
                lab.connect(s);
                up += 1;
            } else if !unreliable && !lab.is_up(s) {
                lab.restart(s);
                up += 1;
            }
        }
    }
    if unreliable {
        lab.set_unreliable(false);
        lab.set_long_reordering(false);
    }
    for i in 0..nodes {
        if !lab.is_up(i) {
            lab.restart(i);
        } else if !lab.is_connected(i) {
            lab.connect(i);
        }
    }
    let value = lab.random_command();
    lab.one(value, nodes, true);
}

/// The figure-8 tests with ticks of 30 ms (election timeouts of 300 to 600 ms, as the course's
/// students typically choose): with the 1 s default, few leaders would be elected between the
/// test's short pauses. The schedule of crashes and pauses is the course's.
fn figure8_lab(reliable: bool, own_seed: u64) -> Lab {
    let mut options = Options::new(5, seed(own_seed));
    options.tick_us = vec![30 * MS; 5];
    if !reliable {
        options.faults = piccolo::raft::sim::net::LinkFaults::UNRELIABLE;
    }
    Lab::with_options(options)
}

#[test]
fn figure8_3c() {
    let mut lab = figure8_lab(true, 334);
    figure8(&mut lab, false);
    assert!(
        lab.world.checker.leader_terms() >= 50,
        "only {} leaders in 1,000 rounds",
        lab.world.checker.leader_terms()
    );
}

#[test]
fn unreliable_agree_3c() {
    let mut lab = lab(5, false, false, 335);
    // The course runs four `one`s concurrently per round; here four commands start at the
    // same instant, then each must commit (retried as `one` retries, if its leader lost it).
    for round in 1..50u64 {
        let mut started = Vec::new();
        for j in 0..4u64 {
            let data = Lab::command(100 * round + j);
            for i in 0..5 {
                if let Some((index, _)) = lab.start(i, data.clone()) {
                    started.push((index, data.clone()));
                    break;
                }
            }
        }
        lab.one(Lab::command(round), 1, true);
        for (index, data) in started {
            let (count, committed) = lab.n_committed(index);
            if count == 0 || committed.as_ref() != Some(&data) {
                lab.one(data, 1, true);
            }
        }
    }
    lab.set_unreliable(false);
    lab.one(Lab::command(1000), 5, true);
}

#[test]
fn figure8_unreliable_3c() {
    let mut lab = figure8_lab(false, 336);
    figure8(&mut lab, true);
    assert!(
        lab.world.checker.leader_terms() >= 5,
        "only {} leaders in 1,000 rounds",
        lab.world.checker.leader_terms()
    );
}

/// Servers crash, restart, disconnect and reconnect at random while three clients commit
/// (the course's churn: 20 rounds of 0.7 election timeouts; here the clients propose every
/// 50 ms at whichever node leads).
fn churn(lab: &mut Lab, unreliable: bool) {
    let nodes = lab.n();
    if unreliable {
        lab.set_unreliable(true);
    }
    let mut started: Vec<(u64, Data)> = Vec::new();
    let mut next_value = 0u64;
    for _ in 0..20 {
        if lab.rng.below(1000) < 200 {
            let victim = lab.rng.below(nodes as u64) as usize;
            lab.disconnect(victim);
        }
        if lab.rng.below(1000) < 500 {
            let victim = lab.rng.below(nodes as u64) as usize;
            if !lab.is_up(victim) {
                lab.restart(victim);
            } else {
                lab.connect(victim);
            }
        }
        if lab.rng.below(1000) < 200 {
            let victim = lab.rng.below(nodes as u64) as usize;
            lab.crash(victim);
        }
        for _ in 0..14 {
            for _client in 0..3 {
                next_value += 1;
                let data = Lab::command(next_value);
                for i in 0..nodes {
                    if lab.is_connected(i) {
                        if let Some((index, _)) = lab.start(i, data.clone()) {
                            started.push((index, data.clone()));
                            break;
                        }
                    }
                }
            }
            lab.sleep_us(ELECTION_TIMEOUT_US * 7 / 10 / 14);
        }
    }
    lab.set_unreliable(false);
    for i in 0..nodes {
        if !lab.is_up(i) {
            lab.restart(i);
        } else {
            lab.connect(i);
        }
    }
    lab.sleep_us(ELECTION_TIMEOUT_US);
    let last = lab.one(Lab::command(u64::MAX), nodes, true);
    // Every command that committed at the index it was started at is in the final log, which
    // every node applied.
    let mut committed = 0;
    for (index, data) in &started {
        if let (count, Some(value)) = lab.n_committed(*index) {
            assert!(
                *index <= last && count == nodes,
                "index {index} not applied everywhere"
            );
            if value == *data {
                committed += 1;
            }
        }
    }
    assert!(
        committed >= 20,
        "only {committed} of {} commands committed during the churn",
        started.len()
    );
}

#[test]
fn reliable_churn_3c() {
    let mut lab = lab(5, true, false, 337);
    churn(&mut lab, false);
}

#[test]
fn unreliable_churn_3c() {
    let mut lab = lab(5, true, false, 338);
    churn(&mut lab, true);
}

// ------------------------------------------------------------------------------------------
// 3D: snapshots.

fn snapshot_common(own_seed: u64, disconnect: bool, reliable: bool, crash: bool) -> Lab {
    let nodes = 3;
    let mut lab = lab(nodes, reliable, true, own_seed);
    let value = lab.random_command();
    lab.one(value, nodes, true);
    let mut leader1 = lab.check_one_leader();
    for round in 0..30 {
        let (mut victim, mut sender) = ((leader1 + 1) % nodes, leader1);
        if round % 3 == 1 {
            sender = (leader1 + 1) % nodes;
            victim = leader1;
        }
        if disconnect {
            lab.disconnect(victim);
            let value = lab.random_command();
            lab.one(value, nodes - 1, true);
        }
        if crash {
            lab.crash(victim);
            let value = lab.random_command();
            lab.one(value, nodes - 1, true);
        }
        // Perhaps enough to take a snapshot.
        let count = SNAPSHOT_INTERVAL / 2 + lab.rng.below(SNAPSHOT_INTERVAL);
        for _ in 0..count {
            let value = lab.random_command();
            lab.start(sender, value);
        }
        let value = lab.random_command();
        if !disconnect && !crash {
            // Everyone caught up, so no InstallSnapshot is needed in the basic test.
            lab.one(value, nodes, true);
        } else {
            lab.one(value, nodes - 1, true);
        }
        let bytes = lab.max_log_bytes();
        assert!(bytes < MAX_LOG_BYTES, "log size too large: {bytes} bytes");
        if disconnect {
            // A follower that may be behind and need a snapshot to catch up.
            lab.connect(victim);
            let value = lab.random_command();
            lab.one(value, nodes, true);
            leader1 = lab.check_one_leader();
        }
        if crash {
            lab.restart(victim);
            let value = lab.random_command();
            lab.one(value, nodes, true);
            leader1 = lab.check_one_leader();
        }
    }
    lab
}

#[test]
fn snapshot_basic_3d() {
    let lab = snapshot_common(341, false, true, false);
    assert!(
        lab.world
            .nodes
            .iter()
            .all(|node| node.disk.snapshot.is_some()),
        "every node compacted"
    );
}

#[test]
fn snapshot_install_3d() {
    let lab = snapshot_common(342, true, true, false);
    assert!(
        lab.world.stats.snapshots_installed > 0,
        "no follower needed a snapshot"
    );
}

#[test]
fn snapshot_install_unreliable_3d() {
    let lab = snapshot_common(343, true, false, false);
    assert!(lab.world.stats.snapshots_installed > 0);
}

#[test]
fn snapshot_install_crash_3d() {
    let lab = snapshot_common(344, false, true, true);
    assert!(lab.world.stats.snapshots_installed > 0);
}

#[test]
fn snapshot_install_unreliable_crash_3d() {
    let lab = snapshot_common(345, false, false, true);
    assert!(lab.world.stats.snapshots_installed > 0);
}

#[test]
fn snapshot_all_crash_3d() {
    let nodes = 3;
    let mut lab = lab(nodes, false, true, 346);
    let value = lab.random_command();
    lab.one(value, nodes, true);
    for _ in 0..5 {
        let count = SNAPSHOT_INTERVAL / 2 + lab.rng.below(SNAPSHOT_INTERVAL);
        for _ in 0..count {
            let value = lab.random_command();
            lab.one(value, nodes, true);
        }
        let value = lab.random_command();
        let index1 = lab.one(value, nodes, true);
        for i in 0..nodes {
            lab.crash(i);
        }
        for i in 0..nodes {
            lab.restart(i);
        }
        let value = lab.random_command();
        let index2 = lab.one(value, nodes, true);
        assert!(index2 > index1, "index decreased from {index1} to {index2}");
    }
}

#[test]
fn snapshot_init_3d() {
    let nodes = 3;
    let mut lab = lab(nodes, false, true, 347);
    let value = lab.random_command();
    lab.one(value, nodes, true);
    // Enough to take a snapshot.
    for _ in 0..=SNAPSHOT_INTERVAL {
        let value = lab.random_command();
        lab.one(value, nodes, true);
    }
    for i in 0..nodes {
        lab.crash(i);
    }
    for i in 0..nodes {
        lab.restart(i);
    }
    // A single op, to get something written back.
    let value = lab.random_command();
    lab.one(value, nodes, true);
    for i in 0..nodes {
        lab.crash(i);
    }
    for i in 0..nodes {
        lab.restart(i);
    }
    // Another op, to trigger a bug in restoring from the snapshot.
    let value = lab.random_command();
    lab.one(value, nodes, true);
}

// ------------------------------------------------------------------------------------------
// Beyond the course: pre-vote, check-quorum, reads, timing, disks, the codec.

/// A node that was cut off and comes back does not depose a healthy leader: with pre-vote it
/// never raised its term while alone; without pre-vote it did, and its return forces an
/// election.
#[test]
fn pre_vote_rejoining_node_does_not_depose_leader() {
    let run = |pre_vote: bool| {
        let mut options = Options::new(3, seed(401));
        options.config.pre_vote = pre_vote;
        let mut lab = Lab::with_options(options);
        lab.one(Lab::command(1), 3, true);
        let leader = lab.check_one_leader();
        let term = lab.check_terms();
        let loner = (leader + 1) % 3;
        lab.disconnect(loner);
        lab.sleep_us(10 * ELECTION_TIMEOUT_US);
        let loner_term = lab.state(loner).expect("up").0;
        lab.connect(loner);
        lab.sleep_us(3 * ELECTION_TIMEOUT_US);
        lab.one(Lab::command(2), 3, true);
        let leader_now = lab.check_one_leader();
        (term, loner_term, lab.check_terms(), leader == leader_now)
    };
    let (term, loner_term, term_after, same_leader) = run(true);
    assert_eq!(loner_term, term, "with pre-vote the loner's term stayed");
    assert_eq!(term_after, term, "and the cluster's term did not move");
    assert!(same_leader, "the leader kept its place");
    let (term, loner_term, term_after, _) = run(false);
    assert!(
        loner_term > term + 3,
        "without pre-vote the loner campaigned alone"
    );
    assert!(term_after > term, "and its return forced a new election");
}

/// A leader cut off from the majority steps down within an election timeout (so clients stop
/// waiting on it), and the majority elects another.
#[test]
fn check_quorum_partitioned_leader_steps_down() {
    let mut lab = lab(5, true, false, 402);
    lab.one(Lab::command(1), 5, true);
    let leader = lab.check_one_leader();
    lab.disconnect(leader);
    lab.sleep_us(2 * ELECTION_TIMEOUT_US + 200 * MS);
    let (_, leads) = lab.state(leader).expect("up");
    assert!(!leads, "the cut-off leader still believes it leads");
    let new_leader = lab.check_one_leader();
    assert_ne!(new_leader, leader);
    // Without check-quorum, the cut-off leader goes on believing (the majority still moves on).
    let mut options = Options::new(5, seed(402));
    options.config.check_quorum = false;
    let mut lab = Lab::with_options(options);
    lab.one(Lab::command(1), 5, true);
    let leader = lab.check_one_leader();
    lab.disconnect(leader);
    lab.sleep_us(3 * ELECTION_TIMEOUT_US);
    assert_eq!(lab.state(leader).map(|(_, leads)| leads), Some(true));
}

/// A read at `node`, answered through the world's notices: `Some(state index)` once served,
/// `None` if refused or not answered within `wait_us`.
fn read_at(lab: &mut Lab, node: usize, ctx: u64, wait_us: u64) -> Option<u64> {
    if lab.world.read(node, ctx).is_err() {
        return None;
    }
    let deadline = lab.world.time_us() + wait_us;
    loop {
        for notice in lab.world.take_notices() {
            if let Notice::Read {
                ctx: answered,
                state_index,
                ..
            } = notice
            {
                if answered == ctx {
                    return Some(state_index);
                }
            }
        }
        if lab.world.time_us() >= deadline {
            return None;
        }
        lab.sleep_us(MS);
    }
}

/// ReadIndex under a partition: a leader cut off from the majority cannot confirm a read (so it
/// cannot answer with a stale value), while the new leader answers with every write the
/// majority committed.
#[test]
fn read_index_under_partition() {
    let mut lab = lab(5, true, false, 403);
    lab.one(Lab::command(1), 5, true);
    let old = lab.check_one_leader();
    assert!(
        read_at(&mut lab, old, 1, 500 * MS).is_some(),
        "a healthy leader answers"
    );
    lab.disconnect(old);
    // The majority elects a leader and commits a write.
    let written = lab.one(Lab::command(2), 4, true);
    let new = lab.check_one_leader();
    assert_ne!(new, old);
    // Ask the old leader (if it still believes it leads; check-quorum may have demoted it).
    let stale = read_at(&mut lab, old, 2, 2 * SECOND);
    assert_eq!(stale, None, "the cut-off leader answered a read");
    let fresh = read_at(&mut lab, new, 3, SECOND).expect("the new leader answers");
    assert!(
        fresh >= written,
        "read state {fresh} misses write {written}"
    );
}

/// Lease reads skip the heartbeat round while the lease holds and stay linearizable under a
/// partition when the leader's clock runs slow within the stated drift bound (10%). With the
/// followers' clocks running twice as fast as the leader's (far beyond the bound), the same
/// schedule makes the cut-off leader answer from a lease that no longer protects it: a stale
/// read. That second half shows the bound is what makes the lease safe.
#[test]
fn lease_reads_under_partition_and_skew() {
    let run = |leader_tick_us: u64, follower_tick_us: u64| -> (Option<u64>, u64, bool) {
        let mut options = Options::new(3, seed(404));
        options.config.read_mode = ReadMode::Lease {
            max_drift_percent: 10,
        };
        let mut lab = Lab::with_options(options);
        lab.one(Lab::command(1), 3, true);
        let leader = lab.check_one_leader();
        for i in 0..3 {
            let tick = if i == leader {
                leader_tick_us
            } else {
                follower_tick_us
            };
            lab.world.set_tick_us(i, tick);
        }
        lab.sleep_us(2 * SECOND);
        let requests = lab.rpc_total();
        let served = read_at(&mut lab, leader, 10, 0).expect("a read within the lease");
        assert_eq!(
            lab.rpc_total(),
            requests,
            "a read within the lease needs no round"
        );
        assert!(served >= 2);
        // Cut the leader off; the others elect a leader as soon as their clocks allow and
        // commit a write; then read at the old leader.
        lab.disconnect(leader);
        let mut written = 0;
        for _ in 0..600 {
            lab.sleep_us(5 * MS);
            let new = (0..3).find(|&i| {
                i != leader
                    && lab
                        .world
                        .node(i)
                        .is_some_and(|raft| raft.role() == Role::Leader && raft.committed_in_term())
            });
            if let Some(new) = new {
                if let Some((index, _)) = lab.start(new, Lab::command(2)) {
                    written = index;
                    break;
                }
            }
        }
        lab.sleep_us(10 * MS);
        let lease_held = lab.world.node(leader).is_some_and(|raft| raft.has_lease());
        let answer = read_at(&mut lab, leader, 11, 20 * MS);
        (answer, written, lease_held)
    };
    // Within the bound: the leader's clock 10% slow. By the time another leader exists, the
    // old lease has run out and the old leader cannot answer.
    let (answer, written, lease_held) = run(110 * MS, 100 * MS);
    assert!(written > 0, "the majority elected a leader and wrote");
    assert!(
        !lease_held,
        "the old leader's lease outlived a new leader's election"
    );
    assert_eq!(answer, None, "the old leader answered without a lease");
    // Beyond the bound: followers' clocks twice as fast.
    let (answer, written, lease_held) = run(100 * MS, 50 * MS);
    assert!(written > 0);
    assert!(lease_held, "the lease should still hold on the slow clock");
    let answer = answer.expect("the stale leader answers from its lease");
    assert!(
        answer < written,
        "the read at the stale leader ({answer}) should miss the write ({written})"
    );
}

/// At the default timing (100 ms ticks, 1 s election timeout randomized to 2 s), a dead
/// leader is replaced (a new leader has committed its no-op) within 2 s, over 100 seeds; the
/// median and the worst case are printed.
#[test]
fn failover_within_two_seconds_at_the_defaults() {
    let mut times = Vec::new();
    for run in 0..100 {
        let mut lab = Lab::new(3, true, false, seed(405) + run);
        lab.one(Lab::command(1), 3, true);
        let leader = lab.check_one_leader();
        let crashed_at = lab.world.time_us();
        lab.crash(leader);
        let mut took = None;
        while lab.world.time_us() < crashed_at + 5 * SECOND {
            lab.sleep_us(MS);
            if (0..3).any(|i| {
                i != leader
                    && lab
                        .world
                        .node(i)
                        .is_some_and(|raft| raft.role() == Role::Leader && raft.committed_in_term())
            }) {
                took = Some(lab.world.time_us() - crashed_at);
                break;
            }
        }
        times.push(took.unwrap_or_else(|| lab.fatal("no new leader within 5 s")));
    }
    times.sort_unstable();
    let worst = times[times.len() - 1];
    println!(
        "failover over 100 seeds: median {} ms, worst {} ms",
        times[times.len() / 2] / MS,
        worst / MS
    );
    assert!(worst <= 2 * SECOND, "failover took {} ms", worst / MS);
}

/// A follower whose fsyncs stall for 1.5 s (beyond the election timeout) must not start an
/// election: ticks go on while its write is in flight, the leader's heartbeats reach it, and
/// pre-vote plus check-quorum keep a lagging node from disturbing the others.
#[test]
fn slow_fsync_does_not_trigger_elections() {
    let mut options = Options::new(3, seed(406));
    options.write_us = (100, 2 * MS);
    options.slow_write_per_mille = 300;
    options.slow_write_us = (500 * MS, 1500 * MS);
    let mut lab = Lab::with_options(options);
    lab.one(Lab::command(1), 3, true);
    let term = lab.check_terms();
    for value in 0..40 {
        lab.one(Lab::command(100 + value), 2, true);
    }
    lab.sleep_us(5 * SECOND);
    assert_eq!(lab.check_terms(), term, "a slow disk caused an election");
}

/// Crashes that tear the write in progress (a torn last entry) lose nothing that was
/// acknowledged, over the randomized schedules.
#[test]
fn torn_writes_lose_nothing_acknowledged() {
    let mut torn = 0;
    for seed_offset in 0..8 {
        let mut options = Options::new(5, seed(407) + seed_offset);
        options.write_us = (MS, 20 * MS);
        options.torn_write_per_mille = 1000;
        let mut lab = Lab::with_options(options);
        for round in 0..30 {
            let value = lab.random_command();
            lab.one(value, 3, true);
            let victim = lab.rng.below(5) as usize;
            // Crash in the middle of a burst of writes.
            for _ in 0..5 {
                let value = lab.random_command();
                for i in 0..5 {
                    lab.start(i, value.clone());
                }
            }
            let pause = lab.rng.below(10 * MS);
            lab.sleep_us(pause);
            lab.crash(victim);
            lab.sleep_us(200 * MS);
            lab.restart(victim);
            if round % 10 == 9 {
                lab.sleep_us(ELECTION_TIMEOUT_US);
            }
        }
        let value = lab.random_command();
        lab.one(value, 5, true);
        torn += lab.world.stats.torn_writes;
    }
    assert!(torn > 50, "only {torn} writes were torn");
}

/// The randomized schedules, with every message through the Cap'n Proto codec.
#[test]
fn random_schedules_through_the_wire_codec() {
    for seed_offset in 0..6 {
        let run_seed_value = seed(500) + seed_offset;
        let outcome = run_seed(
            RunOptions {
                safety_us: 10 * SECOND,
                nodes: Some(3 + 2 * (seed_offset as usize % 3)),
                ..RunOptions::new(run_seed_value)
            },
            Some(wire()),
        );
        if let Some(violation) = outcome.violation {
            panic!(
                "seed {run_seed_value}: {violation} (replay: piccolo-sim --seeds {run_seed_value}..{} \
                 --wire --safety-s 10 --trace)",
                run_seed_value + 1
            );
        }
        assert!(outcome.stats.bytes_sent > 0 && outcome.operations > 0);
    }
    // The codec mode changes nothing about the run: same fingerprint as Rust values.
    let plain = run_seed(RunOptions::new(seed(500)), None);
    let wired = run_seed(RunOptions::new(seed(500)), Some(wire()));
    assert_eq!(plain.fingerprint, wired.fingerprint);
    assert!(plain.violation.is_none());
}
