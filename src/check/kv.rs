//! The key-value map, one key at a time (the checker partitions histories by `:key`): `get`
//! returns the key's string, `put v` replaces it, `append v` adds `v` to its end. A missing
//! key reads as the empty string, and `nil` is read as the empty string too (Porcupine's kv
//! convention; Redis' `APPEND` likewise treats a missing key as empty). Integer values are used
//! as their decimal text.
//!
//! States are interned strings, and each (state, appended piece) pair is computed once: the
//! search revisits the same appends many times while it backtracks.

use std::borrow::Cow;

use super::edn::Value;
use super::history::Operation;
use super::model::{Call, FastMap, Model};

/// The key-value model (one key).
#[derive(Debug)]
pub struct KeyValue {
    numbers: FastMap<Box<str>, u32>,
    strings: Vec<Box<str>>,
    appended: FastMap<(u32, u32), u32>,
}

impl Default for KeyValue {
    fn default() -> KeyValue {
        let mut model = KeyValue {
            numbers: FastMap::default(),
            strings: Vec::new(),
            appended: FastMap::default(),
        };
        model.intern(""); // number 0: the empty string, the state of a missing key
        model
    }
}

/// A key-value operation; strings are interned numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// `get`; `None` when the result is unknown.
    Get(Option<u32>),
    /// `put v`.
    Put(u32),
    /// `append v`.
    Append(u32),
}

impl KeyValue {
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&number) = self.numbers.get(text) {
            return number;
        }
        let number = u32::try_from(self.strings.len()).expect("fewer than 2^32 distinct strings");
        self.strings.push(text.into());
        self.numbers.insert(text.into(), number);
        number
    }

    fn text(value: &Value) -> Result<Cow<'_, str>, String> {
        match value {
            Value::Nil => Ok(Cow::Borrowed("")),
            Value::Str(text) | Value::Number(text) | Value::Keyword(text) | Value::Symbol(text) => {
                Ok(Cow::Borrowed(text))
            }
            Value::Int(number) => Ok(Cow::Owned(number.to_string())),
            other => Err(format!(
                "the kv model needs strings or numbers, not {other}"
            )),
        }
    }

    fn string(&self, number: u32) -> &str {
        &self.strings[number as usize]
    }

    /// For each piece, the latest completion among the `reads` that contain it. One pass over
    /// the reads per distinct piece length (Rabin-Karp: a rolling hash of every window of that
    /// length, looked up among the pieces' hashes, each hit compared byte for byte), so the
    /// cost is the reads' total length times the number of lengths, not times the pieces.
    fn last_read_containing(&self, reads: &[(&str, u64)], pieces: &[u32]) -> FastMap<u32, u64> {
        const BASE: u64 = 0x0100_0000_01b3;
        let hash = |bytes: &[u8]| {
            bytes.iter().fold(0u64, |h, &b| {
                h.wrapping_mul(BASE).wrapping_add(u64::from(b))
            })
        };
        let mut by_length: FastMap<usize, FastMap<u64, Vec<u32>>> = FastMap::default();
        for &piece in pieces {
            let bytes = self.string(piece).as_bytes();
            if bytes.is_empty() {
                continue;
            }
            let same_hash = by_length
                .entry(bytes.len())
                .or_default()
                .entry(hash(bytes))
                .or_default();
            if !same_hash.contains(&piece) {
                same_hash.push(piece);
            }
        }
        let mut last: FastMap<u32, u64> = FastMap::default();
        for (&length, table) in &by_length {
            let top = BASE.wrapping_pow(length as u32 - 1);
            for &(read, ret) in reads {
                let bytes = read.as_bytes();
                if bytes.len() < length {
                    continue;
                }
                let mut rolling = hash(&bytes[..length]);
                for start in 0..=bytes.len() - length {
                    if start > 0 {
                        let out = u64::from(bytes[start - 1]).wrapping_mul(top);
                        let new = u64::from(bytes[start + length - 1]);
                        rolling = rolling
                            .wrapping_sub(out)
                            .wrapping_mul(BASE)
                            .wrapping_add(new);
                    }
                    let Some(same_hash) = table.get(&rolling) else {
                        continue;
                    };
                    for &piece in same_hash {
                        if &bytes[start..start + length] == self.string(piece).as_bytes() {
                            let latest = last.entry(piece).or_default();
                            *latest = (*latest).max(ret);
                        }
                    }
                }
            }
        }
        last
    }
}

