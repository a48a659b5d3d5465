//! The job's side of health (v2): sd_notify notices as they arrive, the
//! checks' verdicts, and starting the checks once a run is `running`.
//!
//! The decisions live elsewhere: what a verdict means in
//! `supervisor::health` (the failure tally), what an unhealthy run leads to
//! in `restart::decide`. Here they become phase changes: an unhealthy run is
//! stopped like a Stop (its group, `stop.timeout`, then SIGKILL) with
//! [`After::Ended`], so the restart policy follows once the group is gone.

use tokio::time::Instant;

use super::super::health::{Finding, Monitor};
use super::super::logs::JsonLine;
use super::super::probation::Seen;
use super::super::restart::Ending;
use super::super::sd_notify::Notice;
use super::Job;
use super::state::Phase;
use super::stop::After;
use crate::manifest::Probe;

impl Job {
    /// From `running` on: the http/tcp checks or the watchdog clock, if the
    /// run's definition has `health`. `ready_line` is the stdout JSON object
    /// that made it ready (`${ready.KEY}`).
    pub(super) fn start_health(&mut self, ready_line: Option<&JsonLine>) {
        let Phase::Running(run) = &mut self.phase else {
            return;
        };
        let Some(spec) = run.def.health.as_ref() else {
            return;
        };
        let values = crate::vars::Values {
            id: &self.id,
            pid: Some(run.pid),
            ready_json: ready_line,
            ready_port: run.ready_port,
            port: run.port,
            token: run.token.as_ref().map(|t| t.as_str()),
        };
        match Monitor::start(spec, &values, Instant::now()) {
            Ok(monitor) => run.health = Some(monitor),
            Err(e) => {
                // Only a run can tell (a ready line without that key): said
                // in the status, and nothing is checked or restarted for it.
                let error = format!("health check cannot run: {e}");
                tracing::warn!(backend = %self.id, %error);
                run.error = Some(error);
            }
        }
    }

    pub(super) fn on_notice(&mut self, notice: Option<Notice>) {
        let Some(run) = self.phase.run_mut() else {
            return;
        };
        let Some(notice) = notice else {
            run.notify = None;
            return;
        };
        let running = matches!(self.phase, Phase::Running(_));
        match notice {
            Notice::Ready => {
                let waits =
                    matches!(&self.phase, Phase::Starting(r) if r.def.ready.probe == Probe::Notify);
                if waits {
                    self.mark_ready(None);
                }
            }
            Notice::Status(text) => {
                self.status_line = Some(text);
                self.publish();
            }
            Notice::Watchdog => {
                let beat = match &mut self.phase {
                    Phase::Running(r) => r.health.as_mut().is_some_and(|h| h.beat(Instant::now())),
                    _ => false,
                };
                if beat {
                    self.publish();
                }
            }
            Notice::WatchdogTrigger => {
                let watched = match &self.phase {
                    Phase::Running(r) => r.health.as_ref().is_some_and(Monitor::is_watchdog),
                    _ => false,
                };
                if watched {
                    self.on_health(Finding::Unhealthy {
                        error: "watchdog: the backend reported a failure (WATCHDOG=trigger)".into(),
                    });
                }
            }
            Notice::Stopping => {
                // The backend is on its way out: its exit is its own decision,
                // and a check failing meanwhile is no failure.
                let Some(run) = self.phase.run_mut() else {
                    return;
                };
                run.announced_stop = true;
                let had = run.health.take().is_some();
                if had && running {
                    self.publish();
                }
            }
            Notice::ExtendTimeout(d) => {
                if let Phase::Starting(r) = &mut self.phase
                    && let Some(at) = r.ready_deadline.as_mut()
                {
                    *at = (*at).max(Instant::now() + d);
                }
            }
        }
    }

    pub(super) fn on_health(&mut self, verdict: Finding) {
        let Phase::Running(run) = &mut self.phase else {
            return;
        };
        match verdict {
            Finding::Unhealthy { error } => {
                tracing::warn!(backend = %self.id, %error, "unhealthy: stopping");
                run.health = None;
                run.error = Some(error.clone());
                self.probation_sees(Seen::Unhealthy(error.clone()));
                self.begin_stop(After::Ended(Ending::Unhealthy(error)));
            }
            other => {
                if let Finding::Failing { count, of, reason } = &other {
                    tracing::info!(backend = %self.id, count, of, %reason, "health check failed");
                }
                let changed = run.health.as_mut().is_some_and(|h| h.record(&other));
                if changed {
                    self.publish();
                }
            }
        }
    }
}
