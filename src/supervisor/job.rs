//! One task per backend: verify, spawn, watch, stop, restart.
//!
//! Like watchexec's supervisor, a job is driven by [`Control`] messages and
//! `select!`s over them, the child's exit, its stdout JSON lines, the
//! readiness probe and its timers. Every command runs to completion before
//! the next is read (a Stop returns once the group is gone), so commands
//! never interleave. Status lives on the [`Board`](super::board::Board); the
//! job writes its own slot and publishes.

use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod launch;

use super::board::Slot;
use super::logs::{JsonLine, StderrTail};
use super::{ActionError, EventKind, JobEvent, Outcome, Shared, State, group};
use crate::manifest::{Backend, RestartPolicy};

/// The longest backoff between automatic restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Up this long, a backend's retry count starts again from zero.
pub const RESET_AFTER: Duration = Duration::from_secs(10);
/// How long to wait after SIGKILL before giving up on a group (a process in
/// uninterruptible sleep cannot die earlier).
const KILL_GRACE: Duration = Duration::from_secs(10);
/// How long the log pump may take to drain once the group is gone.
const DRAIN: Duration = Duration::from_secs(2);

pub type Reply = oneshot::Sender<Result<Outcome, ActionError>>;

/// A message to a job.
pub enum Control {
    Start(Reply),
    Stop(Reply),
    Restart(Reply),
    /// A new definition from the catalog (the board fields are already set).
    Update(Arc<Backend>),
    /// The id left the catalog: stop gracefully, then leave the board.
    Remove,
    /// Stop and end the task.
    Shutdown(oneshot::Sender<()>),
}

/// A running process and what watches it.
struct Live {
    child: Child,
    reaped: Option<ExitStatus>,
    pgid: i32,
    def: Arc<Backend>,
    json: Option<mpsc::Receiver<JsonLine>>,
    pump: JoinHandle<()>,
    /// The pump's last stderr line, read once the run is over.
    stderr: StderrTail,
    /// Held open while it runs; never written in v1.
    _stdin: Option<ChildStdin>,
    probe: Option<JoinHandle<()>>,
    ready_deadline: Option<Instant>,
    reset_at: Option<Instant>,
}

pub struct Job {
    shared: Arc<Shared>,
    id: String,
    generation: u64,
    def: Arc<Backend>,
    live: Option<Live>,
    backoff_until: Option<Instant>,
    /// Automatic restarts counted against `max_retries`.
    retries: u32,
    /// Automatic restarts since the last user start (shown).
    restarts: u32,
}

enum Event {
    Cmd(Option<Control>),
    Exit(std::io::Result<ExitStatus>),
    Json(Option<JsonLine>),
    Probe,
    ReadyTimeout,
    ResetRetries,
    Backoff,
}

enum Flow {
    Continue,
    End,
}

