//! The reports: the text printed at the end of a run, and with `--out DIR` the Markdown and JSON
//! files beside the chart (`svg.rs`).

use std::fmt::Write as _;
use std::path::Path;

use crate::machine::{Clock, Pinning};
use crate::options::Options;
use crate::plan::{BATCH, Runs, STD_RECV, Scale, Scenario, batch_notes};
use crate::runs::Measurement;
use crate::summary::{KEY_ROUND_TRIP, KEY_WAKE, Summary, Table, format_ratio, targets};

pub struct Context {
    pub options: Options,
    pub pinning: Pinning,
    pub clock: Clock,
    pub machine: Vec<(&'static str, String)>,
    pub load_before: String,
    pub load_after: String,
    pub wall_seconds: f64,
}

pub fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    let mut line = "cargo bench --bench queues".to_string();
    if !args.is_empty() {
        line.push_str(" -- ");
        line.push_str(&args.join(" "));
    }
    line
}

pub fn format_cell(summary: Option<&Summary>, latency_p99: bool) -> String {
    match summary {
        None => "-".to_string(),
        Some(Summary::Throughput { mops, .. }) => format!("{mops:.1}"),
        Some(Summary::Latency { p50_ns, p99_ns, .. }) => {
            if latency_p99 {
                format!("{p99_ns:.0}")
            } else {
                format!("{p50_ns:.0}")
            }
        }
    }
}

/// A table as text cells: a heading row and one row per queue.
pub struct Grid {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// The throughput grid and the latency grid. Queue order is the plan's.
pub fn table_rows(scenarios: &[Scenario], table: &Table) -> (Grid, Grid) {
    let mut queues: Vec<&'static str> = Vec::new();
    for scenario in scenarios {
        for contender in &scenario.contenders {
            if !queues.contains(&contender.queue) {
                queues.push(contender.queue);
            }
        }
    }
    let throughput: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| s.key.starts_with("throughput/"))
        .collect();
    let mut throughput_head = vec!["queue".to_string()];
    throughput_head.extend(throughput.iter().map(|s| s.title.clone()));
    let latency_head: Vec<String> = [
        "queue",
        "round trip p50",
        "round trip p99",
        "wake-up p50",
        "wake-up p99",
        "not parked",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut throughput_rows = Vec::new();
    let mut latency_rows = Vec::new();
    for queue in queues {
        let cells: Vec<String> = throughput
            .iter()
            .map(|s| format_cell(table.get(&s.key).and_then(|row| row.get(queue)), false))
            .collect();
        if cells.iter().any(|cell| cell != "-") {
            let mut row = vec![queue.to_string()];
            row.extend(cells);
            throughput_rows.push(row);
        }
        let round_trip = table.get(KEY_ROUND_TRIP).and_then(|row| row.get(queue));
        let wake = table.get(KEY_WAKE).and_then(|row| row.get(queue));
        let unparked = match wake {
            Some(Summary::Latency { unparked, .. }) => unparked.to_string(),
            _ => "-".to_string(),
        };
        latency_rows.push(vec![
            queue.to_string(),
            format_cell(round_trip, false),
            format_cell(round_trip, true),
            format_cell(wake, false),
            format_cell(wake, true),
            unparked,
        ]);
    }
    (
        Grid {
            head: throughput_head,
            rows: throughput_rows,
        },
        Grid {
            head: latency_head,
            rows: latency_rows,
        },
    )
}

pub fn plain_table(grid: &Grid) -> String {
    let (head, rows) = (&grid.head, &grid.rows);
    let mut widths: Vec<usize> = head.iter().map(String::len).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    let line = |cells: &[String], text: &mut String| {
        for (column, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if column == 0 {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "  {cell:>width$}");
            }
        }
        text.push('\n');
    };
    line(head, &mut text);
    let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    line(&rule, &mut text);
    for row in rows {
        line(row, &mut text);
    }
    text
}

