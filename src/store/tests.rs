//! Tests of the shard: edge cases, and a property test against a `HashMap` model. A test-only
//! file: it is long because each property of the shard gets a test of its own.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;

fn h(key: &[u8]) -> u64 {
    hash_key(key)
}

/// Small segments, so a few records fill one and the cleaner, large records and renumbering
/// all happen in small tests; a cleaner that works whenever there is any garbage.
fn small_config() -> Config {
    Config {
        segment_bytes: 4096,
        large_record_bytes: 512,
        max_value_bytes: 100_000,
        max_key_bytes: 1000,
        cleaner_garbage_percent: 0,
        cleaner_min_garbage_bytes: 0,
        spare_segments: 2,
        // Low enough that the property test and the scan tests also see segments cleaned
        // for their age (the default is 2 TiB).
        cleaner_max_age_bytes: 256 * 1024,
    }
}

fn plain(shard: &mut Shard, key: &[u8], value: &[u8], now_ms: u64) -> u64 {
    let outcome = shard
        .set(h(key), key, value, SetOptions::default(), now_ms)
        .unwrap();
    assert!(outcome.stored);
    outcome.version
}

fn full_scan(shard: &mut Shard, count: usize, pattern: Option<&[u8]>, now_ms: u64) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = shard.scan(cursor, count, pattern, now_ms, |k| keys.push(k.to_vec()));
        if cursor == 0 {
            return keys;
        }
    }
}

fn clean_all(shard: &mut Shard) {
    for _ in 0..1_000_000 {
        if !shard.needs_cleaning() {
            return;
        }
        let report = shard.clean_step(64 * 1024);
        if report == CleanReport::default() {
            return;
        }
    }
    panic!("cleaner did not finish");
}

#[test]
fn empty_key_and_empty_value() {
    let mut shard = Shard::new(small_config());
    plain(&mut shard, b"", b"", 0);
    let value = shard.get(h(b""), b"", 0).unwrap();
    assert_eq!(value.bytes, b"");
    assert_eq!(shard.strlen(h(b""), b"", 0), 0);
    assert!(shard.exists(h(b""), b"", 0));
    assert_eq!(full_scan(&mut shard, 10, None, 0), vec![Vec::<u8>::new()]);
    assert_eq!(shard.append(h(b""), b"", b"", 0).unwrap().len, 0);
    assert_eq!(shard.append(h(b""), b"", b"xy", 0).unwrap().len, 2);
    assert_eq!(shard.get(h(b""), b"", 0).unwrap().bytes, b"xy");
    assert!(shard.delete(h(b""), b"", 0));
    assert!(!shard.exists(h(b""), b"", 0));
    shard.check_invariants();
}

#[test]
fn one_mib_value_round_trips_and_its_segment_is_freed() {
    let mut shard = Shard::new(Config::default());
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    plain(&mut shard, b"big", &value, 0);
    assert_eq!(shard.get(h(b"big"), b"big", 0).unwrap().bytes, &value[..]);
    let before = shard.memory();
    assert!(before.segment_bytes >= 1024 * 1024);
    // Same size: in place, no new segment.
    let other: Vec<u8> = value.iter().map(|b| b.wrapping_add(1)).collect();
    plain(&mut shard, b"big", &other, 0);
    assert_eq!(shard.memory().segment_bytes, before.segment_bytes);
    assert_eq!(shard.get(h(b"big"), b"big", 0).unwrap().bytes, &other[..]);
    assert!(shard.delete(h(b"big"), b"big", 0));
    clean_all(&mut shard);
    let after = shard.memory();
    assert_eq!(after.segments, 0);
    assert_eq!(after.segment_bytes, 0);
    assert_eq!(after.cleaner_segments_freed, 1);
    shard.check_invariants();
}

