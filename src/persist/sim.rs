//! [`SimDir`]: an in-memory directory that behaves like a Linux file system under faults, for
//! tests. It keeps two states of everything: what the page cache holds (what reads see) and
//! what the disk holds (what survives [`SimDir::crash`], a power cut).
//!
//! - A write lands in the cache. `fdatasync` copies the file's cache to its disk image.
//! - A failed `fdatasync` (injected) drops the dirty bytes as Linux does: they stay readable in
//!   the cache but will never reach the disk, and the *next* `fdatasync` succeeds (the
//!   fsyncgate behaviour that [`GuardedFile`](super::fs::GuardedFile) must not believe). On the
//!   disk those bytes read as zeros if later data is synced after them.
//! - Creations, renames and removals reach the disk only with `sync_dir`.
//! - A crash replaces the cache by the disk image, optionally leaving a torn fragment (a
//!   random prefix of the unsynced bytes, maybe with a flipped byte) at the end of a file.
//!
//! Faults ([`SimFaults`]): short writes, EIO on the n-th write, EIO on the n-th fdatasync,
//! ENOSPC past a capacity. Everything random comes from a seed.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::fs::{Dir, File};

/// A small, fast, seedable generator (SplitMix64) for tests and simulations.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        self.next_u64() % bound
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Faults to inject. The default injects none.
#[derive(Clone, Debug, Default)]
pub struct SimFaults {
    /// Every write writes a random number of bytes (at least one).
    pub short_writes: bool,
    /// The write call with this number (counting from 1 over the directory's life, see
    /// [`SimCounters::writes`]) fails with EIO, writing nothing.
    pub fail_write_number: Option<u64>,
    /// The `fdatasync` with this number (counting from 1) fails with EIO and drops the dirty
    /// bytes of that file.
    pub fail_sync_number: Option<u64>,
    /// Bytes the disk holds in all (the sum of the files' lengths); a write past it writes what
    /// fits, then fails with ENOSPC.
    pub capacity_bytes: Option<u64>,
    /// Seed of the short-write lengths.
    pub seed: u64,
}

/// Calls made so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimCounters {
    /// Write calls (each attempt counts, short or failed).
    pub writes: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
    /// `sync_dir` calls.
    pub dir_syncs: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

#[derive(Debug, Default, Clone)]
struct Inode {
    /// What reads see.
    cache: Vec<u8>,
    /// What survives a crash.
    disk: Vec<u8>,
    /// Bytes of the cache from here on are not on the disk (dirty).
    dirty_from: usize,
    /// Ranges whose write-back was abandoned by a failed sync: never copied to the disk.
    lost: Vec<(usize, usize)>,
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    names: BTreeMap<String, usize>,
    durable_names: BTreeMap<String, usize>,
    faults: SimFaults,
    rng: Option<SplitMix64>,
    counters: SimCounters,
}

impl State {
    fn used_bytes(&self) -> u64 {
        let mut seen: Vec<usize> = self.names.values().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        seen.iter()
            .map(|&i| self.inodes[i].cache.len() as u64)
            .sum()
    }

    fn inode(&self, name: &str) -> io::Result<usize> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file")))
    }
}

/// The simulated directory. Cheap to share: handles keep an `Arc` to the same state.
#[derive(Clone, Debug, Default)]
pub struct SimDir {
    state: Arc<Mutex<State>>,
}

/// A file of a [`SimDir`].
#[derive(Debug)]
pub struct SimFile {
    state: Arc<Mutex<State>>,
    inode: usize,
}

fn eio(what: &str) -> io::Error {
    io::Error::from_raw_os_error(libc::EIO).with_context(what)
}

trait Context {
    fn with_context(self, what: &str) -> io::Error;
}

impl Context for io::Error {
    fn with_context(self, what: &str) -> io::Error {
        io::Error::new(self.kind(), format!("{what}: {self} (injected)"))
    }
}

