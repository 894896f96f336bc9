//! The hot operations on small records allocate nothing: a counting global allocator watches
//! `get`, a same-size overwrite and `delete`, and a value over the limit is refused before any
//! allocation. (A `#[global_allocator]` is per binary, hence its own test file.)

use piccolo::store::{Config, SetOptions, Shard, StoreError, hash_key};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations;

#[test]
fn get_same_size_overwrite_and_delete_do_not_allocate() {
    let mut shard = Shard::with_capacity(Config::default(), 1024);
    let keys: Vec<Vec<u8>> = (0..500).map(|i| format!("key:{i}").into_bytes()).collect();
    for key in &keys {
        shard
            .set(hash_key(key), key, &[b'a'; 32], SetOptions::default(), 0)
            .unwrap();
    }
    let before = allocations();
    let mut total = 0usize;
    for key in &keys {
        total += shard.get(hash_key(key), key, 0).unwrap().bytes.len();
    }
    for key in &keys {
        let outcome = shard
            .set(hash_key(key), key, &[b'b'; 32], SetOptions::default(), 0)
            .unwrap();
        assert!(outcome.stored);
    }
    for key in &keys {
        assert!(shard.delete(hash_key(key), key, 0));
    }
    let after = allocations();
    assert_eq!(total, 500 * 32);
    assert_eq!(after - before, 0, "the hot path allocated");
    assert!(shard.is_empty());
}

/// The same while the table is migrating (both tables are looked up, deletes move entries
/// across): still no allocation. Only an insert may allocate (a new table, a new segment).
#[test]
fn no_allocation_while_the_table_migrates() {
    let mut shard = Shard::new(Config::default());
    let mut keys: Vec<Vec<u8>> = Vec::new();
    while keys.len() < 10_000 || !shard.work_counters().table_migrating {
        let key = format!("key:{}", keys.len()).into_bytes();
        shard
            .set(hash_key(&key), &key, &[b'a'; 32], SetOptions::default(), 0)
            .unwrap();
        keys.push(key);
        assert!(keys.len() < 1_000_000, "no migration started");
    }
    let migrations = shard.work_counters().table_migrations;
    let before = allocations();
    let mut total = 0usize;
    for key in &keys {
        total += shard.get(hash_key(key), key, 0).unwrap().bytes.len();
    }
    assert!(shard.work_counters().table_migrating, "gets do not migrate");
    for key in &keys {
        shard
            .set(hash_key(key), key, &[b'b'; 32], SetOptions::default(), 0)
            .unwrap();
    }
    for key in &keys {
        assert!(shard.delete(hash_key(key), key, 0));
    }
    let after = allocations();
    assert_eq!(total, keys.len() * 32);
    assert_eq!(
        after - before,
        0,
        "the hot path allocated during a migration"
    );
    assert_eq!(shard.work_counters().table_migrations, migrations);
    assert!(shard.is_empty());
}

#[test]
fn a_value_over_the_limit_is_refused_before_any_allocation() {
    let config = Config {
        max_value_bytes: 4096,
        ..Config::default()
    };
    let mut shard = Shard::new(config);
    let value = vec![b'x'; 4097];
    let before = allocations();
    let result = shard.set(hash_key(b"k"), b"k", &value, SetOptions::default(), 0);
    let after = allocations();
    assert_eq!(
        result,
        Err(StoreError::TooLarge {
            len: 4097,
            max: 4096
        })
    );
    assert_eq!(after - before, 0);
    assert_eq!(shard.memory().segments, 0);
}
