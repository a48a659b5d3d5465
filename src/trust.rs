//! Trust (v2): whose manifests may run.
//!
//! Anyone who can write a file into `backends/` can make berth run a program.
//! A manifest may carry a minisign signature, `<manifest>.minisig`, over its
//! exact bytes; since the manifest pins its executable's digest (and its
//! `files` tree), the signature covers what runs. Trusted keys are minisign
//! public key files (`NAME.pub`) in the trusted folders ([`trusted_dirs`]).
//!
//! This module only judges: [`Trust::verdict`] takes the bytes the registry
//! is about to parse (read once, so the bytes verified are the bytes used)
//! and says whether they are unsigned, signed by a trusted key (its name), or
//! untrusted (why, in one line). The registry turns that into a standing.
//!
//! Verification uses minisign-verify (by minisign's author, no dependencies):
//! both kinds of signature minisign makes, legacy (`Ed`, over the bytes) and
//! pre-hashed (`ED`, over their BLAKE2b-512), are accepted. Its decoder checks
//! every length before use, so a garbage or truncated file is an error, never
//! a panic. The `minisign` crate (same author) is used only to read the key
//! id of a signature for messages, and by `berth keygen` / `berth sign`.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use minisign_verify::{Error as VerifyError, PublicKey, Signature};

/// The suffix of a signature file: `python.yaml` -> `python.yaml.minisig`.
pub const SIGNATURE_SUFFIX: &str = ".minisig";

/// Largest signature or key file read (a real one is a few hundred bytes).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// What the user asked for: where trusted keys live and whether a signature
/// is required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `--require-signatures` / `BERTH_REQUIRE_SIGNATURES=1`: an unsigned
    /// manifest is untrusted.
    pub require: bool,
    /// The folders of trusted `NAME.pub` files, in order.
    pub dirs: Vec<PathBuf>,
}

impl Policy {
    /// The trusted folders of [`trusted_dirs`] for the instance `app`,
    /// signatures required or not.
    pub fn new(require: bool, app: &crate::paths::AppName) -> Self {
        Self {
            require,
            dirs: trusted_dirs(app),
        }
    }
}

/// `BERTH_TRUSTED` (colon separated) when set, else
/// `$XDG_CONFIG_HOME/NAME/trusted` and `trusted/` beside the berth binary
/// when that exists.
pub fn trusted_dirs(app: &crate::paths::AppName) -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("BERTH_TRUSTED").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    let mut dirs = vec![crate::paths::trusted_dir(app)];
    if let Some(installed) =
        Some(crate::paths::install_dir().join("trusted")).filter(|d| d.is_dir())
    {
        dirs.push(installed);
    }
    dirs
}

/// The signature file of a manifest.
pub fn signature_path(manifest: &Path) -> PathBuf {
    let mut name = manifest.as_os_str().to_owned();
    name.push(SIGNATURE_SUFFIX);
    PathBuf::from(name)
}

/// The manifest a signature file belongs to, if `path` names one.
pub fn manifest_of_signature(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let manifest = name.strip_suffix(SIGNATURE_SUFFIX)?;
    Some(path.with_file_name(manifest))
}

/// What a manifest's signature says about its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No signature file, and none is required.
    Unsigned,
    /// A valid signature by the trusted key of this name.
    Signed(String),
    /// Never launched: why, in one line that names the file at fault.
    Untrusted(String),
}

impl Verdict {
    /// The name of the key that signed, if any.
    pub fn signer(&self) -> Option<&str> {
        match self {
            Self::Signed(name) => Some(name),
            _ => None,
        }
    }
}

/// One trusted public key.
#[derive(Debug, Clone)]
struct TrustedKey {
    /// `NAME` of `NAME.pub`: what `signed_by` shows.
    name: String,
    key: PublicKey,
}

/// The policy with its keys loaded.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    policy: Policy,
    keys: Vec<TrustedKey>,
    problems: Vec<String>,
}

