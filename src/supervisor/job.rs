//! One task per backend: verify, spawn, watch, stop, restart.
//!
//! Like watchexec's supervisor, a job is driven by [`Control`] messages and
//! `select!`s over them, the child's exit, its stdout JSON lines, the
//! readiness probe and its timers. The job owns its state ([`Phase`], in
//! `state`) and is the only writer of its status: after every transition it
//! publishes one complete status built from the phase (`publish`).
//!
//! A stop is a phase, not a blocking loop: while a group takes its stop
//! timeout, updates, further Stops, sends and manifest actions are answered
//! at once, and the commands that need the process gone (Start, Restart,
//! Remove, Shutdown) queue behind the stop (`deferred`, see
//! `Job::when_stopped`), so commands still never interleave. A send only queues its line in the run's
//! `talk::Link`; the pipe is written by the link's own task, so a backend
//! that does not read its stdin never holds up the job.
//!
//! To add an event: a field in `state::Run` (per run) or [`Job`] (per backend),
//! one branch in `run_event`'s (per run) or `next_event`'s `select!`
//! producing an [`Event`] (an optional source through `or_never`), one arm
//! in `handle`. To add a verb: a `Verb` variant and its arm in `command`.
//! Updates (v3: check-update, update, and the switch to a new version)
//! live in `update`. Health (sd_notify notices, checks, the watchdog) is such a set
//! of fields and branches; its handlers live in `health`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

mod ending;
mod health;
mod launch;
mod launch_error;
mod state;
mod stop;
mod update;

pub use launch_error::LaunchError;
use state::{Facts, Phase, Rest, Run};
use stop::{After, Check};

use super::actions::{self, Ran};
use super::events::{EventKind, JobEvent};
use super::health::Finding;
use super::lock::lock;
use super::logs::JsonLine;
use super::reach::{Arrival, Progress, Reach, Waiter};
use super::restart::LeaderExit;
use super::sd_notify::Notice;
use super::shared::Shared;
use super::talk::{Replies, Talker};
use crate::manifest::Backend;
use crate::manifest::actions::ActionKind;
use crate::manifest::depends::Condition;
use crate::status::{ActionError, BackendStatus, LaunchFailure, Outcome, State};
use crate::verb::Verb;

/// Up this long, a backend's retry count starts again from zero.
pub const RESET_AFTER: Duration = Duration::from_secs(10);
/// How long the log pump may take to drain once the group is gone.
const DRAIN: Duration = Duration::from_secs(2);

pub type ReplyTo = oneshot::Sender<Result<Outcome, ActionError>>;

/// What a manifest action asked of the job led to (the socket's reply is `protocol::Acted`).
pub enum Effect {
    Done(Ran),
    /// A `restart` action: the handle restarts with these ARGS, the way a
    /// user's Restart does (its reply waits for the stop).
    Restart(Vec<String>),
}

/// A message to a job.
pub enum Control {
    /// A user's verb (see [`Job::command`] for when each is carried out).
    Command { verb: Verb, reply: ReplyTo },
    /// One line (JSON text, no newline) for the backend's stdin; with
    /// `wait`, the reply carries the stdout JSON objects from then on (v2).
    /// Answered at once in every phase: queueing never waits.
    Send {
        line: String,
        wait: bool,
        reply: oneshot::Sender<Result<Option<Replies>, ActionError>>,
    },
    /// Run the manifest action with this label (v2); answered at once.
    Action {
        label: String,
        reply: oneshot::Sender<Result<Effect, ActionError>>,
    },
    /// A new definition from the catalog, with the file's own error; the
    /// job acknowledges once its status shows it.
    Update {
        def: Arc<Backend>,
        manifest_error: Option<String>,
        ack: oneshot::Sender<()>,
    },
    /// Look again whether the executable exists (a reload, a status
    /// request): a stopped backend shows not-found at once, and back.
    Recheck(oneshot::Sender<()>),
    /// A dependent needs this backend at `condition`: start it if it has
    /// no process, and answer once there or never to be (see `reach`).
    Reach {
        condition: Condition,
        progress: Progress,
    },
    /// The id left the catalog: stop gracefully, then leave the board.
    Remove,
    /// Stop and end the task.
    Shutdown(oneshot::Sender<()>),
}

