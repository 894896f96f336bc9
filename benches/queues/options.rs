//! The bench's command line: `--runs N`, `--quick`, `--out DIR`, `--scenario PART_OF_KEY`.

use std::path::PathBuf;

/// What the command line asked for.
pub struct Options {
    pub runs: usize,
    pub quick: bool,
    pub out: Option<PathBuf>,
    /// Run only the scenarios whose key contains this (for profiling one scenario).
    pub scenario: Option<String>,
}

impl Options {
    pub fn parse() -> Self {
        let mut options = Options {
            runs: 5,
            quick: false,
            out: None,
            scenario: None,
        };
        let mut runs_given = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // cargo passes `--bench` to harness = false benches.
                "--bench" => {}
                "--quick" => options.quick = true,
                "--runs" => {
                    options.runs = args
                        .next()
                        .and_then(|value| value.parse().ok())
                        .filter(|&runs| runs >= 1)
                        .unwrap_or_else(|| usage("--runs needs a number >= 1"));
                    runs_given = true;
                }
                "--out" => {
                    options.out = Some(PathBuf::from(
                        args.next()
                            .unwrap_or_else(|| usage("--out needs a directory")),
                    ));
                }
                "--scenario" => {
                    options.scenario = Some(
                        args.next()
                            .unwrap_or_else(|| usage("--scenario needs part of a scenario key")),
                    );
                }
                "-h" | "--help" => usage(""),
                other => usage(&format!("unknown argument {other:?}")),
            }
        }
        if options.quick && !runs_given {
            // A smoke test for CI: one run of everything, correctness checks included.
            options.runs = 1;
        }
        options
    }
}

pub fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("queues bench: {problem}");
    }
    eprintln!(
        "usage: cargo bench --bench queues -- [--runs N (default 5; 1 with --quick)] [--quick] [--out DIR] [--scenario PART_OF_KEY, e.g. cap1024/batch32]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}
