//! Unit tests of the Cap'n Proto framing, decoding and encoding (`capnp.rs`).

use super::piccolo_capnp::{ErrorCode, maybe_value, request, response, set};
use super::*;

fn aligned_copy(bytes: &[u8]) -> Vec<Word> {
    let mut words = Word::allocate_zeroed_vec(bytes.len().div_ceil(8));
    Word::words_to_bytes_mut(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

fn encode_set_request(encoder: &mut MessageEncoder, out: &mut Vec<u8>, id: u64, value: &[u8]) {
    encoder.encode_request(out, |mut request| {
        request.set_id(id);
        let mut set = request.init_set();
        set.set_key(b"key");
        set.set_value(value);
        set.reborrow().init_condition().set_if_version(7);
        set.reborrow().init_expiry().set_in_ms(1500);
        set.set_return_old(true);
    });
}

#[test]
fn request_round_trip() {
    let mut encoder = MessageEncoder::default();
    let mut out = Vec::new();
    encode_set_request(&mut encoder, &mut out, 42, b"hello");
    let len = frame_len(&out, &FrameLimits::DEFAULT).unwrap().unwrap();
    assert_eq!(len, out.len());
    assert_eq!(&out[..4], &[0, 0, 0, 0], "a single segment");

    let words = aligned_copy(&out);
    let frame = &Word::words_to_bytes(&words)[..len];
    let mut scratch = Vec::new();
    let message = decode_request(frame, &mut scratch).unwrap();
    let request = message.get().unwrap();
    assert_eq!(request.get_id(), 42);
    let request::Which::Set(set) = request.which().unwrap() else {
        panic!("not a set")
    };
    let set = set.unwrap();
    assert_eq!(set.get_key().unwrap(), b"key");
    assert_eq!(set.get_value().unwrap(), b"hello");
    assert!(matches!(
        set.get_condition().which().unwrap(),
        set::condition::IfVersion(7)
    ));
    assert!(matches!(
        set.get_expiry().which().unwrap(),
        set::expiry::InMs(1500)
    ));
    assert!(set.get_return_old());
    assert!(scratch.is_empty(), "aligned frames are read in place");
}

#[test]
fn unaligned_frames_are_copied_to_scratch() {
    let mut encoder = MessageEncoder::default();
    let mut out = vec![0xAA];
    encode_set_request(&mut encoder, &mut out, 1, b"v");
    let mut holder = aligned_copy(&[0u8; 8]);
    holder.extend(aligned_copy(&out));
    // Skip 8 + 1 bytes: the frame starts one byte past a word boundary.
    let bytes = &Word::words_to_bytes(&holder)[9..9 + out.len() - 1];
    assert_ne!(bytes.as_ptr() as usize % 8, 0);
    let mut scratch = Vec::new();
    let message = decode_request(bytes, &mut scratch).unwrap();
    assert_eq!(message.get().unwrap().get_id(), 1);
    assert!(!scratch.is_empty());
}

#[test]
fn response_round_trip_every_kind() {
    let mut encoder = MessageEncoder::new(4);
    let mut out = Vec::new();
    encoder.encode_response(&mut out, |mut response| {
        response.set_id(1);
        let mut value = response.init_value();
        value.set_data(b"v");
        value.set_version(9);
    });
    encoder.encode_response(&mut out, |mut response| {
        response.set_id(2);
        let mut values = response.init_values(2);
        values.reborrow().get(0).set_data(b"x");
        values.reborrow().get(1).set_absent(());
    });
    encoder.encode_response(&mut out, |mut response| {
        response.set_id(3);
        let mut page = response.init_scan_page();
        page.set_cursor(17);
        let mut keys = page.init_keys(1);
        keys.set(0, b"k");
    });
    write_error_response(
        &mut encoder,
        &mut out,
        4,
        ErrorCode::NotInteger,
        "value is not an integer or out of range",
    );
    // A value larger than the 4-word first segment spills into a second segment.
    let big = vec![7u8; 1000];
    encoder.encode_response(&mut out, |mut response| {
        response.set_id(5);
        response.init_value().set_data(&big);
    });

    let words = aligned_copy(&out);
    let mut buffer = &Word::words_to_bytes(&words)[..out.len()];
    let mut seen = Vec::new();
    let mut scratch = Vec::new();
    while let Some(len) = frame_len(buffer, &FrameLimits::DEFAULT).unwrap() {
        let message = decode::<response::Owned>(&buffer[..len], &mut scratch).unwrap();
        let response = message.get().unwrap();
        let id = response.get_id();
        match response.which().unwrap() {
            response::Value(value) => {
                let value = value.unwrap();
                if id == 1 {
                    assert_eq!(
                        (value.get_data().unwrap(), value.get_version()),
                        (&b"v"[..], 9)
                    );
                } else {
                    assert_eq!(value.get_data().unwrap(), &big[..]);
                    assert_ne!(&buffer[..4], &[0, 0, 0, 0], "expected several segments");
                }
            }
            response::Values(values) => {
                let values = values.unwrap();
                assert!(matches!(
                    values.get(0).which().unwrap(),
                    maybe_value::Data(Ok(b"x"))
                ));
                assert!(matches!(
                    values.get(1).which().unwrap(),
                    maybe_value::Absent(())
                ));
            }
            response::ScanPage(page) => {
                let page = page.unwrap();
                assert_eq!(page.get_cursor(), 17);
                assert_eq!(page.get_keys().unwrap().get(0).unwrap(), b"k");
            }
            response::Error(error) => {
                let error = error.unwrap();
                assert_eq!(error.get_code().unwrap(), ErrorCode::NotInteger);
                assert_eq!(
                    error.get_message().unwrap(),
                    "value is not an integer or out of range"
                );
            }
            _ => panic!("unexpected response {id}"),
        }
        seen.push(id);
        buffer = &buffer[len..];
    }
    assert!(buffer.is_empty());
    assert_eq!(seen, [1, 2, 3, 4, 5]);
}

#[test]
fn truncated_frames_need_more_bytes() {
    let mut encoder = MessageEncoder::new(2);
    let mut out = Vec::new();
    encoder.encode_request(&mut out, |mut request| {
        request.set_id(3);
        request.init_mget(3).set(0, &[1u8; 100][..]);
    });
    let whole = frame_len(&out, &FrameLimits::DEFAULT).unwrap().unwrap();
    assert_eq!(whole, out.len());
    for end in 0..out.len() {
        assert_eq!(
            frame_len(&out[..end], &FrameLimits::DEFAULT),
            Ok(None),
            "prefix {end}"
        );
    }
}

#[test]
fn absurd_headers_are_rejected_early() {
    let limits = FrameLimits {
        max_message_bytes: 1 << 20,
        max_segments: 64,
    };
    // 2^32 segments: rejected from the first four bytes.
    assert_eq!(
        frame_len(&[0xff; 4], &limits),
        Err(FrameError::TooManySegments { segments: 1 << 32 })
    );
    assert_eq!(
        frame_len(&64u32.to_le_bytes(), &limits),
        Err(FrameError::TooManySegments { segments: 65 })
    );
    // One segment of 2^32 - 1 words: rejected from the first eight bytes.
    let mut header = 0u32.to_le_bytes().to_vec();
    header.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        frame_len(&header, &limits),
        Err(FrameError::TooLarge { .. })
    ));
    // Many segments whose sum passes the limit, reported once it does.
    let mut header = 63u32.to_le_bytes().to_vec();
    for _ in 0..3 {
        header.extend_from_slice(&(1u32 << 16).to_le_bytes());
    }
    assert!(matches!(
        frame_len(&header, &limits),
        Err(FrameError::TooLarge { .. })
    ));
    assert_eq!(
        frame_len(&header[..8], &limits),
        Ok(None),
        "one 512 KiB segment fits"
    );
    assert!(
        FrameError::TooLarge { bytes: 9 }
            .to_string()
            .contains("9 bytes")
    );
}

