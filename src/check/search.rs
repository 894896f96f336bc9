//! The search: Wing and Gong's backtracking over one key's history, with Lowe's memo of
//! (state, linearized set) pairs and Porcupine's linked list of call and return entries.
//!
//! ```text
//!   entries in time order (a call entry C and a return entry R per op; open ops return at +inf)
//!
//!   HEAD <-> C0 <-> C1 <-> R0 <-> C2 <-> R1 <-> R2 <-> C3 <-> ... <-> R3(+inf) <-> HEAD
//! ```
//!
//! Walking from the head, every call entry met before the first return entry is an op that may
//! take effect next: it was invoked before the earliest pending op completed. The search tries
//! them in order; one that the model accepts is *lifted* (its two entries unlinked, O(1)) and
//! the walk restarts from the head. Meeting a return entry means the op that returns there
//! should have taken effect already, and none of the candidates can go first: the search pops
//! the last op it placed, relinks it, and tries the next candidate after it. The history is
//! linearizable when the list is empty, and not when the stack is empty at a return entry.
//!
//! Backtracking alone is exponential. The memo (Lowe 2017, Porcupine) records each (state,
//! linearized set) reached; reaching one again cannot lead anywhere new, so that branch is cut.
//!
//! ## The linearized set, stored by its frontier
//!
//! Porcupine stores each set as a full bitset of the key's operations: n/8 bytes per memo entry
//! and n/64 words hashed per step, so n^2/8 bytes and n^2/64 work over a run. That is the
//! [`MemoKind::FullBitset`] variant below, kept as the peer the benchmark compares against.
//! [`MemoKind::Frontier`] stores the same set exactly, in space proportional to concurrency:
//!
//! - number ops by call order; `hi` = 1 + the largest linearized number;
//! - the *holes* = the unlinearized numbers below `hi`.
//!
//! The set is {0..hi} minus the holes. A hole is an op still pending when op `hi - 1` took
//! effect, so there are at most as many holes as ops were in flight at once, plus the open ops
//! not yet placed. And the holes are exactly the call entries at the front of the list: every
//! op before a linearized op's call in time order either was linearized or is still pending
//! (its return entry lies after that call, or the linearized op could not have been placed).
//! So the walk from the head that collects them stops at the first return entry or the first
//! call numbered `hi` or more, after at most `holes + 1` entries.

use std::hash::{Hash, Hasher};

use super::model::FastHasher as MemoHasher;

use hashbrown::HashTable;

pub use super::model::Call;
use super::model::Model;

/// How the search stores linearized sets in its memo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoKind {
    /// `hi` and the holes below it (see the module doc); space grows with concurrency.
    #[default]
    Frontier,
    /// One bit per op, as Porcupine does; space grows with the history. For comparison.
    FullBitset,
}

/// What may be spent: steps (loop turns, across searches), memo entries per search (memory),
/// and a stop signal polled every
/// [`POLL_EVERY`] steps. The signal is how a wall-clock deadline reaches this pure code: the
/// caller decides what "too late" means.
pub struct Budget<'a> {
    steps_left: u64,
    max_memo_entries: u64,
    /// `memo_entries` when the current search started: the limit is per search.
    search_memo_start: u64,
    stop: Option<&'a dyn Fn() -> bool>,
    until_poll: u32,
    /// Steps taken so far.
    pub steps: u64,
    /// Memo entries created so far.
    pub memo_entries: u64,
    /// Set when the budget ran out (steps or the stop signal).
    pub exhausted: bool,
}

/// Steps between two polls of the stop signal.
pub const POLL_EVERY: u32 = 4096;

impl<'a> Budget<'a> {
    /// A budget of `max_steps` steps, at most `max_memo_entries` memo entries (memory: about
    /// 50 bytes each), and an optional stop signal.
    pub fn new(
        max_steps: u64,
        max_memo_entries: u64,
        stop: Option<&'a dyn Fn() -> bool>,
    ) -> Budget<'a> {
        Budget {
            steps_left: max_steps,
            max_memo_entries,
            search_memo_start: 0,
            stop,
            until_poll: POLL_EVERY,
            steps: 0,
            memo_entries: 0,
            exhausted: false,
        }
    }

    /// Spends one step; false once the budget is gone.
    #[inline]
    fn spend(&mut self) -> bool {
        if self.steps_left == 0
            || self.memo_entries - self.search_memo_start >= self.max_memo_entries
        {
            self.exhausted = true;
            return false;
        }
        self.steps_left -= 1;
        self.steps += 1;
        self.until_poll -= 1;
        if self.until_poll == 0 {
            self.until_poll = POLL_EVERY;
            if self.stop.is_some_and(|stop| stop()) {
                self.steps_left = 0;
                self.exhausted = true;
                return false;
            }
        }
        true
    }

    /// Spends `steps` at once (work done outside a search, counted in the same unit).
    pub fn charge(&mut self, steps: u64) {
        self.steps += steps;
        self.steps_left = self.steps_left.saturating_sub(steps);
        if self.steps_left == 0 {
            self.exhausted = true;
        }
    }

    /// Whether the budget is gone.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted || self.steps_left == 0
    }
}

