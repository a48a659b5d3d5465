//! `berth run` with the tray: the tray's event loop owns the main thread, the
//! launcher (supervisor, watcher, socket, signals) runs on the runtime, and
//! two channels join them: tray clicks in, "the launcher has finished" out.
//!
//! Quit is one path for every source: the tray's Quit calls the launcher's
//! [`Quitter`], [`Standalone::run_until_quit`] stops every backend in parallel
//! (the tray meanwhile says "stopping"), then the exit signal ends the event
//! loop and `berth run` exits 0. SIGTERM/SIGINT take the same path, and the
//! launcher's `quitting` flag makes the tray say "stopping" for them too.

use std::process::ExitCode;

use tokio::sync::{mpsc, watch};

use super::{Quitter, Standalone};
use crate::status::Outcome;
use crate::supervisor::SupervisorHandle;
use crate::tray::{self, Click, Face, TrayInputs};

/// Runs the tray on this (the main) thread until the launcher has quit;
/// [`tray::probe`] must have succeeded on this thread. If the tray fails
/// later, berth carries on headless until a signal.
pub(super) fn run(runtime: &tokio::runtime::Runtime, launcher: Standalone, face: Face) -> ExitCode {
    let handle = launcher.handle();
    let quitter = launcher.quitter();
    let icon_dir = launcher.private_dir().join("tray-icon");
    let login_dirs = launcher.login_dirs();
    let quitting = launcher.quitting();
    let (exit_tx, exit_rx) = watch::channel(false);
    let (actions_tx, actions_rx) = mpsc::unbounded_channel();
    let launcher = runtime.spawn(async move {
        let code = launcher.run_until_quit().await;
        let _ = exit_tx.send(true);
        code
    });
    runtime.spawn(dispatch(actions_rx, handle.clone(), quitter));
    let (shown_tx, shown_rx) = watch::channel(false);
    runtime.spawn(watch_usage(shown_rx, handle.clone()));
    let inputs = TrayInputs {
        snapshots: handle.subscribe(),
        actions: actions_tx,
        quitting,
        exit: exit_rx,
        face,
        icon_dir,
        login_dirs,
        runtime: runtime.handle().clone(),
        shown: shown_tx,
    };
    if let Err(e) = tray::run(inputs) {
        tracing::error!(error = %e, "the tray failed; running headless");
    }
    runtime.block_on(launcher).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the launcher task failed");
        ExitCode::FAILURE
    })
}

/// Turns tray clicks into supervisor commands. Each command runs in its own
/// task so a slow stop never delays the next click. Open log / file / folder
/// were already handled by the tray itself.
async fn dispatch(
    mut actions: mpsc::UnboundedReceiver<Click>,
    handle: SupervisorHandle,
    quitter: Quitter,
) {
    while let Some(action) = actions.recv().await {
        let handle = handle.clone();
        match action {
            Click::Command(id, verb) => {
                tokio::spawn(async move {
                    let action = verb.word();
                    match handle.command(id.as_str(), verb).await {
                        Ok(Outcome::Done | Outcome::Reached(_)) => {
                            tracing::debug!(backend = %id, action, "done")
                        }
                        Ok(Outcome::Noop(note) | Outcome::DoneWith(note)) => {
                            tracing::info!(backend = %id, action, "{note}")
                        }
                        Err(e) => tracing::warn!(backend = %id, action, "{e}"),
                    }
                });
            }
            Click::Run(id, n) => {
                // The label the user saw: the manifest's action at that place.
                let label = handle
                    .snapshot()
                    .get(id.as_str())
                    .and_then(|b| b.actions.get(n).map(|a| a.label.clone()));
                if let Some(label) = label {
                    tokio::spawn(async move {
                        match handle.action(id.as_str(), &label).await {
                            Ok(ran) => {
                                tracing::info!(backend = %id, action = %label, ?ran, "action")
                            }
                            Err(e) => tracing::warn!(backend = %id, action = %label, "{e}"),
                        }
                    });
                }
            }
            Click::StartAll => {
                tokio::spawn(async move { handle.start_all().await });
            }
            Click::StopAll => {
                tokio::spawn(async move { handle.stop_all().await });
            }
            Click::Quit => quitter.quit(),
            Click::OpenLog(_)
            | Click::OpenFile(_)
            | Click::OpenFolder
            | Click::ToggleStartAtLogin => {}
        }
    }
}

/// Usage is sampled once a second while the panel shows a backend submenu
/// (its process line), never while the menu is closed.
async fn watch_usage(mut shown: watch::Receiver<bool>, handle: SupervisorHandle) {
    let mut on = false;
    while shown.changed().await.is_ok() {
        let now = *shown.borrow_and_update();
        if now != on {
            handle.watch_usage(now);
            on = now;
        }
    }
    if on {
        handle.watch_usage(false);
    }
}
