//! The guardian: a tiny process that outlives berth and stops every registered
//! process group when berth's pipe closes. (Issue #3.)
use std::process::ExitCode;

pub fn main() -> anyhow::Result<ExitCode> {
    todo!()
}
