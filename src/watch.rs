//! Hot reload: every backends folder is watched, and every settled change
//! becomes a new [`Catalog`](crate::registry::Catalog) for the supervisor.
//!
//! DESIGN.md "Hot reload" is the contract. The split:
//!
//! - [`state`] is pure bookkeeping, testable and benchmarkable without notify:
//!   per file, a cheap fingerprint and the last read (current parse result and
//!   last good definition). A reload re-reads only the files whose fingerprint
//!   moved, then resolves again only the ids those files had or have.
//! - [`events`] turns notify events into a plan: which manifest paths to
//!   look at, whether the whole folder must be rescanned, whether the watches
//!   must be set up again.
//! - `task` owns the notify watcher and runs on tokio. The notify callback
//!   only forwards into an unbounded channel (it never blocks); the task
//!   debounces (waits for the folder to go quiet), reads the folder, and sends
//!   the catalog with `SupervisorHandle::apply` only when it changed. While
//!   nothing happens no timer is armed: an idle berth costs no CPU.
//!
//! Three rules keep a reload from stopping anything by mistake:
//!
//! 1. The folder is read as it is after the batch, never replayed from the
//!    events: an atomic-rename save or a delete-and-recreate inside the
//!    debounce window is an edit.
//! 2. A batch is read only once the folder has been quiet for the debounce
//!    (a half-written file is not read early), and only the paths it names
//!    are looked at.
//! 3. While a folder is missing nothing in it changes; its files count as
//!    removed only once it exists again (its parent folder is watched to see
//!    it come back, with a slow poll as a fallback). The other folders are
//!    followed meanwhile: each folder's problems are its own.
//!
//! One notify watcher serves every folder: each folder and each parent is
//! watched once, even when a folder is another one's parent.
//!
//! Event overflow, watcher errors and SIGHUP ([`WatchHandle::rescan`]) lead to
//! a full rescan (SIGHUP's also re-reads files whose fingerprint did not move).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch as channel};
use tokio::task::JoinHandle;

use crate::supervisor::SupervisorHandle;

pub mod events;
mod settle;
pub mod state;
mod task;

pub use state::{Fingerprint, FolderProblem, FolderState, Loader, Reload, Scope};

/// The debounce of DESIGN.md: how long the folder must stay quiet before a
/// reload. Long enough for an editor's save (or a two-chunk write) to settle,
/// short enough to feel immediate.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The backends folders, each once (see [`crate::folders`]). Made
    /// absolute (without resolving symlinks).
    pub dirs: Vec<PathBuf>,
    /// What `${resources}` expands to in manifests, and the instance whose
    /// folders a sandbox gets.
    pub resources: crate::manifest::Places,
    /// How long the folder must stay quiet before a reload (a folder written
    /// without pause still reloads ten of these after its first change).
    pub debounce: Duration,
    /// Whose signatures count, and whether one is required (v2, "Trust").
    pub trust: Arc<crate::trust::Trust>,
    /// The updates folder (v3, "Updates"), watched and read with the
    /// backends folders; `None`: none.
    pub updates: Option<PathBuf>,
}

impl WatchConfig {
    /// `dirs` and `resources` with the default debounce.
    pub fn new(dirs: Vec<PathBuf>, resources: impl Into<crate::manifest::Places>) -> Self {
        Self {
            dirs,
            resources: resources.into(),
            debounce: DEFAULT_DEBOUNCE,
            trust: Arc::new(crate::trust::Trust::none()),
            updates: None,
        }
    }
}

