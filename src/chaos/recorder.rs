//! Recording a history from concurrent client threads.
//!
//! Each client thread owns a [`ClientLog`] (no locks, no sharing): it says when an operation
//! starts ([`ClientLog::invoke`]) and how it ended ([`ClientLog::complete`]), with times the
//! caller reads from one monotonic clock. [`merge`] then interleaves the logs by time. Times
//! enter as numbers, so this module stays pure and its tests need no clock.
//!
//! What the checker needs from a recording, and where it is made sure of:
//!
//! - Real-time order: an invocation's time is read before the request is sent and a
//!   completion's after the reply arrived, so if A completed before B was invoked, A's time is
//!   smaller. At equal times [`merge`] puts invocations first, which makes the two operations
//!   overlap: the permissive reading, so clock granularity can hide a bug but never invent one.
//! - One operation in flight per process, and a new process number after an `:info` (Jepsen's
//!   rule: the old connection may still deliver that operation's effect later). Client `c` of
//!   `n` uses processes `c, c + n, c + 2n, ...`, so numbers never collide.
//! - Unique written values ([`ClientLog::unique_value`]): client `c` of `n` hands out
//!   `c + 1, c + 1 + n, ...`, so a read says exactly which write it saw.

use crate::check::{Event, EventType, Process, Value};

/// One client's part of the history.
#[derive(Debug)]
pub struct ClientLog {
    clients: u64,
    process: u64,
    next_value: u64,
    events: Vec<Event>,
    in_flight: Option<usize>,
    last_time_ns: u64,
}

impl ClientLog {
    /// The log of client `client` (0-based) of `clients`.
    pub fn new(client: usize, clients: usize) -> ClientLog {
        assert!(client < clients, "client {client} of {clients}");
        ClientLog {
            clients: clients as u64,
            process: client as u64,
            next_value: client as u64 + 1,
            events: Vec::new(),
            in_flight: None,
            last_time_ns: 0,
        }
    }

    /// The process number the next invocation will carry.
    pub fn process(&self) -> u64 {
        self.process
    }

    /// A value no other client's log hands out, and this one never again.
    pub fn unique_value(&mut self) -> i64 {
        let value = self.next_value;
        self.next_value += self.clients;
        i64::try_from(value).expect("fewer than 2^63 values")
    }

    /// Whether an operation is in flight.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Records the start of an operation at `time_ns`. An invocation is recorded at least 1 ns
    /// after this client's previous event, so that it sorts after that event's completion
    /// (it did start after it).
    pub fn invoke(&mut self, f: &str, key: Option<Value>, value: Value, time_ns: u64) {
        assert!(
            self.in_flight.is_none(),
            "one operation in flight per client"
        );
        let time_ns = time_ns.max(self.last_time_ns + u64::from(!self.events.is_empty()));
        let mut event = Event::new(Process::Client(self.process), EventType::Invoke, f, value);
        event.key = key;
        event.time_ns = Some(time_ns);
        self.last_time_ns = time_ns;
        self.in_flight = Some(self.events.len());
        self.events.push(event);
    }

    /// Records how the operation in flight ended: `Ok` with its result, `Fail` (it certainly
    /// did not happen) or `Info` (unknown; the client continues as a new process). For
    /// `Fail` and `Info` the invocation's value is recorded, as Jepsen does.
    pub fn complete(&mut self, kind: EventType, result: Value, error: Option<Value>, time_ns: u64) {
        assert_ne!(kind, EventType::Invoke, "complete with ok, fail or info");
        let at = self.in_flight.take().expect("an operation in flight");
        let mut event = self.events[at].clone();
        event.kind = kind;
        if kind == EventType::Ok {
            event.value = result;
        }
        event.error = error;
        event.time_ns = Some(time_ns.max(self.last_time_ns));
        self.last_time_ns = event.time_ns.expect("just set");
        self.events.push(event);
        if kind == EventType::Info {
            self.process += self.clients;
        }
    }

    /// The events, the operation still in flight (if any) completed `:info` at `time_ns` with
    /// `:error :run-ended`: the run stopped waiting for it.
    pub fn finish(mut self, time_ns: u64) -> Vec<Event> {
        if self.in_flight.is_some() {
            self.complete(
                EventType::Info,
                Value::Nil,
                Some(Value::Keyword("run-ended".into())),
                time_ns,
            );
        }
        self.events
    }
}

/// The nemesis' part of the history: fault windows as `:start-KIND` / `:stop-KIND` events of
/// process `:nemesis`, which [`crate::chaos::summary::fault_windows`] pairs up again.
#[derive(Debug, Default)]
pub struct NemesisLog {
    events: Vec<Event>,
}

