//! `berth run`: wires registry, watcher, supervisor, control socket and tray.
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(_args: crate::cli::RunArgs, _socket: PathBuf) -> anyhow::Result<ExitCode> {
    todo!()
}
