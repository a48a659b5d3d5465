//! The job's side of updates (v3, DESIGN.md "Updates"): `check-update` and
//! `update` on one backend, and what the status's `update` shows.
//!
//! The network work (reading the feed, downloading and verifying into a
//! staging folder, publishing it in the updates folder) runs in a task off
//! the job loop, so the job keeps answering status, stop and the rest while
//! a feed stalls; the job hears its [`Report`] through one `select!` branch
//! ([`Updating::next`]). The job of an id is the only writer of that id's
//! part of the updates folder while the launcher runs: one update at a time.
//!
//! An update goes through [`Step`]s: `Fetching` (the task), `Loading`
//! (published; the registry reads the updates folder and hands the job its
//! new definition, a switch rather than a pending restart), then, if the
//! backend was running, `Watching` (restarted into the new version) and
//! `Probation` (its new run judged by `supervisor::probation`; the reply
//! waits for the verdict; a version installed while stopped is answered
//! at once and put on probation at its first run). [`Job::judge_update`]
//! is the one place that decides what the switched version's status
//! means. A failed probation, and `rollback`, go through `Restoring` (in
//! `rollback`).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use semver::Version;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::super::events::{EventKind, JobEvent};
use super::super::shared::Readers;
use super::state::Phase;
use super::{Flow, Job, ReplyTo, Then};
use crate::status::{ActionError, BackendStatus, Outcome, State, UpdateStatus};
use crate::update::apply::{self, Report, Work};
use crate::update::check::Offer;
use crate::update::install::Updates;
use crate::verb::Verb;

mod rollback;

use rollback::{Restore, Trial};

/// How long a published version may take to reach the job as its new
/// definition (the folder watcher's debounce and a read, normally well
/// under a second).
pub const LOAD_WAIT: Duration = Duration::from_secs(10);

/// What a job knows of its updates, and the update under way.
#[derive(Default)]
pub(super) struct Updating {
    /// The last check's offer above the installed version.
    available: Option<Version>,
    /// When the feed was last read successfully.
    checked: Option<SystemTime>,
    /// The last failure, one line.
    error: Option<String>,
    /// Versions already announced ([`EventKind::UpdateFound`] once each).
    announced: BTreeSet<Version>,
    /// The version `--rollback` returns to, read from the updates folder
    /// when the definition changes.
    previous: Option<Version>,
    /// Versions that failed their probation (`updates/ID/bad`), read with
    /// `previous`.
    bad: Vec<Version>,
    /// A version installed while the backend was stopped, and the one it
    /// came from: its first run goes on probation.
    untried: Option<(Version, Version)>,
    step: Option<Step>,
}

/// Where an update (or a check) is.
enum Step {
    /// The task reads the feed (and for an update, stages and publishes).
    Fetching {
        task: Task,
        install: bool,
        from: Version,
        reply: ReplyTo,
    },
    /// `version` is published; waiting for it to be the definition.
    Loading {
        version: Version,
        from: Version,
        reply: ReplyTo,
        until: Instant,
    },
    /// Restarted into `version`; on probation once its run is spawned.
    Watching {
        version: Version,
        from: Version,
        reply: ReplyTo,
    },
    /// The new version's run is on probation; answered at the verdict.
    Probation(Box<Trial>),
    /// Back to the version kept (a failed probation, or `rollback`).
    Restoring(Box<Restore>),
}

