//! `berth status / start / stop / restart`: clients of the control socket. (Issue #4.)
use std::path::Path;
use std::process::ExitCode;

pub fn status(_socket: &Path, _json: bool) -> anyhow::Result<ExitCode> {
    todo!()
}

pub fn action(_socket: &Path, _action: &str, _id: &str) -> anyhow::Result<ExitCode> {
    todo!()
}
