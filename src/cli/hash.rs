//! `berth hash FILE`: the digest to paste into a manifest's `sha256`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::Exit;

pub fn run(file: &Path) -> anyhow::Result<ExitCode> {
    match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Exit::usage(format!("{}: no such file", file.display())));
        }
        Ok(m) if m.is_dir() => anyhow::bail!("{}: is a folder, not a file", file.display()),
        _ => {}
    }
    let digest = crate::integrity::hash_file(file)
        .with_context(|| format!("{}: cannot read", file.display()))?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}
