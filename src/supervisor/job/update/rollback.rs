//! Probation and rollback in the job (v3, DESIGN.md "Updates", Switching).
//!
//! After a running backend is switched into a new version (and at the
//! first run of a version installed while it was stopped, whose `update`
//! was answered at once), its new run is a [`Trial`]: what it does (ready, healthy, an exit, unhealthy) goes to
//! the pure judge `supervisor::probation`, whose one deadline is a branch
//! of the job's `select!` ([`super::Updating::next`]). The job asks for the
//! verdict after every event ([`Job::probation_due`]), so a restart policy
//! never gets to hide a failure: the exit is judged before any backoff
//! fires.
//!
//! A failed probation, and the `rollback` verb, are a [`Restore`]: the
//! version left is stopped (a `Then::RollBack` queued behind the stop, as
//! every command that needs the process gone), the updates folder goes back
//! to the kept version (`Updates::rollback`; the failed version is marked
//! bad), the job waits for the registry to hand it the kept definition,
//! and starts it if the backend was running. The reply of the `update` (or
//! `rollback`) verb is sent then.
//!
//! A user's Stop or Restart during probation ends it without a verdict: the
//! new version stays installed and is not marked bad (the user, not the
//! version, ended the run); the update's reply says so (exit 1: nothing
//! proved it good), and `--rollback` is there if wanted. A `rollback`
//! during probation ends it the same way, then rolls back (not marked bad
//! either: a rollback by hand judges nothing).

use semver::Version;
use tokio::time::Instant;

use super::super::super::events::EventKind;
use super::super::super::probation::{Probation, Seen, Terms, Verdict};
use super::super::{Flow, Job, ReplyTo, Then};
use super::{LOAD_WAIT, Step};
use crate::manifest::Backend;
use crate::status::{ActionError, BackendStatus, Outcome, State};
use crate::verb::Verb;

/// A new version's run on probation.
pub(in super::super) struct Trial {
    version: Version,
    from: Version,
    reply: ReplyTo,
    /// When the run was spawned: the judge's times count from here.
    started: Instant,
    probation: Probation,
    /// It failed before the judge could watch it (its launch failed).
    pub(super) broken: Option<String>,
    /// Its update was already answered and announced (installed while the
    /// backend was stopped; this is its first run): passing says nothing.
    announced: bool,
}

impl Trial {
    pub(super) fn new(
        version: Version,
        from: Version,
        reply: ReplyTo,
        started: Instant,
        def: &Backend,
        length: std::time::Duration,
    ) -> Self {
        let terms = Terms {
            ready_timeout: def.ready.timeout,
            length,
            health: def.health.is_some(),
        };
        Self {
            version,
            from,
            reply,
            started,
            probation: Probation::new(terms),
            broken: None,
            announced: false,
        }
    }

    /// When the verdict changes if nothing happens.
    pub(super) fn deadline(&self) -> Instant {
        self.started + self.probation.deadline()
    }

    /// What each published status shows of the run: running, healthy.
    pub(super) fn observe(&mut self, status: &BackendStatus) {
        if status.state == State::Running {
            self.see(Seen::Running);
        }
        if status.state == State::Running && status.healthy == Some(true) {
            self.see(Seen::Healthy);
        }
    }

    fn see(&mut self, seen: Seen) {
        self.probation.see(self.started.elapsed(), seen);
    }

    fn verdict(&self) -> Verdict {
        match &self.broken {
            Some(why) => Verdict::Failed(why.clone()),
            None => self.probation.verdict(self.started.elapsed()),
        }
    }
}

/// Back to the version kept before `left`.
pub(in super::super) struct Restore {
    /// The version left.
    left: Version,
    /// Why: a failed probation (then `left` is marked bad); `None` for
    /// the `rollback` verb.
    reason: Option<String>,
    reply: ReplyTo,
    /// Start the kept version once it is back (the backend was running).
    start: bool,
    /// Once the updates folder went back: how long its definition may take.
    pub(super) until: Option<Instant>,
}

impl Restore {
    /// Is a definition at `version` the kept one coming back?
    pub(super) fn awaits(&self, version: &Version) -> bool {
        self.until.is_some() && *version != self.left
    }
}

impl Job {
    /// The run did `seen` (an exit or a health verdict that the status
    /// would not show as it happened); judged at [`Job::probation_due`].
    pub(in super::super) fn probation_sees(&mut self, seen: Seen) {
        if let Some(Step::Probation(trial)) = &mut self.updating.step {
            trial.see(seen);
        }
    }

