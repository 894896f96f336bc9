//! Histories: the events a test records, Jepsen's two text forms of them, and the pairing of
//! each invocation with its completion into an [`Operation`].
//!
//! An event is one line: a client process invoking an operation (`:invoke`) or learning how it
//! ended (`:ok` it happened, `:fail` it did not, `:info` nobody knows). The file's order is the
//! real-time order, so the checker uses positions, not clocks: operation A precedes B when A's
//! completion line comes before B's invocation line.
//!
//! Two forms are read:
//!
//! - EDN op maps, one per line: `{:process 0, :type :invoke, :f :write, :value 3}`, with `:key`
//!   for the key-value model and optional `:time` (ns), `:index` and `:error`.
//! - `jepsen.util` log lines: `INFO  jepsen.util - 0<TAB>:invoke<TAB>:read<TAB>nil`, tab-separated
//!   process, type, f, value (and sometimes an error); other log lines are skipped.
//!
//! Jepsen's conventions are kept: a `:fail` operation did not happen and gives the checker no
//! information (it is dropped); an `:info` completion means the outcome is unknown, its value is
//! the invocation's (the completion may say `:timed-out`), and the process never invokes again
//! (Jepsen gives the client a new process number). An invocation without a completion at the
//! end of the history is treated as `:info`. Events of non-numeric processes (`:nemesis`) are
//! not operations; [`fault_windows`](crate::chaos::summary::fault_windows) uses them.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use super::edn::{self, Value};

/// Who issued an event: a client process number, or a named actor such as `:nemesis`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Process {
    /// A client process.
    Client(u64),
    /// Anything else (`:nemesis`), kept by name.
    Named(String),
}

/// The `:type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The operation starts.
    Invoke,
    /// It happened; the value is its result.
    Ok,
    /// It did not happen.
    Fail,
    /// Nobody knows whether it happened.
    Info,
}

impl EventType {
    /// The keyword's name.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    fn from_name(name: &str) -> Option<EventType> {
        Some(match name {
            "invoke" => EventType::Invoke,
            "ok" => EventType::Ok,
            "fail" => EventType::Fail,
            "info" => EventType::Info,
            _ => return None,
        })
    }
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Who.
    pub process: Process,
    /// Invoke, ok, fail or info.
    pub kind: EventType,
    /// The operation's function (`write`, `cas`, ...), without the colon.
    pub f: String,
    /// The key, for histories over several keys (`:key`).
    pub key: Option<Value>,
    /// `:value`: the argument on invocations, the result on `:ok` completions.
    pub value: Value,
    /// `:time` in nanoseconds since the test started, when recorded.
    pub time_ns: Option<u64>,
    /// `:error`, when present.
    pub error: Option<Value>,
    /// The 1-based line in the file it came from (0 when built in memory).
    pub line: usize,
}

impl Event {
    /// An event with no key, time, error or line.
    pub fn new(process: Process, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            process,
            kind,
            f: f.to_string(),
            key: None,
            value,
            time_ns: None,
            error: None,
            line: 0,
        }
    }
}

/// Why a history could not be read or paired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The 1-based line (0 when the problem is not on one line).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(out, "{}", self.message)
        } else {
            write!(out, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ReadError {}

fn read_error(line: usize, message: impl Into<String>) -> ReadError {
    ReadError {
        line,
        message: message.into(),
    }
}

/// The text forms [`read`] understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One EDN op map per line.
    Edn,
    /// `jepsen.util` log lines.
    JepsenLog,
}

/// Guesses the form: a line with `jepsen.util` before any line starting with `{` means the
/// log form; anything else EDN.
pub fn detect_format(text: &str) -> Format {
    for line in text.lines().map(str::trim) {
        if line.starts_with('{') {
            return Format::Edn;
        }
        if line.contains("jepsen.util") {
            return Format::JepsenLog;
        }
    }
    Format::Edn
}

/// Reads a history in the given form.
pub fn read(text: &str, format: Format) -> Result<Vec<Event>, ReadError> {
    match format {
        Format::Edn => read_edn(text),
        Format::JepsenLog => read_jepsen_log(text),
    }
}

/// Reads EDN op maps, one per line. Blank lines and `;` comment lines are skipped; a lone `[`
/// or `]` line (a history printed as one vector) is skipped too.
pub fn read_edn(text: &str) -> Result<Vec<Event>, ReadError> {
    let mut events = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line_number = number + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') || trimmed == "[" || trimmed == "]" {
            continue;
        }
        let value = edn::parse(trimmed)
            .map_err(|error| read_error(line_number, format!("not EDN: {error}")))?;
        events.push(event_from_map(&value, line_number)?);
    }
    Ok(events)
}

