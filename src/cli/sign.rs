//! `berth sign MANIFEST --key FILE`: writes `MANIFEST.minisig`, a minisign
//! signature (pre-hashed, as `minisign -S` makes by default) over the
//! manifest's exact bytes.
//!
//! The manifest is read once; those bytes are checked to be a valid manifest
//! (signing a broken file helps nobody) and signed. The trusted comment is
//! minisign's own (`timestamp:N\tfile:NAME\thashed`), so `minisign -V`
//! shows the same thing for both tools. A password-protected key (from
//! `minisign -G`) asks for its password on the terminal. The signature
//! replaces the old one by one atomic rename: the watcher never sees half a
//! file.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};

use super::Exit;

pub fn run(manifest: &Path, key: &Path) -> anyhow::Result<ExitCode> {
    for (what, file) in [("manifest", manifest), ("key", key)] {
        if !file.is_file() {
            return Err(Exit::usage(format!(
                "{}: no such {what} file",
                file.display()
            )));
        }
    }
    let bytes = crate::manifest::validate::read_bounded(manifest)?;
    // Only validity counts here: which instance's folders a sandbox would
    // get changes nothing that is signed.
    crate::manifest::parse(manifest, &bytes, &crate::paths::resources_dir().into())
        .map_err(|e| anyhow!("{e}; not signed"))?;
    let secret = read_secret_key(key)?;
    let name = manifest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let signature = signature(&bytes, &name, &secret, key)?;
    let out = crate::trust::signature_path(manifest);
    write_replacing(&out, signature.as_bytes())?;
    println!("{}: signed ({})", out.display(), key.display());
    Ok(ExitCode::SUCCESS)
}

/// A minisign signature of `bytes` (named `name` in its trusted comment)
/// by `secret`, read from `key`.
pub(crate) fn signature(
    bytes: &[u8],
    name: &str,
    secret: &minisign::SecretKey,
    key: &Path,
) -> anyhow::Result<String> {
    // Proves the key is whole (a key read without its checksum, below, too):
    // `sign` checks the signature against this public key.
    let public = minisign::PublicKey::from_secret_key(secret)
        .map_err(|e| anyhow!("{}: not a usable secret key: {e}", key.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let trusted = format!("timestamp:{now}\tfile:{name}\thashed");
    let signature = minisign::sign(
        Some(&public),
        secret,
        bytes,
        Some(&trusted),
        Some("signature from minisign secret key"),
    )
    .map_err(|e| anyhow!("{name}: cannot sign: {e}"))?;
    Ok(signature.to_string())
}

/// Writes `bytes` beside `out` and renames them over it: a watcher or a
/// web server never sees half a file.
pub(crate) fn write_replacing(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = super::keygen::temp_beside(out);
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, out)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("{}: cannot write", out.display()))
}

/// Debian 12's minisign 0.11 writes `minisign -G -W` keys with an all-zero
/// checksum (it computes the checksum only on its encrypting path); the
/// minisign crate refuses those as corrupted. Such a key (no KDF, a zero
/// checksum, the right length) is read as is; signing then proves it against
/// its own public key.
fn unencrypted_without_checksum(text: &str) -> Option<minisign::SecretKey> {
    use ct_codecs::{Base64, Decoder as _};
    let line = text.lines().nth(1)?.trim();
    let bytes = Base64::decode_to_vec(line, None).ok()?;
    let (kdf, checksum) = (bytes.get(2..4)?, bytes.get(126..)?);
    let plain = bytes.len() == 158 && kdf == [0, 0] && checksum.iter().all(|b| *b == 0);
    plain
        .then(|| minisign::SecretKey::from_bytes(&bytes).ok())
        .flatten()
}

/// Does the key name a KDF (a password protects it)? Read as the minisign
/// crate reads it: the second line, all of it base64, at least a key long.
fn has_password(text: &str) -> bool {
    use ct_codecs::{Base64, Decoder as _};
    let bytes = text
        .lines()
        .nth(1)
        .and_then(|line| Base64::decode_to_vec(line, None).ok());
    bytes.is_some_and(|b| b.len() >= 158 && b[2..4] != [0, 0])
}

/// A key without a password is used as is; one with a password asks for it
/// on the terminal (the `minisign` crate's prompt).
pub(crate) fn read_secret_key(key: &Path) -> anyhow::Result<minisign::SecretKey> {
    let text =
        fs::read_to_string(key).with_context(|| format!("{}: cannot read", key.display()))?;
    let not_a_key = |e: minisign::PError| {
        anyhow!(
            "{}: not a minisign secret key ({e}): expected the .key file of `berth keygen` or `minisign -G`",
            key.display()
        )
    };
    let boxed = minisign::SecretKeyBox::from_string(&text).map_err(not_a_key)?;
    match minisign::SecretKey::from_unencrypted_box(boxed.clone()) {
        Ok(secret) => Ok(secret),
        // The crate's one `Verify` error here: the checksum does not match.
        Err(e) if matches!(e.kind(), minisign::ErrorKind::Verify) => {
            unencrypted_without_checksum(&text).ok_or_else(|| not_a_key(e))
        }
        Err(_) if has_password(&text) => {
            // The prompt reads the terminal; without one it would fail with
            // a bare I/O error.
            if fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/tty")
                .is_err()
            {
                return Err(anyhow!(
                    "{}: the key is protected by a password, and there is no terminal to ask for it: run `berth sign` in a terminal (or use a key from `berth keygen`, which has none)",
                    key.display()
                ));
            }
            minisign::SecretKey::from_box(boxed, None)
                .map_err(|e| anyhow!("{}: cannot unlock the secret key: {e}", key.display()))
        }
        Err(e) => Err(not_a_key(e)),
    }
}
