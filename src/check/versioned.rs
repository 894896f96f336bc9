//! Piccolo's versioned register: one key as `GETV`, `SET` and `CAS` see it.
//!
//! Piccolo gives every write a version from its shard's counter, which only grows and is shared
//! by all keys of the shard (`src/store/shard.rs`). So for one key: every write gives it a
//! version greater than the one it had, but not necessarily one more, and the client of a `SET`
//! never learns which (`SET` answers `OK`). The operations, as the harness records them:
//!
//! | `:f` | invocation `:value` | `:ok` completion `:value` |
//! |---|---|---|
//! | `:getv` (or `:read`) | `nil` | `[value version]`, or `nil` for a missing key |
//! | `:set` (or `:write`) | `value` | `value` |
//! | `:cas` | `[version value]` | `[version value new-version]` (`new-version` may be left out) |
//!
//! `CAS key version value` writes only if the key exists with exactly that version, and answers
//! the new version; otherwise it answers nil, which the harness records as `:fail` (it did not
//! happen; the checker drops it, as Knossos does).
//!
//! A state is the value and what is known of the version: either exactly `v` (a `GETV` or a
//! `CAS` reply said so) or only "at least `v`" (after a `SET`, or a `CAS` whose reply was lost).
//! A later observation pins an unknown version down, so the one symbolic state stands for all
//! the versions the server could have picked.
//!
//! One approximation, on the permissive side: when a `CAS` whose outcome is unknown meets a
//! version known only as "at least `v`", the branch in which the CAS did not match keeps "at
//! least `v`" instead of also remembering "and not the CAS's version". The checker can then miss
//! a violation that depends on that exclusion; it never reports one that is not there.

use super::edn::Value;
use super::history::Operation;
use super::model::{Call, Interner, Model, NIL, pair_of};

/// The versioned register model.
#[derive(Debug, Default)]
pub struct Versioned {
    values: Interner,
}

/// A key's value and version. `value == NIL` means the key is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionedState {
    /// The interned value; [`NIL`] for a missing key.
    pub value: u32,
    /// The version, exact or a lower bound (see `exact`); 0 for a missing key.
    pub version: u64,
    /// Whether `version` is exact; if not, the real version is some number `>= version`.
    pub exact: bool,
}

const MISSING: VersionedState = VersionedState {
    value: NIL,
    version: 0,
    exact: true,
};

/// A versioned-register operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionedOp {
    /// `GETV`: `None` when the result is unknown; `Some(None)` for a missing key; otherwise the
    /// value and the version.
    GetV(Option<Option<(u32, u64)>>),
    /// `SET value`.
    Set(u32),
    /// `CAS version value`.
    Cas {
        /// The version it expects.
        expected: u64,
        /// The value it writes.
        value: u32,
        /// The version it answered, when it answered one.
        new_version: Option<u64>,
        /// Whether it completed `:ok`.
        known: bool,
    },
}

fn version_of(value: &Value) -> Result<u64, String> {
    match value {
        Value::Int(number) if *number >= 0 => Ok(*number as u64),
        other => Err(format!(
            "a version must be a non-negative integer, not {other}"
        )),
    }
}

impl Versioned {
    fn present_value(&mut self, value: &Value) -> Result<u32, String> {
        if *value == Value::Nil {
            return Err("a stored value cannot be nil".to_string());
        }
        Ok(self.values.intern(value))
    }

    /// The state after a write of `value` whose version the client did not learn.
    fn written(state: VersionedState, value: u32) -> VersionedState {
        VersionedState {
            value,
            version: state.version + 1,
            exact: false,
        }
    }
}

impl Model for Versioned {
    type State = VersionedState;
    type Op = VersionedOp;

    fn init(&mut self) -> VersionedState {
        MISSING
    }

