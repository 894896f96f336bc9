//! The checker's proofs: hand-built histories per model with known answers, Jepsen's two text
//! forms, shrinking that stays sound, the two memo layouts agreeing, and a property test
//! against a brute-force checker that tries every order.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::history::{self, PairOptions};
use super::model::Model;
use super::simulate::{self, SimConfig};
use super::*;

fn operations(text: &str) -> Vec<Operation> {
    let events = history::read(text, history::detect_format(text)).expect("readable");
    history::pair(&events, PairOptions::default())
        .expect("pairs")
        .operations
}

fn verdict(model: ModelKind, text: &str) -> Verdict {
    check(model, &operations(text), &CheckOptions::default())
        .expect("the model reads it")
        .verdict
}

#[track_caller]
fn assert_linearizable(model: ModelKind, text: &str) {
    match verdict(model, text) {
        Verdict::Linearizable => {}
        other => panic!("expected linearizable, got {other:?}\n{text}"),
    }
}

#[track_caller]
fn assert_violation(model: ModelKind, text: &str) -> Violation {
    match verdict(model, text) {
        Verdict::NotLinearizable(violation) => *violation,
        other => panic!("expected a violation, got {other:?}\n{text}"),
    }
}

// ---- the register ----

#[test]
fn register_concurrent_write_and_read_is_linearizable() {
    assert_linearizable(
        ModelKind::Register,
        "{:process 0, :type :invoke, :f :write, :value 1}
         {:process 1, :type :invoke, :f :read, :value nil}
         {:process 1, :type :ok, :f :read, :value 1}
         {:process 0, :type :ok, :f :write, :value 1}
         {:process 2, :type :invoke, :f :read, :value nil}
         {:process 2, :type :ok, :f :read, :value 1}",
    );
    // The read overlaps the write, so it may also see the value from before it.
    assert_linearizable(
        ModelKind::Register,
        "{:process 0, :type :invoke, :f :write, :value 1}
         {:process 1, :type :invoke, :f :read, :value nil}
         {:process 1, :type :ok, :f :read, :value nil}
         {:process 0, :type :ok, :f :write, :value 1}",
    );
}

#[test]
fn register_stale_read_is_caught_and_explained() {
    let violation = assert_violation(
        ModelKind::Register,
        "{:process 0, :type :invoke, :f :write, :value 1}
         {:process 0, :type :ok, :f :write, :value 1}
         {:process 1, :type :invoke, :f :read, :value nil}
         {:process 1, :type :ok, :f :read, :value 1}
         {:process 0, :type :invoke, :f :write, :value 2}
         {:process 0, :type :ok, :f :write, :value 2}
         {:process 1, :type :invoke, :f :read, :value nil}
         {:process 1, :type :ok, :f :read, :value 1}",
    );
    // The first read is not needed: write 1, write 2, read 1 is the contradiction.
    assert_eq!(violation.part.len(), 3, "{violation}");
    assert!(violation.minimal);
    assert_eq!(violation.part[2].operation.call_line, 7);
    let text = violation.to_string();
    assert!(
        text.contains("it read 1, but the register held 2"),
        "{text}"
    );
    assert!(text.contains("lines 7-8, process 1"), "{text}");
}

#[test]
fn register_lost_write_is_caught() {
    // An acknowledged write, then a read (after it completed) that never sees it.
    let violation = assert_violation(
        ModelKind::Register,
        "{:process 0, :type :invoke, :f :write, :value 1}
         {:process 0, :type :ok, :f :write, :value 1}
         {:process 1, :type :invoke, :f :read, :value nil}
         {:process 1, :type :ok, :f :read, :value nil}",
    );
    assert!(
        violation
            .explanation
            .contains("it read nil, but the register held 1"),
        "{violation}"
    );
}

