# Piccolo's native protocol: one Request in, one Response out, over standard Cap'n Proto stream
# framing on the same port as RESP (see docs/protocols.md for framing and for how the
# server tells the two protocols apart by the first byte).
#
# Rules that hold for every message:
# - Keys and values are `Data`: raw bytes, read in place from the receive buffer (no UTF-8 check,
#   no copy). Keys are never empty text in disguise: an empty `Data` is an empty key.
# - Times are milliseconds, named with the unit last (`inMs`, `atUnixMs`).
# - The client chooses `id`; the server copies it into the Response. Responses come back in
#   request order on a connection, so the id is for the client's bookkeeping, not for matching
#   out-of-order replies.
# - Ordinals are never reused or renumbered. New operations take the next free ordinal; an old
#   server answers an operation it does not know with `error.code = unknownOperation`.
#
# Regenerate the Rust code with schema/generate.sh; CI checks freshness with schema/check-fresh.sh.

@0xa108e7b33f69a9db;

struct Request {
  id @0 :UInt64;
  # Chosen by the client, echoed in the Response.

  union {
    ping @1 :Data;
    # Answered by `pong` carrying the same bytes (empty bytes: the server answers "PONG").

    get @2 :Data;
    # The key. Answer: `value` (with its version) or `notFound`.

    set @3 :Set;
    # Answer: `version` (the new version of the key) when written; `conditionFailed` when a
    # condition stopped the write; with `returnOld`, `value`/`notFound` for the old value instead.

    delete @4 :List(Data);
    # Keys. Answer: `integer`, the number of keys that existed and were removed.

    exists @5 :List(Data);
    # Keys. Answer: `integer`, how many of them exist (a key named twice counts twice, as in Redis).

    getDel @6 :Data;
    # Answer: `value` (then removed) or `notFound`.

    getEx @7 :GetEx;
    # Answer: `value` or `notFound`.

    incrBy @8 :IncrBy;
    # Answer: `integer`, the value after the increment; `error` `notInteger` or `overflow`.

    append @9 :KeyValue;
    # Answer: `integer`, the length of the value after appending.

    strlen @10 :Data;
    # Answer: `integer`, the length of the value (0 for a missing key).

    expire @11 :Expire;
    # Answer: `integer` 1 if the timeout was set, 0 if the key does not exist.

    persist @12 :Data;
    # Answer: `integer` 1 if a timeout was removed, 0 otherwise.

    ttl @13 :Data;
    # Answer: `integer`, remaining time to live in ms; -1 without expiry; -2 for a missing key.

    mget @14 :List(Data);
    # Answer: `values`, one entry per key, in order.

    mset @15 :List(KeyValue);
    # Answer: `ok`.

    scan @16 :Scan;
    # Answer: `scanPage`.

    dbsize @17 :Void;
    # Answer: `integer`, the number of keys.

    flush @18 :Void;
    # Removes every key (FLUSHALL; Piccolo has one database). Answer: `ok`.

    info @19 :Text;
    # Section name (empty: the default sections). Answer: `info`.

    getV @20 :Data;
    # Answer: `value` with its version, or `notFound`.

    cas @21 :Cas;
    # Answer: `version` (the new one) when the stored version matched; `conditionFailed` when it
    # did not; `notFound` when the key does not exist.

    auth @22 :Auth;
    # Authenticates the connection (RESP's AUTH) when the server runs with a password. Answer:
    # `ok`; `error` `unauthenticated` for a wrong password (the connection stays open and
    # unauthenticated); `error` `invalidArgument` when the server has no password and a username
    # other than "default" is given, or no username at all.
  }
}

struct Set {
  key @0 :Data;
  value @1 :Data;

  condition :union {
    always @2 :Void;
    # Default: write unconditionally.
    ifAbsent @3 :Void;
    # NX.
    ifPresent @4 :Void;
    # XX.
    ifVersion @5 :UInt64;
    # Write only if the key exists with exactly this version (compare-and-set).
    ifEqual @6 :Data;
    # IFEQ: write only if the key exists and its current value equals these bytes.
  }

  expiry :union {
    clear @7 :Void;
    # Default, as a plain Redis SET: the key has no expiry afterwards.
    keep @8 :Void;
    # KEEPTTL.
    inMs @9 :UInt64;
    # PX (EX is PX * 1000). Must be > 0.
    atUnixMs @10 :UInt64;
    # PXAT (EXAT is PXAT * 1000). Must be > 0.
  }

