//! What each connection sends: the operation mix, which key, and the value bytes.
//!
//! Keys are `PREFIX` + the key index as 12 zero-padded decimal digits (`key:000000012345`): the
//! same bytes redis-benchmark sends for `key:__rand_int__` with `-r`, so a comparison of the
//! two tools hashes and stores identical keys.
//!
//! Values are a pure function of (key, version), where version is how many times this run has
//! written the key: the first 8 bytes are the version in hex, the rest a slice of a pool of
//! random letters at an offset hashed from (key, version). A checker therefore needs only the
//! version number of each key (4 bytes), never the values it sent.

use crate::args::{Config, KeyPattern};
use crate::rng::{Rng, Zipf, mix64};

/// Digits of the key index after the prefix.
pub const KEY_DIGITS: usize = 12;
/// Bytes of the letter pool values are cut from (plus the largest value).
const POOL_BYTES: usize = 64 * 1024;
/// Bytes of the version header at the start of a value.
const VERSION_HEADER_BYTES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Set,
    Get,
}

/// Writes `prefix` + `index` zero-padded to [`KEY_DIGITS`] digits into `out`.
pub fn write_key(out: &mut Vec<u8>, prefix: &[u8], index: u64) {
    out.extend_from_slice(prefix);
    let mut digits = [b'0'; KEY_DIGITS];
    let mut rest = index;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    debug_assert_eq!(
        rest, 0,
        "key index {index} has more than {KEY_DIGITS} digits"
    );
    out.extend_from_slice(&digits);
}

/// The bytes of every value of a run, shared by all threads (read only).
#[derive(Debug)]
pub struct Values {
    pool: Vec<u8>,
    min_bytes: usize,
    max_bytes: usize,
}

impl Values {
    pub fn new(seed: u64, min_bytes: usize, max_bytes: usize) -> Values {
        assert!(1 <= min_bytes && min_bytes <= max_bytes);
        let mut rng = Rng::new(seed, u64::MAX);
        let pool = (0..POOL_BYTES + max_bytes)
            .map(|_| b'a' + rng.below(26) as u8)
            .collect();
        Values {
            pool,
            min_bytes,
            max_bytes,
        }
    }

    fn hash(key: u64, version: u64) -> u64 {
        mix64(key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ version)
    }

    pub fn len(&self, key: u64, version: u64) -> usize {
        let span = (self.max_bytes - self.min_bytes) as u64 + 1;
        self.min_bytes + (Self::hash(key, version).rotate_left(32) % span) as usize
    }

    /// Appends the value of (key, version) to `out`.
    pub fn write(&self, out: &mut Vec<u8>, key: u64, version: u64) {
        let len = self.len(key, version);
        let mut header = [0u8; VERSION_HEADER_BYTES];
        for (i, byte) in header.iter_mut().enumerate() {
            let nibble = (version >> (4 * (VERSION_HEADER_BYTES - 1 - i))) & 0xF;
            *byte = b"0123456789abcdef"[nibble as usize];
        }
        let head = len.min(VERSION_HEADER_BYTES);
        out.extend_from_slice(&header[..head]);
        let offset = (Self::hash(key, version) % POOL_BYTES as u64) as usize;
        out.extend_from_slice(&self.pool[offset..offset + (len - head)]);
    }

    /// Whether `got` is the value of (key, version).
    pub fn matches(&self, key: u64, version: u64, got: &[u8], scratch: &mut Vec<u8>) -> bool {
        scratch.clear();
        self.write(scratch, key, version);
        scratch.as_slice() == got
    }
}

/// Picks the keys of one connection.
#[derive(Debug, Clone)]
pub struct KeyChooser {
    pattern: KeyPattern,
    keyspace: u64,
    connection: u64,
    connections: u64,
    /// Keep to this connection's keys (`index % connections == connection`), for `--verify`.
    own_keys_only: bool,
    /// Next key of the sequential pattern.
    cursor: u64,
    zipf: Option<Zipf>,
}

