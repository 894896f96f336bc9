//! `piccolo-check-data` on a real directory: a clean one, a torn tail, damage before the tail,
//! and `--fix`.

use std::process::Command;
use std::sync::Arc;

use piccolo::persist::codec::Record;
use piccolo::persist::fs::RealDir;
use piccolo::persist::recovery::{self, RecoveryOptions};
use piccolo::persist::{ChainId, FsyncPolicy, LogConfig, LogWriter};
use piccolo::store::{Config, Shard};

fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_piccolo-check-data"))
        .args(args)
        .output()
        .expect("run piccolo-check-data");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn reports_and_fixes_damage() {
    let path = std::env::temp_dir().join(format!("piccolo-check-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let dir = Arc::new(RealDir::open(&path).unwrap());
    let config = LogConfig {
        policy: FsyncPolicy::Always,
        sync_thread: false,
        ..LogConfig::default()
    };
    let chain = ChainId {
        epoch: 1,
        worker: 0,
    };
    let mut log = LogWriter::create(Arc::clone(&dir), chain, 1, 1, 0, 1, config, None).unwrap();
    for i in 1..=100u64 {
        let key = format!("key:{i}");
        log.append(&Record::Set {
            key: key.as_bytes(),
            value: b"value",
            version: i,
            expiry_ms: 0,
        });
        log.commit(1).unwrap();
    }
    let name = log.segments().next().unwrap().0.to_string();
    drop(log);
    let file = path.join(&name);
    let text = path.to_str().unwrap();

    let (code, out) = run(&[text]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("100 set") || out.contains("set 100"), "{out}");
    assert!(out.contains("OK"), "{out}");

    // Damage early in the file: before the tail (sync marks follow it).
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[200] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let (code, out) = run(&[text]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("DAMAGED at offset") && out.contains("before the tail"),
        "{out}"
    );
    let refused = recovery::recover_all(
        &*dir,
        1,
        RecoveryOptions {
            truncate_damage: false,
        },
        || Shard::new(Config::default()),
    );
    assert!(refused.is_err());

    let (code, out) = run(&["--fix", text]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cut to"), "{out}");
    let (code, out) = run(&[text]);
    assert_eq!(code, 0, "{out}");
    let (shards, _, _) = recovery::recover_all(
        &*dir,
        1,
        RecoveryOptions {
            truncate_damage: false,
        },
        || Shard::new(Config::default()),
    )
    .unwrap();
    assert!(!shards[0].is_empty() && shards[0].len() < 100);
    std::fs::remove_dir_all(&path).unwrap();
}
