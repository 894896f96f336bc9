//! Seeded simulated histories: concurrent clients over a correct, in-memory object, so the
//! result is linearizable by construction. The benchmark and the tests use them, and
//! [`inject_stale_read`] turns one into a history that certainly is not.
//!
//! Each turn picks a client at random. An idle client invokes an operation; an invoked one
//! makes it take effect on the object (that instant is its linearization point); a client
//! whose operation took effect completes it. A chosen few operations time out instead: they
//! complete `:info`, having taken effect or not (half each), and the client continues under a
//! new process number, as Jepsen's clients do. A CAS that did not match completes `:fail`.
//! In the versioned model a CAS expects the version its client last read, as Piccolo's
//! clients do after a `GETV`.
//! Written values are unique, so every read says which write it saw.

use super::ModelKind;
use super::edn::Value;
use super::history::{Event, EventType, Process};

/// A small, fast, seeded generator (SplitMix64). Not for cryptography.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0)");
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Which object (and so which operations).
    pub model: ModelKind,
    /// Clients running at once.
    pub processes: usize,
    /// Keys (1: no `:key` field, a single object).
    pub keys: usize,
    /// Operations to invoke in all.
    pub operations: usize,
    /// Percentage of operations that time out (`:info`).
    pub info_percent: u32,
    /// The seed.
    pub seed: u64,
}

/// The object of one key.
#[derive(Clone, Debug)]
enum Object {
    Register(Value),
    Kv(String),
    Versioned(Option<(Value, u64)>),
}

#[derive(Clone, Debug)]
struct Pending {
    invoke: Event,
    /// The completion's type and value, once it has taken effect.
    result: Option<(EventType, Value)>,
    times_out: bool,
}

#[derive(Clone, Debug)]
struct Client {
    process: u64,
    pending: Option<Pending>,
    /// Per key, the version this client last learned (versioned model): a CAS expects it,
    /// as Piccolo's clients do after a GETV.
    seen: Vec<Option<u64>>,
}

/// A linearizable history of `config.operations` operations.
pub fn simulate(config: &SimConfig) -> Vec<Event> {
    assert!(
        config.processes > 0 && config.keys > 0,
        "at least one client and one key"
    );
    let mut rng = Rng::new(config.seed);
    let initial = match config.model {
        ModelKind::Register => Object::Register(Value::Nil),
        ModelKind::Kv => Object::Kv(String::new()),
        ModelKind::Versioned => Object::Versioned(None),
    };
    let mut objects = vec![initial; config.keys];
    let mut clients: Vec<Client> = (0..config.processes)
        .map(|i| Client {
            process: i as u64,
            pending: None,
            seen: vec![None; config.keys],
        })
        .collect();
    let mut next_process = config.processes as u64;
    let mut next_value: i64 = 1;
    let mut shard_version: u64 = 0; // Piccolo's versions: one counter for all keys
    let mut events = Vec::with_capacity(config.operations * 2 + 16);
    let mut started = 0usize;
    let mut in_flight = 0usize;
    // Each turn moves one client one step; an operation needs three of its client's turns.
    let max_turns = 64 * (config.operations as u64 + 1) * config.processes as u64;
    let mut turns = 0u64;
    while started < config.operations || in_flight > 0 {
        turns += 1;
        assert!(
            turns <= max_turns,
            "simulation did not finish in {max_turns} turns"
        );
        let slot = rng.below(config.processes as u64) as usize;
        let time_ns = Some(events.len() as u64 * 1_000);
        let client = &mut clients[slot];
        match &mut client.pending {
            None if started < config.operations => {
                let key_index = rng.below(config.keys as u64) as usize;
                let seen = client.seen[key_index];
                let (f, value) = invent(
                    config.model,
                    &objects[key_index],
                    seen,
                    &mut rng,
                    &mut next_value,
                );
                let mut invoke =
                    Event::new(Process::Client(client.process), EventType::Invoke, f, value);
                invoke.key = (config.keys > 1).then(|| Value::Str(format!("k{key_index}")));
                invoke.time_ns = time_ns;
                events.push(invoke.clone());
                let times_out = rng.chance(config.info_percent);
                client.pending = Some(Pending {
                    invoke,
                    result: None,
                    times_out,
                });
                started += 1;
                in_flight += 1;
            }
            None => {}
            Some(pending) if pending.result.is_none() => {
                if pending.times_out && rng.chance(50) {
                    // Times out without ever taking effect.
                    let mut info = pending.invoke.clone();
                    info.kind = EventType::Info;
                    info.error = Some(Value::Keyword("timed-out".into()));
                    info.time_ns = time_ns;
                    events.push(info);
                    client.pending = None;
                    client.process = next_process;
                    next_process += 1;
                    in_flight -= 1;
                    continue;
                }
                let key_index = key_index_of(&pending.invoke);
                let result = apply(&mut objects[key_index], &pending.invoke, &mut shard_version);
                pending.result = Some(result);
            }
            Some(pending) => {
                let (kind, value) = pending.result.clone().expect("taken effect");
                let mut done = pending.invoke.clone();
                done.time_ns = time_ns;
                if pending.times_out {
                    done.kind = EventType::Info;
                    done.error = Some(Value::Keyword("timed-out".into()));
                    client.process = next_process;
                    next_process += 1;
                } else {
                    if let Some(version) = learned_version(&done.f, kind, &value) {
                        client.seen[key_index_of(&done)] = Some(version);
                    }
                    done.kind = kind;
                    done.value = value;
                }
                events.push(done);
                client.pending = None;
                in_flight -= 1;
            }
        }
    }
    events
}