#[test]
fn register_cas_that_succeeded_twice_is_caught() {
    let violation = assert_violation(
        ModelKind::Register,
        "{:process 0, :type :invoke, :f :write, :value 1}
         {:process 0, :type :ok, :f :write, :value 1}
         {:process 1, :type :invoke, :f :cas, :value [1 2]}
         {:process 2, :type :invoke, :f :cas, :value [1 3]}
         {:process 1, :type :ok, :f :cas, :value [1 2]}
         {:process 2, :type :ok, :f :cas, :value [1 3]}",
    );
    assert!(
        violation
            .explanation
            .contains("it succeeded, so the register held 1"),
        "{violation}"
    );
    // One CAS fails instead: fine.
    assert_linearizable(
        ModelKind::Register,
        "{:process 0, :type :invoke, :f :write, :value 1}
         {:process 0, :type :ok, :f :write, :value 1}
         {:process 1, :type :invoke, :f :cas, :value [1 2]}
         {:process 2, :type :invoke, :f :cas, :value [1 3]}
         {:process 1, :type :ok, :f :cas, :value [1 2]}
         {:process 2, :type :fail, :f :cas, :value [1 3]}
         {:process 2, :type :invoke, :f :read, :value nil}
         {:process 2, :type :ok, :f :read, :value 2}",
    );
}

#[test]
fn register_info_write_must_be_assumed_applied() {
    // The :info write is the only explanation for the read of 2, long after it timed out.
    let text = "{:process 0, :type :invoke, :f :write, :value 1}
         {:process 0, :type :ok, :f :write, :value 1}
         {:process 1, :type :invoke, :f :write, :value 2}
         {:process 1, :type :info, :f :write, :value 2, :error :timed-out}
         {:process 2, :type :invoke, :f :read, :value nil}
         {:process 2, :type :ok, :f :read, :value 1}
         {:process 3, :type :invoke, :f :read, :value nil}
         {:process 3, :type :ok, :f :read, :value 2}";
    assert_linearizable(ModelKind::Register, text);
    // A checker that dropped :info operations would call it a violation.
    let without_info: Vec<Operation> = operations(text)
        .into_iter()
        .filter(|op| op.ret.is_some())
        .collect();
    let report = check(ModelKind::Register, &without_info, &CheckOptions::default()).unwrap();
    assert!(matches!(report.verdict, Verdict::NotLinearizable(_)));
    // It may also never have happened...
    assert_linearizable(
        ModelKind::Register,
        "{:process 0, :type :invoke, :f :write, :value 1}
         {:process 0, :type :ok, :f :write, :value 1}
         {:process 1, :type :invoke, :f :write, :value 2}
         {:process 1, :type :info, :f :write, :value 2}
         {:process 2, :type :invoke, :f :read, :value nil}
         {:process 2, :type :ok, :f :read, :value 1}",
    );
    // ...but it cannot take effect before it was invoked.
    assert_violation(
        ModelKind::Register,
        "{:process 2, :type :invoke, :f :read, :value nil}
         {:process 2, :type :ok, :f :read, :value 2}
         {:process 1, :type :invoke, :f :write, :value 2}
         {:process 1, :type :info, :f :write, :value 2}",
    );
    // And once applied it stays applied: 2 then 1 then 2 again needs two writes of 2.
    assert_violation(
        ModelKind::Register,
        "{:process 1, :type :invoke, :f :write, :value 2}
         {:process 1, :type :info, :f :write, :value 2}
         {:process 2, :type :invoke, :f :read, :value nil}
         {:process 2, :type :ok, :f :read, :value 2}
         {:process 0, :type :invoke, :f :write, :value 1}
         {:process 0, :type :ok, :f :write, :value 1}
         {:process 3, :type :invoke, :f :read, :value nil}
         {:process 3, :type :ok, :f :read, :value 2}",
    );
}

#[test]
fn register_unfinished_operation_is_open() {
    // No completion at all: the same as :info.
    assert_linearizable(
        ModelKind::Register,
        "{:process 1, :type :invoke, :f :write, :value 2}
         {:process 2, :type :invoke, :f :read, :value nil}
         {:process 2, :type :ok, :f :read, :value 2}",
    );
}

