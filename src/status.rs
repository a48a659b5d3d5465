//! The status model: what berth publishes about each manifest file and
//! what a command on a backend answers.
//!
//! The supervisor writes these types, the tray, the control socket and the
//! CLI read them. They live in a leaf that names nothing of berth's higher
//! modules (only manifest data), so every face can import them without
//! importing the supervisor, and the supervisor's own parts (board, events,
//! actions) never import back up from the handle.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::manifest::depends::Condition;

/// The state of a backend, as in DESIGN.md's states table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// v2, "Trust": signature missing (when required), bad, or by no trusted key.
    Untrusted,
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
            Self::Untrusted => "untrusted",
            Self::Superseded => "superseded",
        }
    }

    /// A process exists (or is being stopped) in this state.
    pub fn has_process(self) -> bool {
        matches!(self, Self::Starting | Self::Running | Self::Stopping)
    }

    /// Start acts in every state without a process except these five; in
    /// backoff it starts at once, without waiting for the delay.
    pub fn can_start(self) -> bool {
        !matches!(
            self,
            Self::Invalid
                | Self::Incompatible
                | Self::Unsupported
                | Self::Untrusted
                | Self::Superseded
        ) && !self.has_process()
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

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One manifest file as seen by users: the element of `berth status --json`.
/// Field names and types are the contract of DESIGN.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(transform = added_within_protocol_1)]
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
    /// The arguments of the current (else last) run, extra ARGS included;
    /// null before any run (v2).
    pub args: Option<Vec<String>>,
    /// Its `health` check passes; null when no `health` is set or the
    /// backend is not running (v2).
    pub healthy: Option<bool>,
    /// The last stderr line of the last run (v2).
    pub last_stderr: Option<String>,
    /// The trusted key that signed the winning file (v2).
    pub signed_by: Option<String>,
    /// Its sandbox: null (none asked), `"enforced"` or `"partial: <what is not>"` (v2).
    pub sandbox: Option<String>,
    /// The manifest's `actions`, in order (v2).
    pub actions: Vec<ActionStatus>,
    /// The stdout JSON object that made the backend ready, while it runs (v2).
    pub ready_json: Option<serde_json::Map<String, serde_json::Value>>,
    /// The port berth chose for the current run (`port: auto`, v3).
    pub port: Option<u16>,
    /// The current run's secret (`token: true`, v3). Only the socket's own
    /// user reads a status; never logged.
    pub token: Option<String>,
    /// The manifest's `depends_on`: dependency id -> condition (v3).
    #[serde(default)]
    pub depends_on: BTreeMap<String, Condition>,
    /// The dependencies a start of this backend is waiting for, in id
    /// order; empty unless it is `starting` and waiting (v3).
    #[serde(default)]
    pub waiting_for: Vec<String>,
    /// Its updates (v3, "Updates"): null without `update` in the manifest.
    #[serde(default)]
    pub update: Option<UpdateStatus>,
    /// In-process extras for the tray; not part of the JSON contract.
    #[serde(skip)]
    pub detail: Detail,
}

impl BackendStatus {
    /// A file in `state` with nothing else known yet: no id, no process.
    pub fn new(file: impl Into<String>, state: State) -> Self {
        Self {
            id: None,
            name: None,
            version: None,
            path: None,
            error: None,
            status_line: None,
            signal: None,
            file: file.into(),
            state,
            pid: None,
            uptime_s: None,
            rss_bytes: None,
            exit_code: None,
            cpu_percent: None,
            ready: false,
            pending_restart: false,
            restarts: 0,
            args: None,
            healthy: None,
            last_stderr: None,
            signed_by: None,
            sandbox: None,
            actions: Vec::new(),
            ready_json: None,
            port: None,
            token: None,
            depends_on: BTreeMap::new(),
            waiting_for: Vec::new(),
            update: None,
            detail: Detail::default(),
        }
    }
}

/// What berth knows of a backend's updates (`status --json` `update`, v3):
/// the last check's findings and what `--rollback` would return to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UpdateStatus {
    /// The version the feed offers above the installed one, if the last
    /// check found one (never a version marked bad).
    pub available: Option<String>,
    /// When the feed was last read successfully (RFC 3339, UTC).
    pub checked: Option<String>,
    /// The version `--rollback` returns to, if any.
    pub previous: Option<String>,
    /// Versions that failed their probation: never offered again.
    pub bad: Vec<String>,
    /// Why the last check or update failed, in one line.
    pub error: Option<String>,
}