fn event_from_map(map: &Value, line: usize) -> Result<Event, ReadError> {
    let map = match map {
        Value::Tagged(_, inner) => inner,
        other => other,
    };
    if !matches!(map, Value::Map(_)) {
        return Err(read_error(line, "expected an op map {...}"));
    }
    let process = match map.get("process") {
        Some(Value::Int(number)) if *number >= 0 => Process::Client(*number as u64),
        Some(Value::Keyword(name)) => Process::Named(name.clone()),
        Some(other) => return Err(read_error(line, format!(":process is {other}"))),
        None => return Err(read_error(line, "no :process")),
    };
    let kind = map
        .get("type")
        .and_then(Value::as_keyword)
        .and_then(EventType::from_name)
        .ok_or_else(|| read_error(line, ":type must be :invoke, :ok, :fail or :info"))?;
    let f = match map.get("f") {
        Some(Value::Keyword(name) | Value::Symbol(name) | Value::Str(name)) => name.clone(),
        _ => return Err(read_error(line, "no :f keyword")),
    };
    let time_ns = match map.get("time") {
        Some(Value::Int(ns)) if *ns >= 0 => Some(*ns as u64),
        _ => None,
    };
    Ok(Event {
        process,
        kind,
        f,
        key: map.get("key").cloned(),
        value: map.get("value").cloned().unwrap_or(Value::Nil),
        time_ns,
        error: map.get("error").cloned(),
        line,
    })
}

/// Reads `jepsen.util` log lines (`INFO  jepsen.util - 0<TAB>:invoke<TAB>:read<TAB>nil`, or the
/// newer `... jepsen.util: 0<TAB>:invoke ...`). Lines without `jepsen.util` are skipped; a
/// `jepsen.util` line whose fields cannot be read is an error.
pub fn read_jepsen_log(text: &str) -> Result<Vec<Event>, ReadError> {
    let mut events = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line_number = number + 1;
        let Some(at) = line.find("jepsen.util") else {
            continue;
        };
        let rest = &line[at + "jepsen.util".len()..];
        let rest = rest.trim_start_matches(' ');
        let rest = rest
            .strip_prefix('-')
            .or_else(|| rest.strip_prefix(':'))
            .unwrap_or(rest);
        let rest = rest.trim_start_matches(' ');
        let mut fields = rest.split('\t').map(str::trim);
        let (Some(process), Some(kind), Some(f)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(read_error(
                line_number,
                "expected process, type and f separated by tabs",
            ));
        };
        let value_text = fields.next().unwrap_or("nil");
        let error_text = fields.next();
        let process = match process.parse::<u64>() {
            Ok(number) => Process::Client(number),
            Err(_) => match process.strip_prefix(':') {
                Some(name) if !name.is_empty() => Process::Named(name.to_string()),
                _ => return Err(read_error(line_number, format!("bad process {process:?}"))),
            },
        };
        let kind = kind
            .strip_prefix(':')
            .and_then(EventType::from_name)
            .ok_or_else(|| read_error(line_number, format!("bad type {kind:?}")))?;
        let f = f
            .strip_prefix(':')
            .filter(|name| !name.is_empty())
            .ok_or_else(|| read_error(line_number, format!("bad f {f:?}")))?
            .to_string();
        let value = edn::parse(value_text)
            .map_err(|error| read_error(line_number, format!("value {value_text:?}: {error}")))?;
        let error = match error_text {
            Some(text) if !text.is_empty() => {
                Some(edn::parse(text).unwrap_or_else(|_| Value::Str(text.to_string())))
            }
            _ => None,
        };
        events.push(Event {
            process,
            kind,
            f,
            key: None,
            value,
            time_ns: None,
            error,
            line: line_number,
        });
    }
    Ok(events)
}

