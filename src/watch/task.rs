//! The watcher task: notify plumbing around [`FolderState`].
//!
//! The debouncer (notify-debouncer-full) calls back on its own thread; the
//! callback only sends into an unbounded channel. This task receives batches,
//! merges whatever else is already queued into one plan, reloads on a
//! blocking thread (parsing is file I/O and CPU), and applies the catalog to
//! the supervisor when it changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{Debouncer, RecommendedCache};
use tokio::sync::{mpsc, watch as channel};

use super::events::Plan;
use super::state::{FolderState, ReloadError, Scope};
use super::{Msg, Progress, RescanError, RescanReply, WatchError};
use crate::supervisor::SupervisorHandle;

/// How often to look for a missing folder, in case the parent's watch missed
/// its return (the parent itself was replaced, or could not be watched).
const MISSING_POLL: Duration = Duration::from_secs(1);

pub(super) struct Task {
    /// `None` only while a reload runs on the blocking pool.
    state: Option<FolderState>,
    dir: PathBuf,
    resources: PathBuf,
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    supervisor: SupervisorHandle,
    rx: mpsc::UnboundedReceiver<Msg>,
    progress: channel::Sender<Progress>,
    missing: bool,
}

impl Task {
    pub(super) fn new(
        state: FolderState,
        resources: PathBuf,
        debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
        supervisor: SupervisorHandle,
        rx: mpsc::UnboundedReceiver<Msg>,
        progress: channel::Sender<Progress>,
    ) -> Self {
        Self {
            dir: state.dir().to_path_buf(),
            resources,
            state: Some(state),
            debouncer,
            supervisor,
            rx,
            progress,
            missing: false,
        }
    }

    /// Arms the watches, then reads the whole folder (in that order, so a
    /// file written in between is seen by one or the other) and applies it.
    pub(super) async fn start(&mut self) -> Result<(), WatchError> {
        self.arm()?;
        match self.reload(Scope::Full { force: false }).await {
            Err(e @ ReloadError::Registry(_)) => Err(WatchError::Scan(e)),
            _ => Ok(()),
        }
    }

    pub(super) async fn run(mut self) {
        let mut poll = tokio::time::interval(MISSING_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut plan = Plan::default();
            let mut replies = Vec::new();
            let mut stop = false;
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(msg) => stop = self.absorb(msg, &mut plan, &mut replies),
                    None => stop = true,
                },
                _ = poll.tick(), if self.missing => {
                    if self.dir.is_dir() {
                        plan.rearm = true;
                    }
                }
            }
            // One reload for everything already queued.
            while !stop && let Ok(msg) = self.rx.try_recv() {
                stop = self.absorb(msg, &mut plan, &mut replies);
            }
            if stop {
                tracing::debug!(dir = %self.dir.display(), "watcher stopped");
                return;
            }
            // A requested rescan re-reads every file: the user asked for it.
            let force = !replies.is_empty();
            if plan.is_empty() {
                continue;
            }
            if plan.rearm
                && let Err(e) = self.arm()
            {
                tracing::warn!(error = %e, "cannot watch the backends folder again");
            }
            let scope = if plan.rearm || plan.rescan || force {
                Scope::Full { force }
            } else {
                Scope::Paths(plan.paths)
            };
            // The error is logged inside; the loop goes on.
            let result = self.reload(scope).await;
            for reply in replies.drain(..).flatten() {
                let _ = reply.send(result.as_ref().map_err(RescanError::from).copied());
            }
        }
    }

    /// Folds one message into the plan; `true` means stop.
    fn absorb(
        &mut self,
        msg: Msg,
        plan: &mut Plan,
        replies: &mut Vec<Option<RescanReply>>,
    ) -> bool {
        match msg {
            Msg::Events(Ok(events)) => plan.add_events(&self.dir, &events),
            Msg::Events(Err(errors)) => {
                for error in &errors {
                    tracing::warn!(dir = %self.dir.display(), %error, "watcher error; rescanning");
                }
                // The watch may be gone with the error: set it up again and
                // look at everything rather than lose a change.
                plan.rearm = true;
            }
            Msg::Rescan { reply } => {
                plan.rescan = true;
                replies.push(reply);
            }
            Msg::Shutdown => return true,
        }
        false
    }

    /// (Re)creates the watches on the folder and on its parent (to see the
    /// folder come back after a delete or a rename). A missing folder is not
    /// an error; any other failure to watch the folder is.
    fn arm(&mut self) -> Result<(), WatchError> {
        let parent = self.dir.parent().map(Path::to_path_buf);
        // Unwatch first: after a rename the old watch would still follow the
        // old folder under the old name.
        let _ = self.debouncer.unwatch(&self.dir);
        if let Some(parent) = &parent {
            let _ = self.debouncer.unwatch(parent);
            if let Err(error) = self.debouncer.watch(parent, RecursiveMode::NonRecursive) {
                tracing::debug!(parent = %parent.display(), %error, "cannot watch the parent folder");
            }
        }
        match self.debouncer.watch(&self.dir, RecursiveMode::NonRecursive) {
            Ok(()) => Ok(()),
            Err(_) if !self.dir.exists() => Ok(()),
            Err(source) => Err(WatchError::Notify {
                dir: self.dir.clone(),
                source,
            }),
        }
    }

    /// Reloads `scope` off the async threads, applies a changed catalog and
    /// publishes progress.
    async fn reload(&mut self, scope: Scope) -> Result<(), ReloadError> {
        let full = matches!(scope, Scope::Full { .. });
        let Some(mut state) = self.state.take() else {
            return Ok(());
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = state.reload(&scope);
            (state, result)
        })
        .await;
        let result = match joined {
            Ok((state, result)) => {
                self.state = Some(state);
                result
            }
            Err(error) => {
                // A panic in parsing is a bug; start over from an empty state
                // with a full rescan rather than stop watching.
                tracing::error!(%error, "reload failed; rescanning the whole folder");
                let mut state = FolderState::new(self.dir.clone(), self.resources.clone());
                let result = state.reload(&Scope::Full { force: true });
                self.state = Some(state);
                result
            }
        };
        let mut applied = false;
        let mut rereads = 0;
        let outcome = match result {
            Ok(reload) => {
                if self.missing {
                    tracing::info!(dir = %self.dir.display(), "backends folder is back");
                }
                self.missing = false;
                rereads = reload.reread as u64;
                if reload.changed
                    && let Some(state) = &self.state
                {
                    tracing::info!(
                        dir = %self.dir.display(),
                        reread = reload.reread,
                        dropped = reload.dropped,
                        "backends changed"
                    );
                    self.supervisor.apply(state.catalog().clone()).await;
                    applied = true;
                }
                Ok(())
            }
            Err(e @ ReloadError::FolderMissing { .. }) => {
                if !self.missing {
                    tracing::warn!(
                        dir = %self.dir.display(),
                        "backends folder is missing; nothing is stopped until it exists again"
                    );
                }
                self.missing = true;
                Err(e)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the backends folder; keeping the backends as they are");
                Err(e)
            }
        };
        let missing = self.missing;
        self.progress.send_modify(|p| {
            p.reloads += 1;
            p.full_scans += u64::from(full);
            p.rereads += rereads;
            p.applied += u64::from(applied);
            p.folder_missing = missing;
        });
        outcome
    }
}
