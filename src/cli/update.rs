//! `berth update ID [--check | --rollback]` (DESIGN.md "Updates"): the
//! verbs `update`, `check-update` and `rollback`, carried out by the running
//! launcher, whose job of ID is the only writer of ID's updates.
//!
//! Without a launcher, `--check` reads the backends folders itself, as `pin`
//! does, and asks the feed from here (nothing is installed), and `update`
//! installs from here while holding the launcher lock, so no launcher can
//! start and write beside it; the next start runs the new version. Exit 0
//! when the feed answered (an update is offered, or none), when the update
//! is installed (and running, if the backend was), or rolled back; 1 with
//! the reason in one line; 2 for `--rollback` without a launcher.

use std::path::Path;
use std::process::ExitCode;

use super::Exit;
use crate::client::{Client, ClientError};
use crate::control::socket::SocketError;
use crate::folders::Folders;
use crate::manifest::Backend;
use crate::trust::Policy;
use crate::update::apply::{self, Work};
use crate::update::install::Updates;
use crate::verb::Verb;
use crate::watch::{FolderState, Scope};
use anyhow::bail;

/// `verb` on `id` through the launcher at `socket`; without one, `--check`
/// and `update` are carried out here from `folders`.
pub fn run(
    socket: &Path,
    id: &str,
    verb: Verb,
    folders: &Folders,
    app: &crate::paths::AppName,
) -> anyhow::Result<ExitCode> {
    crate::manifest::BackendId::new(id).map_err(Exit::usage)?;
    let answer = match Client::at(socket).command(id, verb.clone()) {
        Err(ClientError::NoLauncher { .. }) if verb != Verb::Rollback => {
            return here(socket, id, verb == Verb::Update, folders, app);
        }
        Err(ClientError::NoLauncher { .. }) => {
            return Err(Exit::usage(format!(
                "{id}: no launcher running: start berth first (`berth run`); it keeps the version to roll back to"
            )));
        }
        other => other.map_err(super::client::failed)?,
    };
    let note = answer
        .note
        .unwrap_or_else(|| format!("{id}: {}", verb.word()));
    match (verb, answer.data) {
        (Verb::CheckUpdate, _) | (_, None) => println!("{note}"),
        (_, Some(status)) => println!("{note} ({})", status.state.as_str()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Without a launcher: the feed read (and with `install`, the update
/// installed under the launcher lock) from here.
fn here(
    socket: &Path,
    id: &str,
    install: bool,
    folders: &Folders,
    app: &crate::paths::AppName,
) -> anyhow::Result<ExitCode> {
    let _lock = match install {
        true => Some(
            crate::control::socket::hold_lock(socket).map_err(|e| match e {
                SocketError::AlreadyRunning { .. } => {
                    anyhow::anyhow!("{id}: a launcher is starting; ask again once it runs")
                }
                other => other.into(),
            })?,
        ),
        false => None,
    };
    let places = crate::manifest::Places::new(crate::paths::resources_dir(), app.clone());
    // The installed definition is the one `berth run` would use.
    let mut state = FolderState::new(folders.dirs.clone(), places.clone())
        .with_trust(std::sync::Arc::new(crate::trust::Trust::load(Policy::new(
            false, app,
        ))))
        .with_updates(Some(crate::paths::updates_dir(app)));
    state.reload(&Scope::Full { force: false });
    let Some(backend) = state.catalog().winner(id) else {
        bail!("{id}: no such backend in {}", shown(folders));
    };
    let Some(update) = &backend.update else {
        bail!(
            "{}: {id} has no update section: no feed to check",
            backend.file.display()
        );
    };
    let work = Work {
        id: backend.id.clone(),
        installed: backend.version.clone(),
        feed: update.feed.clone(),
        updates: Updates::of(app),
        places,
        // The feed's files are judged by the trusted keys whatever the
        // policy says.
        keys: Policy::new(false, app),
        install,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(apply::run(work));
    said(backend, report)
}

/// The report of work done here, as the launcher's reply would say it.
fn said(backend: &Backend, report: apply::Report) -> anyhow::Result<ExitCode> {
    match report.result {
        Err(why) => bail!("{why}"),
        Ok(Some(version)) => {
            println!(
                "{}: updated {} -> {version} (stopped)",
                backend.id, backend.version
            );
        }
        Ok(None) => {
            let line = report.read.map(|(_, line)| line).unwrap_or_default();
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn shown(folders: &Folders) -> String {
    let dirs: Vec<String> = folders
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    dirs.join(", ")
}
