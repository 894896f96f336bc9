//! The server processes a run starts, and the promise that each is stopped: by [`Drop`] when
//! the run ends or fails, and by the kernel if `piccolo-chaos` itself dies (the child is
//! started with `PR_SET_PDEATHSIG = SIGKILL`, which also covers the release profile's
//! `panic = "abort"`, where no destructor runs). Every wait here is bounded.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a killed server may take to be reaped.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ServerProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    paused: bool,
}

/// The `piccolo-server` next to this program (target/<profile>/), unless `--server` says.
pub fn default_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|error| format!("where am I: {error}"))?;
    let binary = me.with_file_name("piccolo-server");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "no piccolo-server next to {} (build it, or pass --server PATH)",
            me.display()
        ))
    }
}

impl ServerProcess {
    /// Starts `binary` on an ephemeral loopback port and waits (bounded) for its address.
    pub fn start(binary: &Path, workers: usize) -> Result<ServerProcess, String> {
        let mut command = Command::new(binary);
        command
            .args([
                "--addr",
                "127.0.0.1:0",
                "--no-pin",
                "--workers",
                &workers.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs in the child between fork and exec and calls only prctl,
        // which is async-signal-safe; it touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|error| format!("start {}: {error}", binary.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (addr_tx, addr_rx) = mpsc::channel();
        // Reads the log until the server exits (the pipe closes), so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split(" listening on ").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = addr_tx.send(addr);
                }
            }
        });
        let mut server = ServerProcess {
            child: Some(child),
            addr: "127.0.0.1:1".parse().expect("an address"),
            paused: false,
        };
        let addr = addr_rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            format!(
                "{} did not report its address within {START_TIMEOUT:?}",
                binary.display()
            )
        })?;
        server.addr = addr
            .parse()
            .map_err(|_| format!("the server reported {addr:?}, not an address"))?;
        Ok(server)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |child| child.id() as i32)
    }

    fn signal(&self, signal: i32) -> Result<(), String> {
        let pid = self.pid();
        if pid <= 0 {
            return Err("the server is not running".to_string());
        }
        // SAFETY: kill has no memory-safety preconditions; pid is our own child, not yet reaped
        // (it is reaped only in stop, which takes the Child out first), so it cannot be reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(format!(
                "kill({pid}, {signal}): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// SIGSTOP: the process stops running; its sockets stay open, the kernel keeps accepting.
    pub fn pause(&mut self) -> Result<(), String> {
        self.signal(libc::SIGSTOP)?;
        self.paused = true;
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self) -> Result<(), String> {
        self.signal(libc::SIGCONT)?;
        self.paused = false;
        Ok(())
    }

    /// Whether the process has exited on its own (it should not, during a run).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|child| !matches!(child.try_wait(), Ok(None)))
    }

    /// Resumes it if paused, kills it, and reaps it (bounded).
    pub fn stop(&mut self) {
        if self.paused {
            let _ = self.resume();
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "piccolo-chaos: server pid {} did not exit within {EXIT_TIMEOUT:?} of SIGKILL",
            child.id()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