impl Model for KeyValue {
    type State = u32;
    type Op = KvOp;

    fn init(&mut self) -> u32 {
        0
    }

    fn compile(&mut self, operation: &Operation) -> Result<KvOp, String> {
        Ok(match operation.f.as_str() {
            "get" | "read" => match &operation.output {
                Some(value) => KvOp::Get(Some(self.intern(&Self::text(value)?))),
                None => KvOp::Get(None),
            },
            "put" | "write" | "set" => KvOp::Put(self.intern(&Self::text(&operation.input)?)),
            "append" => KvOp::Append(self.intern(&Self::text(&operation.input)?)),
            other => return Err(format!("the kv model has no :{other} (get, put, append)")),
        })
    }

    fn step(&mut self, state: u32, op: &KvOp, next: &mut Vec<u32>) {
        match *op {
            KvOp::Get(Some(read)) if read != state => {}
            KvOp::Get(_) => next.push(state),
            KvOp::Put(value) => next.push(value),
            KvOp::Append(piece) => {
                let joined = match self.appended.get(&(state, piece)) {
                    Some(&joined) => joined,
                    None => {
                        let text = format!("{}{}", self.string(state), self.string(piece));
                        let joined = self.intern(&text);
                        self.appended.insert((state, piece), joined);
                        joined
                    }
                };
                next.push(joined);
            }
        }
    }

    fn forget_outcome(&self, op: &KvOp) -> KvOp {
        match *op {
            KvOp::Get(_) => KvOp::Get(None),
            other => other,
        }
    }

    fn is_read_only(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get(_))
    }

    /// A put of `v` may go when no get that stays, and could be placed after it, returns a
    /// string starting with `v`; an append of `a` when none returns a string containing `a`.
    /// Every state until the next put starts with `v` (or contains `a`), so no staying get was
    /// placed there, and the appends placed there change what they append to, unobserved.
    fn removable(&mut self, part: &[Call<KvOp>], candidates: &[bool]) -> Vec<bool> {
        // Staying reads as (string, latest completion), one per string, sorted by string.
        let mut reads: Vec<(&str, u64)> = part
            .iter()
            .zip(candidates)
            .filter(|(_, candidate)| !**candidate)
            .filter_map(|(call, _)| match call.op {
                KvOp::Get(Some(read)) => Some((self.string(read), call.ret_or_end())),
                _ => None,
            })
            .collect();
        reads.sort_unstable();
        reads.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = kept.1.max(later.1);
            }
            same
        });
        let pieces: Vec<u32> = part
            .iter()
            .zip(candidates)
            .filter_map(|(call, &candidate)| match call.op {
                KvOp::Append(piece) if candidate => Some(piece),
                _ => None,
            })
            .collect();
        let last_containing = self.last_read_containing(&reads, &pieces);
        part.iter()
            .zip(candidates)
            .map(|(call, &candidate)| {
                candidate
                    && match call.op {
                        KvOp::Get(_) => true,
                        KvOp::Put(value) => {
                            let value = self.string(value);
                            // The reads starting with `value` follow the first one >= it.
                            let from = reads.partition_point(|(read, _)| *read < value);
                            !value.is_empty()
                                && !reads[from..]
                                    .iter()
                                    .take_while(|(read, _)| read.starts_with(value))
                                    .any(|&(_, ret)| ret >= call.call)
                        }
                        KvOp::Append(piece) => {
                            !self.string(piece).is_empty()
                                && last_containing
                                    .get(&piece)
                                    .is_none_or(|&ret| ret < call.call)
                        }
                    }
            })
            .collect()
    }

    fn show_state(&self, state: u32) -> String {
        format!("the key holds {:?}", self.string(state))
    }

    fn show_op(&self, op: &KvOp) -> String {
        match *op {
            KvOp::Get(Some(read)) => format!("get {:?}", self.string(read)),
            KvOp::Get(None) => "get (result unknown)".to_string(),
            KvOp::Put(value) => format!("put {:?}", self.string(value)),
            KvOp::Append(piece) => format!("append {:?}", self.string(piece)),
        }
    }

    fn why_not(&self, state: u32, op: &KvOp) -> String {
        match *op {
            KvOp::Get(Some(read)) => format!(
                "it read {:?}, but the key held {:?}",
                self.string(read),
                self.string(state)
            ),
            _ => "it can always take effect".to_string(),
        }
    }
}
