//! Manifest v1: one YAML file describes one backend.
//!
//! Parsing is two-phase (like ripgrep's low/high args): serde reads the text
//! into [`raw::RawManifest`], which mirrors the file exactly and generates the
//! JSON Schema; [`validate`] turns it into a [`Backend`] with absolute paths,
//! a 32-byte digest and `Duration`s, or a [`ManifestError`] that names the
//! file, line, column and field in one line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod actions;
pub mod depends;
mod error;
pub mod health;
pub mod locate;
mod one_of;
pub mod platform;
pub mod raw;
pub mod sandbox;
pub mod scalar;
pub mod unique_map;
pub mod update;
pub mod validate;

/// Largest manifest berth reads; a bigger file is rejected unread.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// A backend id: `[a-z0-9][a-z0-9-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct BackendId(String);

impl BackendId {
    /// Checks the id's syntax.
    pub fn new(id: &str) -> Result<Self, String> {
        if crate::paths::is_id(id) {
            Ok(Self(id.to_owned()))
        } else {
            Err(format!(
                "invalid id {id:?}: expected 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by id are looked up with a `&str` (ordered as the `String`).
impl std::borrow::Borrow<str> for BackendId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Parses 64 lowercase hex digits (the only form a manifest accepts).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        if text.len() != 64 {
            return Err(format!(
                "expected 64 lowercase hex digits, found {} characters",
                text.chars().count()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let nibble = |c: u8| match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => {
                    Err("uppercase hex digits are not allowed; use lowercase".to_owned())
                }
                _ => Err(format!("{:?} is not a hex digit", c as char)),
            };
            out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Ok(Self(out))
    }

    /// The all-zero digest a shipped manifest carries until its first `berth pin`.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }

    /// `3f7c…9a01`: for menus.
    pub fn short(&self) -> String {
        let hex = self.to_string();
        format!("{}…{}", &hex[..4], &hex[60..])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// A stop signal (the manifest names it in upper case: `TERM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum StopSignal {
    Term,
    Int,
    Hup,
    Quit,
    Usr1,
    Usr2,
    Kill,
}

impl StopSignal {
    /// The Unix signal number.
    #[cfg(unix)]
    pub fn to_nix(self) -> nix::sys::signal::Signal {
        use nix::sys::signal::Signal as S;
        match self {
            Self::Term => S::SIGTERM,
            Self::Int => S::SIGINT,
            Self::Hup => S::SIGHUP,
            Self::Quit => S::SIGQUIT,
            Self::Usr1 => S::SIGUSR1,
            Self::Usr2 => S::SIGUSR2,
            Self::Kill => S::SIGKILL,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StopSpec {
    pub signal: StopSignal,
    pub timeout: Duration,
}

impl Default for StopSpec {
    fn default() -> Self {
        Self {
            signal: StopSignal::Term,
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestartSpec {
    pub policy: RestartPolicy,
    pub max_retries: u32,
    pub backoff: Duration,
}

impl Default for RestartSpec {
    fn default() -> Self {
        Self {
            policy: RestartPolicy::Never,
            max_retries: 3,
            backoff: Duration::from_secs(1),
        }
    }
}

/// How berth tells that a backend is ready.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// A stdout line that is a JSON object containing every given key with the given value.
    StdoutJson(serde_json::Map<String, serde_json::Value>),
    /// A successful TCP connect to `host:port`.
    Tcp(String),
    /// Any 2xx answer to a GET of this `http://` URL.
    Http(String),
    /// An sd_notify `READY=1` on the backend's `NOTIFY_SOCKET` (v2).
    Notify,
    /// The process stayed up this long (v2; supervisord's `startsecs`).
    /// `Uptime(0s)` is ready at once, v1's "no probe".
    Uptime(Duration),
}

impl Probe {
    /// This probe for a run: `${port}` (and `tcp: auto`) replaced by the
    /// port chosen for it.
    pub fn for_run(&self, port: Option<u16>) -> Self {
        match (self, port) {
            (Self::Tcp(addr), Some(p)) => Self::Tcp(expand_port(addr, p)),
            (Self::Http(url), Some(p)) => Self::Http(expand_port(url, p)),
            _ => self.clone(),
        }
    }

    /// The port a `tcp` or `http` probe connects to: `${ready.port}`.
    pub fn port(&self) -> Option<u16> {
        let authority = match self {
            Self::Tcp(addr) => addr.as_str(),
            Self::Http(url) => {
                let rest = url.strip_prefix("http://")?;
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let authority = &rest[..end];
                if !authority.ends_with(']') && authority.rsplit_once(':').is_none() {
                    return Some(80);
                }
                authority
            }
            _ => return None,
        };
        authority.rsplit_once(':')?.1.parse().ok()
    }
}

/// `text` with `${port}` replaced by `port` (`args`, `env`, `ready`).
pub fn expand_port(text: &str, port: u16) -> String {
    text.replace(scalar::PORT_VAR, &port.to_string())
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadySpec {
    pub probe: Probe,
    pub timeout: Duration,
}

/// `ready.timeout` when none is given.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(15);

impl ReadySpec {
    /// Ready as soon as spawned (`{ uptime: 0s }`: v1's default).
    pub fn at_once() -> Self {
        Self {
            probe: Probe::Uptime(Duration::ZERO),
            timeout: DEFAULT_READY_TIMEOUT,
        }
    }

    /// Ready at spawn, with no probe to run (`uptime: 0s`).
    pub fn is_at_once(&self) -> bool {
        self.probe == Probe::Uptime(Duration::ZERO)
    }
}

/// Without `ready`: `{ uptime: 1s }` (v2), so a program that dies at once
/// never counts as running.
impl Default for ReadySpec {
    fn default() -> Self {
        Self {
            probe: Probe::Uptime(Duration::from_secs(1)),
            timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

/// The current platform's executable entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Executable {
    /// Absolute candidate paths, `${resources}` expanded, in the order to try.
    pub candidates: Vec<PathBuf>,
    pub sha256: Digest,
    /// The platform key that was chosen (`linux-x86_64` or `linux`), for messages.
    pub platform_key: String,
    /// A folder beside the executable pinned by its tree digest (v2).
    pub files: Option<Files>,
}

/// `files: { dir, sha256 }`: the folder a onedir build loads after start.
#[derive(Debug, Clone, PartialEq)]
pub struct Files {
    /// Relative to the chosen executable's folder, as written (checked to
    /// contain no `..` and not to be absolute).
    pub dir: PathBuf,
    /// The tree digest of [`crate::tree`].
    pub sha256: Digest,
}

impl Executable {
    /// The first candidate that exists, if any.
    pub fn resolve(&self) -> Option<&Path> {
        self.candidates
            .iter()
            .map(PathBuf::as_path)
            .find(|p| p.is_file())
    }
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// Absolute path of the manifest file.
    pub file: PathBuf,
    pub id: BackendId,
    pub name: String,
    pub version: semver::Version,
    pub requires: Option<semver::VersionReq>,
    /// `None`: no entry for this platform, the backend is `unsupported` here.
    pub executable: Option<Executable>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Absolute working directory.
    pub workdir: PathBuf,
    pub autostart: bool,
    /// Desktop notifications for this backend (v2, "Desktop integration").
    pub notify: bool,
    pub stop: StopSpec,
    pub restart: RestartSpec,
    /// Every backend has a probe (v2): `{ uptime: 1s }` by default.
    pub ready: ReadySpec,
    /// Checks after `running` (v2), if any.
    pub health: Option<health::HealthSpec>,
    /// The manifest's `actions`, in order.
    pub actions: Vec<actions::Action>,
    /// The trusted key whose signature covers this definition's file (v2,
    /// "Trust"); set by the registry, `None` when unsigned.
    pub signed_by: Option<String>,
    /// `None`: not sandboxed.
    pub sandbox: Option<sandbox::Sandbox>,
    /// `port: auto` (v3): berth picks a free 127.0.0.1 port before each run.
    pub port_auto: bool,
    /// `token: true` (v3): a fresh secret per run in `BERTH_TOKEN`.
    pub token: bool,
    /// `depends_on` (v3): what must have got where before this backend is
    /// spawned. Checked against the other manifests by [`crate::graph`].
    pub depends_on: depends::DependsOn,
    /// Where its signed releases are published (v3, "Updates"), if anywhere.
    pub update: Option<update::UpdateSpec>,
}

impl Backend {
    /// Why the backend cannot start in its workdir, if it cannot: the folder
    /// is missing or is not a folder.
    pub fn workdir_problem(&self) -> Option<String> {
        let shown = self.workdir.display();
        match std::fs::metadata(&self.workdir) {
            Ok(meta) if meta.is_dir() => None,
            Ok(_) => Some(format!("workdir {shown} is not a folder")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some(format!("workdir {shown} does not exist"))
            }
            Err(e) => Some(format!("workdir {shown}: {e}")),
        }
    }

    /// Would a run of `other` be the same process as a run of this one? Only
    /// `depends_on` may differ: it orders starts and stops but changes
    /// nothing in the process, so an edit of it alone needs no restart.
    pub fn runs_like(&self, other: &Backend) -> bool {
        if self.depends_on == other.depends_on {
            return self == other;
        }
        let same_deps = Backend {
            depends_on: other.depends_on.clone(),
            ..self.clone()
        };
        same_deps == *other
    }

    /// Does this backend get a `NOTIFY_SOCKET` (`ready.notify` or
    /// `health.watchdog`)?
    pub fn uses_notify(&self) -> bool {
        self.ready.probe == Probe::Notify
            || self
                .health
                .as_ref()
                .is_some_and(|h| matches!(h.check, health::HealthCheck::Watchdog(_)))
    }
}

/// Why a manifest cannot be used. Displays as one line:
/// `backends/x.yaml: line 4 column 3: args: invalid type ...`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ManifestError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the field at fault (`stop.timeout`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, ": line {l} column {c}")?,
            (Some(l), None) => write!(f, ": line {l}")?,
            _ => {}
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What a manifest's paths are resolved against: the folder `${resources}`
/// expands to, and the instance (`--app`) whose folders a sandbox's
/// `${tmp}` and `${data}` are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    pub resources: PathBuf,
    pub app: crate::paths::AppName,
}

impl Places {
    pub fn new(resources: impl Into<PathBuf>, app: crate::paths::AppName) -> Self {
        Self {
            resources: resources.into(),
            app,
        }
    }
}

/// `resources` for the default instance, berth's own.
impl From<PathBuf> for Places {
    fn from(resources: PathBuf) -> Self {
        Self::new(resources, crate::paths::AppName::default())
    }
}

/// Reads and validates one manifest file.
pub fn load(file: &Path, places: &Places) -> Result<Backend, ManifestError> {
    validate::load(file, places)
}

/// Validates the text of a manifest without touching the disk: `load` after
/// its size check, and the fuzz target. `file` names the file in errors and
/// anchors relative paths.
pub fn parse(file: &Path, bytes: &[u8], places: &Places) -> Result<Backend, ManifestError> {
    validate::parse(file, bytes, places)
}
