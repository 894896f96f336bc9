//! The file layer: every file operation of `persist` goes through [`Dir`] (one data directory)
//! and [`File`] (one open file), so tests can put [`SimDir`](super::sim::SimDir) underneath
//! and inject short writes, failed writes and fsyncs, a full disk and power cuts.
//!
//! Above the two traits sits [`GuardedFile`], the only way the log and snapshot writers write:
//! it finishes short writes, and it remembers the first failure of a file for good. After a
//! failed `fdatasync` Linux marks the dirty pages clean and reports the error once; a second
//! `fdatasync` then succeeds although the data never reached the disk (PostgreSQL's
//! "fsyncgate", 2018). So once a write or a sync of a file has failed, every later sync of it
//! reports the same failure: nothing written to that file is ever called durable again.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One data directory. Names are plain file names inside it (no `/`).
pub trait Dir: Send + Sync + 'static {
    /// An open file of this directory.
    type File: File;

    /// Creates a new, empty file opened for appending and reading; fails if it exists.
    fn create(&self, name: &str) -> io::Result<Self::File>;
    /// Opens an existing file for appending and reading.
    fn open(&self, name: &str) -> io::Result<Self::File>;
    /// The names of the files in the directory, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Renames `from` to `to`, replacing `to` if it exists (durable after [`Dir::sync_dir`]).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file (durable after [`Dir::sync_dir`]).
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable: `fsync` of the
    /// directory.
    fn sync_dir(&self) -> io::Result<()>;
    /// Cuts a file to `len` bytes and makes that durable.
    fn truncate(&self, name: &str, len: u64) -> io::Result<()>;
    /// Replaces the content of a small file atomically (a temporary file, then a rename), with
    /// no fsync: for test bookkeeping that must survive a killed process, not a power cut.
    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()>;
}

/// One open file: appends at its end, reads anywhere.
pub trait File: Send + Sync + 'static {
    /// Appends up to `bytes.len()` bytes; returns how many were written (a short write is not
    /// an error).
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize>;
    /// `fdatasync`: makes the data written so far durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Reads at `offset`; returns the bytes read (0 at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// The file's length.
    fn size(&self) -> io::Result<u64>;
    /// A second handle to the same open file (for the syncer thread).
    fn try_clone(&self) -> io::Result<Self>
    where
        Self: Sized;
}

/// The real directory on disk.
#[derive(Debug)]
pub struct RealDir {
    path: PathBuf,
}

impl RealDir {
    /// Opens (creating it and its parents if needed) the directory `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<RealDir> {
        let path = path.as_ref().to_path_buf();
        fs::create_dir_all(&path)?;
        Ok(RealDir { path })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn at(&self, name: &str) -> io::Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a plain file name: {name:?}"),
            ));
        }
        Ok(self.path.join(name))
    }
}

/// A file of a [`RealDir`].
#[derive(Debug)]
pub struct RealFile(fs::File);

impl Dir for RealDir {
    type File = RealFile;

    fn create(&self, name: &str) -> io::Result<RealFile> {
        fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(self.at(name)?)
            .map(RealFile)
    }

    fn open(&self, name: &str) -> io::Result<RealFile> {
        fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(self.at(name)?)
            .map(RealFile)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.at(from)?, self.at(to)?)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.at(name)?)
    }

    fn sync_dir(&self) -> io::Result<()> {
        fs::File::open(&self.path)?.sync_all()
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let file = fs::OpenOptions::new().write(true).open(self.at(name)?)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let temporary = format!("{name}.tmp");
        let mut file = fs::File::create(self.at(&temporary)?)?;
        file.write_all(bytes)?;
        drop(file);
        self.rename(&temporary, name)
    }
}

impl File for RealFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // Opened with O_APPEND: every write goes to the end.
        self.0.write(bytes)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn try_clone(&self) -> io::Result<RealFile> {
        self.0.try_clone().map(RealFile)
    }
}

