//! The system tray: one submenu per backend, driven by supervisor snapshots.
//!
//! The tray is split so that almost all of it can be tested without a display:
//!
//! - [`menu`] is a pure function `Snapshot -> MenuModel`: every label, every
//!   enabled flag and the icon's colour are decided there.
//! - [`action`] names what a click means ([`Click`]) and how it is encoded in
//!   a muda menu id (`python:restart`), with a `FromStr`/`Display` round trip.
//! - [`icon`] draws the three icons (idle, running, failing) in code.
//! - `env` sets (and remembers) the environment berth's own GTK reads at
//!   start-up, which backends must not inherit.
//! - `probe` checks, before anything can panic, that a tray can exist here:
//!   a display GTK can open, a session bus, and the appindicator library.
//! - `app` is the thin adapter: a tao event loop on the main thread that
//!   applies each new model to tray-icon/muda in place (a tray menu, once set,
//!   cannot be replaced) and turns clicks into [`Click`]s.
//! - `shown` tells when the panel opens a backend submenu, so usage is
//!   sampled only while someone can see it.
//! - `theme` keeps GTK's theme empty while a panel draws the menu (the
//!   desktop's theme is only loaded while berth draws it itself).
//!
//! ## How the launcher uses it
//!
//! ```text
//! main():  tray::prepare_env()            before any thread exists
//!          tray::probe()?                 on the main thread; Err => headless
//!          tokio runtime on other threads: supervisor, watcher, socket
//!          tray::run(TrayInputs{..})      blocks the main thread until `exit`
//! ```
//!
//! Snapshots and the exit request reach the event loop through an
//! `EventLoopProxy` user event sent from a tokio task; muda's click handler
//! sends into the same proxy. Nothing polls: the loop sleeps in
//! `ControlFlow::Wait` until one of those arrives (or, only while a backend
//! waits in backoff, once a second to count down "Restarting in 2s").

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub mod action;
pub mod app_icon;
pub mod icon;
pub mod menu;

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
mod app;
mod env;
mod probe;
#[cfg(target_os = "linux")]
mod shown;
#[cfg(target_os = "linux")]
mod theme;

pub use crate::opener::open_with_desktop;
pub use action::{Click, ItemId, ParseActionError};
pub use env::{env_overrides, prepare_env};
pub use probe::{TrayUnavailable, probe};

use crate::status::Snapshot;

/// What the tray shows and acts on besides the backends.
#[derive(Debug, Clone)]
pub struct Face {
    /// The folder "Open backends folder" opens.
    pub backends_dir: PathBuf,
    /// The instance ("Start at login" writes its entry).
    pub app: crate::paths::AppName,
    /// The item's name: its StatusNotifier Title (what panels show on
    /// hover), its tooltip elsewhere, and the menu's first line.
    pub title: String,
    /// The app's PNG, shown with the state as a badge; `None`, or a file
    /// that cannot be shown (said in one line), is berth's own disc.
    pub icon: Option<PathBuf>,
}

/// Everything the tray needs from the rest of berth; deliberately not the
/// `SupervisorHandle`, so the tray can be driven by any snapshot source
/// (the `tray_demo` example feeds it synthetic states).
pub struct TrayInputs {
    /// The supervisor's snapshots; every change re-renders the menu.
    pub snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    /// Clicks, as actions. Open log / file / folder are handled by the tray
    /// itself (it spawns `xdg-open`) and are *also* sent here, so the receiver
    /// only has to act on Start/Stop/Restart/StartAll/StopAll/Quit.
    pub actions: tokio::sync::mpsc::UnboundedSender<Click>,
    /// Becomes `true` when the launcher starts stopping every backend to quit,
    /// whoever asked (SIGTERM, SIGINT, this tray's Quit): the menu then
    /// says so and disables every entry.
    pub quitting: tokio::sync::watch::Receiver<bool>,
    /// Becomes `true` when the event loop must end (after Quit has stopped
    /// every backend, or on SIGTERM/SIGINT); `run` then returns `Ok`.
    pub exit: tokio::sync::watch::Receiver<bool>,
    /// The instance and what it shows besides the backends.
    pub face: Face,
    /// Where tray-icon writes the icon files the panel reads: a folder in
    /// berth's private runtime folder. tray-icon's own default falls back
    /// to a shared `$TMPDIR/tray-icon` without `XDG_RUNTIME_DIR`, and
    /// follows links another user planted there.
    pub icon_dir: PathBuf,
    /// The folders "Start at login" writes into the autostart entry (those
    /// of `--backends`; none: login uses the default folders).
    pub login_dirs: Vec<PathBuf>,
    /// The runtime on which the tray spawns its forwarding tasks.
    pub runtime: tokio::runtime::Handle,
    /// Set `true` while the panel shows a backend submenu (its process line
    /// shows memory and uptime): the launcher samples usage only then.
    pub shown: tokio::sync::watch::Sender<bool>,
}

/// The tray failed after [`probe`] said it could run.
#[derive(Debug, thiserror::Error)]
pub enum TrayError {
    #[error("cannot create the tray icon: {0}")]
    Icon(String),
    #[error("cannot build the tray menu: {0}")]
    Menu(String),
    #[error("the tray is not available on this platform")]
    Unsupported,
}

/// Runs the tray's event loop on the calling thread (the main thread: GTK and
/// muda's `Rc` menus live there) until `inputs.exit` becomes `true`.
///
/// Call [`probe`] first, on the same thread: `run` assumes it succeeded.
pub fn run(inputs: TrayInputs) -> Result<(), TrayError> {
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
    {
        app::run(inputs)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    {
        let _ = inputs;
        Err(TrayError::Unsupported)
    }
}

impl fmt::Debug for TrayInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrayInputs")
            .field("face", &self.face)
            .finish_non_exhaustive()
    }
}
