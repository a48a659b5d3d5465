//! The board: every manifest file's status, shared by the jobs and the
//! handle, and the snapshot built from it.
//!
//! Each job writes only its own slot, under one short-lived lock, then
//! publishes; `apply` writes the manifest-derived fields. The board is the
//! single place a status lives, so two writers never overwrite each other's
//! stale copy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::job::Control;
use super::{BackendStatus, Snapshot, State};
use crate::manifest::Backend;
use crate::paths;
use crate::registry::{Entry, Standing};

/// One job's place on the board.
pub struct Slot {
    /// Distinguishes a re-added id from the job being removed.
    pub generation: u64,
    pub ctl: mpsc::UnboundedSender<Control>,
    /// The latest definition (what the next start uses).
    pub def: Arc<Backend>,
    /// The definition the live process was started with.
    pub running_def: Option<Arc<Backend>>,
    pub removing: bool,
    /// Error from the manifest file (a broken edit of a running backend).
    pub manifest_error: Option<String>,
    /// Error from running it (checksum, not found, not ready).
    pub run_error: Option<String>,
    pub status: BackendStatus,
}

#[derive(Default)]
pub struct Board {
    pub jobs: BTreeMap<String, Slot>,
    /// Files that have no job: superseded, incompatible, invalid.
    pub others: Vec<BackendStatus>,
    pub shut_down: bool,
    pub next_generation: u64,
}

impl Board {
    /// Every file, sorted like the tray.
    pub fn snapshot(&self) -> Snapshot {
        let mut first: Vec<BackendStatus> = Vec::new();
        let mut rest: Vec<BackendStatus> = Vec::new();
        for slot in self.jobs.values() {
            let mut s = slot.status.clone();
            s.error = match (&slot.run_error, &slot.manifest_error) {
                (Some(r), Some(m)) => Some(format!("{r}; {m}")),
                (r, m) => r.clone().or_else(|| m.clone()),
            };
            s.ready = s.state == State::Running;
            if let Some(at) = s.detail.started_at.filter(|_| s.state.has_process()) {
                s.uptime_s = Some(at.elapsed().as_secs());
            }
            first.push(s);
        }
        for s in &self.others {
            let stands_in = matches!(s.state, State::Incompatible | State::Untrusted)
                && s.id.as_ref().is_some_and(|id| !self.jobs.contains_key(id));
            if stands_in {
                first.push(s.clone());
            } else {
                rest.push(s.clone());
            }
        }
        first.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        rest.sort_by_key(|a| file_name(&a.file));
        first.extend(rest);
        Snapshot { backends: first }
    }
}

fn file_name(file: &str) -> String {
    PathBuf::from(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_owned())
}

/// A fresh status for a job's definition.
pub fn job_status(def: &Backend, log_dir: &std::path::Path) -> BackendStatus {
    let mut s = blank(&def.file);
    fill_def(&mut s, def);
    s.state = if def.executable.is_some() {
        State::Stopped
    } else {
        State::Unsupported
    };
    s.detail.log = Some(paths::backend_log(log_dir, def.id.as_str()));
    s
}

/// The manifest-derived fields.
pub fn fill_def(s: &mut BackendStatus, def: &Backend) {
    s.id = Some(def.id.to_string());
    s.name = Some(def.name.clone());
    s.version = Some(def.version.to_string());
    s.file = def.file.display().to_string();
    s.detail.sha256 = def.executable.as_ref().map(|e| e.sha256);
    s.signed_by.clone_from(&def.signed_by);
    if !s.state.has_process() {
        s.path = def
            .executable
            .as_ref()
            .and_then(|e| e.resolve().or(e.candidates.first().map(|p| p.as_path())))
            .map(crate::paths::shown);
    }
}

fn blank(file: &std::path::Path) -> BackendStatus {
    BackendStatus::new(file.display().to_string(), State::Stopped)
}

/// The status of a file that has no job.
pub fn other_status(entry: &Entry) -> BackendStatus {
    let mut s = blank(&entry.file);
    if let Some(def) = &entry.backend {
        fill_def(&mut s, def);
        s.file = entry.file.display().to_string();
    }
    s.error = entry.error.clone();
    s.state = match &entry.standing {
        Standing::Superseded { by } => {
            if s.error.is_none() {
                s.error = Some(format!("superseded by {}", by.display()));
            }
            State::Superseded
        }
        Standing::Incompatible { reason } => {
            if s.error.is_none() {
                s.error = Some(reason.clone());
            }
            State::Incompatible
        }
        Standing::Untrusted { reason } => {
            if s.error.is_none() {
                s.error = Some(reason.clone());
            }
            // Untrusted text is shown, never credited to a signer.
            s.signed_by = None;
            State::Untrusted
        }
        Standing::Invalid | Standing::Winner => State::Invalid,
    };
    s
}