pub struct Job {
    shared: Arc<Shared>,
    id: String,
    generation: u64,
    /// The latest definition (what the next start uses).
    def: Arc<Backend>,
    phase: Phase,
    manifest_error: Option<String>,
    /// Where the executable would be found, resolved at each update.
    def_path: Option<String>,
    /// The `status` of the last stdout JSON line that had one.
    status_line: Option<String>,
    /// Did the last launch verify the digest? `None` before the first.
    verified: Option<bool>,
    /// Automatic restarts counted against `max_retries`.
    retries: u32,
    /// Automatic restarts since the last user start (shown).
    restarts: u32,
    log: PathBuf,
    /// Commands that wait for a stop, carried out once it is over.
    deferred: VecDeque<Then>,
    /// The control channel is closed: end once nothing runs.
    closed: bool,
    /// The last stderr line of the last run (`last_stderr`).
    last_stderr: Option<String>,
    /// Where the control socket's `send` finds the running process's
    /// stdin without asking the job (see `talk::Talker`); empty while the
    /// state accepts no lines.
    talker: Arc<Mutex<Talker>>,
    /// The arguments of the current, else the last, run (`args`).
    last_args: Option<Vec<String>>,
    /// The port of the last run (`port: auto`), tried first by the next.
    last_port: Option<u16>,
    /// Dependents waiting for this backend to reach their condition,
    /// answered from each published status.
    waiters: Vec<Waiter>,
    /// What the status's `update` shows, and the update under way (v3).
    updating: update::Updating,
}

/// A command that needs the process gone: carried out at once when there
/// is none, else queued behind the stop (see [`Job::when_stopped`]).
enum Then {
    /// A user's Start or Restart (its ARGS are the new run's).
    Start(Verb, ReplyTo),
    /// A dependent's start (see [`Control::Reach`]).
    Reach(Condition, Progress),
    /// The id left the catalog: leave the board.
    Remove,
    /// End the task.
    Shutdown(oneshot::Sender<()>),
    /// Back to the kept version of an update, once the version left is
    /// stopped (v3, see `update::rollback`).
    RollBack,
}

enum Event {
    Cmd(Option<Control>),
    Exit(LeaderExit),
    Json(Option<JsonLine>),
    Probe,
    ReadyTimeout,
    ResetRetries,
    Backoff,
    StopCheck,
    /// The log file started or stopped failing: publish.
    LogHealth,
    /// An sd_notify notice from the backend's group; `None` once the
    /// socket's reader ended.
    Notice(Option<Notice>),
    /// What the health checks or the watchdog found.
    Health(Finding),
    /// A dependency's answer while waiting; `None` once none can come.
    Arrival(Option<Arrival>),
    /// The update task reported, or its new definition is late (v3).
    Update(update::Tick),
}

enum Flow {
    Continue,
    End,
}

impl Job {
    pub fn new(
        shared: Arc<Shared>,
        def: Arc<Backend>,
        manifest_error: Option<String>,
        generation: u64,
    ) -> Self {
        let id = def.id.to_string();
        let log = crate::paths::backend_log(&shared.config.log_dir, &id);
        let phase = if def.executable.is_some() {
            Phase::stopped()
        } else {
            Phase::Idle {
                rest: Rest::Unsupported,
                last_exit: None,
            }
        };
        let mut job = Self {
            shared,
            id,
            generation,
            def_path: super::board::shown_path(&def),
            def,
            phase,
            manifest_error,
            status_line: None,
            verified: None,
            retries: 0,
            restarts: 0,
            log,
            deferred: VecDeque::new(),
            closed: false,
            last_stderr: None,
            last_args: None,
            last_port: None,
            talker: Arc::default(),
            waiters: Vec::new(),
            updating: update::Updating::default(),
        };
        job.refresh_previous();
        job.recheck();
        job
    }

    /// Tells the event subscribers (notifications) what just happened.
    pub(super) fn emit(&self, kind: EventKind) {
        self.shared.events.emit(JobEvent {
            id: self.id.clone(),
            name: self.def.name.clone(),
            notify: self.def.notify,
            kind,
            last_stderr: self.last_stderr.clone(),
            log: Some(self.log.clone()),
        });
    }

    /// Writes this job's complete status to the board and publishes a
    /// snapshot. Called once per transition; it also hands the control
    /// socket the run's [`Talker`] while the state accepts lines, and takes
    /// it back otherwise.
    pub fn publish(&mut self) {
        let talker = self
            .phase
            .run()
            .filter(|_| actions::accepts_lines(self.phase.state()))
            .map(|run| run.talk.talker())
            .unwrap_or_default();
        *lock(&self.talker) = talker;
        let status = self.status();
        let id = &self.id;
        self.waiters.retain(|w| w.keep(id, &status));
        self.judge_update(&status);
        let mut board = self.shared.lock_board();
        board.set(&self.id, self.generation, status);
        self.shared.publish(&board);
    }

