//! `piccolo-check-data [--fix] DIR`: reports what a Piccolo data directory holds (files,
//! records, seqs, keys, snapshot state) and where it is damaged, as `redis-check-aof` does for
//! an AOF. With `--fix`, cuts each damaged log at its first bad record (moving later segments
//! of the same chain aside as `NAME.damaged`) and removes obsolete files, so the server starts.
//!
//! Exit status: 0 when recovery would start as it is (torn tails are cut at start anyway),
//! 1 when there is damage before a tail (or anything else that refuses a start) and `--fix`
//! was not given, 2 on a usage error.

use std::process::ExitCode;

use piccolo::persist::codec::{FileKind, HEADER_BYTES, Record};
use piccolo::persist::fs::RealDir;
use piccolo::persist::read::{ReadEnd, open_with_header, read_frames, synced_past};
use piccolo::persist::recovery::{self, Cut};

#[derive(Default)]
struct Counts {
    records: u64,
    sets: u64,
    deletes: u64,
    expires: u64,
    flushes: u64,
    marks: u64,
    first_seq: Option<u64>,
    last_seq: u64,
    max_version: u64,
}

fn main() -> ExitCode {
    let mut fix = false;
    let mut path = None;
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--fix" => fix = true,
            "-h" | "--help" => {
                println!("usage: piccolo-check-data [--fix] DIR");
                return ExitCode::SUCCESS;
            }
            _ if path.is_none() => path = Some(argument),
            _ => {
                eprintln!("usage: piccolo-check-data [--fix] DIR");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("usage: piccolo-check-data [--fix] DIR");
        return ExitCode::from(2);
    };
    if !std::path::Path::new(&path).is_dir() {
        eprintln!("{path}: not a directory");
        return ExitCode::from(2);
    }
    let dir = match RealDir::open(&path) {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("{path}: {error}");
            return ExitCode::from(2);
        }
    };
    match check(&dir, fix) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

