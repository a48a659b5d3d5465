//! A job's state: one enum whose variants carry their data, owned by the
//! job, and the one function that turns it into the status users see.
//!
//! ```text
//!  Idle{Stopped|Exited|Failed|NotFound|IntegrityFailed|Unsupported, last_exit}
//!    │ start (verify + spawn ok)            ▲ group gone (stop)
//!    ▼                                      │
//!    │ start with depends_on: Waiting{pending} ──all arrived: spawn──▶ Starting
//!  Starting(Run) ──ready──▶ Running(Run) ──stop / leader exit / unhealthy──▶ Stopping(Run, Stop)
//!    └──────────────stop / leader exit───────────────────────────────────────▲    │ group gone after
//!                                                                                 ▼ an exit or unhealthy
//!                               Backoff{until, attempt, last_exit} ◀─ restart::decide
//!                                 │ deadline: start     │ stop: Idle{Stopped}
//! ```
//!
//! A process exists in exactly `Starting`, `Running` and `Stopping` (its
//! [`Run`] travels between them); an exit exists only where none does.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::launch_error::LaunchError;
use super::stop::Stop;
use crate::manifest::Backend;
use crate::status::{BackendStatus, State};
use crate::supervisor::health::Monitor;
use crate::supervisor::logs::JsonLine;
use crate::supervisor::reach::Arrival;
use crate::supervisor::restart::LeaderExit;
use crate::supervisor::sd_notify::Listener;
use crate::supervisor::talk::Link;
use crate::supervisor::{actions, board};
use crate::vars::Values;

/// Why a job without a process is at rest. Failures are kept as they
/// happened (a launch's typed error); the status renders them.
#[derive(Debug, Clone)]
pub enum Rest {
    Stopped,
    Exited,
    Failed(Failure),
    /// The executable is missing (or is a folder).
    NotFound(Arc<LaunchError>),
    /// The path shown for the file that failed, and the failure.
    IntegrityFailed(Option<String>, Arc<LaunchError>),
    /// No executable entry for this platform.
    Unsupported,
}

/// Why a job is `failed`.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The launch failed (spawn, log file, workdir, sandbox, ...).
    Launch(Arc<LaunchError>),
    /// The restart policy gave up after `retries` automatic restarts; the
    /// last run was found unhealthy (why), or it exited.
    GaveUp {
        retries: u32,
        unhealthy: Option<String>,
    },
    /// A run found unhealthy under a policy that does not restart it.
    Unhealthy(String),
    /// A dependency cannot reach its condition: `dependency db: failed: ...`.
    Dependency(String),
}

/// One thing wrong with a job, as the job keeps it, shown once: in the
/// status built from the phase (and the event that reports it).
pub enum Problem<'a> {
    Launch(&'a LaunchError),
    GaveUp(u32),
    Said(std::borrow::Cow<'a, str>),
}

impl std::fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Launch(e) => e.fmt(f),
            Self::GaveUp(retries) => write!(f, "gave up after {retries} retries"),
            Self::Said(text) => f.write_str(text),
        }
    }
}

/// A problem the job was told in words.
fn said(text: &str) -> Problem<'_> {
    Problem::Said(text.into())
}