    /// The status of the phase as it is now.
    fn status(&self) -> BackendStatus {
        let mut status = state::status(&Facts {
            def: &self.def,
            phase: &self.phase,
            manifest_error: self.manifest_error.as_deref(),
            def_path: self.def_path.as_deref(),
            status_line: self.status_line.as_deref(),
            verified: self.verified,
            restarts: self.restarts,
            log: &self.log,
            last_stderr: self.last_stderr.as_deref(),
            args: self.last_args.as_deref(),
            switching: self.updating.switching(&self.def.version),
        });
        update::lay_over(&mut status, &self.updating);
        status
    }

    /// Where this job puts the talker of a run that accepts lines.
    pub fn talker(&self) -> Arc<Mutex<Talker>> {
        self.talker.clone()
    }

    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Control>) {
        loop {
            let event = self.next_event(&mut rx).await;
            if let Flow::End = self.handle(event).await {
                break;
            }
        }
    }

    async fn next_event(&mut self, rx: &mut mpsc::UnboundedReceiver<Control>) -> Event {
        let listening = !self.closed;
        let backoff = match &self.phase {
            Phase::Backoff { until, .. } => Some(*until),
            _ => None,
        };
        let stop_check = match &self.phase {
            Phase::Stopping(_, stop) => Some(stop.next_check),
            _ => None,
        };
        let starting = matches!(self.phase, Phase::Starting(_));
        let running = matches!(self.phase, Phase::Running(_));
        let (run, arrivals) = match &mut self.phase {
            Phase::Waiting(w) => (None, Some(&mut w.arrivals)),
            other => (other.run_mut(), None),
        };
        let arrival = or_never(arrivals.map(|a| a.recv()));
        let updating = &mut self.updating;
        tokio::select! {
            c = rx.recv(), if listening => Event::Cmd(c),
            u = updating.next() => Event::Update(u),
            a = arrival => Event::Arrival(a),
            e = or_never(run.map(|r| run_event(r, starting, running))) => e,
            _ = crate::timer::sleep_until(backoff) => Event::Backoff,
            _ = crate::timer::sleep_until(stop_check) => Event::StopCheck,
        }
    }

    /// One event, then what it means for a probation under way (v3): an
    /// exit is judged before a restart policy's backoff can fire.
    async fn handle(&mut self, event: Event) -> Flow {
        if let Flow::End = self.handle_one(event).await {
            return Flow::End;
        }
        self.probation_due().await
    }

    async fn handle_one(&mut self, event: Event) -> Flow {
        match event {
            Event::LogHealth => self.publish(),
            Event::Update(tick) => return self.on_update_tick(tick).await,
            Event::Cmd(Some(c)) => return self.command(c).await,
            Event::Cmd(None) => {
                self.closed = true;
                self.begin_stop(After::Stopped);
                if !matches!(self.phase, Phase::Stopping(..)) {
                    return Flow::End;
                }
            }
            Event::Exit(exit) => return self.on_exit(exit).await,
            Event::Json(Some(line)) => self.on_json(line),
            Event::Json(None) => {
                if let Some(r) = self.phase.run_mut() {
                    r.json = None;
                }
            }
            Event::Probe => {
                if let Some(r) = self.phase.run_mut() {
                    r.probe = None;
                }
                self.mark_ready(None);
            }
            Event::ReadyTimeout => self.on_ready_timeout(),
            Event::ResetRetries => {
                if let Some(r) = self.phase.run_mut() {
                    r.reset_at = None;
                    r.earned_reset = true;
                }
            }
            Event::Notice(n) => self.on_notice(n),
            Event::Health(v) => self.on_health(v),
            Event::Arrival(a) => self.on_arrival(a).await,
            Event::Backoff => {
                // The restart repeats the ended run's ARGS.
                let mut extra = Vec::new();
                if let Phase::Backoff {
                    attempt, extra: e, ..
                } = &mut self.phase
                {
                    tracing::info!(backend = %self.id, attempt, "automatic restart");
                    extra = std::mem::take(e);
                }
                if let Err(e) = self.begin(extra).await {
                    tracing::warn!(backend = %self.id, reason = %e, "automatic restart failed");
                }
            }
            Event::StopCheck => {
                let done = match &mut self.phase {
                    Phase::Stopping(run, stop) => {
                        matches!(stop.check(run.pgid, run.reaped.is_some()), Check::Gone)
                    }
                    _ => false,
                };
                if done {
                    return self.finish_stop().await;
                }
            }
        }
        Flow::Continue
    }

    /// Updates, rechecks, sends and manifest actions are answered at once
    /// in every phase, a stop included (none of them waits for anything);
    /// a Stop joins a stop under way; the rest need the process gone.
    async fn command(&mut self, c: Control) -> Flow {
        match c {
            Control::Update {
                def,
                manifest_error,
                ack,
            } => {
                let switch = self.loads(&def);
                self.update(def, manifest_error);
                let _ = ack.send(());
                if switch {
                    return self.switch().await;
                }
            }
            Control::Recheck(ack) => {
                if self.recheck() {
                    self.publish();
                }
                let _ = ack.send(());
            }
            Control::Send { line, wait, reply } => {
                let _ = reply.send(self.send(&line, wait));
            }
            Control::Action { label, reply } => {
                let _ = reply.send(self.act(&label));
            }
            Control::Command {
                verb: Verb::Stop,
                reply,
            } => {
                self.user_ends_probation(&Verb::Stop);
                self.stop(reply);
            }
            // Answered once the feed was read (and the update installed):
            // the work runs off the job loop meanwhile.
            Control::Command {
                verb: verb @ (Verb::CheckUpdate | Verb::Update),
                reply,
            } => self.ask_update(&verb, reply),
            Control::Command {
                verb: Verb::Rollback,
                reply,
            } => return self.ask_rollback(reply).await,
            Control::Command { verb, reply } => {
                if matches!(verb, Verb::Restart { .. }) {
                    self.user_ends_probation(&verb);
                }
                return self.when_stopped(Then::Start(verb, reply)).await;
            }
            Control::Reach {
                condition,
                progress,
            } => return self.when_stopped(Then::Reach(condition, progress)).await,
            Control::Remove => return self.when_stopped(Then::Remove).await,
            Control::Shutdown(ack) => return self.when_stopped(Then::Shutdown(ack)).await,
        }
        Flow::Continue
    }

    /// A user's Stop: answered once the group is gone (also when a stop was
    /// already under way); in backoff the restart is cancelled.
    fn stop(&mut self, reply: ReplyTo) {
        let in_backoff = matches!(self.phase, Phase::Backoff { .. } | Phase::Waiting(_));
        self.begin_stop(After::Stopped);
        if let Phase::Stopping(_, stop) = &mut self.phase {
            stop.replies.push(reply);
            return;
        }
        let r = if in_backoff {
            Outcome::Done
        } else {
            Outcome::Noop(format!("{} is not running", self.id))
        };
        let _ = reply.send(Ok(r));
    }

    /// The one path of the commands that need the process gone. A Start
    /// waits for a stop under way; Restart, Remove and Shutdown begin one
    /// (or cancel a backoff) first. Each is carried out now if no stop is
    /// under way, else queued and brought back here once the group is gone.
    async fn when_stopped(&mut self, then: Then) -> Flow {
        if !matches!(then, Then::Start(Verb::Start { .. }, _) | Then::Reach(..)) {
            self.begin_stop(After::Stopped);
        }
        if matches!(self.phase, Phase::Stopping(..)) {
            self.deferred.push_back(then);
            return Flow::Continue;
        }
        match then {
            Then::Start(verb, reply) => {
                let r = self.user_start(&verb).await;
                let _ = reply.send(r);
                Flow::Continue
            }
            Then::Reach(condition, progress) => {
                self.reach(condition, progress).await;
                Flow::Continue
            }
            Then::Remove => {
                self.shared.remove_job(&self.id, self.generation);
                Flow::End
            }
            Then::Shutdown(ack) => {
                let _ = ack.send(());
                Flow::End
            }
            Then::RollBack => {
                self.roll_back_folder().await;
                Flow::Continue
            }
        }
    }
}