/// Fields added to the status after replies of protocol 1 were recorded:
/// always written, but not required by the schema, so what a berth of the
/// same protocol sent before them stays valid (fields are only ever added).
const ADDED_WITHIN_PROTOCOL_1: &[&str] = &["depends_on", "waiting_for", "update"];

fn added_within_protocol_1(schema: &mut schemars::Schema) {
    if let Some(required) = schema
        .get_mut("required")
        .and_then(serde_json::Value::as_array_mut)
    {
        required.retain(|f| {
            !f.as_str()
                .is_some_and(|f| ADDED_WITHIN_PROTOCOL_1.contains(&f))
        });
    }
}

/// One of a manifest's `actions` as `status --json` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionStatus {
    pub label: String,
    /// Its variables are known and its kind can act in the current state.
    pub available: bool,
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
    /// `(count, of)` while http/tcp health checks fail but not yet `of` times.
    pub health_failing: Option<(u32, u32)>,
    /// An update of the backend is under way (v3: reading the feed,
    /// downloading, switching, restarting into it): the tray's "Update to"
    /// cannot be clicked again.
    pub updating: bool,
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
    /// The 0700 folder of the sd_notify sockets (`notify/` beside the
    /// control socket), created when a backend first needs one.
    pub notify_dir: PathBuf,
    /// Variables of berth's own environment that backends do not inherit
    /// (those the tray set for GTK before any thread started); a manifest's
    /// `env` can still set them.
    pub env_remove: Vec<String>,
    /// The updates folder (v3, "Updates": `$XDG_DATA_HOME/NAME/updates`)
    /// whose `ID/` folder and `ID.yaml` link each backend's job alone
    /// writes; `None`: updates are not installed (tests, benchmarks).
    pub updates_dir: Option<PathBuf>,
}

/// What an accepted command did, for a note on stderr.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// A start that was already `running` when the job answered (`ready:
    /// { uptime: 0s }`), with its status at that moment. The snapshot a
    /// waiting client reads later may already show the run's end: this
    /// run did reach its goal, and the reply must say so.
    Reached(Box<BackendStatus>),
    /// Nothing to do, with the reason (`python is already running`).
    Noop(String),
    /// Done, with what else was done first, for a note (v3: `stopping api,
    /// which depends on db`).
    DoneWith(String),
}

/// A refused command, in one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    #[error("no backend with id {0:?}")]
    UnknownId(String),
    /// No definition has the id, but a file named after it has no usable
    /// definition: its own error is what the user needs to read.
    #[error("no backend with id {id:?}: {file} is {state}: {reason}")]
    UnknownIdBeside {
        id: String,
        file: String,
        state: State,
        reason: String,
    },
    #[error("{id}: cannot {action} while {state}: {reason}")]
    Refused {
        id: String,
        action: &'static str,
        state: State,
        reason: String,
    },
    /// The executable could not be launched (not found, checksum mismatch,
    /// spawn error); the state now says which.
    #[error("{id}: cannot {action}: {source}")]
    Launch {
        id: String,
        action: &'static str,
        source: LaunchFailure,
    },
    #[error("the supervisor has shut down")]
    ShutDown,
    /// A line could not be queued for a backend's stdin (v2).
    #[error(transparent)]
    Stdin(#[from] StdinError),
    #[error("{id}: the JSON line is {len} bytes, over the limit of {max} (64 KiB)", max = crate::manifest::actions::MAX_SEND_LINE)]
    LineTooLong { id: String, len: usize },
    #[error("{id} has no action {label:?}")]
    NoAction { id: String, label: String },
    /// The action exists but cannot act now (v2).
    #[error("{id}: action {label:?} is not available: {reason}")]
    Unavailable {
        id: String,
        label: String,
        reason: String,
    },
    /// An update verb failed or was refused (v3): the whole line, which
    /// names the backend (`python: no updates folder configured`).
    #[error("{0}")]
    Update(String),
    /// Whoever answers the control socket cannot do this (a test double).
    #[error("{0} is not supported here")]
    Unsupported(&'static str),
}

/// Why a line was not queued for a backend's stdin (v2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StdinError {
    #[error("stdin of {0} is full (not reading)")]
    Full(String),
    #[error("stdin of {0} is closed")]
    Closed(String),
}

/// A launch failure as the job keeps it (the supervisor's `LaunchError`),
/// an error value until it is shown: the status model names no supervisor
/// type, so it holds the error as an object. Two are equal when they are the
/// same failure.
#[derive(Debug, Clone)]
pub struct LaunchFailure(pub Arc<dyn std::error::Error + Send + Sync>);

impl PartialEq for LaunchFailure {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Display for LaunchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for LaunchFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
