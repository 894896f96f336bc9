//! Raft peer messages on the wire: [`crate::raft::Message`] to and from `schema/peer.capnp`.
//!
//! Layering: this codec imports the Raft core's message types; the core imports nothing from
//! `proto`, so the dependency points one way (`proto::peer -> raft`) and the core stays free of
//! I/O and of any wire format.
//!
//! Frames use the standard stream framing (see [`super::capnp`]): [`encode`] appends one framed
//! `PeerMessage`; [`decode`] reads one whole frame and checks it completely, copying payloads
//! out, so the result owns its bytes and no borrowed reader outlives the receive buffer. Every
//! malformed frame is an `Err`, never a panic: a peer link that sends one is closed.

use std::sync::Arc;

use super::capnp::{FrameLimits, MessageEncoder, decode as decode_frame, frame_len};
use crate::raft::message::{Body, Entry, EntryKind, Membership, Message, SnapshotMeta};

/// Code generated from `schema/peer.capnp` by `schema/generate.sh`. Do not edit.
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::undocumented_unsafe_blocks)]
#[allow(missing_docs, unused, unsafe_op_in_unsafe_fn, unused_qualifications, non_camel_case_types)]
#[path = "../../schema/peer_capnp.rs"]
pub mod peer_capnp;

use peer_capnp::{EntryKind as WireKind, peer_batch, peer_message};

/// Bounds on one peer frame: a whole append batch or snapshot chunk (the core's defaults send
/// at most 1 MiB of entries or of snapshot per message) with room to spare.
pub const PEER_FRAME_LIMITS: FrameLimits = FrameLimits {
    max_message_bytes: 64 << 20,
    max_segments: 64,
};

/// Why a frame did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerError {
    /// The bytes are not exactly one whole frame within [`PEER_FRAME_LIMITS`].
    Framing(String),
    /// The frame is not a valid `PeerMessage` (bad pointers, unknown kind, ...).
    Malformed(String),
}

impl core::fmt::Display for PeerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PeerError::Framing(reason) => write!(f, "bad peer frame: {reason}"),
            PeerError::Malformed(reason) => write!(f, "malformed peer message: {reason}"),
        }
    }
}

impl std::error::Error for PeerError {}

impl From<::capnp::Error> for PeerError {
    fn from(error: ::capnp::Error) -> Self {
        PeerError::Malformed(error.to_string())
    }
}

impl From<::capnp::NotInSchema> for PeerError {
    fn from(error: ::capnp::NotInSchema) -> Self {
        PeerError::Malformed(error.to_string())
    }
}

/// Encodes peer messages, reusing one first segment (no allocation per message once warm,
/// except for messages larger than it).
#[derive(Debug, Default)]
pub struct PeerEncoder {
    encoder: MessageEncoder,
}

impl PeerEncoder {
    /// Appends `message`, framed, to `out`.
    pub fn encode(&mut self, message: &Message, out: &mut Vec<u8>) {
        self.encoder
            .encode::<peer_message::Owned, ()>(out, |builder| write_message(message, builder));
    }

    /// Appends a `PeerBatch` of `messages`, framed, to `out`.
    pub fn encode_batch(&mut self, messages: &[Message], out: &mut Vec<u8>) {
        self.encoder
            .encode::<peer_batch::Owned, ()>(out, |builder| {
                let mut list = builder.init_messages(messages.len() as u32);
                for (at, message) in messages.iter().enumerate() {
                    write_message(message, list.reborrow().get(at as u32));
                }
            });
    }
}

/// Appends `message`, framed, to `out` (a one-off encoder; keep a [`PeerEncoder`] for many).
pub fn encode(message: &Message, out: &mut Vec<u8>) {
    let mut builder = ::capnp::message::Builder::new_default();
    write_message(message, builder.init_root());
    super::capnp::write_segments(&builder.get_segments_for_output(), out);
}

