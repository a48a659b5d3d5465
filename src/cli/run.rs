//! `berth run`: the launcher.
//!
//! The tray lives in a second executable, `berth-tray`, installed beside
//! `berth`: only it links the GTK stack (see [`crate::launcher::Frontend`]).
//! `berth run` without `--headless` becomes `berth-tray run` by exec (same
//! process, same arguments); without `berth-tray` it says so and runs
//! headless.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::launcher::{Frontend, LauncherError};
use crate::paths::TRAY_EXE;

pub fn run(
    args: super::RunArgs,
    app: &crate::paths::AppName,
    socket: PathBuf,
    frontend: Option<Frontend>,
) -> anyhow::Result<ExitCode> {
    if frontend.is_none() && !args.headless {
        exec_tray();
    }
    crate::launcher::run(args.options(app), socket, frontend).map_err(|e| match e {
        // A folder that does not exist is a usage error (exit 2).
        LauncherError::BackendsDir { .. } | LauncherError::NoBackendsDir(_) => {
            super::Exit::usage(e.to_string())
        }
        other => other.into(),
    })
}

/// Replaces this process with `berth-tray` and the same arguments; returns
/// only if that is impossible, after saying why in one line.
fn exec_tray() {
    let tray = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(TRAY_EXE)));
    let reason = match tray {
        Some(tray) if tray.is_file() => {
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt;
                let err = std::process::Command::new(&tray)
                    .args(std::env::args_os().skip(1))
                    .exec();
                format!("cannot run {}: {err}", tray.display())
            }
            #[cfg(not(unix))]
            {
                let _ = tray;
                format!("{TRAY_EXE} is not supported on this platform")
            }
        }
        Some(tray) => format!("{} is not installed", tray.display()),
        None => format!("cannot locate {TRAY_EXE}: the path of berth is unknown"),
    };
    eprintln!("berth: no tray: {reason}; running headless");
}