    fn compile(&mut self, operation: &Operation) -> Result<VersionedOp, String> {
        Ok(match operation.f.as_str() {
            "getv" | "read" => match &operation.output {
                None => VersionedOp::GetV(None),
                Some(Value::Nil) => VersionedOp::GetV(Some(None)),
                Some(output) => {
                    let (value, version) = pair_of(output).ok_or_else(|| {
                        format!("getv returns [value version] or nil, not {output}")
                    })?;
                    let value = self.present_value(value)?;
                    VersionedOp::GetV(Some(Some((value, version_of(version)?))))
                }
            },
            "set" | "write" => VersionedOp::Set(self.present_value(&operation.input)?),
            "cas" => {
                let (expected, value) = pair_of(&operation.input)
                    .ok_or_else(|| format!("cas needs [version value], not {}", operation.input))?;
                let new_version = match &operation.output {
                    Some(Value::Int(number)) => Some(version_of(&Value::Int(*number))?),
                    Some(output) => match output.as_seq() {
                        Some([_, _, new_version]) => Some(version_of(new_version)?),
                        Some([_, _]) => None,
                        _ => {
                            return Err(format!(
                                "a cas completes with [version value new-version], not {output}"
                            ));
                        }
                    },
                    None => None,
                };
                VersionedOp::Cas {
                    expected: version_of(expected)?,
                    value: self.present_value(value)?,
                    new_version,
                    known: operation.output.is_some(),
                }
            }
            other => {
                return Err(format!(
                    "the versioned model has no :{other} (getv, set, cas)"
                ));
            }
        })
    }

    fn step(&mut self, state: VersionedState, op: &VersionedOp, next: &mut Vec<VersionedState>) {
        let present = state.value != NIL;
        // Whether the key's version may be `version`, given what is known.
        let may_be = |version: u64| {
            present
                && if state.exact {
                    state.version == version
                } else {
                    version >= state.version
                }
        };
        match *op {
            VersionedOp::GetV(None) => next.push(state),
            VersionedOp::GetV(Some(None)) => {
                if !present {
                    next.push(state);
                }
            }
            VersionedOp::GetV(Some(Some((value, version)))) => {
                if value == state.value && may_be(version) {
                    next.push(VersionedState {
                        value,
                        version,
                        exact: true,
                    });
                }
            }
            VersionedOp::Set(value) => next.push(Self::written(state, value)),
            VersionedOp::Cas {
                expected,
                value,
                new_version,
                known,
            } => {
                let matched = VersionedState {
                    version: expected,
                    exact: true,
                    ..state
                };
                match (may_be(expected), known) {
                    (true, true) => match new_version {
                        Some(new) if new > expected => {
                            next.push(VersionedState {
                                value,
                                version: new,
                                exact: true,
                            });
                        }
                        Some(_) => {} // a new version must be greater than the old one
                        None => next.push(Self::written(matched, value)),
                    },
                    (false, true) => {}
                    (true, false) => {
                        next.push(Self::written(matched, value));
                        if !state.exact {
                            next.push(state); // it may also not have matched
                        }
                    }
                    (false, false) => next.push(state),
                }
            }
        }
    }

    fn forget_outcome(&self, op: &VersionedOp) -> VersionedOp {
        match *op {
            VersionedOp::GetV(_) => VersionedOp::GetV(None),
            VersionedOp::Set(value) => VersionedOp::Set(value),
            VersionedOp::Cas {
                expected, value, ..
            } => VersionedOp::Cas {
                expected,
                value,
                new_version: None,
                known: false,
            },
        }
    }

    fn is_read_only(&self, op: &VersionedOp) -> bool {
        matches!(op, VersionedOp::GetV(_))
    }

