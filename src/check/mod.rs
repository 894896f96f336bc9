//! A linearizability checker for recorded histories, in the manner of Knossos and Porcupine.
//!
//! A history is linearizable if every operation can be given one instant between its
//! invocation and its completion at which it took effect, such that the operations, run one at
//! a time in the order of those instants, return what they returned. Deciding that is
//! NP-complete in general; this module makes it fast in practice:
//!
//! 1. [`history`] reads Jepsen's two text forms and pairs invocations with completions into
//!    [`Operation`]s. `:fail` operations are dropped (they did not happen); `:info` ones stay
//!    open to the end (they may or may not have happened).
//! 2. [`check`] splits the operations by key (a history of independent keys is linearizable iff
//!    each key's is: linearizability is local), compiles each key's operations for the chosen
//!    [`ModelKind`] ([`register`], [`kv`], [`versioned`]), and runs [`search`] on each: Wing and
//!    Gong's backtracking with Lowe's memo of (state, linearized set) pairs, stored compactly
//!    (see that module's doc).
//! 3. On a violation it shrinks the failing key's history to a small part that is still not
//!    linearizable, by steps that can only make a history easier to linearize (so the small part
//!    failing proves the whole fails): cutting the history at the earliest completion where it
//!    already fails, then removing reads and the writes nothing left observes. It explains the small part with
//!    the longest valid order the search found and why no operation can come next.
//! 4. A step budget and a stop signal (how a deadline gets in) turn "too long" into
//!    [`Verdict::Unknown`].
//!
//! Everything here is pure: no files, clocks or threads. `piccolo-chaos check` is the program
//! around it; `docs/testing.md` is the chapter.

pub mod edn;
pub mod history;
pub mod kv;
pub mod model;
pub mod register;
pub mod search;
pub mod simulate;
pub mod versioned;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::{self, Write as _};

pub use edn::Value;
pub use history::{Event, EventType, Operation, Process};
pub use search::MemoKind;

use model::Model;
use search::{Budget, Call, Longest, Outcome};

/// The models the checker knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// A compare-and-set register: read, write, cas.
    Register,
    /// A key-value map, per key: get, put, append.
    Kv,
    /// Piccolo's versioned register: getv, set, cas with versions.
    Versioned,
}

impl ModelKind {
    /// The model named `name` (`register`, `kv`, `versioned`).
    pub fn from_name(name: &str) -> Option<ModelKind> {
        Some(match name {
            "register" | "cas-register" => ModelKind::Register,
            "kv" => ModelKind::Kv,
            "versioned" => ModelKind::Versioned,
            _ => return None,
        })
    }

    /// The model's name.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::Kv => "kv",
            ModelKind::Versioned => "versioned",
        }
    }
}

/// Limits and switches for [`check`].
pub struct CheckOptions<'a> {
    /// Search steps allowed per key (each placement or skip of a candidate is one).
    pub max_steps_per_key: u64,
    /// Memo entries allowed per search (about 50 bytes each): the memory bound.
    pub max_memo_entries: u64,
    /// Polled every few thousand steps; `true` stops everything with [`Verdict::Unknown`].
    pub stop: Option<&'a dyn Fn() -> bool>,
    /// Shrink a violation to a small failing part (costs extra searches on that key).
    pub minimize: bool,
    /// Search steps the shrinking may spend in all.
    pub max_minimize_steps: u64,
    /// How the memo stores linearized sets.
    pub memo: MemoKind,
}

impl Default for CheckOptions<'_> {
    fn default() -> Self {
        CheckOptions {
            max_steps_per_key: u64::MAX,
            max_memo_entries: 32 << 20,
            stop: None,
            minimize: true,
            max_minimize_steps: 100_000_000,
            memo: MemoKind::Frontier,
        }
    }
}

/// The answer.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Every key's history is linearizable.
    Linearizable,
    /// One key's is not (the first found).
    NotLinearizable(Box<Violation>),
    /// The budget ran out before an answer (and no violation was found in the keys checked).
    Unknown {
        /// Which key and why.
        reason: String,
    },
}

/// A violation: the key, a small failing part of its history, and an explanation.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The key (`None` for a single-object history).
    pub key: Option<Value>,
    /// How many operations that key has in the whole history.
    pub key_operations: usize,
    /// The failing part: original operations, in call order.
    pub part: Vec<PartOperation>,
    /// Whether shrinking finished (false: its budget ran out; the part still fails, but may
    /// not be the smallest).
    pub minimal: bool,
    /// For people: the longest valid order, and why nothing can follow it.
    pub explanation: String,
}

