//! `berth run --with-parent`: the launcher lives as long as the process that
//! started it (an app's main process), however that process ends.
//!
//! The parent is held by a pidfd (Linux 5.3): the descriptor turns readable
//! when the process ends, SIGKILL included, and the runtime wakes for it like
//! for a socket, with no timer. `PR_SET_PDEATHSIG` was not used: it fires
//! when the parent *thread* ends (a thread pool that started berth would
//! kill it early), it is a signal berth would have to tell apart from a
//! user's SIGTERM, and it misses a parent that died before the call.
//!
//! The parent's pid is observed once, at start, before `berth run` execs
//! `berth-tray` (same process, same parent), and handed over with the hidden
//! `--parent-pid`. A parent that is gone by the time the pidfd is open shows
//! as a changed `getppid()` (berth was reparented to init or a subreaper), or
//! as init itself: both are an error, never an unsupervised launcher. A
//! parent that died before berth's `main` ran, leaving berth to a subreaper,
//! cannot be told from a subreaper that started berth; no API can.

use std::os::fd::{FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// Why the parent cannot be followed, in one line.
#[derive(Debug, thiserror::Error)]
pub enum ParentError {
    #[error("--with-parent: the process that started berth (pid {0}) is already gone")]
    Gone(i32),
    #[error("--with-parent: cannot follow the parent process (pid {pid}): {source}")]
    Open { pid: i32, source: std::io::Error },
}

/// The pid to follow: berth's parent now. Called as early as possible.
pub fn observe() -> i32 {
    nix::unistd::getppid().as_raw()
}

/// An open handle on the parent process.
#[derive(Debug)]
pub struct Parent {
    pid: i32,
    fd: OwnedFd,
}

impl Parent {
    /// Opens a pidfd on `pid`, which must still be berth's parent.
    pub fn open(pid: i32) -> Result<Self, ParentError> {
        if pid <= 1 {
            return Err(ParentError::Gone(pid));
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new
        // descriptor (close-on-exec) or -1; nothing else is touched.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            let source = std::io::Error::last_os_error();
            return Err(match source.raw_os_error() {
                Some(libc::ESRCH) => ParentError::Gone(pid),
                _ => ParentError::Open { pid, source },
            });
        }
        // SAFETY: `raw` is a descriptor just returned to us and owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        // The pid may have ended and been reused before the pidfd was
        // opened; then berth's parent is no longer `pid`. Checked after the
        // open, so an exit from here on shows on the descriptor.
        if observe() != pid {
            return Err(ParentError::Gone(pid));
        }
        Ok(Self { pid, fd })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Resolves once the parent has ended. Needs the runtime (the
    /// descriptor is registered with its reactor).
    pub async fn exited(self) {
        let pid = self.pid;
        // SAFETY: the OwnedFd is moved into the AsyncFd, which alone owns it
        // from here on: it stays open and the same descriptor until dropped.
        let registered =
            unsafe { AsyncFd::register_with_interest(self.fd, tokio::io::Interest::READABLE) };
        match registered {
            Ok(fd) => {
                // Readable means the process has ended; a pidfd never turns
                // unreadable again, so one wake-up is enough.
                let _ = fd.readable().await;
            }
            Err(e) => {
                // Following is impossible now; quitting is the safe side of
                // "stop when the app is gone".
                tracing::error!(pid, "cannot follow the parent process: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_and_a_process_that_is_not_the_parent_are_refused() {
        assert!(matches!(Parent::open(1), Err(ParentError::Gone(1))));
        // This process exists, but it is not our parent.
        let me = std::process::id() as i32;
        assert!(matches!(Parent::open(me), Err(ParentError::Gone(_))));
        let parent = Parent::open(observe()).unwrap();
        assert_eq!(parent.pid(), observe());
    }
}
