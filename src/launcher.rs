//! `berth run`: wires the registry, the supervisor, the control socket and
//! (later) the folder watcher and the tray together.
//!
//! ## Shape
//!
//! ```text
//! run(Options)                   main thread
//!  ├─ usable_folders(), logging::init()
//!  ├─ tray::probe() unless --headless (GTK init on this thread; Err: headless)
//!  ├─ tokio multi-thread runtime (2 workers)
//!  ├─ Launcher::start()          bind socket FIRST, spawn supervisor,
//!  │                             first scan + apply, reloader, socket server
//!  └─ if no tray { block_on(launcher.run_until_quit()) }
//!     else       { launcher/tray.rs: the tray's event loop on this thread,
//!                  its Quit calls `launcher.quitter().quit()` }
//! ```
//!
//! - The tray must own the main thread (tao, muda), so the runtime lives on
//!   its worker threads and nothing else needs the main thread.
//! - The folder watcher ([`crate::watch`]) is started at [`spawn_reloader`]
//!   (WATCHER HOOK): it receives the folders, the supervisor handle and the
//!   rescan requests (SIGHUP and the socket's `rescan`).
//! - The launcher takes its own [`Options`]; the CLI builds them from its
//!   arguments, so the launcher knows nothing of clap.
//! - Quitting (SIGTERM, SIGINT, the tray's Quit, and with `--with-parent`
//!   the end of the parent process) stops every backend in parallel and
//!   exits 0; a second SIGINT meanwhile SIGKILLs every group
//!   and exits 130.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::control::{self, socket};
use crate::folders::Folders;
use crate::paths::AppName;
use crate::supervisor::{self, SupervisorHandle};
use crate::watch;

mod logging;
pub mod parent;
mod tray;

/// Why the launcher could not start, in one line.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    /// A usage error: `berth run` exits 2 for it.
    #[error("backends folder {}: {reason}", dir.display())]
    BackendsDir { dir: PathBuf, reason: String },
    /// None of several folders named can be served (a usage error too).
    #[error("no backends folder can be served: {}", .0.join("; "))]
    NoBackendsDir(Vec<String>),
    #[error("cannot create the backends folder {}: {source}", dir.display())]
    CreateBackendsDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Socket(#[from] socket::SocketError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A usage error: `berth run` exits 2 for it.
    #[error(transparent)]
    Parent(#[from] parent::ParentError),
    #[error("cannot install the {name} handler: {source}")]
    Signal {
        name: &'static str,
        source: std::io::Error,
    },
}

/// A desktop front end for `berth run`: the tray.
///
/// It is passed in rather than called directly so that only the `berth-tray`
/// executable links the GTK stack: the CLI and the headless launcher (the
/// `berth` executable) never load it. Measured on an idle headless launcher,
/// that stack alone was 7.8 MB of resident pages.
#[derive(Clone, Copy)]
pub struct Frontend {
    /// Checks, on the main thread and before any other thread exists, that
    /// the front end can be shown; the error is one line.
    pub probe: fn() -> Result<(), String>,
    /// Runs the front end on the main thread until the launcher has quit.
    pub run: fn(&tokio::runtime::Runtime, Launcher, crate::tray::Face) -> ExitCode,
    /// The environment variables the front end set for itself before any
    /// thread started (GTK's): backends do not inherit them.
    pub env_overrides: fn() -> Vec<String>,
}

/// The system tray (linked only into `berth-tray`).
pub const TRAY: Frontend = Frontend {
    probe: || crate::tray::probe().map_err(|e| e.to_string()),
    run: tray::run,
    env_overrides: || {
        crate::tray::env_overrides()
            .iter()
            .map(|k| (*k).to_owned())
            .collect()
    },
};

/// How to run the launcher: what `berth run` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The instance: every per-user path is under its name.
    pub app: AppName,
    /// The backends folders (see [`crate::folders`]).
    pub folders: Folders,
    /// No front end even when one is available.
    pub headless: bool,
    /// Rotate a backend log (and `berth.log`) past this many bytes.
    pub log_max_size: u64,
    /// Rotated logs to keep.
    pub log_backups: u32,
    /// Desktop notifications when a backend crashes or fails its checks.
    pub notify: bool,
    /// Run only manifests signed by a trusted key.
    pub require_signatures: bool,
    /// `--with-parent`: the pid of the process whose end ends the launcher.
    pub parent: Option<i32>,
    /// `--title`: the tray's name for the instance (default: its name).
    pub title: Option<String>,
    /// `--icon`: a PNG the tray shows, with the state as a badge.
    pub icon: Option<PathBuf>,
}

