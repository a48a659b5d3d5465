//! Process groups: signalling a backend's whole group and telling when it is
//! gone.
//!
//! Waiting for the leader is not enough: a PyInstaller onefile backend is two
//! processes, and a shell script's children outlive it. A group is gone when
//! `kill(-pgid, 0)` fails with ESRCH. Where PID 1 does not reap orphans (some
//! containers), re-parented members linger as zombies and keep the group
//! "alive" for `kill`; on Linux a group whose only members are zombies counts
//! as gone (they run no code and hold no resources but a PID).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How often a stopping group is probed (the contract allows up to 20 ms).
pub const POLL: Duration = Duration::from_millis(10);

/// Sends `signal` to every process of the group. A group already gone is fine.
pub fn signal(pgid: i32, signal: Signal) {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid, %signal, error = %e, "cannot signal process group"),
    }
}

/// Does any process of the group still run?
pub fn alive(pgid: i32) -> bool {
    any_member(pgid) && has_live_member(pgid)
}

/// Does the group have any member, zombies included? One `kill(-pgid, 0)`:
/// cheap enough to poll.
pub fn any_member(pgid: i32) -> bool {
    // No signal: permission and existence check only.
    !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

/// The processes whose process group is `pgid` (Linux: read from /proc).
#[cfg(target_os = "linux")]
pub fn members(pgid: i32) -> Vec<(i32, bool)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((state, pg)) = stat_of(pid)
            && pg == pgid
        {
            out.push((pid, state == 'Z'));
        }
    }
    out
}

/// `(state, pgrp)` of a process, from `/proc/<pid>/stat`.
#[cfg(target_os = "linux")]
pub fn stat_of(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after
    // the last ')'. Fields: state ppid pgrp ...
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Is a member of the group more than a zombie? Reads all of /proc.
#[cfg(target_os = "linux")]
pub fn has_live_member(pgid: i32) -> bool {
    let members = members(pgid);
    // /proc unreadable: trust kill().
    members.is_empty() && std::fs::metadata("/proc/self/stat").is_err()
        || members.iter().any(|(_, zombie)| !zombie)
}

#[cfg(not(target_os = "linux"))]
pub fn has_live_member(_pgid: i32) -> bool {
    true
}

/// Polls until the group is gone or `deadline` passes; true when gone.
pub async fn wait_gone(pgid: i32, deadline: Instant) -> bool {
    loop {
        if !alive(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every live process group, shared so `kill_all_now` can act synchronously
/// from a signal-handling thread without going through the tasks.
#[derive(Clone, Default)]
pub struct LiveGroups(Arc<Mutex<HashMap<i32, String>>>);

impl LiveGroups {
    pub fn insert(&self, pgid: i32, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(pgid, id.to_owned());
        }
    }

    pub fn remove(&self, pgid: i32) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&pgid);
        }
    }

    pub fn all(&self) -> Vec<i32> {
        self.0
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// SIGKILLs every group at once.
    pub fn kill_all(&self) {
        for pgid in self.all() {
            signal(pgid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_group_is_alive_and_unknown_is_not() {
        let me = nix::unistd::getpgrp().as_raw();
        assert!(alive(me));
        // PIDs are below 2^22 on Linux.
        assert!(!alive(4_194_304 + 17));
    }
}
