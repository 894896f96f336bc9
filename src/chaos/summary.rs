//! What happened in a run, in numbers: operations by outcome, the faults injected, the
//! fraction of operations that got a definite answer in each second (availability: `:ok` or
//! `:fail`, as opposed to `:info`, unknown), the time from the end of each fault to the first
//! success after it, and latencies.
//!
//! Everything is computed from the history alone (client events and the nemesis' `:start-X` /
//! `:stop-X` events), so a summary can be redrawn from any recorded history.

use std::collections::BTreeMap;
use std::fmt;

use crate::check::{Event, EventType, Process, Value};

/// A fault: its kind (`pause`), target, and when it started and ended (ns since the run
/// started; `None` if the history ends first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultWindow {
    /// `pause`, `partition`, ... (from `:start-pause`); `nemesis` for Jepsen's plain
    /// `:start` / `:stop`.
    pub kind: String,
    /// What it was applied to.
    pub target: Value,
    /// Start, ns.
    pub start_ns: u64,
    /// End, ns, if it ended.
    pub end_ns: Option<u64>,
}

/// Pairs the nemesis' start and stop events into windows, in start order. A stop pairs with
/// the earliest open start of the same kind.
pub fn fault_windows(events: &[Event]) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    for event in events {
        if !matches!(event.process, Process::Named(_)) {
            continue;
        }
        let Some(time_ns) = event.time_ns else {
            continue;
        };
        // Jepsen's nemesis logs :invoke and :info for each action; the :info marks it done.
        if event.kind == EventType::Invoke {
            continue;
        }
        let (starts, kind) = match event.f.split_once('-') {
            Some(("start", kind)) => (true, kind.to_string()),
            Some(("stop", kind)) => (false, kind.to_string()),
            _ if event.f == "start" => (true, "nemesis".to_string()),
            _ if event.f == "stop" => (false, "nemesis".to_string()),
            _ => continue,
        };
        if starts {
            windows.push(FaultWindow {
                kind,
                target: event.value.clone(),
                start_ns: time_ns,
                end_ns: None,
            });
        } else if let Some(open) = windows
            .iter_mut()
            .find(|window| window.kind == kind && window.end_ns.is_none())
        {
            open.end_ns = Some(time_ns);
        }
    }
    windows
}

/// Counts of completions by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `:ok`.
    pub ok: u64,
    /// `:fail`.
    pub fail: u64,
    /// `:info`.
    pub info: u64,
}

impl Counts {
    fn add(&mut self, kind: EventType) {
        match kind {
            EventType::Ok => self.ok += 1,
            EventType::Fail => self.fail += 1,
            EventType::Info => self.info += 1,
            EventType::Invoke => {}
        }
    }

    /// All completions.
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }

    /// The fraction that got a definite answer (`(ok + fail) / total`: a CAS refused for a
    /// stale version is an answer; a timeout is not), or `None` with no completions.
    pub fn availability(&self) -> Option<f64> {
        (self.total() > 0).then(|| (self.ok + self.fail) as f64 / self.total() as f64)
    }
}

/// A run in numbers.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// All completions.
    pub all: Counts,
    /// By operation function.
    pub by_f: BTreeMap<String, Counts>,
    /// Invocations never completed.
    pub unfinished: u64,
    /// The faults.
    pub faults: Vec<FaultWindow>,
    /// Per second of the run (by completion time): completions by outcome.
    pub seconds: Vec<Counts>,
    /// Per fault with an end: ns from its end to the first `:ok` completion of an operation
    /// invoked after it (`None` if none succeeded afterwards).
    pub recovery_ns: Vec<Option<u64>>,
    /// Latency of `:ok` operations in ns: p50, p99, max.
    pub latency_ok_ns: [u64; 3],
    /// The last event's time, ns.
    pub duration_ns: u64,
}