/// The network work's task: a job that ends, or drops it, ends it too.
struct Task(JoinHandle<Report>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What [`Updating::next`] waits for.
pub(super) enum Tick {
    Report(Report),
    /// The published version (or, restoring, the kept one) did not
    /// arrive within [`LOAD_WAIT`].
    Late,
    /// The probation's deadline: its verdict may have changed.
    Probation,
}

impl Updating {
    /// The task's report, or the end of the wait for the new definition;
    /// never, while neither is under way.
    pub async fn next(&mut self) -> Tick {
        match &mut self.step {
            Some(Step::Fetching { task, .. }) => {
                Tick::Report((&mut task.0).await.unwrap_or_else(|e| Report {
                    read: None,
                    result: Err(format!("the update task ended: {e}")),
                }))
            }
            Some(Step::Loading { until, .. }) => {
                tokio::time::sleep_until(*until).await;
                Tick::Late
            }
            Some(Step::Probation(trial)) => {
                tokio::time::sleep_until(trial.deadline()).await;
                Tick::Probation
            }
            Some(Step::Restoring(restore)) => {
                crate::timer::sleep_until(restore.until).await;
                Tick::Late
            }
            _ => std::future::pending().await,
        }
    }

    /// The definition `def` comes from the update under way: it is its
    /// switch, not an edit waiting for a restart.
    pub fn switching(&self, version: &Version) -> bool {
        match &self.step {
            Some(Step::Loading { version: v, .. }) => v == version,
            Some(Step::Watching { .. } | Step::Probation(_) | Step::Restoring(_)) => true,
            _ => false,
        }
    }

    /// An update (not a mere check) is under way: from reading the feed to
    /// the end of its probation or rollback (the status's `detail.updating`).
    pub fn installing(&self) -> bool {
        match &self.step {
            Some(Step::Fetching { install, .. }) => *install,
            // Loading, restarting into it, its probation, a rollback.
            Some(_) => true,
            None => false,
        }
    }

    /// Lays what the job knows over the status's `update` (set from the
    /// definition: `None` without an `update` section).
    pub fn fill(&self, update: &mut UpdateStatus) {
        update.available = self.available.as_ref().map(ToString::to_string);
        update.checked = self
            .checked
            .map(|t| humantime::format_rfc3339_seconds(t).to_string());
        update.previous = self.previous.as_ref().map(ToString::to_string);
        update.bad = self.bad.iter().map(ToString::to_string).collect();
        update.error.clone_from(&self.error);
    }
}

/// Has a switched version come up, failed, or is it still on its way?
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Pending,
    Up,
    Down(String),
}

/// What the status of a backend just switched to a new version means
/// (probation adds its watch on top of `Up`).
pub(super) fn verdict(status: &BackendStatus) -> Verdict {
    let said = |s: &BackendStatus| {
        let how = crate::human::with_exit(s.state.as_str(), s.exit_code, s.signal.as_deref());
        match &s.error {
            Some(e) => format!("{how}: {e}"),
            None => how,
        }
    };
    match status.state {
        State::Running => Verdict::Up,
        State::Starting if status.error.is_some() => Verdict::Down(said(status)),
        State::Starting | State::Stopping => Verdict::Pending,
        _ => Verdict::Down(said(status)),
    }
}

impl Job {
    fn updates(&self) -> Option<(Updates, Readers)> {
        let dir = self.shared.config.updates_dir.as_ref()?;
        let readers = self.shared.readers.get()?;
        Some((Updates::at(dir), readers.clone()))
    }

    /// A `check-update` or `update`: refused at once (one line each), or
    /// its network work started; the reply comes when it is over.
    pub(super) fn ask_update(&mut self, verb: &Verb, reply: ReplyTo) {
        let id = &self.id;
        let refuse = |line: String| Err(ActionError::Update(line));
        let Some(spec) = &self.def.update else {
            let _ = reply.send(refuse(format!(
                "{}: {id} has no update section: no feed to check",
                self.def.file.display()
            )));
            return;
        };
        if self.updating.step.is_some() {
            let _ = reply.send(refuse(format!("{id}: an update is already under way")));
            return;
        }
        let Some((updates, readers)) = self.updates() else {
            let _ = reply.send(refuse(format!("{id}: no updates folder configured")));
            return;
        };
        let install = *verb == Verb::Update;
        let work = Work {
            id: self.def.id.clone(),
            installed: self.def.version.clone(),
            feed: spec.feed.clone(),
            updates,
            places: readers.places,
            keys: readers.keys,
            install,
        };
        if install {
            tracing::info!(backend = %id, feed = %spec.feed, "update: reading the feed");
        }
        self.updating.step = Some(Step::Fetching {
            task: Task(tokio::spawn(apply::run(work))),
            install,
            from: self.def.version.clone(),
            reply,
        });
        if install {
            // The tray's "Update to" turns "Updating to…" at once.
            self.publish();
        }
    }

    /// What [`Updating::next`] produced.
    pub(super) async fn on_update_tick(&mut self, tick: Tick) -> Flow {
        match tick {
            Tick::Report(report) => return self.on_report(report).await,
            Tick::Probation => {}
            Tick::Late if matches!(self.updating.step, Some(Step::Restoring(_))) => {
                self.restore_late();
            }
            Tick::Late => {
                if let Some(Step::Loading { version, reply, .. }) = self.updating.step.take() {
                    let line = format!(
                        "{}: {version} is installed but the backends folders did not show it within {}s",
                        self.id,
                        LOAD_WAIT.as_secs()
                    );
                    self.update_failed(reply, line);
                }
            }
        }
        Flow::Continue
    }