/// The longest order the search managed to build before it gave up, and the state it reached.
#[derive(Clone, Debug)]
pub struct Longest<S> {
    /// Indices into the `calls` slice, in the order they took effect.
    pub order: Vec<usize>,
    /// The state after them.
    pub state: S,
}

/// What one search found.
#[derive(Clone, Debug)]
pub enum Outcome<S> {
    /// Some order of all the ops respects real time and the model.
    Linearizable,
    /// None does; with the longest order found, if asked for.
    NotLinearizable(Option<Longest<S>>),
    /// The budget ran out first.
    Unknown,
}

/// A memo entry: the state, and the set as `hi` plus `len` words at `start` in the pool
/// (holes for [`MemoKind::Frontier`], bitset words for [`MemoKind::FullBitset`]).
struct MemoEntry<S> {
    hash: u64,
    state: S,
    hi: u32,
    start: u32,
    len: u32,
}

struct Memo<S> {
    table: HashTable<MemoEntry<S>>,
    /// Holes (as op numbers) or bitset words (as two u32 halves), for every entry.
    pool: Vec<u32>,
}

impl<S: Copy + Eq + Hash> Memo<S> {
    fn new() -> Memo<S> {
        Memo {
            table: HashTable::new(),
            pool: Vec::new(),
        }
    }

    /// Inserts (state, hi, words); false if it was already there.
    fn insert(&mut self, state: S, hi: u32, words: &[u32]) -> bool {
        let mut hasher = MemoHasher::default();
        state.hash(&mut hasher);
        hasher.write_u32(hi);
        for &word in words {
            hasher.write_u32(word);
        }
        let hash = hasher.finish();
        let pool = &self.pool;
        let found = self.table.find(hash, |entry| {
            entry.hash == hash
                && entry.state == state
                && entry.hi == hi
                && pool[entry.start as usize..(entry.start + entry.len) as usize] == *words
        });
        if found.is_some() {
            return false;
        }
        let start = u32::try_from(self.pool.len()).expect("memo pool below 2^32 words");
        self.pool.extend_from_slice(words);
        let len = words.len() as u32;
        self.table.insert_unique(
            hash,
            MemoEntry {
                hash,
                state,
                hi,
                start,
                len,
            },
            |entry| entry.hash,
        );
        true
    }
}