#[test]
fn frames_shorter_than_their_header_are_decode_errors() {
    let mut encoder = MessageEncoder::default();
    let mut out = Vec::new();
    encode_set_request(&mut encoder, &mut out, 5, b"value");
    let words = aligned_copy(&out);
    let bytes = Word::words_to_bytes(&words);
    let mut scratch = Vec::new();
    assert_eq!(
        decode_request(&bytes[..out.len()], &mut scratch)
            .unwrap()
            .get()
            .unwrap()
            .get_id(),
        5
    );
    // Cut inside the header, then inside the segment: errors, never a panic or a read
    // past the end.
    for len in [0, 4, 7, 8, out.len() - 8, out.len() - 1] {
        assert!(
            decode_request(&bytes[..len], &mut scratch).is_err(),
            "len {len}"
        );
    }
}

#[test]
fn garbage_after_a_valid_header_is_a_decode_error() {
    // One segment of two words whose root pointer points far outside the segment.
    let mut bytes = 0u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&2u32.to_le_bytes());
    bytes.extend_from_slice(&[0xfc, 0xff, 0xff, 0x7f, 1, 0, 1, 0]);
    bytes.extend_from_slice(&[0; 8]);
    let len = frame_len(&bytes, &FrameLimits::DEFAULT).unwrap().unwrap();
    let words = aligned_copy(&bytes);
    let mut scratch = Vec::new();
    let message = decode_request(&Word::words_to_bytes(&words)[..len], &mut scratch).unwrap();
    assert!(message.get().is_err());
}

