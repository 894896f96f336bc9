//! The flags of `piccolo-bench`, parsed by hand (no clap): `--flag VALUE` or `--flag=VALUE`.
//! Every number has a bound, checked here, so the rest of the program can trust its [`Config`].

use std::time::Duration;

pub const HELP: &str = "\
piccolo-bench: a load generator for piccolo-server (and any RESP server)

usage: piccolo-bench [FLAGS]

  --host HOST              server host (default 127.0.0.1)
  -p, --port PORT          server port (default 7379)
  --protocol resp|capnp    wire protocol (default resp)
  -c, --connections N      connections in all (default 50)
  --threads N              OS threads; each drives its share of the connections (default 1;
                           capnp: one per connection, the client library is blocking)
  -P, --pipeline N         requests in flight per connection (default 1)
  --batch                  send a connection's next P requests only when all P answers are
                           in (redis-benchmark's way; capnp always does); default: top the
                           pipeline up after every read (memtier's way)
  -n, --requests N         measured requests in all (default 100000)
  --duration TIME          run for TIME instead of a request count (10s, 500ms, 2m)
  --ratio SET:GET          mix of SETs and GETs (default 1:10; 0:1 is GETs only)
  -r, --keyspace N         keys key:000000000000 .. key:N-1 (default 100000)
  --key-prefix TEXT        key prefix (default \"key:\"; 12 zero-padded digits follow)
  --key-pattern PATTERN    uniform | sequential | zipf:THETA (default uniform)
  -d, --value-size N|A-B   value bytes, fixed or a range (default 32)
  --warmup TIME            run the workload unmeasured for TIME first (default 0)
  --verify                 check every GET against what this run SET (see below)
  --seed N                 seed of the generator (default 1): the same seed sends the same
                           requests on each connection
  --timeout TIME           give up when no reply comes for TIME (default 10s)
  --json                   print the result as one JSON object on stdout
  -q, --quiet              no progress line (it is only shown when stderr is a terminal)
  -h, --help               this text

--verify gives each connection its own keys (key index = connection number modulo the
connection count), so the last SET of a key sent before a GET on the same connection is the
value the GET must return: the server answers each connection in order. GETs of keys this run
has not written yet are counted as unchecked. Exit status: 0 on success, 1 if any request
failed or a check failed, 2 on bad flags.
";

/// Upper bounds of the flags, so that a typo cannot ask for terabytes.
pub const MAX_CONNECTIONS: usize = 10_000;
pub const MAX_THREADS: usize = 256;
pub const MAX_PIPELINE: usize = 100_000;
pub const MAX_VALUE_BYTES: usize = 64 << 20;
/// `--keyspace` is at most this (keys have 12 digits).
pub const MAX_KEYSPACE: u64 = 1_000_000_000_000;
/// Under `--verify` each key costs 4 bytes of version: 100M keys are 400 MB.
pub const MAX_VERIFY_KEYSPACE: u64 = 100_000_000;
pub const MAX_RATIO_WEIGHT: u32 = 1_000_000;
pub const MAX_ZIPF_THETA: f64 = 10.0;
pub const MAX_TIME: Duration = Duration::from_secs(7 * 24 * 3600);
pub const MAX_KEY_PREFIX_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Resp,
    Capnp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Resp => "resp",
            Protocol::Capnp => "capnp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyPattern {
    Uniform,
    /// Connection `c` of `C` walks keys `c, c + C, c + 2C, ...` and wraps.
    Sequential,
    /// Key index `rank - 1`, rank drawn from Zipf(THETA) over `1..=keyspace`: key 0 is hottest.
    Zipf(f64),
}

impl KeyPattern {
    pub fn describe(self) -> String {
        match self {
            KeyPattern::Uniform => "uniform".into(),
            KeyPattern::Sequential => "sequential".into(),
            KeyPattern::Zipf(theta) => format!("zipf:{theta}"),
        }
    }
}

/// When the measured part of the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many measured requests in all.
    Requests(u64),
    /// When this much time has passed after the warmup (requests in flight are still counted).
    Duration(Duration),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub protocol: Protocol,
    pub connections: usize,
    pub threads: usize,
    pub pipeline: usize,
    /// Refill a connection's pipeline only when it is empty.
    pub batch: bool,
    pub stop: Stop,
    pub set_weight: u32,
    pub get_weight: u32,
    pub keyspace: u64,
    pub key_prefix: String,
    pub key_pattern: KeyPattern,
    pub value_bytes_min: usize,
    pub value_bytes_max: usize,
    pub warmup: Duration,
    pub verify: bool,
    pub seed: u64,
    pub timeout: Duration,
    pub json: bool,
    pub quiet: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 7379,
            protocol: Protocol::Resp,
            connections: 50,
            threads: 1,
            pipeline: 1,
            batch: false,
            stop: Stop::Requests(100_000),
            set_weight: 1,
            get_weight: 10,
            keyspace: 100_000,
            key_prefix: "key:".into(),
            key_pattern: KeyPattern::Uniform,
            value_bytes_min: 32,
            value_bytes_max: 32,
            warmup: Duration::ZERO,
            verify: false,
            seed: 1,
            timeout: Duration::from_secs(10),
            json: false,
            quiet: false,
        }
    }
}