/// One operation of a failing part.
#[derive(Clone, Debug)]
pub struct PartOperation {
    /// The operation as recorded.
    pub operation: Operation,
    /// Whether the failing part treats its outcome as unknown: it was `:info` or unfinished,
    /// or it completed only after the point where the history already fails.
    pub outcome_ignored: bool,
}

/// The verdict with what it cost.
#[derive(Clone, Debug)]
pub struct Report {
    /// The answer.
    pub verdict: Verdict,
    /// Operations given to the checker.
    pub operations: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Keys fully checked.
    pub keys_checked: usize,
    /// The most operations one key has.
    pub largest_key: usize,
    /// Search steps, all keys.
    pub steps: u64,
    /// Memo entries, all keys.
    pub memo_entries: u64,
}

/// An operation the model cannot read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError {
    /// The invocation's line (0 if built in memory).
    pub line: usize,
    /// Why.
    pub message: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(out, "{}", self.message)
        } else {
            write!(out, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ModelError {}

/// Checks `operations` (as [`history::pair`] makes them: in call order) under `model`.
pub fn check(
    model: ModelKind,
    operations: &[Operation],
    options: &CheckOptions<'_>,
) -> Result<Report, ModelError> {
    match model {
        ModelKind::Register => check_with(register::Register::default(), operations, options),
        ModelKind::Kv => check_with(kv::KeyValue::default(), operations, options),
        ModelKind::Versioned => check_with(versioned::Versioned::default(), operations, options),
    }
}

/// Groups operation indices by key, keys in order of first appearance.
fn partition(operations: &[Operation]) -> Vec<(Option<Value>, Vec<usize>)> {
    let mut index_of: HashMap<&Option<Value>, usize> = HashMap::new();
    let mut parts: Vec<(Option<Value>, Vec<usize>)> = Vec::new();
    for (i, operation) in operations.iter().enumerate() {
        let part = *index_of.entry(&operation.key).or_insert_with(|| {
            parts.push((operation.key.clone(), Vec::new()));
            parts.len() - 1
        });
        parts[part].1.push(i);
    }
    parts
}

/// Compiles one key's operations. Open operations that nothing can observe are dropped: a
/// history with them is linearizable iff it is without them (they can always go last, and
/// [`Model::removable`] says when nothing depends on them). That keeps the search from
/// trying every subset of them, which it otherwise must on a history that fails.
fn compile<M: Model>(
    model: &mut M,
    operations: &[Operation],
    indices: &[usize],
) -> Result<Vec<Call<M::Op>>, ModelError> {
    let mut calls = Vec::with_capacity(indices.len());
    for &i in indices {
        let operation = &operations[i];
        let op = model.compile(operation).map_err(|message| ModelError {
            line: operation.call_line,
            message,
        })?;
        if operation.ret.is_none() && model.is_read_only(&op) {
            continue;
        }
        calls.push(Call {
            call: operation.call,
            ret: operation.ret,
            op,
            source: i,
        });
    }
    calls.sort_by_key(|call| call.call);
    let open: Vec<bool> = calls.iter().map(|call| call.ret.is_none()).collect();
    let unobserved = model::removable_set(&mut *model, &calls, &open);
    Ok(calls
        .into_iter()
        .zip(unobserved)
        .filter(|(_, drop)| !drop)
        .map(|(call, _)| call)
        .collect())
}

fn check_with<M: Model>(
    mut model: M,
    operations: &[Operation],
    options: &CheckOptions<'_>,
) -> Result<Report, ModelError> {
    let parts = partition(operations);
    let mut report = Report {
        verdict: Verdict::Linearizable,
        operations: operations.len(),
        keys: parts.len(),
        keys_checked: 0,
        largest_key: parts
            .iter()
            .map(|(_, indices)| indices.len())
            .max()
            .unwrap_or(0),
        steps: 0,
        memo_entries: 0,
    };
    // Compile everything first, so that an unreadable operation is reported whatever the
    // verdict of the keys before it.
    let mut compiled = Vec::with_capacity(parts.len());
    for (key, indices) in &parts {
        compiled.push((
            key,
            indices.len(),
            compile(&mut model, operations, indices)?,
        ));
    }
    let mut unknown: Option<String> = None;
    for (key, key_operations, calls) in compiled {
        let mut budget = Budget::new(
            options.max_steps_per_key,
            options.max_memo_entries,
            options.stop,
        );
        let outcome = search::search(&mut model, &calls, options.memo, &mut budget, false);
        report.steps += budget.steps;
        report.memo_entries += budget.memo_entries;
        match outcome {
            Outcome::Linearizable => report.keys_checked += 1,
            Outcome::Unknown => {
                unknown.get_or_insert_with(|| {
                    format!(
                        "{}: gave up after {} search steps and {} memo entries ({} operations)",
                        show_key(key),
                        budget.steps,
                        budget.memo_entries,
                        key_operations
                    )
                });
                if options.stop.is_some_and(|stop| stop()) {
                    break;
                }
            }
            Outcome::NotLinearizable(_) => {
                report.keys_checked += 1;
                let violation =
                    explain(&mut model, operations, key, key_operations, calls, options);
                report.verdict = Verdict::NotLinearizable(Box::new(violation));
                return Ok(report);
            }
        }
    }
    if let Some(reason) = unknown {
        report.verdict = Verdict::Unknown { reason };
    }
    Ok(report)
}

fn show_key(key: &Option<Value>) -> String {
    match key {
        Some(key) => format!("key {key}"),
        None => "the history".to_string(),
    }
}

/// Whether `calls` is proven not linearizable within `budget`.
fn fails<M: Model>(
    model: &mut M,
    calls: &[Call<M::Op>],
    memo: MemoKind,
    budget: &mut Budget<'_>,
) -> bool {
    matches!(
        search::search(model, calls, memo, budget, false),
        Outcome::NotLinearizable(_)
    )
}

/// The history cut just after time `t`: ops invoked after `t` dropped, ops still pending at `t`
/// made open. If the whole history is linearizable, so is every cut (take the prefix of its
/// order up to `t`; ops left out are open and may never have happened).
fn cut<M: Model>(model: &M, calls: &[Call<M::Op>], t: u64) -> Vec<Call<M::Op>> {
    calls
        .iter()
        .filter(|call| call.call <= t)
        .filter_map(|call| {
            if call.ret.is_some_and(|ret| ret <= t) {
                return Some(call.clone());
            }
            let op = model.forget_outcome(&call.op);
            (!model.is_read_only(&op)).then(|| Call {
                op,
                ret: None,
                ..call.clone()
            })
        })
        .collect()
}

/// Shrinks a failing key history; returns the part and whether shrinking finished.
fn minimize<M: Model>(
    model: &mut M,
    calls: Vec<Call<M::Op>>,
    options: &CheckOptions<'_>,
) -> (Vec<Call<M::Op>>, bool) {
    let mut budget = Budget::new(
        options.max_minimize_steps,
        options.max_memo_entries,
        options.stop,
    );
    // 1. The earliest completion time at which the history already fails (binary search; a
    // cut that runs out of budget counts as "not proven", which only makes the cut later).
    let mut times: Vec<u64> = calls.iter().filter_map(|call| call.ret).collect();
    times.sort_unstable();
    times.dedup();
    let mut part = calls;
    let (mut low, mut high) = (0usize, times.len()); // the answer is in times[low..high], or the whole
    while low < high && !budget.is_exhausted() {
        let middle = (low + high) / 2;
        if fails(
            model,
            &cut(model, &part, times[middle]),
            options.memo,
            &mut budget,
        ) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    if high < times.len() {
        part = cut(model, &part, times[high]);
    }
    // 2. Remove what the model says may go (reads; writes nobody left observes), in halving
    // chunks from the end (delta debugging). Each removal can only make the history easier to
    // linearize, so a part that still fails proves the original fails.
    let mut chunk = part.len().next_power_of_two();
    while !budget.is_exhausted() {
        let mut end = part.len();
        while end > 0 && !budget.is_exhausted() {
            let start = end.saturating_sub(chunk);
            let candidates: Vec<bool> =
                (0..part.len()).map(|i| (start..end).contains(&i)).collect();
            let removable = model::removable_set(model, &part, &candidates);
            // Deciding what may go costs about a pass over the part: count it as steps, so
            // the budget bounds shrinking's time even when few searches run.
            budget.charge(part.len() as u64);
            if removable.iter().any(|&flag| flag) {
                let candidate: Vec<Call<M::Op>> = part
                    .iter()
                    .zip(&removable)
                    .filter(|(_, remove)| !**remove)
                    .map(|(call, _)| call.clone())
                    .collect();
                if fails(model, &candidate, options.memo, &mut budget) {
                    part = candidate;
                }
            }
            end = start;
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    let finished = !budget.is_exhausted();
    (part, finished)
}

fn explain<M: Model>(
    model: &mut M,
    operations: &[Operation],
    key: &Option<Value>,
    key_operations: usize,
    calls: Vec<Call<M::Op>>,
    options: &CheckOptions<'_>,
) -> Violation {
    let (part, minimal) = if options.minimize {
        minimize(model, calls, options)
    } else {
        (calls, true)
    };
    let mut budget = Budget::new(
        options.max_minimize_steps.max(1_000_000),
        options.max_memo_entries,
        None,
    );
    let longest = match search::search(model, &part, options.memo, &mut budget, true) {
        Outcome::NotLinearizable(longest) => longest,
        // Cannot happen for a part proven to fail with the same model; say so rather than lie.
        _ => None,
    };
    let mut explanation = String::new();
    match longest {
        Some(longest) => describe(model, operations, &part, &longest, &mut explanation),
        None => explanation
            .push_str("no operation can take effect first (every order fails at its first step)\n"),
    }
    let mut part_operations: Vec<PartOperation> = part
        .iter()
        .map(|call| {
            let operation = operations[call.source].clone();
            let outcome_ignored = call.ret.is_none();
            PartOperation {
                operation,
                outcome_ignored,
            }
        })
        .collect();
    part_operations.sort_by_key(|part| part.operation.call);
    Violation {
        key: key.clone(),
        key_operations,
        part: part_operations,
        minimal,
        explanation,
    }
}

fn where_is(operation: &Operation) -> String {
    match operation.ret_line {
        Some(ret) if operation.call_line > 0 => {
            format!(
                "lines {}-{}, process {}",
                operation.call_line, ret, operation.process
            )
        }
        None if operation.call_line > 0 => {
            format!(
                "line {}, process {}",
                operation.call_line, operation.process
            )
        }
        _ => format!("process {}", operation.process),
    }
}

/// Writes the longest order and why nothing can follow it.
fn describe<M: Model>(
    model: &mut M,
    operations: &[Operation],
    part: &[Call<M::Op>],
    longest: &Longest<M::State>,
    out: &mut String,
) {
    let mut state = model.init();
    let mut successors = Vec::new();
    if longest.order.is_empty() {
        out.push_str("No operation can take effect first.\n");
    } else {
        let _ = writeln!(
            out,
            "The longest order that respects real time and the model:"
        );
        for (position, &index) in longest.order.iter().enumerate() {
            let call = &part[index];
            successors.clear();
            model.step(state, &call.op, &mut successors);
            // The recorded order took one of the successors; the last one printed is the
            // state the search ended in.
            state = if position + 1 == longest.order.len() {
                longest.state
            } else {
                successors.first().copied().unwrap_or(state)
            };
            let _ = writeln!(
                out,
                "  {:>3}. {:<32} [{}]",
                position + 1,
                model.show_op(&call.op),
                where_is(&operations[call.source])
            );
        }
        let _ = writeln!(out, "After it, {}.", model.show_state(longest.state));
    }
    let placed: Vec<bool> = {
        let mut placed = vec![false; part.len()];
        for &index in &longest.order {
            placed[index] = true;
        }
        placed
    };
    let remaining: Vec<usize> = (0..part.len()).filter(|&i| !placed[i]).collect();
    let first_return = remaining
        .iter()
        .filter_map(|&i| part[i].ret.map(|ret| (ret, i)))
        .min();
    let Some((deadline, blocker)) = first_return else {
        out.push_str("Only open operations remain; they can always go last.\n");
        return;
    };
    let candidates: Vec<usize> = remaining
        .iter()
        .copied()
        .filter(|&i| part[i].call <= deadline)
        .collect();
    let _ = writeln!(
        out,
        "Next, one of these must take effect, since {} [{}] had completed by then and each \
         was invoked before that:",
        model.show_op(&part[blocker].op),
        where_is(&operations[part[blocker].source])
    );
    for i in candidates {
        successors.clear();
        model.step(longest.state, &part[i].op, &mut successors);
        let reason = if successors.is_empty() {
            model.why_not(longest.state, &part[i].op)
        } else {
            "it could, but every order continuing with it fails later".to_string()
        };
        let _ = writeln!(
            out,
            "  - {} [{}]: {reason}",
            model.show_op(&part[i].op),
            where_is(&operations[part[i].source])
        );
    }
}

impl fmt::Display for Violation {
    /// The failing part, one operation a line, then the explanation.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            out,
            "{}: {} of its {} operations are already not linearizable{}:",
            show_key(&self.key),
            self.part.len(),
            self.key_operations,
            if self.minimal {
                ""
            } else {
                " (shrinking stopped early)"
            }
        )?;
        for part in &self.part {
            let operation = &part.operation;
            let outcome = match (&operation.output, part.outcome_ignored) {
                (Some(output), false) => format!(":ok {output}"),
                (Some(output), true) => format!(
                    ":ok {output} (completed after the point of failure: outcome unknown there)"
                ),
                (None, _) => ":info (may or may not have happened)".to_string(),
            };
            writeln!(
                out,
                "  [{}] :{} {} -> {outcome}",
                where_is(operation),
                operation.f,
                operation.input
            )?;
        }
        write!(out, "{}", self.explanation)
    }
}
