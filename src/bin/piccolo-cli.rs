//! `piccolo-cli`: a command-line client over Cap'n Proto (`piccolo::client`), following the
//! Talent Plan `kvs-client` contract for `set`, `get` and `rm`. `piccolo-cli --help` lists the
//! commands.
//!
//! Exit codes: 0 done (including `get` of a missing key, as kvs-client); 1 the operation did
//! not happen (a missing key for `rm`, a stale version, a server or connection error); 2 the
//! command line is wrong.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use piccolo::client::{CasOutcome, Client, DEFAULT_ADDR, Error, Ttl};

const USAGE: &str = "\
usage: piccolo-cli [OPTIONS] COMMAND [ARGS]

commands:
  get KEY                 print the value; `Key not found` (exit 0) when missing
  getv KEY                print the version, then the value
  set KEY VALUE           write (prints nothing)
  rm KEY                  delete; `Key not found` on stderr (exit 1) when missing
  insert KEY VALUE        write only if KEY is missing (`Key exists`, exit 1, otherwise)
  update KEY VALUE        write only if KEY exists (`Key not found`, exit 1, otherwise)
  cas KEY VERSION VALUE   write only if KEY has VERSION; prints the new version
  incr KEY [DELTA]        add DELTA (default 1) to an integer value; prints the result
  expire KEY SECONDS      expire KEY after SECONDS (decimals allowed)
  ttl KEY                 print the seconds left (ms precision), or `none`
  persist KEY             remove the expiry
  scan [--match PATTERN]  print every key (matching the glob PATTERN), one per line
  dbsize                  print the number of keys
  info [SECTION]          print INFO text
  ping [MESSAGE]          print PONG (or MESSAGE)

A VALUE of `-` is read from stdin (binary safe).

options (anywhere on the line; `--` ends them):
  --addr IP:PORT          server address (default 127.0.0.1:7379)
  --timeout SECONDS       connect and answer timeout (default 5)
  --password PASSWORD     authenticate first (the server's --requirepass)
  --json                  print results as one JSON object
  --raw                   print values without a trailing newline
  -V, --version           print the version
  -h, --help              print this help
";

/// A failed run: the message for stderr and the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: format!("{}\n(piccolo-cli --help for usage)", message.into()),
            code: 2,
        }
    }

    /// The operation did not happen; `message` is printed as is.
    fn refused(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }

    fn error(error: Error) -> Failure {
        Failure {
            message: format!("piccolo-cli: {error}"),
            code: 1,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::error(error)
    }
}

struct Options {
    addr: SocketAddr,
    timeout: Duration,
    password: Option<String>,
    json: bool,
    raw: bool,
    pattern: Option<String>,
    args: Vec<String>,
}

enum Parsed {
    Run(Options),
    /// `--help` or `--version`: print this and exit 0.
    Print(String),
}