#[test]
fn values_over_the_limit_are_refused_and_change_nothing() {
    let mut config = small_config();
    config.max_value_bytes = 1000;
    let mut shard = Shard::new(config);
    let too_big = vec![b'x'; 1001];
    let error = shard
        .set(h(b"k"), b"k", &too_big, SetOptions::default(), 0)
        .unwrap_err();
    assert_eq!(
        error,
        StoreError::TooLarge {
            len: 1001,
            max: 1000
        }
    );
    assert_eq!(
        error.to_string(),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    assert_eq!(shard.memory().segments, 0);
    assert_eq!(shard.last_version(), 0);
    plain(&mut shard, b"k", &[b'y'; 600], 0);
    let error = shard.append(h(b"k"), b"k", &[b'z'; 401], 0).unwrap_err();
    assert!(matches!(error, StoreError::TooLarge { len: 1001, .. }));
    assert_eq!(shard.strlen(h(b"k"), b"k", 0), 600);
    assert_eq!(
        shard.append(h(b"k"), b"k", &[b'z'; 400], 0).unwrap().len,
        1000
    );
    shard.check_invariants();
}

#[test]
fn versions_never_repeat_even_across_flush() {
    let mut shard = Shard::new(small_config());
    let mut versions = Vec::new();
    for round in 0..3 {
        for i in 0..200u32 {
            let key = format!("k{}", i % 17);
            let k = key.as_bytes();
            versions.push(plain(&mut shard, k, &i.to_le_bytes(), 0));
            versions.push(shard.incr_by(h(b"n"), b"n", 1, 0).unwrap().version);
            versions.push(shard.append(h(k), k, b"+", 0).unwrap().version);
            versions.push(shard.expire_at(h(k), k, 1000, 0).unwrap().unwrap());
            versions.push(shard.persist(h(k), k, 0).unwrap());
            shard.clean_step(1024);
        }
        if round == 1 {
            shard.flush();
        }
    }
    let distinct: HashSet<u64> = versions.iter().copied().collect();
    assert_eq!(distinct.len(), versions.len());
    assert!(versions.windows(2).all(|w| w[0] < w[1]));
    shard.check_invariants();
}

#[test]
fn a_key_is_gone_exactly_at_its_deadline() {
    let mut shard = Shard::new(small_config());
    let options = SetOptions {
        expiry: Expiry::At(100),
        ..SetOptions::default()
    };
    shard.set(h(b"k"), b"k", b"v", options, 0).unwrap();
    assert_eq!(shard.ttl_ms(h(b"k"), b"k", 99), 1);
    assert_eq!(shard.get(h(b"k"), b"k", 99).unwrap().expiry_ms, 100);
    assert!(shard.get(h(b"k"), b"k", 100).is_none());
    assert_eq!(shard.ttl_ms(h(b"k"), b"k", 100), -2);
    assert_eq!(shard.len(), 0);
    assert_eq!(shard.memory().expired_keys, 1);
    // A deadline in the past (or now) deletes at once.
    plain(&mut shard, b"k", b"v", 200);
    assert_eq!(
        shard.expire_at(h(b"k"), b"k", 200, 200),
        Ok(Some(shard.last_version()))
    );
    assert_eq!(shard.len(), 0);
    // Active expiry finds keys nobody touches, in bounded steps.
    for i in 0..100u32 {
        let key = format!("t{i}");
        let options = SetOptions {
            expiry: Expiry::At(300 + u64::from(i % 2) * 1000),
            ..SetOptions::default()
        };
        shard
            .set(h(key.as_bytes()), key.as_bytes(), b"v", options, 200)
            .unwrap();
    }
    let mut removed = 0;
    for _ in 0..100 {
        removed += shard.expire_step(300, 10);
    }
    assert_eq!(removed, 50);
    assert_eq!(shard.len(), 50);
    shard.check_invariants();
}

#[test]
fn integer_errors_use_redis_wording() {
    let mut shard = Shard::new(small_config());
    plain(&mut shard, b"s", b"abc", 0);
    let error = shard.incr_by(h(b"s"), b"s", 1, 0).unwrap_err();
    assert_eq!(
        error.to_string(),
        "ERR value is not an integer or out of range"
    );
    for bad in [
        &b"007"[..],
        b"+1",
        b" 1",
        b"-0",
        b"",
        b"1.5",
        b"99999999999999999999",
    ] {
        plain(&mut shard, b"s", bad, 0);
        assert_eq!(
            shard.incr_by(h(b"s"), b"s", 1, 0),
            Err(StoreError::NotAnInteger)
        );
    }
    plain(&mut shard, b"n", b"9223372036854775806", 0);
    assert_eq!(shard.incr_by(h(b"n"), b"n", 1, 0).unwrap().value, i64::MAX);
    let error = shard.incr_by(h(b"n"), b"n", 1, 0).unwrap_err();
    assert_eq!(
        error.to_string(),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        shard.decr_by(h(b"n"), b"n", i64::MIN, 0),
        Err(StoreError::DecrementOverflow)
    );
    plain(&mut shard, b"m", b"-9223372036854775808", 0);
    assert_eq!(
        shard.decr_by(h(b"m"), b"m", 1, 0),
        Err(StoreError::Overflow)
    );
    assert_eq!(
        shard.incr_by(h(b"m"), b"m", 10, 0).unwrap().value,
        i64::MIN + 10
    );
    assert_eq!(shard.decr_by(h(b"z"), b"z", 5, 0).unwrap().value, -5);
    assert_eq!(shard.get(h(b"z"), b"z", 0).unwrap().bytes, b"-5");
    shard.check_invariants();
}

#[test]
fn set_conditions_and_get_option() {
    let mut shard = Shard::new(small_config());
    let nx = SetOptions {
        condition: Condition::IfAbsent,
        return_old: true,
        ..SetOptions::default()
    };
    let first = shard.set(h(b"k"), b"k", b"one", nx, 0).unwrap();
    assert!(first.stored && first.old.is_none());
    let again = shard.set(h(b"k"), b"k", b"two", nx, 0).unwrap();
    assert!(!again.stored);
    assert_eq!(again.version, first.version);
    assert_eq!(again.old.as_deref(), Some(&b"one"[..]));
    let cas = |version| SetOptions {
        condition: Condition::IfVersion(version),
        ..SetOptions::default()
    };
    assert!(
        !shard
            .set(h(b"k"), b"k", b"x", cas(first.version + 7), 0)
            .unwrap()
            .stored
    );
    let swapped = shard
        .set(h(b"k"), b"k", b"three", cas(first.version), 0)
        .unwrap();
    assert!(swapped.stored && swapped.version > first.version);
    let ifeq = |old| SetOptions {
        condition: Condition::IfValueEquals(old),
        ..SetOptions::default()
    };
    assert!(
        !shard
            .set(h(b"k"), b"k", b"four", ifeq(b"one"), 0)
            .unwrap()
            .stored
    );
    assert!(
        shard
            .set(h(b"k"), b"k", b"four", ifeq(b"three"), 0)
            .unwrap()
            .stored
    );
    assert!(
        !shard
            .set(h(b"nope"), b"nope", b"v", ifeq(b""), 0)
            .unwrap()
            .stored
    );
    let xx = SetOptions {
        condition: Condition::IfPresent,
        ..SetOptions::default()
    };
    assert!(!shard.set(h(b"nope"), b"nope", b"v", xx, 0).unwrap().stored);
    // KEEPTTL keeps, a plain SET clears.
    shard.expire_at(h(b"k"), b"k", 50, 0).unwrap();
    let keep = SetOptions {
        expiry: Expiry::Keep,
        ..SetOptions::default()
    };
    shard.set(h(b"k"), b"k", b"five!", keep, 0).unwrap();
    assert_eq!(shard.ttl_ms(h(b"k"), b"k", 10), 40);
    plain(&mut shard, b"k", b"six", 0);
    assert_eq!(shard.ttl_ms(h(b"k"), b"k", 10), -1);
    shard.check_invariants();
}

#[test]
fn same_size_overwrite_is_in_place() {
    let mut shard = Shard::new(small_config());
    plain(&mut shard, b"k", b"aaaa", 0);
    let used = shard.memory();
    for i in 0..100u32 {
        plain(&mut shard, b"k", &i.to_le_bytes(), 0);
    }
    let after = shard.memory();
    assert_eq!(after.garbage_bytes, 0);
    assert_eq!(after.live_bytes, used.live_bytes);
    assert_eq!(
        shard.get(h(b"k"), b"k", 0).unwrap().bytes,
        99u32.to_le_bytes()
    );
}

#[test]
fn cleaner_reclaims_garbage_in_bounded_steps() {
    let mut shard = Shard::new(small_config());
    for i in 0..2000u32 {
        let key = format!("key:{i}");
        plain(&mut shard, key.as_bytes(), &[b'v'; 40], 0);
    }
    let full = shard.memory();
    for i in (0..2000u32).filter(|i| i % 4 != 0) {
        let key = format!("key:{i}");
        assert!(shard.delete(h(key.as_bytes()), key.as_bytes(), 0));
    }
    let mut steps = 0;
    while shard.needs_cleaning() {
        let report = shard.clean_step(512);
        // One record past the budget at most.
        assert!(report.bytes_walked <= 512 + 100);
        steps += 1;
        assert!(steps < 100_000);
        if report == CleanReport::default() {
            break;
        }
    }
    let cleaned = shard.memory();
    assert!(
        cleaned.segments < full.segments / 2,
        "{full:?} -> {cleaned:?}"
    );
    assert!(cleaned.cleaner_records_moved > 0);
    shard.check_invariants();
    for i in 0..2000u32 {
        let key = format!("key:{i}");
        assert_eq!(
            shard.exists(h(key.as_bytes()), key.as_bytes(), 0),
            i % 4 == 0
        );
    }
}

/// Scan while the table grows through several resizes, while records are rewritten with other
/// sizes (moving forward in the log), while large records renumber the head, and while the
/// cleaner relocates records: every key present throughout is returned. The scan visits more
/// records per call than the writes and the cleaner append between calls, or it would chase the
/// head of the log for ever (see the design notes).
#[test]
fn scan_returns_every_key_present_throughout_while_growing_and_cleaning() {
    let mut shard = Shard::new(small_config());
    let initial: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| format!("key:{i}").into_bytes())
        .collect();
    for key in &initial {
        plain(&mut shard, key, b"0123456789", 0);
    }
    // Garbage everywhere, so the cleaner has work from the first round.
    for key in initial.iter().step_by(2) {
        plain(&mut shard, key, b"0123", 0);
    }
    let mut seen = HashSet::new();
    let mut cursor = 0;
    let mut round = 0u32;
    loop {
        cursor = shard.scan(cursor, 200, None, 0, |k| {
            seen.insert(k.to_vec());
        });
        if cursor == 0 {
            break;
        }
        round += 1;
        assert!(round < 100_000, "scan does not finish");
        for j in 0..30 {
            let key = format!("new:{round}:{j}");
            plain(&mut shard, key.as_bytes(), b"x", 0);
        }
        for j in 0..5u32 {
            let key = &initial[((round * 37 + j * 101) % 2000) as usize];
            let value = vec![b'y'; 1 + ((round + j) % 40) as usize];
            plain(&mut shard, key, &value, 0);
        }
        if round % 10 == 0 {
            plain(
                &mut shard,
                b"large",
                &vec![b'L'; 600 + round as usize % 50],
                0,
            );
        }
        for _ in 0..3 {
            shard.clean_step(700);
        }
    }
    for key in &initial {
        assert!(
            seen.contains(key),
            "missed {}",
            String::from_utf8_lossy(key)
        );
    }
    assert!(shard.memory().cleaner_records_moved > 0);
    shard.check_invariants();
}