impl Job {
    pub fn new(shared: Arc<Shared>, def: Arc<Backend>, generation: u64) -> Self {
        Self {
            shared,
            id: def.id.to_string(),
            generation,
            def,
            live: None,
            backoff_until: None,
            retries: 0,
            restarts: 0,
        }
    }

    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Control>) {
        loop {
            let backoff = self.backoff_until;
            let event = {
                let (child, json, probe, ready_at, reset_at) = match self.live.as_mut() {
                    Some(l) => (
                        l.reaped.is_none().then_some(&mut l.child),
                        l.json.as_mut(),
                        l.probe.as_mut(),
                        l.ready_deadline,
                        l.reset_at,
                    ),
                    None => (None, None, None, None, None),
                };
                tokio::select! {
                    c = rx.recv() => Event::Cmd(c),
                    s = wait_child(child) => Event::Exit(s),
                    j = next_json(json) => Event::Json(j),
                    _ = join_probe(probe) => Event::Probe,
                    _ = crate::timer::sleep_until(ready_at) => Event::ReadyTimeout,
                    _ = crate::timer::sleep_until(reset_at) => Event::ResetRetries,
                    _ = crate::timer::sleep_until(backoff) => Event::Backoff,
                }
            };
            let flow = match event {
                Event::Cmd(Some(c)) => self.command(c).await,
                Event::Cmd(None) => {
                    self.stop_process().await;
                    Flow::End
                }
                Event::Exit(status) => {
                    self.on_exit(status).await;
                    Flow::Continue
                }
                Event::Json(Some(line)) => {
                    self.on_json(line);
                    Flow::Continue
                }
                Event::Json(None) => {
                    if let Some(l) = self.live.as_mut() {
                        l.json = None;
                    }
                    Flow::Continue
                }
                Event::Probe => {
                    if let Some(l) = self.live.as_mut() {
                        l.probe = None;
                    }
                    self.mark_ready();
                    Flow::Continue
                }
                Event::ReadyTimeout => {
                    self.on_ready_timeout();
                    Flow::Continue
                }
                Event::ResetRetries => {
                    if let Some(l) = self.live.as_mut() {
                        l.reset_at = None;
                    }
                    self.retries = 0;
                    Flow::Continue
                }
                Event::Backoff => {
                    self.backoff_until = None;
                    if let Err(reason) = self.launch() {
                        tracing::warn!(backend = %self.id, %reason, "automatic restart failed");
                    }
                    Flow::Continue
                }
            };
            if let Flow::End = flow {
                break;
            }
        }
    }

    async fn command(&mut self, c: Control) -> Flow {
        match c {
            Control::Start(reply) => {
                let r = self.user_start("start").await;
                let _ = reply.send(r);
            }
            Control::Stop(reply) => {
                let r = self.user_stop().await;
                let _ = reply.send(r);
            }
            Control::Restart(reply) => {
                let r = if self.live.is_some() || self.backoff_until.is_some() {
                    self.stop_process().await;
                    self.user_start("restart").await
                } else {
                    self.user_start("restart").await
                };
                let _ = reply.send(r);
            }
            Control::Update(def) => {
                let executable_changed = def.executable.is_some() != self.def.executable.is_some();
                self.def = def;
                if self.live.is_none() && executable_changed {
                    let state = if self.def.executable.is_some() {
                        State::Stopped
                    } else {
                        State::Unsupported
                    };
                    if self.backoff_until.is_none() {
                        self.update(|s| s.status.state = state);
                    }
                }
            }
            Control::Remove => {
                self.stop_process().await;
                let generation = self.generation;
                let id = self.id.clone();
                let mut board = self.shared.lock();
                if board
                    .jobs
                    .get(&id)
                    .is_some_and(|s| s.generation == generation)
                {
                    board.jobs.remove(&id);
                }
                self.shared.publish(&board);
                return Flow::End;
            }
            Control::Shutdown(ack) => {
                self.stop_process().await;
                let _ = ack.send(());
                return Flow::End;
            }
        }
        Flow::Continue
    }

    async fn user_start(&mut self, action: &'static str) -> Result<Outcome, ActionError> {
        if self.live.is_some() {
            return Ok(Outcome::Noop(format!("{} is already running", self.id)));
        }
        if self.def.executable.is_none() {
            return Err(ActionError::Refused {
                id: self.id.clone(),
                action,
                state: State::Unsupported.as_str(),
                reason: "no executable entry for this platform".into(),
            });
        }
        self.backoff_until = None;
        self.retries = 0;
        self.restarts = 0;
        match self.launch() {
            Ok(()) => Ok(Outcome::Done),
            Err(reason) => Err(ActionError::Launch {
                id: self.id.clone(),
                action,
                reason,
            }),
        }
    }

    async fn user_stop(&mut self) -> Result<Outcome, ActionError> {
        if self.live.is_some() || self.backoff_until.is_some() {
            self.stop_process().await;
            Ok(Outcome::Done)
        } else {
            Ok(Outcome::Noop(format!("{} is not running", self.id)))
        }
    }

    fn state(&self) -> State {
        let board = self.shared.lock();
        board
            .jobs
            .get(&self.id)
            .map_or(State::Stopped, |s| s.status.state)
    }

    /// Writes this job's slot and publishes a snapshot.
    fn update(&self, f: impl FnOnce(&mut Slot)) {
        let mut board = self.shared.lock();
        if let Some(slot) = board
            .jobs
            .get_mut(&self.id)
            .filter(|s| s.generation == self.generation)
        {
            f(slot);
        }
        self.shared.publish(&board);
    }

    /// The leader exited by itself: stop the rest of its group, then apply
    /// the restart policy.
    async fn on_exit(&mut self, status: std::io::Result<ExitStatus>) {
        let Some(mut live) = self.live.take() else {
            return;
        };
        live.reaped =
            Some(status.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(0)));
        let exit = live.reaped;
        let def = live.def.clone();
        end_group(&mut live, def.stop.signal.to_nix(), def.stop.timeout).await;
        self.release(live).await;
        let (code, signal) = describe(exit);
        let failure = code != Some(0);
        tracing::info!(backend = %self.id, ?code, ?signal, "exited");
        let restart = match self.def.restart.policy {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => failure,
            RestartPolicy::Always => true,
        };
        let spec = self.def.restart.clone();
        let (state, retry_at) = if restart && self.retries < spec.max_retries {
            self.retries += 1;
            self.restarts += 1;
            let factor = 1u32 << (self.retries - 1).min(16);
            let delay = spec.backoff.saturating_mul(factor).min(MAX_BACKOFF);
            let at = Instant::now() + delay;
            self.backoff_until = Some(at);
            (State::Backoff, Some(at))
        } else if restart {
            (State::Failed, None)
        } else {
            (State::Exited, None)
        };
        let restarts = self.restarts;
        self.emit(EventKind::Exited {
            code,
            signal: signal.clone(),
            then: state,
        });
        self.update(|s| {
            s.running_def = None;
            let st = &mut s.status;
            st.state = state;
            st.exit_code = code;
            st.signal = signal;
            st.restarts = restarts;
            st.detail.retry_at = retry_at.map(Instant::into_std);
            if state == State::Failed {
                s.run_error = Some(format!("gave up after {} retries", spec.max_retries));
            }
        });
    }

    /// Tells the event subscribers (notifications) what just happened.
    pub(super) fn emit(&self, kind: EventKind) {
        let (last_stderr, log) = {
            let board = self.shared.lock();
            let status = board.jobs.get(&self.id).map(|s| &s.status);
            (
                status.and_then(|s| s.last_stderr.clone()),
                status.and_then(|s| s.detail.log.clone()),
            )
        };
        self.shared.events.emit(JobEvent {
            id: self.id.clone(),
            name: self.def.name.clone(),
            notify: self.def.notify,
            kind,
            last_stderr,
            log,
        });
    }

    /// Stops the live process (if any) and cancels a pending backoff; the
    /// state becomes `stopped`.
    async fn stop_process(&mut self) {
        self.backoff_until = None;
        let Some(mut live) = self.live.take() else {
            if self.state() == State::Backoff {
                self.update(|s| {
                    s.status.state = State::Stopped;
                    s.status.detail.retry_at = None;
                });
            }
            return;
        };
        self.update(|s| s.status.state = State::Stopping);
        let def = live.def.clone();
        group::signal(live.pgid, def.stop.signal.to_nix());
        end_group(&mut live, def.stop.signal.to_nix(), def.stop.timeout).await;
        self.release(live).await;
        tracing::info!(backend = %self.id, "stopped");
        self.update(|s| {
            s.running_def = None;
            s.run_error = None;
            s.status.state = State::Stopped;
            s.status.detail.retry_at = None;
        });
    }

    /// Forgets a process whose group is gone: unregisters it, lets the log
    /// pump drain, applies the last status lines.
    async fn release(&mut self, mut live: Live) {
        self.shared.groups.remove(live.pgid);
        if let Some(link) = self.shared.guardian.as_ref() {
            link.del(live.pgid);
        }
        if let Some(p) = live.probe.take() {
            p.abort();
        }
        let _ = tokio::time::timeout(DRAIN, &mut live.pump).await;
        if let Some(mut json) = live.json.take() {
            while let Ok(line) = json.try_recv() {
                if let Some(serde_json::Value::String(status)) = line.get("status") {
                    let status = status.clone();
                    self.update(|s| s.status.status_line = Some(status));
                }
            }
        }
        let last_stderr = live.stderr.get();
        self.update(|s| {
            let st = &mut s.status;
            st.last_stderr = last_stderr;
            st.pid = None;
            st.cpu_percent = None;
            st.rss_bytes = None;
            st.uptime_s = None;
            st.pending_restart = false;
            st.detail.started_at = None;
        });
    }
}