/// Runs the launcher until it is told to quit; returns the exit code.
/// Without a front end (or with `--headless`, or when the probe fails) it
/// runs headless.
pub fn run(
    args: Options,
    socket_path: PathBuf,
    frontend: Option<Frontend>,
) -> Result<ExitCode, LauncherError> {
    let open_dir = usable_folders(&args.folders)?;
    // Before the socket is bound: a parent already gone is an error at once.
    let parent = args.parent.map(parent::Parent::open).transpose()?;
    logging::init(&args.app, args.log_max_size, args.log_backups);
    // Before any backend exists: its /proc reads of berth are refused.
    #[cfg(target_os = "linux")]
    if let Err(e) = crate::sandbox::hidden::hide_self() {
        tracing::warn!(error = %e, "cannot make berth non-dumpable: backends can read its environment");
    }
    for duplicate in &args.folders.duplicates {
        tracing::warn!("{duplicate}");
    }
    // What the front end set for itself stays berth's even when it is not
    // shown (no display): the variables were set before `main` went on.
    let env_remove = frontend.map(|f| (f.env_overrides)()).unwrap_or_default();
    // GTK binds itself to the thread that initialises it: probe here, on the
    // main thread, before the runtime's threads exist.
    let frontend = frontend.filter(|f| {
        !args.headless
            && match (f.probe)() {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("no tray: {e}; running headless");
                    false
                }
            }
    });
    // Two workers: the launcher is mostly idle, and the main thread is kept
    // for the tray.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("berth-rt")
        .enable_all()
        .build()
        .map_err(LauncherError::Runtime)?;
    let config = crate::status::Config {
        log_dir: crate::paths::log_dir(&args.app),
        log_max_size: args.log_max_size,
        log_backups: args.log_backups,
        notify_dir: socket_path
            .parent()
            .map_or_else(|| PathBuf::from("notify"), |d| d.join("notify")),
        env_remove,
    };
    let trust = Arc::new(load_trust(args.require_signatures, &args.app));
    let mut launcher = runtime.block_on(Launcher::start(
        args.folders.dirs.clone(),
        &socket_path,
        config,
        trust,
        &args.app,
        args.notify,
    ))?;
    // The tray's "Start at login" writes an entry that keeps the folders
    // the user named, as `berth autostart enable --backends DIR` does.
    if matches!(args.folders.source, crate::folders::Source::Given) {
        launcher.login_dirs.clone_from(&args.folders.dirs);
    }
    if let Some(parent) = parent {
        tracing::info!(pid = parent.pid(), "following the parent process");
        launcher.parent = Some(parent);
    }
    let face = crate::tray::Face {
        backends_dir: open_dir,
        title: args.title.unwrap_or_else(|| args.app.to_string()),
        icon: args.icon,
        app: args.app,
    };
    let code = match frontend {
        Some(f) => (f.run)(&runtime, launcher, face),
        None => runtime.block_on(launcher.run_until_quit()),
    };
    // Stopped backends are gone by now; don't wait for stray blocking tasks.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(code)
}

/// Loads the trusted keys; each unusable key file or folder is one WARN line
/// (the other keys still count).
fn load_trust(require: bool, app: &AppName) -> crate::trust::Trust {
    let trust = crate::trust::Trust::load(crate::trust::Policy::new(require, app));
    for problem in trust.problems() {
        tracing::warn!("{problem}");
    }
    let keys: Vec<&str> = trust.key_names().collect();
    // Debug: an error that stops the launcher (a second launcher, a bad
    // socket folder) must stay the only line on stderr.
    tracing::debug!(
        require_signatures = require,
        keys = %keys.join(", "),
        "trusted keys loaded"
    );
    trust
}

/// Folders the user named (`--backends`, `BERTH_BACKENDS`) must include at
/// least one that exists (exit 2 otherwise, before the socket is bound); the
/// others are served once they appear. The default user folder is created
/// on first run. Returns the folder "Open backends folder" opens.
fn usable_folders(folders: &Folders) -> Result<PathBuf, LauncherError> {
    folders
        .create_user_dir()
        .map_err(|source| LauncherError::CreateBackendsDir {
            dir: folders.user_dir().unwrap_or(&folders.user).to_path_buf(),
            source,
        })?;
    let reason = |dir: &Path| match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => None,
        Ok(_) => Some("is not a folder"),
        Err(_) => Some("does not exist"),
    };
    let bad: Vec<(&PathBuf, &str)> = folders
        .dirs
        .iter()
        .filter_map(|d| reason(d).map(|r| (d, r)))
        .collect();
    if folders.source.is_explicit() && bad.len() == folders.dirs.len() {
        return Err(match bad.as_slice() {
            [(dir, reason)] => LauncherError::BackendsDir {
                dir: (*dir).clone(),
                reason: (*reason).to_owned(),
            },
            _ => LauncherError::NoBackendsDir(
                bad.iter()
                    .map(|(d, r)| format!("{} {r}", d.display()))
                    .collect(),
            ),
        });
    }
    folders
        .to_open()
        .map(Path::to_path_buf)
        .ok_or_else(|| LauncherError::NoBackendsDir(Vec::new()))
}