/// The problems as one line, `; ` between them; `None` when there are none.
pub fn render<'a>(problems: impl IntoIterator<Item = Problem<'a>>) -> Option<String> {
    let parts: Vec<String> = problems.into_iter().map(|p| p.to_string()).collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The job's state.
pub enum Phase {
    Idle {
        rest: Rest,
        last_exit: Option<LeaderExit>,
    },
    /// Shown `starting` with `waiting_for`: no process yet, until every
    /// dependency has reached its condition.
    Waiting(Wait),
    Starting(Run),
    Running(Run),
    Stopping(Run, Stop),
    Backoff {
        until: Instant,
        attempt: u32,
        last_exit: LeaderExit,
        /// The extra ARGS of the run that ended, repeated by the restart.
        extra: Vec<String>,
        /// Why the run it restarts was stopped, when berth stopped it
        /// (unhealthy); shown while waiting.
        error: Option<String>,
    },
}

/// A start waiting for its dependencies (see `supervisor::reach`).
pub struct Wait {
    /// The dependencies not there yet (`waiting_for`).
    pub pending: std::collections::BTreeSet<String>,
    /// Their answers, one per dependency.
    pub arrivals: mpsc::UnboundedReceiver<Arrival>,
    /// The extra ARGS of the run to start.
    pub extra: Vec<String>,
    pub last_exit: Option<LeaderExit>,
}

/// One spawned process and what watches it; it lives exactly as long as the
/// process group does. A new per-run field goes here (set in `launch`).
pub struct Run {
    pub child: Child,
    /// Set once the leader has been reaped.
    pub reaped: Option<LeaderExit>,
    pub pid: u32,
    pub pgid: i32,
    /// The definition this run was started with.
    pub def: Arc<Backend>,
    /// The executable as shown to people.
    pub path: String,
    pub started: Instant,
    /// stdout JSON lines from the log pump; `None` once it closed.
    pub json: Option<mpsc::Receiver<JsonLine>>,
    /// Tells the pump to hand over every stdout JSON line, not only those
    /// with a `status`: set while a `stdout_json` probe waits.
    pub probing: Arc<AtomicBool>,
    pub pump: super::super::logs::Pump,
    /// The log file's current write error (full disk), from the pump.
    pub log_error: tokio::sync::watch::Receiver<Option<String>>,
    /// The stdin queue (held open while it runs, DESIGN.md: never
    /// /dev/null) and the stdout fan-out of `berth send`.
    pub talk: Link,
    /// ARGS of the user start/restart appended to the manifest's `args`
    /// for this run (and the automatic restarts that follow it).
    pub extra: Vec<String>,
    /// The stdout JSON object that made it ready (`stdout_json` probe).
    pub ready_json: Option<JsonLine>,
    /// The port berth chose for this run (`port: auto`, v3).
    pub port: Option<u16>,
    /// This run's secret (`token: true`, v3).
    pub token: Option<super::super::given::Token>,
    /// The port of its `tcp`/`http` ready probe, `${port}` expanded:
    /// `${ready.port}`.
    pub ready_port: Option<u16>,
    /// The TCP/HTTP readiness probe while starting.
    pub probe: Option<JoinHandle<()>>,
    pub ready_deadline: Option<Instant>,
    /// When the retry count resets (10 s up).
    pub reset_at: Option<Instant>,
    /// "not ready after 15s".
    pub error: Option<String>,
    /// What the kernel enforces of the manifest's sandbox for this run.
    pub sandbox: Option<String>,
    /// The pump's last stderr line, read once the run is over.
    pub stderr: super::super::logs::StderrTail,
    /// sd_notify notices (`ready.notify`, `health.watchdog`); the socket
    /// file goes with it.
    pub notify: Option<Listener>,
    /// The health checks or the watchdog, from `running` on.
    pub health: Option<Monitor>,
    /// `STOPPING=1` came: the exit that follows is the backend's own
    /// decision, not a failure.
    pub announced_stop: bool,
    /// Ready, or up 10 s: if this run ends by exiting, the retry count
    /// starts again. Never set by health: a run found unhealthy keeps the
    /// count, or a backend that comes up and then fails its checks would
    /// restart forever instead of reaching `failed`.
    pub earned_reset: bool,
}

impl Phase {
    pub fn stopped() -> Self {
        Self::Idle {
            rest: Rest::Stopped,
            last_exit: None,
        }
    }

    /// The word of DESIGN.md's states table.
    pub fn state(&self) -> State {
        match self {
            Self::Idle { rest, .. } => match rest {
                Rest::Stopped => State::Stopped,
                Rest::Exited => State::Exited,
                Rest::Failed(_) => State::Failed,
                Rest::NotFound(_) => State::NotFound,
                Rest::IntegrityFailed(..) => State::IntegrityFailed,
                Rest::Unsupported => State::Unsupported,
            },
            Self::Waiting(_) | Self::Starting(_) => State::Starting,
            Self::Running(_) => State::Running,
            Self::Stopping(..) => State::Stopping,
            Self::Backoff { .. } => State::Backoff,
        }
    }

    pub fn run(&self) -> Option<&Run> {
        match self {
            Self::Starting(r) | Self::Running(r) | Self::Stopping(r, _) => Some(r),
            _ => None,
        }
    }

    pub fn run_mut(&mut self) -> Option<&mut Run> {
        match self {
            Self::Starting(r) | Self::Running(r) | Self::Stopping(r, _) => Some(r),
            _ => None,
        }
    }

    /// The exit kept while no process exists.
    pub fn last_exit(&self) -> Option<&LeaderExit> {
        match self {
            Self::Idle { last_exit, .. } => last_exit.as_ref(),
            Self::Backoff { last_exit, .. } => Some(last_exit),
            Self::Waiting(w) => w.last_exit.as_ref(),
            _ => None,
        }
    }

    /// What is wrong in this state, in the order it is shown.
    pub fn problems(&self) -> Vec<Problem<'_>> {
        match self {
            Self::Idle { rest, .. } => match rest {
                Rest::Failed(Failure::Launch(e))
                | Rest::NotFound(e)
                | Rest::IntegrityFailed(_, e) => vec![Problem::Launch(e)],
                Rest::Failed(Failure::GaveUp { retries, unhealthy }) => unhealthy
                    .iter()
                    .map(|e| said(e))
                    .chain([Problem::GaveUp(*retries)])
                    .collect(),
                Rest::Failed(Failure::Unhealthy(e) | Failure::Dependency(e)) => vec![said(e)],
                Rest::Stopped | Rest::Exited | Rest::Unsupported => Vec::new(),
            },
            Self::Backoff { error, .. } => error.iter().map(|e| said(e)).collect(),
            other => other.run().map_or_else(Vec::new, |r| {
                // The pump's latest word on the log file, copied out of
                // its channel.
                let log = r.log_error.borrow().clone();
                r.error
                    .iter()
                    .map(|e| said(e))
                    .chain(log.map(|l| Problem::Said(l.into())))
                    .collect()
            }),
        }
    }

    /// The problems of this state as one line.
    pub fn error(&self) -> Option<String> {
        render(self.problems())
    }
}