#[test]
fn random_frames_never_panic() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..128), |bytes| {
            let limits = FrameLimits {
                max_message_bytes: 4096,
                max_segments: 8,
            };
            if let Ok(Some(len)) = frame_len(&bytes, &limits) {
                let words = aligned_copy(&bytes);
                let mut scratch = Vec::new();
                let frame = &Word::words_to_bytes(&words)[..len];
                let Ok(message) = decode_request(frame, &mut scratch) else {
                    return Ok(());
                };
                let Ok(request) = message.get() else {
                    return Ok(());
                };
                let _ = request.get_id();
                if let Ok(request::Set(Ok(set))) = request.which() {
                    let _ = set.get_key();
                    let _ = set.get_value();
                }
            }
            Ok(())
        })
        .unwrap();
}

fn builder_value_response(
    encoder: &mut MessageEncoder,
    id: u64,
    data: &[u8],
    version: u64,
) -> Vec<u8> {
    let mut out = Vec::new();
    encoder.encode_response(&mut out, |mut response| {
        response.set_id(id);
        let mut value = response.init_value();
        value.set_data(data);
        value.set_version(version);
    });
    out
}

#[test]
fn direct_value_response_matches_the_builder() {
    let mut encoder = MessageEncoder::default();
    let ids = [0, 1, 42, u64::MAX];
    for len in (0..=80).chain([255, 256, 1000, 4096]) {
        let data: Vec<u8> = (0..len).map(|index| (index * 7 + 3) as u8).collect();
        for (index, &id) in ids.iter().enumerate() {
            let version = (index as u64) << 40 | len as u64;
            let mut direct = vec![0xAA];
            write_value_response(&mut encoder, &mut direct, id, &data, version);
            assert_eq!(direct[0], 0xAA, "appends after what is there");
            let expected = builder_value_response(&mut encoder, id, &data, version);
            assert_eq!(&direct[1..], &expected[..], "len {len}, id {id}");
        }
    }
}

#[test]
fn direct_value_response_beyond_the_first_segment_decodes_the_same() {
    // The builder spills a value larger than its first segment into a second one; the
    // direct writer keeps one segment. Both must read back the same.
    let mut encoder = MessageEncoder::new(16);
    let data: Vec<u8> = (0..5000).map(|index| (index % 251) as u8).collect();
    let mut direct = Vec::new();
    write_value_response(&mut encoder, &mut direct, 9, &data, 77);
    let built = builder_value_response(&mut encoder, 9, &data, 77);
    assert_ne!(direct, built, "the builder used two segments");
    for frame in [&direct, &built] {
        assert_eq!(
            frame_len(frame, &FrameLimits::DEFAULT),
            Ok(Some(frame.len()))
        );
        let words = aligned_copy(frame);
        let mut scratch = Vec::new();
        let bytes = &Word::words_to_bytes(&words)[..frame.len()];
        let message = decode::<response::Owned>(bytes, &mut scratch).unwrap();
        let response = message.get().unwrap();
        assert_eq!(response.get_id(), 9);
        let response::Value(value) = response.which().unwrap() else {
            panic!("not a value");
        };
        let value = value.unwrap();
        assert_eq!(value.get_data().unwrap(), &data[..]);
        assert_eq!(value.get_version(), 77);
    }
}

#[test]
fn direct_version_response_matches_the_builder() {
    let mut encoder = MessageEncoder::new(128);
    for (id, version) in [(0, 0), (1, 1), (7, 1 << 55), (u64::MAX, u64::MAX)] {
        let mut direct = b"x".to_vec();
        write_version_response(&mut direct, id, version);
        let mut expected = b"x".to_vec();
        encoder.encode_response(&mut expected, |mut response| {
            response.set_id(id);
            response.set_version(version);
        });
        assert_eq!(direct, expected, "id {id}, version {version}");
    }
}

#[test]
fn direct_value_responses_match_the_builder_for_random_input() {
    use proptest::prelude::*;
    let encoder = std::cell::RefCell::new(MessageEncoder::default());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
    let input = (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..2048),
    );
    runner
        .run(&input, |(id, version, data)| {
            let encoder = &mut *encoder.borrow_mut();
            let mut direct = Vec::new();
            write_value_response(encoder, &mut direct, id, &data, version);
            let expected = builder_value_response(encoder, id, &data, version);
            prop_assert_eq!(direct, expected);
            Ok(())
        })
        .unwrap();
}