impl Trust {
    /// No trusted key and nothing required: v1's behaviour for unsigned
    /// manifests (a present signature still has to verify, and cannot).
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads every `*.pub` of the policy's folders (sorted by name). A folder
    /// that does not exist holds no key; a folder that cannot be read or a
    /// file that is not a public key is a [`Trust::problems`] line and is
    /// skipped: the other keys still count.
    pub fn load(policy: Policy) -> Self {
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        for dir in &policy.dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    problems.push(format!(
                        "{}: cannot read the trusted keys folder: {e}",
                        dir.display()
                    ));
                    continue;
                }
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pub"))
                .collect();
            files.sort();
            for file in files {
                match load_key(&file) {
                    Ok(key) => keys.push(key),
                    Err(problem) => problems.push(problem),
                }
            }
        }
        Self {
            policy,
            keys,
            problems,
        }
    }

    /// The policy these keys were loaded for (reloading re-reads it).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether unsigned manifests are untrusted.
    pub fn required(&self) -> bool {
        self.policy.require
    }

    /// The names of the keys loaded, in order.
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.name.as_str())
    }

    /// Would a definition that `earlier` judged (signed by the key named
    /// `signer`, or unsigned) still be trusted with these keys? A key that
    /// was removed, or replaced by another under the same name, no longer
    /// vouches for what it signed: a last good definition must not outlive
    /// the trust it was read under.
    pub fn still_vouches(&self, earlier: &Trust, signer: Option<&str>) -> bool {
        let Some(name) = signer else {
            return !self.required();
        };
        let key = |t: &'_ Trust| {
            t.keys
                .iter()
                .find(|k| k.name == name)
                .map(|k| k.key.clone())
        };
        matches!((key(earlier), key(self)), (Some(a), Some(b)) if a == b)
    }

    /// One line per key folder or key file that could not be used.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Judges `bytes`, the content of `manifest` as the registry read it,
    /// against the signature file beside it.
    pub fn verdict(&self, manifest: &Path, bytes: &[u8]) -> Verdict {
        let why = self.policy.require.then_some("and signatures are required");
        self.judge(manifest, bytes, why)
    }

    /// [`Trust::verdict`] for an installed update (DESIGN.md "Updates"):
    /// a signature by a trusted key is required whatever the policy says.
    pub fn verdict_signed(&self, manifest: &Path, bytes: &[u8]) -> Verdict {
        self.judge(
            manifest,
            bytes,
            Some("and an installed update must be signed by a trusted key"),
        )
    }

    /// Judges `bytes`; `required` (why a signature is needed) makes a
    /// missing signature untrusted.
    fn judge(&self, manifest: &Path, bytes: &[u8], required: Option<&str>) -> Verdict {
        let sig_path = signature_path(manifest);
        let text = match read_bounded(&sig_path) {
            Ok(Some(text)) => text,
            Ok(None) => {
                return match required {
                    Some(why) => Verdict::Untrusted(format!(
                        "{}: not signed ({} is missing) {why}",
                        manifest.display(),
                        file_name(&sig_path)
                    )),
                    None => Verdict::Unsigned,
                };
            }
            Err(e) => return Verdict::Untrusted(format!("{}: {e}", sig_path.display())),
        };
        match self.check(manifest, bytes, &text) {
            Ok(name) => Verdict::Signed(name),
            Err(reason) => Verdict::Untrusted(format!("{}: {reason}", sig_path.display())),
        }
    }

    /// Checks `signature` (the text of a minisign signature file) over
    /// `bytes`, the content of `file` (named in messages): the name of the
    /// trusted key that made it, or why not, in words that follow the
    /// signature file's name. Used for manifests beside their signatures and
    /// for a feed's files, which are always checked (DESIGN.md, "Updates").
    pub fn check(&self, file: &Path, bytes: &[u8], signature: &str) -> Result<String, String> {
        let Ok(decoded) = Signature::decode(signature) else {
            return Err("not a minisign signature (garbage or truncated)".to_owned());
        };
        let mut mismatch = false;
        for key in &self.keys {
            // Legacy signatures are allowed: both kinds minisign makes verify.
            match key.key.verify(bytes, &decoded, true) {
                Ok(()) => return Ok(key.name.clone()),
                Err(VerifyError::UnexpectedKeyId) => {}
                Err(_) => mismatch = true,
            }
        }
        let reason = if mismatch {
            let named = signed_file_name(&decoded)
                .filter(|n| Some(n.as_str()) != file.file_name().and_then(|m| m.to_str()));
            match named {
                Some(other) => format!(
                    "does not match {}: it was made for {other}",
                    file_name(file)
                ),
                None => format!(
                    "does not match {}: the file was changed after signing, or the signature is for another file",
                    file_name(file)
                ),
            }
        } else {
            let id = key_id(signature).map_or_else(String::new, |id| format!(" {id}"));
            if self.keys.is_empty() {
                format!(
                    "signed by key{id}, but no trusted key is installed (looked in {})",
                    self.shown_dirs()
                )
            } else {
                format!(
                    "signed by key{id}, which is not a trusted key (looked in {})",
                    self.shown_dirs()
                )
            }
        };
        Err(reason)
    }

    fn shown_dirs(&self) -> String {
        if self.policy.dirs.is_empty() {
            return "no trusted folder".to_owned();
        }
        self.policy
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads a small text file: `Ok(None)` when it does not exist.
fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("over {MAX_FILE_BYTES} bytes: not a minisign file"));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| "not text: not a minisign file".to_owned())
}

fn load_key(file: &Path) -> Result<TrustedKey, String> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{}: a key file is named NAME.pub", file.display()))?
        .to_owned();
    let text = read_bounded(file)
        .and_then(|t| t.ok_or_else(|| "vanished while being read".to_owned()))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let key = PublicKey::decode(&text).map_err(|_| {
        format!(
            "{}: not a minisign public key (expected an untrusted comment line and a base64 key, as `minisign -G` writes)",
            file.display()
        )
    })?;
    Ok(TrustedKey { name, key })
}

/// The key id of a signature as minisign prints it (`{:016X}` of the
/// little-endian id), for messages.
fn key_id(text: &str) -> Option<String> {
    let sig = minisign::SignatureBox::from_string(text).ok()?;
    let bytes: [u8; 8] = sig.keynum().try_into().ok()?;
    Some(format!("{:016X}", u64::from_le_bytes(bytes)))
}

/// `file:NAME` of the trusted comment (minisign and `berth sign` write it),
/// to say which file a mismatching signature was made for. Only a hint: the
/// comment of a signature that does not verify is not trusted: anyone
/// can write it (a feed, a backend), and the reason it goes into reaches
/// berth.log, a terminal and a notification, so a name with control
/// characters (terminal escapes, a carriage return) or longer than a file
/// name may be is not repeated.
fn signed_file_name(signature: &Signature) -> Option<String> {
    const MAX_NAME: usize = 255;
    signature
        .trusted_comment()
        .split('\t')
        .find_map(|part| part.strip_prefix("file:"))
        .filter(|name| name.len() <= MAX_NAME && !name.chars().any(char::is_control))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests;