impl Job {
    fn update(&mut self, def: Arc<Backend>, manifest_error: Option<String>) {
        self.manifest_error = manifest_error;
        if def.executable.is_some() != self.def.executable.is_some()
            && let Phase::Idle { rest, .. } = &mut self.phase
        {
            *rest = if def.executable.is_some() {
                Rest::Stopped
            } else {
                Rest::Unsupported
            };
        }
        self.def_path = super::board::shown_path(&def);
        self.def = def;
        self.refresh_previous();
        self.recheck();
        self.publish();
    }

    /// At rest, `stopped` <-> `not-found` as the executable disappears or
    /// appears (no Start needed to see it). True when the phase changed.
    fn recheck(&mut self) -> bool {
        let (Phase::Idle { rest, .. }, Some(exe)) = (&mut self.phase, self.def.executable.as_ref())
        else {
            return false;
        };
        let found = exe.resolve().is_some();
        *rest = match rest {
            Rest::Stopped if !found => Rest::NotFound(Arc::new(LaunchError::Verify(
                crate::integrity::VerifyError::NotFound {
                    tried: exe.candidates.clone(),
                },
            ))),
            Rest::NotFound(_) if found => Rest::Stopped,
            _ => return false,
        };
        true
    }

    /// A user's Start or Restart: its ARGS are this run's extra ones (none:
    /// the manifest's `args` alone).
    async fn user_start(&mut self, verb: &Verb) -> Result<Outcome, ActionError> {
        let action = verb.word();
        if self.phase.run().is_some() {
            return Ok(Outcome::Noop(format!("{} is already running", self.id)));
        }
        if matches!(self.phase, Phase::Waiting(_)) {
            return Ok(Outcome::Noop(format!("{} is already starting", self.id)));
        }
        if self.def.executable.is_none() {
            return Err(ActionError::Refused {
                id: self.id.clone(),
                action,
                state: State::Unsupported,
                reason: LaunchError::NoExecutable.to_string(),
            });
        }
        self.retries = 0;
        self.restarts = 0;
        match self.begin(verb.args().to_vec()).await {
            Ok(()) if matches!(self.phase, Phase::Running(_)) => {
                Ok(Outcome::Reached(Box::new(self.status())))
            }
            Ok(()) => Ok(Outcome::Done),
            Err(source) => Err(ActionError::Launch {
                id: self.id.clone(),
                action,
                source: LaunchFailure(source),
            }),
        }
    }