    /// After every event: a probation that passed is answered, one that
    /// failed is rolled back.
    pub(in super::super) async fn probation_due(&mut self) -> Flow {
        let Some(Step::Probation(trial)) = &self.updating.step else {
            return Flow::Continue;
        };
        let verdict = trial.verdict();
        if verdict == Verdict::OnProbation {
            return Flow::Continue;
        }
        let Some((version, from, reply, announced)) = self.take_trial() else {
            return Flow::Continue;
        };
        match verdict {
            Verdict::Failed(reason) => {
                tracing::warn!(backend = %self.id, %version, %reason, "probation failed: rolling back");
                let restore = Restore {
                    left: version,
                    reason: Some(reason),
                    reply,
                    start: true,
                    until: None,
                };
                self.updating.step = Some(Step::Restoring(Box::new(restore)));
                self.when_stopped(Then::RollBack).await
            }
            _ => {
                tracing::info!(backend = %self.id, %version, "probation passed");
                if announced {
                    self.publish();
                } else {
                    self.applied(reply, &version, &from);
                }
                Flow::Continue
            }
        }
    }

    /// The first run of a version installed while the backend was stopped
    /// goes on probation too (its `update` was answered at once): a
    /// failure is rolled back and told like any other, to no verb.
    pub(super) fn first_run_on_probation(&mut self, status: &BackendStatus) {
        let Some((version, _)) = &self.updating.untried else {
            return;
        };
        let Some(run) = self.phase.run().filter(|r| r.def.version == *version) else {
            return;
        };
        let (started, def) = (run.started, run.def.clone());
        let Some((version, from)) = self.updating.untried.take() else {
            return;
        };
        let length = self.probation_length();
        tracing::info!(backend = %self.id, %version, probation = %crate::human::as_written(length), "first run: on probation");
        let (reply, _) = tokio::sync::oneshot::channel();
        let mut trial = Trial::new(version, from, reply, started, &def, length);
        trial.announced = true;
        trial.observe(status);
        self.updating.step = Some(Step::Probation(Box::new(trial)));
    }

    /// The shipped manifest's `update.probation`.
    pub(super) fn probation_length(&self) -> std::time::Duration {
        self.def
            .update
            .as_ref()
            .map_or(crate::manifest::update::DEFAULT_PROBATION, |u| u.probation)
    }

    /// A user's Stop or Restart ends a probation under way (see the
    /// module); a Stop during a rollback leaves the kept version stopped.
    pub(in super::super) fn user_ends_probation(&mut self, verb: &Verb) {
        if let Some(Step::Restoring(restore)) = &mut self.updating.step {
            restore.start &= *verb != Verb::Stop;
            return;
        }
        let Some((version, from, reply, _)) = self.take_trial() else {
            return;
        };
        let mut line = format!(
            "{} {version}: probation ended by a {}",
            self.id,
            verb.word()
        );
        if *verb != Verb::Rollback {
            line.push_str(&format!(
                "; {version} stays installed (berth update {} --rollback returns to {from})",
                self.id
            ));
        }
        tracing::info!(backend = %self.id, %version, "probation ended by a {}", verb.word());
        self.updating.error = Some(line.clone());
        let _ = reply.send(Err(ActionError::Update(line)));
    }

    /// The trial under way, taken out of the step (any other step
    /// stays): its version, the one it came from, the verb's reply, and
    /// whether the update was already announced.
    fn take_trial(&mut self) -> Option<(Version, Version, ReplyTo, bool)> {
        match self.updating.step.take() {
            Some(Step::Probation(t)) => Some((t.version, t.from, t.reply, t.announced)),
            other => {
                self.updating.step = other;
                None
            }
        }
    }

    /// A `rollback`: back to the kept version (restarted into it if it
    /// runs), or refused in one line.
    pub(in super::super) async fn ask_rollback(&mut self, reply: ReplyTo) -> Flow {
        let id = self.id.clone();
        // Asked for during a probation: the user decided before the judge.
        self.user_ends_probation(&Verb::Rollback);
        let left = match self.rollback_from() {
            Ok(left) => left,
            Err(line) => {
                let _ = reply.send(Err(ActionError::Update(line)));
                return Flow::Continue;
            }
        };
        let start = self.phase.run().is_some() || self.phase.state() == State::Starting;
        tracing::info!(backend = %id, version = %left, "rolling back");
        let restore = Restore {
            left,
            reason: None,
            reply,
            start,
            until: None,
        };
        self.updating.step = Some(Step::Restoring(Box::new(restore)));
        self.when_stopped(Then::RollBack).await
    }