#[test]
fn scan_with_match_filters_keys() {
    let mut shard = Shard::new(small_config());
    for i in 0..50u32 {
        plain(&mut shard, format!("user:{i}").as_bytes(), b"v", 0);
        plain(&mut shard, format!("item:{i}").as_bytes(), b"v", 0);
    }
    let mut users = full_scan(&mut shard, 5, Some(b"user:*"), 0);
    users.sort();
    users.dedup();
    assert_eq!(users.len(), 50);
    assert!(users.iter().all(|k| k.starts_with(b"user:")));
    let ones = full_scan(&mut shard, 1000, Some(b"item:[1]?"), 0);
    assert_eq!(ones.len(), 10);
}

// ----- the model test --------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct ModelEntry {
    value: Vec<u8>,
    version: u64,
    expiry_ms: u64,
}

#[derive(Default)]
struct Model {
    map: HashMap<Vec<u8>, ModelEntry>,
    now_ms: u64,
}

impl Model {
    fn live(&mut self, key: &[u8]) -> Option<&mut ModelEntry> {
        let expired = self
            .map
            .get(key)
            .is_some_and(|e| e.expiry_ms != 0 && self.now_ms >= e.expiry_ms);
        if expired {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    fn live_keys(&self) -> HashSet<Vec<u8>> {
        self.map
            .iter()
            .filter(|(_, e)| e.expiry_ms == 0 || self.now_ms < e.expiry_ms)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

fn model_parse(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let value: i64 = text.parse().ok()?;
    (value.to_string() == text).then_some(value)
}

#[derive(Clone, Debug)]
enum CondChoice {
    Always,
    IfAbsent,
    IfPresent,
    IfCurrentVersion,
    IfVersion(u64),
    IfCurrentValue,
    IfValue(Vec<u8>),
}

#[derive(Clone, Debug)]
enum ExpiryChoice {
    Clear,
    Keep,
    In(i64),
}

#[derive(Clone, Debug)]
enum Op {
    Get(usize),
    Set(usize, Vec<u8>, CondChoice, ExpiryChoice, bool),
    Delete(usize),
    GetDelete(usize),
    Incr(usize, i64),
    Decr(usize, i64),
    Append(usize, Vec<u8>),
    Strlen(usize),
    Exists(usize),
    ExpireIn(usize, i64),
    Persist(usize),
    Ttl(usize),
    FullScan(usize, Option<Vec<u8>>),
    ScanStep(usize),
    /// A scan call with a cursor a client made up: `(cursor, nudge, count)`. With `nudge` the
    /// running scan's cursor plus `nudge` (so a position inside a record), else `cursor`.
    ScanGarbage(u64, Option<u64>, usize),
    Flush,
    Clean(usize),
    Prefault(usize),
    ExpireStep(usize),
    Advance(u64),
}

fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![b"".to_vec(), b"a".to_vec(), b"n".to_vec()];
    keys.extend((0..10).map(|i| format!("key:{i}").into_bytes()));
    keys.push(vec![b'L'; 300]);
    keys
}

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..24),
        2 => prop_oneof![
            Just(b"0".to_vec()),
            Just(b"12".to_vec()),
            Just(b"-7".to_vec()),
            Just(b"007".to_vec()),
            Just(b"9223372036854775807".to_vec()),
            Just(b"-9223372036854775808".to_vec()),
        ],
        1 => (500usize..1500).prop_map(|n| vec![b'b'; n]),
        1 => (300usize..400).prop_map(|n| vec![b'm'; n]),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let key = 0..keys().len();
    let cond = prop_oneof![
        4 => Just(CondChoice::Always),
        1 => Just(CondChoice::IfAbsent),
        1 => Just(CondChoice::IfPresent),
        1 => Just(CondChoice::IfCurrentVersion),
        1 => (0u64..50).prop_map(CondChoice::IfVersion),
        1 => Just(CondChoice::IfCurrentValue),
        1 => value_strategy().prop_map(CondChoice::IfValue),
    ];
    let expiry = prop_oneof![
        3 => Just(ExpiryChoice::Clear),
        1 => Just(ExpiryChoice::Keep),
        2 => (-3i64..40).prop_map(ExpiryChoice::In),
    ];
    let delta = prop_oneof![
        4 => -5i64..5,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
    ];
    prop_oneof![
        6 => key.clone().prop_map(Op::Get),
        8 => (key.clone(), value_strategy(), cond, expiry, any::<bool>())
            .prop_map(|(k, v, c, e, g)| Op::Set(k, v, c, e, g)),
        2 => key.clone().prop_map(Op::Delete),
        1 => key.clone().prop_map(Op::GetDelete),
        2 => (key.clone(), delta.clone()).prop_map(|(k, d)| Op::Incr(k, d)),
        1 => (key.clone(), delta).prop_map(|(k, d)| Op::Decr(k, d)),
        2 => (key.clone(), proptest::collection::vec(any::<u8>(), 0..30))
            .prop_map(|(k, s)| Op::Append(k, s)),
        1 => key.clone().prop_map(Op::Strlen),
        1 => key.clone().prop_map(Op::Exists),
        2 => (key.clone(), -3i64..40).prop_map(|(k, t)| Op::ExpireIn(k, t)),
        1 => key.clone().prop_map(Op::Persist),
        1 => key.clone().prop_map(Op::Ttl),
        1 => (1usize..8, prop_oneof![
            Just(None),
            Just(Some(b"key:*".to_vec())),
            Just(Some(b"?".to_vec())),
            Just(Some(b"key:[2-5]".to_vec())),
        ]).prop_map(|(c, p)| Op::FullScan(c, p)),
        3 => (1usize..4).prop_map(Op::ScanStep),
        1 => (any::<u64>(), proptest::option::of(1u64..200_000), 1usize..4)
            .prop_map(|(c, n, k)| Op::ScanGarbage(c, n, k)),
        1 => Just(Op::Flush),
        4 => (1usize..3000).prop_map(Op::Clean),
        2 => (0usize..4).prop_map(Op::Prefault),
        2 => (1usize..20).prop_map(Op::ExpireStep),
        3 => (0u64..15).prop_map(Op::Advance),
    ]
}

/// An in-progress scan: its cursor, the keys live when it started and still live without a
/// break, and what it has returned.
struct ScanState {
    cursor: u64,
    present_throughout: HashSet<Vec<u8>>,
    seen: HashSet<Vec<u8>>,
}

fn run_model(ops: Vec<Op>) {
    let keys = keys();
    let mut shard = Shard::new(small_config());
    let mut model = Model::default();
    let mut last_version = 0u64;
    let mut scan: Option<ScanState> = None;
    let mut new_version = |version: u64| {
        assert!(
            version > last_version,
            "versions grow: {version} after {last_version}"
        );
        last_version = version;
    };
    for op in ops {
        let now = model.now_ms;
        match op {
            Op::Get(k) => {
                let key = &keys[k];
                let got = shard
                    .get(h(key), key, now)
                    .map(|v| (v.bytes.to_vec(), v.version, v.expiry_ms));
                let expected = model
                    .live(key)
                    .map(|e| (e.value.clone(), e.version, e.expiry_ms));
                assert_eq!(got, expected);
            }
            Op::Set(k, value, cond, expiry, return_old) => {
                let key = &keys[k];
                let current = model.live(key).cloned();
                let condition = match &cond {
                    CondChoice::Always => Condition::Always,
                    CondChoice::IfAbsent => Condition::IfAbsent,
                    CondChoice::IfPresent => Condition::IfPresent,
                    CondChoice::IfCurrentVersion => {
                        Condition::IfVersion(current.as_ref().map_or(1, |e| e.version))
                    }
                    CondChoice::IfVersion(v) => Condition::IfVersion(*v),
                    CondChoice::IfCurrentValue => Condition::IfValueEquals(
                        current.as_ref().map_or(&b"?"[..], |e| &e.value[..]),
                    ),
                    CondChoice::IfValue(v) => Condition::IfValueEquals(v),
                };
                let deadline = match expiry {
                    ExpiryChoice::Clear => Expiry::Clear,
                    ExpiryChoice::Keep => Expiry::Keep,
                    ExpiryChoice::In(t) => Expiry::At(now.saturating_add_signed(t)),
                };
                let options = SetOptions {
                    condition,
                    expiry: deadline,
                    return_old,
                };
                let outcome = shard.set(h(key), key, &value, options, now).unwrap();
                let allowed = match condition {
                    Condition::Always => true,
                    Condition::IfAbsent => current.is_none(),
                    Condition::IfPresent => current.is_some(),
                    Condition::IfVersion(v) => current.as_ref().is_some_and(|e| e.version == v),
                    Condition::IfValueEquals(v) => current.as_ref().is_some_and(|e| e.value == v),
                };
                assert_eq!(outcome.stored, allowed);
                let expected_old = if return_old {
                    current.as_ref().map(|e| e.value.clone())
                } else {
                    None
                };
                assert_eq!(outcome.old, expected_old);
                if allowed {
                    new_version(outcome.version);
                    let expiry_ms = match deadline {
                        Expiry::Clear => 0,
                        Expiry::Keep => current.as_ref().map_or(0, |e| e.expiry_ms),
                        Expiry::At(d) => d,
                    };
                    if matches!(deadline, Expiry::At(d) if d <= now) {
                        model.map.remove(key);
                    } else {
                        model.map.insert(
                            key.clone(),
                            ModelEntry {
                                value,
                                version: outcome.version,
                                expiry_ms,
                            },
                        );
                    }
                } else {
                    assert_eq!(outcome.version, current.as_ref().map_or(0, |e| e.version));
                }
            }
            Op::Delete(k) => {
                let key = &keys[k];
                let existed = model.live(key).is_some();
                model.map.remove(key);
                assert_eq!(shard.delete(h(key), key, now), existed);
            }
            Op::GetDelete(k) => {
                let key = &keys[k];
                let expected = model.live(key).map(|e| (e.value.clone(), e.version));
                model.map.remove(key);
                let got = shard
                    .get_delete(h(key), key, now)
                    .map(|v| (v.bytes.to_vec(), v.version));
                assert_eq!(got, expected);
            }
            Op::Incr(k, delta) | Op::Decr(k, delta) => {
                let key = &keys[k];
                let decrement = matches!(op, Op::Decr(..));
                let result = if decrement {
                    shard.decr_by(h(key), key, delta, now)
                } else {
                    shard.incr_by(h(key), key, delta, now)
                };
                // DECRBY i64::MIN is refused before the key is looked up, so the model must not
                // look it up either (that would expire it in the model only).
                let refused = decrement && delta == i64::MIN;
                let current = if refused {
                    None
                } else {
                    model.live(key).cloned()
                };
                let expected = if refused {
                    Err(StoreError::DecrementOverflow)
                } else {
                    let delta = if decrement { -delta } else { delta };
                    match &current {
                        None => Ok(delta),
                        Some(e) => match model_parse(&e.value) {
                            None => Err(StoreError::NotAnInteger),
                            Some(n) => n.checked_add(delta).ok_or(StoreError::Overflow),
                        },
                    }
                };
                assert_eq!(result.map(|c| c.value), expected);
                if let Ok(counter) = result {
                    new_version(counter.version);
                    model.map.insert(
                        key.clone(),
                        ModelEntry {
                            value: counter.value.to_string().into_bytes(),
                            version: counter.version,
                            expiry_ms: current.map_or(0, |e| e.expiry_ms),
                        },
                    );
                }
            }
            Op::Append(k, suffix) => {
                let key = &keys[k];
                let appended = shard.append(h(key), key, &suffix, now).unwrap();
                new_version(appended.version);
                let current = model.live(key).cloned();
                let mut value = current.as_ref().map_or(Vec::new(), |e| e.value.clone());
                value.extend_from_slice(&suffix);
                assert_eq!(appended.len, value.len());
                model.map.insert(
                    key.clone(),
                    ModelEntry {
                        value,
                        version: appended.version,
                        expiry_ms: current.map_or(0, |e| e.expiry_ms),
                    },
                );
            }
            Op::Strlen(k) => {
                let key = &keys[k];
                let expected = model.live(key).map_or(0, |e| e.value.len());
                assert_eq!(shard.strlen(h(key), key, now), expected);
            }
            Op::Exists(k) => {
                let key = &keys[k];
                let expected = model.live(key).is_some();
                assert_eq!(shard.exists(h(key), key, now), expected);
            }
            Op::ExpireIn(k, t) => {
                let key = &keys[k];
                let deadline = now.saturating_add_signed(t);
                let result = shard.expire_at(h(key), key, deadline, now).unwrap();
                match model.live(key) {
                    None => assert_eq!(result, None),
                    Some(entry) => {
                        let version = result.expect("key exists");
                        new_version(version);
                        entry.version = version;
                        entry.expiry_ms = deadline;
                        if deadline <= now {
                            model.map.remove(key);
                        }
                    }
                }
            }
            Op::Persist(k) => {
                let key = &keys[k];
                let result = shard.persist(h(key), key, now);
                match model.live(key) {
                    Some(entry) if entry.expiry_ms != 0 => {
                        let version = result.expect("deadline removed");
                        new_version(version);
                        entry.version = version;
                        entry.expiry_ms = 0;
                    }
                    _ => assert_eq!(result, None),
                }
            }
            Op::Ttl(k) => {
                let key = &keys[k];
                let expected = match model.live(key) {
                    None => -2,
                    Some(e) if e.expiry_ms == 0 => -1,
                    Some(e) => (e.expiry_ms - now) as i64,
                };
                assert_eq!(shard.ttl_ms(h(key), key, now), expected);
            }
            Op::FullScan(count, pattern) => {
                let found: HashSet<Vec<u8>> = full_scan(&mut shard, count, pattern.as_deref(), now)
                    .into_iter()
                    .collect();
                let expected: HashSet<Vec<u8>> = model
                    .live_keys()
                    .into_iter()
                    .filter(|k| pattern.as_deref().is_none_or(|p| glob_match(p, k)))
                    .collect();
                assert_eq!(found, expected);
            }
            Op::ScanStep(count) => {
                let state = scan.get_or_insert_with(|| ScanState {
                    cursor: 0,
                    present_throughout: model.live_keys(),
                    seen: HashSet::new(),
                });
                let live = model.live_keys();
                let mut seen = std::mem::take(&mut state.seen);
                state.cursor = shard.scan(state.cursor, count, None, now, |k| {
                    assert!(live.contains(k), "scan returned a key that is not live");
                    seen.insert(k.to_vec());
                });
                state.seen = seen;
                if state.cursor == 0 {
                    let missed: Vec<_> = state.present_throughout.difference(&state.seen).collect();
                    assert!(missed.is_empty(), "scan missed {missed:?}");
                    scan = None;
                }
            }
            Op::ScanGarbage(cursor, nudge, count) => {
                let cursor = match (nudge, scan.as_ref()) {
                    (Some(nudge), Some(state)) => state.cursor.wrapping_add(nudge),
                    _ => cursor,
                };
                let live = model.live_keys();
                let next = shard.scan(cursor, count, None, now, |k| {
                    assert!(live.contains(k), "scan returned a key that is not live");
                });
                assert!(next < 1 << 56);
            }
            Op::Flush => {
                shard.flush();
                model.map.clear();
            }
            Op::Clean(budget) => {
                shard.clean_step(budget);
            }
            Op::Prefault(pages) => {
                let touched = shard.prefault_step(pages);
                assert!(touched <= pages);
            }
            Op::ExpireStep(work) => {
                let expired_in_model = model.map.len() - model.live_keys().len();
                let removed = shard.expire_step(now, work);
                assert!(removed <= expired_in_model);
            }
            Op::Advance(ms) => model.now_ms += ms,
        }
        // A key that stopped being live leaves the set the running scan must return.
        if let Some(state) = scan.as_mut() {
            let live = model.live_keys();
            state.present_throughout.retain(|k| live.contains(k));
        }
        shard.check_invariants();
    }
    // Final contents: every key, then a full scan, then active expiry down to the live count.
    let now = model.now_ms;
    for key in &keys {
        let got = shard
            .get(h(key), key, now)
            .map(|v| (v.bytes.to_vec(), v.version));
        let expected = model.live(key).map(|e| (e.value.clone(), e.version));
        assert_eq!(got, expected);
    }
    let found: HashSet<Vec<u8>> = full_scan(&mut shard, 3, None, now).into_iter().collect();
    assert_eq!(found, model.live_keys());
    shard.expire_step(now, 1_000_000);
    assert_eq!(shard.len(), model.live_keys().len());
    clean_all(&mut shard);
    shard.check_invariants();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn shard_matches_a_hashmap_model(ops in proptest::collection::vec(op_strategy(), 1..300)) {
        run_model(ops);
    }
}

/// A 4-byte handle names at most `2^32 * 4 / segment_bytes` segments (2,048 with 8 MiB ones).
/// Past that the shard refuses writes as out of memory, changes nothing, and accepts them again
/// once the cleaner has freed a segment.
#[test]
fn segments_past_what_a_handle_can_name_are_refused_as_out_of_memory() {
    let config = Config {
        segment_bytes: MAX_SEGMENT_BYTES,
        large_record_bytes: 64,
        // Each large record moves the 8 MiB head after it, so the log's virtual length grows
        // by 8 MiB per key here: only the default age keeps the cleaner from chasing it.
        cleaner_max_age_bytes: MAX_CLEANER_AGE_BYTES,
        ..small_config()
    };
    let mut shard = Shard::new(config);
    let value = [7u8; 100]; // over large_record_bytes: one segment per key
    let mut stored = 0;
    let error = loop {
        let key = format!("key:{stored}");
        match shard.set(
            h(key.as_bytes()),
            key.as_bytes(),
            &value,
            SetOptions::default(),
            0,
        ) {
            Ok(_) => stored += 1,
            Err(error) => break error,
        }
        assert!(stored <= 2048, "the handle limit was not enforced");
    };
    assert_eq!(error, StoreError::OutOfMemory);
    assert_eq!(stored, 2048);
    assert_eq!(shard.len(), 2048);
    assert!(shard.get(h(b"key:2048"), b"key:2048", 0).is_none());
    shard.check_invariants();
    assert!(shard.delete(h(b"key:0"), b"key:0", 0));
    clean_all(&mut shard);
    plain(&mut shard, b"key:2048", &value, 0);
    assert_eq!(shard.len(), 2048);
    shard.check_invariants();
}

/// Freed ordinary segments are kept as spares up to `spare_segments` and reused as heads; the
/// rest, and then the spares themselves, go back to the allocator.
#[test]
fn freed_segments_are_reused_up_to_the_spare_limit_and_then_released() {
    let mut shard = Shard::new(small_config());
    let value = [3u8; 200];
    for i in 0..200 {
        let key = format!("key:{i}");
        plain(&mut shard, key.as_bytes(), &value, 0);
    }
    let filled = shard.work_counters();
    let filled_memory = shard.memory();
    let per_segment_bytes = filled_memory.segment_bytes / filled_memory.segments;
    assert!(filled.segments_allocated >= 10);
    assert_eq!(filled.segments_released, 0);
    for i in 0..200 {
        let key = format!("key:{i}");
        assert!(shard.delete(h(key.as_bytes()), key.as_bytes(), 0));
    }
    clean_all(&mut shard);
    shard.check_invariants();
    let emptied = shard.work_counters();
    let stats = shard.memory();
    assert_eq!(stats.spare_bytes, 2 * per_segment_bytes);
    assert_eq!(
        emptied.segments_allocated - emptied.segments_released,
        (stats.segments + 2) as u64,
        "every freed segment beyond two spares was released"
    );
    // New heads come from the spares first: no allocation until they are used up.
    for i in 0..40 {
        let key = format!("again:{i}");
        plain(&mut shard, key.as_bytes(), &value, 0);
    }
    let refilled = shard.work_counters();
    assert!(refilled.segments_opened >= emptied.segments_opened + 2);
    assert_eq!(
        refilled.segments_allocated - emptied.segments_allocated,
        refilled.segments_opened - emptied.segments_opened - 2
    );
    for i in 0..40 {
        let key = format!("again:{i}");
        assert_eq!(
            shard
                .get(h(key.as_bytes()), key.as_bytes(), 0)
                .unwrap()
                .bytes,
            &value
        );
    }
    shard.check_invariants();
    assert_eq!(shard.memory().spare_bytes, 0);
    for i in 0..40 {
        let key = format!("again:{i}");
        assert!(shard.delete(h(key.as_bytes()), key.as_bytes(), 0));
    }
    clean_all(&mut shard);
    assert!(shard.memory().spare_bytes > 0);
    assert!(shard.release_spare_segments() > 0);
    assert_eq!(shard.memory().spare_bytes, 0);
    let released = shard.work_counters();
    assert_eq!(
        released.segments_allocated - released.segments_released,
        shard.memory().segments as u64
    );
}

/// Pre-faulting touches the head ahead of its allocated part and prepares one spare, in steps
/// of at most the budget; the next head then comes from that spare (no allocation inside the
/// write that opens it), and nothing a caller can see changes.
#[test]
fn prefault_prepares_the_next_head_in_bounded_steps() {
    let config = Config {
        segment_bytes: 64 * 1024,
        large_record_bytes: 4096,
        ..small_config()
    };
    let mut shard = Shard::new(config.clone());
    assert!(
        !shard.is_prefaulted(),
        "even an empty shard wants its spare"
    );
    for i in 0..10u32 {
        plain(&mut shard, format!("key:{i}").as_bytes(), &[7u8; 100], 0);
    }
    let before = shard.work_counters();
    assert!(!shard.is_prefaulted());
    let mut steps = 0;
    let mut pages = 0;
    while !shard.is_prefaulted() {
        let touched = shard.prefault_step(3);
        assert!(
            (1..=3).contains(&touched),
            "a step does some work, within its budget"
        );
        pages += touched;
        steps += 1;
        assert!(steps < 1000, "pre-faulting ends");
    }
    assert_eq!(shard.prefault_step(3), 0, "nothing left to do");
    let after = shard.work_counters();
    assert_eq!(
        after.pages_prefaulted - before.pages_prefaulted,
        pages as u64
    );
    assert_eq!(
        after.segments_allocated,
        before.segments_allocated + 1,
        "one spare allocated ahead of need"
    );
    // The head's free part (64 KiB less 10 records) and the whole spare (64 KiB), each a
    // range of at most 17 pages (the chunks need not start on a page), plus the spare's
    // allocation: at least 15 + 16 + 1, at most 17 + 17 + 1.
    assert!((32..=35).contains(&pages), "{pages} pages");
    assert!(shard.memory().spare_bytes >= 64 * 1024);
    shard.check_invariants();
    // Fill the head: the next head is the prepared spare, so nothing is allocated.
    let mut i = 10u32;
    while shard.work_counters().segments_opened == after.segments_opened {
        plain(&mut shard, format!("key:{i}").as_bytes(), &[7u8; 100], 0);
        i += 1;
    }
    let opened = shard.work_counters();
    assert_eq!(opened.segments_allocated, after.segments_allocated);
    assert_eq!(shard.memory().spare_bytes, 0);
    for k in 0..i {
        let key = format!("key:{k}");
        assert_eq!(
            shard
                .get(h(key.as_bytes()), key.as_bytes(), 0)
                .unwrap()
                .bytes,
            [7u8; 100]
        );
    }
    shard.check_invariants();

    // Without spares only the head is touched and nothing is allocated.
    let mut shard = Shard::new(Config {
        spare_segments: 0,
        ..config
    });
    plain(&mut shard, b"k", b"v", 0);
    let allocated = shard.work_counters().segments_allocated;
    while shard.prefault_step(4) > 0 {}
    assert!(shard.is_prefaulted());
    assert_eq!(shard.work_counters().segments_allocated, allocated);
    assert_eq!(shard.memory().spare_bytes, 0);
}

/// Partitions close to full get their next table prepared in idle steps (tests use tables of
/// 64 buckets and up); the migrations that follow take it instead of allocating inside a
/// write, and nothing a caller can see changes.
#[test]
fn prefault_prepares_partition_tables_ahead_of_migrations() {
    let mut shard = Shard::new(Config {
        cleaner_max_age_bytes: 64 << 20,
        ..small_config()
    });
    let keys = 40_000u32;
    let mut steps_with_work = 0;
    for i in 0..keys {
        plain(&mut shard, format!("key:{i}").as_bytes(), b"v", 0);
        if i % 64 == 63 {
            while !shard.is_prefaulted() {
                let touched = shard.prefault_step(4);
                if touched == 0 {
                    break;
                }
                assert!(touched <= 4);
                steps_with_work += 1;
            }
        }
        if i % 5000 == 0 {
            shard.check_invariants();
        }
    }
    let counters = shard.work_counters();
    assert!(steps_with_work > 0);
    // 40,000 keys over 256 partitions: about 156 each, so each partition moves to tables of
    // 64, 128 and 256 buckets (capacities 56, 112, 224), the sizes tests prepare: 768 such
    // migrations. Most must find their table prepared (a partition filling between two scans
    // of 256 inserts can miss it).
    assert!(
        counters.table_prepared_used >= 768 * 3 / 4,
        "most migrations to prepared sizes found a prepared table: {} (of {} migrations)",
        counters.table_prepared_used,
        counters.table_migrations
    );
    clean_all(&mut shard);
    for i in 0..keys {
        let key = format!("key:{i}");
        assert_eq!(
            shard
                .get(h(key.as_bytes()), key.as_bytes(), 0)
                .unwrap()
                .bytes,
            b"v"
        );
    }
    assert_eq!(shard.len(), keys as usize);
    shard.check_invariants();
}

/// A scan with COUNT 1 to 10 while, between every two calls, more records are appended
/// (overwrites of existing keys with other sizes, new keys, records moved by the cleaner) than
/// the call's COUNT visits. The scan must still finish, within `1 + span / (12 * count)` calls
/// (`span`: the log's virtual length when the scan starts; every call but the last moves the
/// cursor at least `count` records of at least 12 bytes closer to the end of the log, see
/// docs/store.md, "Scan"), and return every key present throughout.
#[test]
fn scan_finishes_in_bounded_calls_under_more_writes_than_it_visits() {
    for count in [1usize, 2, 5, 10] {
        let mut shard = Shard::new(small_config());
        let initial: Vec<Vec<u8>> = (0..600u32)
            .map(|i| format!("key:{i}").into_bytes())
            .collect();
        for key in &initial {
            plain(&mut shard, key, b"0123456789", 0);
        }
        let span = shard.log_span_bytes();
        let bound = 1 + span / (12 * count as u64);
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut calls = 0u64;
        let mut round = 0usize;
        loop {
            cursor = shard.scan(cursor, count, None, 0, |k| {
                seen.insert(k.to_vec());
            });
            calls += 1;
            assert!(cursor < 1 << 56);
            if cursor == 0 {
                break;
            }
            assert!(
                calls <= bound,
                "COUNT {count}: {calls} calls, bound {bound}"
            );
            round += 1;
            // 2 * count + 3 overwrites and count + 2 new keys: more records than the call's
            // COUNT, each appended at the end of the log.
            for j in 0..2 * count + 3 {
                let key = &initial[(round * 37 + j * 101) % initial.len()];
                let value = vec![b'y'; 1 + (round + j) % 40];
                plain(&mut shard, key, &value, 0);
            }
            for j in 0..count + 2 {
                let key = format!("new:{round}:{j}");
                plain(&mut shard, key.as_bytes(), b"x", 0);
            }
            for _ in 0..3 {
                shard.clean_step(700);
            }
        }
        eprintln!(
            "COUNT {count}: {calls} calls (bound {bound}, {} keys at the start)",
            initial.len()
        );
        for key in &initial {
            assert!(
                seen.contains(key),
                "COUNT {count}: missed {}",
                String::from_utf8_lossy(key)
            );
        }
        assert!(shard.memory().cleaner_records_moved > 0);
        shard.check_invariants();
    }
}

/// Cursors a client made up (random numbers, valid cursors nudged into the middle of records,
/// the largest values) never panic, return only live keys, and lead to a finished scan.
#[test]
fn garbage_scan_cursors_are_harmless() {
    let mut shard = Shard::new(small_config());
    for i in 0..3000u32 {
        let value = vec![b'v'; (i % 50) as usize];
        plain(&mut shard, format!("key:{i}").as_bytes(), &value, 0);
        if i % 3 == 0 {
            plain(&mut shard, format!("key:{}", i / 2).as_bytes(), b"short", 0);
        }
    }
    plain(&mut shard, b"large", &[b'L'; 3000], 0);
    let live: HashSet<Vec<u8>> = full_scan(&mut shard, 100, None, 0).into_iter().collect();
    let mut cursors = vec![u64::MAX, 1, 2, 3, (1 << 56) - 1, 1 << 56, 1 << 63];
    let mut state = 0x1234_5678_9abc_def0u64;
    for _ in 0..200 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        cursors.push(state);
    }
    let mut cursor = shard.scan(0, 97, None, 0, |_| {});
    while cursor != 0 {
        for nudge in [1u64, 4, 8, 12, 1 << 16, 5 << 16, 17 << 16] {
            cursors.push(cursor.wrapping_add(nudge));
            cursors.push(cursor.wrapping_sub(nudge));
        }
        cursor = shard.scan(cursor, 97, None, 0, |_| {});
    }
    for start in cursors {
        let mut cursor = start;
        let mut calls = 0;
        while cursor != 0 {
            cursor = shard.scan(cursor, 500, None, 0, |k| {
                assert!(live.contains(k), "not a key: {k:?}");
            });
            assert!(cursor < 1 << 56);
            calls += 1;
            assert!(calls < 10_000, "a scan from cursor {start} does not finish");
        }
    }
    shard.check_invariants();
}

