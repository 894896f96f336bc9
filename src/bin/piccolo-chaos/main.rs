//! `piccolo-chaos`: Jepsen-style fault testing for Piccolo. `piccolo-chaos --help` lists the
//! commands; docs/testing.md is the chapter.
//!
//! The parts: `args` (flags), `check_cmd` (the linearizability checker over a history file),
//! `bench` (the checker's speed on simulated histories), `run` (a test run: the server under
//! test, clients, the nemesis, and the outputs), `resp` (the clients' wire), `server` (the
//! processes the run starts, and how they are always stopped).

mod args;
mod bench;
mod check_cmd;
mod resp;
mod run;
mod server;

use std::process::ExitCode;

pub const HELP: &str = "\
piccolo-chaos: fault testing for Piccolo, checked for linearizability

usage:
  piccolo-chaos check --model register|kv|versioned [FLAGS] FILE
      Check a history (EDN op maps one per line, or jepsen.util log lines).
      --format edn|log|auto    the history's form (default auto)
      --independent            values are [key value] tuples (Jepsen's independent checker)
      --time-limit SECONDS     give up with \"unknown\" after this long (default 60)
      --max-steps N            give up with \"unknown\" after N search steps on one key
      --no-shrink              report the whole failing key instead of a small failing part
      Exit status: 0 linearizable, 1 not linearizable, 2 unknown or unreadable.

  piccolo-chaos run --nodes 1 [FLAGS]
      Start a piccolo-server, run concurrent clients doing GETV/SET/CAS on a few keys while a
      nemesis pauses the server (SIGSTOP/SIGCONT), then write the history, a summary, a
      timeline picture and the checker's verdict. Clusters (--nodes 3|5) and the kill and
      partition nemeses need the cluster and durability work and are refused until then.
      --seconds S              how long the clients run (default 10, at most 3600)
      --seed N                 seed of the workload and nemesis schedule (default 1)
      --nemesis LIST           pause or none (default pause)
      --clients N              client threads, each with its own connection (default 4)
      --keys N                 keys (default 3)
      --timeout-ms N           a request with no reply after N ms is indeterminate (default 250)
      --server PATH            the piccolo-server binary (default: next to this one)
      --out DIR                where to write (default chaos-out)
      Exit status: 0 linearizable, 1 a violation, 2 unknown or the run failed.

  piccolo-chaos report HISTORY [--out DIR]
      Write the summary and the timeline picture of a recorded history.

  piccolo-chaos simulate [--model M] [--operations N] [--clients N] [--keys N]
                         [--info-percent P] [--seed N] [--stale-read-at FRACTION]
      Print a simulated history (EDN): clients over a correct object, so linearizable unless
      a stale read is injected.

  piccolo-chaos bench-check [--quick] [--runs N] [--seed N] [--longest]
      The checker's speed on simulated histories of 10k, 100k and 1M operations, against
      Porcupine's full-bitset memo in the same run. --longest also doubles the history until
      a check takes more than 60 s.
";

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`... | head`), as other command-line tools do, instead of
    // panicking in println!.
    // SAFETY: called first thing, before any thread starts; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let mut arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.is_empty() || arguments.iter().any(|a| a == "-h" || a == "--help") {
        print!("{HELP}");
        return if arguments.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let command = arguments.remove(0);
    let result = match command.as_str() {
        "check" => check_cmd::main(arguments),
        "run" => run::main(arguments),
        "report" => run::report_main(arguments),
        "bench-check" => bench::main(arguments),
        "simulate" => bench::simulate_main(arguments),
        other => Err(format!(
            "unknown command {other:?} (check, run, report, simulate, bench-check)"
        )),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("piccolo-chaos: {message}");
            ExitCode::from(2)
        }
    }
}