/// Reads exactly `buf.len()` bytes at `offset`, or fewer at the end of the file; returns the
/// bytes read.
pub fn read_full<F: File>(file: &F, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(offset + done as u64, &mut buf[done..]) {
            Ok(0) => break,
            Ok(read) => done += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(done)
}

/// Writes the whole synced-offsets file.
type WriteFile = Box<dyn Fn(&[u8]) -> io::Result<()> + Send + Sync>;

/// The test hook of issue 15: with `PICCOLO_TEST_SYNCED_OFFSETS` set, the data directory holds
/// `synced-offsets`, one line `FILE OFFSET` per log file (its name and the length the last
/// successful sync made durable), replaced atomically after every sync. A harness cuts each
/// log back to those lengths after a SIGKILL: what a power cut would leave.
pub struct SyncedOffsets {
    offsets: Mutex<std::collections::BTreeMap<String, u64>>,
    write: WriteFile,
}

/// The environment variable that turns [`SyncedOffsets`] on.
pub const SYNCED_OFFSETS_VARIABLE: &str = "PICCOLO_TEST_SYNCED_OFFSETS";
/// The name of the synced-offsets file in the data directory.
pub const SYNCED_OFFSETS_FILE: &str = "synced-offsets";

impl std::fmt::Debug for SyncedOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncedOffsets").finish_non_exhaustive()
    }
}

impl SyncedOffsets {
    /// The bookkeeping for `dir`, if the environment asks for it.
    pub fn from_env<D: Dir>(dir: &Arc<D>) -> Option<Arc<SyncedOffsets>> {
        std::env::var_os(SYNCED_OFFSETS_VARIABLE).map(|_| SyncedOffsets::new(dir))
    }

    /// The bookkeeping for `dir`, unconditionally (tests).
    pub fn new<D: Dir>(dir: &Arc<D>) -> Arc<SyncedOffsets> {
        let dir = Arc::clone(dir);
        Arc::new(SyncedOffsets {
            offsets: Mutex::new(Default::default()),
            write: Box::new(move |bytes| dir.replace(SYNCED_OFFSETS_FILE, bytes)),
        })
    }

    /// Records that `name` is durable up to `offset` (never moves a file's offset back) and
    /// rewrites the file.
    pub fn update(&self, name: &str, offset: u64) -> io::Result<()> {
        let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        let entry = offsets.entry(name.to_string()).or_insert(0);
        *entry = (*entry).max(offset);
        self.rewrite(&offsets)
    }

    /// Forgets a removed file and rewrites the file.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        offsets.remove(name);
        self.rewrite(&offsets)
    }

    fn rewrite(&self, offsets: &std::collections::BTreeMap<String, u64>) -> io::Result<()> {
        let mut text = String::new();
        for (name, offset) in offsets {
            text.push_str(&format!("{name} {offset}\n"));
        }
        (self.write)(text.as_bytes())
    }
}

/// Parses a `synced-offsets` file: `(name, offset)` per line.
pub fn parse_synced_offsets(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let (name, offset) = line.rsplit_once(' ')?;
            Some((name.to_string(), offset.parse().ok()?))
        })
        .collect()
}

/// What every handle of one file shares: the length made durable and the first failure.
#[derive(Debug, Default)]
struct Health {
    /// Bytes of the file known durable. Written by whichever handle synced (worker or syncer
    /// thread) with `fetch_max`; read by anyone. `Relaxed` is enough: it is a statistic and a
    /// bound, and the seq that callers act on travels with the sync's result.
    synced_bytes: AtomicU64,
    /// The first failure, kept forever (fsyncgate).
    failure: Mutex<Option<(io::ErrorKind, String)>>,
}

impl Health {
    fn failure(&self) -> Option<io::Error> {
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure
            .as_ref()
            .map(|(kind, message)| io::Error::new(*kind, message.clone()))
    }

