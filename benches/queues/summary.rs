//! From runs to figures: the median of each (scenario, queue) pair, paired ratios within a
//! round, and the targets the report checks.

use std::collections::BTreeMap;

use crate::plan::Runs;
use crate::runs::Measurement;

pub fn median(mut values: Vec<f64>) -> f64 {
    assert!(!values.is_empty());
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Median figures of one (scenario, queue) pair.
#[derive(Clone, Copy, Debug)]
pub enum Summary {
    Throughput {
        mops: f64,
        min: f64,
        max: f64,
    },
    Latency {
        p50_ns: f64,
        p99_ns: f64,
        unparked: usize,
    },
}

pub fn summarise(runs: &Runs) -> Summary {
    match runs[0] {
        Measurement::Throughput { .. } => {
            let mops: Vec<f64> = runs
                .iter()
                .map(|run| match run {
                    Measurement::Throughput { mops, .. } => *mops,
                    Measurement::Latency { .. } => unreachable!("mixed measurements"),
                })
                .collect();
            let min = mops.iter().copied().fold(f64::INFINITY, f64::min);
            let max = mops.iter().copied().fold(0.0, f64::max);
            Summary::Throughput {
                mops: median(mops),
                min,
                max,
            }
        }
        Measurement::Latency { .. } => {
            let mut p50 = Vec::new();
            let mut p99 = Vec::new();
            let mut unparked = 0;
            for run in runs {
                if let Measurement::Latency {
                    p50_ns,
                    p99_ns,
                    unparked: u,
                    ..
                } = run
                {
                    p50.push(*p50_ns);
                    p99.push(*p99_ns);
                    unparked += u;
                }
            }
            Summary::Latency {
                p50_ns: median(p50),
                p99_ns: median(p99),
                unparked,
            }
        }
    }
}

/// Every figure the reports need, by scenario key, then queue name.
#[derive(Default)]
pub struct Table {
    /// Medians over the runs.
    pub summaries: BTreeMap<String, BTreeMap<&'static str, Summary>>,
    /// The headline figure of each run (Mops/s, or p50 ns for latencies), in round order, for
    /// ratios paired within a round.
    pub per_run: BTreeMap<String, BTreeMap<&'static str, Vec<f64>>>,
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&BTreeMap<&'static str, Summary>> {
        self.summaries.get(key)
    }

    /// Median over the rounds of `a / b`, each ratio taken within one round.
    pub fn paired_ratio(&self, key_a: &str, a: &str, key_b: &str, b: &str) -> Option<f64> {
        let runs_a = self.per_run.get(key_a)?.get(a)?;
        let runs_b = self.per_run.get(key_b)?.get(b)?;
        let ratios: Vec<f64> = runs_a.iter().zip(runs_b).map(|(a, b)| a / b).collect();
        (!ratios.is_empty()).then(|| median(ratios))
    }
}

pub fn headline(measurement: &Measurement) -> f64 {
    match measurement {
        Measurement::Throughput { mops, .. } => *mops,
        Measurement::Latency { p50_ns, .. } => *p50_ns,
    }
}

pub fn mops(table: &Table, key: &str, queue: &str) -> Option<f64> {
    match table.get(key)?.get(queue)? {
        Summary::Throughput { mops, .. } => Some(*mops),
        Summary::Latency { .. } => None,
    }
}

pub fn p50(table: &Table, key: &str, queue: &str) -> Option<f64> {
    match table.get(key)?.get(queue)? {
        Summary::Latency { p50_ns, .. } => Some(*p50_ns),
        Summary::Throughput { .. } => None,
    }
}

pub const KEY_SINGLE: &str = "throughput/u64/cap1024/batch1";
pub const KEY_BATCH: &str = "throughput/u64/cap1024/batch32";
pub const KEY_ROUND_TRIP: &str = "round_trip/u64/cap1024";
pub const KEY_WAKE: &str = "wake_up/parked";

pub fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or("n/a".to_string(), |ratio| format!("{ratio:.2}x"))
}

pub struct Target {
    pub what: &'static str,
    /// Median over the rounds of the ratio within each round: the verdict's basis, because
    /// both sides of a paired ratio ran minutes apart at most and usually under the same
    /// conditions (on a VM the two vCPUs' placement can change between rounds).
    pub ratio: Option<f64>,
    /// Ratio of the two medians, for comparison with the tables.
    pub ratio_of_medians: Option<f64>,
    /// True if the target is "at least", false if "at most".
    pub at_least: bool,
    pub bound: f64,
}

impl Target {
    pub fn verdict(&self) -> &'static str {
        match self.ratio {
            None => "n/a",
            Some(ratio)
                if (self.at_least && ratio >= self.bound)
                    || (!self.at_least && ratio <= self.bound) =>
            {
                "PASS"
            }
            Some(_) => "MISS",
        }
    }

    /// One line of the text report.
    pub fn line(&self) -> String {
        let relation = if self.at_least { ">=" } else { "<=" };
        format!(
            "{:<48} {:>7}  (of medians {:>7})  target {relation} {:.1}x  {}",
            self.what,
            format_ratio(self.ratio),
            format_ratio(self.ratio_of_medians),
            self.bound,
            self.verdict()
        )
    }
}

pub fn targets(table: &Table) -> Vec<Target> {
    let medians = |key_a: &str, a: &str, key_b: &str, b: &str| {
        let figure =
            |key: &str, queue: &str| mops(table, key, queue).or_else(|| p50(table, key, queue));
        Some(figure(key_a, a)? / figure(key_b, b)?)
    };
    let target = |what, (key_a, a), (key_b, b), at_least, bound| Target {
        what,
        ratio: table.paired_ratio(key_a, a, key_b, b),
        ratio_of_medians: medians(key_a, a, key_b, b),
        at_least,
        bound,
    };
    vec![
        target(
            "cached throughput / rtrb (x1)",
            (KEY_SINGLE, "cached"),
            (KEY_SINGLE, "rtrb"),
            true,
            1.0,
        ),
        target(
            "cached round trip p50 / rtrb",
            (KEY_ROUND_TRIP, "cached"),
            (KEY_ROUND_TRIP, "rtrb"),
            false,
            1.1,
        ),
        target(
            "batched x32 throughput / rtrb x1",
            (KEY_BATCH, "batched"),
            (KEY_SINGLE, "rtrb"),
            true,
            2.0,
        ),
        target(
            "cached throughput / crossbeam (x1)",
            (KEY_SINGLE, "cached"),
            (KEY_SINGLE, "crossbeam"),
            true,
            3.0,
        ),
        target(
            "batched x32 throughput / crossbeam x32 (loop)",
            (KEY_BATCH, "batched"),
            (KEY_BATCH, "crossbeam"),
            true,
            3.0,
        ),
        target(
            "batched x32 throughput / crossbeam x1",
            (KEY_BATCH, "batched"),
            (KEY_SINGLE, "crossbeam"),
            true,
            3.0,
        ),
    ]
}
