//! redis-py against the real server (tests/redis_py/*.py): default pipelines, which are
//! MULTI/EXEC transactions, and a WATCH/MULTI/EXEC counter incremented by several processes.
//! Ignored: it needs Python with redis-py. CI creates a virtual environment with redis-py and
//! names its interpreter in `PICCOLO_PYTHON` (default `python3`).

use std::process::Command;

mod common;

use common::Server;

#[test]
#[ignore = "needs redis-py (PICCOLO_PYTHON names a Python that has it); CI installs it"]
fn redis_py_pipelines_and_watch_counter() {
    let python = std::env::var("PICCOLO_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let has_redis = Command::new(&python)
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        has_redis,
        "{python} has no redis-py: python3 -m venv v && v/bin/pip install redis, then \
         PICCOLO_PYTHON=v/bin/python"
    );
    let server = Server::start(&["--workers", "4"]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/redis_py/transactions.py"
    );
    let output = Command::new(&python)
        .arg(script)
        .arg(server.port())
        .output()
        .expect("run the redis-py script");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the redis-py script failed");
}