  returnOld @11 :Bool;
  # GET: answer with the old value (or notFound) instead of the new version.
  #
  # Every condition combines with every expiry and with returnOld. With `ifVersion` the write
  # and the expiry happen in one step on the key's owner, and the answered version is the
  # key's final one. `ifVersion` on a missing key answers `conditionFailed` (use `cas` to tell
  # a missing key from a stale version).
}

struct GetEx {
  key @0 :Data;

  expiry :union {
    keep @1 :Void;
    # Default: a plain read, the expiry is unchanged.
    persist @2 :Void;
    # PERSIST: remove the expiry.
    inMs @3 :UInt64;
    # PX. Must be > 0.
    atUnixMs @4 :UInt64;
    # PXAT. Must be > 0.
  }
}

struct IncrBy {
  key @0 :Data;
  delta @1 :Int64;
  # Negative to decrement.
}

struct KeyValue {
  key @0 :Data;
  value @1 :Data;
}

struct Expire {
  key @0 :Data;

  union {
    inMs @1 :Int64;
    # PEXPIRE. Zero or negative removes the key, as in Redis.
    atUnixMs @2 :Int64;
    # PEXPIREAT. A time in the past removes the key.
  }
}

struct Scan {
  cursor @0 :UInt64;
  # 0 starts a new iteration; then pass the cursor of the previous page.
  count @1 :UInt32;
  # A hint of how many keys to return; 0 means the server's default (10, as in Redis).
  match @2 :Data;
  # Glob pattern (Redis's MATCH syntax); empty matches every key.
}

struct Auth {
  username @0 :Text;
  # Empty: the one-argument form `AUTH password` (the default user); otherwise `AUTH user pass`,
  # where only "default" is known.
  password @1 :Data;
}

struct Cas {
  key @0 :Data;
  version @1 :UInt64;
  # The version the client last read (from getV or a write's answer).
  value @2 :Data;
}

struct Response {
  id @0 :UInt64;
  # The Request's id.

  union {
    ok @1 :Void;
    # Done, nothing to report (mset, flush).

    value @2 :Value;
    # A value that exists.

    notFound @3 :Void;
    # The key does not exist (or has expired).

    integer @4 :Int64;
    # Counts, lengths, ttl in ms, the result of incrBy.

    values @5 :List(MaybeValue);
    # mget: one entry per requested key, in order.

    scanPage @6 :ScanPage;

    info @7 :Text;
    # INFO text, the same as RESP's INFO reply.

    error @8 :Error;

    version @9 :UInt64;
    # A write succeeded; this is the key's new version.

    conditionFailed @10 :Void;
    # A conditional write (set with a condition, cas) did not happen.

    pong @11 :Data;
  }
}

struct Value {
  data @0 :Data;
  version @1 :UInt64;
  # The key's version: it changes on every write of the key. Compare-and-set (cas, set with
  # ifVersion) takes it back. 0 when the operation does not report versions.
}

struct MaybeValue {
  union {
    absent @0 :Void;
    data @1 :Data;
  }
}

struct ScanPage {
  cursor @0 :UInt64;
  # Pass it to the next scan; 0 when the iteration is complete.
  keys @1 :List(Data);
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;
  # Human-readable, worded as the RESP error for the same case (without the "ERR " prefix).
}

enum ErrorCode {
  internal @0;
  # A bug or an unexpected state in the server; the message says more.
  unknownOperation @1;
  # The Request's union holds an operation this server does not know (a newer client).
  invalidArgument @2;
  # A field has a value the operation does not accept (e.g. an expiry of 0).
  notInteger @3;
  # "value is not an integer or out of range".
  overflow @4;
  # "increment or decrement would overflow".
  tooLarge @5;
  # A key, value or message exceeds the server's limits.
  busy @6;
  # The server sheds load; retry later.
  unauthenticated @7;
  # The connection must authenticate first (the `auth` operation), or `auth` was refused.
  shuttingDown @8;
  # The server is stopping and did not run the request.
  moved @9;
  # (Cluster, later) the key's slot lives on another node; the message is "slot host:port".
  malformed @10;
  # The Request could not be decoded; the server closes the connection after this answer.
}