/// Parses the flags (without the program name). `Ok(None)` means `--help` was asked for.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, String> {
    let mut config = Config::default();
    let mut requests: Option<u64> = None;
    let mut duration: Option<Duration> = None;
    let mut threads: Option<usize> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value.into())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(value) => Ok(value),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--host" => config.host = value("--host")?,
            "-p" | "--port" => config.port = number(&value("--port")?, "--port", 1, 65535)? as u16,
            "--protocol" => {
                config.protocol = match value("--protocol")?.as_str() {
                    "resp" => Protocol::Resp,
                    "capnp" => Protocol::Capnp,
                    other => return Err(format!("--protocol: {other:?} is not resp or capnp")),
                }
            }
            "-c" | "--connections" => {
                config.connections =
                    number(&value(&flag)?, "--connections", 1, MAX_CONNECTIONS as u64)? as usize
            }
            "--threads" => {
                threads = Some(number(&value(&flag)?, "--threads", 1, MAX_THREADS as u64)? as usize)
            }
            "-P" | "--pipeline" => {
                config.pipeline =
                    number(&value(&flag)?, "--pipeline", 1, MAX_PIPELINE as u64)? as usize
            }
            "-n" | "--requests" => {
                requests = Some(number(&value(&flag)?, "--requests", 1, u64::MAX / 2)?)
            }
            "--duration" => duration = Some(time(&value(&flag)?, "--duration", false)?),
            "--ratio" => {
                let text = value(&flag)?;
                let (set, get) = text
                    .split_once(':')
                    .ok_or_else(|| format!("--ratio: {text:?} is not SET:GET (e.g. 1:10)"))?;
                let max = u64::from(MAX_RATIO_WEIGHT);
                config.set_weight = number(set, "--ratio's SET", 0, max)? as u32;
                config.get_weight = number(get, "--ratio's GET", 0, max)? as u32;
                if config.set_weight == 0 && config.get_weight == 0 {
                    return Err("--ratio: SET and GET cannot both be 0".into());
                }
            }
            "-r" | "--keyspace" => {
                config.keyspace = number(&value(&flag)?, "--keyspace", 1, MAX_KEYSPACE)?
            }
            "--key-prefix" => {
                config.key_prefix = value(&flag)?;
                if config.key_prefix.len() > MAX_KEY_PREFIX_BYTES {
                    return Err(format!(
                        "--key-prefix: at most {MAX_KEY_PREFIX_BYTES} bytes"
                    ));
                }
            }
            "--key-pattern" => config.key_pattern = key_pattern(&value(&flag)?)?,
            "-d" | "--value-size" => {
                let text = value(&flag)?;
                let max = MAX_VALUE_BYTES as u64;
                let (low, high) = match text.split_once('-') {
                    Some((low, high)) => (
                        number(low, "--value-size", 1, max)?,
                        number(high, "--value-size", 1, max)?,
                    ),
                    None => {
                        let bytes = number(&text, "--value-size", 1, max)?;
                        (bytes, bytes)
                    }
                };
                if low > high {
                    return Err(format!("--value-size: range {text:?} is empty"));
                }
                config.value_bytes_min = low as usize;
                config.value_bytes_max = high as usize;
            }
            "--warmup" => config.warmup = time(&value(&flag)?, "--warmup", true)?,
            "--verify" => config.verify = true,
            "--batch" => config.batch = true,
            "--seed" => config.seed = number(&value(&flag)?, "--seed", 0, u64::MAX)?,
            "--timeout" => config.timeout = time(&value(&flag)?, "--timeout", false)?,
            "--json" => config.json = true,
            "-q" | "--quiet" => config.quiet = true,
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    config.stop = match (requests, duration) {
        (Some(_), Some(_)) => return Err("give --requests or --duration, not both".into()),
        (Some(count), None) => Stop::Requests(count),
        (None, Some(time)) => Stop::Duration(time),
        (None, None) => Config::default().stop,
    };
    config.threads = match (config.protocol, threads) {
        (Protocol::Resp, threads) => threads.unwrap_or(1),
        // piccolo::client is blocking (one connection per thread by design), so each capnp
        // connection gets its own thread.
        (Protocol::Capnp, None) => config.connections,
        (Protocol::Capnp, Some(threads)) if threads == config.connections => threads,
        (Protocol::Capnp, Some(threads)) => {
            return Err(format!(
                "--protocol capnp drives each connection from its own thread (the client \
                 library is blocking): --threads ({threads}) must equal --connections ({}) or \
                 be left out",
                config.connections
            ));
        }
    };
    if config.protocol == Protocol::Capnp && config.connections > MAX_THREADS {
        return Err(format!(
            "--protocol capnp runs a thread per connection: at most {MAX_THREADS} connections"
        ));
    }
    if config.threads > config.connections {
        return Err(format!(
            "--threads ({}) cannot exceed --connections ({})",
            config.threads, config.connections
        ));
    }
    if config.verify {
        if config.keyspace < config.connections as u64 {
            return Err(format!(
                "--verify gives each connection its own keys: --keyspace ({}) must be at least \
                 --connections ({})",
                config.keyspace, config.connections
            ));
        }
        if config.keyspace > MAX_VERIFY_KEYSPACE {
            return Err(format!(
                "--verify keeps 4 bytes per key: --keyspace is at most {MAX_VERIFY_KEYSPACE}"
            ));
        }
    }
    Ok(Some(config))
}

