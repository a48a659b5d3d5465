//! The supervisor: one tokio task per backend, driven by commands, publishing
//! snapshots.
//!
//! [`spawn`] starts the manager task and returns a cheap, cloneable
//! [`SupervisorHandle`]. Catalogs (from the registry / watcher) and user
//! commands (tray, socket) go in through the handle; a [`Snapshot`] of every
//! manifest file comes out on a `tokio::sync::watch` channel.
//! (Issue #3 fills in the implementation.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub mod guardian;

use crate::registry::Catalog;

/// The state of a backend, as in DESIGN.md's states table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Stopped,
    Starting,
    Running,
    Stopping,
    Exited,
    Backoff,
    Failed,
    NotFound,
    IntegrityFailed,
    Invalid,
    Incompatible,
    Unsupported,
    Superseded,
}

impl State {
    /// The word used by `status` and the JSON (`integrity-failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Exited => "exited",
            Self::Backoff => "backoff",
            Self::Failed => "failed",
            Self::NotFound => "not-found",
            Self::IntegrityFailed => "integrity-failed",
            Self::Invalid => "invalid",
            Self::Incompatible => "incompatible",
            Self::Unsupported => "unsupported",
            Self::Superseded => "superseded",
        }
    }

    /// A process exists (or is being stopped) in this state.
    pub fn has_process(self) -> bool {
        matches!(self, Self::Starting | Self::Running | Self::Stopping)
    }

    /// Start is refused in these states.
    pub fn can_start(self) -> bool {
        !matches!(
            self,
            Self::Invalid | Self::Incompatible | Self::Unsupported | Self::Superseded
        ) && !self.has_process()
            && self != Self::Backoff
    }

    /// Stop acts in these states.
    pub fn can_stop(self) -> bool {
        matches!(self, Self::Starting | Self::Running | Self::Backoff)
    }

    /// Restart acts whenever Start or Stop would.
    pub fn can_restart(self) -> bool {
        self.can_start() || self.can_stop()
    }
}

/// One manifest file as seen by users: the element of `berth status --json`.
/// Field names and types are the contract of DESIGN.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStatus {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    /// The executable path in use (or that would be used).
    pub path: Option<String>,
    pub error: Option<String>,
    /// The `status` value of the last stdout JSON line that had one.
    pub status_line: Option<String>,
    /// The signal that ended the last process, e.g. `"SIGKILL"`.
    pub signal: Option<String>,
    /// Absolute path of the manifest file.
    pub file: String,
    pub state: State,
    pub pid: Option<u32>,
    pub uptime_s: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub exit_code: Option<i32>,
    /// Summed over the process group; 100 = one core.
    pub cpu_percent: Option<f64>,
    pub ready: bool,
    pub pending_restart: bool,
    /// Automatic restarts since the last user start.
    pub restarts: u32,
    /// In-process extras for the tray; not part of the JSON contract.
    #[serde(skip)]
    pub detail: Detail,
}

/// What the tray shows beyond the JSON contract.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detail {
    /// Expected digest of the current platform's executable.
    pub sha256: Option<crate::manifest::Digest>,
    /// Did the last launch verify the digest? `None` before the first launch.
    pub verified: Option<bool>,
    /// The backend's log file.
    pub log: Option<PathBuf>,
    /// When a backoff ends.
    pub retry_at: Option<Instant>,
    /// When the current process started (uptime is derived from it).
    pub started_at: Option<Instant>,
}

/// Every manifest file, sorted like the tray: winning backends by name, then
/// the other files by file name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub backends: Vec<BackendStatus>,
}

impl Snapshot {
    /// The status of the winning file of `id`, if any.
    pub fn get(&self, id: &str) -> Option<&BackendStatus> {
        self.backends.iter().find(|b| {
            b.id.as_deref() == Some(id) && !matches!(b.state, State::Superseded | State::Invalid)
        })
    }
}

/// Where and how backend logs are written.
#[derive(Debug, Clone)]
pub struct Config {
    pub log_dir: PathBuf,
    /// Rotate a log when it would grow past this many bytes.
    pub log_max_size: u64,
    /// How many rotated files (`<id>.log.1` ...) to keep.
    pub log_backups: u32,
}

/// What an accepted command did, for a note on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Nothing to do, with the reason (`python is already running`).
    Noop(String),
}

/// A refused command, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no backend with id {0:?}")]
    UnknownId(String),
    #[error("{id}: cannot {action} while {state}: {reason}")]
    Refused {
        id: String,
        action: &'static str,
        state: &'static str,
        reason: String,
    },
    #[error("the supervisor has shut down")]
    ShutDown,
}

/// A cloneable handle to the supervisor. (Issue #3.)
#[derive(Clone)]
pub struct SupervisorHandle {
    snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
}

impl SupervisorHandle {
    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// A receiver that sees every new snapshot.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Replace the set of manifests: new ids get jobs, removed ids are stopped
    /// gracefully and then dropped, edited running ones get `pending_restart`.
    pub async fn apply(&self, catalog: Catalog) {
        let _ = catalog;
        todo!()
    }

    /// Start `id` (returns once spawned or refused; use snapshots to wait for running).
    pub async fn start(&self, id: &str) -> Result<Outcome, ActionError> {
        let _ = id;
        todo!()
    }

    /// Stop `id` and return once its whole process group is gone.
    pub async fn stop(&self, id: &str) -> Result<Outcome, ActionError> {
        let _ = id;
        todo!()
    }

    /// Restart `id` with its current definition.
    pub async fn restart(&self, id: &str) -> Result<Outcome, ActionError> {
        let _ = id;
        todo!()
    }

    /// Start every backend that can start.
    pub async fn start_all(&self) {
        todo!()
    }

    /// Stop every backend, in parallel; returns once all are stopped.
    pub async fn stop_all(&self) {
        todo!()
    }

    /// Stop everything in parallel and end the supervisor.
    pub async fn shutdown(&self) {
        todo!()
    }

    /// SIGKILL every process group at once (second Ctrl-C).
    pub fn kill_all_now(&self) {
        todo!()
    }
}

/// Starts the supervisor on the current tokio runtime.
pub fn spawn(config: Config) -> SupervisorHandle {
    let _ = (config, Duration::ZERO);
    todo!()
}
