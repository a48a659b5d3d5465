//! The watcher task: notify plumbing around [`FolderState`], and the
//! debounce.
//!
//! notify's watcher calls back on its own thread (inotify: blocked in `poll`
//! with no timeout while nothing happens); the callback only sends into an
//! unbounded channel. This task collects the paths the events name and waits
//! for the folder to go quiet ([`WatchConfig::debounce`](super::WatchConfig)
//! without a relevant event, or at most [`MAX_WAIT_PERIODS`] debounces after
//! the first one, so a folder written without pause still reloads), then
//! reloads on a blocking thread (parsing is file I/O and CPU) and applies the
//! catalog to the supervisor when it changed.
//!
//! Why not notify-debouncer-full: its thread ticks every quarter of the
//! debounce forever, which was all of an idle berth's CPU. Here a timer exists
//! only while events are pending (or, once a second, while a folder is
//! missing): an idle berth has no timer at all.
//!
//! Each folder's problems are its own: one that is missing, a file or
//! unreadable is logged once when it becomes so (and once when it is back),
//! and the other folders are followed meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch as channel};
use tokio::time::Instant;

use super::events::Plan;
use super::settle::Settle;
use super::state::{FolderProblem, FolderState, Scope};
use super::{Msg, Progress, RescanError, RescanReply};
use crate::supervisor::SupervisorHandle;

/// How often to look for a missing folder, in case its parent's watch missed
/// its return (the parent itself was replaced, or could not be watched).
const MISSING_POLL: Duration = Duration::from_secs(1);

/// A folder that never goes quiet (a file rewritten without pause) still
/// reloads this many debounce periods after its first pending change.
pub(super) const MAX_WAIT_PERIODS: u32 = 10;

/// Changes seen, waiting for the folder to go quiet.
#[derive(Debug)]
struct Pending {
    plan: Plan,
    first: Instant,
    last: Instant,
}

impl Pending {
    /// When the batch is due: `debounce` after the last relevant event, but no
    /// later than `max_wait` after the first.
    fn due(&self, debounce: Duration, max_wait: Duration) -> Instant {
        (self.last + debounce).min(self.first + max_wait)
    }
}

pub(super) struct Task {
    /// `None` only while a reload runs on the blocking pool.
    state: Option<FolderState>,
    /// The backends folders and the updates folder: what is watched.
    dirs: Vec<PathBuf>,
    /// An empty state for the same folders, to start over from.
    template: FolderState,
    watcher: RecommendedWatcher,
    /// What the watcher follows now: each folder and each parent, once.
    watched: BTreeSet<PathBuf>,
    /// The folders that could not be watched, as last logged.
    unwatched: BTreeMap<PathBuf, String>,
    supervisor: SupervisorHandle,
    rx: mpsc::UnboundedReceiver<Msg>,
    progress: channel::Sender<Progress>,
    debounce: Duration,
    /// Each folder's problem as last logged.
    problems: BTreeMap<PathBuf, FolderProblem>,
    /// Withholds fresh errors and logs broken and repaired files.
    settle: Settle,
    /// When a withheld error is due to be shown.
    recheck_at: Option<Instant>,
}

impl Task {
    pub(super) fn new(
        state: FolderState,
        watcher: RecommendedWatcher,
        debounce: Duration,
        supervisor: SupervisorHandle,
        rx: mpsc::UnboundedReceiver<Msg>,
        progress: channel::Sender<Progress>,
    ) -> Self {
        Self {
            dirs: state.all_dirs(),
            template: state.blank(),
            state: Some(state),
            watcher,
            watched: BTreeSet::new(),
            unwatched: BTreeMap::new(),
            supervisor,
            rx,
            progress,
            debounce,
            problems: BTreeMap::new(),
            settle: Settle::default(),
            recheck_at: None,
        }
    }

    /// Arms the watches, then reads every folder (in that order, so a file
    /// written in between is seen by one or the other) and applies them.
    pub(super) async fn start(&mut self) {
        self.arm();
        // Problems are logged inside; the other folders are served.
        let _ = self.reload(Scope::Full { force: false }).await;
        self.settle.end_start_up();
    }

    /// A folder exists but cannot be read or watched.
    fn unreadable(&self) -> bool {
        !self.unwatched.is_empty()
            || self
                .problems
                .values()
                .any(|p| matches!(p, FolderProblem::Unreadable { .. }))
    }

    /// A folder is missing (or a file has its name): look for it now and then.
    fn absent(&self) -> bool {
        self.problems.values().any(FolderProblem::is_absent)
    }

