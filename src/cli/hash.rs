//! `berth hash FILE|DIR`: the digest to paste into a manifest: a file's
//! SHA-256 (`sha256`), or a folder's tree digest (`files.sha256`, see
//! [`crate::tree`]).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::Exit;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let digest = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Exit::usage(format!(
                "{}: no such file or folder",
                path.display()
            )));
        }
        Ok(m) if m.is_dir() => crate::tree::digest(path)?,
        _ => crate::integrity::hash_file(path)
            .with_context(|| format!("{}: cannot read", path.display()))?,
    };
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}
