//! Reading the backends folders while the launcher runs: the folder watcher,
//! and full rescans on request (the socket's `rescan`, [`super::Handle::rescan`],
//! `berth run`'s SIGHUP).
//!
//! The folder watcher ([`crate::watch`]) arms its watches, reads the folder
//! once and applies it, then follows changes on its own task. A rescan asks
//! it to read every file again and is answered once the result is applied.
//! If the folder cannot be watched at all (inotify limits), berth still
//! runs: the folder is then read only on those requests.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::supervisor::SupervisorHandle;
use crate::watch;

/// A request to read the backends folder again; the answer says whether it could.
pub(crate) type RescanRequest = oneshot::Sender<Result<(), String>>;

/// The backends folders and how their files are read.
#[derive(Clone)]
pub(crate) struct Folder {
    pub dirs: Vec<PathBuf>,
    pub resources: crate::manifest::Places,
    pub trust: Arc<crate::trust::Trust>,
    /// The updates folder, read with them (`None` in tests).
    pub updates: Option<PathBuf>,
}

/// Without a watcher: reads the folders through the same incremental
/// [`watch::FolderState`] the watcher uses (on a blocking thread), so a broken
/// edit keeps its last good definition here too, and applies the catalog.
/// `Err` names the folders that could not be read (the others are applied).
async fn rescan(state: &mut watch::FolderState, handle: &SupervisorHandle) -> Result<(), String> {
    let blank = state.blank();
    let mut owned = std::mem::replace(state, blank);
    let owned = tokio::task::spawn_blocking(move || {
        owned.reload(&watch::Scope::Full { force: true });
        owned
    })
    .await
    .map_err(|e| format!("scan task failed: {e}"))?;
    *state = owned;
    tracing::info!(files = state.len(), "backends folders loaded");
    handle.apply(state.catalog().clone()).await;
    let problems = state.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(watch::RescanError::Folders(problems).to_string())
    }
}

/// Arms the folder watcher, reads the folder once and applies it; the
/// returned task answers rescan `requests` until their senders are gone.
/// Aborting the task drops the watcher, which stops it.
pub(crate) async fn spawn_reloader(
    folder: Folder,
    handle: SupervisorHandle,
    mut requests: mpsc::Receiver<RescanRequest>,
) -> JoinHandle<()> {
    let mut config = watch::WatchConfig::new(folder.dirs.clone(), folder.resources.clone());
    config.trust = folder.trust.clone();
    config.updates.clone_from(&folder.updates);
    let mut folder = watch::FolderState::new(folder.dirs, folder.resources)
        .with_trust(folder.trust)
        .with_updates(folder.updates);
    let watcher = match watch::spawn(config, handle.clone()).await {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::error!(error = %e, "not watching the backends folders; SIGHUP or `rescan` reads them again");
            if let Err(e) = rescan(&mut folder, &handle).await {
                tracing::error!(error = %e, "first scan of the backends folders");
            }
            None
        }
    };
    tokio::spawn(async move {
        while let Some(reply) = requests.recv().await {
            let result = match &watcher {
                Some(watcher) => watcher.rescan_and_wait().await.map_err(|e| e.to_string()),
                None => rescan(&mut folder, &handle).await,
            };
            if let Err(e) = &result {
                tracing::error!(error = %e, "rescan failed");
            }
            let _ = reply.send(result);
        }
    })
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod reload_tests;
