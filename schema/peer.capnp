# Messages between the Raft nodes of a Piccolo cluster (the peer port). One `PeerMessage` is one
# message of one Raft group; a `PeerBatch` carries all the messages for one peer gathered in one
# poll. Standard stream framing, as on the client port.
#
# Rules that hold for every message:
# - Terms, indexes, node ids and group ids are UInt64. Node id 0 means "nobody".
# - Entry payloads and snapshot chunks are `Data`: raw bytes, never interpreted here.
# - Ordinals are never reused or renumbered. A new message kind takes the next free ordinal.
#
# The Rust types are piccolo::raft::message; the codec is piccolo::proto::peer. Regenerate the
# Rust code with schema/generate.sh; CI checks freshness with schema/check-fresh.sh.

@0x8a244e1ff1920c0a;

struct PeerMessage {
  group @0 :UInt64;
  from @1 :UInt64;
  to @2 :UInt64;
  term @3 :UInt64;
  # The sender's term (for a pre-vote request: the term it would campaign in).

  union {
    vote @4 :Vote;
    voteResponse @5 :VoteResponse;
    append @6 :Append;
    appendResponse @7 :AppendResponse;
    heartbeat @8 :Heartbeat;
    heartbeatResponse @9 :HeartbeatResponse;
    snapshot @10 :SnapshotChunk;
    snapshotResponse @11 :SnapshotResponse;
  }
}

struct PeerBatch {
  messages @0 :List(PeerMessage);
}

struct Vote {
  pre @0 :Bool;
  # A pre-vote: "would you vote for me?", which changes nothing on the receiver.
  lastIndex @1 :UInt64;
  lastTerm @2 :UInt64;
}

struct VoteResponse {
  pre @0 :Bool;
  granted @1 :Bool;
}

enum EntryKind {
  normal @0;
  noop @1;
  # The empty entry a new leader appends at the start of its term.
}

struct Entry {
  term @0 :UInt64;
  index @1 :UInt64;
  kind @2 :EntryKind;
  data @3 :Data;
}

struct Append {
  prevIndex @0 :UInt64;
  prevTerm @1 :UInt64;
  commit @2 :UInt64;
  entries @3 :List(Entry);
}

struct AppendResponse {
  index @0 :UInt64;
  # Accepted: the logs agree up to here. Rejected: the prevIndex that did not match.
  reject @1 :Bool;
  hintIndex @2 :UInt64;
  hintTerm @3 :UInt64;
  # On rejection: where the follower guesses the logs may agree, and its term there.
}

struct Heartbeat {
  commit @0 :UInt64;
  round @1 :UInt64;
}

struct HeartbeatResponse {
  round @0 :UInt64;
}

struct SnapshotMeta {
  index @0 :UInt64;
  term @1 :UInt64;
  voters @2 :List(UInt64);
  learners @3 :List(UInt64);
}

struct SnapshotChunk {
  meta @0 :SnapshotMeta;
  offset @1 :UInt64;
  totalBytes @2 :UInt64;
  data @3 :Data;
}

struct SnapshotResponse {
  index @0 :UInt64;
  receivedBytes @1 :UInt64;
}