fn write_message(message: &Message, mut builder: peer_message::Builder<'_>) {
    builder.set_group(message.group);
    builder.set_from(message.from);
    builder.set_to(message.to);
    builder.set_term(message.term);
    match &message.body {
        Body::Vote {
            pre,
            last_index,
            last_term,
        } => {
            let mut vote = builder.init_vote();
            vote.set_pre(*pre);
            vote.set_last_index(*last_index);
            vote.set_last_term(*last_term);
        }
        Body::VoteResponse { pre, granted } => {
            let mut response = builder.init_vote_response();
            response.set_pre(*pre);
            response.set_granted(*granted);
        }
        Body::Append {
            prev_index,
            prev_term,
            commit,
            entries,
        } => {
            let mut append = builder.init_append();
            append.set_prev_index(*prev_index);
            append.set_prev_term(*prev_term);
            append.set_commit(*commit);
            let mut list = append.init_entries(entries.len() as u32);
            for (at, entry) in entries.iter().enumerate() {
                let mut out = list.reborrow().get(at as u32);
                out.set_term(entry.term);
                out.set_index(entry.index);
                out.set_kind(match entry.kind {
                    EntryKind::Normal => WireKind::Normal,
                    EntryKind::Noop => WireKind::Noop,
                });
                out.set_data(&entry.data);
            }
        }
        Body::AppendResponse {
            index,
            reject,
            hint_index,
            hint_term,
        } => {
            let mut response = builder.init_append_response();
            response.set_index(*index);
            response.set_reject(*reject);
            response.set_hint_index(*hint_index);
            response.set_hint_term(*hint_term);
        }
        Body::Heartbeat { commit, round } => {
            let mut heartbeat = builder.init_heartbeat();
            heartbeat.set_commit(*commit);
            heartbeat.set_round(*round);
        }
        Body::HeartbeatResponse { round } => {
            builder.init_heartbeat_response().set_round(*round);
        }
        Body::Snapshot {
            meta,
            offset,
            total_bytes,
            data,
        } => {
            let mut chunk = builder.init_snapshot();
            {
                let mut out = chunk.reborrow().init_meta();
                out.set_index(meta.index);
                out.set_term(meta.term);
                let mut voters = out
                    .reborrow()
                    .init_voters(meta.membership.voters.len() as u32);
                for (at, voter) in meta.membership.voters.iter().enumerate() {
                    voters.set(at as u32, *voter);
                }
                let mut learners = out.init_learners(meta.membership.learners.len() as u32);
                for (at, learner) in meta.membership.learners.iter().enumerate() {
                    learners.set(at as u32, *learner);
                }
            }
            chunk.set_offset(*offset);
            chunk.set_total_bytes(*total_bytes);
            chunk.set_data(data);
        }
        Body::SnapshotResponse {
            index,
            received_bytes,
        } => {
            let mut response = builder.init_snapshot_response();
            response.set_index(*index);
            response.set_received_bytes(*received_bytes);
        }
    }
}

/// Checks that `frame` is exactly one whole frame within the limits.
fn check_frame(frame: &[u8]) -> Result<(), PeerError> {
    match frame_len(frame, &PEER_FRAME_LIMITS) {
        Ok(Some(len)) if len == frame.len() => Ok(()),
        Ok(Some(len)) => Err(PeerError::Framing(format!(
            "{} bytes after a frame of {len}",
            frame.len() - len
        ))),
        Ok(None) => Err(PeerError::Framing("the frame is cut short".to_string())),
        Err(error) => Err(PeerError::Framing(error.to_string())),
    }
}

/// Decodes one whole framed `PeerMessage`.
pub fn decode(frame: &[u8]) -> Result<Message, PeerError> {
    check_frame(frame)?;
    let mut scratch = Vec::new();
    let reader = decode_frame::<peer_message::Owned>(frame, &mut scratch)?;
    read_message(reader.get()?)
}

/// Decodes one whole framed `PeerBatch`.
pub fn decode_batch(frame: &[u8]) -> Result<Vec<Message>, PeerError> {
    check_frame(frame)?;
    let mut scratch = Vec::new();
    let reader = decode_frame::<peer_batch::Owned>(frame, &mut scratch)?;
    let list = reader.get()?.get_messages()?;
    let mut messages = Vec::with_capacity(list.len() as usize);
    for message in list.iter() {
        messages.push(read_message(message)?);
    }
    Ok(messages)
}