    pub(super) async fn run(mut self) {
        let max_wait = self.debounce.saturating_mul(MAX_WAIT_PERIODS);
        let mut pending: Option<Pending> = None;
        let mut poll_at: Option<Instant> = None;
        loop {
            if !self.absent() {
                poll_at = None;
            } else if poll_at.is_none() {
                poll_at = Some(Instant::now() + MISSING_POLL);
            }
            let due = pending.as_ref().map(|p| p.due(self.debounce, max_wait));
            // What cannot wait for the folder to go quiet: requested rescans,
            // and the folder found back by the poll.
            let mut now = Plan::default();
            let mut replies = Vec::new();
            let mut stop = false;
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(msg) => stop = self.absorb(msg, &mut pending, &mut now, &mut replies),
                    None => stop = true,
                },
                () = crate::timer::sleep_until(due) => {}
                () = crate::timer::sleep_until(self.recheck_at) => {
                    self.recheck_at = None;
                    self.publish().await;
                }
                () = crate::timer::sleep_until(poll_at) => {
                    poll_at = None;
                    let back = self
                        .problems
                        .values()
                        .any(|p| p.is_absent() && p.dir().is_dir());
                    if back {
                        now.rearm = true;
                    }
                }
            }
            // Everything already queued counts before deciding: an event
            // just in keeps the folder from being quiet.
            while !stop && let Ok(msg) = self.rx.try_recv() {
                stop = self.absorb(msg, &mut pending, &mut now, &mut replies);
            }
            if stop {
                tracing::debug!("watcher stopped");
                return;
            }
            let settled = pending
                .as_ref()
                .is_some_and(|p| p.due(self.debounce, max_wait) <= Instant::now());
            if now.is_empty() && !settled {
                continue;
            }
            // A full scan reads whatever is pending anyway.
            let mut plan = now;
            if let Some(p) = pending.take() {
                plan.merge(p.plan);
            }
            // A requested rescan re-reads every file: the user asked for it.
            let force = !replies.is_empty();
            if plan.rearm || force {
                self.arm();
            }
            let scope = if plan.rearm || plan.rescan || force {
                Scope::Full { force }
            } else {
                Scope::Paths(plan.paths)
            };
            // The error is logged inside; the loop goes on.
            let result = self.reload(scope).await;
            for reply in replies.drain(..).flatten() {
                let _ = reply.send(result.clone());
            }
        }
    }

    /// Folds one message into the pending batch (events) or into `now`
    /// (rescans); `true` means stop.
    fn absorb(
        &mut self,
        msg: Msg,
        pending: &mut Option<Pending>,
        now: &mut Plan,
        replies: &mut Vec<Option<RescanReply>>,
    ) -> bool {
        let mut event_plan = Plan::default();
        match msg {
            Msg::Events(Ok(event)) => {
                let relevant = event_plan.add(&self.dirs, &event);
                // A chmod of a folder that could not be read: look again now.
                if event_plan.attrib && self.unreadable() {
                    now.rearm = true;
                }
                if !relevant {
                    return false;
                }
            }
            Msg::Events(Err(error)) => {
                tracing::warn!(%error, "watcher error; rescanning the backends folders");
                // The watch may be gone with the error: set it up again and
                // look at everything rather than lose a change.
                event_plan.rearm = true;
            }
            Msg::Rescan { reply } => {
                now.rescan = true;
                replies.push(reply);
                return false;
            }
            Msg::Shutdown => return true,
        }
        let at = Instant::now();
        match pending {
            Some(p) => {
                p.plan.merge(event_plan);
                p.last = at;
            }
            None => {
                *pending = Some(Pending {
                    plan: event_plan,
                    first: at,
                    last: at,
                });
            }
        }
        false
    }

    /// (Re)creates the watches on every folder and on its parent (to see
    /// the folder come back after a delete or a rename), each path once. A
    /// folder that is missing is not a problem here (its parent's watch sees
    /// it come); one that exists but cannot be watched is logged once, and
    /// the others are watched all the same.
    fn arm(&mut self) {
        // Unwatch first: after a rename the old watch would still follow the
        // old folder under the old name.
        for path in std::mem::take(&mut self.watched) {
            let _ = self.watcher.unwatch(&path);
        }
        let parents: BTreeSet<PathBuf> = self
            .dirs
            .iter()
            .filter_map(|d| d.parent().map(Path::to_path_buf))
            .filter(|p| !self.dirs.contains(p))
            .collect();
        for parent in parents {
            match self.watcher.watch(&parent, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(parent);
                }
                Err(error) => {
                    tracing::debug!(parent = %parent.display(), %error, "cannot watch the parent folder");
                }
            }
        }
        for dir in self.dirs.clone() {
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir.clone());
                    if self.unwatched.remove(&dir).is_some() {
                        tracing::info!(dir = %dir.display(), "watching the backends folder again");
                    }
                }
                // Missing, not a folder or unreadable: the reload says so.
                Err(_) if std::fs::read_dir(&dir).is_err() => {
                    self.unwatched.remove(&dir);
                }
                Err(error) => {
                    let error = error.to_string();
                    if self.unwatched.get(&dir) != Some(&error) {
                        tracing::warn!(
                            dir = %dir.display(),
                            "cannot watch the backends folder: {error}; SIGHUP reads it again"
                        );
                    }
                    self.unwatched.insert(dir, error);
                }
            }
        }
    }

    /// Applies the settled view of the folder (fresh errors withheld) if it
    /// differs from the last one; `true` if it did.
    async fn publish(&mut self) -> bool {
        let Some(state) = &self.state else {
            return false;
        };
        let (view, again) = self
            .settle
            .view(state.catalog(), std::time::SystemTime::now());
        self.recheck_at = again.map(|d| Instant::now() + d);
        if !self.settle.is_new(&view) {
            return false;
        }
        tracing::info!("backends changed");
        self.supervisor.apply(view.clone()).await;
        self.settle.applied(view);
        true
    }

    /// Reloads `scope` off the async threads, applies a changed catalog and
    /// publishes progress. `Err` names the folders that could not be read
    /// (the others were read and applied).
    async fn reload(&mut self, scope: Scope) -> Result<(), RescanError> {
        let full = matches!(scope, Scope::Full { .. });
        let Some(mut state) = self.state.take() else {
            return Ok(());
        };
        let trust = state.trust().clone();
        let joined = tokio::task::spawn_blocking(move || {
            let reload = state.reload(&scope);
            (state, reload)
        })
        .await;
        let reload = match joined {
            Ok((state, reload)) => {
                self.state = Some(state);
                reload
            }
            Err(error) => {
                // A panic in parsing is a bug; start over from an empty state
                // with a full rescan rather than stop watching.
                tracing::error!(%error, "reload failed; rescanning every backends folder");
                let mut state = self.template.blank().with_trust(trust);
                let reload = state.reload(&Scope::Full { force: true });
                self.state = Some(state);
                reload
            }
        };
        let problems = self
            .state
            .as_ref()
            .map(FolderState::problems)
            .unwrap_or_default();
        self.log_problems(&problems);
        let mut applied = false;
        if reload.changed {
            tracing::debug!(
                reread = reload.reread,
                dropped = reload.dropped,
                "backends changed"
            );
            applied = self.publish().await;
        }
        let missing = self.absent();
        self.progress.send_modify(|p| {
            p.reloads += 1;
            p.full_scans += u64::from(full);
            p.rereads += reload.reread as u64;
            p.applied += u64::from(applied);
            p.folder_missing = missing;
        });
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RescanError::Folders(problems))
        }
    }

    /// Logs each folder problem once when it appears or changes, and once
    /// when the folder is back.
    fn log_problems(&mut self, now: &[FolderProblem]) {
        let before = std::mem::take(&mut self.problems);
        let others = if self.dirs.len() > 1 {
            ", the other folders are served"
        } else {
            ""
        };
        for problem in now {
            let dir = problem.dir().to_path_buf();
            if before.get(&dir) != Some(problem) {
                match problem {
                    FolderProblem::Unreadable { .. } => {
                        tracing::error!("{problem}; keeping its backends as they are{others}")
                    }
                    FolderProblem::Missing { .. } => tracing::warn!(
                        "{problem}; nothing in it is stopped until it exists again{others}"
                    ),
                    FolderProblem::NotAFolder { .. } => tracing::warn!(
                        "{problem}; nothing in it is stopped until it is a folder again{others}"
                    ),
                }
            }
            self.problems.insert(dir, problem.clone());
        }
        for dir in before.keys().filter(|d| !self.problems.contains_key(*d)) {
            tracing::info!(dir = %dir.display(), "backends folder is back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_due_once_quiet_but_never_later_than_the_cap() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let p = |first: u64, last: u64| Pending {
            plan: Plan::default(),
            first: t0 + ms(first),
            last: t0 + ms(last),
        };
        let (debounce, cap) = (ms(100), ms(1000));
        // Quiet period: the last event counts, not the first.
        assert_eq!(p(0, 0).due(debounce, cap), t0 + ms(100));
        assert_eq!(p(0, 80).due(debounce, cap), t0 + ms(180));
        // A folder written without pause: the cap.
        assert_eq!(p(0, 950).due(debounce, cap), t0 + ms(1000));
    }
}
