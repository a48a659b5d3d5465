//! `berth run`: the launcher.
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(args: super::RunArgs, socket: PathBuf) -> anyhow::Result<ExitCode> {
    crate::launcher::run(args, socket)
}
