//! SIGINT and SIGTERM as an event in the reactor's poll: the self-pipe trick.
//!
//! A signal handler may only call async-signal-safe functions, so it does the one thing it
//! can: `write` one byte to a non-blocking pipe. The read end is registered with mio, so the
//! reactor wakes up, sees the event, and shuts down in its own time, on its own thread.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The write end of the pipe, for the handler. -1 until [`install`] ran.
///
/// Written once by [`install`] (before the handler is installed), read by the handler.
static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_signal: libc::c_int) {
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    let byte = 1u8;
    // SAFETY: `write` is async-signal-safe; `byte` is a live one-byte buffer; a full pipe
    // (EAGAIN, the fd is non-blocking) only means a wake-up is already pending.
    unsafe {
        libc::write(fd, (&raw const byte).cast(), 1);
    }
    // SAFETY: as above; restoring errno keeps the interrupted code's view of it.
    unsafe {
        *libc::__errno_location() = errno;
    }
}

/// The read end of the signal pipe; readable when SIGINT or SIGTERM arrived.
#[derive(Debug)]
pub struct SignalPipe {
    read_fd: RawFd,
}

impl SignalPipe {
    /// The fd to register with mio.
    pub fn fd(&self) -> RawFd {
        self.read_fd
    }

    /// Empties the pipe; returns true if at least one signal was pending.
    pub fn drain(&self) -> bool {
        let mut buffer = [0u8; 64];
        let mut any = false;
        loop {
            // SAFETY: `buffer` is a live, writable buffer of the length passed; the fd is ours.
            let read =
                unsafe { libc::read(self.read_fd, buffer.as_mut_ptr().cast(), buffer.len()) };
            if read <= 0 {
                return any;
            }
            any = true;
        }
    }
}

/// Creates the pipe and installs the handler for SIGINT and SIGTERM. Call once, at startup.
pub fn install() -> io::Result<SignalPipe> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a live array of two ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    PIPE_WRITE_FD.store(fds[1], Ordering::Relaxed);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed `sigaction` is a valid starting value (empty mask, no flags).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action.sa_mask` is a live sigset_t owned by us.
        unsafe {
            libc::sigemptyset(&mut action.sa_mask);
        }
        // SAFETY: `action` is fully initialised and the handler only does async-signal-safe
        // work; passing a null old-action pointer is allowed.
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(SignalPipe { read_fd: fds[0] })
}
