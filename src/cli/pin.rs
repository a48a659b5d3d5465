//! `berth pin`. (Issue #2 fills this in.)
use std::process::ExitCode;

pub fn run(_id: &str, _dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    todo!("berth pin")
}