fn parse(args: impl Iterator<Item = String>) -> Result<Parsed, Failure> {
    let mut options = Options {
        addr: DEFAULT_ADDR.parse().expect("the default address parses"),
        timeout: Duration::from_secs(5),
        password: None,
        json: false,
        raw: false,
        pattern: None,
        args: Vec::new(),
    };
    let mut args = args;
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        if only_positional || !(arg.starts_with("--") || arg == "-V" || arg == "-h") {
            options.args.push(arg);
            continue;
        }
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| Failure::usage(format!("piccolo-cli: {name} needs a value")))
        };
        match arg.as_str() {
            "--" => only_positional = true,
            "-V" | "--version" => {
                return Ok(Parsed::Print(format!(
                    "piccolo-cli {}\n",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            "-h" | "--help" => return Ok(Parsed::Print(USAGE.to_string())),
            "--addr" => {
                let text = value("--addr")?;
                options.addr = text.parse().map_err(|_| {
                    Failure::usage(format!(
                        "piccolo-cli: --addr: not an IP:PORT address: {text}"
                    ))
                })?;
            }
            "--timeout" => {
                let text = value("--timeout")?;
                options.timeout = seconds(&text)
                    .ok_or_else(|| Failure::usage(format!("piccolo-cli: --timeout: {text}")))?;
            }
            "--password" => options.password = Some(value("--password")?),
            "--match" => options.pattern = Some(value("--match")?),
            "--json" => options.json = true,
            "--raw" => options.raw = true,
            other => {
                return Err(Failure::usage(format!(
                    "piccolo-cli: unknown option {other}"
                )));
            }
        }
    }
    Ok(Parsed::Run(options))
}

/// A non-negative number of seconds, decimals allowed.
fn seconds(text: &str) -> Option<Duration> {
    let seconds: f64 = text.parse().ok()?;
    if !(0.0..=1e12).contains(&seconds) {
        return None;
    }
    Some(Duration::from_secs_f64(seconds))
}

/// How many positional arguments each command takes (after its name), and a short synopsis.
fn arity(command: &str) -> Option<(usize, usize, &'static str)> {
    Some(match command {
        "get" => (1, 1, "get KEY"),
        "getv" => (1, 1, "getv KEY"),
        "set" => (2, 2, "set KEY VALUE"),
        "rm" => (1, 1, "rm KEY"),
        "insert" => (2, 2, "insert KEY VALUE"),
        "update" => (2, 2, "update KEY VALUE"),
        "cas" => (3, 3, "cas KEY VERSION VALUE"),
        "incr" => (1, 2, "incr KEY [DELTA]"),
        "expire" => (2, 2, "expire KEY SECONDS"),
        "ttl" => (1, 1, "ttl KEY"),
        "persist" => (1, 1, "persist KEY"),
        "scan" => (0, 0, "scan [--match PATTERN]"),
        "dbsize" => (0, 0, "dbsize"),
        "info" => (0, 1, "info [SECTION]"),
        "ping" => (0, 1, "ping [MESSAGE]"),
        _ => return None,
    })
}

/// What a command prints on stdout.
enum Output {
    Nothing,
    /// A value (the `--raw` flag drops its newline).
    Value(Vec<u8>),
    /// A line of text.
    Line(String),
    /// Lines of bytes (scan).
    Lines(Vec<Vec<u8>>),
    /// Text printed as it is (info).
    Text(String),
}

/// One JSON field for bytes: `"name": "text"` when UTF-8, else `"name_hex": "..."`.
fn json_bytes(object: &mut serde_json::Map<String, serde_json::Value>, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => object.insert(name.to_string(), text.into()),
        Err(_) => {
            let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            object.insert(format!("{name}_hex"), hex.into())
        }
    };
}

/// Reads the value argument: `-` means stdin.
fn value_arg(arg: &str) -> Result<Vec<u8>, Failure> {
    if arg != "-" {
        return Ok(arg.as_bytes().to_vec());
    }
    let mut value = Vec::new();
    std::io::stdin()
        .read_to_end(&mut value)
        .map_err(|error| Failure::refused(format!("piccolo-cli: reading stdin: {error}")))?;
    Ok(value)
}

fn run(options: &Options) -> Result<(Output, serde_json::Value), Failure> {
    let Some(command) = options.args.first() else {
        return Err(Failure::usage("piccolo-cli: no command given"));
    };
    let Some((min, max, synopsis)) = arity(command) else {
        return Err(Failure::usage(format!(
            "piccolo-cli: unknown command {command}"
        )));
    };
    let args = &options.args[1..];
    if args.len() < min || args.len() > max {
        return Err(Failure::usage(format!(
            "piccolo-cli: wrong number of arguments; usage: piccolo-cli {synopsis}"
        )));
    }
    if options.pattern.is_some() && command != "scan" {
        return Err(Failure::usage("piccolo-cli: --match is for scan"));
    }
    // Check the arguments before connecting.
    let number = |text: &str, what: &str| -> Result<i64, Failure> {
        text.parse()
            .map_err(|_| Failure::usage(format!("piccolo-cli: {what} is not an integer: {text}")))
    };
    let version = match command.as_str() {
        "cas" => Some(
            args[1]
                .parse::<u64>()
                .map_err(|_| Failure::usage(format!("piccolo-cli: bad VERSION: {}", args[1])))?,
        ),
        _ => None,
    };
    let delta = match (command.as_str(), args.get(1)) {
        ("incr", Some(text)) => number(text, "DELTA")?,
        _ => 1,
    };
    let ttl = match command.as_str() {
        "expire" => Some(
            seconds(&args[1])
                .ok_or_else(|| Failure::usage(format!("piccolo-cli: bad SECONDS: {}", args[1])))?,
        ),
        _ => None,
    };

    let mut client = Client::connect(options.addr, options.timeout).map_err(|error| {
        Failure::refused(format!(
            "piccolo-cli: could not connect to {}: {error}",
            options.addr
        ))
    })?;
    if let Some(password) = &options.password {
        client.auth(password.as_bytes())?;
    }
    let key = args.first().map(|key| key.as_bytes()).unwrap_or_default();
    let mut json = serde_json::Map::new();
    if min > 0 {
        json_bytes(&mut json, "key", key);
    }
    let not_found = || Failure::refused("Key not found");
    let output = match command.as_str() {
        "get" => match client.getv(key)? {
            Some(value) => {
                json.insert("found".into(), true.into());
                json_bytes(&mut json, "value", &value.data);
                json.insert("version".into(), value.version.into());
                Output::Value(value.data)
            }
            None => {
                json.insert("found".into(), false.into());
                Output::Line("Key not found".into())
            }
        },
        "getv" => match client.getv(key)? {
            Some(value) => {
                json.insert("found".into(), true.into());
                json_bytes(&mut json, "value", &value.data);
                json.insert("version".into(), value.version.into());
                let mut text = format!("{}\n", value.version).into_bytes();
                text.extend_from_slice(&value.data);
                Output::Value(text)
            }
            None => {
                json.insert("found".into(), false.into());
                Output::Line("Key not found".into())
            }
        },
        "set" => {
            let version = client.set(key, &value_arg(&args[1])?)?;
            json.insert("version".into(), version.into());
            Output::Nothing
        }
        "insert" => match client.insert(key, &value_arg(&args[1])?)? {
            Some(version) => {
                json.insert("version".into(), version.into());
                Output::Nothing
            }
            None => return Err(Failure::refused("Key exists")),
        },
        "update" => match client.update(key, &value_arg(&args[1])?)? {
            Some(version) => {
                json.insert("version".into(), version.into());
                Output::Nothing
            }
            None => return Err(not_found()),
        },
        "cas" => {
            let value = value_arg(&args[2])?;
            match client.cas(key, version.unwrap_or_default(), &value)? {
                CasOutcome::Written(version) => {
                    json.insert("version".into(), version.into());
                    Output::Line(version.to_string())
                }
                CasOutcome::ConditionFailed => {
                    return Err(Failure::refused(
                        "Version mismatch: the key was written since that version",
                    ));
                }
                CasOutcome::NotFound => return Err(not_found()),
            }
        }
        "rm" => {
            if !client.delete(key)? {
                return Err(not_found());
            }
            json.insert("deleted".into(), true.into());
            Output::Nothing
        }
        "incr" => {
            let value = client.incr(key, delta)?;
            json.insert("value".into(), value.into());
            Output::Line(value.to_string())
        }
        "expire" => {
            if !client.expire(key, ttl.unwrap_or_default())? {
                return Err(not_found());
            }
            Output::Nothing
        }
        "ttl" => match client.ttl(key)? {
            Ttl::Missing => return Err(not_found()),
            Ttl::Persistent => {
                json.insert("ttl_ms".into(), serde_json::Value::Null);
                Output::Line("none".into())
            }
            Ttl::Remaining(left) => {
                let ms = left.as_millis() as u64;
                json.insert("ttl_ms".into(), ms.into());
                Output::Line(format!("{}.{:03}", ms / 1000, ms % 1000))
            }
        },
        "persist" => {
            let removed = client.persist(key)?;
            json.insert("persisted".into(), removed.into());
            if !removed && !client.exists(key)? {
                return Err(not_found());
            }
            Output::Nothing
        }
        "scan" => {
            let pattern = options.pattern.as_deref().unwrap_or("");
            let keys = client.scan_all(pattern.as_bytes())?;
            let list: Vec<serde_json::Value> = keys
                .iter()
                .map(|key| String::from_utf8_lossy(key).into_owned().into())
                .collect();
            json.insert("keys".into(), list.into());
            Output::Lines(keys)
        }
        "dbsize" => {
            let keys = client.dbsize()?;
            json.insert("keys".into(), keys.into());
            Output::Line(keys.to_string())
        }
        "info" => {
            let text = client.info(args.first().map_or("", String::as_str))?;
            json.insert("info".into(), text.clone().into());
            Output::Text(text)
        }
        "ping" => {
            let message = args.first().map_or("", String::as_str);
            let pong = client.ping(message.as_bytes())?;
            json_bytes(&mut json, "pong", &pong);
            Output::Value(pong)
        }
        _ => unreachable!("arity() knows every command"),
    };
    Ok((output, json.into()))
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(failure) => {
            eprintln!("{}", failure.message);
            return ExitCode::from(failure.code);
        }
    };
    if options.args.is_empty() {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    }
    match run(&options) {
        Ok((output, json)) => {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (`| head`) is not worth a panic; ignore write errors.
            let _ = if options.json {
                writeln!(stdout, "{json}")
            } else {
                match output {
                    Output::Nothing => Ok(()),
                    Output::Line(line) => writeln!(stdout, "{line}"),
                    Output::Text(text) => stdout.write_all(text.as_bytes()),
                    Output::Value(mut bytes) => {
                        if !options.raw {
                            bytes.push(b'\n');
                        }
                        stdout.write_all(&bytes)
                    }
                    Output::Lines(lines) => lines.iter().try_for_each(|line| {
                        stdout.write_all(line)?;
                        stdout.write_all(b"\n")
                    }),
                }
            };
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
