//! The launcher inside your own program: what `berth run` runs, as a
//! library, for an app (a Tauri app's Rust side) that hosts its backends
//! in-process instead of shipping the `berth` executable.
//!
//! [`Builder`] takes the options of `berth run` (the instance's name, the
//! backends folders, signatures, logs, notifications, and optionally the
//! control socket, so that `berth --app NAME status` and the Node client can
//! talk to it); [`Builder::start`] assembles the launcher exactly as `berth
//! run` does (the same code: `berth run` is this plus signals, the parent
//! process and the tray). [`Launcher::handle`] commands it with the same
//! typed [`Verb`]s as the CLI, the tray and the socket, and
//! [`Handle::subscribe`] follows its [`Snapshot`]s on a
//! `tokio::sync::watch` receiver. [`Launcher::shutdown`] stops every
//! backend in parallel, as the tray's Quit does. There is no tray and no
//! CLI here, and no signal handler: the app owns its signals.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use berth::{AppName, Launcher, State, Verb};
//!
//! let app: AppName = "my-app".parse()?;
//! let launcher = Launcher::builder(app)
//!     .backends("/opt/my-app/backends")
//!     .start()
//!     .await?;
//! let handle = launcher.handle();
//! let mut snapshots = handle.subscribe();
//! handle.command("python", Verb::start()).await?;
//! // `command` returns once the process is spawned; readiness comes later.
//! snapshots
//!     .wait_for(|s| s.get("python").is_some_and(|b| b.state == State::Running))
//!     .await?;
//! launcher.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## The guardian
//!
//! berth starts two tiny guardian processes that stop every backend if the
//! process hosting the launcher dies, even by SIGKILL. They are an
//! executable run with the single argument `__guardian`: by default the
//! current executable, so the app's `main` must begin with
//! [`run_guardian_if_asked`]. [`Builder::guardian`] names another one (a
//! shipped `berth` binary), or none.
//!
//! ## Process-wide effects
//!
//! Like `berth run`, starting makes the process non-dumpable (Linux), so a
//! backend, which is untrusted code running as the same user, cannot read
//! the launcher's memory or environment through `/proc`. berth logs through
//! `tracing`; it installs no subscriber of its own here.

// The API apps use: every public item says what it is for.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::control::socket::{self, SocketFile};
use crate::control::talk::{self, JsonObject, SendError};
use crate::control::{ClientLimits, Rescans};
use crate::folders::Folders;
use crate::paths::AppName;
use crate::status::{ActionError, Config, Outcome, Snapshot};
use crate::supervisor::{Ran, SupervisorHandle};
use crate::verb::Verb;

mod checks;
mod reload;

use crate::control::protocol::Wait;

/// Smallest log size ([`Builder::log_max_size`], `--log-max-size`): below
/// it a chatty backend rotates on every few lines, and rotation (renames, a
/// new file) turns into a hot loop.
pub const MIN_LOG_SIZE: u64 = 64 << 10;
/// Largest number of rotated logs ([`Builder::log_backups`],
/// `--log-backups`): each rotation renames every backup, so a huge count
/// made every rotation a walk over a million names.
pub const MAX_LOG_BACKUPS: u32 = 100;

/// Why the launcher could not start, in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A backends folder that was named does not exist or is not a folder
    /// (`berth run` exits 2 for it).
    #[error("backends folder {}: {reason}", dir.display())]
    BackendsDir {
        /// The folder.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// None of several folders named can be served (`berth run` exits 2).
    #[error("no backends folder can be served: {}", .0.join("; "))]
    NoBackendsDir(Vec<String>),
    /// The default user backends folder could not be created.
    #[error("cannot create the backends folder {}: {source}", dir.display())]
    CreateBackendsDir {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A log size under [`MIN_LOG_SIZE`].
    #[error("log size {0} bytes is too small: the smallest log size is 64KiB")]
    LogMaxSize(u64),
    /// More rotated logs than [`MAX_LOG_BACKUPS`].
    #[error("{0} log backups is too many: keep at most {MAX_LOG_BACKUPS} backups")]
    LogBackups(u32),
    /// The control socket cannot be served (another launcher answers on
    /// it, a folder that is not ours and 0700, a path too long).
    #[error(transparent)]
    Socket(#[from] socket::SocketError),
}

/// Which program the guardian processes run (see the module's "The
/// guardian").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Guardian {
    /// The current executable, whose `main` calls [`run_guardian_if_asked`].
    #[default]
    CurrentExe,
    /// Another executable that runs the guardian for the argument
    /// `__guardian` (`berth` itself does).
    Exe(PathBuf),
    /// No guardian: backends may outlive a process killed by SIGKILL.
    None,
}

/// Where the control socket is served, if at all.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SocketChoice {
    Off,
    Default,
    At(PathBuf),
}

