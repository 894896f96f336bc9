//! Unit tests of the RESP2 request parser (`resp.rs`): every error text, split reads, limits,
//! inline quoting, and property tests against random bytes.

use super::*;
use proptest::prelude::*;

fn words(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|word| word.as_bytes().to_vec()).collect()
}

/// A parse result with the arguments copied out, so tests can compare it.
type Copied = Result<Option<(Vec<Vec<u8>>, usize)>, ProtoError>;

fn parse_one(bytes: &[u8]) -> Copied {
    parse(bytes, &Limits::default())
        .map(|parsed| parsed.map(|(command, used)| (command.to_vec(), used)))
}

/// Encodes `args` as a multibulk request.
fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses every command in `stream`, feeding it in pieces cut at `cuts` (sorted offsets), the
/// way a server would: append what arrived, parse until `Ok(None)`, keep the rest.
fn parse_stream(
    stream: &[u8],
    cuts: &[usize],
    limits: &Limits,
) -> Result<Vec<Vec<Vec<u8>>>, ProtoError> {
    let mut commands = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut previous = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        buffer.extend_from_slice(&stream[previous..cut]);
        previous = cut;
        loop {
            match parse(&buffer, limits)? {
                None => break,
                Some((command, used)) => {
                    assert!(used > 0 && used <= buffer.len());
                    if !command.is_empty() {
                        commands.push(command.to_vec());
                    }
                    buffer.drain(..used);
                }
            }
        }
    }
    Ok(commands)
}

#[test]
fn multibulk_basic() {
    let bytes = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n";
    let (args, used) = parse_one(bytes).unwrap().unwrap();
    assert_eq!(args, words(&["SET", "k", "hello"]));
    assert_eq!(used, bytes.len() - 4);
}

#[test]
fn multibulk_binary_and_empty_arguments() {
    let bytes = b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n\r\n\0\xff\r\n";
    let (args, used) = parse_one(bytes).unwrap().unwrap();
    assert_eq!(args, vec![b"SET".to_vec(), vec![], b"\r\n\0\xff".to_vec()]);
    assert_eq!(used, bytes.len());
}

#[test]
fn multibulk_needs_more_at_every_prefix() {
    let bytes = b"*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
    for end in 0..bytes.len() {
        assert_eq!(parse_one(&bytes[..end]), Ok(None), "prefix of {end} bytes");
    }
    assert_eq!(parse_one(bytes).unwrap().unwrap().1, bytes.len());
}

#[test]
fn empty_multibulk_is_consumed_silently() {
    assert_eq!(parse_one(b"*0\r\n"), Ok(Some((vec![], 4))));
    assert_eq!(parse_one(b"*-1\r\n"), Ok(Some((vec![], 5))));
}

#[test]
fn many_arguments_spill_to_the_heap() {
    let args: Vec<Vec<u8>> = (0..100).map(|i| format!("arg{i}").into_bytes()).collect();
    let bytes = multibulk(&args);
    let (parsed, used) = parse_one(&bytes).unwrap().unwrap();
    assert_eq!(parsed, args);
    assert_eq!(used, bytes.len());
    for count in [INLINE_ARGS - 1, INLINE_ARGS, INLINE_ARGS + 1] {
        let bytes = multibulk(&args[..count]);
        let (command, _) = parse(&bytes, &Limits::default()).unwrap().unwrap();
        assert_eq!(command.len(), count);
        assert_eq!(command.arg(count - 1), Some(args[count - 1].as_slice()));
        assert_eq!(command.arg(count), None);
    }
}

