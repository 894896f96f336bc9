//! `piccolo-sim`: runs the Raft simulator over a range of seeds.
//!
//! ```text
//! piccolo-sim --seeds 1000..2000 [--nodes 5] [--jobs 2] [--wire] [--trace] [--progress N]
//!             [--safety-s 30] [--liveness-s 30]
//! ```
//!
//! Each seed draws a fault plan and runs it (see `piccolo::raft::sim::plan`). For each seed
//! that breaks an invariant it prints the seed, the first violation, the plan, and the command
//! that replays it with a trace. The last line is `N seeds, M violations`; the exit status is 1
//! if there was any violation. A panic inside the core (an internal assertion) prints its seed
//! and replay command too, then stops the process.
//!
//! `--wire` passes every message through the Cap'n Proto codec (`proto::peer`). `--trace`
//! prints every event (use it with one seed). `--progress N` prints a line to stderr every `N`
//! seeds, naming the highest seed below which all are done, so a long run can resume there.

use std::cell::Cell;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use piccolo::proto::peer;
use piccolo::raft::sim::{Outcome, RunOptions, SECOND, Wire, run_seed};

struct Args {
    seeds: std::ops::Range<u64>,
    nodes: Option<usize>,
    jobs: usize,
    wire: bool,
    trace: bool,
    progress: u64,
    safety_s: u64,
    liveness_s: u64,
}

const USAGE: &str = "usage: piccolo-sim --seeds A..B [--nodes 3|5|7] [--jobs J] [--wire] [--trace] \
                     [--progress N] [--safety-s S] [--liveness-s S]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: 0..0,
        nodes: None,
        jobs: std::thread::available_parallelism().map_or(1, usize::from),
        wire: false,
        trace: false,
        progress: 0,
        safety_s: 30,
        liveness_s: 30,
    };
    let mut seeds = None;
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| iter.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seeds" => {
                let text = value("--seeds")?;
                let (start, end) = text
                    .split_once("..")
                    .ok_or(format!("--seeds takes A..B, not {text}"))?;
                let start: u64 = start.parse().map_err(|_| format!("bad seed {start}"))?;
                let end: u64 = end.parse().map_err(|_| format!("bad seed {end}"))?;
                if end <= start {
                    return Err(format!("empty seed range {text}"));
                }
                seeds = Some(start..end);
            }
            "--nodes" => {
                let nodes: usize = value("--nodes")?
                    .parse()
                    .map_err(|_| "bad --nodes".to_string())?;
                if !(1..=9).contains(&nodes) {
                    return Err("--nodes must be 1 to 9".to_string());
                }
                args.nodes = Some(nodes);
            }
            "--jobs" => {
                args.jobs = value("--jobs")?
                    .parse()
                    .map_err(|_| "bad --jobs".to_string())?;
                args.jobs = args.jobs.max(1);
            }
            "--progress" => {
                args.progress = value("--progress")?
                    .parse()
                    .map_err(|_| "bad --progress".to_string())?;
            }
            "--safety-s" => {
                args.safety_s = value("--safety-s")?
                    .parse()
                    .map_err(|_| "bad --safety-s".to_string())?;
            }
            "--liveness-s" => {
                args.liveness_s = value("--liveness-s")?
                    .parse()
                    .map_err(|_| "bad --liveness-s".to_string())?;
            }
            "--wire" => args.wire = true,
            "--trace" => args.trace = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    args.seeds = seeds.ok_or(USAGE.to_string())?;
    Ok(args)
}