/// The options of an embedded launcher; [`Builder::start`] starts it.
/// The defaults are `berth run`'s.
#[derive(Debug, Clone)]
pub struct Builder {
    app: AppName,
    dirs: Vec<PathBuf>,
    folders: Option<Folders>,
    resources: Option<PathBuf>,
    require_signatures: bool,
    log_max_size: u64,
    log_backups: u32,
    notifications: bool,
    socket: SocketChoice,
    guardian: Guardian,
    env_remove: Vec<String>,
}

impl Builder {
    /// A launcher for the instance `app`: its logs, data, trusted keys and
    /// default backends folder are under that name, as with `berth run --app`.
    pub fn new(app: AppName) -> Self {
        Self {
            app,
            dirs: Vec::new(),
            folders: None,
            resources: None,
            require_signatures: false,
            log_max_size: 10 << 20,
            log_backups: 3,
            notifications: true,
            socket: SocketChoice::Off,
            guardian: Guardian::default(),
            env_remove: Vec::new(),
        }
    }

    /// Adds a backends folder (repeatable), like `--backends DIR`. None
    /// given: `BERTH_BACKENDS`, else `./backends`, else the instance's user
    /// folder plus the installed one, as for `berth run`.
    pub fn backends(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(dir.into());
        self
    }

    /// The folders `berth run` chose from its arguments.
    pub(crate) fn folders(mut self, folders: Folders) -> Self {
        self.folders = Some(folders);
        self
    }

    /// What `${resources}` means in manifests (default: `BERTH_RESOURCES`,
    /// else `resources/` beside the executable). A Tauri app passes its
    /// resource folder.
    pub fn resources(mut self, dir: impl Into<PathBuf>) -> Self {
        self.resources = Some(dir.into());
        self
    }

    /// Run only manifests signed by a trusted key (`--require-signatures`).
    pub fn require_signatures(mut self, require: bool) -> Self {
        self.require_signatures = require;
        self
    }

    /// Rotate a backend's log past this many bytes (default 10 MiB, at
    /// least [`MIN_LOG_SIZE`]).
    pub fn log_max_size(mut self, bytes: u64) -> Self {
        self.log_max_size = bytes;
        self
    }

    /// Rotated logs to keep per backend (default 3, at most [`MAX_LOG_BACKUPS`]).
    pub fn log_backups(mut self, count: u32) -> Self {
        self.log_backups = count;
        self
    }

    /// Desktop notifications when a backend crashes or fails its checks,
    /// under the app's name (default on; `--no-notify` turns them off).
    pub fn notifications(mut self, on: bool) -> Self {
        self.notifications = on;
        self
    }

    /// Serves the control socket at the instance's default path
    /// (`$XDG_RUNTIME_DIR/NAME/berth.sock`), so `berth --app NAME status`
    /// and the Node client find this launcher by its name.
    pub fn default_control_socket(mut self) -> Self {
        self.socket = SocketChoice::Default;
        self
    }

