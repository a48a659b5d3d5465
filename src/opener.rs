//! Opening a file, a folder or a URL with the desktop's default application
//! (`xdg-open`), for the tray's items, the notifications' "Open log" and the
//! manifests' `open` actions alike: its own module so that none of them
//! depends on another.
//!
//! What the tray set in berth's environment for its own GTK (`GDK_GL`,
//! `NO_AT_BRIDGE`, ...: `env_remove`) is removed for the opener: the
//! application it starts is the user's, and `NO_AT_BRIDGE=1` would hide it
//! from a screen reader.

use std::ffi::OsStr;
use std::path::Path;

/// Opens a file or folder with the desktop's default application, detached:
/// the child is reaped by a thread so the event loop never waits on it. A
/// failure is logged.
pub fn open_with_desktop(path: &Path, env_remove: &[impl AsRef<OsStr>]) {
    let shown = path.display().to_string();
    if let Err(e) = try_open_with_desktop(path.as_os_str(), &shown, env_remove) {
        tracing::warn!(path = %path.display(), error = %e, "cannot run the desktop's opener");
    }
}

/// Starts the desktop's opener (`xdg-open`, `open` on macOS) on `target`, a
/// path or a URL, detached: no stdio, reaped by a thread. Fails only when it
/// cannot be started (an `open` action reports that to whoever asked), or
/// when `target` starts with `-`: `xdg-open` takes no `--`, so such a
/// target would be read as one of its options. `shown` is how the target
/// appears in berth's log: an `open` action's URL as written, so a
/// `${token}` in it is never expanded into a log.
pub fn try_open_with_desktop(
    target: &OsStr,
    shown: &str,
    env_remove: &[impl AsRef<OsStr>],
) -> std::io::Result<()> {
    if target.as_encoded_bytes().starts_with(b"-") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a target starting with '-' would be an option of the opener",
        ));
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let mut cmd = std::process::Command::new(opener);
    for key in env_remove {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let shown = shown.to_owned();
    let reaper = std::thread::Builder::new()
        .name("berth-open".into())
        .spawn(move || match child.wait() {
            Ok(status) if !status.success() => {
                tracing::warn!(target = %shown, %status, "{opener} failed");
            }
            _ => {}
        });
    if let Err(e) = reaper {
        tracing::warn!(error = %e, "cannot start a thread to reap {opener}");
    }
    Ok(())
}