/// Why the watcher could not start at all (a folder that cannot be watched
/// is not such a reason: it is logged, and the other folders are watched).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch the backends folders: {0}")]
    Notify(#[source] notify::Error),
    #[error("{}: {source}", dir.display())]
    Absolute {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Counters of what the watcher did, for diagnostics and tests (a test waits
/// for `batches` to move instead of sleeping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Reloads run (batches of events, rescans, the first scan).
    pub reloads: u64,
    /// Of which looked at the whole folder.
    pub full_scans: u64,
    /// Files parsed and validated, in total.
    pub rereads: u64,
    /// Catalogs sent to the supervisor.
    pub applied: u64,
    /// A folder is missing right now (nothing in it is stopped meanwhile).
    pub folder_missing: bool,
}

/// Why a requested rescan did not read every folder, in one line. The
/// folders that could be read were read and applied all the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RescanError {
    /// One line naming each folder that could not be read.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Folders(Vec<FolderProblem>),
    #[error("the folder watcher has stopped")]
    Stopped,
}

type RescanReply = oneshot::Sender<Result<(), RescanError>>;

/// Messages into the watcher task.
#[derive(Debug)]
enum Msg {
    Events(notify::Result<notify::Event>),
    Rescan { reply: Option<RescanReply> },
    Shutdown,
}

/// The running watcher. Dropping it stops watching.
#[derive(Debug)]
pub struct WatchHandle {
    tx: mpsc::UnboundedSender<Msg>,
    progress: channel::Receiver<Progress>,
    task: Option<JoinHandle<()>>,
}

impl WatchHandle {
    /// Reads the whole folder again, every file included (SIGHUP). Returns at
    /// once; the reload runs on the watcher task.
    pub fn rescan(&self) {
        let _ = self.tx.send(Msg::Rescan { reply: None });
    }

    /// [`WatchHandle::rescan`], and waits until the catalog it produced has
    /// been applied (the socket's `rescan` answers with this).
    pub async fn rescan_and_wait(&self) -> Result<(), RescanError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Rescan { reply: Some(reply) })
            .map_err(|_| RescanError::Stopped)?;
        rx.await.unwrap_or(Err(RescanError::Stopped))
    }

    /// Feeds an event (or an error) to the watcher as if notify had sent it:
    /// lets tests drive the overflow (`Flag::Rescan`) and watcher-error paths,
    /// which a real inotify queue reaches only under load.
    #[doc(hidden)]
    pub fn inject(&self, result: notify::Result<notify::Event>) {
        let _ = self.tx.send(Msg::Events(result));
    }

    /// The watcher's counters, updated after every reload.
    pub fn progress(&self) -> channel::Receiver<Progress> {
        self.progress.clone()
    }

    /// Stops watching and waits for a reload in progress to finish (so no
    /// catalog reaches the supervisor after this returns).
    pub async fn shutdown(mut self) {
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts watching `config.dirs`: arms the watches, reads every folder,
/// applies the first catalog to `supervisor` (awaited), then follows changes
/// on a tokio task. A folder that does not exist yet, or cannot be read or
/// watched, is not an error: it is logged once, the other folders are
/// served, and a missing one is picked up when it appears.
pub async fn spawn(
    config: WatchConfig,
    supervisor: SupervisorHandle,
) -> Result<WatchHandle, WatchError> {
    let mut dirs = Vec::with_capacity(config.dirs.len());
    for dir in &config.dirs {
        dirs.push(
            std::path::absolute(dir).map_err(|source| WatchError::Absolute {
                dir: dir.clone(),
                source,
            })?,
        );
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let callback_tx = tx.clone();
    // Runs on notify's thread: forward and return, never block.
    let watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        let _ = callback_tx.send(Msg::Events(result));
    })
    .map_err(WatchError::Notify)?;
    let (progress_tx, progress) = channel::channel(Progress::default());
    let updates = match config.updates {
        Some(dir) => Some(
            std::path::absolute(&dir).map_err(|source| WatchError::Absolute {
                dir: dir.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let state = FolderState::new(dirs, config.resources)
        .with_trust(config.trust)
        .with_updates(updates);
    let mut task = task::Task::new(state, watcher, config.debounce, supervisor, rx, progress_tx);
    task.start().await;
    let task = tokio::spawn(task.run());
    Ok(WatchHandle {
        tx,
        progress,
        task: Some(task),
    })
}
