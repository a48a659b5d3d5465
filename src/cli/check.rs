//! `berth check`. (Issue #2 fills this in.)
use std::process::ExitCode;

pub fn run(_dir: Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    todo!("berth check")
}