pub fn markdown_table(grid: &Grid) -> String {
    let (head, rows) = (&grid.head, &grid.rows);
    let mut text = format!("| {} |\n", head.join(" | "));
    text.push('|');
    for column in 0..head.len() {
        text.push_str(if column == 0 { "---|" } else { "---:|" });
    }
    text.push('\n');
    for row in rows {
        let _ = writeln!(text, "| {} |", row.join(" | "));
    }
    text
}

pub fn notes(context: &Context, scale: &Scale) -> Vec<String> {
    let mut notes = vec![
        format!(
            "Figures are the median of {} runs; runs are interleaved (each round runs every queue once, in rotating order).",
            context.options.runs
        ),
        format!("Pinning: {}.", context.pinning.describe()),
        format!("Round-trip clock: {}.", context.clock.describe()),
        format!(
            "Throughput runs move {} u64 items (capacity 2: /8; [u64; 8]: /2; std-mpsc: /4); round trip: {} per run, over two rings of capacity 1024 with one item in flight; wake-up: {} per run, the producer sleeps {} µs before each push so the consumer has parked.",
            scale.items,
            scale.round_trips,
            scale.wake.wake_ups,
            scale.wake.gap.as_micros()
        ),
        format!(
            "Batches are of {BATCH} items, clamped to the capacity (so batches of 2 at capacity 2). How each queue moves a batch:"
        ),
    ];
    for (queue, note) in batch_notes() {
        notes.push(format!("  - {queue}: {note}"));
    }
    notes.push("Piccolo's lamport, cached and mutex publish on every push_deferred, so their batch column is a loop of pushes plus pop_batch (a loop of pops for them).".to_string());
    notes.push(format!(
        "Wake-up: the consumer parks with piccolo's Parker (spins 0) around each queue, including rtrb, crossbeam and std-mpsc (polled with try_recv); the producer stamps the time, pushes, and calls Unparker::notify. `{STD_RECV}` is std's own blocking recv(), which parks in the kernel. `not parked` counts wake-ups (over all runs) where the consumer found the item before it parked; they are left out of the percentiles."
    ));
    notes.push("std-mpsc in the throughput and round-trip scenarios is driven with try_send/try_recv and spins like the others.".to_string());
    if context.options.quick {
        notes.push(
            "QUICK MODE: few items per run, figures are a smoke test, not a measurement."
                .to_string(),
        );
    }
    notes
}

pub fn print_report(context: &Context, scale: &Scale, scenarios: &[Scenario], table: &Table) {
    let (throughput, latency) = table_rows(scenarios, table);
    println!();
    println!("Throughput, Mops/s (millions of items per second; higher is better)");
    print!("{}", plain_table(&throughput));
    println!();
    println!("Latency, ns (lower is better)");
    print!("{}", plain_table(&latency));
    println!();
    println!(
        "Targets (capacity 1024, u64 items, same run; ratio = median over rounds of the ratio within each round):"
    );
    for target in targets(table) {
        println!("  {}", target.line());
    }
    println!();
    for note in notes(context, scale) {
        println!("{note}");
    }
    println!(
        "Load average before: {}; after: {}.",
        context.load_before, context.load_after
    );
}

