//! The machine the bench runs on: which cores the threads are pinned to, the clock that times
//! round trips, and the description printed with the figures.

use std::thread;
use std::time::{Duration, Instant};

/// Which cores the two sides of every run are pinned to, if any.
#[derive(Clone, Copy)]
pub struct Pinning {
    pub cores: Option<(core_affinity::CoreId, core_affinity::CoreId)>,
}

impl Pinning {
    pub fn detect() -> Self {
        let cores = core_affinity::get_core_ids()
            .filter(|ids| ids.len() >= 2)
            .map(|ids| (ids[0], ids[1]));
        Self { cores }
    }

    pub fn describe(&self) -> String {
        match self.cores {
            Some((a, b)) => format!(
                "yes (producer/pinger on core {}, consumer/echo on core {})",
                a.id, b.id
            ),
            None => "no (fewer than 2 cores reported); threads float".to_string(),
        }
    }

    pub fn pin_first(&self) {
        if let Some((core, _)) = self.cores {
            assert!(
                core_affinity::set_for_current(core),
                "pinning to core {} failed",
                core.id
            );
        }
    }

    pub fn pin_second(&self) {
        if let Some((_, core)) = self.cores {
            assert!(
                core_affinity::set_for_current(core),
                "pinning to core {} failed",
                core.id
            );
        }
    }
}

/// A cheap clock for per-round-trip timing: the TSC on x86_64 when the CPU says it ticks at a
/// constant rate, calibrated against `Instant`; `Instant` itself elsewhere.
#[derive(Clone, Copy)]
pub struct Clock {
    use_tsc: bool,
    ticks_per_ns: f64,
    epoch: Instant,
}

impl Clock {
    pub fn new() -> Self {
        let epoch = Instant::now();
        let constant_tsc = cfg!(target_arch = "x86_64")
            && std::fs::read_to_string("/proc/cpuinfo")
                .map(|info| info.contains("constant_tsc") && info.contains("nonstop_tsc"))
                .unwrap_or(false);
        if !constant_tsc {
            return Self {
                use_tsc: false,
                ticks_per_ns: 1.0,
                epoch,
            };
        }
        let probe = Self {
            use_tsc: true,
            ticks_per_ns: 1.0,
            epoch,
        };
        let start_ticks = probe.ticks();
        let start = Instant::now();
        thread::sleep(Duration::from_millis(50));
        let ticks = probe.ticks() - start_ticks;
        let ns = start.elapsed().as_nanos() as f64;
        Self {
            use_tsc: true,
            ticks_per_ns: ticks as f64 / ns,
            epoch,
        }
    }

    #[inline(always)]
    pub fn ticks(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.use_tsc {
            // SAFETY: `rdtsc` exists on every x86_64 CPU and has no memory effects.
            return unsafe { core::arch::x86_64::_rdtsc() };
        }
        self.epoch.elapsed().as_nanos() as u64
    }

    pub fn ticks_to_ns(&self, ticks: u64) -> f64 {
        ticks as f64 / self.ticks_per_ns
    }

    pub fn describe(&self) -> String {
        if self.use_tsc {
            format!(
                "rdtsc ({:.3} GHz, calibrated against Instant)",
                self.ticks_per_ns
            )
        } else {
            "std::time::Instant".to_string()
        }
    }
}

pub fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
}

pub fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

pub fn machine_description() -> Vec<(&'static str, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let cores = thread::available_parallelism().map_or("unknown".to_string(), |n| n.to_string());
    let kernel =
        read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc = command_output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".to_string());
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
        .unwrap_or_else(|| "unknown".to_string());
    vec![
        ("CPU", cpu),
        ("cores", cores),
        ("kernel", kernel),
        ("rustc", rustc),
        ("date", date),
    ]
}

pub fn load_average() -> String {
    read_trimmed("/proc/loadavg")
        .map(|load| {
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_string())
}
