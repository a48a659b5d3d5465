//! Waiting for a process group to be gone, as a state the job's loop ticks
//! instead of a loop that blocks it: commands (a manifest update, a second
//! Stop) are still answered while a group takes its stop timeout.
//!
//! The group is gone when `kill(-pgid, 0)` fails. That probe is one syscall,
//! so it backs off from 1 ms to [`POLL_MAX`] (DESIGN.md allows 20 ms); the
//! /proc scan that tells a group of zombies from a live one reads every
//! process's stat file, so it runs only once the leader is reaped, and backs
//! off from 50 ms to 1 s (a 200-process group then costs a few scans).

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::state::{Failure, Phase, Rest, Run};
use super::{DRAIN, Flow, Job, Reply};
use crate::status::Outcome;
use crate::supervisor::group;
use crate::supervisor::restart::{self, Decision, Ending, Exit};

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
    pub replies: Vec<Reply>,
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

impl Job {
    /// Starts stopping the process (if any; the phase becomes stopping) or
    /// cancels a backoff (the phase becomes stopped at once).
    pub(super) fn begin_stop(&mut self, after: After) {
        let phase = std::mem::replace(&mut self.phase, Phase::stopped());
        self.phase = match phase {
            Phase::Starting(run) | Phase::Running(run) => {
                let stop = Stop::begin(
                    run.pgid,
                    run.def.stop.signal.to_nix(),
                    run.def.stop.timeout,
                    after,
                );
                Phase::Stopping(run, stop)
            }
            Phase::Backoff { last_exit, .. } => Phase::Idle {
                rest: Rest::Stopped,
                last_exit: Some(last_exit),
            },
            other => {
                self.phase = other;
                return;
            }
        };
        self.publish();
    }

    /// The leader exited: by itself (the rest of its group is stopped the
    /// same way before the restart policy applies), or during a stop.
    pub(super) async fn on_exit(&mut self, exit: Exit) -> Flow {
        tracing::info!(backend = %self.id, code = ?exit.code(), signal = ?exit.signal_name(), "exited");
        if let Phase::Stopping(run, stop) = &mut self.phase {
            run.reaped = Some(exit);
            return match stop.check(run.pgid, true) {
                Check::Gone => self.finish_stop().await,
                Check::Waiting => Flow::Continue,
            };
        }
        let phase = std::mem::replace(&mut self.phase, Phase::stopped());
        let (Phase::Starting(mut run) | Phase::Running(mut run)) = phase else {
            self.phase = phase;
            return Flow::Continue;
        };
        run.reaped = Some(exit.clone());
        let ending = if run.announced_stop {
            Ending::Announced(exit)
        } else {
            Ending::Exited(exit)
        };
        if group::alive(run.pgid) {
            let stop = Stop::begin(
                run.pgid,
                run.def.stop.signal.to_nix(),
                run.def.stop.timeout,
                After::Ended(ending),
            );
            self.phase = Phase::Stopping(run, stop);
            self.publish();
            return Flow::Continue;
        }
        let (earned, reaped) = (run.earned_reset, run.reaped.clone());
        let extra = self.release(run).await;
        self.settle(ending, reaped, earned, extra);
        self.publish();
        Flow::Continue
    }

    /// The group is gone: forget the run, take the next state, answer the
    /// Stops, then run what waited.
    pub(super) async fn finish_stop(&mut self) -> Flow {
        let phase = std::mem::replace(&mut self.phase, Phase::stopped());
        let Phase::Stopping(run, stop) = phase else {
            self.phase = phase;
            return Flow::Continue;
        };
        let (earned, reaped) = (run.earned_reset, run.reaped.clone());
        let extra = self.release(run).await;
        match stop.after {
            After::Stopped => {
                tracing::info!(backend = %self.id, "stopped");
                self.phase = Phase::stopped();
            }
            After::Ended(ending) => self.settle(ending, reaped, earned, extra),
        }
        self.publish();
        for reply in stop.replies {
            let _ = reply.send(Ok(Outcome::Done));
        }
        self.drain_deferred().await
    }

    /// After a run ended by itself or unhealthy: what the restart policy
    /// says. `last_exit` is the leader's (for an unhealthy run, the stop
    /// signal's); `earned` (ready, or up 10 s) resets the retry count
    /// first, except for an unhealthy run, which must reach `failed`. A
    /// restart repeats the ended run's `extra` ARGS.
    fn settle(
        &mut self,
        ending: Ending,
        last_exit: Option<Exit>,
        earned: bool,
        extra: Vec<String>,
    ) {
        if earned && !matches!(ending, Ending::Unhealthy(_)) {
            self.retries = 0;
        }
        let exit = match &ending {
            Ending::Exited(e) | Ending::Announced(e) => e.clone(),
            Ending::Unhealthy(_) => {
                last_exit.unwrap_or_else(|| Exit::Unknown("the leader was not reaped".into()))
            }
        };
        let unhealthy = match &ending {
            Ending::Unhealthy(error) => Some(error.clone()),
            _ => None,
        };
        let spec = &self.def.restart;
        self.phase = match restart::decide(spec, &ending, self.retries) {
            Decision::Restart { attempt, delay } => {
                self.retries = attempt;
                self.restarts += 1;
                Phase::Backoff {
                    until: Instant::now() + delay,
                    attempt,
                    last_exit: exit.clone(),
                    extra,
                    error: unhealthy.clone(),
                }
            }
            Decision::GiveUp => Phase::Idle {
                rest: Rest::Failed(Failure::GaveUp {
                    retries: spec.max_retries,
                    unhealthy: unhealthy.clone(),
                }),
                last_exit: Some(exit.clone()),
            },
            Decision::Fail => Phase::Idle {
                rest: Rest::Failed(Failure::Unhealthy(unhealthy.clone().unwrap_or_default())),
                last_exit: Some(exit.clone()),
            },
            Decision::Settle => Phase::Idle {
                rest: Rest::Exited,
                last_exit: Some(exit.clone()),
            },
        };
        let then = self.phase.state();
        self.emit(match unhealthy {
            Some(error) => super::super::events::EventKind::Unhealthy {
                reason: self.phase.error().unwrap_or(error),
                then,
            },
            None => super::super::events::EventKind::Exited {
                code: exit.code(),
                signal: exit.signal_name(),
                then,
            },
        });
    }

    /// Forgets a run whose group is gone: unregisters it, lets the log pump
    /// drain, clears the run's status line; returns the run's extra ARGS.
    /// Dropping the run ends its stdin writer, which closes the pipe.
    async fn release(&mut self, mut run: Run) -> Vec<String> {
        self.shared.groups.remove(run.pgid);
        if let Some(link) = self.shared.guardian.as_ref() {
            link.del(run.pgid);
        }
        if let Some(p) = run.probe.take() {
            p.abort();
        }
        // The checks end with the run; the notify socket's file goes too.
        run.health = None;
        run.notify = None;
        run.pump.end(DRAIN).await;
        self.last_stderr = run.stderr.get();
        // The status line described that run: a stopped or exited backend
        // shows none rather than "ready" (issue #23, point 13).
        self.status_line = None;
        std::mem::take(&mut run.extra)
    }
}
