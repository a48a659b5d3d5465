//! The guardian: a tiny process that outlives berth and stops every registered
//! process group when berth's pipe closes.
//!
//! PR_SET_PDEATHSIG is no answer (it reaches only the direct child and fires
//! when the spawning *thread* ends, see FACTS.md), so the supervisor starts
//! `berth __guardian` once, in its own process group, with the read end of a
//! pipe as stdin and no other descriptor of berth's. Protocol, one line per
//! message (each well under PIPE_BUF, so a single `write` is atomic):
//!
//! - `add <pgid> <signal> <timeout_ms>`: written by the backend's own child
//!   process in its pre-exec hook, after `setpgid` and before `exec`, so a
//!   backend is registered before any of its code runs;
//! - `del <pgid>`: written by berth once the whole group is gone.
//!
//! At end of file (berth exited or died, even by SIGKILL) the guardian sends
//! every registered group its stop signal, waits each group's timeout,
//! SIGKILLs what is left, and exits. It ignores SIGINT, SIGTERM, SIGHUP and
//! SIGPIPE, so a Ctrl-C in berth's terminal leaves it to do its job.
//!
//! A pgid can only be reused once its group is gone; the guardian prunes gone
//! groups at every `add`, so a stale entry (a backend whose exec failed after
//! registering) does not survive long.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::group;
use crate::manifest::StopSignal;

/// The first argument that makes `berth` the guardian (not a clap
/// subcommand, so no completion offers it).
pub const ARG: &str = "__guardian";

/// Entry point of `berth __guardian`.
pub fn main() -> anyhow::Result<ExitCode> {
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: setting SIG_IGN installs no handler code.
        unsafe {
            let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn);
        }
    }
    let mut groups: HashMap<i32, (Signal, Duration)> = HashMap::new();
    let stdin = io::stdin().lock();
    for line in stdin.split(b'\n') {
        let Ok(line) = line else { break };
        let text = String::from_utf8_lossy(&line);
        let mut words = text.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("add"), Some(pgid), Some(sig), Some(ms)) => {
                groups.retain(|pg, _| group::alive(*pg));
                if let (Ok(pgid), Ok(sig), Ok(ms)) =
                    (pgid.parse(), sig.parse::<i32>(), ms.parse::<u64>())
                {
                    let sig = Signal::try_from(sig).unwrap_or(Signal::SIGTERM);
                    groups.insert(pgid, (sig, Duration::from_millis(ms)));
                }
            }
            (Some("del"), Some(pgid), None, None) => {
                if let Ok(pgid) = pgid.parse::<i32>() {
                    groups.remove(&pgid);
                }
            }
            _ => {}
        }
    }
    stop_all(&groups);
    Ok(ExitCode::SUCCESS)
}

/// Stops every group in parallel: signal, wait its timeout, SIGKILL.
fn stop_all(groups: &HashMap<i32, (Signal, Duration)>) {
    let start = Instant::now();
    for (&pgid, &(sig, _)) in groups {
        group::signal(pgid, sig);
    }
    let mut left: Vec<(i32, Instant)> = groups
        .iter()
        .map(|(&pgid, &(_, timeout))| (pgid, start + timeout))
        .collect();
    while !left.is_empty() {
        let now = Instant::now();
        left.retain(|&(pgid, deadline)| {
            if !group::alive(pgid) {
                return false;
            }
            if now >= deadline {
                group::signal(pgid, Signal::SIGKILL);
            }
            true
        });
        // Give up on groups SIGKILL could not end (uninterruptible sleep).
        if now > start + Duration::from_secs(3600) {
            break;
        }
        std::thread::sleep(group::POLL);
    }
}

/// berth's end of the guardian: the write end of its stdin pipe.
pub struct Link {
    child: Mutex<Option<Child>>,
    pipe: Mutex<Option<File>>,
    fd: RawFd,
}

impl Link {
    /// Starts `exe __guardian`.
    pub fn start(exe: &Path) -> io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(exe);
        cmd.arg(ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: close_range is a raw syscall, async-signal-safe. It closes
        // every descriptor above stderr so the guardian holds nothing of
        // berth's (a pipe of berth's kept open would hide berth's death).
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("guardian stdin missing"))?;
        let fd: OwnedFd = stdin.into();
        let raw = fd.as_raw_fd();
        Ok(Self {
            child: Mutex::new(Some(child)),
            pipe: Mutex::new(Some(File::from(fd))),
            fd: raw,
        })
    }

    /// A registration the backend's child writes before exec (see
    /// [`Registration::write_in_child`]).
    pub fn registration(&self, stop: StopSignal, timeout: Duration) -> Registration {
        let tail = format!(" {} {}\n", stop.to_nix() as i32, timeout.as_millis());
        let mut buf = [0u8; 32];
        let n = tail.len().min(buf.len());
        buf[..n].copy_from_slice(&tail.as_bytes()[..n]);
        Registration {
            fd: self.fd,
            tail: buf,
            tail_len: n,
        }
    }

    /// Unregisters a group that is gone.
    pub fn del(&self, pgid: i32) {
        if let Ok(mut pipe) = self.pipe.lock()
            && let Some(p) = pipe.as_mut()
        {
            let _ = p.write_all(format!("del {pgid}\n").as_bytes());
        }
    }

    /// Closes the pipe (nothing is registered any more): the guardian exits.
    pub fn close(&self) {
        if let Ok(mut pipe) = self.pipe.lock() {
            pipe.take();
        }
        if let Ok(mut child) = self.child.lock()
            && let Some(mut c) = child.take()
        {
            // Reap it in the background; it exits at once with nothing to stop.
            std::thread::spawn(move || c.wait());
        }
    }
}

/// What a backend's child process writes to the guardian before exec.
#[derive(Clone, Copy)]
pub struct Registration {
    fd: RawFd,
    tail: [u8; 32],
    tail_len: usize,
}

impl Registration {
    /// Writes `add <own pid> <signal> <ms>\n` with one `write`. Runs between
    /// fork and exec: no allocation, async-signal-safe calls only.
    pub fn write_in_child(&self) {
        let mut line = [0u8; 64];
        line[..4].copy_from_slice(b"add ");
        let mut n = 4;
        // SAFETY: getpid is async-signal-safe.
        let pid = unsafe { libc::getpid() };
        let mut digits = [0u8; 12];
        let mut d = 0;
        let mut v = pid.unsigned_abs();
        loop {
            digits[d] = b'0' + (v % 10) as u8;
            d += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        while d > 0 {
            d -= 1;
            line[n] = digits[d];
            n += 1;
        }
        line[n..n + self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        n += self.tail_len;
        // SAFETY: signal and write are async-signal-safe. SIGPIPE is ignored
        // around the write so a dead guardian cannot kill the child.
        unsafe {
            let old = libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::write(self.fd, line.as_ptr().cast(), n);
            libc::signal(libc::SIGPIPE, old);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
    }
}