/// Writes one event as an EDN op map (no newline). `index` is written as `:index`.
pub fn write_edn_event(event: &Event, index: Option<usize>, out: &mut String) {
    out.push('{');
    if let Some(index) = index {
        let _ = write!(out, ":index {index}, ");
    }
    if let Some(ns) = event.time_ns {
        let _ = write!(out, ":time {ns}, ");
    }
    match &event.process {
        Process::Client(number) => {
            let _ = write!(out, ":process {number}");
        }
        Process::Named(name) => {
            let _ = write!(out, ":process :{name}");
        }
    }
    let _ = write!(out, ", :type :{}, :f :{}", event.kind.name(), event.f);
    if let Some(key) = &event.key {
        let _ = write!(out, ", :key {key}");
    }
    let _ = write!(out, ", :value {}", event.value);
    if let Some(error) = &event.error {
        let _ = write!(out, ", :error {error}");
    }
    out.push('}');
}

/// Writes a history as EDN, one op map per line, numbered with `:index`.
pub fn write_edn(events: &[Event]) -> String {
    let mut out = String::with_capacity(events.len() * 80);
    for (index, event) in events.iter().enumerate() {
        write_edn_event(event, Some(index), &mut out);
        out.push('\n');
    }
    out
}

/// An invocation paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// The client process.
    pub process: u64,
    /// The function.
    pub f: String,
    /// The key (`:key`, or the first half of an independent `[key value]` tuple).
    pub key: Option<Value>,
    /// The invocation's value.
    pub input: Value,
    /// The `:ok` completion's value; `None` when the outcome is unknown (`:info`, or no
    /// completion before the history ended).
    pub output: Option<Value>,
    /// Position of the invocation in the history (real-time order).
    pub call: u64,
    /// Position of the `:ok` completion; `None` for open operations, which may take effect at
    /// any time after their call, or never.
    pub ret: Option<u64>,
    /// Source line of the invocation (0 when built in memory).
    pub call_line: usize,
    /// Source line of the completion, if any.
    pub ret_line: Option<usize>,
}

impl Operation {
    /// Whether the outcome is unknown.
    pub fn is_open(&self) -> bool {
        self.ret.is_none()
    }
}

/// A history paired into operations, with what pairing dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Paired {
    /// Operations that happened or may have happened, in call order.
    pub operations: Vec<Operation>,
    /// `:fail` operations (did not happen; dropped).
    pub failed: usize,
    /// `:info` completions (kept, open).
    pub indeterminate: usize,
    /// Invocations never completed (kept, open).
    pub unfinished: usize,
    /// Events of named processes such as `:nemesis`.
    pub other_events: usize,
}

/// How to pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairOptions {
    /// Values are `[key value]` tuples (Jepsen's `independent` checker); split them.
    pub independent: bool,
}

