//! `berth run`: the launcher.
use std::path::PathBuf;
use std::process::ExitCode;

use crate::launcher::LauncherError;

pub fn run(args: super::RunArgs, socket: PathBuf) -> anyhow::Result<ExitCode> {
    crate::launcher::run(args, socket).map_err(|e| match e {
        // A folder that does not exist is a usage error (exit 2).
        LauncherError::BackendsDir { .. } => super::Exit::usage(e.to_string()),
        other => other.into(),
    })
}