/// Summarizes a recorded history (events need `:time`; those without are skipped).
pub fn summarize(events: &[Event]) -> Summary {
    let mut summary = Summary {
        faults: fault_windows(events),
        ..Summary::default()
    };
    let mut invoked_at: BTreeMap<u64, u64> = BTreeMap::new();
    let mut latencies = Vec::new();
    // (invocation, completion) times of :ok operations, for recovery times.
    let mut successes: Vec<(u64, u64)> = Vec::new();
    for event in events {
        let Some(time_ns) = event.time_ns else {
            continue;
        };
        summary.duration_ns = summary.duration_ns.max(time_ns);
        let Process::Client(process) = event.process else {
            continue;
        };
        if event.kind == EventType::Invoke {
            invoked_at.insert(process, time_ns);
            continue;
        }
        summary.all.add(event.kind);
        summary
            .by_f
            .entry(event.f.clone())
            .or_default()
            .add(event.kind);
        let second = (time_ns / 1_000_000_000) as usize;
        if summary.seconds.len() <= second {
            summary.seconds.resize(second + 1, Counts::default());
        }
        summary.seconds[second].add(event.kind);
        if let Some(start) = invoked_at.remove(&process) {
            if event.kind == EventType::Ok {
                latencies.push(time_ns.saturating_sub(start));
                successes.push((start, time_ns));
            }
        }
    }
    summary.unfinished = invoked_at.len() as u64;
    latencies.sort_unstable();
    if let Some(&max) = latencies.last() {
        let at =
            |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction).round() as usize];
        summary.latency_ok_ns = [at(0.5), at(0.99), max];
    }
    successes.sort_unstable_by_key(|&(_, done)| done);
    summary.recovery_ns = summary
        .faults
        .iter()
        .filter_map(|fault| fault.end_ns)
        .map(|end| {
            successes
                .iter()
                .find(|&&(start, _)| start >= end)
                .map(|&(_, done)| done - end)
        })
        .collect();
    summary
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl fmt::Display for Summary {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = |counts: &Counts| {
            counts
                .availability()
                .map_or("-".to_string(), |a| format!("{:.1}%", a * 100.0))
        };
        writeln!(
            out,
            "operations: {} completed: {} ok, {} failed, {} indeterminate; {} unfinished; {:.1} s",
            self.all.total(),
            self.all.ok,
            self.all.fail,
            self.all.info,
            self.unfinished,
            self.duration_ns as f64 / 1e9
        )?;
        for (f, counts) in &self.by_f {
            writeln!(
                out,
                "  {f:<10} {:>7} ok {:>7} failed {:>7} indeterminate",
                counts.ok, counts.fail, counts.info
            )?;
        }
        let [p50, p99, max] = self.latency_ok_ns;
        writeln!(
            out,
            "latency of ok operations: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            ms(p50),
            ms(p99),
            ms(max)
        )?;
        writeln!(out, "faults: {}", self.faults.len())?;
        let mut recoveries = self.recovery_ns.iter();
        for fault in &self.faults {
            let end = fault.end_ns.map_or("(not ended)".to_string(), |end| {
                format!("{:.3} s", end as f64 / 1e9)
            });
            let recovery = match fault.end_ns.and(recoveries.next()) {
                Some(Some(ns)) => format!("first success {:.1} ms after the end", ms(*ns)),
                Some(None) => "no success after it".to_string(),
                None => String::new(),
            };
            writeln!(
                out,
                "  {} {} from {:.3} s to {end}; {recovery}",
                fault.kind,
                fault.target,
                fault.start_ns as f64 / 1e9
            )?;
        }
        writeln!(
            out,
            "availability per second (definite answers, ok or fail, / completed; * = a fault during that second):"
        )?;
        for (second, counts) in self.seconds.iter().enumerate() {
            let start = second as u64 * 1_000_000_000;
            let end = start + 1_000_000_000;
            let faulty = self
                .faults
                .iter()
                .any(|fault| fault.start_ns < end && fault.end_ns.is_none_or(|stop| stop > start));
            writeln!(
                out,
                "  {second:>4}s {:>7} {:>7} completed{}",
                percent(counts),
                counts.total(),
                if faulty { " *" } else { "" }
            )?;
        }
        writeln!(out, "overall availability: {}", percent(&self.all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::recorder::{ClientLog, NemesisLog, merge};

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn history() -> Vec<Event> {
        let mut a = ClientLog::new(0, 2);
        let mut b = ClientLog::new(1, 2);
        let mut nemesis = NemesisLog::default();
        // Second 0: two quick successes.
        a.invoke("set", None, Value::Int(1), 100 * MS);
        a.complete(EventType::Ok, Value::Int(1), None, 102 * MS);
        b.invoke("getv", None, Value::Nil, 200 * MS);
        b.complete(EventType::Ok, Value::Nil, None, 210 * MS);
        // A pause from 1.0 s to 2.5 s: one op times out, one CAS fails after it.
        nemesis.start("pause", Value::Str("n1".into()), S);
        a.invoke("set", None, Value::Int(3), S + 100 * MS);
        a.complete(EventType::Info, Value::Nil, None, S + 600 * MS);
        nemesis.stop("pause", Value::Str("n1".into()), 2 * S + 500 * MS);
        b.invoke(
            "cas",
            None,
            Value::Vector(vec![Value::Int(1), Value::Int(4)]),
            2 * S + 400 * MS,
        );
        b.complete(EventType::Fail, Value::Nil, None, 2 * S + 520 * MS);
        // Invoked before the end of the pause: not a recovery. The next one is.
        a.invoke("getv", None, Value::Nil, 2 * S + 450 * MS);
        a.complete(EventType::Ok, Value::Nil, None, 2 * S + 530 * MS);
        b.invoke("getv", None, Value::Nil, 2 * S + 540 * MS);
        b.complete(EventType::Ok, Value::Nil, None, 2 * S + 545 * MS);
        // An invocation the history ends before completing.
        let mut unfinished = Event::new(Process::Client(9), EventType::Invoke, "getv", Value::Nil);
        unfinished.time_ns = Some(3 * S);
        merge(vec![
            a.finish(3 * S + 10),
            b.finish(3 * S + 10),
            nemesis.finish(),
            vec![unfinished],
        ])
    }

    #[test]
    fn counts_availability_faults_and_recovery() {
        let summary = summarize(&history());
        assert_eq!(
            summary.all,
            Counts {
                ok: 4,
                fail: 1,
                info: 1
            }
        );
        assert_eq!(
            summary.by_f["getv"],
            Counts {
                ok: 3,
                fail: 0,
                info: 0
            }
        );
        assert_eq!(summary.unfinished, 1);
        assert_eq!(summary.faults.len(), 1);
        assert_eq!(summary.faults[0].kind, "pause");
        assert_eq!(
            (summary.faults[0].start_ns, summary.faults[0].end_ns),
            (S, Some(2 * S + 500 * MS))
        );
        assert_eq!(
            summary.seconds,
            vec![
                Counts {
                    ok: 2,
                    fail: 0,
                    info: 0
                },
                Counts {
                    ok: 0,
                    fail: 0,
                    info: 1
                },
                Counts {
                    ok: 2,
                    fail: 1,
                    info: 0
                },
            ]
        );
        assert_eq!(summary.recovery_ns, vec![Some(45 * MS)]);
        assert_eq!(summary.latency_ok_ns, [10 * MS, 80 * MS, 80 * MS]);
        let text = summary.to_string();
        assert!(
            text.contains(
                "pause \"n1\" from 1.000 s to 2.500 s; first success 45.0 ms after the end"
            ),
            "{text}"
        );
        assert!(
            text.contains("     1s    0.0%       1 completed *"),
            "{text}"
        );
        assert!(
            text.contains("     2s  100.0%       3 completed *"),
            "a refused CAS is an answer: {text}"
        );
        assert!(
            text.contains("     0s  100.0%       2 completed\n"),
            "{text}"
        );
    }

    #[test]
    fn jepsen_plain_start_stop_and_unended_faults() {
        let mut events = Vec::new();
        for (f, kind, time) in [
            ("start", EventType::Invoke, 1),
            ("start", EventType::Info, 2),
            ("stop", EventType::Info, 9),
            ("start-pause", EventType::Info, 10),
        ] {
            let mut event = Event::new(Process::Named("nemesis".into()), kind, f, Value::Nil);
            event.time_ns = Some(time);
            events.push(event);
        }
        let windows = fault_windows(&events);
        assert_eq!(windows.len(), 2);
        assert_eq!(
            (
                windows[0].kind.as_str(),
                windows[0].start_ns,
                windows[0].end_ns
            ),
            ("nemesis", 2, Some(9))
        );
        assert_eq!(
            (windows[1].kind.as_str(), windows[1].end_ns),
            ("pause", None)
        );
    }
}
