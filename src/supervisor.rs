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

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

mod actions;
mod board;
mod cascade;
pub mod events;
pub mod given;
pub mod group;
pub mod guardian;
pub mod health;
mod job;
mod lock;
pub mod logs;
mod metrics;
mod order;
pub mod probation;
mod reach;
pub mod ready;
pub mod restart;
pub mod sd_notify;
mod shared;
pub mod talk;

pub use actions::Ran;
pub use job::LaunchError;

use crate::graph::Graph;
use crate::manifest::{Backend, BackendId};
use crate::registry::{Catalog, Standing};
use crate::status::{ActionError, BackendStatus, Config, Outcome, Snapshot};
use crate::verb::Verb;
pub use events::{EventKind, JobEvent};
use job::Control;
use lock::lock;
pub use shared::Readers;
use shared::Shared;

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

    /// The backends whose `update` has `check`, as the catalogs in force
    /// say; changes only when a catalog changes them (the launcher's check
    /// timer follows it).
    pub fn update_checks(&self) -> tokio::sync::watch::Receiver<UpdateChecks> {
        self.shared.checks.subscribe()
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
                let mut job = job::Job::new(shared.clone(), def.clone(), error.clone(), generation);
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
            let checks = update_checks(&catalog);
            shared.checks.send_if_modified(|old| {
                let changed = *old != checks;
                *old = checks;
                changed
            });
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

    /// Lets the jobs install updates (v3) into [`Config::updates_dir`],
    /// reading their files with `readers`; the launcher calls it once,
    /// before the first catalog (later calls change nothing).
    pub fn enable_updates(&self, readers: Readers) {
        let _ = self.shared.readers.set(readers);
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
                        None => unknown_id(id, &board.others),
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
    ///
    /// With dependencies (v3): a Stop first stops every running dependent
    /// (transitively, each completely) and names them in a
    /// [`Outcome::DoneWith`] note; a Restart first stops the dependents on
    /// `restart: true` edges and starts them again after (their start waits
    /// for this one to be back at its condition). A Start's waiting is the
    /// job's own (see `reach`).
    pub async fn command(&self, id: &str, verb: Verb) -> Result<Outcome, ActionError> {
        match verb {
            Verb::Stop => self.stop_with_dependents(id).await,
            Verb::Restart { .. } => self.restart_with_dependents(id, verb).await,
            Verb::Start { .. } | Verb::CheckUpdate | Verb::Update | Verb::Rollback => {
                self.command_one(id, verb).await
            }
        }
    }

    /// `verb` on `id` alone.
    async fn command_one(&self, id: &str, verb: Verb) -> Result<Outcome, ActionError> {
        self.ask(id, verb.word(), |reply| Control::Command { verb, reply })
            .await
    }

    /// The definitions in force (removed ones excluded), by id.
    fn defs(&self) -> BTreeMap<String, Arc<Backend>> {
        let jobs = lock(&self.jobs);
        jobs.map
            .iter()
            .filter(|(_, j)| !j.removing)
            .map(|(id, j)| (id.clone(), j.def.clone()))
            .collect()
    }

    /// Stops `id`'s dependents, then `id` (see [`Self::command`]).
    async fn stop_with_dependents(&self, id: &str) -> Result<Outcome, ActionError> {
        let defs = self.defs();
        let mut ids = names(Graph::new(defs.values().map(|d| &**d)).all_dependents(id));
        if ids.is_empty() {
            return self.command_one(id, Verb::Stop).await;
        }
        ids.insert(id.to_owned());
        let mut results = self.in_stop_order(&defs, &ids, |_| Verb::Stop).await;
        let own = results.remove(id).unwrap_or(Err(ActionError::ShutDown));
        let stopped: Vec<String> = results
            .iter()
            .filter(|(_, r)| matches!(r, Ok(Outcome::Done)))
            .map(|(x, _)| stopping_note(&defs, x, &ids))
            .collect();
        if stopped.is_empty() {
            return own;
        }
        let note = stopped.join("; ");
        own.map(|outcome| match outcome {
            Outcome::Noop(reason) => Outcome::Noop(format!("{note}; {reason}")),
            _ => Outcome::DoneWith(note),
        })
    }

    /// Restarts `id`: its dependents on `restart: true` edges are stopped
    /// first and started again after (see [`Self::command`]).
    async fn restart_with_dependents(&self, id: &str, verb: Verb) -> Result<Outcome, ActionError> {
        let defs = self.defs();
        let ids = restart_dependents(&defs, id);
        if ids.is_empty() {
            return self.command_one(id, verb).await;
        }
        let stopped: Vec<String> = self
            .in_stop_order(&defs, &ids, |_| Verb::Stop)
            .await
            .into_iter()
            .filter(|(_, r)| matches!(r, Ok(Outcome::Done)))
            .map(|(x, _)| x)
            .collect();
        let own = self.command_one(id, verb).await;
        for x in stopped {
            if let Err(e) = self.command_one(&x, Verb::start()).await {
                tracing::warn!(backend = %x, error = %e, "not started again after {id}'s restart");
            }
        }
        own
    }

    /// Sends `verb(id)` to each of `ids`, dependents before dependencies,
    /// independent branches in parallel (see `order`).
    async fn in_stop_order(
        &self,
        defs: &BTreeMap<String, Arc<Backend>>,
        ids: &BTreeSet<String>,
        verb: impl Fn(&str) -> Verb,
    ) -> BTreeMap<String, Result<Outcome, ActionError>> {
        let graph = Graph::new(defs.values().map(|d| &**d));
        let above = order::above(ids, |x| names(graph.all_dependents(x)));
        order::dependents_first(above, |x| {
            let this = self.clone();
            let verb = verb(&x);
            async move { this.command_one(&x, verb).await }
        })
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

    /// Stop every backend, dependents before their dependencies, the rest
    /// in parallel; returns once all are stopped.
    pub async fn stop_all(&self) {
        let defs = self.defs();
        let ids = defs.keys().cloned().collect();
        self.in_stop_order(&defs, &ids, |_| Verb::Stop).await;
    }

    /// Stop everything (dependents before their dependencies, the rest in
    /// parallel) and end the supervisor; later commands return
    /// `Err(ShutDown)`.
    pub async fn shutdown(&self) {
        let (ctls, defs) = {
            let mut jobs = lock(&self.jobs);
            jobs.shut_down = true;
            let ctls: BTreeMap<String, _> = jobs
                .map
                .iter()
                .map(|(id, j)| (id.clone(), j.ctl.clone()))
                .collect();
            let defs: BTreeMap<String, Arc<Backend>> = jobs
                .map
                .iter()
                .map(|(id, j)| (id.clone(), j.def.clone()))
                .collect();
            (ctls, defs)
        };
        let ids = ctls.keys().cloned().collect();
        let graph = Graph::new(defs.values().map(|d| &**d));
        let above = order::above(&ids, |x| names(graph.all_dependents(x)));
        order::dependents_first(above, |id| {
            let ctl = ctls.get(&id).cloned();
            async move {
                let (tx, rx) = oneshot::channel();
                if ctl.is_some_and(|c| c.send(Control::Shutdown(tx)).is_ok()) {
                    let _ = rx.await;
                }
            }
        })
        .await;
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

/// No job and no file with `id`: unknown, unless a file named after it
/// (`ID.yaml`, as `berth new` writes it) is invalid or untrusted without a
/// definition, when its own error says why (a typo in the manifest, not in
/// the command).
fn unknown_id(id: &str, others: &[BackendStatus]) -> ActionError {
    let named = others.iter().find(|o| {
        o.id.is_none()
            && o.error.is_some()
            && std::path::Path::new(&o.file)
                .file_stem()
                .is_some_and(|stem| stem == id)
    });
    match named {
        Some(o) => ActionError::UnknownIdBeside {
            id: id.to_owned(),
            file: crate::paths::shown(std::path::Path::new(&o.file)),
            state: o.state,
            reason: o.error.clone().unwrap_or_default(),
        },
        None => ActionError::UnknownId(id.to_owned()),
    }
}

fn names(ids: BTreeSet<BackendId>) -> BTreeSet<String> {
    ids.into_iter().map(|id| id.to_string()).collect()
}

/// Every id that depends on `id` along `restart: true` edges, directly or
/// through others that do (`id` itself excluded): what a Restart of `id`
/// stops first and starts again after.
fn restart_dependents(defs: &BTreeMap<String, Arc<Backend>>, id: &str) -> BTreeSet<String> {
    let direct = |of: &str| -> Vec<String> {
        defs.iter()
            .filter(|(_, d)| d.depends_on.get(of).is_some_and(|e| e.restart))
            .map(|(x, _)| x.clone())
            .collect()
    };
    let mut seen = BTreeSet::new();
    let mut queue = direct(id);
    while let Some(x) = queue.pop() {
        if x != id && seen.insert(x.clone()) {
            queue.extend(direct(&x));
        }
    }
    seen
}

/// `stopping api, which depends on db`: why a stop of one of `ids` stopped
/// `x` first.
fn stopping_note(defs: &BTreeMap<String, Arc<Backend>>, x: &str, ids: &BTreeSet<String>) -> String {
    let on: Vec<&str> = defs
        .get(x)
        .map(|d| {
            d.depends_on
                .keys()
                .map(BackendId::as_str)
                .filter(|d| ids.contains(*d))
                .collect()
        })
        .unwrap_or_default();
    format!("stopping {x}, which depends on {}", on.join(" and "))
}

/// A backend's `update.check` and `update.auto` (v3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckPlan {
    /// Ask the feed this often.
    pub every: std::time::Duration,
    /// Install what a check finds.
    pub auto: bool,
}

/// The winners whose `update` has `check`, by id. Empty: nothing to time.
pub type UpdateChecks = BTreeMap<String, CheckPlan>;

/// The check plans of `catalog`'s winners.
fn update_checks(catalog: &Catalog) -> UpdateChecks {
    catalog
        .winners()
        .filter_map(|(_, def)| {
            let update = def.update.as_ref()?;
            let plan = CheckPlan {
                every: update.check?,
                auto: update.auto,
            };
            Some((def.id.to_string(), plan))
        })
        .collect()
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
    let (reaches, reach_rx) = mpsc::unbounded_channel();
    let (shared, snapshots) = Shared::new(config, guardian, reaches);
    let shared = Arc::new(shared);
    let (metrics, task) = metrics::Metrics::spawn(Arc::downgrade(&shared));
    tokio::spawn(task);
    let jobs = Arc::default();
    tokio::spawn(carry_reaches(
        Arc::downgrade(&jobs),
        Arc::downgrade(&shared),
        reach_rx,
    ));
    let handle = SupervisorHandle {
        snapshots,
        shared,
        jobs,
        metrics,
    };
    tokio::spawn(restart_cascades(handle.downgrade()));
    handle
}

/// The handle's parts, held weakly by its own tasks: dropping the last
/// handle still closes the jobs' channels and ends them.
#[derive(Clone)]
struct WeakHandle {
    snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    shared: std::sync::Weak<Shared>,
    jobs: std::sync::Weak<Mutex<Jobs>>,
    metrics: metrics::Metrics,
}

impl SupervisorHandle {
    fn downgrade(&self) -> WeakHandle {
        WeakHandle {
            snapshots: self.snapshots.clone(),
            shared: Arc::downgrade(&self.shared),
            jobs: Arc::downgrade(&self.jobs),
            metrics: self.metrics.clone(),
        }
    }
}

impl WeakHandle {
    fn upgrade(&self) -> Option<SupervisorHandle> {
        Some(SupervisorHandle {
            snapshots: self.snapshots.clone(),
            shared: self.shared.upgrade()?,
            jobs: self.jobs.upgrade()?,
            metrics: self.metrics.clone(),
        })
    }
}

/// `restart: true` edges whose dependency's run ended without the handle
/// stopping its dependents first (a crash, an unhealthy verdict): each
/// such dependent is stopped, then started again once the dependency is
/// back at its condition (see `cascade`). Driven by the snapshots.
async fn restart_cascades(weak: WeakHandle) {
    let mut rx = weak.snapshots.clone();
    let parked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    while rx.changed().await.is_ok() {
        let snapshot = rx.borrow_and_update().clone();
        let Some(this) = weak.upgrade() else {
            break;
        };
        let edges = cascade::edges(&this.defs());
        drop(this);
        for edge in cascade::stale(&edges, &snapshot) {
            if lock(&parked).insert(edge.dependent.clone()) {
                tokio::spawn(park(weak.clone(), edge.clone(), parked.clone()));
            }
        }
    }
}

/// Stops `edge.dependent`, waits for its dependency to be back at the
/// condition, and starts it again; a dependency that settles elsewhere
/// (exited, failed, stopped) leaves it stopped.
async fn park(weak: WeakHandle, edge: cascade::Edge, parked: Arc<Mutex<BTreeSet<String>>>) {
    let id = &edge.dependent;
    tracing::info!(backend = %id, dependency = %edge.dependency, "its dependency's run ended: stopping it until the dependency is back");
    if let Some(this) = weak.upgrade() {
        let _ = this.command_one(id, Verb::Stop).await;
    }
    let mut rx = weak.snapshots.clone();
    loop {
        let verdict = rx
            .borrow_and_update()
            .get(&edge.dependency)
            .map(|s| reach::verdict(edge.condition, s));
        match verdict {
            Some(reach::Verdict::Met) => {
                if let Some(this) = weak.upgrade() {
                    let _ = this.command_one(id, Verb::start()).await;
                }
                break;
            }
            Some(reach::Verdict::Pending) if rx.changed().await.is_ok() => {}
            _ => break,
        }
    }
    lock(&parked).remove(id);
}

/// Carries each dependent's request to its dependency's job (only the
/// handle sends to jobs); a dependency without a job (no manifest defines
/// it, invalid, untrusted, incompatible) is answered here with why. Holds
/// both weakly: it ends with the supervisor.
async fn carry_reaches(
    jobs: std::sync::Weak<Mutex<Jobs>>,
    shared: std::sync::Weak<Shared>,
    mut rx: mpsc::UnboundedReceiver<reach::Reach>,
) {
    while let Some(reach::Reach {
        id,
        condition,
        progress,
    }) = rx.recv().await
    {
        let (Some(jobs), Some(shared)) = (jobs.upgrade(), shared.upgrade()) else {
            break;
        };
        let sent = {
            let jobs = lock(&jobs);
            jobs.map.get(&id).filter(|j| !j.removing).is_some_and(|j| {
                j.ctl
                    .send(Control::Reach {
                        condition,
                        progress: progress.clone(),
                    })
                    .is_ok()
            })
        };
        if sent {
            continue;
        }
        let why = {
            let board = shared.lock_board();
            let other = board.others.iter().find(|o| o.id.as_deref() == Some(&id));
            other.map_or_else(|| "no manifest defines this id".to_owned(), reach::describe)
        };
        let _ = progress.send(reach::Arrival {
            id,
            result: Err(why),
        });
    }
}
