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
//! only while events are pending (or, once a second, while the folder is
//! missing): an idle berth has no timer at all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch as channel};
use tokio::time::Instant;

use super::events::Plan;
use super::state::{FolderState, ReloadError, Scope};
use super::{Msg, Progress, RescanError, RescanReply, WatchError};
use crate::supervisor::SupervisorHandle;

/// How often to look for a missing folder, in case the parent's watch missed
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
    dir: PathBuf,
    resources: PathBuf,
    watcher: RecommendedWatcher,
    supervisor: SupervisorHandle,
    rx: mpsc::UnboundedReceiver<Msg>,
    progress: channel::Sender<Progress>,
    debounce: Duration,
    missing: bool,
}

impl Task {
    pub(super) fn new(
        state: FolderState,
        resources: PathBuf,
        watcher: RecommendedWatcher,
        debounce: Duration,
        supervisor: SupervisorHandle,
        rx: mpsc::UnboundedReceiver<Msg>,
        progress: channel::Sender<Progress>,
    ) -> Self {
        Self {
            dir: state.dir().to_path_buf(),
            resources,
            state: Some(state),
            watcher,
            supervisor,
            rx,
            progress,
            debounce,
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
        let max_wait = self.debounce.saturating_mul(MAX_WAIT_PERIODS);
        let mut pending: Option<Pending> = None;
        let mut poll_at: Option<Instant> = None;
        loop {
            if !self.missing {
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
                () = crate::timer::sleep_until(poll_at) => {
                    poll_at = None;
                    if self.dir.is_dir() {
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
                tracing::debug!(dir = %self.dir.display(), "watcher stopped");
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
                if !event_plan.add(&self.dir, &event) {
                    return false;
                }
            }
            Msg::Events(Err(error)) => {
                tracing::warn!(dir = %self.dir.display(), %error, "watcher error; rescanning");
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

    /// (Re)creates the watches on the folder and on its parent (to see the
    /// folder come back after a delete or a rename). A missing folder is not
    /// an error; any other failure to watch the folder is.
    fn arm(&mut self) -> Result<(), WatchError> {
        let parent = self.dir.parent().map(Path::to_path_buf);
        // Unwatch first: after a rename the old watch would still follow the
        // old folder under the old name.
        let _ = self.watcher.unwatch(&self.dir);
        if let Some(parent) = &parent {
            let _ = self.watcher.unwatch(parent);
            if let Err(error) = self.watcher.watch(parent, RecursiveMode::NonRecursive) {
                tracing::debug!(parent = %parent.display(), %error, "cannot watch the parent folder");
            }
        }
        match self.watcher.watch(&self.dir, RecursiveMode::NonRecursive) {
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
        let trust = state.trust().clone();
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
                let mut state =
                    FolderState::new(self.dir.clone(), self.resources.clone()).with_trust(trust);
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