    /// Serves the control socket at `path` (its folder must be ours and
    /// 0700, or creatable so).
    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = SocketChoice::At(path.into());
        self
    }

    /// Which program the guardian processes run (default: the current
    /// executable).
    pub fn guardian(mut self, guardian: Guardian) -> Self {
        self.guardian = guardian;
        self
    }

    /// Variables of the process's environment that backends do not
    /// inherit (what the tray set for GTK).
    pub(crate) fn env_remove(mut self, names: Vec<String>) -> Self {
        self.env_remove = names;
        self
    }

    /// Starts the launcher on the current tokio runtime: binds the control
    /// socket (if asked) before anything touches a backend, makes the
    /// instance's updates folder ready (created, crash leftovers removed),
    /// starts the supervisor, reads the backends folders and the updates
    /// folder once and applies them (backends with `autostart` start), then
    /// follows the folders and serves the socket. Returns once the first
    /// catalog is applied.
    pub async fn start(self) -> Result<Launcher, StartError> {
        if self.log_max_size < MIN_LOG_SIZE {
            return Err(StartError::LogMaxSize(self.log_max_size));
        }
        if self.log_backups > MAX_LOG_BACKUPS {
            return Err(StartError::LogBackups(self.log_backups));
        }
        let folders = match self.folders {
            Some(folders) => folders,
            None => Folders::choose(&self.dirs, &self.app),
        };
        let open_dir = usable_folders(&folders)?;
        let socket_path = match &self.socket {
            SocketChoice::Off | SocketChoice::Default => crate::paths::default_socket(&self.app),
            SocketChoice::At(path) => path.clone(),
        };
        let bound = match self.socket {
            SocketChoice::Off => None,
            _ => Some(socket::bind(&socket_path)?),
        };
        // Before any backend exists: its /proc reads of berth are refused.
        #[cfg(target_os = "linux")]
        if let Err(e) = crate::sandbox::hidden::hide_self() {
            tracing::warn!(error = %e, "cannot make berth non-dumpable: backends can read its environment");
        }
        for duplicate in &folders.duplicates {
            tracing::warn!("{duplicate}");
        }
        let shown: Vec<String> = folders
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        tracing::info!(backends = %shown.join(":"), socket = %socket_path.display(), "berth launcher starting");
        let updates = prepare_updates(&self.app);
        let config = Config {
            log_dir: crate::paths::log_dir(&self.app),
            log_max_size: self.log_max_size,
            log_backups: self.log_backups,
            notify_dir: socket_path
                .parent()
                .map_or_else(|| PathBuf::from("notify"), |d| d.join("notify")),
            env_remove: self.env_remove,
            updates_dir: Some(updates.clone()),
        };
        let trust = Arc::new(load_trust(self.require_signatures, &self.app));
        let guardian = match self.guardian {
            Guardian::CurrentExe => std::env::current_exe().ok(),
            Guardian::Exe(exe) => Some(exe),
            Guardian::None => None,
        };
        let supervisor = crate::supervisor::spawn_with_guardian(config, guardian);
        // Before the first scan, so an untrusted file at startup is heard.
        let notifier = self
            .notifications
            .then(|| crate::notify::spawn(supervisor.clone(), self.app.clone()));
        let resources = self.resources.unwrap_or_else(crate::paths::resources_dir);
        supervisor.enable_updates(crate::supervisor::Readers {
            places: crate::manifest::Places::new(resources.clone(), self.app.clone()),
            // A feed's files are judged by the trusted keys, with or
            // without --require-signatures.
            keys: crate::trust::Policy {
                require: false,
                ..trust.policy().clone()
            },
        });
        let (rescans, requests) = mpsc::channel(8);
        let reloader = reload::spawn_reloader(
            reload::Folder {
                dirs: folders.dirs.clone(),
                resources: crate::manifest::Places::new(resources, self.app.clone()),
                trust,
                updates: Some(updates),
            },
            supervisor.clone(),
            requests,
        )
        .await;
        let (server, socket_file) = match bound {
            Some(socket::Bound { listener, file }) => {
                let served = supervisor.clone();
                let rescans = rescans.clone();
                let server = tokio::spawn(async move {
                    crate::control::serve(
                        &listener,
                        served,
                        Some(rescans),
                        ClientLimits::default(),
                    )
                    .await;
                });
                (Some(server), Some(file))
            }
            None => (None, None),
        };
        // Idle (no timer armed) until a backend's `update` has `check`.
        let checker = checks::spawn(supervisor.clone());
        tracing::info!("berth launcher ready");
        Ok(Launcher {
            handle: Handle {
                supervisor,
                rescans,
            },
            socket_file,
            server,
            reloader: Some(reloader),
            notifier,
            checker: Some(checker),
            folders,
            open_dir,
        })
    }
}

/// The instance's updates folder, made ready before the supervisor starts
/// and the folders are first read (DESIGN.md "Updates"): created (0700) so
/// it is watched from the start rather than looked for, and cleared of what
/// a crash left half-done ([`crate::update::install::Updates::recover`]),
/// each thing done one line in berth.log.
fn prepare_updates(app: &AppName) -> PathBuf {
    let updates = crate::update::install::Updates::of(app);
    if let Err(error) = crate::paths::create_private_dir(updates.dir()) {
        tracing::warn!(dir = %updates.dir().display(), %error, "cannot create the updates folder");
    }
    for line in updates.recover() {
        tracing::warn!("updates folder: {line}");
    }
    updates.dir().to_path_buf()
}

