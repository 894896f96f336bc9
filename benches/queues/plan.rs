//! The plan: which scenarios run which queues at what scale, and the interleaved rounds that
//! run them.

use std::time::{Duration, Instant};

use crate::item::{Item, Wide};
use crate::machine::{Clock, Pinning};
use crate::queue::{Batched, Cached, Crossbeam, Lamport, Mutex, Queue, Rtrb, StdSync};
use crate::runs::{
    Measurement, ThroughputSetup, WakeSetup, round_trip, throughput, wake_up_parker,
    wake_up_std_recv,
};

pub type RunFn = Box<dyn Fn(bool) -> Measurement>;

pub struct Contender {
    pub queue: &'static str,
    run: RunFn,
}

pub struct Scenario {
    /// Stable identifier (JSON key).
    pub key: String,
    /// Column heading.
    pub title: String,
    pub contenders: Vec<Contender>,
}

/// Items per throughput run for a fast queue at large capacity; everything else scales down.
pub const ITEMS_FULL: u64 = 16_000_000;
/// Batch size of the batch scenarios (clamped to the capacity).
pub const BATCH: usize = 32;

pub struct Scale {
    pub items: u64,
    pub round_trips: u64,
    pub wake: WakeSetup,
}

impl Scale {
    pub fn new(quick: bool) -> Self {
        let gap = Duration::from_micros(200);
        if quick {
            Scale {
                items: ITEMS_FULL / 100,
                round_trips: 5_000,
                wake: WakeSetup { wake_ups: 50, gap },
            }
        } else {
            Scale {
                items: ITEMS_FULL,
                round_trips: 200_000,
                wake: WakeSetup {
                    wake_ups: 2_000,
                    gap,
                },
            }
        }
    }

    /// Items for queue `Q` at `capacity` with `item_bytes`-byte items.
    pub fn items_for<Q: Queue>(&self, capacity: usize, item_bytes: usize) -> u64 {
        let mut items = self.items;
        if capacity <= 2 {
            // Every item costs a cache-line round trip at capacity 2.
            items /= 8;
        }
        if item_bytes > 8 {
            items /= 2;
        }
        if Q::SLOW {
            items /= 4;
        }
        items
    }
}

pub fn throughput_contender<Q: Queue, T: Item>(
    capacity: usize,
    batch: usize,
    scale: &Scale,
    pinning: Pinning,
) -> Contender {
    let setup = ThroughputSetup {
        capacity,
        batch,
        items: scale.items_for::<Q>(capacity, size_of::<T>()),
    };
    Contender {
        queue: Q::NAME,
        run: Box::new(move |first| throughput::<Q, T>(setup, pinning, first)),
    }
}

/// The seven queues of the throughput and round-trip scenarios, in table order.
///
/// `for_each_queue!(f::<_, T>(args))` calls `f::<Q, T>(args)` for each queue `Q`.
macro_rules! for_each_queue {
    ($make:ident ::<_ $(, $extra:ty)*> ( $($arg:expr),* )) => {
        vec![
            $make::<Lamport $(, $extra)*>($($arg),*),
            $make::<Cached $(, $extra)*>($($arg),*),
            $make::<Batched $(, $extra)*>($($arg),*),
            $make::<Mutex $(, $extra)*>($($arg),*),
            $make::<Rtrb $(, $extra)*>($($arg),*),
            $make::<Crossbeam $(, $extra)*>($($arg),*),
            $make::<StdSync $(, $extra)*>($($arg),*),
        ]
    };
}

pub fn batch_notes() -> Vec<(&'static str, &'static str)> {
    fn note<Q: Queue>() -> (&'static str, &'static str) {
        (Q::NAME, Q::BATCH_NOTE)
    }
    for_each_queue!(note::<_>())
}

pub fn throughput_scenario<T: Item + Contenders>(
    capacity: usize,
    batch: usize,
    scale: &Scale,
    pinning: Pinning,
) -> Scenario {
    let batch = batch.min(capacity);
    let contenders = T::contenders(capacity, batch, scale, pinning);
    let mode = if batch == 1 {
        "x1".to_string()
    } else {
        format!("x{batch}")
    };
    Scenario {
        key: format!(
            "throughput/{}/cap{capacity}/batch{batch}",
            T::LABEL.replace(' ', "")
        ),
        title: format!("{} cap {capacity} {mode}", T::LABEL),
        contenders,
    }
}

/// The throughput contenders for items of type `T`, one per queue.
pub trait Contenders {
    fn contenders(capacity: usize, batch: usize, scale: &Scale, pinning: Pinning)
    -> Vec<Contender>;
}

impl<T: Item> Contenders for T {
    fn contenders(
        capacity: usize,
        batch: usize,
        scale: &Scale,
        pinning: Pinning,
    ) -> Vec<Contender> {
        for_each_queue!(throughput_contender::<_, T>(
            capacity, batch, scale, pinning
        ))
    }
}

pub fn round_trip_contender<Q: Queue>(scale: &Scale, clock: Clock, pinning: Pinning) -> Contender {
    let round_trips = scale.round_trips;
    Contender {
        queue: Q::NAME,
        run: Box::new(move |first| round_trip::<Q>(round_trips, clock, pinning, first)),
    }
}

pub fn wake_up_contender<Q: Queue>(scale: &Scale, pinning: Pinning) -> Contender {
    let setup = scale.wake;
    Contender {
        queue: Q::NAME,
        run: Box::new(move |first| wake_up_parker::<Q>(setup, pinning, first)),
    }
}

/// Name of the extra wake-up contender.
pub const STD_RECV: &str = "std-mpsc recv()";

pub fn plan(scale: &Scale, clock: Clock, pinning: Pinning) -> Vec<Scenario> {
    let mut scenarios = Vec::new();
    for capacity in [2, 1024, 65536] {
        for batch in [1, BATCH] {
            scenarios.push(throughput_scenario::<u64>(capacity, batch, scale, pinning));
        }
    }
    scenarios.push(throughput_scenario::<Wide>(1024, 1, scale, pinning));
    scenarios.push(Scenario {
        key: "round_trip/u64/cap1024".to_string(),
        title: "round trip".to_string(),
        contenders: for_each_queue!(round_trip_contender::<_>(scale, clock, pinning)),
    });
    let mut wake_ups = for_each_queue!(wake_up_contender::<_>(scale, pinning));
    let setup = scale.wake;
    wake_ups.push(Contender {
        queue: STD_RECV,
        run: Box::new(move |first| wake_up_std_recv(setup, pinning, first)),
    });
    scenarios.push(Scenario {
        key: "wake_up/parked".to_string(),
        title: "wake-up".to_string(),
        contenders: wake_ups,
    });
    scenarios
}

/// All runs of one (scenario, queue) pair, in round order.
pub type Runs = Vec<Measurement>;

pub fn run_rounds(scenarios: &[Scenario], runs: usize) -> Vec<Vec<Runs>> {
    let mut results: Vec<Vec<Runs>> = scenarios
        .iter()
        .map(|scenario| scenario.contenders.iter().map(|_| Vec::new()).collect())
        .collect();
    for round in 0..runs {
        let round_started = Instant::now();
        for (scenario, scenario_results) in scenarios.iter().zip(&mut results) {
            let count = scenario.contenders.len();
            for offset in 0..count {
                let index = (round + offset) % count;
                let measurement = (scenario.contenders[index].run)(round == 0);
                scenario_results[index].push(measurement);
            }
        }
        eprintln!(
            "round {}/{runs} done in {:.1} s",
            round + 1,
            round_started.elapsed().as_secs_f64()
        );
    }
    results
}