/// Asks the launcher to quit, from anywhere (the tray's Quit item).
#[derive(Clone, Default)]
pub struct Quitter(Arc<Notify>);

impl Quitter {
    pub fn quit(&self) {
        // notify_one keeps a permit if nobody waits yet, so an early Quit is not lost.
        self.0.notify_one();
    }
}

/// A request to read the backends folder again; the answer says whether it could.
pub type RescanRequest = oneshot::Sender<Result<(), String>>;

/// The running launcher.
pub struct Launcher {
    handle: SupervisorHandle,
    quitter: Quitter,
    /// `true` once quitting has begun, whatever asked for it (the tray shows
    /// "stopping every backend" from then on).
    quitting: tokio::sync::watch::Sender<bool>,
    socket_file: socket::SocketFile,
    server: Option<JoinHandle<()>>,
    reloader: JoinHandle<()>,
    /// Desktop notifications (none with `--no-notify`).
    notifier: Option<JoinHandle<()>>,
    /// `--with-parent`: its end quits the launcher.
    parent: Option<parent::Parent>,
    sigterm: Signal,
    sigint: Signal,
    /// The folders an autostart entry written by the front end names: those
    /// of `--backends`, else none (login then uses the default folders).
    pub login_dirs: Vec<PathBuf>,
}

impl Launcher {
    /// Binds the socket (refusing if another launcher answers on it) before
    /// anything touches a backend, then starts the supervisor, applies the
    /// folder once and starts serving. `app` is the instance (its sandbox
    /// folders, its notifications' name).
    pub async fn start(
        dirs: Vec<PathBuf>,
        socket_path: &Path,
        config: crate::status::Config,
        trust: Arc<crate::trust::Trust>,
        app: &AppName,
        notify: bool,
    ) -> Result<Self, LauncherError> {
        let bound = socket::bind(socket_path)?;
        let install = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|source| LauncherError::Signal { name, source })
        };
        let sigterm = install(SignalKind::terminate(), "SIGTERM")?;
        let sigint = install(SignalKind::interrupt(), "SIGINT")?;
        let sighup = install(SignalKind::hangup(), "SIGHUP")?;
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        tracing::info!(backends = %shown.join(":"), socket = %socket_path.display(), "berth launcher starting");

        let handle = supervisor::spawn(config);
        // Before the first scan, so an untrusted file at startup is heard.
        let notifier = notify.then(|| crate::notify::spawn(handle.clone(), app.clone()));
        let resources = crate::manifest::Places::new(crate::paths::resources_dir(), app.clone());
        let (rescan_tx, rescan_rx) = mpsc::channel::<RescanRequest>(8);
        // Arms the folder watcher, reads the folder once and applies it.
        let reloader = spawn_reloader(
            Folder {
                dirs,
                resources,
                trust,
            },
            handle.clone(),
            rescan_rx,
            sighup,
        )
        .await;

        let served = handle.clone();
        let socket::Bound { listener, file } = bound;
        let server = tokio::spawn(async move {
            control::serve(
                &listener,
                served,
                Some(rescan_tx),
                control::ClientLimits::default(),
            )
            .await;
        });
        tracing::info!("berth launcher ready");
        Ok(Self {
            handle,
            quitter: Quitter::default(),
            quitting: tokio::sync::watch::Sender::new(false),
            socket_file: file,
            server: Some(server),
            reloader,
            notifier,
            parent: None,
            sigterm,
            sigint,
            login_dirs: Vec::new(),
        })
    }

    /// The supervisor, for the tray.
    pub fn handle(&self) -> SupervisorHandle {
        self.handle.clone()
    }

    /// Lets the tray's Quit end [`Launcher::run_until_quit`].
    /// The control socket's folder: ours and 0700 (checked when the
    /// socket was bound), so what berth writes there for itself (the tray's
    /// icon files) is out of every other user's reach.
    pub fn private_dir(&self) -> PathBuf {
        self.socket_file
            .path()
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf)
    }

    pub fn quitter(&self) -> Quitter {
        self.quitter.clone()
    }

    /// Becomes `true` when [`Launcher::run_until_quit`] starts stopping every
    /// backend: after SIGTERM, SIGINT or the tray's Quit alike.
    pub fn quitting(&self) -> tokio::sync::watch::Receiver<bool> {
        self.quitting.subscribe()
    }

    /// Serves until SIGTERM, SIGINT or Quit, then stops every backend.
    pub async fn run_until_quit(mut self) -> ExitCode {
        tokio::select! {
            _ = self.sigterm.recv() => tracing::info!("SIGTERM: quitting"),
            _ = self.sigint.recv() => tracing::info!("SIGINT: quitting (interrupt again to kill every backend now)"),
            () = self.quitter.0.notified() => tracing::info!("quit requested"),
            () = parent_exit(self.parent.take()) => tracing::info!("the parent process ended: quitting"),
        }
        self.quitting.send_replace(true);
        self.reloader.abort();
        let code = {
            let stop = self.handle.shutdown();
            tokio::pin!(stop);
            tokio::select! {
                () = &mut stop => {
                    tracing::info!("every backend stopped; bye");
                    ExitCode::SUCCESS
                }
                _ = self.sigint.recv() => {
                    tracing::warn!("second SIGINT: killing every backend now");
                    self.handle.kill_all_now();
                    ExitCode::from(130)
                }
            }
        };
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(notifier) = self.notifier.take() {
            notifier.abort();
        }
        tracing::debug!(socket = %self.socket_file.path().display(), "removing the control socket");
        drop(self.socket_file);
        code
    }
}