/// Decides whether `calls` (one key's ops, sorted by `call`) can be linearized under `model`.
/// With `record_longest`, a failure comes with the longest order found (costs O(depth) each
/// time the search goes deeper than before; meant for small, minimized histories).
pub fn search<M: Model>(
    model: &mut M,
    calls: &[Call<M::Op>],
    memo_kind: MemoKind,
    budget: &mut Budget<'_>,
    record_longest: bool,
) -> Outcome<M::State> {
    let n = calls.len();
    if n == 0 {
        return Outcome::Linearizable;
    }
    budget.search_memo_start = budget.memo_entries;
    assert!(n < (u32::MAX / 2) as usize, "at most 2^31 ops per key");
    debug_assert!(
        calls.windows(2).all(|pair| pair[0].call <= pair[1].call),
        "calls sorted"
    );

    // Entries: 2i is op i's call, 2i+1 its return; HEAD = 2n closes the circular list.
    let head = (2 * n) as u32;
    let mut order: Vec<u32> = (0..head).collect();
    order.sort_unstable_by_key(|&entry| {
        let call = &calls[(entry / 2) as usize];
        let is_return = entry % 2;
        let time = if is_return == 1 {
            call.ret.unwrap_or(u64::MAX)
        } else {
            call.call
        };
        // At equal times calls go first: touching ops count as concurrent (the permissive
        // reading, so that clock granularity never produces a false alarm).
        (time, is_return, entry / 2)
    });
    let mut next = vec![0u32; 2 * n + 1];
    let mut prev = vec![0u32; 2 * n + 1];
    let mut last = head;
    for &entry in &order {
        next[last as usize] = entry;
        prev[entry as usize] = last;
        last = entry;
    }
    next[last as usize] = head;
    prev[head as usize] = last;
    drop(order);

    let lift = |next: &mut [u32], prev: &mut [u32], op: u32| {
        for entry in [2 * op, 2 * op + 1] {
            let (p, q) = (prev[entry as usize], next[entry as usize]);
            next[p as usize] = q;
            prev[q as usize] = p;
        }
    };
    let unlift = |next: &mut [u32], prev: &mut [u32], op: u32| {
        for entry in [2 * op + 1, 2 * op] {
            let (p, q) = (prev[entry as usize], next[entry as usize]);
            next[p as usize] = entry;
            prev[q as usize] = entry;
        }
    };

    struct Frame<S> {
        op: u32,
        prev_state: S,
        prev_hi: u32,
        /// This frame's untried alternative states are `alternatives[next_alt..alt_end]`.
        alt_base: u32,
        next_alt: u32,
        alt_end: u32,
    }

    let mut memo: Memo<M::State> = Memo::new();
    let mut bits: Vec<u64> = match memo_kind {
        MemoKind::FullBitset => vec![0; n.div_ceil(64)],
        MemoKind::Frontier => Vec::new(),
    };
    let mut words: Vec<u32> = Vec::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut alternatives: Vec<M::State> = Vec::new();
    let mut successors: Vec<M::State> = Vec::new();
    let mut longest: Option<Longest<M::State>> = None;

    let mut state = model.init();
    let mut hi: u32 = 0;
    let mut entry = next[head as usize];

    // The memo key of "the current set plus op `op`", into `words`.
    let key_words = |words: &mut Vec<u32>, next: &[u32], bits: &[u64], op: u32, new_hi: u32| {
        words.clear();
        match memo_kind {
            MemoKind::Frontier => {
                let mut walk = next[head as usize];
                while walk != head && walk % 2 == 0 && walk / 2 < new_hi {
                    if walk / 2 != op {
                        words.push(walk / 2);
                    }
                    walk = next[walk as usize];
                }
            }
            MemoKind::FullBitset => {
                for (index, &word) in bits.iter().enumerate() {
                    let word = if index == (op / 64) as usize {
                        word | 1 << (op % 64)
                    } else {
                        word
                    };
                    words.push(word as u32);
                    words.push((word >> 32) as u32);
                }
            }
        }
    };

    loop {
        if next[head as usize] == head {
            return Outcome::Linearizable;
        }
        if !budget.spend() {
            return Outcome::Unknown;
        }
        if entry % 2 == 0 {
            // A call entry: try to let this op take effect now.
            let op = entry / 2;
            successors.clear();
            model.step(state, &calls[op as usize].op, &mut successors);
            let new_hi = hi.max(op + 1);
            let mut placed = false;
            for (k, &candidate) in successors.iter().enumerate() {
                key_words(&mut words, &next, &bits, op, new_hi);
                if memo.insert(candidate, new_hi, &words) {
                    budget.memo_entries += 1;
                    let alt_base = alternatives.len() as u32;
                    alternatives.extend_from_slice(&successors[k + 1..]);
                    stack.push(Frame {
                        op,
                        prev_state: state,
                        prev_hi: hi,
                        alt_base,
                        next_alt: alt_base,
                        alt_end: alternatives.len() as u32,
                    });
                    lift(&mut next, &mut prev, op);
                    if memo_kind == MemoKind::FullBitset {
                        bits[(op / 64) as usize] |= 1 << (op % 64);
                    }
                    state = candidate;
                    hi = new_hi;
                    placed = true;
                    break;
                }
            }
            if placed {
                if record_longest && longest.as_ref().is_none_or(|l| stack.len() > l.order.len()) {
                    longest = Some(Longest {
                        order: stack.iter().map(|frame| frame.op as usize).collect(),
                        state,
                    });
                }
                entry = next[head as usize];
            } else {
                entry = next[entry as usize];
            }
            continue;
        }
        // A return entry: the op returning here should have taken effect already, and no
        // candidate before it can go first. (The list's last entry is always a return, so the
        // walk never reaches the head.) Undo the last placement and try its alternatives,
        // then the candidates after it.
        debug_assert_ne!(entry, head);
        let Some(mut frame) = stack.pop() else {
            return Outcome::NotLinearizable(longest);
        };
        unlift(&mut next, &mut prev, frame.op);
        if memo_kind == MemoKind::FullBitset {
            bits[(frame.op / 64) as usize] &= !(1 << (frame.op % 64));
        }
        state = frame.prev_state;
        hi = frame.prev_hi;
        let new_hi = hi.max(frame.op + 1);
        let mut placed = false;
        while frame.next_alt < frame.alt_end {
            let candidate = alternatives[frame.next_alt as usize];
            frame.next_alt += 1;
            key_words(&mut words, &next, &bits, frame.op, new_hi);
            if memo.insert(candidate, new_hi, &words) {
                budget.memo_entries += 1;
                lift(&mut next, &mut prev, frame.op);
                if memo_kind == MemoKind::FullBitset {
                    bits[(frame.op / 64) as usize] |= 1 << (frame.op % 64);
                }
                state = candidate;
                hi = new_hi;
                placed = true;
                break;
            }
        }
        if placed {
            stack.push(frame);
            entry = next[head as usize];
        } else {
            alternatives.truncate(frame.alt_base as usize);
            // Scan on after the relinked call; its return follows it, so this is never the
            // head, and a return entry here backtracks further.
            entry = next[(2 * frame.op) as usize];
        }
    }
}
