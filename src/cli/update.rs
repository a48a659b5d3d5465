//! `berth update ID --check`: what the feed of ID's winning manifest offers
//! for this platform (DESIGN.md "Updates"). It reads the backends folders
//! itself, as `pin` does, so it needs no launcher: nothing is installed.
//!
//! Exit 0 when the feed answered (an update is offered, or none); 1 when
//! the feed cannot be read or trusted, with the reason in one line.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use url::Url;

use crate::folders::Folders;
use crate::manifest::platform::Platform;
use crate::trust::{Policy, Trust};
use crate::update::check::{self, Get, Installed, Offer};
use crate::update::install::Updates;
use crate::watch::{FolderState, Scope};

/// The network, through the download side's bounded reads.
struct Network;

impl Get for Network {
    async fn get(&self, url: &Url, max_bytes: u64) -> Result<Vec<u8>, String> {
        crate::update::fetch::get(url, max_bytes)
            .await
            .map_err(|e| e.to_string())
    }
}

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
    let installed = &backend.version;
    // Say why a higher version in the feed is not offered.
    let skipped = if bad.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = bad.iter().map(ToString::to_string).collect();
        format!("; not offered, rolled back before: {}", list.join(", "))
    };
    match offer {
        Offer::Available(release) => {
            println!(
                "{id}: {} available (installed {installed})",
                release.version
            );
        }
        Offer::UpToDate(Some(latest)) => {
            println!(
                "{id}: up to date (installed {installed}, the feed's latest for {platform} is {latest}{skipped})"
            );
        }
        Offer::UpToDate(None) => {
            println!(
                "{id}: up to date (installed {installed}; the feed has no release for {platform}{skipped})"
            );
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
