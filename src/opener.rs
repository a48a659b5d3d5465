//! Opening a file, a folder or a URL with the desktop's default application
//! (`xdg-open`), for the tray's items and the notifications' "Open log"
//! alike: its own module so that neither of them depends on the other.

/// Opens a file or folder with the desktop's default application, detached:
/// the child is reaped by a thread so the event loop never waits on it.
pub fn open_with_desktop(path: &std::path::Path) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    match std::process::Command::new(opener)
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            let path = path.to_owned();
            let reaper = std::thread::Builder::new()
                .name("berth-open".into())
                .spawn(move || match child.wait() {
                    Ok(status) if !status.success() => {
                        tracing::warn!(path = %path.display(), %status, "{opener} failed");
                    }
                    _ => {}
                });
            if let Err(e) = reaper {
                tracing::warn!(error = %e, "cannot start a thread to reap {opener}");
            }
        }
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot run {opener}"),
    }
}
