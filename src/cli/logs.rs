//! `berth logs ID [-f]`: works without a launcher. (Issue #4.)
use std::process::ExitCode;

pub fn run(_id: &str, _follow: bool, _lines: Option<usize>) -> anyhow::Result<ExitCode> {
    todo!()
}