/// A decimal integer in `min..=max` (underscores allowed: `1_000_000`).
fn number(text: &str, name: &str, min: u64, max: u64) -> Result<u64, String> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{name}: {text:?} is not a whole number"))?;
    if value < min || value > max {
        return Err(format!("{name}: {value} is outside {min}..={max}"));
    }
    Ok(value)
}

/// `10`, `10s`, `500ms`, `2m`, `1.5s`: a plain number is seconds.
fn time(text: &str, name: &str, zero_allowed: bool) -> Result<Duration, String> {
    let (digits, unit_secs) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let amount: f64 = digits
        .parse()
        .map_err(|_| format!("{name}: {text:?} is not a time (e.g. 10s, 500ms, 2m)"))?;
    if !amount.is_finite() || amount < 0.0 {
        return Err(format!(
            "{name}: {text:?} is not a time (e.g. 10s, 500ms, 2m)"
        ));
    }
    let secs = amount * unit_secs;
    if secs > MAX_TIME.as_secs_f64() {
        return Err(format!("{name}: at most {} s", MAX_TIME.as_secs()));
    }
    let time = Duration::from_secs_f64(secs);
    if time.is_zero() && !zero_allowed {
        return Err(format!("{name}: must be more than 0"));
    }
    Ok(time)
}

fn key_pattern(text: &str) -> Result<KeyPattern, String> {
    match text {
        "uniform" => Ok(KeyPattern::Uniform),
        "sequential" => Ok(KeyPattern::Sequential),
        _ => {
            let theta = text.strip_prefix("zipf:").ok_or_else(|| {
                format!("--key-pattern: {text:?} is not uniform, sequential or zipf:THETA")
            })?;
            let theta: f64 = theta
                .parse()
                .map_err(|_| format!("--key-pattern: zipf exponent {theta:?} is not a number"))?;
            if !(theta > 0.0 && theta <= MAX_ZIPF_THETA) {
                return Err(format!(
                    "--key-pattern: zipf exponent must be in (0, {MAX_ZIPF_THETA}]"
                ));
            }
            Ok(KeyPattern::Zipf(theta))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Option<Config>, String> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn defaults_and_flags() {
        let config = parse_str("").unwrap().unwrap();
        assert_eq!(config.stop, Stop::Requests(100_000));
        assert_eq!((config.set_weight, config.get_weight), (1, 10));
        let config = parse_str(
            "-c 8 --threads=2 -P 16 --duration 500ms --ratio 0:1 -r 1_000 \
             --key-pattern zipf:0.99 -d 16-64 --warmup 1s --verify --seed 7 --json -p 6379",
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.connections, 8);
        assert_eq!(config.threads, 2);
        assert_eq!(config.pipeline, 16);
        assert_eq!(config.stop, Stop::Duration(Duration::from_millis(500)));
        assert_eq!((config.set_weight, config.get_weight), (0, 1));
        assert_eq!(config.keyspace, 1000);
        assert_eq!(config.key_pattern, KeyPattern::Zipf(0.99));
        assert_eq!((config.value_bytes_min, config.value_bytes_max), (16, 64));
        assert_eq!(config.warmup, Duration::from_secs(1));
        assert!(config.verify && config.json);
        assert_eq!((config.seed, config.port), (7, 6379));
        assert!(parse_str("--help").unwrap().is_none());
        let capnp = parse_str("--protocol capnp -c 8").unwrap().unwrap();
        assert_eq!((capnp.protocol, capnp.threads), (Protocol::Capnp, 8));
    }

    #[test]
    fn bad_flags_are_refused_with_a_reason() {
        for (line, needle) in [
            ("--bogus", "unknown flag"),
            ("--pipeline 0", "--pipeline"),
            ("--pipeline", "needs a value"),
            ("--ratio 0:0", "both be 0"),
            ("--ratio 3", "SET:GET"),
            ("--key-pattern zipf:-1", "zipf exponent"),
            ("--key-pattern zipf", "not uniform"),
            ("-d 64-16", "empty"),
            ("-n 10 --duration 1s", "not both"),
            ("-c 2 --threads 3", "cannot exceed"),
            ("-c 10 -r 5 --verify", "at least"),
            ("--duration 0", "more than 0"),
            ("--protocol http", "resp or capnp"),
            ("-n ten", "whole number"),
            ("--protocol capnp -c 4 --threads 2", "must equal"),
            ("--protocol capnp -c 300", "at most 256"),
        ] {
            let error = parse_str(line).unwrap_err();
            assert!(error.contains(needle), "{line:?}: {error:?}");
        }
    }
}
