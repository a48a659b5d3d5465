//! The probation of a new version (DESIGN.md "Updates", Switching): after a
//! backend is switched into an update, the new run must reach `running`
//! (and `healthy`, where the definition has `health`) within its ready
//! timeout, then stay up, and healthy, for the update's `probation`;
//! otherwise berth rolls it back.
//!
//! A pure judge, so every ending is unit-tested without a process: the job
//! tells it what the new run did and when (time since the run was
//! spawned), and asks for the verdict at a time; the job arms one timer at
//! [`Probation::deadline`], the only moment the verdict changes without an
//! event. The restart policy is not consulted: an exit during probation is
//! a failure even where the policy would restart it, so a crash loop cannot
//! hide behind restarts.
//!
//! Probation counts from the moment the run is ready (running, and healthy
//! where it has `health`): "must be running and stay up this long".

use std::time::Duration;

use super::restart::LeaderExit;

/// What the new run must do, from the definition and its `update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// The definition's `ready.timeout`: how long it may take to be ready.
    pub ready_timeout: Duration,
    /// `update.probation`: how long it must stay up once ready.
    pub length: Duration,
    /// The definition has `health`: ready means a check passed too.
    pub health: bool,
}

/// Something the new run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// It reached `running` (its ready probe matched).
    Running,
    /// A health check passed (or the first watchdog heartbeat arrived).
    Healthy,
    /// Its leader ended by itself, whatever the code.
    Exited(LeaderExit),
    /// Its health checks failed (or a heartbeat was missed); the error says why.
    Unhealthy(String),
}

/// Where the probation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet.
    OnProbation,
    /// Ready in time and up for the whole probation: the update stays.
    Passed,
    /// Roll it back; the reason in one line, without the version.
    Failed(String),
}

/// One new run's probation.
#[derive(Debug, Clone)]
pub struct Probation {
    terms: Terms,
    /// When it reached `running`.
    running: Option<Duration>,
    /// When it was ready (running, and healthy where it has `health`):
    /// probation counts from here.
    ready: Option<Duration>,
    /// The verdict once it is final; nothing seen later changes it.
    settled: Option<Verdict>,
}

impl Probation {
    pub fn new(terms: Terms) -> Self {
        Self {
            terms,
            running: None,
            ready: None,
            settled: None,
        }
    }

    /// The run did `seen`, `at` after it was spawned.
    pub fn see(&mut self, at: Duration, seen: Seen) {
        if self.settled.is_some() {
            return;
        }
        // Something seen after a deadline passed unnoticed (a timer that
        // fired late) does not change what the deadline decided.
        if let Some(verdict) = self.by_time(at) {
            self.settled = Some(verdict);
            return;
        }
        match seen {
            Seen::Running => {
                self.running.get_or_insert(at);
                if !self.terms.health {
                    self.ready.get_or_insert(at);
                }
            }
            Seen::Healthy => {
                if self.running.is_some() {
                    self.ready.get_or_insert(at);
                }
            }
            Seen::Exited(exit) => self.settled = Some(Verdict::Failed(self.exited(at, &exit))),
            Seen::Unhealthy(error) => {
                self.settled = Some(Verdict::Failed(self.unhealthy(at, &error)))
            }
        }
    }

    /// The verdict `now` (time since the run was spawned).
    pub fn verdict(&self, now: Duration) -> Verdict {
        match &self.settled {
            Some(v) => v.clone(),
            None => self.by_time(now).unwrap_or(Verdict::OnProbation),
        }
    }

    /// When the verdict changes if nothing happens: the ready timeout while
    /// it is not ready, then the end of probation.
    pub fn deadline(&self) -> Duration {
        match self.ready {
            None => self.terms.ready_timeout,
            Some(at) => at + self.terms.length,
        }
    }

    /// The verdict the clock alone gives at `now`, if any.
    fn by_time(&self, now: Duration) -> Option<Verdict> {
        if now < self.deadline() {
            return None;
        }
        Some(match self.ready {
            Some(_) => Verdict::Passed,
            None => Verdict::Failed(self.not_ready()),
        })
    }

    fn not_ready(&self) -> String {
        let within = crate::human::as_written(self.terms.ready_timeout);
        match self.running {
            Some(_) => format!("never became healthy within {within}"),
            None => format!("never became ready within {within}"),
        }
    }

    /// `exited with code 3 9s into its 30s probation`.
    fn exited(&self, at: Duration, exit: &LeaderExit) -> String {
        let how = match exit {
            LeaderExit::Code(code) => format!("exited with code {code}"),
            LeaderExit::Signal(_) => format!(
                "was ended by {}",
                exit.signal_name().unwrap_or_else(|| "a signal".into())
            ),
            LeaderExit::Unknown(e) => format!("ended (its exit is unknown: {e})"),
        };
        format!("{how} {}", self.when(at))
    }