#[test]
fn jepsen_log_lines_in_the_published_form() {
    // Hand-written in the form Jepsen's etcd and Knossos logs use: two clients time out, and
    // the CAS that timed out must have taken effect for the last read.
    let good = "INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:invoke\t:write\t3
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - 1\t:ok\t:write\t3
INFO  jepsen.util - 2\t:invoke\t:cas\t[3 4]
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 2\t:info\t:cas\t:timed-out
INFO  jepsen.util - 0\t:info\t:write\t:timed-out
INFO  jepsen.util - :nemesis\t:info\t:stop\tnil
INFO  jepsen.util - 7\t:invoke\t:read\tnil
INFO  jepsen.util - 7\t:ok\t:read\t4
INFO  jepsen.util - 5\t:invoke\t:cas\t[4 0]
INFO  jepsen.util - 5\t:fail\t:cas\t[4 0]
";
    assert_linearizable(ModelKind::Register, good);
    // The same, but the last read comes back as 3 after a read of 4: the CAS's effect vanished.
    let bad = format!(
        "{good}INFO  jepsen.util - 8\t:invoke\t:read\tnil\nINFO  jepsen.util - 8\t:ok\t:read\t3\n"
    );
    let violation = assert_violation(ModelKind::Register, &bad);
    assert!(
        violation.to_string().contains("lines 15-16, process 8"),
        "{violation}"
    );
}

// ---- the key-value map ----