impl SimDir {
    /// An empty directory with no faults.
    pub fn new() -> SimDir {
        SimDir::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the faults to inject from now on.
    pub fn set_faults(&self, faults: SimFaults) {
        let mut state = self.lock();
        state.rng = Some(SplitMix64::new(faults.seed));
        state.faults = faults;
    }

    /// Calls made so far.
    pub fn counters(&self) -> SimCounters {
        self.lock().counters
    }

    /// A power cut: every file goes back to its disk image and the directory to its last
    /// synced entries. With `torn = Some(seed)`, a file with unsynced bytes may keep a random
    /// prefix of them, sometimes with one byte flipped (a torn write). Faults are cleared.
    pub fn crash(&self, torn: Option<u64>) {
        let mut state = self.lock();
        let mut rng = torn.map(SplitMix64::new);
        let durable = state.durable_names.clone();
        state.names = durable;
        for inode in &mut state.inodes {
            let unsynced = inode.cache.get(inode.disk.len()..).unwrap_or(&[]).to_vec();
            inode.cache = inode.disk.clone();
            if let Some(rng) = rng.as_mut() {
                if !unsynced.is_empty() && rng.chance(50) {
                    let keep = 1 + rng.below(unsynced.len() as u64) as usize;
                    let mut fragment = unsynced[..keep].to_vec();
                    if rng.chance(30) {
                        let at = rng.below(keep as u64) as usize;
                        fragment[at] ^= 1 << rng.below(8);
                    }
                    inode.cache.extend_from_slice(&fragment);
                    inode.disk = inode.cache.clone();
                }
            }
            inode.dirty_from = inode.cache.len();
            inode.lost.clear();
        }
        state.faults = SimFaults::default();
    }

    /// The bytes a file holds now (the cache's view).
    pub fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let state = self.lock();
        let inode = state.inode(name)?;
        Ok(state.inodes[inode].cache.clone())
    }

    /// Overwrites one byte of a file, cache and disk (a bit rot).
    pub fn corrupt(&self, name: &str, offset: usize, xor: u8) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.inode(name)?;
        let inode = &mut state.inodes[inode];
        if offset < inode.cache.len() {
            inode.cache[offset] ^= xor;
        }
        if offset < inode.disk.len() {
            inode.disk[offset] ^= xor;
        }
        Ok(())
    }
}

impl Dir for SimDir {
    type File = SimFile;

    fn create(&self, name: &str) -> io::Result<SimFile> {
        let mut state = self.lock();
        if state.names.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name} exists"),
            ));
        }
        state.inodes.push(Inode::default());
        let inode = state.inodes.len() - 1;
        state.names.insert(name.to_string(), inode);
        Ok(SimFile {
            state: Arc::clone(&self.state),
            inode,
        })
    }

    fn open(&self, name: &str) -> io::Result<SimFile> {
        let state = self.lock();
        let inode = state.inode(name)?;
        Ok(SimFile {
            state: Arc::clone(&self.state),
            inode,
        })
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().names.keys().cloned().collect())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.inode(from)?;
        state.names.remove(from);
        state.names.insert(to.to_string(), inode);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.lock();
        state.inode(name)?;
        state.names.remove(name);
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut state = self.lock();
        state.counters.dir_syncs += 1;
        state.durable_names = state.names.clone();
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.inode(name)?;
        let inode = &mut state.inodes[inode];
        let len = len as usize;
        inode.cache.truncate(len);
        inode.disk = inode.cache.clone();
        inode.dirty_from = inode.cache.len();
        inode.lost.clear();
        Ok(())
    }

    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        state.inodes.push(Inode {
            cache: bytes.to_vec(),
            ..Inode::default()
        });
        let inode = state.inodes.len() - 1;
        state.names.insert(name.to_string(), inode);
        Ok(())
    }
}