thread_local! {
    static CURRENT_SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

fn replay_command(seed: u64, args: &Args) -> String {
    let mut command = format!("piccolo-sim --seeds {seed}..{} --trace", seed + 1);
    if let Some(nodes) = args.nodes {
        command.push_str(&format!(" --nodes {nodes}"));
    }
    if args.wire {
        command.push_str(" --wire");
    }
    if args.safety_s != 30 {
        command.push_str(&format!(" --safety-s {}", args.safety_s));
    }
    if args.liveness_s != 30 {
        command.push_str(&format!(" --liveness-s {}", args.liveness_s));
    }
    command
}

fn wire() -> Wire {
    let mut buffer = Vec::new();
    Box::new(move |message| {
        buffer.clear();
        peer::encode(message, &mut buffer);
        let copy = peer::decode(&buffer).map_err(|error| error.to_string())?;
        Ok((copy, buffer.len()))
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => Arc::new(args),
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    {
        let args = Arc::clone(&args);
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(seed) = CURRENT_SEED.with(Cell::get) {
                println!("seed {seed}: PANIC in the core: {info}");
                println!("  replay: {}", replay_command(seed, &args));
                let _ = std::io::stdout().flush();
            }
            default_hook(info);
        }));
    }
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(args.seeds.start));
    let (sender, receiver) = mpsc::channel::<Outcome>();
    let jobs = args
        .jobs
        .min((args.seeds.end - args.seeds.start) as usize)
        .max(1);
    let mut workers = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let next = Arc::clone(&next);
        let sender = sender.clone();
        let args = Arc::clone(&args);
        workers.push(std::thread::spawn(move || {
            loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= args.seeds.end {
                    return;
                }
                CURRENT_SEED.with(|current| current.set(Some(seed)));
                let mut run = RunOptions::new(seed);
                run.nodes = args.nodes;
                run.trace = args.trace;
                run.safety_us = args.safety_s * SECOND;
                run.liveness_us = args.liveness_s * SECOND;
                let outcome = run_seed(run, args.wire.then(wire));
                CURRENT_SEED.with(|current| current.set(None));
                if sender.send(outcome).is_err() {
                    return;
                }
            }
        }));
    }
    drop(sender);

    let total = args.seeds.end - args.seeds.start;
    let done_flags = Mutex::new(vec![false; total as usize]);
    let mut low_water = args.seeds.start;
    let mut seeds = 0u64;
    let mut violations = 0u64;
    let mut ticks = 0u64;
    let mut events = 0u64;
    let mut sim_us = 0u64;
    let mut operations = 0u64;
    let mut max_converge_us = 0u64;
    let mut max_converge_seed = 0;
    let stdout = std::io::stdout();
    for outcome in receiver {
        seeds += 1;
        ticks += outcome.stats.ticks;
        events += outcome.stats.events;
        sim_us += outcome.sim_us;
        operations += outcome.operations;
        if let Some(converge) = outcome.converge_us {
            if converge > max_converge_us {
                max_converge_us = converge;
                max_converge_seed = outcome.seed;
            }
        }
        let mut out = stdout.lock();
        if args.trace {
            let _ = write!(out, "{}", outcome.trace);
        }
        if let Some(violation) = &outcome.violation {
            violations += 1;
            let _ = writeln!(out, "seed {}: VIOLATION {}", outcome.seed, violation);
            let _ = writeln!(out, "  plan: {}", outcome.plan);
            let _ = writeln!(out, "  replay: {}", replay_command(outcome.seed, &args));
        } else if args.trace {
            let _ = writeln!(
                out,
                "seed {}: ok ({} nodes, {} ops, {} committed, {} leaders, fingerprint {:016x})",
                outcome.seed,
                outcome.nodes,
                outcome.operations,
                outcome.committed,
                outcome.leaders,
                outcome.fingerprint
            );
        }
        drop(out);
        let mut flags = done_flags.lock().expect("one thread");
        flags[(outcome.seed - args.seeds.start) as usize] = true;
        while low_water < args.seeds.end && flags[(low_water - args.seeds.start) as usize] {
            low_water += 1;
        }
        if args.progress > 0 && seeds % args.progress == 0 {
            eprintln!(
                "progress: {seeds}/{total} seeds, {violations} violations, all seeds below {low_water} done, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{:.1} s wall, {jobs} jobs: {:.1} seeds/s, {:.0} simulated ticks/s, {:.0} events/s, \
         {:.0}x real time; {operations} client operations; slowest convergence {:.1} s (seed {max_converge_seed})",
        elapsed,
        seeds as f64 / elapsed,
        ticks as f64 / elapsed,
        events as f64 / elapsed,
        sim_us as f64 / 1e6 / elapsed,
        max_converge_us as f64 / 1e6
    );
    println!("{seeds} seeds, {violations} violations");
    if violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