    fn fail(&self, error: &io::Error, what: &str) -> io::Error {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            *failure = Some((error.kind(), format!("{what}: {error}")));
        }
        let (kind, message) = failure.as_ref().expect("set above");
        io::Error::new(*kind, message.clone())
    }
}

/// A file written only through the rules above: whole writes, sticky failures.
pub struct GuardedFile<F: File> {
    file: F,
    name: String,
    /// Bytes handed to the kernel (the file's length as this writer made it).
    written_bytes: u64,
    health: Arc<Health>,
    offsets: Option<Arc<SyncedOffsets>>,
}

impl<F: File> std::fmt::Debug for GuardedFile<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedFile")
            .field("name", &self.name)
            .field("written_bytes", &self.written_bytes)
            .finish_non_exhaustive()
    }
}

impl<F: File> GuardedFile<F> {
    /// Wraps a file of `len` bytes, all of them already durable (a new, empty file: 0).
    pub fn new(file: F, name: &str, len: u64, offsets: Option<Arc<SyncedOffsets>>) -> Self {
        let health = Health::default();
        health.synced_bytes.store(len, Ordering::Relaxed);
        GuardedFile {
            file,
            name: name.to_string(),
            written_bytes: len,
            health: Arc::new(health),
            offsets,
        }
    }

    /// The file's name in its directory.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes written so far.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// Bytes known durable.
    pub fn synced_bytes(&self) -> u64 {
        self.health.synced_bytes.load(Ordering::Relaxed)
    }

    /// The first failure of this file, if any.
    pub fn failure(&self) -> Option<io::Error> {
        self.health.failure()
    }

    /// Appends all of `bytes` (retrying short writes). After an error the file's tail is
    /// unknown: the file is failed for good.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(error) = self.health.failure() {
            return Err(error);
        }
        let mut done = 0;
        while done < bytes.len() {
            match self.file.write(&bytes[done..]) {
                Ok(0) => {
                    let error = io::Error::new(io::ErrorKind::WriteZero, "write returned 0");
                    return Err(self.fail_write(&error));
                }
                Ok(written) => {
                    done += written;
                    self.written_bytes += written as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.fail_write(&error)),
            }
        }
        Ok(())
    }

    fn fail_write(&self, error: &io::Error) -> io::Error {
        let what = format!("write to {} at offset {}", self.name, self.written_bytes);
        self.health.fail(error, &what)
    }

    /// `fdatasync`, inline; returns the length now durable.
    pub fn sync(&self) -> io::Result<u64> {
        sync_file(
            &self.file,
            &self.health,
            &self.name,
            self.written_bytes,
            &self.offsets,
        )
    }

    /// A handle another thread can sync this file through (same health).
    pub fn sync_handle(&self) -> io::Result<SyncHandle<F>> {
        Ok(SyncHandle {
            file: self.file.try_clone()?,
            name: self.name.clone(),
            health: Arc::clone(&self.health),
            offsets: self.offsets.clone(),
        })
    }
}

fn sync_file<F: File>(
    file: &F,
    health: &Health,
    name: &str,
    up_to: u64,
    offsets: &Option<Arc<SyncedOffsets>>,
) -> io::Result<u64> {
    if let Some(error) = health.failure() {
        return Err(error);
    }
    if let Err(error) = file.sync_data() {
        return Err(health.fail(&error, &format!("fdatasync of {name}")));
    }
    // A sync that raced with a failure on another handle must not report success.
    if let Some(error) = health.failure() {
        return Err(error);
    }
    health.synced_bytes.fetch_max(up_to, Ordering::Relaxed);
    if let Some(offsets) = offsets {
        // Test bookkeeping only; a failure to write it does not fail the log.
        let _ = offsets.update(name, up_to);
    }
    Ok(up_to)
}

