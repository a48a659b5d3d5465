//! How a run ends: a stop begun, the leader's exit, the group gone, and the
//! state the job takes next (stopped, or what the restart policy decides),
//! then the commands that waited for the stop. The stop's own clock (when to
//! probe, when to SIGKILL) is in `stop`.

use tokio::time::Instant;

use super::state::{Failure, Phase, Rest, Run};
use super::stop::{After, Check, Stop};
use super::{DRAIN, Flow, Job};
use crate::status::Outcome;
use crate::supervisor::group;
use crate::supervisor::probation::Seen;
use crate::supervisor::restart::{self, Decision, Ending, LeaderExit};

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
            // Its dependencies' waiters see the receiver gone.
            Phase::Waiting(wait) => Phase::Idle {
                rest: Rest::Stopped,
                last_exit: wait.last_exit,
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
    pub(super) async fn on_exit(&mut self, exit: LeaderExit) -> Flow {
        tracing::info!(backend = %self.id, code = ?exit.code(), signal = ?exit.signal_name(), "exited");
        if let Phase::Stopping(run, stop) = &mut self.phase {
            run.reaped = Some(exit);
            return match stop.check(run.pgid, true) {
                Check::Gone => self.finish_stop().await,
                Check::Waiting => Flow::Continue,
            };
        }
        // A new version on probation fails by exiting, whatever the policy.
        self.probation_sees(Seen::Exited(exit.clone()));
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
        last_exit: Option<LeaderExit>,
        earned: bool,
        extra: Vec<String>,
    ) {
        if earned && !matches!(ending, Ending::Unhealthy(_)) {
            self.retries = 0;
        }
        let exit = match &ending {
            Ending::Exited(e) | Ending::Announced(e) => e.clone(),
            Ending::Unhealthy(_) => {
                last_exit.unwrap_or_else(|| LeaderExit::Unknown("the leader was not reaped".into()))
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
