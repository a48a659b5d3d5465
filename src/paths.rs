//! Where berth's files live: backends folder, logs, control socket, resources.
//!
//! Every function reads the environment at call time so tests can point berth
//! at a temporary folder with `XDG_*` variables. Every per-user path belongs
//! to one instance, named by [`AppName`] (`--app NAME`): an app that ships
//! berth gets its own socket, logs, data and backends, apart from every
//! other instance. The name is passed as a value to each function here.

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};

/// The name of a berth instance: `--app NAME` (or `BERTH_APP`), an id like a
/// backend's, `[a-z0-9][a-z0-9-]{0,62}`; `berth` by default. It names the
/// instance's folders, its autostart entry and its notifications.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppName(String);

/// The name of the default instance.
pub const DEFAULT_APP: &str = "berth";

/// Whether `text` is an id: 1 to 63 characters of `a-z`, `0-9` and `-`,
/// starting with a letter or digit (backend ids and app names alike).
pub fn is_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    let word = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.first().is_some_and(word)
        && bytes.len() <= 63
        && bytes.iter().all(|b| word(b) || *b == b'-')
}

impl AppName {
    /// Checks the name's syntax; the error is one line.
    pub fn new(name: &str) -> Result<Self, String> {
        if is_id(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "invalid app name {name:?}: expected 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `berth` itself, not an app's instance.
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_APP
    }
}

impl Default for AppName {
    fn default() -> Self {
        Self(DEFAULT_APP.to_owned())
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for AppName {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Self::new(text)
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `$HOME` (`/` when unset or relative).
pub fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

/// `${XDG_STATE_HOME:-$HOME/.local/state}/NAME`.
pub fn state_dir(app: &AppName) -> PathBuf {
    env_path("XDG_STATE_HOME")
        .unwrap_or_else(|| home().join(".local/state"))
        .join(app.as_str())
}

/// Folder of the backend logs: `<state>/logs`.
pub fn log_dir(app: &AppName) -> PathBuf {
    state_dir(app).join("logs")
}

/// Creates `dir` (and its missing parents) readable by this user only, and
/// makes it so when an earlier berth left it open to others: logs hold
/// what backends print, which may be private (issue #23, point 10).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let meta = std::fs::symlink_metadata(dir)?;
        if meta.is_dir() && meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// The log file of one backend.
pub fn backend_log(log_dir: &Path, id: &str) -> PathBuf {
    log_dir.join(format!("{id}.log"))
}

/// berth's own log: `<state>/berth.log`.
pub fn berth_log(app: &AppName) -> PathBuf {
    state_dir(app).join("berth.log")
}

/// The default control socket: `$XDG_RUNTIME_DIR/NAME/berth.sock`, else
/// `/tmp/NAME-$UID/berth.sock`.
pub fn default_socket(app: &AppName) -> PathBuf {
    runtime_dir(app).join("berth.sock")
}

/// Where the instance runs: `$XDG_RUNTIME_DIR/NAME`, else `/tmp/NAME-$UID`
/// (the control socket's folder).
fn runtime_dir(app: &AppName) -> PathBuf {
    match env_path("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join(app.as_str()),
        None => {
            #[cfg(unix)]
            let uid = nix::unistd::getuid().as_raw();
            #[cfg(not(unix))]
            let uid = 0;
            env::temp_dir().join(format!("{app}-{uid}"))
        }
    }
}

/// `${tmp}` of a sandboxed backend: `<runtime>/tmp/<id>`.
pub fn sandbox_tmp(app: &AppName, id: &str) -> PathBuf {
    runtime_dir(app).join("tmp").join(id)
}

/// `${data}` of a sandboxed backend: `<state>/data/<id>`.
pub fn sandbox_data(app: &AppName, id: &str) -> PathBuf {
    state_dir(app).join("data").join(id)
}

/// `$XDG_CONFIG_HOME/NAME` (or `~/.config/NAME`).
pub fn config_dir(app: &AppName) -> PathBuf {
    env_path("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home().join(".config"))
        .join(app.as_str())
}

/// The user's trusted keys: `$XDG_CONFIG_HOME/NAME/trusted`.
pub fn trusted_dir(app: &AppName) -> PathBuf {
    config_dir(app).join("trusted")
}

/// The executable that carries the tray, installed beside `berth`.
pub const TRAY_EXE: &str = "berth-tray";

/// `$XDG_CONFIG_HOME/NAME/backends` (or `~/.config/NAME/backends`): the
/// user's backends folder.
pub fn config_backends_dir(app: &AppName) -> PathBuf {
    config_dir(app).join("backends")
}

/// `$XDG_DATA_HOME/NAME/updates` (or `~/.local/share/NAME/updates`): the
/// installed updates of backends (DESIGN.md, "Updates").
pub fn updates_dir(app: &AppName) -> PathBuf {
    env_path("XDG_DATA_HOME")
        .unwrap_or_else(|| home().join(".local/share"))
        .join(app.as_str())
        .join("updates")
}

/// The folder of the berth binary: the real file (`/proc/self/exe`), so
/// `/usr/bin/berth`, a symlink, finds `/usr/lib/berth`.
pub fn install_dir() -> PathBuf {
    env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The shipped manifests, `backends/` beside the berth binary, when they
/// exist (`/usr/lib/berth/backends` in the Debian package).
pub fn installed_backends_dir() -> Option<PathBuf> {
    Some(install_dir().join("backends")).filter(|d| d.is_dir())
}

/// The installed JSON Schema (`/usr/share/berth/backend.schema.json` for
/// `/usr/lib/berth/berth`), when it exists.
pub fn installed_schema() -> Option<PathBuf> {
    let path = install_dir().join("../../share/berth/backend.schema.json");
    Some(PathBuf::from(shown(&path))).filter(|p| p.is_file())
}

/// The start-at-login entry: `$XDG_CONFIG_HOME/autostart/NAME.desktop`
/// (XDG Autostart spec).
pub fn autostart_file(app: &AppName) -> PathBuf {
    env_path("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home().join(".config"))
        .join("autostart")
        .join(format!("{app}.desktop"))
}

/// Makes `path` absolute against the current directory without touching the
/// file system (the path may not exist yet).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What `${resources}` expands to: `BERTH_RESOURCES`, else `resources/` beside
/// the berth binary (`../Resources` inside a macOS bundle).
pub fn resources_dir() -> PathBuf {
    if let Some(dir) = env_path("BERTH_RESOURCES") {
        return dir;
    }
    let exe_dir = install_dir();
    if cfg!(target_os = "macos") && exe_dir.ends_with("Contents/MacOS") {
        exe_dir.join("../Resources")
    } else {
        exe_dir.join("resources")
    }
}

/// `path` as shown to people: `.` and `..` folded away lexically
/// (`/app/backends/../python/dist/backend` shows as `/app/python/dist/backend`).
/// For display only: berth opens the path as written, since a `..` after a
/// symbolic link does not mean the same folder to the kernel.
pub fn shown(path: &Path) -> String {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(part);
                }
            }
            other => out.push(other),
        }
    }
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_ids() {
        assert_eq!(AppName::default().as_str(), "berth");
        assert!(AppName::default().is_default());
        for good in ["acme", "a", "my-app-2", &"x".repeat(63)] {
            assert_eq!(AppName::new(good).unwrap().as_str(), good);
        }
        for bad in ["", "-a", "Acme", "a/b", "a.b", "..", &"x".repeat(64)] {
            let err = AppName::new(bad).unwrap_err();
            assert!(err.starts_with("invalid app name"), "{err}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn shown_folds_dots() {
        assert_eq!(
            shown(Path::new("/app/backends/../python/./dist/backend")),
            "/app/python/dist/backend"
        );
        assert_eq!(shown(Path::new("../x")), "../x");
        assert_eq!(shown(Path::new("/a/b")), "/a/b");
    }
}
