//! The guardians: two tiny processes that outlive berth and stop every
//! registered process group when berth's pipe closes.
//!
//! PR_SET_PDEATHSIG is no answer (it reaches only the direct child and fires
//! when the spawning *thread* ends, see FACTS.md), so the supervisor starts
//! `berth __guardian` twice, each in its own process group, each with the
//! read end of its own pipe as stdin and no other descriptor of berth's but
//! a lock (fd 3). Protocol, one line per message (each well under PIPE_BUF,
//! so a single `write` is atomic):
//!
//! - `add <pgid> <signal> <timeout_ms>`: written by the backend's own child
//!   process in its pre-exec hook, after `setsid` and before `exec`, so a
//!   backend is registered before any of its code runs; berth writes it again
//!   once the spawn returned, and for every live group when a guardian is
//!   replaced;
//! - `del <pgid>`: written by berth once the whole group is gone.
//!
//! At end of file (berth exited or died, even by SIGKILL) a guardian takes
//! the shared lock, sends every registered group its stop signal, waits each
//! group's timeout, SIGKILLs what is left, marks the work done and exits.
//! Why two: berth replaces a guardian that dies (see `link`), but if berth
//! and a guardian are killed at the same instant nobody is left to replace
//! it; the other guardian then does the work. The lock (an `flock` the kernel
//! releases when its holder dies) makes the second one wait instead of
//! signalling every backend twice, and go on where the first left off if
//! the first dies mid-way. A guardian ignores SIGINT, SIGTERM, SIGHUP and
//! SIGPIPE, so a Ctrl-C in berth's terminal leaves it to do its job, and it
//! names itself `berth-guardian`, so `killall berth` spares it.
//!
//! A pgid can only be reused once its group is gone; the guardian prunes gone
//! groups at every `add`, so a stale entry (a backend whose exec failed after
//! registering) does not survive long.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, BufRead};
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::group;

mod link;

pub use link::{Guardians, Registration};

/// The descriptor a guardian finds the shared lock on.
const LOCK_FD: libc::c_int = 3;
/// The name a guardian shows in `ps` and `/proc/<pid>/comm`.
const NAME: &CStr = c"berth-guardian";

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
    // It holds every backend's group: no backend may read its memory.
    let _ = crate::sandbox::hidden::hide_self();
    let _ = nix::sys::prctl::set_name(NAME);
    let lock = lock_file();
    let groups = read_until_eof(io::stdin().lock());
    // berth is gone. Whoever holds the lock first does the work; the other
    // finds it marked done, or takes over from a guardian that died mid-way.
    let locked = lock.filter(take_lock);
    if locked.as_ref().is_some_and(already_done) {
        return Ok(ExitCode::SUCCESS);
    }
    stop_all(&groups);
    if let Some(lock) = &locked {
        mark_done(lock);
    }
    Ok(ExitCode::SUCCESS)
}

/// The shared lock file on [`LOCK_FD`], if the host passed one.
fn lock_file() -> Option<File> {
    // SAFETY: F_GETFD only asks whether the descriptor is open. If it is,
    // it is the lock the host put there (`link::spawn`), owned by nothing
    // else in this process, and taken here once.
    unsafe { (libc::fcntl(LOCK_FD, libc::F_GETFD) >= 0).then(|| File::from_raw_fd(LOCK_FD)) }
}

/// The registered groups: `pgid -> (stop signal, stop timeout)`.
type Groups = HashMap<i32, (Signal, Duration)>;

/// Applies every message until berth's end of the pipe closes.
fn read_until_eof(input: impl BufRead) -> Groups {
    let mut groups = Groups::new();
    for line in input.split(b'\n') {
        let Ok(line) = line else { break };
        let text = String::from_utf8_lossy(&line);
        let mut words = text.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("add"), Some(pgid), Some(sig), Some(ms)) => {
                if let (Ok(pgid), Ok(sig), Ok(ms)) =
                    (pgid.parse(), sig.parse::<i32>(), ms.parse::<u64>())
                {
                    if !groups.contains_key(&pgid) {
                        groups.retain(|pg, _| group::alive(*pg));
                    }
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
    groups
}

/// Blocks until this guardian holds the shared lock (`flock`); false when
/// the descriptor is no lock: then it acts alone.
fn take_lock(lock: &File) -> bool {
    loop {
        match lock.lock() {
            Ok(()) => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Did the other guardian finish the work?
fn already_done(lock: &File) -> bool {
    let mut byte = [0u8];
    matches!(lock.read_at(&mut byte, 0), Ok(1)) && byte[0] == b'1'
}

fn mark_done(lock: &File) {
    let _ = lock.write_at(b"1", 0);
}

/// Stops every group in parallel: signal, wait its timeout, SIGKILL.
fn stop_all(groups: &Groups) {
    let start = Instant::now();
    let mut left: Vec<(i32, Instant)> = groups
        .iter()
        .filter(|(pgid, _)| group::alive(**pgid))
        .map(|(&pgid, &(sig, timeout))| {
            group::signal(pgid, sig);
            (pgid, start + timeout)
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_add_and_remove_groups() {
        // pgids of live groups: this test's own group, so pruning keeps it.
        let me = nix::unistd::getpgrp().as_raw();
        let input = format!("add {me} 15 2000\nadd 4194321 2 100\ngarbage\ndel 4194321\n");
        let groups = read_until_eof(input.as_bytes());
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[&me], (Signal::SIGTERM, Duration::from_millis(2000)));
    }
}