pub fn markdown(context: &Context, scale: &Scale, scenarios: &[Scenario], table: &Table) -> String {
    let (throughput, latency) = table_rows(scenarios, table);
    let mut text = String::from("# Queue comparison\n\n");
    let _ = writeln!(text, "Command: `{}`\n", command_line());
    text.push_str("| machine | |\n|---|---|\n");
    for (what, value) in &context.machine {
        let _ = writeln!(text, "| {what} | {value} |");
    }
    let _ = writeln!(text, "| pinned | {} |", context.pinning.describe());
    let _ = writeln!(
        text,
        "| load average (1, 5, 15 min) before / after | {} / {} |",
        context.load_before, context.load_after
    );
    let _ = writeln!(text, "| wall time | {:.0} s |\n", context.wall_seconds);
    text.push_str("## Throughput, Mops/s (higher is better)\n\n");
    text.push_str(&markdown_table(&throughput));
    text.push_str("\n## Latency, ns (lower is better)\n\n");
    text.push_str(&markdown_table(&latency));
    text.push_str("\n## Targets (capacity 1024, u64 items)\n\n");
    text.push_str(
        "Ratio: the median over rounds of the ratio within each round (the verdict's basis); ",
    );
    text.push_str("of medians: the ratio of the two medians in the tables above.\n\n");
    text.push_str("| target | ratio | of medians | bound | verdict |\n|---|---:|---:|---:|---|\n");
    for target in targets(table) {
        let relation = if target.at_least { "≥" } else { "≤" };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {relation} {:.1}x | {} |",
            target.what,
            format_ratio(target.ratio),
            format_ratio(target.ratio_of_medians),
            target.bound,
            target.verdict()
        );
    }
    text.push_str("\n## Notes\n\n");
    for note in notes(context, scale) {
        if note.starts_with("  - ") {
            let _ = writeln!(text, "  {}", note.trim_start());
        } else {
            let _ = writeln!(text, "- {note}");
        }
    }
    text.push_str("\nRaw figures of every run: `queues.json`. Chart: `queues.svg`.\n");
    text
}

pub fn json(
    context: &Context,
    scenarios: &[Scenario],
    results: &[Vec<Runs>],
    table: &Table,
) -> serde_json::Value {
    use serde_json::json;
    let scenario_values: Vec<serde_json::Value> = scenarios
        .iter()
        .zip(results)
        .map(|(scenario, per_queue)| {
            let queues: serde_json::Map<String, serde_json::Value> = scenario
                .contenders
                .iter()
                .zip(per_queue)
                .map(|(contender, runs)| {
                    let runs: Vec<serde_json::Value> = runs
                        .iter()
                        .map(|run| match run {
                            Measurement::Throughput { mops, seconds, items } => {
                                json!({ "mops": mops, "seconds": seconds, "items": items })
                            }
                            Measurement::Latency { p50_ns, p99_ns, samples, unparked } => {
                                json!({ "p50_ns": p50_ns, "p99_ns": p99_ns, "samples": samples, "not_parked": unparked })
                            }
                        })
                        .collect();
                    let median = match table.summaries[&scenario.key][contender.queue] {
                        Summary::Throughput { mops, min, max } => json!({ "mops": mops, "min_mops": min, "max_mops": max }),
                        Summary::Latency { p50_ns, p99_ns, unparked } => {
                            json!({ "p50_ns": p50_ns, "p99_ns": p99_ns, "not_parked": unparked })
                        }
                    };
                    (contender.queue.to_string(), json!({ "median": median, "runs": runs }))
                })
                .collect();
            json!({ "key": scenario.key, "title": scenario.title, "queues": queues })
        })
        .collect();
    let machine: serde_json::Map<String, serde_json::Value> = context
        .machine
        .iter()
        .map(|(what, value)| (what.to_string(), json!(value)))
        .collect();
    let targets: Vec<serde_json::Value> = targets(table)
        .iter()
        .map(|target| {
            json!({ "target": target.what, "paired_ratio_median": target.ratio, "ratio_of_medians": target.ratio_of_medians, "at_least": target.at_least, "bound": target.bound, "verdict": target.verdict() })
        })
        .collect();
    json!({
        "command": command_line(),
        "runs": context.options.runs,
        "quick": context.options.quick,
        "machine": machine,
        "pinned": context.pinning.describe(),
        "clock": context.clock.describe(),
        "load_before": context.load_before,
        "load_after": context.load_after,
        "wall_seconds": context.wall_seconds,
        "scenarios": scenario_values,
        "targets": targets,
    })
}

pub fn write_files(
    dir: &Path,
    markdown: &str,
    svg: &str,
    json: &serde_json::Value,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("queues.md"), markdown)?;
    std::fs::write(dir.join("queues.svg"), svg)?;
    let mut json_text = serde_json::to_string_pretty(json).map_err(std::io::Error::other)?;
    json_text.push('\n');
    std::fs::write(dir.join("queues.json"), json_text)
}