    async fn on_report(&mut self, report: Report) -> Flow {
        let Some(Step::Fetching {
            install,
            from,
            reply,
            ..
        }) = self.updating.step.take()
        else {
            return Flow::Continue;
        };
        let mut line = None;
        if let Some((offer, said)) = &report.read {
            self.updating.checked = Some(SystemTime::now());
            self.updating.error = None;
            line = Some(said.clone());
            self.updating.available = match offer {
                Offer::Available(release) => {
                    self.found(&release.version);
                    Some(release.version.clone())
                }
                Offer::UpToDate(_) => None,
            };
        }
        match report.result {
            Err(why) => self.update_failed(reply, why),
            Ok(None) => {
                self.publish();
                let _ = reply.send(Ok(Outcome::DoneWith(line.unwrap_or_default())));
            }
            Ok(Some(version)) => {
                debug_assert!(install);
                tracing::info!(backend = %self.id, %version, %from, "update installed; loading it");
                if self.updating.available.as_ref() <= Some(&version) {
                    self.updating.available = None;
                }
                self.updating.step = Some(Step::Loading {
                    version: version.clone(),
                    from,
                    reply,
                    until: Instant::now() + LOAD_WAIT,
                });
                // The registry may have handed over the new definition first.
                if self.def.version == version {
                    return self.switch().await;
                }
                self.publish();
            }
        }
        Flow::Continue
    }

    /// Announces `version` the first time this job sees it offered.
    fn found(&mut self, version: &Version) {
        if self.updating.announced.insert(version.clone()) {
            tracing::info!(backend = %self.id, %version, "update found");
            self.emit_update(EventKind::UpdateFound {
                version: version.to_string(),
            });
        }
    }

    fn update_failed(&mut self, reply: ReplyTo, line: String) {
        tracing::warn!(backend = %self.id, reason = %line, "update failed");
        self.updating.error = Some(line.clone());
        self.publish();
        let _ = reply.send(Err(ActionError::Update(line)));
    }

    /// An update's event (no stderr line: nothing ended).
    fn emit_update(&self, kind: EventKind) {
        self.shared.events.emit(JobEvent {
            id: self.id.clone(),
            name: self.def.name.clone(),
            notify: self.def.notify,
            kind,
            last_stderr: None,
            log: None,
        });
    }

    /// Is `def` the definition an update under way waits for (the new
    /// version, or restoring, the kept one)?
    pub(super) fn loads(&self, def: &crate::manifest::Backend) -> bool {
        match &self.updating.step {
            Some(Step::Loading { version, .. }) => *version == def.version,
            Some(Step::Restoring(restore)) => restore.awaits(&def.version),
            _ => false,
        }
    }

    /// The new definition is in force: a running backend is restarted
    /// into it (watched until it runs), a stopped one runs it next time.
    /// Restoring, the kept version is back (see `rollback`).
    pub(super) async fn switch(&mut self) -> Flow {
        if matches!(self.updating.step, Some(Step::Restoring(_))) {
            self.restored().await;
            return Flow::Continue;
        }
        let Some(Step::Loading {
            version,
            from,
            reply,
            ..
        }) = self.updating.step.take()
        else {
            return Flow::Continue;
        };
        let running = matches!(self.phase, Phase::Starting(_) | Phase::Running(_));
        if !running {
            self.applied(reply, &version, &from);
            self.updating.untried = Some((version, from));
            return Flow::Continue;
        }
        tracing::info!(backend = %self.id, %version, "update: restarting into it");
        // Watching from the moment the restart is queued: the publishes of
        // the stop see `stopping` (pending), never the old run.
        self.updating.step = Some(Step::Watching {
            version,
            from,
            reply,
        });
        let (restarted, _) = tokio::sync::oneshot::channel();
        let flow = self
            .when_stopped(Then::Start(Verb::restart(), restarted))
            .await;
        let status = self.status();
        self.judge_update(&status);
        flow
    }

