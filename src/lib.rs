//! # berth: a desktop launcher that hosts backends
//!
//! ## Theory of operation
//!
//! State flows one way: manifests and user commands flow in, snapshots flow out.
//!
//! ```text
//! backends/*.yaml ──notify──▶ watch ──▶ registry (parse, validate, resolve winners)
//!                                            │ Catalog
//! tray clicks ─┐                             ▼
//! CLI/socket ──┴──commands──▶ supervisor (one task per backend: verify, spawn,
//!                                            │  stop, restart, logs, readiness)
//!                                            ▼ Snapshot (tokio::sync::watch)
//!                              tray (main thread) · control socket · CLI output
//! ```
//!
//! - [`manifest`] turns one YAML file into a validated [`manifest::Backend`].
//! - [`registry`] loads a folder of manifests and decides which file wins for
//!   each backend id ([`registry::Catalog`]).
//! - [`watch`] follows the folder with notify and produces new catalogs.
//! - [`integrity`] hashes executables and launches exactly the bytes it hashed;
//!   [`tree`] digests the folder a onedir build loads.
//! - [`trust`] judges manifests' minisign signatures against trusted keys.
//! - [`status`] is the status model: what is published about each manifest
//!   file and what a command answers; every face reads it.
//! - [`supervisor`] owns the processes and publishes [`status::Snapshot`]s.
//! - [`control`] serves the snapshots and commands on a Unix socket.
//! - [`tray`] renders snapshots as a system-tray menu and turns clicks into
//!   commands.
//! - [`sandbox`] confines a backend (Landlock, no_new_privs, rlimits) on Linux.
//! - [`socket_dir`] keeps socket folders ours and 0700 (the control socket,
//!   the sd_notify sockets).
//! - [`vars`] holds the `${id}` `${pid}` `${ready.KEY}` templates of manifest
//!   fields that name things known only once a backend runs.
//! - [`verb`] is what a user asks of one backend (start, stop, restart),
//!   carried unchanged from the CLI, the tray and the socket to its job.
//! - [`update`] is a backend's signed releases: the feed's format, `berth
//!   release`, and the download and install of an update.
//! - [`embed`] wires all of the above together into a launcher: the API an
//!   app uses to host its backends in-process, and what `berth run` runs.
//! - [`launcher`] is `berth run`: the embedded launcher plus signals, the
//!   parent process it follows, and the tray.
//! - [`client`] talks to a running launcher over its control socket (the
//!   CLI's commands use it; so can programs).

pub mod autostart;
pub mod cli;
pub mod client;
pub mod control;
pub mod embed;
pub mod folders;
pub mod graph;
pub mod human;
pub mod integrity;
pub mod launcher;
pub mod manifest;
pub mod notify;
pub mod opener;
pub mod paths;
pub mod registry;
#[cfg(target_os = "linux")]
pub mod sandbox;
pub mod socket_dir;
pub mod status;
pub mod supervisor;
mod timer;
pub mod tray;
pub mod tree;
pub mod trust;
pub mod update;
pub mod vars;
pub mod verb;
pub mod watch;

pub use client::{Answer, Client, ClientError, Settled, Watch};
pub use control::protocol::{Acted, Event, LogLine, Stream, Version, Wait};
pub use control::talk::{JsonObject, SendError};
pub use embed::{Builder, Guardian, Handle, Launcher, StartError};
pub use paths::AppName;
pub use status::{ActionError, BackendStatus, Outcome, Snapshot, State};
pub use supervisor::Ran;
pub use verb::Verb;

/// berth's own version, matched against a manifest's `requires`.
pub fn berth_version() -> semver::Version {
    // CARGO_PKG_VERSION is always valid semver: cargo refuses anything else.
    semver::Version::parse(env!("CARGO_PKG_VERSION")).expect("cargo version is semver")
}