/// Folders the user named (`--backends`, `BERTH_BACKENDS`) must include at
/// least one that exists (exit 2 otherwise, before the socket is bound); the
/// others are served once they appear. The default user folder is created
/// on first run. Returns the folder "Open backends folder" opens.
fn usable_folders(folders: &Folders) -> Result<PathBuf, StartError> {
    folders
        .create_user_dir()
        .map_err(|source| StartError::CreateBackendsDir {
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
            [(dir, reason)] => StartError::BackendsDir {
                dir: (*dir).clone(),
                reason: (*reason).to_owned(),
            },
            _ => StartError::NoBackendsDir(
                bad.iter()
                    .map(|(d, r)| format!("{} {r}", d.display()))
                    .collect(),
            ),
        });
    }
    folders
        .to_open()
        .map(Path::to_path_buf)
        .ok_or_else(|| StartError::NoBackendsDir(Vec::new()))
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

/// A running launcher. Dropping it without [`Launcher::shutdown`] stops
/// following the folders and serving the socket, and leaves the backends to
/// the supervisor, which stops them once the last [`Handle`] is gone.
pub struct Launcher {
    handle: Handle,
    socket_file: Option<SocketFile>,
    server: Option<JoinHandle<()>>,
    reloader: Option<JoinHandle<()>>,
    notifier: Option<JoinHandle<()>>,
    /// The `update.check` timer (v3).
    checker: Option<JoinHandle<()>>,
    folders: Folders,
    open_dir: PathBuf,
}

impl Launcher {
    /// The options of a launcher for the instance `app`, to start it.
    pub fn builder(app: AppName) -> Builder {
        Builder::new(app)
    }

    /// A cloneable handle that commands the backends and follows them.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The control socket's path, when it is served.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket_file.as_ref().map(SocketFile::path)
    }

    /// The backends folders read, each once, absolute.
    pub fn backends_dirs(&self) -> &[PathBuf] {
        &self.folders.dirs
    }

    /// The folders as chosen (their source, for the tray's autostart entry).
    pub(crate) fn chosen_folders(&self) -> &Folders {
        &self.folders
    }

    /// The folder "Open backends folder" opens.
    pub(crate) fn open_dir(&self) -> &Path {
        &self.open_dir
    }

    /// The supervisor itself, for `berth run`'s tray and second SIGINT.
    pub(crate) fn supervisor(&self) -> SupervisorHandle {
        self.handle.supervisor.clone()
    }

    /// Stops every backend in parallel (each by its manifest's stop signal
    /// and timeout, as the tray's Quit and SIGTERM do), then stops
    /// following the folders, serving the socket and notifying, and removes
    /// the socket file. Commands sent meanwhile or later are refused with
    /// [`ActionError::ShutDown`].
    pub async fn shutdown(mut self) {
        // No check or update begins while the backends are stopped.
        for task in [self.reloader.take(), self.checker.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        self.handle.supervisor.shutdown().await;
        // Drop ends the server and the notifier and removes the socket.
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        for task in [
            self.reloader.take(),
            self.server.take(),
            self.notifier.take(),
            self.checker.take(),
        ]
        .into_iter()
        .flatten()
        {
            task.abort();
        }
        if let Some(file) = &self.socket_file {
            tracing::debug!(socket = %file.path().display(), "removing the control socket");
        }
    }
}

/// Commands a running launcher's backends and follows them: the same
/// typed verbs as the CLI, the tray and the control socket. Cheap to
/// clone; every clone talks to the same launcher.
#[derive(Clone)]
pub struct Handle {
    supervisor: SupervisorHandle,
    rescans: Rescans,
}

