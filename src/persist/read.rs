//! Reading a data file frame by frame, in bounded chunks, and judging damage.

use super::PersistError;
use super::codec::{self, FileHeader, Frame, FrameError, HEADER_BYTES, MAX_BODY_BYTES, Record};
use super::fs::{Dir, File, read_full};

/// Bytes read from a file at a time (a frame larger than this is read whole).
pub const READ_CHUNK_BYTES: usize = 4 << 20;

/// How a walk over a file's frames ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// Every byte was a good frame; the file ends at `len`.
    Clean {
        /// The file's length.
        len: u64,
    },
    /// The frame at `offset` is bad (everything before it was good and was delivered).
    Damaged {
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong with it.
        error: FrameError,
        /// The file's length.
        len: u64,
    },
}

/// Opens `name` and reads its header.
pub fn open_with_header<D: Dir>(
    dir: &D,
    name: &str,
) -> Result<(D::File, FileHeader, u64), PersistError> {
    let file = dir
        .open(name)
        .map_err(|e| PersistError::io(&format!("open {name}"), &e))?;
    let len = file
        .size()
        .map_err(|e| PersistError::io(&format!("stat {name}"), &e))?;
    let mut bytes = [0u8; HEADER_BYTES];
    let read = read_full(&file, 0, &mut bytes)
        .map_err(|e| PersistError::io(&format!("read {name}"), &e))?;
    let (header, _) = FileHeader::decode(&bytes[..read]).map_err(|e| PersistError::Damaged {
        file: name.to_string(),
        offset: 0,
        reason: e.to_string(),
    })?;
    Ok((file, header, len))
}

/// Calls `each(offset, frame)` for every good frame of `file` from `start` on, until the end or
/// the first bad frame; `each` may stop the walk with an error. Reads `READ_CHUNK_BYTES` at a
/// time. `on_chunk(bytes_read_so_far)` runs after each chunk (progress).
pub fn read_frames<F: File, E: From<PersistError>>(
    file: &F,
    name: &str,
    start: u64,
    len: u64,
    mut each: impl FnMut(u64, &Frame<'_>) -> Result<(), E>,
    mut on_chunk: impl FnMut(u64),
) -> Result<ReadEnd, E> {
    let mut buffer = vec![
        0u8;
        READ_CHUNK_BYTES
            .min(len.saturating_sub(start) as usize)
            .max(64)
    ];
    // `buffer[..filled]` holds the file from `base` on.
    let mut base = start;
    let mut filled = 0usize;
    let mut at = 0usize; // position of the next frame in `buffer`
    loop {
        // Decode what the buffer holds.
        while at < filled {
            match codec::decode(&buffer[at..filled]) {
                Ok(frame) => {
                    each(base + at as u64, &frame)?;
                    at += frame.len;
                }
                Err(FrameError::Incomplete { needed }) if base + (at + needed) as u64 <= len => {
                    // The frame continues past the buffer: refill (growing it for a big frame).
                    if needed > buffer.len() {
                        buffer.resize(needed.min(codec::FRAME_PREFIX_BYTES + MAX_BODY_BYTES), 0);
                    }
                    break;
                }
                Err(error) => {
                    return Ok(ReadEnd::Damaged {
                        offset: base + at as u64,
                        error,
                        len,
                    });
                }
            }
        }
        // Move the unread rest to the front and read more.
        buffer.copy_within(at..filled, 0);
        base += at as u64;
        filled -= at;
        at = 0;
        if base + filled as u64 >= len {
            return Ok(if filled == 0 {
                ReadEnd::Clean { len }
            } else {
                // Bytes left that do not make a frame even with the whole file read.
                let error = codec::decode(&buffer[..filled])
                    .err()
                    .unwrap_or(FrameError::Incomplete { needed: filled + 1 });
                ReadEnd::Damaged {
                    offset: base,
                    error,
                    len,
                }
            });
        }
        let want = ((len - base) as usize).min(buffer.len());
        let read = read_full(file, base + filled as u64, &mut buffer[filled..want])
            .map_err(|e| PersistError::io(&format!("read {name}"), &e))?;
        if read == 0 {
            // The file shrank under us: treat the rest as missing.
            return Ok(ReadEnd::Damaged {
                offset: base,
                error: FrameError::Incomplete { needed: filled + 1 },
                len: base + filled as u64,
            });
        }
        filled += read;
        on_chunk(base + filled as u64);
    }
}

/// After damage at `offset` of a log file: whether a good [`Record::SyncMark`] further on
/// says a sync had made bytes past `offset` durable (then the damage is corruption of synced
/// data, not a torn tail). Also returns how many good frames were found after the damage.
/// Tries every byte offset: only runs on damage.
pub fn synced_past<F: File>(
    file: &F,
    name: &str,
    offset: u64,
    len: u64,
) -> Result<(bool, u64), PersistError> {
    let mut bytes = vec![0u8; (len - offset) as usize];
    let read = read_full(file, offset, &mut bytes)
        .map_err(|e| PersistError::io(&format!("read {name}"), &e))?;
    bytes.truncate(read);
    let mut good = 0;
    let mut synced = false;
    let mut at = 1;
    while at + codec::FRAME_PREFIX_BYTES <= bytes.len() {
        match codec::decode(&bytes[at..]) {
            Ok(frame) => {
                good += 1;
                if let Record::SyncMark { durable_bytes } = frame.record {
                    if durable_bytes > offset {
                        synced = true;
                    }
                }
                at += frame.len;
            }
            Err(_) => at += 1,
        }
    }
    Ok((synced, good))
}