/// A second handle to a [`GuardedFile`], for the syncer thread.
pub struct SyncHandle<F: File> {
    file: F,
    name: String,
    health: Arc<Health>,
    offsets: Option<Arc<SyncedOffsets>>,
}

impl<F: File> std::fmt::Debug for SyncHandle<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHandle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F: File> SyncHandle<F> {
    /// `fdatasync`; `up_to` is the length written before the sync was asked for (all of it is
    /// durable when this returns `Ok`).
    pub fn sync(&self, up_to: u64) -> io::Result<u64> {
        sync_file(&self.file, &self.health, &self.name, up_to, &self.offsets)
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::sim::{SimDir, SimFaults};

    #[test]
    fn real_dir_round_trip() {
        let path = std::env::temp_dir().join(format!("piccolo-fs-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        let dir = Arc::new(RealDir::open(&path).unwrap());
        let mut file = GuardedFile::new(dir.create("a").unwrap(), "a", 0, None);
        file.write_all(b"hello ").unwrap();
        file.write_all(b"world").unwrap();
        assert_eq!(file.sync().unwrap(), 11);
        assert!(dir.create("a").is_err(), "create refuses an existing file");
        let mut buf = [0u8; 32];
        let read = read_full(&dir.open("a").unwrap(), 0, &mut buf).unwrap();
        assert_eq!(&buf[..read], b"hello world");
        dir.rename("a", "b").unwrap();
        dir.sync_dir().unwrap();
        dir.truncate("b", 5).unwrap();
        assert_eq!(dir.open("b").unwrap().size().unwrap(), 5);
        assert_eq!(dir.list().unwrap(), vec!["b".to_string()]);
        dir.replace("c", b"x 1\n").unwrap();
        assert_eq!(fs::read(path.join("c")).unwrap(), b"x 1\n");
        assert!(dir.open("../etc").is_err());
        fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn a_failed_sync_is_never_reported_as_success_later() {
        let dir = Arc::new(SimDir::new());
        let mut file = GuardedFile::new(dir.create("log").unwrap(), "log", 0, None);
        dir.sync_dir().unwrap();
        file.write_all(b"first").unwrap();
        assert_eq!(file.sync().unwrap(), 5);
        file.write_all(b"second").unwrap();
        dir.set_faults(SimFaults {
            fail_sync_number: Some(dir.counters().syncs + 1),
            ..SimFaults::default()
        });
        assert!(file.sync().is_err());
        // The simulated kernel now answers the next fdatasync with success (as Linux does);
        // the layer must not.
        assert!(
            dir.open("log").unwrap().sync_data().is_ok(),
            "the kernel lies"
        );
        assert!(file.sync().is_err());
        let handle = file.sync_handle().unwrap();
        assert!(handle.sync(11).is_err());
        assert!(file.write_all(b"third").is_err());
        assert_eq!(file.synced_bytes(), 5);
        // And the bytes really are gone after a power cut.
        dir.crash(None);
        let mut buf = [0u8; 32];
        let read = read_full(&dir.open("log").unwrap(), 0, &mut buf).unwrap();
        assert_eq!(&buf[..5], b"first");
        assert!(
            buf[5..read].iter().all(|&b| b == 0),
            "lost pages read as zeros"
        );
    }

    #[test]
    fn short_writes_are_finished() {
        let dir = Arc::new(SimDir::new());
        dir.set_faults(SimFaults {
            short_writes: true,
            seed: 7,
            ..SimFaults::default()
        });
        let mut file = GuardedFile::new(dir.create("log").unwrap(), "log", 0, None);
        let bytes: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        file.write_all(&bytes).unwrap();
        assert!(
            dir.counters().writes > 1,
            "the simulated kernel wrote short"
        );
        file.sync().unwrap();
        let mut buf = vec![0u8; 20_000];
        let read = read_full(&dir.open("log").unwrap(), 0, &mut buf).unwrap();
        assert_eq!(&buf[..read], &bytes[..]);
    }
}