    /// A write X of value `v` (a `SET`, or a CAS) may go when, among the ops that stay and
    /// could be placed after X (they did not complete before X was invoked): (1) no `GETV`
    /// reads `v`, and (2) no CAS can have matched X's version. If X is a CAS that answered its
    /// version `n`, (2) means no CAS expects `n`. Otherwise every CAS must expect a version
    /// that some op of the part, staying or not, pins to a value other than `v` (a `GETV`
    /// that read it, or a CAS that answered it). Versions only grow
    /// and each write has its own, so in any order such a version belongs to that other write,
    /// not to X: no staying CAS can have matched X's version. Then until the next write nothing
    /// that stays was placed after X but writes and CASes that did not match (open ones; they
    /// move to the end), and every later version bound is lower, which accepts more.
    fn removable(&mut self, part: &[Call<VersionedOp>], candidates: &[bool]) -> Vec<bool> {
        use std::collections::{HashMap, HashSet};
        let staying = || {
            part.iter()
                .zip(candidates)
                .filter(|(_, c)| !**c)
                .map(|(call, _)| call)
        };
        // Latest completion of a staying GETV that read each value.
        let mut last_read: HashMap<u32, u64> = HashMap::new();
        for call in staying() {
            if let VersionedOp::GetV(Some(Some((value, _)))) = call.op {
                let last = last_read.entry(value).or_default();
                *last = (*last).max(call.ret_or_end());
            }
        }
        // Who pins each version. This may use every op of the larger history, removed or not:
        // the argument is about an order of that history, in which all of them are placed.
        let mut owners: HashMap<u64, HashSet<u32>> = HashMap::new();
        for call in part {
            match call.op {
                VersionedOp::GetV(Some(Some((value, version)))) => {
                    owners.entry(version).or_default().insert(value);
                }
                VersionedOp::Cas {
                    value,
                    new_version: Some(new),
                    known: true,
                    ..
                } => {
                    owners.entry(new).or_default().insert(value);
                }
                _ => {}
            }
        }
        // Staying CASes whose version nobody pins block writes invoked before they completed;
        // those pinned to one value block the writes of that value likewise.
        let mut last_unowned: Option<u64> = None;
        let mut last_owned_by: HashMap<u32, u64> = HashMap::new();
        let mut last_expecting: HashMap<u64, u64> = HashMap::new();
        for call in staying() {
            if let VersionedOp::Cas { expected, .. } = call.op {
                let ret = call.ret_or_end();
                let last = last_expecting.entry(expected).or_default();
                *last = (*last).max(ret);
                match owners.get(&expected) {
                    None => last_unowned = Some(last_unowned.map_or(ret, |last| last.max(ret))),
                    Some(values) if values.len() == 1 => {
                        let value = *values.iter().next().expect("one value");
                        let last = last_owned_by.entry(value).or_default();
                        *last = (*last).max(ret);
                    }
                    Some(_) => {} // pinned to two values: blocks nothing
                }
            }
        }
        let after =
            |last: Option<u64>, written_at: u64| last.is_some_and(|last| last >= written_at);
        part.iter()
            .zip(candidates)
            .map(|(call, &candidate)| {
                if !candidate {
                    return false;
                }
                let (value, version) = match call.op {
                    VersionedOp::GetV(_) => return true,
                    VersionedOp::Cas {
                        value,
                        new_version: Some(new),
                        known: true,
                        ..
                    } => (value, Some(new)),
                    VersionedOp::Set(value) | VersionedOp::Cas { value, .. } => (value, None),
                };
                let cas_may_observe = match version {
                    // Its version is known: only a CAS expecting exactly it can observe it.
                    Some(version) => after(last_expecting.get(&version).copied(), call.call),
                    None => {
                        after(last_unowned, call.call)
                            || after(last_owned_by.get(&value).copied(), call.call)
                    }
                };
                !cas_may_observe && !after(last_read.get(&value).copied(), call.call)
            })
            .collect()
    }

    fn show_state(&self, state: VersionedState) -> String {
        if state.value == NIL {
            return "the key is missing".to_string();
        }
        let value = self.values.value(state.value);
        if state.exact {
            format!("the key holds {value} at version {}", state.version)
        } else {
            format!("the key holds {value} at a version >= {}", state.version)
        }
    }

    fn show_op(&self, op: &VersionedOp) -> String {
        let value = |number: u32| self.values.value(number);
        match *op {
            VersionedOp::GetV(None) => "getv (result unknown)".to_string(),
            VersionedOp::GetV(Some(None)) => "getv -> missing".to_string(),
            VersionedOp::GetV(Some(Some((read, version)))) => {
                format!("getv -> {} at version {version}", value(read))
            }
            VersionedOp::Set(written) => format!("set {}", value(written)),
            VersionedOp::Cas {
                expected,
                value: written,
                new_version,
                known,
            } => {
                let outcome = match (known, new_version) {
                    (false, _) => " (outcome unknown)".to_string(),
                    (true, Some(new)) => format!(" -> version {new}"),
                    (true, None) => " -> ok".to_string(),
                };
                format!("cas version {expected} {}{outcome}", value(written))
            }
        }
    }

    fn why_not(&self, state: VersionedState, op: &VersionedOp) -> String {
        let held = self.show_state(state);
        match *op {
            VersionedOp::GetV(Some(None)) => format!("it found the key missing, but {held}"),
            VersionedOp::GetV(Some(Some((read, version)))) => format!(
                "it read {} at version {version}, but {held}",
                self.values.value(read)
            ),
            VersionedOp::Cas {
                expected,
                new_version: Some(new),
                known: true,
                ..
            } if new <= expected => {
                format!("it answered version {new}, not greater than the {expected} it replaced")
            }
            VersionedOp::Cas {
                expected,
                known: true,
                ..
            } => {
                format!("it succeeded, so the key was at version {expected}, but {held}")
            }
            _ => "it can always take effect".to_string(),
        }
    }
}