/// A segment that falls `cleaner_max_age_bytes` behind the end of the log is cleaned whatever
/// its utilisation (keeps scan cursors inside their window); nothing is lost.
#[test]
fn old_segments_are_cleaned_for_their_age() {
    let config = Config {
        cleaner_garbage_percent: 99,
        cleaner_min_garbage_bytes: usize::MAX / 2,
        cleaner_max_age_bytes: 64 * 1024,
        ..small_config()
    };
    let mut shard = Shard::new(config);
    for i in 0..200u32 {
        plain(&mut shard, format!("cold:{i}").as_bytes(), b"0123456789", 0);
    }
    plain(&mut shard, b"big-cold", &[b'B'; 1000], 0);
    for i in 0..20_000u32 {
        plain(
            &mut shard,
            format!("hot:{}", i % 10).as_bytes(),
            &[b'h'; 30],
            0,
        );
        while shard.needs_cleaning() {
            if shard.clean_step(700) == CleanReport::default() {
                break;
            }
        }
    }
    assert!(
        shard.log_span_bytes() <= 64 * 1024 + 2 * 4096,
        "span {}",
        shard.log_span_bytes()
    );
    for i in 0..200u32 {
        let key = format!("cold:{i}");
        assert_eq!(
            shard
                .get(h(key.as_bytes()), key.as_bytes(), 0)
                .unwrap()
                .bytes,
            b"0123456789"
        );
    }
    assert_eq!(
        shard
            .get(h(b"big-cold"), b"big-cold", 0)
            .unwrap()
            .bytes
            .len(),
        1000
    );
    shard.check_invariants();
}