/// The version a versioned-model completion tells its client.
fn learned_version(f: &str, kind: EventType, value: &Value) -> Option<u64> {
    if kind != EventType::Ok {
        return None;
    }
    let version = match (f, value.as_seq()?) {
        ("getv", [_, version]) | ("cas", [_, _, version]) => version.as_int()?,
        _ => return None,
    };
    u64::try_from(version).ok()
}

fn key_index_of(event: &Event) -> usize {
    match &event.key {
        Some(Value::Str(name)) => name[1..].parse().expect("keys are k<number>"),
        _ => 0,
    }
}

/// A fresh operation against `object`: its function and invocation value.
fn invent(
    model: ModelKind,
    object: &Object,
    seen: Option<u64>,
    rng: &mut Rng,
    next_value: &mut i64,
) -> (&'static str, Value) {
    let written_so_far = *next_value;
    let mut fresh = || {
        let value = *next_value;
        *next_value += 1;
        value
    };
    let roll = rng.below(100);
    match (model, object) {
        (ModelKind::Register, Object::Register(current)) => match roll {
            0..50 => ("read", Value::Nil),
            50..80 => ("write", Value::Int(fresh())),
            _ => {
                // Usually the value the client would have just read; sometimes an old one.
                let from = if rng.chance(70) || written_so_far <= 1 {
                    current.clone()
                } else {
                    Value::Int(rng.below(written_so_far as u64) as i64)
                };
                ("cas", Value::Vector(vec![from, Value::Int(fresh())]))
            }
        },
        (ModelKind::Kv, Object::Kv(_)) => match roll {
            0..50 => ("get", Value::Nil),
            50..70 => ("put", Value::Str(format!("p{};", fresh()))),
            _ => ("append", Value::Str(format!("a{};", fresh()))),
        },
        (ModelKind::Versioned, Object::Versioned(current)) => match roll {
            0..50 => ("getv", Value::Nil),
            50..75 => ("set", Value::Int(fresh())),
            _ => {
                // The version this client last read; before it read any, the current one.
                let expected =
                    seen.unwrap_or_else(|| current.as_ref().map_or(1, |(_, version)| *version));
                (
                    "cas",
                    Value::Vector(vec![Value::Int(expected as i64), Value::Int(fresh())]),
                )
            }
        },
        _ => unreachable!("objects match their model"),
    }
}