    fn unhealthy(&self, at: Duration, error: &str) -> String {
        format!("unhealthy: {error} ({})", self.when(at))
    }

    /// Where in its probation `at` falls.
    fn when(&self, at: Duration) -> String {
        match self.ready {
            Some(ready) => format!(
                "{} into its {} probation",
                crate::human::elapsed(at.saturating_sub(ready)),
                crate::human::as_written(self.terms.length)
            ),
            None => format!(
                "{} after its start, before it was ready",
                crate::human::elapsed(at)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn terms(health: bool) -> Terms {
        Terms {
            ready_timeout: s(15),
            length: s(30),
            health,
        }
    }

    fn failed(text: &str) -> Verdict {
        Verdict::Failed(text.to_owned())
    }

    #[test]
    fn a_run_ready_in_time_and_up_for_the_whole_probation_passes() {
        let mut p = Probation::new(terms(false));
        assert_eq!(p.verdict(s(0)), Verdict::OnProbation);
        assert_eq!(p.deadline(), s(15), "first the ready timeout");
        p.see(s(2), Seen::Running);
        assert_eq!(p.deadline(), s(32), "then 30s from ready");
        assert_eq!(p.verdict(s(31)), Verdict::OnProbation);
        assert_eq!(p.verdict(s(32)), Verdict::Passed);
        // An exit after the probation (seen late) is not the update's fault.
        p.see(s(40), Seen::Exited(LeaderExit::Code(3)));
        assert_eq!(p.verdict(s(40)), Verdict::Passed);
    }

    #[test]
    fn a_run_that_never_becomes_ready_fails_at_its_ready_timeout() {
        let p = Probation::new(terms(false));
        assert_eq!(p.verdict(s(14)), Verdict::OnProbation);
        assert_eq!(p.verdict(s(15)), failed("never became ready within 15s"));
        // Ready too late: the timeout already decided.
        let mut p = Probation::new(terms(false));
        p.see(s(16), Seen::Running);
        assert_eq!(p.verdict(s(60)), failed("never became ready within 15s"));
    }

    #[test]
    fn with_health_ready_means_running_and_a_check_passed() {
        let mut p = Probation::new(terms(true));
        p.see(s(1), Seen::Running);
        assert_eq!(p.deadline(), s(15), "running is not ready yet");
        assert_eq!(p.verdict(s(15)), failed("never became healthy within 15s"));
        let mut p = Probation::new(terms(true));
        p.see(s(1), Seen::Running);
        p.see(s(4), Seen::Healthy);
        assert_eq!(p.deadline(), s(34));
        assert_eq!(p.verdict(s(34)), Verdict::Passed);
    }

    /// The verdict at the last event after the run did `events`.
    fn after(health: bool, events: &[(u64, Seen)]) -> Verdict {
        let mut p = Probation::new(terms(health));
        for (at, seen) in events {
            p.see(s(*at), seen.clone());
        }
        p.verdict(s(events.last().map_or(0, |e| e.0)))
    }

    #[test]
    fn an_exit_during_probation_fails_it_whatever_the_code() {
        let exit = |code| Seen::Exited(LeaderExit::Code(code));
        let reason = failed("exited with code 3 9s into its 30s probation");
        assert_eq!(after(false, &[(1, Seen::Running), (10, exit(3))]), reason);
        // Final: the policy's restart of it changes nothing.
        let restarted = [(1, Seen::Running), (10, exit(3)), (12, Seen::Running)];
        assert_eq!(after(false, &restarted), reason);
        assert_eq!(
            after(false, &[(1, Seen::Running), (2, exit(0))]),
            failed("exited with code 0 1s into its 30s probation")
        );
        let killed = Seen::Exited(LeaderExit::Signal(9));
        assert_eq!(
            after(false, &[(1, Seen::Running), (5, killed)]),
            failed("was ended by SIGKILL 4s into its 30s probation")
        );
        assert_eq!(
            after(false, &[(3, exit(1))]),
            failed("exited with code 1 3s after its start, before it was ready")
        );
    }

    #[test]
    fn turning_unhealthy_during_probation_fails_it() {
        let error = "health check failed 3 times: connection refused";
        let events = [
            (1, Seen::Running),
            (2, Seen::Healthy),
            (20, Seen::Unhealthy(error.into())),
        ];
        assert_eq!(
            after(true, &events),
            failed(&format!("unhealthy: {error} (18s into its 30s probation)"))
        );
    }

    #[test]
    fn a_health_check_before_running_does_not_make_it_ready() {
        let mut p = Probation::new(terms(true));
        p.see(s(1), Seen::Healthy);
        p.see(s(2), Seen::Running);
        assert_eq!(p.verdict(s(15)), failed("never became healthy within 15s"));
    }
}