/// The table grows by migrations that move entries in steps: through many of them (growth,
/// and same-size ones after deletions leave tombstones), with writes, deletes, the cleaner and
/// scans in between, every key stays findable and the invariants (checked on both tables of
/// every migrating partition) hold. In steps: a write moves at most one step of entries (and
/// the one it deletes), and migrations are seen to last beyond the write that started them.
///
/// 20,000 keys, so that partitions' old tables outgrow one step (a partition of the table
/// holds about 1/`PARTITIONS` of the keys). The cleaner's age limit is raised from
/// `small_config`'s 256 KiB: the live records here take more than that, and with a window
/// smaller than the live data the oldest segment is always too old, so the cleaner never runs
/// out of work and `clean_all` would spin (this is what made the test seem to hang).
#[test]
fn table_migrates_in_steps_and_loses_nothing() {
    let mut shard = Shard::new(Config {
        cleaner_max_age_bytes: 64 << 20,
        ..small_config()
    });
    let mut present = HashSet::new();
    let mut saw_migrating = 0;
    let mut outlived_their_write = 0;
    let mut most_to_move = 0;
    let step = super::table::MIGRATE_STEP_ENTRIES;
    for i in 0..20_000u32 {
        let key = format!("k:{i}");
        let before = shard.work_counters();
        plain(&mut shard, key.as_bytes(), b"v", 0);
        present.insert(key);
        let mut after = shard.work_counters();
        if after.table_migrations == before.table_migrations {
            assert!(
                before.table_entries_to_move <= after.table_entries_to_move + step,
                "a write moved more than a step: {before:?} {after:?}"
            );
        } else if after.table_entries_to_move > 0 {
            outlived_their_write += 1;
        }
        if i % 3 == 0 {
            let victim = format!("k:{}", i / 2);
            if present.remove(&victim) {
                let before = after;
                assert!(shard.delete(h(victim.as_bytes()), victim.as_bytes(), 0));
                after = shard.work_counters();
                assert_eq!(after.table_migrations, before.table_migrations);
                assert!(
                    before.table_entries_to_move <= after.table_entries_to_move + step + 1,
                    "a delete moved more than a step: {before:?} {after:?}"
                );
            }
        }
        most_to_move = most_to_move.max(after.table_entries_to_move);
        if after.table_migrating {
            saw_migrating += 1;
            if saw_migrating % 500 == 1 {
                shard.check_invariants();
                let found: HashSet<Vec<u8>> =
                    full_scan(&mut shard, 100, None, 0).into_iter().collect();
                assert_eq!(found.len(), present.len());
            }
        } else {
            assert_eq!(after.table_entries_to_move, 0);
        }
        if i % 7 == 0 {
            shard.clean_step(2048);
        }
    }
    let counters = shard.work_counters();
    assert!(counters.table_migrations >= 10, "{counters:?}");
    assert!(saw_migrating > 1_000, "{saw_migrating}");
    assert!(outlived_their_write > 10, "{outlived_their_write}");
    assert!(most_to_move > 2 * step, "{most_to_move}");
    for key in &present {
        assert!(
            shard.exists(h(key.as_bytes()), key.as_bytes(), 0),
            "lost {key}"
        );
    }
    assert_eq!(shard.len(), present.len());
    clean_all(&mut shard);
    let counters = shard.work_counters();
    assert!(!counters.table_migrating);
    assert_eq!(counters.table_entries_to_move, 0);
    shard.check_invariants();
}
