//! The supervisor: one tokio task per backend, driven by commands, publishing
//! snapshots.
//!
//! [`spawn`] returns a cheap, cloneable [`SupervisorHandle`]. Catalogs (from
//! the registry / watcher) and user commands (tray, socket) go in through the
//! handle; a [`Snapshot`] of every manifest file comes out on a
//! `tokio::sync::watch` channel.
//!
//! ## Theory of operation
//!
//! - Each winning backend has a job task (`job`) that owns its state, one
//!   enum (`job::state::Phase`: idle with the last exit, starting, running,
//!   stopping, backoff), and is the only writer of its status: one complete
//!   status per transition. Start verifies the executable (hashed on a
//!   blocking thread from the descriptor it is executed from, see
//!   [`crate::integrity`]) and spawns it as the leader of a new process
//!   group; Stop signals the group and the job ticks the stop (`stop.timeout`,
//!   then SIGKILL) until no process of the group is left (`group`), still
//!   answering updates meanwhile. A leader that exits by itself has the rest
//!   of its group stopped the same way (shown `stopping`) before the pure
//!   [`restart::decide`] picks the next state.
//! - The handle keeps the jobs' control senders; the board (`board`) keeps
//!   only the last published statuses. A metrics task (`metrics`) overlays
//!   CPU/RSS sampled only while someone looks (a `status` request, the
//!   tray's open submenu), and sleeps otherwise.
//! - Each running backend has a log pump (`logs`) that owns its log file and
//!   hands stdout JSON lines to the job (status line, readiness: `ready`)
//!   and to the clients waiting for a reply (`talk`). Lines for its stdin go
//!   through a bounded queue that one writer task per run drains (`talk`),
//!   so a backend that does not read never blocks anyone.
//! - A guardian process (`guardian`) learns every process group before its
//!   first instruction runs and stops them all if berth dies, even by
//!   SIGKILL. Each backend is spawned as the leader of its own session
//!   (`setsid`), so no other backend's process can join its group. A
//!   process that leaves its group (`setpgid`, `setsid`) is out of reach of
//!   both the stop and the guardian.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

mod actions;
mod board;
pub mod events;
pub mod given;
pub mod group;
pub mod guardian;
pub mod health;
mod job;
pub mod logs;
mod metrics;
pub mod ready;
pub mod restart;
pub mod sd_notify;
mod shared;
pub mod talk;

pub use actions::Ran;
pub use job::LaunchError;

use crate::manifest::Backend;
use crate::registry::{Catalog, Standing};
use crate::status::{ActionError, BackendStatus, Config, Outcome, Snapshot};
use crate::verb::Verb;
pub use events::{EventKind, JobEvent};
use job::Control;
use shared::{Shared, lock};

/// A cloneable handle to the supervisor.
#[derive(Clone)]
pub struct SupervisorHandle {
    snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    shared: Arc<Shared>,
    /// The jobs' control senders: the handle's, never the board's.
    jobs: Arc<Mutex<Jobs>>,
    metrics: metrics::Metrics,
}

/// How long a status request waits for the jobs' re-check of their
/// executables (a stat each; a job busy verifying answers after it).
pub const RECHECK_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// How the handle reaches each job.
#[derive(Default)]
struct Jobs {
    map: std::collections::BTreeMap<String, JobRef>,
    shut_down: bool,
    next_generation: u64,
}

struct JobRef {
    generation: u64,
    ctl: mpsc::UnboundedSender<Control>,
    /// What was last sent to the job, to send only changes.
    def: Arc<Backend>,
    manifest_error: Option<String>,
    removing: bool,
    /// The running process's stdin while the job says it accepts lines.
    talker: Arc<Mutex<talk::Talker>>,
}

