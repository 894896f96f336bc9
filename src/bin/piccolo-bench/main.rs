//! `piccolo-bench`: a load generator for piccolo-server, in the spirit of memtier_benchmark and
//! redis-benchmark. `piccolo-bench --help` lists the flags; docs/clients.md explains the
//! design and how its figures compare with redis-benchmark's.
//!
//! The parts: `args` (flags), `rng` (seeded generator, Zipf sampler), `workload` (keys, values,
//! the SET:GET mix), `resp` (the wire), `driver` (threads, each polling its connections),
//! `report` (histograms, progress line, output).

mod args;
mod capnp;
mod driver;
mod report;
mod resp;
mod rng;
mod workload;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use args::Protocol;
use driver::Shared;
use report::{ClientCost, Progress, ProgressLine, Stats};
use workload::Values;

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How often the main thread looks whether the drivers are done.
const FINISH_CHECK_EVERY: Duration = Duration::from_millis(5);

fn main() -> ExitCode {
    let config = match args::parse(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{}", args::HELP);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("piccolo-bench: {error} (see --help)");
            return ExitCode::from(2);
        }
    };
    let shared = Arc::new(Shared {
        values: Values::new(config.seed, config.value_bytes_min, config.value_bytes_max),
        progress: Progress::default(),
        config,
    });
    let config = &shared.config;

    // RESP: connection c goes to thread c % threads. Cap'n Proto: a thread per connection
    // (threads == connections, checked by the flags).
    let barrier = Arc::new(Barrier::new(config.threads + 1));
    let handles: Vec<_> = (0..config.threads)
        .map(|thread| {
            let numbers: Vec<usize> = (thread..config.connections)
                .step_by(config.threads)
                .collect();
            let shared = shared.clone();
            let barrier = barrier.clone();
            std::thread::Builder::new()
                .name(format!("bench-{thread}"))
                .spawn(move || match shared.config.protocol {
                    Protocol::Resp => driver::run_thread(&shared, &numbers, &barrier),
                    Protocol::Capnp => capnp::run_connection(&shared, numbers[0], &barrier),
                })
                .expect("spawn a driver thread")
        })
        .collect();
    barrier.wait();
    let cpu_at_start = report::process_cpu_time();
    let started = Instant::now();

    let mut progress_line = (!config.quiet && std::io::stderr().is_terminal())
        .then(|| ProgressLine::new(config.warmup));
    let mut next_draw = Instant::now() + PROGRESS_EVERY;
    while !handles.iter().all(|handle| handle.is_finished()) {
        std::thread::sleep(FINISH_CHECK_EVERY);
        if let Some(line) = progress_line.as_mut() {
            if Instant::now() >= next_draw {
                line.draw(&shared.progress);
                next_draw += PROGRESS_EVERY;
            }
        }
    }
    if let Some(line) = &progress_line {
        line.clear();
    }

    let mut stats = Stats::new();
    let mut setup_errors = Vec::new();
    for handle in handles {
        match handle.join() {
            Ok(Ok(thread_stats)) => stats.merge(&thread_stats),
            Ok(Err(error)) => setup_errors.push(error),
            Err(_) => setup_errors.push("a driver thread panicked".into()),
        }
    }
    // After the joins, which make the drivers' counts visible here.
    let cost = ClientCost {
        cpu: report::process_cpu_time().saturating_sub(cpu_at_start),
        wall: started.elapsed(),
        replies: shared
            .progress
            .replies
            .load(std::sync::atomic::Ordering::Relaxed),
    };
    if let Some(error) = setup_errors.first() {
        eprintln!("piccolo-bench: {error}");
        return ExitCode::FAILURE;
    }

    if config.json {
        println!("{}", report::json(config, &stats, &cost));
    } else {
        report::print_human(config, &stats, &cost);
    }
    for message in &stats.messages {
        eprintln!("piccolo-bench: {message}");
    }
    if config.verify && stats.verify_checked == 0 {
        eprintln!("piccolo-bench: --verify checked no GET (no GET followed a SET of its key)");
    }
    if stats.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