impl File for SimFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.counters.writes += 1;
        let number = state.counters.writes;
        if state.faults.fail_write_number == Some(number) {
            return Err(eio("write"));
        }
        let mut len = bytes.len();
        if state.faults.short_writes && len > 1 {
            let rng = state.rng.get_or_insert_with(|| SplitMix64::new(0));
            len = 1 + rng.below(len as u64) as usize;
        }
        if let Some(capacity) = state.faults.capacity_bytes {
            let room = capacity.saturating_sub(state.used_bytes()) as usize;
            if room == 0 && len > 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC).with_context("write"));
            }
            len = len.min(room);
        }
        state.counters.bytes_written += len as u64;
        let inode = &mut state.inodes[self.inode];
        inode.cache.extend_from_slice(&bytes[..len]);
        Ok(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.counters.syncs += 1;
        let fail = state.faults.fail_sync_number == Some(state.counters.syncs);
        let inode = &mut state.inodes[self.inode];
        let dirty = (inode.dirty_from, inode.cache.len());
        inode.dirty_from = inode.cache.len();
        if fail {
            // Linux: the dirty pages are marked clean (their write-back abandoned) and the
            // error is reported once.
            if dirty.0 < dirty.1 {
                inode.lost.push(dirty);
            }
            return Err(eio("fdatasync"));
        }
        let mut disk = inode.cache.clone();
        for &(start, end) in &inode.lost {
            let end = end.min(disk.len());
            let start = start.min(end);
            // What the disk held there before (nothing: zeros).
            for (at, byte) in disk[start..end].iter_mut().enumerate() {
                *byte = inode.disk.get(start + at).copied().unwrap_or(0);
            }
        }
        // Abandoned bytes at the very end never reached the disk at all.
        let mut len = disk.len();
        for &(start, end) in &inode.lost {
            if end >= len && start < len {
                len = start.max(inode.disk.len());
            }
        }
        disk.truncate(len);
        inode.disk = disk;
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let cache = &state.inodes[self.inode].cache;
        let start = (offset as usize).min(cache.len());
        let len = buf.len().min(cache.len() - start);
        buf[..len].copy_from_slice(&cache[start..start + len]);
        Ok(len)
    }

    fn size(&self) -> io::Result<u64> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state.inodes[self.inode].cache.len() as u64)
    }

    fn try_clone(&self) -> io::Result<SimFile> {
        Ok(SimFile {
            state: Arc::clone(&self.state),
            inode: self.inode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_data_and_entries_vanish_in_a_crash() {
        let dir = SimDir::new();
        let mut a = dir.create("a").unwrap();
        a.write(b"durable").unwrap();
        a.sync_data().unwrap();
        dir.sync_dir().unwrap();
        a.write(b" lost").unwrap();
        let mut b = dir.create("b").unwrap();
        b.write(b"b").unwrap();
        b.sync_data().unwrap(); // data synced, but its entry was not
        dir.crash(None);
        assert_eq!(dir.read("a").unwrap(), b"durable");
        assert!(dir.read("b").is_err());
    }

    #[test]
    fn enospc_writes_what_fits_then_fails() {
        let dir = SimDir::new();
        dir.set_faults(SimFaults {
            capacity_bytes: Some(10),
            ..SimFaults::default()
        });
        let mut a = dir.create("a").unwrap();
        assert_eq!(a.write(b"0123456").unwrap(), 7);
        assert_eq!(a.write(b"789abc").unwrap(), 3);
        let error = a.write(b"d").unwrap_err();
        assert_eq!(error.raw_os_error(), None, "wrapped: {error}");
        assert!(error.to_string().contains("No space"), "{error}");
    }

    #[test]
    fn a_failed_sync_loses_its_bytes_even_after_a_later_good_sync() {
        let dir = SimDir::new();
        let mut a = dir.create("a").unwrap();
        dir.sync_dir().unwrap();
        a.write(b"aaaa").unwrap();
        a.sync_data().unwrap();
        a.write(b"bbbb").unwrap();
        dir.set_faults(SimFaults {
            fail_sync_number: Some(2),
            ..SimFaults::default()
        });
        assert!(a.sync_data().is_err());
        a.write(b"cccc").unwrap();
        a.sync_data().unwrap();
        assert_eq!(
            dir.read("a").unwrap(),
            b"aaaabbbbcccc",
            "the cache still has them"
        );
        dir.crash(None);
        assert_eq!(dir.read("a").unwrap(), b"aaaa\0\0\0\0cccc");
    }
}