impl KeyChooser {
    pub fn new(config: &Config, connection: usize) -> KeyChooser {
        let connection = connection as u64;
        let connections = config.connections as u64;
        KeyChooser {
            pattern: config.key_pattern,
            keyspace: config.keyspace,
            connection,
            connections,
            own_keys_only: config.verify,
            cursor: connection % config.keyspace,
            zipf: match config.key_pattern {
                KeyPattern::Zipf(theta) => Some(Zipf::new(config.keyspace, theta)),
                _ => None,
            },
        }
    }

    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        let index = match self.pattern {
            KeyPattern::Sequential => {
                // Connection c walks c, c + C, c + 2C, ...: its own keys, and all connections
                // together sweep the keyspace in order.
                let index = self.cursor;
                self.cursor += self.connections;
                if self.cursor >= self.keyspace {
                    self.cursor = self.connection % self.keyspace;
                }
                return index;
            }
            KeyPattern::Uniform => rng.below(self.keyspace),
            KeyPattern::Zipf(_) => {
                let zipf = self.zipf.as_ref().expect("built for the zipf pattern");
                zipf.sample(rng) - 1
            }
        };
        if self.own_keys_only {
            self.own(index)
        } else {
            index
        }
    }

    /// Moves `index` to this connection's key in the same block of `connections` keys (or the
    /// block before, when the last block is short). The distribution over blocks is unchanged,
    /// so zipf's hot keys stay hot. Needs `keyspace >= connections` (checked by the flags).
    fn own(&self, index: u64) -> u64 {
        let mut own = index - index % self.connections + self.connection;
        if own >= self.keyspace {
            // own >= keyspace >= connections, and index - index % C is a multiple of C that is
            // more than 0 (else own = connection < keyspace): so it is at least C.
            own -= self.connections;
        }
        debug_assert!(own < self.keyspace && own % self.connections == self.connection);
        own
    }

    /// The slot of `key` in this connection's version table (`--verify`).
    pub fn slot(&self, key: u64) -> usize {
        debug_assert_eq!(key % self.connections, self.connection);
        (key / self.connections) as usize
    }

    /// Size of this connection's version table: how many keys it owns.
    pub fn owned_keys(&self) -> usize {
        let full = self.keyspace / self.connections;
        let extra = u64::from(self.keyspace % self.connections > self.connection);
        (full + extra) as usize
    }
}

/// Picks SET or GET with the configured weights.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    set_weight: u64,
    total: u64,
}

impl Mix {
    pub fn new(config: &Config) -> Mix {
        Mix {
            set_weight: u64::from(config.set_weight),
            total: u64::from(config.set_weight) + u64::from(config.get_weight),
        }
    }

    pub fn next(&self, rng: &mut Rng) -> Op {
        if self.set_weight == self.total {
            Op::Set
        } else if self.set_weight == 0 {
            Op::Get
        } else if rng.below(self.total) < self.set_weight {
            Op::Set
        } else {
            Op::Get
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded_like_redis_benchmark() {
        let mut out = Vec::new();
        write_key(&mut out, b"key:", 12345);
        assert_eq!(out, b"key:000000012345");
    }

    #[test]
    fn values_depend_only_on_key_and_version() {
        let values = Values::new(3, 1, 100);
        let again = Values::new(3, 1, 100);
        let mut scratch = Vec::new();
        let mut seen_lengths = std::collections::HashSet::new();
        for key in 0..50 {
            for version in 1..5 {
                let mut a = Vec::new();
                values.write(&mut a, key, version);
                assert!((1..=100).contains(&a.len()));
                seen_lengths.insert(a.len());
                assert!(again.matches(key, version, &a, &mut scratch));
                assert!(!values.matches(key, version + 1, &a, &mut scratch) || a.len() < 8);
            }
        }
        assert!(seen_lengths.len() > 30, "lengths spread over the range");
        let fixed = Values::new(3, 32, 32);
        let mut a = Vec::new();
        fixed.write(&mut a, 7, 0x2a);
        assert_eq!(&a[..8], b"0000002a");
        assert_eq!(a.len(), 32);
    }

    fn config(pattern: KeyPattern, keyspace: u64, connections: usize, verify: bool) -> Config {
        Config {
            key_pattern: pattern,
            keyspace,
            connections,
            verify,
            ..Config::default()
        }
    }

    #[test]
    fn under_verify_each_connection_keeps_to_its_own_keys() {
        for pattern in [
            KeyPattern::Uniform,
            KeyPattern::Sequential,
            KeyPattern::Zipf(0.99),
        ] {
            for (keyspace, connections) in [(103, 10), (10, 10), (19, 10), (1000, 7)] {
                let config = config(pattern, keyspace, connections, true);
                let mut seen = vec![false; keyspace as usize];
                for connection in 0..connections {
                    let mut chooser = KeyChooser::new(&config, connection);
                    let mut rng = Rng::new(1, connection as u64);
                    for _ in 0..5000 {
                        let key = chooser.next(&mut rng);
                        assert!(key < keyspace);
                        assert_eq!(key % connections as u64, connection as u64);
                        assert!(chooser.slot(key) < chooser.owned_keys());
                        seen[key as usize] = true;
                    }
                }
                if pattern != KeyPattern::Zipf(0.99) {
                    assert!(seen.iter().all(|&s| s), "{pattern:?} reaches every key");
                }
            }
        }
    }

    #[test]
    fn sequential_sweeps_in_order() {
        let config = config(KeyPattern::Sequential, 10, 3, false);
        let mut chooser = KeyChooser::new(&config, 1);
        let mut rng = Rng::new(1, 1);
        let keys: Vec<u64> = (0..5).map(|_| chooser.next(&mut rng)).collect();
        assert_eq!(keys, [1, 4, 7, 1, 4]);
    }

    #[test]
    fn the_mix_follows_the_ratio() {
        let mix = Mix::new(&Config {
            set_weight: 1,
            get_weight: 3,
            ..Config::default()
        });
        let mut rng = Rng::new(5, 5);
        let sets = (0..40_000)
            .filter(|_| mix.next(&mut rng) == Op::Set)
            .count();
        assert!((9_500..10_500).contains(&sets), "{sets}");
    }
}
