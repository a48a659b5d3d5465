//! Where berth's files live: backends folder, logs, control socket, resources.
//!
//! Every function reads the environment at call time so tests can point berth
//! at a temporary folder with `XDG_*` variables.

use std::env;
use std::path::{Path, PathBuf};

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

/// `${XDG_STATE_HOME:-$HOME/.local/state}/berth`.
pub fn state_dir() -> PathBuf {
    env_path("XDG_STATE_HOME")
        .unwrap_or_else(|| home().join(".local/state"))
        .join("berth")
}

/// Folder of the backend logs: `<state>/logs`.
pub fn log_dir() -> PathBuf {
    state_dir().join("logs")
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
pub fn berth_log() -> PathBuf {
    state_dir().join("berth.log")
}

/// The default control socket: `$XDG_RUNTIME_DIR/berth/berth.sock`, else
/// `/tmp/berth-$UID/berth.sock`.
pub fn default_socket() -> PathBuf {
    runtime_dir().join("berth.sock")
}

/// Where berth runs: `$XDG_RUNTIME_DIR/berth`, else `/tmp/berth-$UID` (the
/// control socket's folder).
fn runtime_dir() -> PathBuf {
    match env_path("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("berth"),
        None => {
            #[cfg(unix)]
            let uid = nix::unistd::getuid().as_raw();
            #[cfg(not(unix))]
            let uid = 0;
            env::temp_dir().join(format!("berth-{uid}"))
        }
    }
}

/// `${tmp}` of a sandboxed backend: `<runtime>/tmp/<id>`.
pub fn sandbox_tmp(id: &str) -> PathBuf {
    runtime_dir().join("tmp").join(id)
}

/// `${data}` of a sandboxed backend: `<state>/data/<id>`.
pub fn sandbox_data(id: &str) -> PathBuf {
    state_dir().join("data").join(id)
}

/// `$XDG_CONFIG_HOME/berth` (or `~/.config/berth`).
pub fn config_dir() -> PathBuf {
    env_path("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home().join(".config"))
        .join("berth")
}

/// The executable that carries the tray, installed beside `berth`.
pub const TRAY_EXE: &str = "berth-tray";

/// `$XDG_CONFIG_HOME/berth/backends` (or `~/.config/berth/backends`): the
/// user's backends folder.
pub fn config_backends_dir() -> PathBuf {
    config_dir().join("backends")
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

/// The start-at-login entry: `$XDG_CONFIG_HOME/autostart/berth.desktop`
/// (XDG Autostart spec).
pub fn autostart_file() -> PathBuf {
    env_path("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home().join(".config"))
        .join("autostart")
        .join("berth.desktop")
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
    fn shown_folds_dots() {
        assert_eq!(
            shown(Path::new("/app/backends/../python/./dist/backend")),
            "/app/python/dist/backend"
        );
        assert_eq!(shown(Path::new("../x")), "../x");
        assert_eq!(shown(Path::new("/a/b")), "/a/b");
    }
}
