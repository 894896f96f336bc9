//! One request on one shard: [`execute`] turns a [`Request`] into a [`Reply`] with a typed
//! [`Outcome`]. Pure apart from the shard: the time is passed in, nothing is counted here, and
//! nothing is worded (the front ends word outcomes for their protocol).
//!
//! The worker loop (`worker.rs`) calls it for every request except INFO's stats and SCAN,
//! which need the worker's counters and index; the in-process benchmark pair calls it too.

use super::message::{
    Bytes, ErrorKind, Expected, ExpireArgs, Op, Outcome, Reply, Request, SetArgs, SetCondition,
    SetIf, Watched, pack_key,
};
use crate::proto::command::Expiry;
use crate::store::{self, Condition, SetOptions, Shard, StoreError};

/// Executes one request on the shard.
pub fn execute(shard: &mut Shard, request: Request, now_ms: u64) -> Reply {
    let hash = request.hash;
    let key = request.key.as_slice();
    match &request.op {
        Op::Get => {
            let value = shard.get(hash, key, now_ms);
            bulk_or_nil(&request, value.map(|value| value.bytes))
        }
        Op::GetDel => {
            let value = shard.get_delete(hash, key, now_ms);
            bulk_or_nil(&request, value.map(|value| value.bytes))
        }
        Op::Set(args) => execute_set(shard, &request, *args, now_ms),
        Op::SetIf(args) => execute_set_if(shard, &request, args, now_ms),
        Op::Exists => integer(&request, i64::from(shard.exists(hash, key, now_ms))),
        Op::Del => integer(&request, i64::from(shard.delete(hash, key, now_ms))),
        Op::StrLen => integer(&request, shard.strlen(hash, key, now_ms) as i64),
        Op::PTtl => integer(&request, shard.ttl_ms(hash, key, now_ms)),
        Op::Ttl => {
            let ttl_ms = shard.ttl_ms(hash, key, now_ms);
            // Redis rounds to the nearest second: (ttl + 500) / 1000.
            let ttl = if ttl_ms < 0 {
                ttl_ms
            } else {
                ttl_ms.saturating_add(500) / 1000
            };
            integer(&request, ttl)
        }
        Op::Type => {
            let mut reply = Reply::to(&request, Outcome::Simple);
            let name: &[u8] = if shard.exists(hash, key, now_ms) {
                b"string"
            } else {
                b"none"
            };
            reply.data = Bytes::copy_from(name);
            reply
        }
        Op::IncrBy(delta) => match shard.incr_by(hash, key, *delta, now_ms) {
            Ok(counter) => integer(&request, counter.value),
            Err(error) => store_error(&request, error),
        },
        Op::DecrBy(delta) => match shard.decr_by(hash, key, *delta, now_ms) {
            Ok(counter) => integer(&request, counter.value),
            Err(error) => store_error(&request, error),
        },
        Op::Append => match shard.append(hash, key, request.value.as_slice(), now_ms) {
            Ok(appended) => integer(&request, appended.len as i64),
            Err(error) => store_error(&request, error),
        },
        Op::Expire(args) => execute_expire(shard, &request, *args, now_ms),
        Op::GetEx(expiry) => execute_getex(shard, &request, *expiry, now_ms),
        Op::Persist => integer(
            &request,
            i64::from(shard.persist(hash, key, now_ms).is_some()),
        ),
        Op::DbSize => integer(&request, shard.len() as i64),
        Op::Flush => {
            shard.flush();
            Reply::to(&request, Outcome::Ok)
        }
        Op::Keys => keys_reply(shard, &request, now_ms),
        Op::GetV => match shard.get(hash, key, now_ms) {
            Some(value) => {
                let mut reply = Reply::to(&request, Outcome::ValueVersion);
                reply.data = Bytes::copy_from(value.bytes);
                reply.int = value.version as i64;
                reply
            }
            None => Reply::to(&request, Outcome::Nil),
        },
        Op::Version => match shard.get(hash, key, now_ms) {
            Some(value) => integer(&request, value.version as i64),
            None => {
                let mut reply = Reply::to(&request, Outcome::Nil);
                reply.int = shard.last_version() as i64;
                reply
            }
        },
        Op::CheckVersion(watched) => {
            let unchanged = match (*watched, shard.get(hash, key, now_ms)) {
                (Watched::Version(version), Some(value)) => value.version == version,
                (Watched::Absent(last), None) => shard.last_version() == last,
                _ => false,
            };
            integer(&request, i64::from(unchanged))
        }
        Op::Dump => match shard.get(hash, key, now_ms) {
            Some(value) => {
                let mut reply = Reply::to(&request, Outcome::Dumped);
                reply.data = Bytes::copy_from(value.bytes);
                reply.int = value.expiry_ms as i64;
                reply
            }
            None => Reply::to(&request, Outcome::Nil),
        },
        Op::Answer { outcome, int } => {
            let mut reply = Reply::to(&request, *outcome);
            reply.int = *int;
            reply
        }
        // Answered in the worker loop, which owns the counters and knows the worker's index.
        Op::Stats | Op::Scan(_) => error_reply(&request, ErrorKind::Internal),
    }
}

