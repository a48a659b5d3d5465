//! Waiting for a process group to be gone, as a state the job's loop ticks
//! instead of a loop that blocks it: commands (a manifest update, a second
//! Stop) are still answered while a group takes its stop timeout.
//!
//! The group is gone when `kill(-pgid, 0)` fails. That probe is one syscall,
//! so it backs off from 1 ms to [`POLL_MAX`] (DESIGN.md allows 20 ms); the
//! /proc scan that tells a group of zombies from a live one reads every
//! process's stat file, so it runs only once the leader is reaped, and backs
//! off from 50 ms to 1 s (a 200-process group then costs a few scans).
//!
//! This is the clock only; what the job does when a run ends and once its
//! group is gone (the restart policy's transitions) is in `ending`.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::ReplyTo;
use crate::supervisor::group;
use crate::supervisor::restart::Ending;

/// After SIGKILL, how long before giving up on a group (a process in
/// uninterruptible sleep cannot die earlier).
const KILL_GRACE: Duration = Duration::from_secs(10);
const POLL_MIN: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_millis(20);
const SCAN_MIN: Duration = Duration::from_millis(50);
const SCAN_MAX: Duration = Duration::from_secs(1);

/// Why the group is being stopped, i.e. what follows once it is gone.
pub enum After {
    /// A user Stop (also Restart, Remove, Shutdown: they queue behind it).
    Stopped,
    /// The run ended by itself (the leader exited) or was found unhealthy
    /// (berth stops its group, as Stop does); the restart policy decides next.
    Ended(Ending),
}

/// A stop under way.
pub struct Stop {
    pub after: After,
    /// Stop requests answered once the group is gone.
    pub replies: Vec<ReplyTo>,
    deadline: Instant,
    killed_at: Option<Instant>,
    poll: Duration,
    pub next_check: Instant,
    scan_every: Duration,
    next_scan: Instant,
}

/// Where a stop stands after a check.
pub enum Check {
    Gone,
    Waiting,
}

impl Stop {
    /// Signals the group and starts the clock.
    pub fn begin(pgid: i32, signal: Signal, timeout: Duration, after: After) -> Self {
        group::signal(pgid, signal);
        let now = Instant::now();
        Self {
            after,
            replies: Vec::new(),
            deadline: now + timeout,
            killed_at: None,
            poll: POLL_MIN,
            next_check: now + POLL_MIN,
            scan_every: SCAN_MIN,
            next_scan: now + SCAN_MIN,
        }
    }

    /// Probes the group; SIGKILLs it past the timeout; gives up (with an
    /// error logged) once SIGKILL has had [`KILL_GRACE`].
    pub fn check(&mut self, pgid: i32, leader_reaped: bool) -> Check {
        let now = Instant::now();
        if !group::any_member(pgid) {
            return Check::Gone;
        }
        // Only zombies left (where PID 1 does not reap): gone too.
        if leader_reaped && now >= self.next_scan {
            if !group::has_live_member(pgid) {
                return Check::Gone;
            }
            self.scan_every = (self.scan_every * 2).min(SCAN_MAX);
            self.next_scan = now + self.scan_every;
        }
        match self.killed_at {
            None if now >= self.deadline => {
                tracing::warn!(pgid, "stop timeout: SIGKILL to the group");
                group::signal(pgid, Signal::SIGKILL);
                self.killed_at = Some(now);
                self.poll = POLL_MIN;
            }
            Some(at) if now >= at + KILL_GRACE => {
                tracing::error!(pgid, "process group survives SIGKILL; giving up");
                return Check::Gone;
            }
            _ => {}
        }
        self.poll = (self.poll * 2).min(POLL_MAX);
        self.next_check = now + self.poll;
        Check::Waiting
    }
}