/// Ends a group: if anything of it still runs, `signal` (again harmless),
/// wait `timeout`, SIGKILL, and wait until no member is left. Reaps the
/// leader on the way.
async fn end_group(live: &mut Live, signal: Signal, timeout: Duration) {
    let pgid = live.pgid;
    if live.reaped.is_some() && group::alive(pgid) {
        group::signal(pgid, signal);
    }
    let deadline = Instant::now() + timeout;
    let mut killed_at: Option<Instant> = None;
    loop {
        if live.reaped.is_none() {
            tokio::select! {
                s = live.child.wait() => {
                    live.reaped = Some(s.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(0)));
                }
                _ = tokio::time::sleep(group::POLL) => {}
            }
        } else {
            if !group::alive(pgid) {
                return;
            }
            tokio::time::sleep(group::POLL).await;
        }
        let now = Instant::now();
        match killed_at {
            None if now >= deadline => {
                tracing::warn!(pgid, "stop timeout: SIGKILL to the group");
                group::signal(pgid, Signal::SIGKILL);
                killed_at = Some(now);
            }
            Some(at) if now >= at + KILL_GRACE => {
                tracing::error!(pgid, "process group survives SIGKILL; giving up");
                return;
            }
            _ => {}
        }
    }
}

/// `(exit code, signal name)` of an exit status.
fn describe(status: Option<ExitStatus>) -> (Option<i32>, Option<String>) {
    use std::os::unix::process::ExitStatusExt;
    let Some(status) = status else {
        return (None, None);
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => (Some(code), None),
        (None, Some(sig)) => (
            None,
            Some(
                Signal::try_from(sig)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| format!("signal {sig}")),
            ),
        ),
        _ => (None, None),
    }
}

async fn wait_child(child: Option<&mut Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

async fn next_json(rx: Option<&mut mpsc::Receiver<JsonLine>>) -> Option<JsonLine> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn join_probe(probe: Option<&mut JoinHandle<()>>) {
    match probe {
        Some(p) => {
            if p.await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}