/// A reply with `kind` as its error.
pub fn error_reply(request: &Request, kind: ErrorKind) -> Reply {
    Reply::to(request, Outcome::Error(kind))
}

fn store_error(request: &Request, error: StoreError) -> Reply {
    error_reply(request, error.into())
}

fn integer(request: &Request, value: i64) -> Reply {
    let mut reply = Reply::to(request, Outcome::Integer);
    reply.int = value;
    reply
}

fn bulk_or_nil(request: &Request, value: Option<&[u8]>) -> Reply {
    match value {
        Some(bytes) => {
            let mut reply = Reply::to(request, Outcome::Bulk);
            reply.data = Bytes::copy_from(bytes);
            reply
        }
        None => Reply::to(request, Outcome::Nil),
    }
}

/// `now_ms + delta_ms` as a deadline, or `None` when it leaves the `i64` range (Redis's
/// "invalid expire time"). A result at or before now is clamped to 0, which deletes.
fn deadline_from(now_ms: u64, delta_ms: i64) -> Option<u64> {
    let deadline = (now_ms as i64).checked_add(delta_ms)?;
    Some(deadline.max(0) as u64)
}

/// The store's deadline for a SET-like write's `expiry`; `None` when a relative expiry is out
/// of range (an invalid expire time).
fn deadline(expiry: Expiry, now_ms: u64) -> Option<store::Expiry> {
    Some(match expiry {
        Expiry::Keep => store::Expiry::Keep,
        Expiry::InMs(ms) => store::Expiry::At(deadline_from(now_ms, ms as i64)?),
        Expiry::AtUnixMs(ms) => store::Expiry::At(ms),
        Expiry::Clear | Expiry::Unchanged => store::Expiry::Clear,
    })
}

/// SET and its family. Answers the old value (or nil) with `return_old`, else [`Outcome::Stored`]
/// with the new version or [`Outcome::NotStored`].
fn execute_set(shard: &mut Shard, request: &Request, args: SetArgs, now_ms: u64) -> Reply {
    let Some(expiry) = deadline(args.expiry, now_ms) else {
        return error_reply(request, ErrorKind::InvalidExpireTime);
    };
    let condition = match args.condition {
        SetCondition::Always => Condition::Always,
        SetCondition::IfAbsent => Condition::IfAbsent,
        SetCondition::IfPresent => Condition::IfPresent,
    };
    let options = SetOptions {
        condition,
        expiry,
        return_old: args.return_old,
    };
    let (hash, key) = (request.hash, request.key.as_slice());
    match shard.set(hash, key, request.value.as_slice(), options, now_ms) {
        Err(error) => store_error(request, error),
        Ok(outcome) if args.return_old => bulk_or_nil(request, outcome.old.as_deref()),
        Ok(outcome) if outcome.stored => stored(request, outcome.version),
        Ok(_) => Reply::to(request, Outcome::NotStored),
    }
}

/// SET IFEQ, CAS, and Cap'n Proto's `set` with `ifEqual` / `ifVersion`: write and expiry are
/// one `Shard::set`, so the answered version is the key's final one.
///
/// Answers as [`execute_set`]; a version condition that fails answers [`Outcome::NotStored`]
/// when the key exists (with another version) and [`Outcome::Nil`] when it does not, which
/// Cap'n Proto's `cas` answers as `conditionFailed` / `notFound`.
fn execute_set_if(shard: &mut Shard, request: &Request, args: &SetIf, now_ms: u64) -> Reply {
    let Some(expiry) = deadline(args.expiry, now_ms) else {
        return error_reply(request, ErrorKind::InvalidExpireTime);
    };
    let condition = match &args.expected {
        Expected::Value(value) => Condition::IfValueEquals(value),
        Expected::Version(version) => Condition::IfVersion(*version),
    };
    let options = SetOptions {
        condition,
        expiry,
        return_old: args.return_old,
    };
    let (hash, key) = (request.hash, request.key.as_slice());
    match shard.set(hash, key, request.value.as_slice(), options, now_ms) {
        Err(error) => store_error(request, error),
        Ok(outcome) if args.return_old => bulk_or_nil(request, outcome.old.as_deref()),
        Ok(outcome) if outcome.stored => stored(request, outcome.version),
        Ok(_) => match args.expected {
            Expected::Version(_) if !shard.exists(hash, key, now_ms) => {
                Reply::to(request, Outcome::Nil)
            }
            _ => Reply::to(request, Outcome::NotStored),
        },
    }
}