    /// The one place that decides what a switched version's status means
    /// (called on every publish while one is watched): its run goes on
    /// probation as soon as it is spawned; no run at all (the launch
    /// failed) fails it at once.
    pub(super) fn judge_update(&mut self, status: &BackendStatus) {
        if let Some(Step::Probation(trial)) = &mut self.updating.step {
            trial.observe(status);
            return;
        }
        if self.updating.step.is_none() {
            self.first_run_on_probation(status);
            return;
        }
        let Some(Step::Watching { version, .. }) = &self.updating.step else {
            return;
        };
        // Its old run being stopped, and the moment between that stop and
        // the queued restart, are not the new version's.
        if !self.deferred.is_empty()
            || status.version.as_deref() != Some(version.to_string().as_str())
        {
            return;
        }
        let run = self
            .phase
            .run()
            .filter(|r| r.def.version == *version)
            .map(|r| (r.started, r.def.clone()));
        let broken = match verdict(status) {
            Verdict::Pending | Verdict::Up if run.is_none() => return,
            Verdict::Down(why) if run.is_none() => Some(format!("did not start: {why}")),
            _ => None,
        };
        if let Some(Step::Watching {
            version,
            from,
            reply,
        }) = self.updating.step.take()
        {
            let length = self.probation_length();
            let (started, def) = run.unwrap_or_else(|| (Instant::now(), self.def.clone()));
            tracing::info!(backend = %self.id, %version, probation = %crate::human::as_written(length), "on probation");
            let mut trial = Trial::new(version, from, reply, started, &def, length);
            trial.broken = broken;
            trial.observe(status);
            self.updating.step = Some(Step::Probation(Box::new(trial)));
        }
    }

    fn applied(&mut self, reply: ReplyTo, version: &Version, from: &Version) {
        tracing::info!(backend = %self.id, %version, %from, "update applied");
        self.emit_update(EventKind::UpdateApplied {
            version: version.to_string(),
            from: from.to_string(),
        });
        self.updating.error = None;
        self.publish();
        let note = format!("{}: updated {from} -> {version}", self.id);
        let _ = reply.send(Ok(Outcome::DoneWith(note)));
    }

    /// Reads again which version `--rollback` returns to (the definition
    /// changed): the one the updates folder keeps, else, while an installed
    /// update is in force, the shipped one.
    pub(super) fn refresh_previous(&mut self) {
        let dir = self.shared.config.updates_dir.as_ref();
        self.updating.previous = match (dir, &self.def.update) {
            (Some(dir), Some(spec)) => Updates::at(dir)
                .previous(&self.def.id)
                .or_else(|| spec.shipped.clone()),
            _ => None,
        };
        self.updating.bad = match (dir, &self.def.update) {
            (Some(dir), Some(_)) => Updates::at(dir).bad(&self.def.id),
            _ => Vec::new(),
        };
    }
}

/// The job's status with what it knows of updates laid over it.
pub(super) fn lay_over(status: &mut BackendStatus, updating: &Updating) {
    if let Some(update) = status.update.as_mut() {
        updating.fill(update);
    }
    status.detail.updating = updating.installing();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State) -> BackendStatus {
        let mut s = BackendStatus::new("/b/x.yaml", state);
        s.version = Some("1.1.0".into());
        s
    }

    #[test]
    fn a_switched_version_is_up_once_running() {
        assert_eq!(verdict(&status(State::Running)), Verdict::Up);
        assert_eq!(verdict(&status(State::Starting)), Verdict::Pending);
        assert_eq!(verdict(&status(State::Stopping)), Verdict::Pending);
    }

    #[test]
    fn a_switched_version_that_ends_or_times_out_is_down_with_why() {
        let mut exited = status(State::Exited);
        exited.exit_code = Some(3);
        assert_eq!(verdict(&exited), Verdict::Down("exited (code 3)".into()));
        let mut late = status(State::Starting);
        late.error = Some("not ready within 5s".into());
        assert_eq!(
            verdict(&late),
            Verdict::Down("starting: not ready within 5s".into())
        );
    }

    #[test]
    fn the_status_shows_the_last_check_and_the_previous_version() {
        let mut updating = Updating {
            available: Some(Version::new(1, 1, 0)),
            checked: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400)),
            error: Some("x: 404".into()),
            ..Updating::default()
        };
        let mut u = UpdateStatus::default();
        updating.fill(&mut u);
        assert_eq!(u.available.as_deref(), Some("1.1.0"));
        assert_eq!(u.checked.as_deref(), Some("1970-01-02T00:00:00Z"));
        assert_eq!(u.previous, None);
        assert_eq!(u.error.as_deref(), Some("x: 404"));
        updating.previous = Some(Version::new(1, 0, 0));
        updating.fill(&mut u);
        assert_eq!(u.previous.as_deref(), Some("1.0.0"));
    }
}
