//! `berth hash`. (Issue #2 fills this in.)
use std::process::ExitCode;

pub fn run(_file: &std::path::Path) -> anyhow::Result<ExitCode> {
    todo!("berth hash")
}