fn stored(request: &Request, version: u64) -> Reply {
    let mut reply = Reply::to(request, Outcome::Stored);
    reply.int = version as i64;
    reply
}

fn execute_expire(shard: &mut Shard, request: &Request, args: ExpireArgs, now_ms: u64) -> Reply {
    let (hash, key) = (request.hash, request.key.as_slice());
    let deadline_ms = if args.absolute {
        Some(args.ms.max(0) as u64)
    } else {
        deadline_from(now_ms, args.ms)
    };
    let Some(deadline_ms) = deadline_ms else {
        return error_reply(request, ErrorKind::InvalidExpireTime);
    };
    if args.only_if.any() && !expire_condition_holds(shard, request, args, deadline_ms, now_ms) {
        return integer(request, 0);
    }
    match shard.expire_at(hash, key, deadline_ms, now_ms) {
        Ok(found) => integer(request, i64::from(found.is_some())),
        Err(error) => store_error(request, error),
    }
}

/// EXPIRE's NX / XX / GT / LT against the key's current deadline, as Redis 7 decides them: a
/// key without a deadline counts as an infinite TTL (GT fails, LT holds). `deadline_ms` is the
/// new deadline (0 for one in the past). An absent key fails (the caller's reply is 0 anyway).
/// The read and the following `expire_at` run in the same worker step, so nothing can come
/// between them.
fn expire_condition_holds(
    shard: &mut Shard,
    request: &Request,
    args: ExpireArgs,
    deadline_ms: u64,
    now_ms: u64,
) -> bool {
    let ttl_ms = shard.ttl_ms(request.hash, request.key.as_slice(), now_ms);
    if ttl_ms == -2 {
        return false;
    }
    // None: no deadline (infinite).
    let current = (ttl_ms >= 0).then(|| now_ms.saturating_add(ttl_ms as u64));
    let only_if = args.only_if;
    if only_if.no_deadline && current.is_some() {
        return false;
    }
    if only_if.has_deadline && current.is_none() {
        return false;
    }
    if only_if.later && current.is_none_or(|current| deadline_ms <= current) {
        return false;
    }
    if only_if.earlier && current.is_some_and(|current| deadline_ms >= current) {
        return false;
    }
    true
}

/// GETEX: the value, then the deadline changed as `expiry` says ([`Expiry::Clear`]: PERSIST,
/// [`Expiry::Unchanged`] or [`Expiry::Keep`]: left alone).
fn execute_getex(shard: &mut Shard, request: &Request, expiry: Expiry, now_ms: u64) -> Reply {
    let (hash, key) = (request.hash, request.key.as_slice());
    let deadline_ms = match expiry {
        Expiry::InMs(ms) => match deadline_from(now_ms, ms as i64) {
            Some(deadline_ms) => Some(deadline_ms),
            None => return error_reply(request, ErrorKind::InvalidExpireTime),
        },
        Expiry::AtUnixMs(ms) => Some((ms as i64).max(0) as u64),
        Expiry::Clear | Expiry::Keep | Expiry::Unchanged => None,
    };
    let reply = bulk_or_nil(
        request,
        shard.get(hash, key, now_ms).map(|value| value.bytes),
    );
    if reply.outcome == Outcome::Nil {
        return reply;
    }
    if expiry == Expiry::Clear {
        shard.persist(hash, key, now_ms);
    } else if let Some(deadline_ms) = deadline_ms {
        if let Err(error) = shard.expire_at(hash, key, deadline_ms, now_ms) {
            return store_error(request, error);
        }
    }
    reply
}

/// KEYS on this shard: every live key matching the request's pattern, packed.
fn keys_reply(shard: &mut Shard, request: &Request, now_ms: u64) -> Reply {
    let pattern = request.value.as_slice();
    let mut packed = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = shard.scan(cursor, 1024, Some(pattern), now_ms, |key| {
            pack_key(&mut packed, key);
        });
        if cursor == 0 {
            break;
        }
    }
    let mut reply = Reply::to(request, Outcome::KeyList);
    reply.data = Bytes::copy_from(&packed);
    reply
}
