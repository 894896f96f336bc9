//! Queue comparison: piccolo's four SPSC variants against `rtrb`, `crossbeam_queue::ArrayQueue`
//! and `std::sync::mpsc::sync_channel`, in one run.
//!
//! ```text
//! cargo bench --bench queues -- [--runs N] [--quick] [--out DIR]
//! ```
//!
//! How it is organised:
//!
//! * `Queue` (`queue.rs`) is a small adapter trait, one impl per queue. Every scenario is a generic function
//!   over it, so each (queue, scenario) pair is its own monomorphised loop: no virtual call and no
//!   branch on the queue kind in the hot path. The functions that hold the hot loops are
//!   `#[inline(never)]` so they show up by name in `perf report`.
//! * A scenario is a list of contenders, each a boxed closure that does one run and returns one
//!   measurement (the box is called once per run, never per item).
//! * Runs are interleaved: in round `r` every scenario runs every queue once, starting at queue
//!   `r` (rotating order), so slow drift (thermal, other processes) hits all queues alike. The
//!   figure reported is the median of the rounds.
//! * Before its first timed run, each (queue, scenario) pair runs an untimed pass that checks the
//!   consumer receives exactly `0..n` in order; every timed run checks the item count and a
//!   checksum of everything received.
//!
//! Threads are pinned (producer and consumer on different cores) when `core_affinity` reports at
//! least two cores; the output says whether that happened.
//!
//! The files: `options.rs` (the command line), `queue.rs` (the adapters), `item.rs` (what travels), `machine.rs` (pinning, clock,
//! machine description), `runs.rs` (one timed run of each scenario), `plan.rs` (scenarios,
//! scale, rounds), `summary.rs` (medians, paired ratios, targets), `report.rs` (text, Markdown,
//! JSON) and `svg.rs` (the chart).

mod item;
mod machine;
mod options;
mod plan;
mod queue;
mod report;
mod runs;
mod summary;
mod svg;

use std::time::Instant;

use machine::{Clock, Pinning, load_average, machine_description};
use options::{Options, usage};
use plan::{Scale, plan, run_rounds};
use report::{Context, json, markdown, print_report, write_files};
use summary::{Table, headline, summarise};
use svg::chart;

fn main() {
    let options = Options::parse();
    let started = Instant::now();
    let load_before = load_average();
    // Before any thread is pinned (affinity masks are inherited).
    let machine = machine_description();
    let pinning = Pinning::detect();
    let clock = Clock::new();
    let scale = Scale::new(options.quick);
    let mut scenarios = plan(&scale, clock, pinning);
    if let Some(part) = &options.scenario {
        scenarios.retain(|scenario| scenario.key.contains(part.as_str()));
        if scenarios.is_empty() {
            usage(&format!("no scenario key contains {part:?}"));
        }
    }
    eprintln!(
        "queues bench: {} scenarios, {} runs each, pinned: {}",
        scenarios.len(),
        options.runs,
        pinning.describe()
    );
    let results = run_rounds(&scenarios, options.runs);
    let mut table = Table::default();
    for (scenario, per_queue) in scenarios.iter().zip(&results) {
        for (contender, runs) in scenario.contenders.iter().zip(per_queue) {
            let key = scenario.key.clone();
            table
                .summaries
                .entry(key.clone())
                .or_default()
                .insert(contender.queue, summarise(runs));
            table
                .per_run
                .entry(key)
                .or_default()
                .insert(contender.queue, runs.iter().map(headline).collect());
        }
    }
    let context = Context {
        pinning,
        clock,
        machine,
        load_before,
        load_after: load_average(),
        wall_seconds: started.elapsed().as_secs_f64(),
        options,
    };
    print_report(&context, &scale, &scenarios, &table);
    if let Some(dir) = &context.options.out {
        let markdown = markdown(&context, &scale, &scenarios, &table);
        let svg = chart(&context, &table);
        let json = json(&context, &scenarios, &results, &table);
        if let Err(error) = write_files(dir, &markdown, &svg, &json) {
            eprintln!("queues bench: cannot write to {}: {error}", dir.display());
            std::process::exit(1);
        }
        println!(
            "Wrote {0}/queues.md, {0}/queues.svg, {0}/queues.json",
            dir.display()
        );
    }
}