    /// The installed version a `rollback` leaves, or why there is none
    /// to leave now, in one line.
    fn rollback_from(&self) -> Result<Version, String> {
        let id = &self.id;
        let refuse = Err;
        if self.def.update.is_none() {
            return refuse(format!(
                "{}: {id} has no update section: no update to roll back",
                self.def.file.display()
            ));
        }
        if self.updating.step.is_some() {
            return refuse(format!("{id}: an update is already under way"));
        }
        let Some((updates, _)) = self.updates() else {
            return refuse(format!("{id}: no updates folder configured"));
        };
        updates.current(&self.def.id).ok_or_else(|| {
            format!(
                "{id}: no update is installed: nothing to roll back to (it runs its shipped {})",
                self.def.version
            )
        })
    }

    /// The version left is stopped: the updates folder goes back (and a
    /// version that failed probation is marked bad); then the kept
    /// definition is awaited.
    pub(in super::super) async fn roll_back_folder(&mut self) {
        let Some(Step::Restoring(restore)) = &self.updating.step else {
            return;
        };
        let (left, bad) = (restore.left.clone(), restore.reason.is_some());
        let Some((updates, _)) = self.updates() else {
            return;
        };
        let id = self.def.id.clone();
        let done = tokio::task::spawn_blocking(move || {
            let back = updates.rollback(&id);
            let marked = if bad {
                updates.mark_bad(&id, &left)
            } else {
                Ok(())
            };
            back.and_then(|to| marked.map(|()| to))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
        match done {
            Ok(_) => {
                if let Some(Step::Restoring(restore)) = &mut self.updating.step {
                    restore.until = Some(Instant::now() + LOAD_WAIT);
                }
                self.refresh_previous();
                self.publish();
                // The registry may have handed over the kept definition first.
                if self.def.version != self.left_version() {
                    self.restored().await;
                }
            }
            Err(e) => {
                let Some(Step::Restoring(restore)) = self.updating.step.take() else {
                    return;
                };
                let line = match &restore.reason {
                    Some(reason) => format!(
                        "{} {} failed its probation ({reason}) and could not be rolled back: {e}",
                        self.id, restore.left
                    ),
                    None => format!("{}: could not roll back {}: {e}", self.id, restore.left),
                };
                self.update_failed(restore.reply, line);
            }
        }
    }

    fn left_version(&self) -> Version {
        match &self.updating.step {
            Some(Step::Restoring(r)) => r.left.clone(),
            _ => self.def.version.clone(),
        }
    }

    /// The kept definition is in force: started if the backend was
    /// running, then the verb is answered (and a failed probation told).
    pub(super) async fn restored(&mut self) {
        let Some(Step::Restoring(restore)) = self.updating.step.take() else {
            return;
        };
        let Restore {
            left,
            reason,
            reply,
            start,
            ..
        } = *restore;
        let to = self.def.version.clone();
        // The caller hears it when the kept version cannot even launch
        // (else the server waits for it to run, as for a start).
        let mut not_started = None;
        if start && let Err(e) = self.user_start(&Verb::start()).await {
            tracing::warn!(backend = %self.id, %to, reason = %e, "the kept version did not start");
            not_started = Some(format!("; {to} did not start: {e}"));
        }
        match reason {
            Some(reason) => {
                let line = format!(
                    "{} {left} rolled back to {to}: {reason}{}",
                    self.id,
                    not_started.unwrap_or_default()
                );
                tracing::warn!(backend = %self.id, version = %left, %to, %reason, "rolled back");
                self.emit_update(EventKind::RolledBack {
                    version: left.to_string(),
                    to: to.to_string(),
                    reason,
                });
                self.update_failed(reply, line);
            }
            None if not_started.is_some() => {
                let line = format!(
                    "{}: rolled back {left} -> {to}{}",
                    self.id,
                    not_started.unwrap_or_default()
                );
                self.update_failed(reply, line);
            }
            None => {
                tracing::info!(backend = %self.id, version = %left, %to, "rolled back");
                self.updating.error = None;
                self.publish();
                let note = format!("{}: rolled back {left} -> {to}", self.id);
                let _ = reply.send(Ok(Outcome::DoneWith(note)));
            }
        }
    }

    /// The kept definition did not arrive within [`LOAD_WAIT`].
    pub(super) fn restore_late(&mut self) {
        let Some(Step::Restoring(restore)) = self.updating.step.take() else {
            return;
        };
        let mut line = format!(
            "{}: {} was rolled back but the backends folders did not show the kept version within {}s",
            self.id,
            restore.left,
            LOAD_WAIT.as_secs()
        );
        if let Some(reason) = &restore.reason {
            line.push_str(&format!(" (its probation failed: {reason})"));
        }
        self.update_failed(restore.reply, line);
    }
}
