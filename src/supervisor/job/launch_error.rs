//! Why a backend could not be launched: the typed error the launch returns
//! and the phase keeps until the status shows it.
//!
//! Its own module, below both `launch` (which makes it) and `state` (which
//! keeps it), so neither imports the other for it.

use std::io;
use std::path::PathBuf;

use super::super::given::GivenError;
use super::super::sd_notify::NotifyError;
use crate::integrity::{self, VerifyError};

/// Why a backend could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("no executable entry for this platform")]
    NoExecutable,
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("cannot open log {}: {source}", path.display())]
    Log { path: PathBuf, source: io::Error },
    #[error("{}", integrity::spawn_error(path, source).1)]
    Spawn { path: PathBuf, source: io::Error },
    /// The executable's digest is not the manifest's: the hint `check`
    /// gives, with the id to pin.
    #[error("{source}; run `berth pin {id}` if this file is trusted")]
    Unpinned { id: String, source: VerifyError },
    #[error("{} started without a process id", path.display())]
    NoPid { path: PathBuf },
    #[error("the verification task failed: {0}")]
    Task(String),
    /// v2: the `files` folder of a onedir build does not match its digest.
    #[error(transparent)]
    Tree(#[from] crate::tree::TreeError),
    /// The workdir is missing or not a folder (named, not blamed on the
    /// executable as ENOENT would be).
    #[error("{0}")]
    Workdir(String),
    /// v2: the manifest's sandbox cannot be set up or enforced.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// v2: the sd_notify socket (`ready.notify`, `health.watchdog`) cannot
    /// be made.
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// v3: the run's port (`port: auto`) or token (`token: true`).
    #[error(transparent)]
    Given(#[from] GivenError),
}