/// Resolves when the followed parent has ended; never without one.
async fn parent_exit(parent: Option<parent::Parent>) {
    match parent {
        Some(parent) => parent.exited().await,
        None => std::future::pending().await,
    }
}

/// The backends folders and how their files are read.
#[derive(Clone)]
struct Folder {
    dirs: Vec<PathBuf>,
    resources: crate::manifest::Places,
    trust: Arc<crate::trust::Trust>,
}

/// Without a watcher: reads the folders through the same incremental
/// [`watch::FolderState`] the watcher uses (on a blocking thread), so a broken
/// edit keeps its last good definition here too, and applies the catalog.
/// `Err` names the folders that could not be read (the others are applied).
async fn rescan(state: &mut watch::FolderState, handle: &SupervisorHandle) -> Result<(), String> {
    let blank = watch::FolderState::new(state.dirs().to_vec(), state.resources().clone())
        .with_trust(state.trust().clone());
    let mut owned = std::mem::replace(state, blank);
    let owned = tokio::task::spawn_blocking(move || {
        owned.reload(&watch::Scope::Full { force: true });
        owned
    })
    .await
    .map_err(|e| format!("scan task failed: {e}"))?;
    *state = owned;
    tracing::info!(files = state.len(), "backends folders loaded");
    handle.apply(state.catalog().clone()).await;
    let problems = state.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(watch::RescanError::Folders(problems).to_string())
    }
}

/// WATCHER HOOK (issue #6): the folder watcher ([`crate::watch`]) arms its
/// watches, reads the folder once and applies it, then follows changes on its
/// own task. SIGHUP and the socket's `rescan` ask it for a full rescan (every
/// file read again); the socket's request is answered once the result is
/// applied. If the folder cannot be watched at all (inotify limits), berth
/// still runs: the folder is then read only on those requests.
/// Aborting the returned task drops the watcher, which stops it.
async fn spawn_reloader(
    folder: Folder,
    handle: SupervisorHandle,
    mut requests: mpsc::Receiver<RescanRequest>,
    mut sighup: Signal,
) -> JoinHandle<()> {
    let mut config = watch::WatchConfig::new(folder.dirs.clone(), folder.resources.clone());
    config.trust = folder.trust.clone();
    let mut folder =
        watch::FolderState::new(folder.dirs, folder.resources).with_trust(folder.trust);
    let watcher = match watch::spawn(config, handle.clone()).await {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::error!(error = %e, "not watching the backends folders; SIGHUP or `rescan` reads them again");
            if let Err(e) = rescan(&mut folder, &handle).await {
                tracing::error!(error = %e, "first scan of the backends folders");
            }
            None
        }
    };
    tokio::spawn(async move {
        loop {
            let reply = tokio::select! {
                Some(_) = sighup.recv() => {
                    tracing::info!("SIGHUP: rescanning the backends folders");
                    None
                }
                request = requests.recv() => match request {
                    Some(reply) => Some(reply),
                    None => return,
                },
            };
            let result = match &watcher {
                Some(watcher) => watcher.rescan_and_wait().await.map_err(|e| e.to_string()),
                None => rescan(&mut folder, &handle).await,
            };
            if let Err(e) = &result {
                tracing::error!(error = %e, "rescan failed");
            }
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
        }
    })
}

#[cfg(test)]
#[path = "launcher/reload_tests.rs"]
mod reload_tests;
