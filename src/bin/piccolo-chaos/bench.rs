//! `piccolo-chaos bench-check`: how fast the checker decides simulated histories of 10k, 100k
//! and 1M operations spread over a few keys, against Porcupine's memo layout (a full bitset of
//! the key's operations per memo entry) in the same run. Each history is checked for the
//! right answer before it is timed: the simulated one must be linearizable, and the same one
//! with a stale read injected must not be. Figures are medians of `--runs` runs; the two memo
//! layouts alternate within each run.

use std::time::{Duration, Instant};

use piccolo::check::simulate::{self, SimConfig};
use piccolo::check::{self, CheckOptions, MemoKind, ModelKind, Operation, Verdict, history};

use crate::args::Args;

/// Clients of the simulated histories.
const PROCESSES: usize = 8;
/// Keys they spread over.
const KEYS: usize = 4;
/// Percentage of operations that time out (`:info`).
const INFO_PERCENT: u32 = 1;
/// The full-bitset layout is skipped when its memo would need more than this.
const MAX_BITSET_MEMO_BYTES: u64 = 4 << 30;
/// `--longest` stops doubling past this many operations (memory: ~300 bytes per operation).
const MAX_LONGEST_OPERATIONS: usize = 32_000_000;
/// The time limit `--longest` measures against.
const LONGEST_LIMIT: Duration = Duration::from_secs(60);

