//! Manifests through the real binary: every fixture's error exactly as the
//! user sees it (`fixtures`), `check` / `hash` / `pin` / `schema` and their
//! exit codes (`commands`).

mod agreement;
mod commands;
mod fixtures;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

pub const TOOL_DIGEST: &str = "469488650bd443000c01321d34476ef01d8dce0d04a331742b13e9aedfde2c7d";
pub const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The binary, isolated from the user's environment, with a time limit far
/// above what any of these commands needs.
pub fn berth() -> Command {
    let mut cmd = Command::cargo_bin("berth").unwrap();
    cmd.env_remove("BERTH_BACKENDS")
        .env_remove("BERTH_RESOURCES")
        .env_remove("RUST_BACKTRACE")
        .timeout(Duration::from_secs(30));
    cmd
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
