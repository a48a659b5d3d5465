//! `berth run`: the launcher.
//!
//! The tray lives in a second executable, `berth-tray`, installed beside
//! `berth`: only it links the GTK stack (see [`crate::launcher::Frontend`]).
//! `berth run` without `--headless` becomes `berth-tray run` by exec (same
//! process, same arguments); without `berth-tray` it says so and runs
//! headless.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::embed::StartError;
use crate::launcher::{Frontend, LauncherError};
use crate::paths::TRAY_EXE;

pub fn run(
    mut args: super::RunArgs,
    app: &crate::paths::AppName,
    socket: PathBuf,
    frontend: Option<Frontend>,
) -> anyhow::Result<ExitCode> {
    // The parent as this process first sees it: `berth-tray` is handed the
    // same pid, so a parent that dies during the exec is not missed.
    let observed =
        (args.with_parent && args.parent_pid.is_none()).then(crate::launcher::parent::observe);
    if observed.is_some() {
        args.parent_pid = observed;
    }
    if frontend.is_none() && !args.headless {
        exec_tray(observed);
    }
    crate::launcher::run(args.options(app), socket, frontend).map_err(|e| match e {
        // A folder that does not exist is a usage error (exit 2).
        LauncherError::Start(StartError::BackendsDir { .. } | StartError::NoBackendsDir(_))
        | LauncherError::Parent(_) => super::Exit::usage(e.to_string()),
        other => other.into(),
    })
}

/// Replaces this process with `berth-tray` and the same arguments (plus
/// `--parent-pid` for the parent observed here); returns only if that is
/// impossible, after saying why in one line.
fn exec_tray(parent: Option<i32>) {
    let tray = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(TRAY_EXE)));
    let reason = match tray {
        Some(tray) if tray.is_file() => {
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt;
                let mut cmd = std::process::Command::new(&tray);
                cmd.args(std::env::args_os().skip(1));
                if let Some(pid) = parent {
                    cmd.arg("--parent-pid").arg(pid.to_string());
                }
                let err = cmd.exec();
                format!("cannot run {}: {err}", tray.display())
            }
            #[cfg(not(unix))]
            {
                let _ = (tray, parent);
                format!("{TRAY_EXE} is not supported on this platform")
            }
        }
        Some(tray) => format!("{} is not installed", tray.display()),
        None => format!("cannot locate {TRAY_EXE}: the path of berth is unknown"),
    };
    eprintln!("berth: no tray: {reason}; running headless");
}