impl Handle {
    /// The latest snapshot: every manifest file, sorted like the tray,
    /// each as `berth status --json` shows it.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.supervisor.snapshot()
    }

    /// A receiver that sees every new snapshot (one per transition of a
    /// backend, a folder change, or a CPU/RSS sample). Use
    /// [`watch::Receiver::wait_for`] to wait for a state.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.supervisor.subscribe()
    }

    /// Carries out `verb` on the backend `id`. A start returns once the
    /// process is spawned (or refused: [`ActionError::Launch`] says why,
    /// and the state shows it), not once it is ready: wait for `running` on
    /// [`Handle::subscribe`]. A stop returns once the whole process group is
    /// gone. Already running (start) or not running (stop) is
    /// [`Outcome::Noop`] with the reason.
    pub async fn command(&self, id: &str, verb: Verb) -> Result<Outcome, ActionError> {
        self.supervisor.command(id, verb).await
    }

    /// Starts every backend that can start, in parallel (refusals ignored).
    pub async fn start_all(&self) {
        self.supervisor.start_all().await;
    }

    /// Stops every backend in parallel; returns once all are stopped.
    pub async fn stop_all(&self) {
        self.supervisor.stop_all().await;
    }

    /// Writes `line` as one compact JSON line to `id`'s stdin, as `berth
    /// send` does. Without `wait`, returns `Ok(None)` once queued (a full
    /// queue is refused at once); with it, the first stdout JSON object
    /// from then on whose `key` renders as `value`, waited for at most
    /// `timeout`.
    pub async fn send(
        &self,
        id: &str,
        line: &serde_json::Value,
        wait: Option<&Wait>,
        timeout: Duration,
    ) -> Result<Option<JsonObject>, SendError> {
        talk::send(&self.supervisor, id, line, wait, timeout).await
    }

    /// Runs `id`'s manifest action `label`, as the tray does.
    pub async fn action(&self, id: &str, label: &str) -> Result<Ran, ActionError> {
        self.supervisor.action(id, label).await
    }

    /// Reads the backends folders again, every file; `Err` names the
    /// folders that could not be read (the others are applied).
    pub async fn rescan(&self) -> Result<(), String> {
        crate::control::server::ask_rescan(&self.rescans).await
    }
}

/// For the first lines of an app's `main` when the app's own executable is
/// the guardian ([`Guardian::CurrentExe`], the default): when this process
/// was started as a guardian (its first argument is `__guardian`), runs it
/// and returns the exit code to return from `main`; otherwise `None` at once.
pub fn run_guardian_if_asked() -> Option<ExitCode> {
    let asked = std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == crate::supervisor::guardian::ARG);
    if !asked {
        return None;
    }
    Some(match crate::supervisor::guardian::main() {
        Ok(code) => code,
        Err(err) => {
            let text = format!("{err:#}");
            eprintln!(
                "berth: {}",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::FAILURE
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // An embedded launcher that serves its control socket answers a client
    // (what `berth --app NAME status` and the Node client do), and its
    // shutdown removes the socket.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_embedded_launcher_serves_its_socket_until_shutdown() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("backends");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("demo.yaml"),
            "id: demo\nname: Demo\nversion: 1.0.0\nexecutable:\n  linux:\n    path: /nonexistent/demo\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n",
        )
        .unwrap();
        let socket = tmp.path().join("run/berth.sock");
        let launcher = Launcher::builder("embed-test".parse().unwrap())
            .backends(&dir)
            .notifications(false)
            .guardian(Guardian::None)
            .control_socket(&socket)
            .start()
            .await
            .unwrap();
        assert_eq!(launcher.socket_path(), Some(socket.as_path()));
        let client = crate::client::Client::at(&socket);
        let list = tokio::task::spawn_blocking(move || client.status())
            .await
            .unwrap()
            .unwrap();
        let ids: Vec<_> = list.iter().filter_map(|b| b.id.as_deref()).collect();
        assert_eq!(ids, ["demo"]);
        assert_eq!(
            launcher.handle().snapshot().get("demo").map(|b| b.state),
            Some(crate::status::State::NotFound)
        );
        launcher.shutdown().await;
        assert!(!socket.exists(), "the socket is removed at shutdown");
    }

    #[tokio::test]
    async fn log_options_out_of_bounds_are_refused_before_anything_starts() {
        let app: AppName = "embed-test".parse().unwrap();
        let small = Launcher::builder(app.clone()).log_max_size(1).start().await;
        assert!(matches!(small, Err(StartError::LogMaxSize(1))));
        let many = Launcher::builder(app).log_backups(101).start().await;
        assert!(matches!(many, Err(StartError::LogBackups(101))));
    }
}