impl NemesisLog {
    /// A fault of `kind` (`pause`) on `target` starts at `time_ns`.
    pub fn start(&mut self, kind: &str, target: Value, time_ns: u64) {
        self.push(&format!("start-{kind}"), target, time_ns);
    }

    /// It ends at `time_ns`.
    pub fn stop(&mut self, kind: &str, target: Value, time_ns: u64) {
        self.push(&format!("stop-{kind}"), target, time_ns);
    }

    fn push(&mut self, f: &str, target: Value, time_ns: u64) {
        let mut event = Event::new(Process::Named("nemesis".into()), EventType::Info, f, target);
        event.time_ns = Some(time_ns);
        self.events.push(event);
    }

    /// The events.
    pub fn finish(self) -> Vec<Event> {
        self.events
    }
}

/// Interleaves logs by time into one history: at equal times invocations first, then nemesis
/// events, then completions; otherwise each log keeps its order.
pub fn merge(logs: Vec<Vec<Event>>) -> Vec<Event> {
    let mut all: Vec<Event> = logs.into_iter().flatten().collect();
    let rank = |event: &Event| match (&event.process, event.kind) {
        (Process::Client(_), EventType::Invoke) => 0,
        (Process::Named(_), _) => 1,
        _ => 2,
    };
    // Stable: events of one log with equal keys keep their order.
    all.sort_by_key(|event| (event.time_ns.unwrap_or(0), rank(event)));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::{PairOptions, pair};

    #[test]
    fn values_are_unique_across_clients_and_processes_are_renumbered() {
        let mut logs: Vec<ClientLog> = (0..3).map(|client| ClientLog::new(client, 3)).collect();
        let mut values = std::collections::HashSet::new();
        for log in &mut logs {
            for _ in 0..100 {
                assert!(values.insert(log.unique_value()), "a repeated value");
            }
        }
        let log = &mut logs[1];
        assert_eq!(log.process(), 1);
        log.invoke("set", None, Value::Int(5), 10);
        log.complete(
            EventType::Info,
            Value::Nil,
            Some(Value::Keyword("timeout".into())),
            20,
        );
        assert_eq!(log.process(), 4, "after :info the client is a new process");
        log.invoke("set", None, Value::Int(6), 30);
        log.complete(EventType::Ok, Value::Int(6), None, 40);
        assert_eq!(log.process(), 4);
    }

    #[test]
    fn merge_orders_by_time_and_pairs_cleanly() {
        let mut a = ClientLog::new(0, 2);
        let mut b = ClientLog::new(1, 2);
        let mut nemesis = NemesisLog::default();
        a.invoke("getv", None, Value::Nil, 100);
        b.invoke("set", None, Value::Int(2), 150);
        // Equal times: b's completion and a's next invocation... a completes at 200, b at 200.
        a.complete(EventType::Ok, Value::Nil, None, 200);
        nemesis.start("pause", Value::Str("n1".into()), 200);
        b.complete(EventType::Ok, Value::Int(2), None, 200);
        // Same nanosecond as its own completion: recorded 1 ns later.
        a.invoke("getv", None, Value::Nil, 200);
        nemesis.stop("pause", Value::Str("n1".into()), 300);
        let history = merge(vec![a.finish(400), b.finish(400), nemesis.finish()]);
        let order: Vec<(u64, &str, EventType)> = history
            .iter()
            .map(|event| (event.time_ns.unwrap(), event.f.as_str(), event.kind))
            .collect();
        assert_eq!(
            order,
            vec![
                (100, "getv", EventType::Invoke),
                (150, "set", EventType::Invoke),
                (200, "start-pause", EventType::Info),
                (200, "getv", EventType::Ok),
                (200, "set", EventType::Ok),
                (201, "getv", EventType::Invoke),
                (300, "stop-pause", EventType::Info),
                (400, "getv", EventType::Info),
            ]
        );
        assert_eq!(history[7].error, Some(Value::Keyword("run-ended".into())));
        let paired = pair(&history, PairOptions::default()).expect("a recording pairs");
        assert_eq!(paired.operations.len(), 3);
        assert_eq!(paired.indeterminate, 1);
        assert_eq!(paired.other_events, 2);
    }

    #[test]
    #[should_panic(expected = "one operation in flight")]
    fn two_invocations_in_flight_are_a_harness_bug() {
        let mut log = ClientLog::new(0, 1);
        log.invoke("getv", None, Value::Nil, 1);
        log.invoke("getv", None, Value::Nil, 2);
    }
}
