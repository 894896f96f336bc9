//! Raft peer frames from the network: any bytes either decode or give an error, never a panic;
//! what decodes encodes back to a frame that decodes to the same messages.

#![no_main]

use libfuzzer_sys::fuzz_target;
use piccolo::proto::peer::{self, PeerEncoder};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = peer::decode(data) {
        let mut frame = Vec::new();
        peer::encode(&message, &mut frame);
        assert_eq!(peer::decode(&frame), Ok(message));
    }
    if let Ok(messages) = peer::decode_batch(data) {
        let mut frame = Vec::new();
        PeerEncoder::default().encode_batch(&messages, &mut frame);
        assert_eq!(peer::decode_batch(&frame), Ok(messages));
    }
});
