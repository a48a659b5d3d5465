//! `berth schema`. (Issue #2 fills this in.)
use std::process::ExitCode;

pub fn run() -> anyhow::Result<ExitCode> {
    todo!("berth schema")
}