impl SupervisorHandle {
    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// A receiver that sees every new snapshot.
    /// Crashes, refused launches and untrusted manifests, as they happen
    /// (desktop notifications listen here).
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<JobEvent> {
        self.shared.events.subscribe()
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Replace the set of manifests: new ids get jobs, removed ids are stopped
    /// gracefully and then dropped, edited running ones get `pending_restart`.
    /// Returns once the snapshot reflects the catalog (removed backends may
    /// still be stopping).
    pub async fn apply(&self, catalog: Catalog) {
        let shared = &self.shared;
        let mut acks = Vec::new();
        {
            let mut jobs = lock(&self.jobs);
            if jobs.shut_down {
                return;
            }
            let mut winners = std::collections::BTreeSet::new();
            for (entry, def) in catalog.winners() {
                let id = def.id.to_string();
                winners.insert(id.clone());
                // Its own error and its dependency error: both shown.
                let error = entry.shown_error();
                if let Some(job) = jobs.map.get_mut(&id).filter(|j| !j.removing) {
                    let (ack, done) = oneshot::channel();
                    if *job.def != **def || job.manifest_error != error {
                        acks.push(done);
                        job.def = def.clone();
                        job.manifest_error = error.clone();
                        let _ = job.ctl.send(Control::Update {
                            def: def.clone(),
                            manifest_error: error.clone(),
                            ack,
                        });
                    } else {
                        // Every reload looks again for a missing executable
                        // (not waited for: a job may be hashing).
                        let _ = job.ctl.send(Control::Recheck(ack));
                    }
                    continue;
                }
                let generation = jobs.next_generation;
                jobs.next_generation += 1;
                let (ctl, rx) = mpsc::unbounded_channel();
                let job = job::Job::new(shared.clone(), def.clone(), error.clone(), generation);
                job.publish();
                let talker = job.talker();
                tokio::spawn(run_job(
                    Arc::downgrade(&self.jobs),
                    id.clone(),
                    generation,
                    job,
                    rx,
                ));
                // A new id, whether in the first catalog or a later one: an
                // edit of an existing id never gets here, so it never
                // autostarts.
                if def.autostart && def.executable.is_some() {
                    let (reply, _) = oneshot::channel();
                    let _ = ctl.send(Control::Command {
                        verb: Verb::start(),
                        reply,
                    });
                }
                jobs.map.insert(
                    id,
                    JobRef {
                        generation,
                        ctl,
                        def: def.clone(),
                        manifest_error: error.clone(),
                        removing: false,
                        talker,
                    },
                );
            }
            for (id, job) in jobs.map.iter_mut() {
                if !winners.contains(id) && !job.removing {
                    job.removing = true;
                    let _ = job.ctl.send(Control::Remove);
                }
            }
            let mut board = shared.lock_board();
            let others: Vec<BackendStatus> = catalog
                .entries
                .iter()
                .filter(|e| e.standing != Standing::Winner || e.backend.is_none())
                .map(board::other_status)
                .collect();
            for event in events::newly_untrusted(&board.others, &others) {
                shared.events.emit(event);
            }
            board.others = others;
            shared.publish(&board);
        }
        for ack in acks {
            let _ = ack.await;
        }
    }

    /// Every job looks again whether its executable exists (a status
    /// request does this, so not-found is never stale when someone looks).
    /// Waits at most [`RECHECK_WAIT`]: a job busy hashing answers later.
    pub async fn recheck(&self) {
        let acks: Vec<_> = {
            let jobs = lock(&self.jobs);
            jobs.map
                .values()
                .filter(|j| !j.removing)
                .filter_map(|j| {
                    let (tx, rx) = oneshot::channel();
                    j.ctl.send(Control::Recheck(tx)).ok().map(|_| rx)
                })
                .collect()
        };
        let all = async {
            for ack in acks {
                let _ = ack.await;
            }
        };
        let _ = tokio::time::timeout(RECHECK_WAIT, all).await;
    }

    /// Someone looks at the statuses (a `status` request): missing
    /// executables are looked for again and CPU/RSS sampled, both at once;
    /// returns when the snapshot shows them (uptimes refreshed too). See
    /// `metrics` for why usage is sampled only when looked at.
    pub async fn look(&self) {
        tokio::join!(self.recheck(), self.metrics.look());
    }

    /// Follows `id`'s log (`{"cmd": "logs"}`): its live lines from now on,
    /// and its history in the files up to them.
    pub fn follow_log(&self, id: &str) -> Result<logs::history::Source, ActionError> {
        if self.snapshots.borrow().get(id).is_none() {
            return Err(ActionError::UnknownId(id.to_owned()));
        }
        let config = &self.shared.config;
        let log = crate::paths::backend_log(&config.log_dir, id);
        Ok(logs::history::Source {
            follow: self.shared.feeds.get(id).follow(&log),
            log,
            backups: config.log_backups,
        })
    }

    /// What the launcher's front end set in berth's environment for itself
    /// ([`Config::env_remove`]): no program berth starts inherits it, the
    /// desktop's opener included.
    pub fn env_remove(&self) -> &[String] {
        &self.shared.config.env_remove
    }

    /// `true` while a face shows CPU/RSS continuously (the tray's open
    /// submenu): sampled once a second until the matching `false`.
    pub fn watch_usage(&self, on: bool) {
        self.metrics.watch(on);
    }

    /// Sends a message to the job of `id` and waits for its answer.
    async fn ask<T>(
        &self,
        id: &str,
        action: &'static str,
        make: impl FnOnce(oneshot::Sender<Result<T, ActionError>>) -> Control,
    ) -> Result<T, ActionError> {
        let rx = {
            let jobs = lock(&self.jobs);
            if jobs.shut_down {
                return Err(ActionError::ShutDown);
            }
            match jobs.map.get(id).filter(|j| !j.removing) {
                Some(job) => {
                    let (tx, rx) = oneshot::channel();
                    job.ctl.send(make(tx)).map_err(|_| ActionError::ShutDown)?;
                    rx
                }
                None => {
                    let board = self.shared.lock_board();
                    let other = board.others.iter().find(|o| o.id.as_deref() == Some(id));
                    return Err(match other {
                        Some(o) => ActionError::Refused {
                            id: id.to_owned(),
                            action,
                            state: o.state,
                            reason: o
                                .error
                                .clone()
                                .unwrap_or_else(|| "this file is not in force".into()),
                        },
                        None => ActionError::UnknownId(id.to_owned()),
                    });
                }
            }
        };
        rx.await.unwrap_or(Err(ActionError::ShutDown))
    }

    /// Carries out `verb` on `id`. Start returns once spawned or refused
    /// (use snapshots to wait for running): already running is `Noop`, a
    /// verification failure `Launch` with the reason, the state being
    /// not-found / integrity-failed. Stop returns once the whole process
    /// group is gone: not running is `Noop`; in backoff it cancels the
    /// restart. Restart stops if needed, then starts with the current
    /// definition.
    pub async fn command(&self, id: &str, verb: Verb) -> Result<Outcome, ActionError> {
        self.ask(id, verb.word(), |reply| Control::Command { verb, reply })
            .await
    }

    /// Queues `line` (one line of JSON text, no newline) for `id`'s stdin
    /// without waiting for the pipe: a full queue is refused at once. With
    /// `wait`, returns the stdout JSON objects that arrive from then on.
    pub async fn send(
        &self,
        id: &str,
        line: String,
        wait: bool,
    ) -> Result<Option<talk::Replies>, ActionError> {
        let max = crate::manifest::actions::MAX_SEND_LINE;
        if line.len() > max {
            return Err(ActionError::LineTooLong {
                id: id.to_owned(),
                len: line.len(),
            });
        }
        // The running case goes straight into the pipe; anything else (not
        // running, stopping, unknown, the run just ended) is the job's to
        // answer, with its state.
        let talker = {
            let jobs = lock(&self.jobs);
            jobs.map
                .get(id)
                .filter(|j| !j.removing && !jobs.shut_down)
                .map(|j| lock(&j.talker).clone())
        };
        if let Some(sent) = talker.and_then(|t| t.send(&line, wait)) {
            return Ok(sent?);
        }
        self.ask(id, "send", |reply| Control::Send { line, wait, reply })
            .await
    }

    /// Runs `id`'s manifest action `label`, as the tray does (v2).
    pub async fn action(&self, id: &str, label: &str) -> Result<Ran, ActionError> {
        let label = label.to_owned();
        match self
            .ask(id, "run an action", |reply| Control::Action {
                label,
                reply,
            })
            .await?
        {
            job::Effect::Done(ran) => Ok(ran),
            job::Effect::Restart(args) => self
                .command(id, Verb::Restart { args })
                .await
                .map(Ran::Restarted),
        }
    }

    fn job_ids(&self) -> Vec<String> {
        let jobs = lock(&self.jobs);
        jobs.map
            .iter()
            .filter(|(_, s)| !s.removing)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Start every backend that can start (in parallel; refusals ignored).
    pub async fn start_all(&self) {
        let mut set = tokio::task::JoinSet::new();
        for id in self.job_ids() {
            let this = self.clone();
            set.spawn(async move { this.command(&id, Verb::start()).await });
        }
        while set.join_next().await.is_some() {}
    }

    /// Stop every backend, in parallel; returns once all are stopped.
    pub async fn stop_all(&self) {
        let mut set = tokio::task::JoinSet::new();
        for id in self.job_ids() {
            let this = self.clone();
            set.spawn(async move { this.command(&id, Verb::Stop).await });
        }
        while set.join_next().await.is_some() {}
    }

    /// Stop everything in parallel and end the supervisor; later commands
    /// return `Err(ShutDown)`.
    pub async fn shutdown(&self) {
        let acks: Vec<_> = {
            let mut jobs = lock(&self.jobs);
            jobs.shut_down = true;
            jobs.map
                .values()
                .filter_map(|job| {
                    let (tx, rx) = oneshot::channel();
                    job.ctl.send(Control::Shutdown(tx)).ok().map(|_| rx)
                })
                .collect()
        };
        for ack in acks {
            let _ = ack.await;
        }
        // Backends removed by a catalog just before may still be stopping
        // in their own tasks: wait for their groups too.
        while !self.shared.groups.all().is_empty() {
            tokio::time::sleep(group::POLL).await;
        }
        if let Some(link) = self.shared.guardian.as_ref() {
            link.close();
        }
    }

    /// SIGKILL every process group at once (second Ctrl-C). Synchronous.
    pub fn kill_all_now(&self) {
        self.shared.groups.kill_all();
    }
}

/// Runs a job's task; a removed job, once it has left the board, leaves the
/// handle's table too. The table is held weakly: it holds the job's control
/// sender, whose closing ends the job when the last handle is dropped.
async fn run_job(
    jobs: std::sync::Weak<Mutex<Jobs>>,
    id: String,
    generation: u64,
    job: job::Job,
    rx: mpsc::UnboundedReceiver<Control>,
) {
    job.run(rx).await;
    if let Some(jobs) = jobs.upgrade() {
        let mut jobs = lock(&jobs);
        if jobs
            .map
            .get(&id)
            .is_some_and(|j| j.generation == generation && j.removing)
        {
            jobs.map.remove(&id);
        }
    }
}

/// Starts the supervisor on the current tokio runtime, with a guardian run
/// as `<current executable> __guardian` (berth's CLI dispatches it; any
/// other program hosting a supervisor must too, or use
/// [`spawn_with_guardian`]).
pub fn spawn(config: Config) -> SupervisorHandle {
    spawn_with_guardian(config, std::env::current_exe().ok())
}

/// [`spawn`] with an explicit guardian executable (one that runs
/// [`guardian::main`] for the argument `__guardian`); `None` runs without a
/// guardian (backends may then outlive a killed berth).
pub fn spawn_with_guardian(config: Config, guardian_exe: Option<PathBuf>) -> SupervisorHandle {
    let guardian = guardian_exe.and_then(|exe| match guardian::Guardians::start(&exe) {
        Ok(link) => Some(link),
        Err(e) => {
            tracing::warn!(exe = %exe.display(), error = %e, "cannot start the guardian: backends may outlive a killed berth");
            None
        }
    });
    let (shared, snapshots) = Shared::new(config, guardian);
    let shared = Arc::new(shared);
    let (metrics, task) = metrics::Metrics::spawn(Arc::downgrade(&shared));
    tokio::spawn(task);
    SupervisorHandle {
        snapshots,
        shared,
        jobs: Arc::default(),
        metrics,
    }
}
