//! `berth update ID [--check | --rollback]` (DESIGN.md "Updates"): the
//! verbs `update`, `check-update` and `rollback`, carried out by the running
//! launcher, whose job of ID is the only writer of ID's updates.
//!
//! `--check` without a launcher reads the backends folders itself, as `pin`
//! does, and asks the feed from here: nothing is installed. Exit 0 when the
//! feed answered (an update is offered, or none), when the update is
//! installed (and running, if the backend was), or rolled back; 1 with the
//! reason in one line; 2 without a launcher (but `--check`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::Exit;
use crate::client::{Client, ClientError};
use crate::folders::Folders;
use crate::manifest::platform::Platform;
use crate::trust::{Policy, Trust};
use crate::update::check::{self, Installed};
use crate::update::install::Updates;
use crate::update::network::Network;
use crate::verb::Verb;
use crate::watch::{FolderState, Scope};
use anyhow::bail;

/// `verb` on `id` through the launcher at `socket`; `--check` without one
/// is answered here from `folders`.
pub fn run(
    socket: &Path,
    id: &str,
    verb: Verb,
    folders: &Folders,
    app: &crate::paths::AppName,
) -> anyhow::Result<ExitCode> {
    crate::manifest::BackendId::new(id).map_err(Exit::usage)?;
    let answer = match Client::at(socket).command(id, verb.clone()) {
        Err(ClientError::NoLauncher { .. }) if verb == Verb::CheckUpdate => {
            return check(id, folders, app);
        }
        Err(ClientError::NoLauncher { .. }) => {
            return Err(Exit::usage(format!(
                "{id}: no launcher running: start berth first (`berth run`); its job of {id} installs updates"
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

/// `--check` without a launcher: the feed read from here.
pub fn check(id: &str, folders: &Folders, app: &crate::paths::AppName) -> anyhow::Result<ExitCode> {
    let places = crate::manifest::Places::new(crate::paths::resources_dir(), app.clone());
    // The installed definition is the one `berth run` would use; the feed's
    // files are judged by the trusted keys whatever the policy says.
    let trust = Arc::new(Trust::load(Policy::new(false, app)));
    let mut state = FolderState::new(folders.dirs.clone(), places)
        .with_trust(trust.clone())
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
    let platform = Platform::current().keys()[0].clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let bad = Updates::of(app).bad(&backend.id);
    let installed = Installed {
        id: &backend.id,
        version: &backend.version,
        bad: &bad,
    };
    let offer = runtime.block_on(check::check(
        installed,
        &update.feed,
        &trust,
        &platform,
        &Network,
    ))?;
    println!("{}", offer.line(installed, &platform));
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