fn read_message(reader: peer_message::Reader<'_>) -> Result<Message, PeerError> {
    use peer_message::Which;
    let body = match reader.which()? {
        Which::Vote(vote) => {
            let vote = vote?;
            Body::Vote {
                pre: vote.get_pre(),
                last_index: vote.get_last_index(),
                last_term: vote.get_last_term(),
            }
        }
        Which::VoteResponse(response) => {
            let response = response?;
            Body::VoteResponse {
                pre: response.get_pre(),
                granted: response.get_granted(),
            }
        }
        Which::Append(append) => {
            let append = append?;
            let list = append.get_entries()?;
            let mut entries = Vec::with_capacity(list.len() as usize);
            for entry in list.iter() {
                entries.push(Entry {
                    term: entry.get_term(),
                    index: entry.get_index(),
                    kind: match entry.get_kind()? {
                        WireKind::Normal => EntryKind::Normal,
                        WireKind::Noop => EntryKind::Noop,
                    },
                    data: Arc::from(entry.get_data()?),
                });
            }
            Body::Append {
                prev_index: append.get_prev_index(),
                prev_term: append.get_prev_term(),
                commit: append.get_commit(),
                entries,
            }
        }
        Which::AppendResponse(response) => {
            let response = response?;
            Body::AppendResponse {
                index: response.get_index(),
                reject: response.get_reject(),
                hint_index: response.get_hint_index(),
                hint_term: response.get_hint_term(),
            }
        }
        Which::Heartbeat(heartbeat) => {
            let heartbeat = heartbeat?;
            Body::Heartbeat {
                commit: heartbeat.get_commit(),
                round: heartbeat.get_round(),
            }
        }
        Which::HeartbeatResponse(response) => Body::HeartbeatResponse {
            round: response?.get_round(),
        },
        Which::Snapshot(chunk) => {
            let chunk = chunk?;
            let meta = chunk.get_meta()?;
            Body::Snapshot {
                meta: SnapshotMeta {
                    index: meta.get_index(),
                    term: meta.get_term(),
                    membership: Membership {
                        voters: meta.get_voters()?.iter().collect(),
                        learners: meta.get_learners()?.iter().collect(),
                    },
                },
                offset: chunk.get_offset(),
                total_bytes: chunk.get_total_bytes(),
                data: chunk.get_data()?.to_vec(),
            }
        }
        Which::SnapshotResponse(response) => {
            let response = response?;
            Body::SnapshotResponse {
                index: response.get_index(),
                received_bytes: response.get_received_bytes(),
            }
        }
    };
    Ok(Message {
        group: reader.get_group(),
        from: reader.get_from(),
        to: reader.get_to(),
        term: reader.get_term(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry_strategy() -> impl Strategy<Value = Entry> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(term, index, noop, data)| Entry {
                term,
                index,
                kind: if noop {
                    EntryKind::Noop
                } else {
                    EntryKind::Normal
                },
                data: data.into(),
            })
    }

    fn body_strategy() -> impl Strategy<Value = Body> {
        let ids = proptest::collection::vec(any::<u64>(), 0..7);
        prop_oneof![
            (any::<bool>(), any::<u64>(), any::<u64>()).prop_map(|(pre, last_index, last_term)| {
                Body::Vote {
                    pre,
                    last_index,
                    last_term,
                }
            }),
            (any::<bool>(), any::<bool>())
                .prop_map(|(pre, granted)| Body::VoteResponse { pre, granted }),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(entry_strategy(), 0..8)
            )
                .prop_map(|(prev_index, prev_term, commit, entries)| Body::Append {
                    prev_index,
                    prev_term,
                    commit,
                    entries,
                }),
            (any::<u64>(), any::<bool>(), any::<u64>(), any::<u64>()).prop_map(
                |(index, reject, hint_index, hint_term)| Body::AppendResponse {
                    index,
                    reject,
                    hint_index,
                    hint_term,
                }
            ),
            (any::<u64>(), any::<u64>())
                .prop_map(|(commit, round)| Body::Heartbeat { commit, round }),
            any::<u64>().prop_map(|round| Body::HeartbeatResponse { round }),
            (
                any::<u64>(),
                any::<u64>(),
                ids.clone(),
                ids,
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..200)
            )
                .prop_map(
                    |(index, term, voters, learners, offset, total_bytes, data)| {
                        Body::Snapshot {
                            meta: SnapshotMeta {
                                index,
                                term,
                                membership: Membership { voters, learners },
                            },
                            offset,
                            total_bytes,
                            data,
                        }
                    }
                ),
            (any::<u64>(), any::<u64>()).prop_map(|(index, received_bytes)| {
                Body::SnapshotResponse {
                    index,
                    received_bytes,
                }
            }),
        ]
    }

    fn message_strategy() -> impl Strategy<Value = Message> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            body_strategy(),
        )
            .prop_map(|(group, from, to, term, body)| Message {
                group,
                from,
                to,
                term,
                body,
            })
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(message in message_strategy()) {
            let mut one_off = Vec::new();
            encode(&message, &mut one_off);
            prop_assert_eq!(decode(&one_off), Ok(message.clone()));
            let mut reused = Vec::new();
            let mut encoder = PeerEncoder::default();
            encoder.encode(&message, &mut reused);
            prop_assert_eq!(&reused, &one_off);
            // Unaligned input decodes too (through the scratch copy).
            let mut shifted = vec![0u8];
            shifted.extend_from_slice(&one_off);
            prop_assert_eq!(decode(&shifted[1..]), Ok(message));
        }

        #[test]
        fn batches_round_trip(messages in proptest::collection::vec(message_strategy(), 0..6)) {
            let mut out = Vec::new();
            PeerEncoder::default().encode_batch(&messages, &mut out);
            prop_assert_eq!(decode_batch(&out), Ok(messages));
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
            let _ = decode_batch(&bytes);
        }

        #[test]
        fn damaged_frames_are_errors_not_panics(
            message in message_strategy(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let mut frame = Vec::new();
            encode(&message, &mut frame);
            let mut damaged = frame.clone();
            for (at, value) in flips {
                let at = at % damaged.len();
                damaged[at] ^= value | 1;
            }
            let _ = decode(&damaged);
            // Any strict prefix is cut short.
            let cut = cut % frame.len();
            prop_assert!(decode(&frame[..cut]).is_err());
            // Trailing bytes are refused.
            let mut longer = frame.clone();
            longer.extend_from_slice(&[0; 8]);
            prop_assert!(decode(&longer).is_err());
        }
    }

    #[test]
    fn a_client_request_is_not_a_peer_message() {
        // A frame of the client protocol reads as an unknown union member or bad pointer here.
        let mut frame = Vec::new();
        let mut encoder = MessageEncoder::default();
        encoder.encode_request(&mut frame, |mut request| {
            request.set_id(9);
            request.set_get(b"key");
        });
        assert!(decode(&frame).is_err());
    }
}