#[test]
fn multibulk_errors_have_redis_wording() {
    let cases: &[(&[u8], &str)] = &[
        (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*+1\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*01\r\n", "ERR Protocol error: invalid multibulk length"),
        (
            b"*1048577\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (
            b"*99999999999999999999\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (
            b"*123456789012345678901",
            "ERR Protocol error: invalid multibulk length",
        ),
        (b"*1\rx", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length"),
        (
            b"*1\r\n$536870913\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*1\r\n$999999999999999999999999",
            "ERR Protocol error: invalid bulk length",
        ),
        (b"*1\r\nx", "ERR Protocol error: expected '$', got 'x'"),
        (
            b"*1\r\n\x01",
            "ERR Protocol error: expected '$', got '\\x01'",
        ),
        (
            b"*1\r\n$1\r\nab\r\n",
            "ERR Protocol error: expected '\\r\\n' after bulk data",
        ),
    ];
    for &(bytes, message) in cases {
        let error = parse(bytes, &Limits::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            message,
            "input {:?}",
            String::from_utf8_lossy(bytes)
        );
        assert!(error.closes_connection());
    }
    let mut reply = Vec::new();
    ProtoError::InvalidBulkLength.write_reply(&mut reply);
    assert_eq!(reply, b"-ERR Protocol error: invalid bulk length\r\n");
}

#[test]
fn absurd_declared_sizes_do_not_allocate_or_wait() {
    // A bulk of the maximum length is accepted as a header and waits for its body.
    let header = format!("*1\r\n${}\r\n", Limits::REDIS.max_bulk_bytes);
    assert_eq!(parse_one(header.as_bytes()), Ok(None));
    // The maximum count waits for arguments; its Vec reservation is capped.
    let header = format!("*{}\r\n", Limits::REDIS.max_multibulk_count);
    assert_eq!(parse_one(header.as_bytes()), Ok(None));
}

#[test]
fn limits_are_configurable() {
    let limits = Limits {
        max_multibulk_count: 2,
        max_bulk_bytes: 3,
        max_inline_bytes: 5,
    };
    assert!(
        parse(b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", &limits)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        parse(b"*3\r\n", &limits).unwrap_err(),
        ProtoError::InvalidMultibulkLength
    );
    assert_eq!(
        parse(b"*1\r\n$4\r\n", &limits).unwrap_err(),
        ProtoError::InvalidBulkLength
    );
    assert!(parse(b"PING\r\n", &limits).unwrap().is_some());
    assert_eq!(
        parse(b"PING x\r\n", &limits).unwrap_err(),
        ProtoError::TooBigInlineRequest
    );
    assert_eq!(
        parse(b"PINGxy", &limits).unwrap_err(),
        ProtoError::TooBigInlineRequest
    );
    assert!(matches!(parse(b"PINGx", &limits), Ok(None)));
}

#[test]
fn inline_commands() {
    assert_eq!(parse_one(b"PING\r\n"), Ok(Some((words(&["PING"]), 6))));
    assert_eq!(parse_one(b"PING\n"), Ok(Some((words(&["PING"]), 5))));
    assert_eq!(
        parse_one(b"  set  k\tv  \r\nGET"),
        Ok(Some((words(&["set", "k", "v"]), 14)))
    );
    assert_eq!(parse_one(b"\r\n"), Ok(Some((vec![], 2))));
    assert_eq!(parse_one(b"   \n"), Ok(Some((vec![], 4))));
    assert_eq!(parse_one(b"PING"), Ok(None));
    assert_eq!(parse_one(b"PING\r"), Ok(None));
    // A NUL ends the line, as in Redis (which splits it as a C string).
    assert_eq!(
        parse_one(b"ECHO a\0b c\n"),
        Ok(Some((words(&["ECHO", "a"]), 11)))
    );
    assert_eq!(parse_one(b"\0\n"), Ok(Some((vec![], 2))));
}

#[test]
fn inline_quotes_follow_sdssplitargs() {
    let cases: &[(&[u8], &[&[u8]])] = &[
        (b"SET k \"hello world\"\n", &[b"SET", b"k", b"hello world"]),
        (b"SET k 'it''s'\n", &[]), // closing quote followed by a quote: error, checked below
        (
            b"SET k \"a\\x41\\n\\t\\\"\\\\z\"\n",
            &[b"SET", b"k", b"aA\n\t\"\\z"],
        ),
        (b"SET k \"\\xZZ\"\n", &[b"SET", b"k", b"xZZ"]),
        (b"SET k 'a\\'b\\n'\n", &[b"SET", b"k", b"a'b\\n"]),
        (b"SET k foo\"bar baz\"\n", &[b"SET", b"k", b"foobar baz"]),
        (b"SET k \"\"\n", &[b"SET", b"k", b""]),
        (b"ECHO ''\r\n", &[b"ECHO", b""]),
    ];
    for &(line, expected) in cases {
        let parsed = parse_one(line);
        if expected.is_empty() {
            assert_eq!(parsed, Err(ProtoError::UnbalancedQuotes));
        } else {
            let expected: Vec<Vec<u8>> = expected.iter().map(|word| word.to_vec()).collect();
            assert_eq!(
                parsed,
                Ok(Some((expected, line.len()))),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
    for line in [
        &b"SET k \"open\n"[..],
        b"SET k 'open\n",
        b"SET k \"a\"b\n",
        b"SET k \"ends\\\n",
    ] {
        let error = parse(line, &Limits::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "ERR Protocol error: unbalanced quotes in request"
        );
    }
}

fn arb_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..12)
}

fn arb_inline_word() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![Just(b'a'), Just(b'Z'), Just(b'9'), Just(b'-')],
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let limits = Limits { max_multibulk_count: 16, max_bulk_bytes: 64, max_inline_bytes: 64 };
        for start in 0..bytes.len().min(8) {
            if let Ok(Some((_, used))) = parse(&bytes[start..], &limits) {
                prop_assert!(used > 0 && used <= bytes.len() - start);
            }
            let _ = parse(&bytes[start..], &Limits::default());
        }
    }

    /// Whenever the fast path takes a header line, the general path reads the same number
    /// and ends at the same place (and the fast path never takes zero or a sign).
    #[test]
    fn plain_length_agrees_with_the_general_path(line in proptest::collection::vec(
        prop_oneof![4 => b'0'..=b'9', 1 => Just(b'\r'), 1 => Just(b'\n'), 1 => Just(b'-'),
            1 => any::<u8>()], 0..24)) {
        if let Some((value, next)) = plain_length(&line, 0) {
            let general = header_line(&line, 0, ProtoError::InvalidBulkLength);
            let Ok(Some((text, after))) = general else {
                return Err(TestCaseError::fail(format!("general path: {general:?}")));
            };
            prop_assert_eq!(next, after);
            prop_assert_eq!(parse_i64(text), Some(value as i64));
            prop_assert!(line[0] != b'0' && line[0] != b'-');
        }
    }

    #[test]
    fn random_bytes_after_a_star_never_panic(bytes in proptest::collection::vec(
        prop_oneof![Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'-'), Just(b'0'),
            Just(b'1'), Just(b'2'), Just(b'9'), any::<u8>()], 0..64)) {
        let mut input = vec![b'*'];
        input.extend_from_slice(&bytes);
        if let Ok(Some((_, used))) = parse(&input, &Limits::default()) {
            prop_assert!(used > 0 && used <= input.len());
        }
    }

    #[test]
    fn split_stream_gives_the_same_commands(
        commands in proptest::collection::vec(arb_args(), 1..6),
        inline in proptest::collection::vec(proptest::collection::vec(arb_inline_word(), 1..4), 0..3),
        seed_cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for args in &commands {
            stream.extend_from_slice(&multibulk(args));
            expected.push(args.clone());
        }
        for line in &inline {
            stream.extend_from_slice(&line.join(&b' '));
            stream.extend_from_slice(b"\r\n");
            expected.push(line.clone());
        }
        let limits = Limits::default();
        prop_assert_eq!(&parse_stream(&stream, &[], &limits).unwrap(), &expected);
        let mut cuts: Vec<usize> = seed_cuts.iter().map(|cut| cut % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(&parse_stream(&stream, &cuts, &limits).unwrap(), &expected);
    }

    #[test]
    fn unquoted_inline_fast_path_agrees_with_split_quoted(
        line in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'\t'), Just(0x0b), Just(0u8),
            Just(b'\r'), Just(b'a'), Just(b'b'), Just(0xff)], 0..24)
    ) {
        let mut input = line.clone();
        input.push(b'\n');
        let (command, _) = parse(&input, &Limits::default()).unwrap().unwrap();
        let mut trimmed = line.as_slice();
        if let [rest @ .., b'\r'] = trimmed {
            trimmed = rest;
        }
        if let Some(nul) = trimmed.iter().position(|&byte| byte == 0) {
            trimmed = &trimmed[..nul];
        }
        prop_assert_eq!(command.to_vec(), split_quoted(trimmed).unwrap());
    }
}

#[test]
fn every_split_point_of_a_mixed_stream() {
    let mut stream = Vec::new();
    stream.extend_from_slice(&multibulk(&words(&["SET", "key", "a value\r\nwith crlf"])));
    stream.extend_from_slice(b"PING\r\n\r\nECHO \"quoted word\"\n");
    stream.extend_from_slice(b"*0\r\n");
    let args: Vec<Vec<u8>> = (0..20).map(|i| vec![b'x'; i]).collect();
    stream.extend_from_slice(&multibulk(&args));
    let limits = Limits::default();
    let whole = parse_stream(&stream, &[], &limits).unwrap();
    assert_eq!(whole.len(), 4);
    for cut in 0..=stream.len() {
        assert_eq!(
            parse_stream(&stream, &[cut], &limits).unwrap(),
            whole,
            "cut at {cut}"
        );
    }
    // And byte by byte.
    let every: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(parse_stream(&stream, &every, &limits).unwrap(), whole);
}