    /// Starts a run: at once, or once every dependency has reached its
    /// condition (the phase waits, `starting` with `waiting_for`).
    async fn begin(&mut self, extra: Vec<String>) -> Result<(), Arc<LaunchError>> {
        if self.def.depends_on.is_empty() {
            return self.launch(extra).await;
        }
        let (progress, arrivals) = mpsc::unbounded_channel();
        for (id, dep) in &self.def.depends_on {
            self.shared.reach(Reach {
                id: id.to_string(),
                condition: dep.condition,
                progress: progress.clone(),
            });
        }
        let last_exit = self.phase.last_exit().cloned();
        let pending = self
            .def
            .depends_on
            .keys()
            .map(ToString::to_string)
            .collect();
        tracing::info!(backend = %self.id, waiting_for = ?pending, "waiting for dependencies");
        self.phase = Phase::Waiting(state::Wait {
            pending,
            arrivals,
            extra,
            last_exit,
        });
        self.publish();
        Ok(())
    }

    /// A dependency arrived (the last one: spawn) or cannot (`failed`).
    async fn on_arrival(&mut self, arrival: Option<Arrival>) {
        let Phase::Waiting(wait) = &mut self.phase else {
            return;
        };
        let (id, result) = match arrival {
            Some(a) => (a.id, a.result),
            // Every dependency's job ended without an answer (removed).
            None => {
                let id = wait.pending.first().cloned().unwrap_or_default();
                (id, Err("removed".to_owned()))
            }
        };
        match result {
            Ok(()) => {
                wait.pending.remove(&id);
                if wait.pending.is_empty() {
                    let extra = std::mem::take(&mut wait.extra);
                    if let Err(e) = self.launch(extra).await {
                        tracing::warn!(backend = %self.id, reason = %e, "start failed");
                    }
                } else {
                    self.publish();
                }
            }
            Err(why) => {
                let error = format!("dependency {id}: {why}");
                tracing::warn!(backend = %self.id, %error, "not started");
                let last_exit = wait.last_exit.take();
                self.phase = Phase::Idle {
                    rest: Rest::Failed(state::Failure::Dependency(error)),
                    last_exit,
                };
                self.publish();
            }
        }
    }

    /// A dependent needs this backend at `condition`: started here if it
    /// has no process and can have one (a backoff restarts by itself), then
    /// answered from this and every later status.
    async fn reach(&mut self, condition: Condition, progress: Progress) {
        if matches!(self.phase, Phase::Idle { ref rest, .. } if !matches!(rest, Rest::Unsupported))
        {
            let _ = self.begin(Vec::new()).await;
        }
        let waiter = Waiter {
            condition,
            progress,
        };
        if waiter.keep(&self.id, &self.status()) {
            self.waiters.push(waiter);
        }
    }