/// Prints the report; returns whether a start would succeed (after the fix, if asked).
fn check(dir: &RealDir, fix: bool) -> Result<bool, piccolo::persist::PersistError> {
    use piccolo::persist::fs::Dir;
    let mut names = dir
        .list()
        .map_err(|e| piccolo::persist::PersistError::io("list", &e))?;
    names.sort();
    println!("data directory {}", dir.path().display());
    let mut healthy = true;
    let mut cuts: Vec<Cut> = Vec::new();
    // Last log segment of each chain (damage there may be a torn tail).
    let mut last_of_chain = std::collections::BTreeMap::new();
    for name in &names {
        if let Some(piccolo::persist::files::FileName::Log(chain, seq)) =
            piccolo::persist::files::parse(name)
        {
            let entry = last_of_chain.entry(chain).or_insert((seq, name.clone()));
            if seq >= entry.0 {
                *entry = (seq, name.clone());
            }
        }
    }
    for name in &names {
        let Some(parsed) = piccolo::persist::files::parse(name) else {
            println!("{name}: not a data file (ignored)");
            continue;
        };
        if let piccolo::persist::files::FileName::PartialSnapshot(..) = parsed {
            println!("{name}: an unfinished snapshot (removed at start)");
            continue;
        }
        let (file, header, len) = match open_with_header(dir, name) {
            Ok(opened) => opened,
            Err(error) => {
                println!("{name}: {error}");
                healthy = false;
                continue;
            }
        };
        let kind = match header.kind {
            FileKind::Log => "log",
            FileKind::Snapshot => "snapshot",
        };
        let mut counts = Counts::default();
        let end = read_frames(
            &file,
            name,
            HEADER_BYTES as u64,
            len,
            |_, frame| -> Result<(), piccolo::persist::PersistError> {
                counts.records += 1;
                counts.first_seq.get_or_insert(frame.seq);
                counts.last_seq = frame.seq;
                counts.max_version = counts.max_version.max(frame.record.max_version());
                match frame.record {
                    Record::Set { .. } => counts.sets += 1,
                    Record::Delete { .. } => counts.deletes += 1,
                    Record::Expire { .. } => counts.expires += 1,
                    Record::Flush { .. } => counts.flushes += 1,
                    Record::SyncMark { .. } => counts.marks += 1,
                    _ => {}
                }
                Ok(())
            },
            |_| {},
        )?;
        println!(
            "{name}: {kind}, format {}, epoch {}, worker {} of {}, {} seq {}, {len} bytes, \
             {} records (seqs {}..={}; set {}, delete {}, expire {}, flush {}, sync marks {}), \
             max version {}",
            header.format_version,
            header.epoch,
            header.worker,
            header.workers,
            if header.kind == FileKind::Log {
                "first"
            } else {
                "replays the log from"
            },
            header.first_seq,
            counts.records,
            counts.first_seq.unwrap_or(0),
            counts.last_seq,
            counts.sets,
            counts.deletes,
            counts.expires,
            counts.flushes,
            counts.marks,
            counts.max_version.max(header.version_mark),
        );
        if let ReadEnd::Damaged { offset, error, len } = end {
            let is_last = last_of_chain
                .get(&piccolo::persist::ChainId {
                    epoch: header.epoch,
                    worker: header.worker,
                })
                .is_some_and(|(_, last)| last == name);
            let (synced, after) = synced_past(&file, name, offset, len)?;
            let tail = header.kind == FileKind::Log && is_last && !synced;
            println!(
                "  DAMAGED at offset {offset}: {error}; {} bytes after it, {after} good records \
                 further on; {}",
                len - offset,
                if tail {
                    "a torn tail (cut at start)"
                } else {
                    healthy = false;
                    "before the tail: the server refuses to start unless truncation is asked for"
                }
            );
            if header.kind == FileKind::Log {
                cuts.push(Cut {
                    file: name.clone(),
                    offset,
                    dropped_bytes: len - offset,
                    frames_after: after,
                    reason: error.to_string(),
                    tail,
                    later_files: names
                        .iter()
                        .filter(|other| match piccolo::persist::files::parse(other) {
                            Some(piccolo::persist::files::FileName::Log(chain, seq)) => {
                                chain.epoch == header.epoch
                                    && chain.worker == header.worker
                                    && seq > header.first_seq
                            }
                            _ => false,
                        })
                        .cloned()
                        .collect(),
                });
            }
        }
    }
    let plan = recovery::plan(dir);
    match &plan {
        Ok(plan) => {
            println!(
                "plan: {} chains to read ({} bytes); next start is epoch {}",
                plan.chains.len(),
                plan.bytes,
                plan.next_epoch
            );
            for chain in &plan.chains {
                println!(
                    "  epoch {} worker {} of {}: {}, {} log segments",
                    chain.id.epoch,
                    chain.id.worker,
                    chain.workers,
                    chain
                        .snapshot
                        .as_ref()
                        .map_or("no snapshot".to_string(), |s| format!(
                            "snapshot {} (log replays from seq {})",
                            s.name, s.header.first_seq
                        )),
                    chain.logs.len()
                );
            }
            for name in &plan.obsolete {
                println!("  obsolete (removed at start): {name}");
            }
        }
        Err(error) => {
            println!("plan: {error}");
            healthy = false;
        }
    }
    if fix {
        let plan = plan?;
        let done = recovery::finish(dir, &plan, &cuts)?;
        for (name, kept) in &done.truncated {
            println!("fixed: {name} cut to {kept} bytes");
        }
        for name in &done.moved_aside {
            println!("fixed: {name} moved aside to {name}.damaged");
        }
        for name in &done.removed {
            println!("fixed: removed {name}");
        }
        return Ok(true);
    }
    println!(
        "{}",
        if healthy {
            "OK: a start would load this directory"
        } else {
            "NOT OK: fix with --fix (losing what follows the damage) or restore a backup"
        }
    );
    Ok(healthy)
}