/// What the variables of `open` actions (and health probes) expand to in
/// this phase: the pid, port and token while a process exists; the ready
/// line and a tcp/http probe's port while it runs.
pub fn values<'a>(id: &'a str, phase: &'a Phase) -> Values<'a> {
    let run = phase.run();
    let ready = match phase {
        Phase::Running(run) => Some(run),
        _ => None,
    };
    Values {
        id,
        pid: run.map(|r| r.pid),
        ready_json: ready.and_then(|r| r.ready_json.as_ref()),
        ready_port: ready.and_then(|r| r.ready_port),
        port: run.and_then(|r| r.port),
        token: run.and_then(|r| r.token.as_ref()).map(|t| t.as_str()),
    }
}

/// What a job knows besides its phase, for [`status`].
pub struct Facts<'a> {
    pub def: &'a Backend,
    pub phase: &'a Phase,
    /// The manifest file's own error (a broken edit kept its last good def).
    pub manifest_error: Option<&'a str>,
    /// Where the executable would be found now (resolved at each update).
    pub def_path: Option<&'a str>,
    pub status_line: Option<&'a str>,
    pub verified: Option<bool>,
    pub restarts: u32,
    pub log: &'a PathBuf,
    /// The last stderr line of the last run (v2).
    pub last_stderr: Option<&'a str>,
    /// The arguments of the current, else the last, run (v2).
    pub args: Option<&'a [String]>,
    /// The definition is an update being switched to (v3): not a restart
    /// left pending.
    pub switching: bool,
}

/// The complete status of a job: everything but the metrics overlay and the
/// uptime, which the board adds when it builds a snapshot.
pub fn status(f: &Facts<'_>) -> BackendStatus {
    let def = f.def;
    let mut s = BackendStatus::new(def.file.display().to_string(), f.phase.state());
    board::fill_def(&mut s, def);
    s.last_stderr = f.last_stderr.map(str::to_owned);
    // Predicted from the definition and the kernel while nothing runs; what
    // the run got once launched.
    s.sandbox = f
        .phase
        .run()
        .and_then(|r| r.sandbox.clone())
        .or_else(|| def.sandbox.as_ref().map(crate::sandbox::status_of));
    s.detail.log = Some(f.log.clone());
    s.detail.verified = f.verified;
    s.status_line = f.status_line.map(str::to_owned);
    s.restarts = f.restarts;
    s.args = f.args.map(<[String]>::to_vec);
    let values = values(def.id.as_str(), f.phase);
    s.ready_json = values.ready_json.cloned();
    s.actions = actions::statuses(&def.actions, f.phase.state(), &values);
    let manifest = f.manifest_error.map(|m| Problem::Said(m.into()));
    // A start failed on an id no manifest defines says what the file's
    // dependency error already says: once is enough.
    let said_twice = match (f.phase, f.manifest_error) {
        (
            Phase::Idle {
                rest: Rest::Failed(Failure::Dependency(e)),
                ..
            },
            Some(m),
        ) => m.contains(e.as_str()),
        _ => false,
    };
    let problems = f.phase.problems().into_iter().filter(|_| !said_twice);
    s.error = render(problems.chain(manifest));
    s.ready = s.state == State::Running;
    if let Phase::Running(Run {
        health: Some(h), ..
    }) = f.phase
    {
        s.healthy = h.healthy;
        s.detail.health_failing = h.failing;
    }
    if let Some(run) = f.phase.run() {
        s.pid = Some(run.pid);
        s.port = run.port;
        s.token = run.token.as_ref().map(|t| t.as_str().to_owned());
        s.path = Some(run.path.clone());
        s.pending_restart = !run.def.runs_like(def) && !f.switching;
        s.detail.started_at = Some(run.started.into_std());
    } else {
        s.path = match f.phase {
            Phase::Idle {
                rest: Rest::IntegrityFailed(path, _),
                ..
            } => path.clone(),
            Phase::Idle {
                rest: Rest::NotFound(_),
                ..
            } => None,
            _ => f.def_path.map(str::to_owned),
        };
    }
    if let Some(exit) = f.phase.last_exit() {
        s.exit_code = exit.code();
        s.signal = exit.signal_name();
    }
    if let Phase::Backoff { until, .. } = f.phase {
        s.detail.retry_at = Some(until.into_std());
    }
    if let Phase::Waiting(w) = f.phase {
        s.waiting_for = w.pending.iter().cloned().collect();
    }
    s
}
