//! `berth run`: the launcher as its own process. The launcher itself is
//! assembled by [`crate::embed`] (the same code an app embeds); this adds
//! what only a process of its own has: its log (`berth.log`), signals, the
//! parent it follows, and the tray.
//!
//! ## Shape
//!
//! ```text
//! run(Options)                   main thread
//!  ├─ parent::Parent::open(), logging::init()
//!  ├─ tray::probe() unless --headless (GTK init on this thread; Err: headless)
//!  ├─ tokio multi-thread runtime (2 workers)
//!  ├─ Standalone::start()        signals, then embed::Builder::start(): bind
//!  │                             socket FIRST, spawn supervisor, first scan +
//!  │                             apply, reloader, socket server
//!  └─ if no tray { block_on(launcher.run_until_quit()) }
//!     else       { launcher/tray.rs: the tray's event loop on this thread,
//!                  its Quit calls `launcher.quitter().quit()` }
//! ```
//!
//! - The tray must own the main thread (tao, muda), so the runtime lives on
//!   its worker threads and nothing else needs the main thread.
//! - SIGHUP asks the embedded launcher for a rescan, as the socket's
//!   `rescan` does.
//! - The launcher takes its own [`Options`]; the CLI builds them from its
//!   arguments, so the launcher knows nothing of clap.
//! - Quitting (SIGTERM, SIGINT, the tray's Quit, and with `--with-parent`
//!   the end of the parent process) stops every backend in parallel
//!   ([`crate::embed::Launcher::shutdown`]) and exits 0; a second SIGINT
//!   meanwhile SIGKILLs every group and exits 130.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::embed::StartError;
use crate::folders::Folders;
use crate::paths::AppName;
use crate::supervisor::SupervisorHandle;

mod logging;
pub mod parent;
mod tray;

/// Why the launcher could not start, in one line.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    /// The launcher itself (folders, socket, options): see [`StartError`].
    #[error(transparent)]
    Start(#[from] StartError),
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
    pub run: fn(&tokio::runtime::Runtime, Standalone, crate::tray::Face) -> ExitCode,
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
    // Before the socket is bound: a parent already gone is an error at once.
    let parent = args.parent.map(parent::Parent::open).transpose()?;
    logging::init(&args.app, args.log_max_size, args.log_backups);
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
    let builder = crate::embed::Builder::new(args.app.clone())
        .folders(args.folders)
        .require_signatures(args.require_signatures)
        .log_max_size(args.log_max_size)
        .log_backups(args.log_backups)
        .notifications(args.notify)
        .control_socket(socket_path)
        .env_remove(env_remove);
    let mut launcher = runtime.block_on(Standalone::start(builder))?;
    if let Some(parent) = parent {
        tracing::info!(pid = parent.pid(), "following the parent process");
        launcher.parent = Some(parent);
    }
    let face = crate::tray::Face {
        backends_dir: launcher.embedded.open_dir().to_path_buf(),
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

/// Asks the launcher to quit, from anywhere (the tray's Quit item).
#[derive(Clone, Default)]
pub struct Quitter(Arc<Notify>);

impl Quitter {
    pub fn quit(&self) {
        // notify_one keeps a permit if nobody waits yet, so an early Quit is not lost.
        self.0.notify_one();
    }
}

/// The running launcher of `berth run`: the embedded launcher, and what
/// ends it.
pub struct Standalone {
    embedded: crate::embed::Launcher,
    quitter: Quitter,
    /// `true` once quitting has begun, whatever asked for it (the tray shows
    /// "stopping every backend" from then on).
    quitting: tokio::sync::watch::Sender<bool>,
    /// `--with-parent`: its end quits the launcher.
    parent: Option<parent::Parent>,
    sigterm: Signal,
    sigint: Signal,
    sighup: JoinHandle<()>,
}

impl Standalone {
    /// Installs the signal handlers, then starts the launcher `builder`
    /// describes (see [`crate::embed::Builder::start`]).
    async fn start(builder: crate::embed::Builder) -> Result<Self, LauncherError> {
        let install = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|source| LauncherError::Signal { name, source })
        };
        let sigterm = install(SignalKind::terminate(), "SIGTERM")?;
        let sigint = install(SignalKind::interrupt(), "SIGINT")?;
        let mut sighup = install(SignalKind::hangup(), "SIGHUP")?;
        let embedded = builder.start().await?;
        let handle = embedded.handle();
        let sighup = tokio::spawn(async move {
            while sighup.recv().await.is_some() {
                tracing::info!("SIGHUP: rescanning the backends folders");
                // A failure is logged where the rescan runs.
                let _ = handle.rescan().await;
            }
        });
        Ok(Self {
            embedded,
            quitter: Quitter::default(),
            quitting: tokio::sync::watch::Sender::new(false),
            parent: None,
            sigterm,
            sigint,
            sighup,
        })
    }

    /// The supervisor, for the tray.
    pub fn handle(&self) -> SupervisorHandle {
        self.embedded.supervisor()
    }

    /// The control socket's folder: ours and 0700 (checked when the
    /// socket was bound), so what berth writes there for itself (the tray's
    /// icon files) is out of every other user's reach.
    pub fn private_dir(&self) -> PathBuf {
        self.embedded
            .socket_path()
            .and_then(Path::parent)
            .map_or_else(PathBuf::new, Path::to_path_buf)
    }

    /// The folders an autostart entry written by the front end names: those
    /// of `--backends`, else none (login then uses the default folders).
    pub fn login_dirs(&self) -> Vec<PathBuf> {
        let folders = self.embedded.chosen_folders();
        match folders.source {
            crate::folders::Source::Given => folders.dirs.clone(),
            _ => Vec::new(),
        }
    }

    /// Lets the tray's Quit end [`Standalone::run_until_quit`].
    pub fn quitter(&self) -> Quitter {
        self.quitter.clone()
    }

    /// Becomes `true` when [`Standalone::run_until_quit`] starts stopping every
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
        self.sighup.abort();
        let supervisor = self.embedded.supervisor();
        let stop = self.embedded.shutdown();
        tokio::pin!(stop);
        tokio::select! {
            () = &mut stop => {
                tracing::info!("every backend stopped; bye");
                ExitCode::SUCCESS
            }
            _ = self.sigint.recv() => {
                tracing::warn!("second SIGINT: killing every backend now");
                supervisor.kill_all_now();
                ExitCode::from(130)
            }
        }
    }
}

/// Resolves when the followed parent has ended; never without one.
async fn parent_exit(parent: Option<parent::Parent>) {
    match parent {
        Some(parent) => parent.exited().await,
        None => std::future::pending().await,
    }
}