/// Lets `invoke` take effect on `object`; returns the completion's type and value.
fn apply(object: &mut Object, invoke: &Event, shard_version: &mut u64) -> (EventType, Value) {
    let ok = |value: Value| (EventType::Ok, value);
    match (object, invoke.f.as_str()) {
        (Object::Register(current), "read") => ok(current.clone()),
        (Object::Register(current), "write") => {
            *current = invoke.value.clone();
            ok(invoke.value.clone())
        }
        (Object::Register(current), "cas") => {
            let [from, to] = invoke.value.as_seq().expect("cas [from to]") else {
                unreachable!("cas values are pairs")
            };
            if current == from {
                *current = to.clone();
                ok(invoke.value.clone())
            } else {
                (EventType::Fail, invoke.value.clone())
            }
        }
        (Object::Kv(current), "get") => ok(Value::Str(current.clone())),
        (Object::Kv(current), "put") => {
            let Value::Str(text) = &invoke.value else {
                unreachable!("put strings")
            };
            current.clone_from(text);
            ok(invoke.value.clone())
        }
        (Object::Kv(current), "append") => {
            let Value::Str(text) = &invoke.value else {
                unreachable!("append strings")
            };
            current.push_str(text);
            ok(invoke.value.clone())
        }
        (Object::Versioned(current), "getv") => match current {
            Some((value, version)) => ok(Value::Vector(vec![
                value.clone(),
                Value::Int(*version as i64),
            ])),
            None => ok(Value::Nil),
        },
        (Object::Versioned(current), "set") => {
            *shard_version += 1;
            *current = Some((invoke.value.clone(), *shard_version));
            ok(invoke.value.clone())
        }
        (Object::Versioned(current), "cas") => {
            let [expected, value] = invoke.value.as_seq().expect("cas [version value]") else {
                unreachable!("cas values are pairs")
            };
            let expected = expected.as_int().expect("integer version") as u64;
            match current {
                Some((_, version)) if *version == expected => {
                    *shard_version += 1;
                    *current = Some((value.clone(), *shard_version));
                    let new = Value::Int(*shard_version as i64);
                    ok(Value::Vector(vec![
                        Value::Int(expected as i64),
                        value.clone(),
                        new,
                    ]))
                }
                _ => (EventType::Fail, invoke.value.clone()),
            }
        }
        (_, f) => unreachable!("no simulated {f}"),
    }
}

/// Inserts, near `fraction` (0.0..=1.0) of the way through `events`, a read that returns the
/// value of a write that an earlier, completed write had already replaced: a stale read no
/// order can explain (values are unique, so nothing wrote that value again). Returns the
/// position of the inserted invocation, or `None` if no such pair of writes precedes it.
pub fn inject_stale_read(
    events: &mut Vec<Event>,
    model: ModelKind,
    fraction: f64,
) -> Option<usize> {
    let at = ((events.len() as f64 * fraction) as usize).min(events.len());
    // Writes that completed :ok before `at`, per key, in completion order: (value, version).
    let mut invoked_at: std::collections::HashMap<u64, usize> = Default::default();
    let mut completed: std::collections::BTreeMap<Option<Value>, Vec<(usize, usize, Value)>> =
        Default::default();
    for (position, event) in events[..at].iter().enumerate() {
        let Process::Client(process) = event.process else {
            continue;
        };
        match event.kind {
            EventType::Invoke => {
                invoked_at.insert(process, position);
            }
            EventType::Ok if matches!(event.f.as_str(), "write" | "put" | "set") => {
                let start = invoked_at[&process];
                completed.entry(event.key.clone()).or_default().push((
                    start,
                    position,
                    event.value.clone(),
                ));
            }
            _ => {}
        }
    }
    // A write W1, then a write W2 invoked after W1 completed: reading W1's value at `at` is stale.
    let (key, stale) = completed.iter().find_map(|(key, writes)| {
        writes.iter().find_map(|(_, first_done, value)| {
            writes
                .iter()
                .any(|(second_start, _, _)| second_start > first_done)
                .then(|| (key.clone(), value.clone()))
        })
    })?;
    let (f, output) = match model {
        ModelKind::Register => ("read", stale),
        ModelKind::Kv => ("get", stale),
        ModelKind::Versioned => ("getv", Value::Vector(vec![stale, Value::Int(1)])),
    };
    let process = events
        .iter()
        .filter_map(|event| match event.process {
            Process::Client(number) => Some(number),
            Process::Named(_) => None,
        })
        .max()
        .map_or(0, |max| max + 1);
    let time_ns = events[..at].last().and_then(|event| event.time_ns);
    let mut invoke = Event::new(Process::Client(process), EventType::Invoke, f, Value::Nil);
    invoke.key = key;
    invoke.time_ns = time_ns;
    let mut done = invoke.clone();
    done.kind = EventType::Ok;
    done.value = output;
    events.insert(at, done);
    events.insert(at, invoke);
    Some(at)
}
