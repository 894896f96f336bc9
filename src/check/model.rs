//! What a model is to the search: a sequential specification over small copyable states.
//!
//! A model compiles each [`Operation`] of one key into its own compact op (values interned to
//! `u32`s, the outcome kept or forgotten), then answers one question over and over: from this
//! state, which states may this op lead to, given what it returned? No successor means the op
//! cannot take effect here. Open ops (outcome unknown) accept any result, so they always have
//! a successor; that is what lets the search place them last, as if they never happened.
//!
//! States are `Copy + Eq + Hash` and a few bytes long because the search memoizes every
//! (state, linearized set) pair it reaches.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::edn::Value;
use super::history::Operation;

/// One op of a key's history, compiled for the model.
#[derive(Clone, Debug)]
pub struct Call<O> {
    /// When it was invoked (any monotonic unit; positions in the file).
    pub call: u64,
    /// When it completed; `None` if open (it may take effect any time after `call`, or never).
    pub ret: Option<u64>,
    /// The compiled op.
    pub op: O,
    /// Its index in the caller's list of operations.
    pub source: usize,
}

impl<O> Call<O> {
    /// When it completed, with open ops completing at the end of time.
    pub fn ret_or_end(&self) -> u64 {
        self.ret.unwrap_or(u64::MAX)
    }
}

/// A sequential specification for the search.
pub trait Model {
    /// The object's state; small, so that memo entries stay small.
    type State: Copy + Eq + Hash + Debug;
    /// An operation compiled for this model, with its outcome (or none, if open).
    type Op: Clone + Debug;

    /// The state before any operation.
    fn init(&mut self) -> Self::State;

    /// Compiles one operation; `Err` says why the model cannot read it.
    fn compile(&mut self, operation: &Operation) -> Result<Self::Op, String>;

    /// Pushes onto `next` every state `op` may lead to from `state` given its outcome; pushes
    /// nothing if `op` cannot take effect from `state`. Deterministic models push at most one.
    fn step(&mut self, state: Self::State, op: &Self::Op, next: &mut Vec<Self::State>);

    /// The same op with its outcome forgotten (as if it had completed `:info`).
    fn forget_outcome(&self, op: &Self::Op) -> Self::Op;

    /// Whether `op` never changes the state (reads). An open read-only op constrains nothing,
    /// so the checker drops it.
    fn is_read_only(&self, op: &Self::Op) -> bool;

    /// Which of the `candidates` (a mask over `part`, one key's ops in call order) may be
    /// removed, assuming every op that is not a candidate stays: removing them can only make
    /// the history easier to linearize, so a smaller history that fails proves the larger one
    /// fails. Reads always may. A write may when nothing that stays could observe what it
    /// wrote (each model says what that means); an op that completed before the write was
    /// invoked cannot observe it. Candidates refused here stay, so callers ask again without
    /// them until the answer settles ([`removable_set`]). For open ops removal is an
    /// equivalence: an open op can always go last. The default allows reads only.
    fn removable(&mut self, part: &[Call<Self::Op>], candidates: &[bool]) -> Vec<bool> {
        part.iter()
            .zip(candidates)
            .map(|(call, &candidate)| candidate && self.is_read_only(&call.op))
            .collect()
    }

    /// `state` for people ("x holds 3").
    fn show_state(&self, state: Self::State) -> String;

    /// `op` for people ("read 3", "cas 1 -> 2 (outcome unknown)").
    fn show_op(&self, op: &Self::Op) -> String;

    /// Why `op` cannot take effect from `state`, for people.
    fn why_not(&self, state: Self::State, op: &Self::Op) -> String;
}

/// The ops of `candidates` that [`Model::removable`] lets go together, asked again without
/// the refused ones until nothing more is refused (each round refuses one more or stops, so at
/// most `candidates` rounds).
pub fn removable_set<M: Model>(
    model: &mut M,
    part: &[Call<M::Op>],
    candidates: &[bool],
) -> Vec<bool> {
    let mut chosen = candidates.to_vec();
    loop {
        let allowed = model.removable(part, &chosen);
        if allowed == chosen {
            return chosen;
        }
        debug_assert!(
            allowed.iter().zip(&chosen).all(|(a, c)| !a || *c),
            "only candidates"
        );
        chosen = allowed;
    }
}

/// A fast hasher for the checker's own tables (multiply-rotate, as rustc's FxHash, then a
/// final avalanche so hashbrown's top seven bits are well mixed). Not for untrusted keys in
/// long-lived servers: it has no protection against chosen collisions, which a history file
/// could at worst use to slow its own check down.
#[derive(Default)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.write_u64(u64::from(byte));
    }

    #[inline]
    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn finish(&self) -> u64 {
        // MurmurHash3's fmix64.
        let mut hash = self.0;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^ (hash >> 33)
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Values numbered in order of first appearance; number 0 is `nil`.
#[derive(Debug)]
pub struct Interner {
    numbers: FastMap<Value, u32>,
    values: Vec<Value>,
}

impl Default for Interner {
    fn default() -> Interner {
        let mut numbers = FastMap::default();
        numbers.insert(Value::Nil, NIL);
        Interner {
            numbers,
            values: vec![Value::Nil],
        }
    }
}

/// The number of `nil` in every [`Interner`].
pub const NIL: u32 = 0;

impl Interner {
    /// The number of `value`, giving it one if it has none.
    pub fn intern(&mut self, value: &Value) -> u32 {
        if let Some(&number) = self.numbers.get(value) {
            return number;
        }
        let number = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values");
        self.values.push(value.clone());
        self.numbers.insert(value.clone(), number);
        number
    }

    /// The value numbered `number`.
    pub fn value(&self, number: u32) -> &Value {
        &self.values[number as usize]
    }
}

/// `[a b]` or `(a b)` as a pair.
pub(crate) fn pair_of(value: &Value) -> Option<(&Value, &Value)> {
    match value.as_seq()? {
        [a, b] => Some((a, b)),
        _ => None,
    }
}