/// Pairs each client invocation with the next completion of the same process.
///
/// Errors: a completion with no invocation in flight, a second invocation while one is in
/// flight, a completion whose `:f` differs from its invocation's, a process that invokes again
/// after an `:info` (Jepsen never reuses such a process; a history that does was not recorded
/// the way the checker assumes).
pub fn pair(events: &[Event], options: PairOptions) -> Result<Paired, ReadError> {
    // Per process in flight: the slot of its operation.
    let mut in_flight: HashMap<u64, usize> = HashMap::new();
    let mut crashed: HashMap<u64, usize> = HashMap::new();
    let mut slots: Vec<Operation> = Vec::new();
    // Slots of :fail operations, removed at the end (in place: histories can be large).
    let mut failed_slots: Vec<bool> = Vec::new();
    let mut paired = Paired::default();

    let split = |event: &Event| -> Result<(Option<Value>, Value), ReadError> {
        if !options.independent {
            return Ok((event.key.clone(), event.value.clone()));
        }
        match event.value.as_seq() {
            Some([key, value]) => Ok((Some(key.clone()), value.clone())),
            _ => Err(read_error(
                event.line,
                "independent: :value must be [key value]",
            )),
        }
    };

    for (position, event) in events.iter().enumerate() {
        let Process::Client(process) = event.process else {
            paired.other_events += 1;
            continue;
        };
        match event.kind {
            EventType::Invoke => {
                if in_flight.contains_key(&process) {
                    return Err(read_error(
                        event.line,
                        format!(
                            "process {process} invokes while its previous operation is in flight"
                        ),
                    ));
                }
                if let Some(info_line) = crashed.get(&process) {
                    return Err(read_error(
                        event.line,
                        format!(
                            "process {process} invokes again after an :info at line {info_line} \
                             (Jepsen gives such a client a new process number)"
                        ),
                    ));
                }
                let (key, input) = split(event)?;
                in_flight.insert(process, slots.len());
                failed_slots.push(false);
                slots.push(Operation {
                    process,
                    f: event.f.clone(),
                    key,
                    input,
                    output: None,
                    call: position as u64,
                    ret: None,
                    call_line: event.line,
                    ret_line: None,
                });
            }
            kind => {
                let Some(slot) = in_flight.remove(&process) else {
                    return Err(read_error(
                        event.line,
                        format!("process {process} completes an operation it never invoked"),
                    ));
                };
                let operation = &mut slots[slot];
                if operation.f != event.f {
                    return Err(read_error(
                        event.line,
                        format!(
                            "process {process} completes :{} but invoked :{} (line {})",
                            event.f, operation.f, operation.call_line
                        ),
                    ));
                }
                operation.ret_line = Some(event.line);
                match kind {
                    EventType::Ok => {
                        let (key, output) = split(event)?;
                        if options.independent && key != operation.key {
                            return Err(read_error(event.line, "the completion's key differs"));
                        }
                        operation.output = Some(output);
                        operation.ret = Some(position as u64);
                    }
                    EventType::Fail => {
                        failed_slots[slot] = true;
                        paired.failed += 1;
                    }
                    EventType::Info => {
                        paired.indeterminate += 1;
                        crashed.insert(process, event.line);
                    }
                    EventType::Invoke => unreachable!("handled above"),
                }
            }
        }
    }
    paired.unfinished = in_flight.len();
    let mut slot = 0;
    slots.retain(|_| {
        slot += 1;
        !failed_slots[slot - 1]
    });
    paired.operations = slots;
    Ok(paired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_edn_lines_and_pairs_them() {
        let text = r#"
; a comment
{:process 0, :type :invoke, :f :write, :value 3}
{:process 1, :type :invoke, :f :read, :value nil}
{:process 0, :type :ok, :f :write, :value 3}
{:process :nemesis, :type :info, :f :start-pause, :value "n1"}
{:process 1, :type :ok, :f :read, :value 3}
{:process 2, :type :invoke, :f :cas, :value [3 4]}
{:process 2, :type :fail, :f :cas, :value [3 4]}
{:process 3, :type :invoke, :f :write, :value 5}
{:process 3, :type :info, :f :write, :value 5, :error :timed-out}
{:process 4, :type :invoke, :f :write, :value 6}
"#;
        let events = read_edn(text).expect("valid");
        assert_eq!(events.len(), 10);
        assert_eq!(events[0].line, 3);
        assert_eq!(events[3].process, Process::Named("nemesis".into()));
        assert_eq!(events[8].error, Some(Value::Keyword("timed-out".into())));
        let paired = pair(&events, PairOptions::default()).expect("pairs");
        assert_eq!(
            (paired.failed, paired.indeterminate, paired.unfinished),
            (1, 1, 1)
        );
        assert_eq!(paired.other_events, 1);
        let ops = &paired.operations;
        assert_eq!(ops.len(), 4);
        assert_eq!(
            (ops[0].call, ops[0].ret, ops[0].output.clone()),
            (0, Some(2), Some(Value::Int(3)))
        );
        assert_eq!((ops[1].call, ops[1].ret), (1, Some(4)));
        assert_eq!(
            (ops[2].f.as_str(), ops[2].ret, ops[2].output.clone()),
            ("write", None, None)
        );
        assert_eq!(ops[2].input, Value::Int(5));
        assert_eq!((ops[3].input.clone(), ops[3].ret), (Value::Int(6), None));
    }

    #[test]
    fn reads_jepsen_log_lines() {
        let text = "2017-01-01 INFO  jepsen.core - Running test\n\
            INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
            INFO  jepsen.util - 1\t:invoke\t:cas\t[1 4]\n\
            INFO  jepsen.util - 0\t:ok\t:read\t1\n\
            INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n\
            INFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n\
            2020-02-02 12:00:00,001{GMT}\tINFO\t[jepsen worker 2] jepsen.util: 6\t:invoke\t:write\t2\n\
            2020-02-02 12:00:00,002{GMT}\tINFO\t[jepsen worker 2] jepsen.util: 6\t:fail\t:write\t2\t:no-leader\n";
        assert_eq!(detect_format(text), Format::JepsenLog);
        let events = read_jepsen_log(text).expect("valid");
        assert_eq!(events.len(), 7);
        assert_eq!(
            events[1].value,
            Value::Vector(vec![Value::Int(1), Value::Int(4)])
        );
        assert_eq!(events[4].value, Value::Keyword("timed-out".into()));
        assert_eq!(events[6].error, Some(Value::Keyword("no-leader".into())));
        let paired = pair(&events, PairOptions::default()).expect("pairs");
        assert_eq!(paired.operations.len(), 2);
        let cas = &paired.operations[1];
        assert_eq!((cas.f.as_str(), cas.ret), ("cas", None));
        assert_eq!(
            cas.input,
            Value::Vector(vec![Value::Int(1), Value::Int(4)]),
            "an :info keeps the invocation's value"
        );
        assert_eq!(paired.failed, 1);
    }

    #[test]
    fn splits_independent_tuples() {
        let text = "{:process 0, :type :invoke, :f :write, :value [\"k\" 1]}\n\
                    {:process 0, :type :ok, :f :write, :value [\"k\" 1]}\n";
        let events = read_edn(text).expect("valid");
        let paired = pair(&events, PairOptions { independent: true }).expect("pairs");
        assert_eq!(paired.operations[0].key, Some(Value::Str("k".into())));
        assert_eq!(paired.operations[0].input, Value::Int(1));
    }

    #[test]
    fn rejects_malformed_histories_with_the_line() {
        let cases = [
            (
                "{:process 0, :type :ok, :f :read, :value 1}",
                1,
                "never invoked",
            ),
            (
                "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :invoke, :f :read}",
                2,
                "in flight",
            ),
            (
                "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok, :f :write}",
                2,
                "invoked :read",
            ),
            (
                "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :info, :f :read}\n\
                 {:process 0, :type :invoke, :f :read}",
                3,
                "after an :info",
            ),
        ];
        for (text, line, needle) in cases {
            let events = read_edn(text).expect("each line is EDN");
            let error = pair(&events, PairOptions::default()).expect_err(text);
            assert_eq!(error.line, line, "{error}");
            assert!(error.message.contains(needle), "{error}");
        }
        for (text, line) in [
            ("{:process 0, :type :invoke}", 1),
            ("\n{:process 0, :type :bogus, :f :read}", 2),
            ("{:process 0 :type", 1),
            ("[1 2]", 1),
        ] {
            assert_eq!(read_edn(text).expect_err(text).line, line);
        }
        let bad_log = "INFO  jepsen.util - 0\t:invoke\n";
        assert_eq!(read_jepsen_log(bad_log).expect_err("two fields").line, 1);
    }

    #[test]
    fn writes_edn_that_reads_back() {
        let mut event = Event::new(
            Process::Client(7),
            EventType::Ok,
            "cas",
            Value::Vector(vec![Value::Int(1), Value::Str("a b".into())]),
        );
        event.key = Some(Value::Str("k".into()));
        event.time_ns = Some(1234);
        event.error = Some(Value::Keyword("x".into()));
        let nemesis = Event::new(
            Process::Named("nemesis".into()),
            EventType::Info,
            "start-pause",
            Value::Nil,
        );
        let text = write_edn(&[event.clone(), nemesis.clone()]);
        assert!(
            text.starts_with("{:index 0, :time 1234, :process 7, :type :ok, :f :cas, :key \"k\"")
        );
        let back = read_edn(&text).expect("reads back");
        assert_eq!(back[0], Event { line: 1, ..event });
        assert_eq!(back[1], Event { line: 2, ..nemesis });
    }
}
