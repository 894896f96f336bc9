//! File names of a data directory. The header inside each file is what counts; the name only
//! lets a listing sort the files without opening them.
//!
//! ```text
//! e000003-w001-000000000001.log        log segment: epoch 3, worker 1, first seq 1
//! e000003-w001-000000052001.snap       snapshot of epoch 3, worker 1, replay the log from seq 52001
//! e000003-w001-000000052001.snap.tmp   a snapshot being written (ignored, removed at start)
//! synced-offsets                       test hook (PICCOLO_TEST_SYNCED_OFFSETS)
//! ```

/// One worker's files of one run: its chain of log segments and snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId {
    /// The run of the server (each start is a new epoch).
    pub epoch: u64,
    /// The worker.
    pub worker: u32,
}

/// What a file name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileName {
    /// A log segment: its chain and the seq of its first record.
    Log(ChainId, u64),
    /// A complete snapshot: its chain and its start seq.
    Snapshot(ChainId, u64),
    /// A snapshot being written.
    PartialSnapshot(ChainId, u64),
}

/// The name of a log segment.
pub fn log_name(chain: ChainId, first_seq: u64) -> String {
    format!(
        "e{:06}-w{:03}-{:012}.log",
        chain.epoch, chain.worker, first_seq
    )
}

/// The name of a complete snapshot.
pub fn snapshot_name(chain: ChainId, start_seq: u64) -> String {
    format!(
        "e{:06}-w{:03}-{:012}.snap",
        chain.epoch, chain.worker, start_seq
    )
}

/// The name of a snapshot being written.
pub fn partial_snapshot_name(chain: ChainId, start_seq: u64) -> String {
    format!("{}.tmp", snapshot_name(chain, start_seq))
}

/// Parses a name made by the functions above; `None` for any other file.
pub fn parse(name: &str) -> Option<FileName> {
    let (stem, kind) = if let Some(stem) = name.strip_suffix(".snap.tmp") {
        (stem, 2)
    } else if let Some(stem) = name.strip_suffix(".snap") {
        (stem, 1)
    } else {
        (name.strip_suffix(".log")?, 0)
    };
    let mut parts = stem.split('-');
    let epoch = parts.next()?.strip_prefix('e')?;
    let worker = parts.next()?.strip_prefix('w')?;
    let seq = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(epoch) || !digits(worker) || !digits(seq) {
        return None;
    }
    let chain = ChainId {
        epoch: epoch.parse().ok()?,
        worker: worker.parse().ok()?,
    };
    let seq = seq.parse().ok()?;
    Some(match kind {
        0 => FileName::Log(chain, seq),
        1 => FileName::Snapshot(chain, seq),
        _ => FileName::PartialSnapshot(chain, seq),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let chain = ChainId {
            epoch: 3,
            worker: 12,
        };
        assert_eq!(log_name(chain, 1), "e000003-w012-000000000001.log");
        assert_eq!(parse(&log_name(chain, 77)), Some(FileName::Log(chain, 77)));
        assert_eq!(
            parse(&snapshot_name(chain, 9)),
            Some(FileName::Snapshot(chain, 9))
        );
        assert_eq!(
            parse(&partial_snapshot_name(chain, 9)),
            Some(FileName::PartialSnapshot(chain, 9))
        );
        let big = ChainId {
            epoch: 12_345_678,
            worker: 4096,
        };
        assert_eq!(
            parse(&log_name(big, u64::MAX)),
            Some(FileName::Log(big, u64::MAX))
        );
        for other in [
            "synced-offsets",
            "e1-w1.log",
            "x.log",
            "e1-w1-2-3.log",
            "e-w1-1.log",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
