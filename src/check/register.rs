//! The compare-and-set register (Knossos' `cas-register`): `read` returns the value, `write`
//! replaces it, `cas [from to]` replaces `from` by `to` and is `:ok` only if the register held
//! `from` (Jepsen records a CAS that did not match as `:fail`, which the checker drops). The
//! register starts as `nil`. Values are any EDN values, compared exactly.

use std::collections::HashMap;

use super::history::Operation;
use super::model::{Call, Interner, Model, NIL, pair_of};

/// The register model.
#[derive(Debug, Default)]
pub struct Register {
    values: Interner,
}

/// A register operation; values are interned numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// `read`; `None` when the result is unknown.
    Read(Option<u32>),
    /// `write v`.
    Write(u32),
    /// `cas [from to]`; `known` is false when the outcome is unknown (it may have matched
    /// and written, or not).
    Cas {
        /// The value it expects.
        from: u32,
        /// The value it writes.
        to: u32,
        /// Whether it completed `:ok`.
        known: bool,
    },
}

impl Model for Register {
    type State = u32;
    type Op = RegisterOp;

    fn init(&mut self) -> u32 {
        NIL
    }

    fn compile(&mut self, operation: &Operation) -> Result<RegisterOp, String> {
        Ok(match operation.f.as_str() {
            "read" | "get" => RegisterOp::Read(
                operation
                    .output
                    .as_ref()
                    .map(|value| self.values.intern(value)),
            ),
            "write" | "put" | "set" => RegisterOp::Write(self.values.intern(&operation.input)),
            "cas" => {
                let (from, to) = pair_of(&operation.input)
                    .ok_or_else(|| format!("cas needs [from to], not {}", operation.input))?;
                RegisterOp::Cas {
                    from: self.values.intern(from),
                    to: self.values.intern(to),
                    known: operation.output.is_some(),
                }
            }
            other => {
                return Err(format!(
                    "the register model has no :{other} (read, write, cas)"
                ));
            }
        })
    }

    fn step(&mut self, state: u32, op: &RegisterOp, next: &mut Vec<u32>) {
        match *op {
            RegisterOp::Read(Some(value)) if value != state => {}
            RegisterOp::Read(_) => next.push(state),
            RegisterOp::Write(value) => next.push(value),
            RegisterOp::Cas { from, to, .. } if from == state => next.push(to),
            RegisterOp::Cas { known: true, .. } => {}
            RegisterOp::Cas { known: false, .. } => next.push(state),
        }
    }

    fn forget_outcome(&self, op: &RegisterOp) -> RegisterOp {
        match *op {
            RegisterOp::Read(_) => RegisterOp::Read(None),
            RegisterOp::Write(value) => RegisterOp::Write(value),
            RegisterOp::Cas { from, to, .. } => RegisterOp::Cas {
                from,
                to,
                known: false,
            },
        }
    }

    fn is_read_only(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_))
    }

    /// A write or CAS may go when no read or CAS that stays, and could be placed after it,
    /// observes the value it wrote. Proof sketch: take an order of the larger history and
    /// drop the removed ops. An op that stays sees what it saw before unless the last write
    /// before it was removed; then it is a write (indifferent), an open CAS that did not match
    /// (it did nothing and can move to the end), or it observed the removed write's value,
    /// which the rule excludes.
    fn removable(&mut self, part: &[Call<RegisterOp>], candidates: &[bool]) -> Vec<bool> {
        // For each observed value, the latest completion among the staying ops observing it.
        let mut last_observer: HashMap<u32, u64> = HashMap::new();
        for (call, &candidate) in part.iter().zip(candidates) {
            if let (RegisterOp::Read(Some(value)) | RegisterOp::Cas { from: value, .. }, false) =
                (call.op, candidate)
            {
                let last = last_observer.entry(value).or_default();
                *last = (*last).max(call.ret_or_end());
            }
        }
        let observed = |value: u32, written_at: u64| {
            last_observer
                .get(&value)
                .is_some_and(|&last| last >= written_at)
        };
        part.iter()
            .zip(candidates)
            .map(|(call, &candidate)| {
                candidate
                    && match call.op {
                        RegisterOp::Read(_) => true,
                        RegisterOp::Write(value) | RegisterOp::Cas { to: value, .. } => {
                            !observed(value, call.call)
                        }
                    }
            })
            .collect()
    }

    fn show_state(&self, state: u32) -> String {
        format!("the register holds {}", self.values.value(state))
    }

    fn show_op(&self, op: &RegisterOp) -> String {
        let value = |number: u32| self.values.value(number);
        match *op {
            RegisterOp::Read(Some(read)) => format!("read {}", value(read)),
            RegisterOp::Read(None) => "read (result unknown)".to_string(),
            RegisterOp::Write(written) => format!("write {}", value(written)),
            RegisterOp::Cas {
                from,
                to,
                known: true,
            } => format!("cas {} -> {}", value(from), value(to)),
            RegisterOp::Cas {
                from,
                to,
                known: false,
            } => {
                format!("cas {} -> {} (outcome unknown)", value(from), value(to))
            }
        }
    }

    fn why_not(&self, state: u32, op: &RegisterOp) -> String {
        let held = self.values.value(state);
        match *op {
            RegisterOp::Read(Some(read)) => {
                format!(
                    "it read {}, but the register held {held}",
                    self.values.value(read)
                )
            }
            RegisterOp::Cas {
                from, known: true, ..
            } => format!(
                "it succeeded, so the register held {}, but it held {held}",
                self.values.value(from)
            ),
            _ => "it can always take effect".to_string(),
        }
    }
}
