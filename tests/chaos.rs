//! `piccolo-chaos` end to end: `check` on history files in both of Jepsen's forms (exit
//! statuses 0, 1, 2), `run --nodes 1` against a real `piccolo-server` with the pause nemesis,
//! and the refusals of what needs the cluster or durability. Every process is started by the
//! binary under test, which stops its server by PID; the test checks that the PID is gone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn chaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_piccolo-chaos"))
        .args(args)
        .output()
        .expect("run piccolo-chaos")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fresh directory under the target dir, removed first if a previous run left it.
fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chaos-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch dir");
    dir
}

#[test]
fn check_answers_with_its_exit_status() {
    let dir = scratch("check");
    let good_log = "INFO  jepsen.util - 0\t:invoke\t:write\t1\n\
                    INFO  jepsen.util - 0\t:ok\t:write\t1\n\
                    INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]\n\
                    INFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n\
                    INFO  jepsen.util - 2\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 2\t:ok\t:read\t2\n";
    let stale_edn = "{:process 0, :type :invoke, :f :write, :value 1}\n\
                     {:process 0, :type :ok, :f :write, :value 1}\n\
                     {:process 0, :type :invoke, :f :write, :value 2}\n\
                     {:process 0, :type :ok, :f :write, :value 2}\n\
                     {:process 1, :type :invoke, :f :read, :value nil}\n\
                     {:process 1, :type :ok, :f :read, :value 1}\n";
    let cases = [
        (
            "good.log",
            good_log,
            "register",
            0,
            "linearizable (register model)",
        ),
        (
            "stale.edn",
            stale_edn,
            "register",
            1,
            "it read 1, but the register held 2",
        ),
        (
            "broken.edn",
            "{:process 0, :type :ok, :f :read, :value 1}\n",
            "register",
            2,
            "never invoked",
        ),
        (
            "kv.edn",
            stale_edn,
            "kv",
            1,
            "it read \"1\", but the key held \"2\"",
        ),
        (
            "wrong-model.edn",
            stale_edn,
            "versioned",
            2,
            "getv returns [value version] or nil, not 1",
        ),
    ];
    for (name, history, model, status, needle) in cases {
        let file = dir.join(name);
        std::fs::write(&file, history).unwrap();
        let output = chaos(&["check", "--model", model, file.to_str().unwrap()]);
        let all = text(&output);
        assert_eq!(output.status.code(), Some(status), "{name}: {all}");
        assert!(all.contains(needle), "{name}: {all}");
    }
    let output = chaos(&[
        "check",
        "--model",
        "register",
        dir.join("missing.edn").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let output = chaos(&["check", "--model", "nope", "x"]);
    assert_eq!(output.status.code(), Some(2));
    // A search that runs out of budget answers unknown (2); with room, the same history passes.
    let simulated = chaos(&[
        "simulate",
        "--model",
        "versioned",
        "--operations",
        "2000",
        "--seed",
        "3",
    ]);
    assert_eq!(simulated.status.code(), Some(0));
    let file = dir.join("simulated.edn");
    std::fs::write(&file, &simulated.stdout).unwrap();
    let output = chaos(&[
        "check",
        "--model",
        "versioned",
        "--max-steps",
        "50",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("unknown (versioned model)"),
        "{}",
        text(&output)
    );
    let output = chaos(&["check", "--model", "versioned", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_refuses_what_needs_the_cluster_or_durability() {
    for (args, needle) in [
        (&["run", "--nodes", "3"][..], "cluster is not available yet"),
        (&["run", "--nemesis", "kill"][..], "durability"),
        (&["run", "--nemesis", "partition"][..], "needs the cluster"),
    ] {
        let output = chaos(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            text(&output).contains(needle),
            "{args:?}: {}",
            text(&output)
        );
    }
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_single_node_run_with_pauses_is_recorded_summarized_drawn_and_checked() {
    let dir = scratch("run");
    let started = Instant::now();
    let output = chaos(&[
        "run",
        "--nodes",
        "1",
        "--seconds",
        "4",
        "--seed",
        "7",
        "--clients",
        "3",
        "--server",
        env!("CARGO_BIN_EXE_piccolo-server"),
        "--out",
        dir.to_str().unwrap(),
    ]);
    let all = text(&output);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the run is bounded"
    );
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("linearizable (versioned model)"), "{all}");
    // The server is gone, stopped by its PID.
    let pid: u32 = all
        .split("server pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .expect("the run names its server's pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_exists(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!process_exists(pid), "server pid {pid} still runs");

    let history = std::fs::read_to_string(dir.join("history.edn")).expect("a history");
    assert!(
        history.contains(":f :start-pause"),
        "the seeded schedule pauses within 4 s"
    );
    assert!(
        history.contains(":f :getv") && history.contains(":f :set") && history.contains(":f :cas")
    );
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("a summary");
    assert!(
        summary.contains("faults: ") && summary.contains("availability per second"),
        "{summary}"
    );
    let svg = std::fs::read_to_string(dir.join("timeline.svg")).expect("a picture");
    assert!(svg.starts_with("<svg") && svg.contains("class=\"fault\""));
    assert_eq!(
        std::fs::read_to_string(dir.join("verdict.txt")).unwrap(),
        "linearizable\n"
    );

    // The recorded history checks the same way from the file, and `report` redraws it.
    let file = dir.join("history.edn");
    let output = chaos(&["check", "--model", "versioned", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let redrawn = dir.join("again");
    let output = chaos(&[
        "report",
        file.to_str().unwrap(),
        "--out",
        redrawn.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        std::fs::read_to_string(redrawn.join("summary.txt")).unwrap(),
        summary
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
