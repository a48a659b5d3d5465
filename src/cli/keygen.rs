//! `berth keygen NAME [--dir DIR] [--force]`: a minisign key pair without a
//! password, as `minisign -G -W` makes: `NAME.key` (0600) and `NAME.pub`.
//!
//! The files are minisign's own format (the `minisign` crate writes them),
//! so `minisign -S -W -s NAME.key` signs with this key and `minisign -V -p
//! NAME.pub` verifies. An existing file is never replaced without `--force`;
//! each file is written beside its final name and renamed into place, so a
//! failure never leaves half a key.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use super::Exit;

pub fn run(
    name: &str,
    dir: &Path,
    force: bool,
    app: &crate::paths::AppName,
) -> anyhow::Result<ExitCode> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return Err(Exit::usage(format!(
            "invalid key name {name:?}: a file name without '/', not starting with '.'"
        )));
    }
    if !dir.is_dir() {
        return Err(Exit::usage(format!("{}: no such folder", dir.display())));
    }
    let secret = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    if !force {
        for file in [&secret, &public] {
            if fs::symlink_metadata(file).is_ok() {
                bail!(
                    "{}: already exists; not overwritten (use --force to replace the key pair)",
                    file.display()
                );
            }
        }
    }
    let pair = minisign::KeyPair::generate_unencrypted_keypair()
        .map_err(|e| anyhow::anyhow!("cannot generate a key pair: {e}"))?;
    let pk = pair
        .pk
        .to_box()
        .map_err(|e| anyhow::anyhow!("cannot encode the public key: {e}"))?
        .to_string();
    let sk = pair
        .sk
        .to_box(Some("minisign secret key (no password), by berth keygen"))
        .map_err(|e| anyhow::anyhow!("cannot encode the secret key: {e}"))?
        .to_string();
    write_new(&secret, sk.as_bytes(), 0o600)?;
    write_new(&public, pk.as_bytes(), 0o644)?;
    println!("{}: secret key (keep it private)", secret.display());
    println!(
        "{}: public key (copy it into a trusted folder, e.g. {})",
        public.display(),
        crate::paths::trusted_dir(app).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file created with `mode`, then renames it
/// over `path`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = temp_beside(path);
    let result = (|| -> std::io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut out = options.open(&tmp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("{}: cannot write", path.display()))
}

/// `.NAME.berth-tmp.PID` beside `path`: hidden, so no watcher takes it for
/// a manifest or a signature.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.berth-tmp.{}", std::process::id()))
}