#[test]
fn kv_appends_interleave_but_do_not_vanish() {
    let concurrent_appends = "{:process 0, :type :invoke, :f :put, :key \"x\", :value \"a\"}
         {:process 0, :type :ok, :f :put, :key \"x\", :value \"a\"}
         {:process 1, :type :invoke, :f :append, :key \"x\", :value \"b\"}
         {:process 2, :type :invoke, :f :append, :key \"x\", :value \"c\"}
         {:process 1, :type :ok, :f :append, :key \"x\", :value \"b\"}
         {:process 2, :type :ok, :f :append, :key \"x\", :value \"c\"}
         {:process 3, :type :invoke, :f :get, :key \"y\", :value nil}
         {:process 3, :type :ok, :f :get, :key \"y\", :value \"\"}";
    for order in ["acb", "abc"] {
        assert_linearizable(
            ModelKind::Kv,
            &format!(
                "{concurrent_appends}
                 {{:process 0, :type :invoke, :f :get, :key \"x\", :value nil}}
                 {{:process 0, :type :ok, :f :get, :key \"x\", :value \"{order}\"}}"
            ),
        );
    }
    let violation = assert_violation(
        ModelKind::Kv,
        &format!(
            "{concurrent_appends}
             {{:process 0, :type :invoke, :f :get, :key \"x\", :value nil}}
             {{:process 0, :type :ok, :f :get, :key \"x\", :value \"ab\"}}"
        ),
    );
    assert_eq!(violation.key, Some(Value::Str("x".into())));
    assert!(
        violation.explanation.contains("it read \"ab\""),
        "{violation}"
    );
}

#[test]
fn kv_keys_are_independent() {
    // Each key alone is fine; a checker that mixed keys would see x's read as stale.
    assert_linearizable(
        ModelKind::Kv,
        "{:process 0, :type :invoke, :f :put, :key \"x\", :value \"1\"}
         {:process 0, :type :ok, :f :put, :key \"x\", :value \"1\"}
         {:process 0, :type :invoke, :f :put, :key \"y\", :value \"2\"}
         {:process 0, :type :ok, :f :put, :key \"y\", :value \"2\"}
         {:process 1, :type :invoke, :f :get, :key \"x\", :value nil}
         {:process 1, :type :ok, :f :get, :key \"x\", :value \"1\"}",
    );
    let violation = assert_violation(
        ModelKind::Kv,
        "{:process 0, :type :invoke, :f :put, :key \"x\", :value \"1\"}
         {:process 0, :type :ok, :f :put, :key \"x\", :value \"1\"}
         {:process 0, :type :invoke, :f :put, :key \"y\", :value \"2\"}
         {:process 0, :type :ok, :f :put, :key \"y\", :value \"2\"}
         {:process 1, :type :invoke, :f :get, :key \"y\", :value nil}
         {:process 1, :type :ok, :f :get, :key \"y\", :value \"1\"}",
    );
    assert_eq!(violation.key, Some(Value::Str("y".into())));
    assert_eq!(violation.key_operations, 2);
}

#[test]
fn kv_info_append_may_apply_once() {
    let base = "{:process 0, :type :invoke, :f :put, :key \"x\", :value \"a\"}
         {:process 0, :type :ok, :f :put, :key \"x\", :value \"a\"}
         {:process 1, :type :invoke, :f :append, :key \"x\", :value \"b\"}
         {:process 1, :type :info, :f :append, :key \"x\", :value \"b\"}
         {:process 2, :type :invoke, :f :get, :key \"x\", :value nil}";
    assert_linearizable(
        ModelKind::Kv,
        &format!("{base}\n{{:process 2, :type :ok, :f :get, :key \"x\", :value \"ab\"}}"),
    );
    assert_linearizable(
        ModelKind::Kv,
        &format!("{base}\n{{:process 2, :type :ok, :f :get, :key \"x\", :value \"a\"}}"),
    );
    assert_violation(
        ModelKind::Kv,
        &format!("{base}\n{{:process 2, :type :ok, :f :get, :key \"x\", :value \"abb\"}}"),
    );
}

// ---- Piccolo's versioned register ----

#[test]
fn versioned_versions_grow_and_pin_down() {
    // SET's version is unknown until a GETV reads it; CAS answers its new version.
    assert_linearizable(
        ModelKind::Versioned,
        "{:process 0, :type :invoke, :f :set, :value 10}
         {:process 0, :type :ok, :f :set, :value 10}
         {:process 1, :type :invoke, :f :getv, :value nil}
         {:process 1, :type :ok, :f :getv, :value [10 7]}
         {:process 1, :type :invoke, :f :cas, :value [7 11]}
         {:process 1, :type :ok, :f :cas, :value [7 11 9]}
         {:process 0, :type :invoke, :f :getv, :value nil}
         {:process 0, :type :ok, :f :getv, :value [11 9]}
         {:process 0, :type :invoke, :f :set, :value 12}
         {:process 0, :type :ok, :f :set, :value 12}
         {:process 0, :type :invoke, :f :getv, :value nil}
         {:process 0, :type :ok, :f :getv, :value [12 40]}",
    );
}

#[test]
fn versioned_cas_on_one_version_twice_is_caught() {
    let violation = assert_violation(
        ModelKind::Versioned,
        "{:process 0, :type :invoke, :f :set, :value 10}
         {:process 0, :type :ok, :f :set, :value 10}
         {:process 0, :type :invoke, :f :getv, :value nil}
         {:process 0, :type :ok, :f :getv, :value [10 7]}
         {:process 1, :type :invoke, :f :cas, :value [7 11]}
         {:process 2, :type :invoke, :f :cas, :value [7 12]}
         {:process 1, :type :ok, :f :cas, :value [7 11 8]}
         {:process 2, :type :ok, :f :cas, :value [7 12 9]}",
    );
    assert!(
        violation
            .explanation
            .contains("so the key was at version 7"),
        "{violation}"
    );
}

#[test]
fn versioned_catches_versions_that_go_back_or_repeat() {
    let set_then_read = "{:process 0, :type :invoke, :f :set, :value 10}
         {:process 0, :type :ok, :f :set, :value 10}
         {:process 0, :type :invoke, :f :getv, :value nil}
         {:process 0, :type :ok, :f :getv, :value [10 7]}
         {:process 0, :type :invoke, :f :set, :value 11}
         {:process 0, :type :ok, :f :set, :value 11}";
    // The second SET's version must exceed 7.
    assert_violation(
        ModelKind::Versioned,
        &format!(
            "{set_then_read}\n{{:process 1, :type :invoke, :f :getv, :value nil}}\n{{:process 1, :type :ok, :f :getv, :value [11 7]}}"
        ),
    );
    assert_violation(
        ModelKind::Versioned,
        &format!(
            "{set_then_read}\n{{:process 1, :type :invoke, :f :getv, :value nil}}\n{{:process 1, :type :ok, :f :getv, :value [11 5]}}"
        ),
    );
    assert_linearizable(
        ModelKind::Versioned,
        &format!(
            "{set_then_read}\n{{:process 1, :type :invoke, :f :getv, :value nil}}\n{{:process 1, :type :ok, :f :getv, :value [11 8]}}"
        ),
    );
    // Once read, a version is fixed: two reads of one write cannot disagree.
    assert_violation(
        ModelKind::Versioned,
        &format!(
            "{set_then_read}
             {{:process 1, :type :invoke, :f :getv, :value nil}}
             {{:process 1, :type :ok, :f :getv, :value [11 8]}}
             {{:process 1, :type :invoke, :f :getv, :value nil}}
             {{:process 1, :type :ok, :f :getv, :value [11 9]}}"
        ),
    );
    // A CAS must answer a version above the one it replaced.
    assert_violation(
        ModelKind::Versioned,
        "{:process 0, :type :invoke, :f :set, :value 10}
         {:process 0, :type :ok, :f :set, :value 10}
         {:process 0, :type :invoke, :f :getv, :value nil}
         {:process 0, :type :ok, :f :getv, :value [10 7]}
         {:process 0, :type :invoke, :f :cas, :value [7 11]}
         {:process 0, :type :ok, :f :cas, :value [7 11 7]}",
    );
}

#[test]
fn versioned_missing_keys_and_open_cas() {
    // A CAS cannot succeed on a missing key; GETV of a written key is not nil.
    assert_violation(
        ModelKind::Versioned,
        "{:process 0, :type :invoke, :f :cas, :value [0 1]}
         {:process 0, :type :ok, :f :cas, :value [0 1 1]}",
    );
    assert_violation(
        ModelKind::Versioned,
        "{:process 0, :type :invoke, :f :set, :value 1}
         {:process 0, :type :ok, :f :set, :value 1}
         {:process 0, :type :invoke, :f :getv, :value nil}
         {:process 0, :type :ok, :f :getv, :value nil}",
    );
    // A CAS that timed out against an unknown version may have matched (then the version is
    // above the one it expected) or not.
    let open_cas = "{:process 0, :type :invoke, :f :set, :value 1}
         {:process 0, :type :ok, :f :set, :value 1}
         {:process 1, :type :invoke, :f :cas, :value [5 2]}
         {:process 1, :type :info, :f :cas, :value [5 2]}
         {:process 0, :type :invoke, :f :getv, :value nil}";
    assert_linearizable(
        ModelKind::Versioned,
        &format!("{open_cas}\n{{:process 0, :type :ok, :f :getv, :value [2 6]}}"),
    );
    assert_linearizable(
        ModelKind::Versioned,
        &format!("{open_cas}\n{{:process 0, :type :ok, :f :getv, :value [1 3]}}"),
    );
    assert_violation(
        ModelKind::Versioned,
        &format!("{open_cas}\n{{:process 0, :type :ok, :f :getv, :value [2 5]}}"),
    );
}

#[test]
fn models_reject_operations_they_do_not_know() {
    let error = check(
        ModelKind::Register,
        &operations("{:process 0, :type :invoke, :f :append, :value 1}\n{:process 0, :type :ok, :f :append, :value 1}"),
        &CheckOptions::default(),
    )
    .expect_err("no append in a register");
    assert_eq!(error.line, 1);
    let error = check(
        ModelKind::Versioned,
        &operations("{:process 0, :type :invoke, :f :cas, :value 1}\n{:process 0, :type :ok, :f :cas, :value 1}"),
        &CheckOptions::default(),
    )
    .expect_err("cas needs a pair");
    assert!(error.message.contains("[version value]"), "{error}");
}

// ---- budgets ----

#[test]
fn a_spent_budget_answers_unknown() {
    let events = simulate::simulate(&SimConfig {
        model: ModelKind::Register,
        processes: 5,
        keys: 1,
        operations: 2_000,
        info_percent: 2,
        seed: 7,
    });
    let ops = history::pair(&events, PairOptions::default())
        .unwrap()
        .operations;
    let options = CheckOptions {
        max_steps_per_key: 100,
        ..CheckOptions::default()
    };
    let report = check(ModelKind::Register, &ops, &options).unwrap();
    assert!(
        matches!(report.verdict, Verdict::Unknown { .. }),
        "{:?}",
        report.verdict
    );
    let stop_now = || true;
    let options = CheckOptions {
        stop: Some(&stop_now),
        ..CheckOptions::default()
    };
    let report = check(ModelKind::Register, &ops, &options).unwrap();
    assert!(
        matches!(report.verdict, Verdict::Unknown { .. }),
        "{:?}",
        report.verdict
    );
    // With room it is linearizable (it was simulated on a correct register).
    let report = check(ModelKind::Register, &ops, &CheckOptions::default()).unwrap();
    assert!(
        matches!(report.verdict, Verdict::Linearizable),
        "{:?}",
        report.verdict
    );
}

// ---- simulated histories, shrinking, memo layouts ----

fn simulated(model: ModelKind, keys: usize, operations: usize, seed: u64) -> Vec<Event> {
    simulate::simulate(&SimConfig {
        model,
        processes: 6,
        keys,
        operations,
        info_percent: 3,
        seed,
    })
}

#[test]
fn simulated_histories_are_linearizable_and_stale_reads_in_them_are_not() {
    for model in [ModelKind::Register, ModelKind::Kv, ModelKind::Versioned] {
        for seed in 0..4 {
            println!("model {} seed {seed}", model.name());
            let mut events = simulated(model, 3, 3_000, seed);
            let ops = history::pair(&events, PairOptions::default())
                .unwrap()
                .operations;
            let report = check(model, &ops, &CheckOptions::default()).unwrap();
            assert!(
                matches!(report.verdict, Verdict::Linearizable),
                "{:?}",
                report.verdict
            );
            assert_eq!(report.keys, 3);

            let at = simulate::inject_stale_read(&mut events, model, 0.5).expect("two writes");
            let ops = history::pair(&events, PairOptions::default())
                .unwrap()
                .operations;
            let report = check(model, &ops, &CheckOptions::default()).unwrap();
            let Verdict::NotLinearizable(violation) = report.verdict else {
                panic!("a stale read at {at} went unseen: {:?}", report.verdict)
            };
            assert!(violation.minimal);
            // The injected read is in the part, and the part is small.
            assert!(
                violation
                    .part
                    .iter()
                    .any(|part| part.operation.call == at as u64),
                "{violation}"
            );
            assert!(
                violation.part.len() <= 12,
                "{} operations:\n{violation}",
                violation.part.len()
            );
            assert_part_fails_alone(model, &violation);
        }
    }
}

/// Checks the failing part on its own, with the outcomes it ignores forgotten: it must fail,
/// or shrinking was unsound.
fn assert_part_fails_alone(model: ModelKind, violation: &Violation) {
    let ops: Vec<Operation> = violation
        .part
        .iter()
        .map(|part| {
            let mut operation = part.operation.clone();
            if part.outcome_ignored {
                operation.output = None;
                operation.ret = None;
            }
            operation
        })
        .collect();
    let options = CheckOptions {
        minimize: false,
        ..CheckOptions::default()
    };
    let report = check(model, &ops, &options).unwrap();
    assert!(
        matches!(report.verdict, Verdict::NotLinearizable(_)),
        "the part alone passes:\n{violation}"
    );
}

#[test]
fn frontier_and_full_bitset_memos_agree() {
    for model in [ModelKind::Register, ModelKind::Kv, ModelKind::Versioned] {
        for seed in 10..14 {
            let mut events = simulated(model, 2, 1_500, seed);
            if seed % 2 == 0 {
                simulate::inject_stale_read(&mut events, model, 0.7);
            }
            let ops = history::pair(&events, PairOptions::default())
                .unwrap()
                .operations;
            let answers: Vec<bool> = [MemoKind::Frontier, MemoKind::FullBitset]
                .into_iter()
                .map(|memo| {
                    let options = CheckOptions {
                        memo,
                        minimize: false,
                        ..CheckOptions::default()
                    };
                    match check(model, &ops, &options).unwrap().verdict {
                        Verdict::Linearizable => true,
                        Verdict::NotLinearizable(_) => false,
                        Verdict::Unknown { reason } => panic!("unknown: {reason}"),
                    }
                })
                .collect();
            assert_eq!(answers[0], answers[1], "model {} seed {seed}", model.name());
            assert_eq!(
                answers[0],
                seed % 2 == 1,
                "model {} seed {seed}",
                model.name()
            );
        }
    }
}

// ---- the property test against brute force ----

/// Tries every order (and, for open ops, leaving them out): the definition, slowly.
fn brute_force<M: Model>(model: &mut M, ops: &[Operation]) -> bool {
    let compiled: Vec<(M::Op, &Operation)> = ops
        .iter()
        .map(|op| (model.compile(op).expect("compiles"), op))
        .collect();
    fn go<M: Model>(
        model: &mut M,
        ops: &[(M::Op, &Operation)],
        placed: u32,
        state: M::State,
    ) -> bool {
        let remaining: Vec<usize> = (0..ops.len()).filter(|&i| placed & (1 << i) == 0).collect();
        if remaining.iter().all(|&i| ops[i].1.ret.is_none()) {
            return true; // the rest are open and may never have happened
        }
        for &i in &remaining {
            // i may go next unless some other unplaced op completed before i was invoked.
            let blocked = remaining
                .iter()
                .any(|&j| j != i && ops[j].1.ret.is_some_and(|ret| ret < ops[i].1.call));
            if blocked {
                continue;
            }
            let mut next = Vec::new();
            model.step(state, &ops[i].0, &mut next);
            for successor in next {
                if go(model, ops, placed | 1 << i, successor) {
                    return true;
                }
            }
        }
        false
    }
    let init = model.init();
    go(model, &compiled, 0, init)
}

/// One random op: function choice, three small arguments, call time, length, open or not.
type OpSpec = (u8, u8, u8, u8, u8, u8, bool);

fn build(model: ModelKind, specs: &[OpSpec]) -> Vec<Operation> {
    let small = |n: u8| Value::Int(i64::from(n % 3) + 1);
    let text = |n: u8| Value::Str(["", "a", "b", "ab", "ba"][usize::from(n % 5)].to_string());
    let mut ops: Vec<Operation> = specs
        .iter()
        .enumerate()
        .map(|(i, &(f, a, b, c, call, length, open))| {
            let (name, input, output) = match (model, f % 3) {
                (ModelKind::Register, 0) => (
                    "read",
                    Value::Nil,
                    if a % 4 == 0 { Value::Nil } else { small(a) },
                ),
                (ModelKind::Register, 1) => ("write", small(a), small(a)),
                (ModelKind::Register, _) => {
                    let pair = Value::Vector(vec![small(a), small(b)]);
                    ("cas", pair.clone(), pair)
                }
                (ModelKind::Kv, 0) => ("get", Value::Nil, text(a)),
                (ModelKind::Kv, 1) => ("put", text(a), text(a)),
                (ModelKind::Kv, _) => ("append", text(a % 2 + 1), text(a % 2 + 1)),
                (ModelKind::Versioned, 0) => {
                    let read = if a % 4 == 0 {
                        Value::Nil
                    } else {
                        Value::Vector(vec![small(a), Value::Int(i64::from(b % 4))])
                    };
                    ("getv", Value::Nil, read)
                }
                (ModelKind::Versioned, 1) => ("set", small(a), small(a)),
                (ModelKind::Versioned, _) => {
                    let expected = Value::Int(i64::from(b % 4));
                    let new = Value::Int(i64::from(c % 5));
                    (
                        "cas",
                        Value::Vector(vec![expected.clone(), small(a)]),
                        Value::Vector(vec![expected, small(a), new]),
                    )
                }
            };
            let call = u64::from(call % 16);
            Operation {
                process: i as u64,
                f: name.to_string(),
                key: None,
                input,
                output: (!open).then_some(output),
                call,
                ret: (!open).then_some(call + u64::from(length % 6)),
                call_line: 0,
                ret_line: None,
            }
        })
        .collect();
    ops.sort_by_key(|op| op.call);
    ops
}

fn agrees_with_brute_force(model: ModelKind, specs: &[OpSpec]) -> Result<(), TestCaseError> {
    let ops = build(model, specs);
    let expected = match model {
        ModelKind::Register => brute_force(&mut register::Register::default(), &ops),
        ModelKind::Kv => brute_force(&mut kv::KeyValue::default(), &ops),
        ModelKind::Versioned => brute_force(&mut versioned::Versioned::default(), &ops),
    };
    for memo in [MemoKind::Frontier, MemoKind::FullBitset] {
        let options = CheckOptions {
            memo,
            ..CheckOptions::default()
        };
        let report = check(model, &ops, &options).expect("compiles");
        let got = match &report.verdict {
            Verdict::Linearizable => true,
            Verdict::NotLinearizable(violation) => {
                assert_part_fails_alone(model, violation);
                false
            }
            Verdict::Unknown { reason } => panic!("unknown on a tiny history: {reason}"),
        };
        prop_assert_eq!(
            got,
            expected,
            "model {} memo {:?}: {:#?}",
            model.name(),
            memo,
            ops
        );
    }
    Ok(())
}

/// The seed: `PICCOLO_CHECK_SEED` to replay one, else a fresh one. Printed either way (shown
/// by `cargo test` when the test fails, or with `--nocapture`).
fn seeded_runner(cases: u32) -> TestRunner {
    let seed: u64 = match std::env::var("PICCOLO_CHECK_SEED") {
        Ok(text) => text.parse().expect("PICCOLO_CHECK_SEED is a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_nanos() as u64),
    };
    println!("seed {seed} (replay: PICCOLO_CHECK_SEED={seed} cargo test -p piccolo --lib check::)");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

fn specs() -> impl Strategy<Value = Vec<OpSpec>> {
    proptest::collection::vec(
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            prop::bool::weighted(0.2),
        ),
        1..8,
    )
}

#[test]
fn random_small_histories_agree_with_brute_force() {
    for model in [ModelKind::Register, ModelKind::Kv, ModelKind::Versioned] {
        let mut runner = seeded_runner(600);
        let linearizable = std::cell::Cell::new(0u32);
        let total = std::cell::Cell::new(0u32);
        let result = runner.run(&specs(), |specs| {
            let ops = build(model, &specs);
            let fine = match model {
                ModelKind::Register => brute_force(&mut register::Register::default(), &ops),
                ModelKind::Kv => brute_force(&mut kv::KeyValue::default(), &ops),
                ModelKind::Versioned => brute_force(&mut versioned::Versioned::default(), &ops),
            };
            linearizable.set(linearizable.get() + u32::from(fine));
            total.set(total.get() + 1);
            agrees_with_brute_force(model, &specs)
        });
        if let Err(failure) = result {
            panic!("model {}: {failure}", model.name());
        }
        // Both answers must be common, or the test proves little.
        let (linearizable, total) = (linearizable.get(), total.get());
        println!(
            "model {}: {linearizable} of {total} linearizable",
            model.name()
        );
        assert!(
            linearizable > total / 10 && linearizable < total * 9 / 10,
            "{linearizable}/{total}"
        );
    }
}
