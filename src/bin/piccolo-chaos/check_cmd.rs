//! `piccolo-chaos check`: read a history file, check it, print the verdict.

use std::time::{Duration, Instant};

use piccolo::check::{self, CheckOptions, ModelKind, Report, Verdict, history};

use crate::args::Args;

/// Exit statuses.
pub const LINEARIZABLE: u8 = 0;
pub const NOT_LINEARIZABLE: u8 = 1;
pub const UNKNOWN: u8 = 2;

pub fn main(words: Vec<String>) -> Result<u8, String> {
    let mut args = Args::new(words);
    let model = args
        .value("--model")?
        .ok_or("check needs --model register|kv|versioned")?;
    let model = ModelKind::from_name(&model)
        .ok_or_else(|| format!("--model: {model} is not register, kv or versioned"))?;
    let format = args
        .value("--format")?
        .unwrap_or_else(|| "auto".to_string());
    let independent = args.switch("--independent");
    let shrink = !args.switch("--no-shrink");
    let time_limit = Duration::from_secs(args.number("--time-limit", 60, 1, 7 * 24 * 3600)?);
    let max_steps = args.number("--max-steps", u64::MAX, 1, u64::MAX)?;
    let files = args.finish()?;
    let [file] = files.as_slice() else {
        return Err("check needs exactly one history FILE".to_string());
    };
    let text = std::fs::read_to_string(file).map_err(|error| format!("{file}: {error}"))?;
    let format = match format.as_str() {
        "auto" => history::detect_format(&text),
        "edn" => history::Format::Edn,
        "log" => history::Format::JepsenLog,
        other => return Err(format!("--format: {other} is not edn, log or auto")),
    };
    let events = history::read(&text, format).map_err(|error| format!("{file}: {error}"))?;
    let paired = history::pair(&events, history::PairOptions { independent })
        .map_err(|error| format!("{file}: {error}"))?;
    if paired.operations.is_empty() && paired.failed == 0 {
        return Err(format!("{file}: no client operations found"));
    }
    println!(
        "{file}: {} events; {} operations ({} :info, {} unfinished), {} :fail dropped, {} other events",
        events.len(),
        paired.operations.len(),
        paired.indeterminate,
        paired.unfinished,
        paired.failed,
        paired.other_events
    );
    let started = Instant::now();
    let deadline = started + time_limit;
    let stop = move || Instant::now() >= deadline;
    let options = CheckOptions {
        stop: Some(&stop),
        minimize: shrink,
        max_steps_per_key: max_steps,
        ..CheckOptions::default()
    };
    let report = check::check(model, &paired.operations, &options)
        .map_err(|error| format!("{file}: {error}"))?;
    Ok(print_verdict(model, &report, started.elapsed()))
}

/// Prints the verdict and returns the exit status for it.
pub fn print_verdict(model: ModelKind, report: &Report, elapsed: Duration) -> u8 {
    let cost = format!(
        "{} keys ({} checked, the largest {} operations), {} search steps, {} memo entries, {:.3} s",
        report.keys,
        report.keys_checked,
        report.largest_key,
        report.steps,
        report.memo_entries,
        elapsed.as_secs_f64()
    );
    match &report.verdict {
        Verdict::Linearizable => {
            println!("linearizable ({} model): {cost}", model.name());
            LINEARIZABLE
        }
        Verdict::NotLinearizable(violation) => {
            println!("NOT linearizable ({} model): {cost}", model.name());
            print!("{violation}");
            NOT_LINEARIZABLE
        }
        Verdict::Unknown { reason } => {
            println!("unknown ({} model): {reason}; {cost}", model.name());
            UNKNOWN
        }
    }
}