pub fn main(words: Vec<String>) -> Result<u8, String> {
    let mut args = Args::new(words);
    let quick = args.switch("--quick");
    let longest = args.switch("--longest");
    let runs = args.number("--runs", if quick { 1 } else { 3 }, 1, 99)? as usize;
    let seed = args.number("--seed", 1, 0, u64::MAX)?;
    if !args.finish()?.is_empty() {
        return Err("bench-check takes no positional arguments".to_string());
    }
    let sizes: &[usize] = if quick {
        &[10_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    println!(
        "checker speed: simulated histories, {PROCESSES} clients, {KEYS} keys, {INFO_PERCENT}% :info, \
         seed {seed}; median of {runs} run(s)"
    );
    println!(
        "{:<10} {:>10} {:>9} {:>11} {:>12} {:>12} {:>12} {:>10} {:>14}",
        "model",
        "operations",
        "per key",
        "pair s",
        "frontier s",
        "bitset s",
        "bitset/front",
        "ops/s",
        "violation s"
    );
    let mut failures = 0;
    for model in [ModelKind::Register, ModelKind::Kv, ModelKind::Versioned] {
        for &size in sizes {
            match measure(model, size, seed, runs) {
                Ok(line) => println!("{line}"),
                Err(message) => {
                    failures += 1;
                    println!("{:<10} {size:>10} FAILED: {message}", model.name());
                }
            }
        }
    }
    if longest {
        longest_within_limit(seed)?;
    }
    Ok(if failures == 0 { 0 } else { 1 })
}

/// `piccolo-chaos simulate`: writes a simulated history as EDN on stdout.
pub fn simulate_main(words: Vec<String>) -> Result<u8, String> {
    let mut args = Args::new(words);
    let model = args
        .value("--model")?
        .unwrap_or_else(|| "register".to_string());
    let model = ModelKind::from_name(&model).ok_or_else(|| format!("--model: unknown {model}"))?;
    let operations = args.number("--operations", 1_000, 1, 100_000_000)? as usize;
    let processes = args.number("--clients", PROCESSES as u64, 1, 1_000)? as usize;
    let keys = args.number("--keys", KEYS as u64, 1, 1_000_000)? as usize;
    let info_percent = args.number("--info-percent", u64::from(INFO_PERCENT), 0, 100)? as u32;
    let seed = args.number("--seed", 1, 0, u64::MAX)?;
    let stale = args.value("--stale-read-at")?;
    if !args.finish()?.is_empty() {
        return Err("simulate takes no positional arguments".to_string());
    }
    let mut events = simulate::simulate(&SimConfig {
        model,
        processes,
        keys,
        operations,
        info_percent,
        seed,
    });
    if let Some(fraction) = stale {
        let fraction: f64 = fraction
            .parse()
            .map_err(|_| "--stale-read-at: a fraction 0..1")?;
        simulate::inject_stale_read(&mut events, model, fraction.clamp(0.0, 1.0))
            .ok_or("no place for a stale read")?;
    }
    print!("{}", history::write_edn(&events));
    Ok(0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn simulated(model: ModelKind, size: usize, seed: u64) -> Vec<check::Event> {
    simulate::simulate(&SimConfig {
        model,
        processes: PROCESSES,
        keys: KEYS,
        operations: size,
        info_percent: INFO_PERCENT,
        seed,
    })
}

/// Checks once; returns the seconds taken, the verdict, and the memo entries.
fn timed_check(
    model: ModelKind,
    ops: &[Operation],
    memo: MemoKind,
    shrink: bool,
) -> (f64, check::Report) {
    let options = CheckOptions {
        memo,
        minimize: shrink,
        ..CheckOptions::default()
    };
    let started = Instant::now();
    let report = check::check(model, ops, &options).expect("simulated histories compile");
    (started.elapsed().as_secs_f64(), report)
}

fn measure(model: ModelKind, size: usize, seed: u64, runs: usize) -> Result<String, String> {
    let events = simulated(model, size, seed);
    let started = Instant::now();
    let paired =
        history::pair(&events, history::PairOptions::default()).map_err(|e| e.to_string())?;
    let pair_seconds = started.elapsed().as_secs_f64();
    let ops = paired.operations;

    // Correctness before timing.
    let (_, report) = timed_check(model, &ops, MemoKind::Frontier, false);
    if !matches!(report.verdict, Verdict::Linearizable) {
        return Err(format!(
            "a simulated history was judged {:?}",
            report.verdict
        ));
    }
    let bitset_bytes = report.memo_entries * (report.largest_key as u64 / 8 + 40);
    let bitset_feasible = bitset_bytes <= MAX_BITSET_MEMO_BYTES;

    let mut frontier = Vec::new();
    let mut bitset = Vec::new();
    for _ in 0..runs {
        let (seconds, report) = timed_check(model, &ops, MemoKind::Frontier, false);
        assert!(matches!(report.verdict, Verdict::Linearizable));
        frontier.push(seconds);
        if bitset_feasible {
            let (seconds, report) = timed_check(model, &ops, MemoKind::FullBitset, false);
            if !matches!(report.verdict, Verdict::Linearizable) {
                return Err("the full-bitset memo disagrees".to_string());
            }
            bitset.push(seconds);
        }
    }
    let frontier = median(frontier);
    let (bitset_text, ratio_text) = if bitset_feasible {
        let bitset = median(bitset);
        (format!("{bitset:.3}"), format!("{:.1}x", bitset / frontier))
    } else {
        (format!("(~{} GB)", bitset_bytes >> 30), "-".to_string())
    };

    // A violation: the same history with a stale read halfway, found and shrunk.
    let mut broken = events;
    simulate::inject_stale_read(&mut broken, model, 0.5).ok_or("no place for a stale read")?;
    let broken_ops =
        history::pair(&broken, history::PairOptions::default()).map_err(|e| e.to_string())?;
    let (violation_seconds, report) =
        timed_check(model, &broken_ops.operations, MemoKind::Frontier, true);
    let part = match &report.verdict {
        Verdict::NotLinearizable(violation) => violation.part.len(),
        other => return Err(format!("the injected stale read was judged {other:?}")),
    };
    Ok(format!(
        "{:<10} {:>10} {:>9} {:>11.3} {:>12.3} {:>12} {:>12} {:>10.0} {:>9.3} ({part} ops)",
        model.name(),
        ops.len(),
        report.largest_key,
        pair_seconds,
        frontier,
        bitset_text,
        ratio_text,
        ops.len() as f64 / frontier,
        violation_seconds,
    ))
}

/// Doubles a register history from 1M operations until one check takes longer than
/// [`LONGEST_LIMIT`] (or the size cap is reached); prints each.
fn longest_within_limit(seed: u64) -> Result<(), String> {
    println!(
        "\nlongest register history checked within {} s (one run each):",
        LONGEST_LIMIT.as_secs()
    );
    let mut size = 1_000_000;
    let mut best = 0;
    let mut stopped_by = "the size cap";
    while size <= MAX_LONGEST_OPERATIONS {
        // Doubling roughly doubles the peak memory; stop before the machine (or this
        // process' address-space limit) runs out rather than die of it.
        let peak = memory_kib("/proc/self/status", "VmHWM:");
        let room = memory_kib("/proc/meminfo", "MemAvailable:")
            .map(|available| available.min(address_space_kib()));
        if let (Some(peak), Some(room), true) = (peak, room, best > 0) {
            if peak * 22 / 10 > room {
                println!(
                    "  {size:>10} invoked: not tried; the last size peaked at {} MiB, and about \
                     twice that would not fit in {} MiB",
                    peak >> 10,
                    room >> 10
                );
                stopped_by = "memory";
                break;
            }
        }
        let events = simulated(ModelKind::Register, size, seed);
        let ops = history::pair(&events, history::PairOptions::default())
            .map_err(|e| e.to_string())?
            .operations;
        drop(events);
        let deadline = Instant::now() + LONGEST_LIMIT;
        let stop = move || Instant::now() >= deadline;
        let options = CheckOptions {
            stop: Some(&stop),
            minimize: false,
            ..CheckOptions::default()
        };
        let started = Instant::now();
        let report =
            check::check(ModelKind::Register, &ops, &options).map_err(|e| e.to_string())?;
        let seconds = started.elapsed().as_secs_f64();
        let verdict = match report.verdict {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable(_) => "NOT linearizable (a bug)",
            Verdict::Unknown { .. } => "unknown (time limit)",
        };
        println!(
            "  {:>10} operations ({:>9} per key): {seconds:>7.2} s, {verdict}",
            ops.len(),
            report.largest_key
        );
        if !matches!(report.verdict, Verdict::Linearizable) || seconds > LONGEST_LIMIT.as_secs_f64()
        {
            stopped_by = "the time limit";
            break;
        }
        best = ops.len();
        size *= 2;
    }
    println!("  longest decided within the limit: {best} operations (stopped by {stopped_by})");
    Ok(())
}

/// This process' address-space limit (`ulimit -v`) in KiB, or `u64::MAX` if none.
fn address_space_kib() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass, which lives on our stack.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
    if result != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return u64::MAX;
    }
    limit.rlim_cur / 1024
}

/// A `kB` figure from a /proc file (`VmHWM:` in /proc/self/status, `MemAvailable:` in
/// /proc/meminfo), in KiB.
fn memory_kib(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|line| line.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