    /// Runs the commands that waited for a stop, until one starts another
    /// stop (the rest wait for that one) or the job ends.
    async fn drain_deferred(&mut self) -> Flow {
        while !matches!(self.phase, Phase::Stopping(..)) {
            let Some(next) = self.deferred.pop_front() else {
                break;
            };
            if let Flow::End = self.when_stopped(next).await {
                return Flow::End;
            }
        }
        if self.closed && !matches!(self.phase, Phase::Stopping(..)) {
            return Flow::End;
        }
        Flow::Continue
    }
}

impl Job {
    /// Queues one line for the running process's stdin, or says why not.
    fn send(&self, line: &str, wait: bool) -> Result<Option<Replies>, ActionError> {
        let state = self.phase.state();
        let run = self
            .phase
            .run()
            .filter(|_| actions::accepts_lines(state))
            .ok_or_else(|| ActionError::Refused {
                id: self.id.clone(),
                action: "send",
                state,
                reason: "it is not running".into(),
            })?;
        // Subscribed before the line is queued, so a reply that comes back
        // at once is not missed.
        let replies = wait.then(|| run.talk.subscribe());
        run.talk.send(line)?;
        Ok(replies)
    }

    /// Runs the manifest action `label` of the latest definition, with the
    /// values the current phase knows.
    fn act(&self, label: &str) -> Result<Effect, ActionError> {
        let def = self.def.clone();
        let Some(action) = def.actions.iter().find(|a| a.label == label) else {
            return Err(ActionError::NoAction {
                id: self.id.clone(),
                label: label.to_owned(),
            });
        };
        let refuse = |reason: String| ActionError::Unavailable {
            id: self.id.clone(),
            label: label.to_owned(),
            reason,
        };
        let values = state::values(&self.id, &self.phase);
        if let Some(reason) = actions::unavailable(action, self.phase.state(), &values) {
            return Err(refuse(reason));
        }
        match &action.kind {
            ActionKind::Open(open) => {
                let target = open.resolve(&values).map_err(|e| refuse(e.to_string()))?;
                crate::opener::try_open_with_desktop(
                    target.as_ref(),
                    open.template().as_str(),
                    &self.shared.config.env_remove,
                )
                .map_err(|e| refuse(format!("cannot run the desktop's opener: {e}")))?;
                // As written: the expanded URL may hold the run's token.
                tracing::info!(backend = %self.id, action = label, target = %open.template(), "opened");
                Ok(Effect::Done(Ran::Opened(target)))
            }
            ActionKind::Send(line) => {
                self.send(line, false)?;
                Ok(Effect::Done(Ran::Sent))
            }
            ActionKind::Restart(args) => Ok(Effect::Restart(args.clone())),
        }
    }
}

/// The next event of the current run: its child, its stdout JSON, its
/// readiness (while starting), its health (while running), its timers.
async fn run_event(r: &mut Run, starting: bool, running: bool) -> Event {
    let child = r.reaped.is_none().then_some(&mut r.child);
    let ready_at = r.ready_deadline.filter(|_| starting);
    tokio::select! {
        s = or_never(child.map(|c| async move { LeaderExit::from_wait(c.wait().await) })) => Event::Exit(s),
        j = or_never(r.json.as_mut().map(|rx| rx.recv())) => Event::Json(j),
        _ = or_never(r.probe.as_mut().filter(|_| starting).map(|p| async move {
            // A probe task that panicked or was aborted proves nothing.
            if p.await.is_err() {
                std::future::pending::<()>().await;
            }
        })) => Event::Probe,
        _ = crate::timer::sleep_until(ready_at) => Event::ReadyTimeout,
        _ = crate::timer::sleep_until(r.reset_at) => Event::ResetRetries,
        _ = async {
            // Never fires once the pump has ended.
            if r.log_error.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        } => Event::LogHealth,
        n = or_never(r.notify.as_mut().map(|rx| rx.recv())) => Event::Notice(n),
        v = or_never(r.health.as_mut().filter(|_| running).map(|m| m.next())) => Event::Health(v),
    }
}

/// An optional `select!` branch: the future's output if there is one, else
/// never ready (the branch waits forever instead of firing).
async fn or_never<F: std::future::Future>(future: Option<F>) -> F::Output {
    match future {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}
