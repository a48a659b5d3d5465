//! The board: the last published status of every manifest file, and the
//! snapshot built from it.
//!
//! Each job is the only writer of its own status and always writes it whole
//! ([`Board::set`]); `apply` writes the files that have no job (`others`);
//! the metrics task writes only the usage overlay, which a job's new pid
//! (or none) clears for the old one, so a figure never outlives its process. Nobody reads a job's state
//! back from here: the job owns it.

use std::collections::{BTreeMap, HashMap};

use crate::registry::{Entry, Standing};
use crate::status::{BackendStatus, Snapshot, State};

/// CPU percent and resident bytes of one process group.
pub type Usage = (f64, u64);

#[derive(Default)]
pub struct Board {
    /// id -> (job generation, its last published status).
    jobs: BTreeMap<String, (u64, BackendStatus)>,
    /// Files that have no job: superseded, incompatible, invalid.
    pub others: Vec<BackendStatus>,
    /// Usage per process group, from the metrics task.
    pub usage: HashMap<i32, Usage>,
}

impl Board {
    /// A job's new status. A job of an older generation (an id removed and
    /// added again while the old job still stops) never overwrites a newer.
    pub fn set(&mut self, id: &str, generation: u64, status: BackendStatus) {
        match self.jobs.get_mut(id) {
            Some((g, s)) if *g <= generation => {
                if let Some(old) = s.pid.filter(|&p| Some(p) != status.pid) {
                    self.usage.remove(&(old as i32));
                }
                *g = generation;
                *s = status;
            }
            Some(_) => {}
            None => {
                self.jobs.insert(id.to_owned(), (generation, status));
            }
        }
    }

    /// Drops a job's status, if it is still that generation's.
    pub fn remove(&mut self, id: &str, generation: u64) {
        if self.jobs.get(id).is_some_and(|(g, _)| *g == generation) {
            self.jobs.remove(id);
        }
    }

    /// Every file, sorted like the tray.
    pub fn snapshot(&self) -> Snapshot {
        let mut first: Vec<BackendStatus> = Vec::new();
        let mut rest: Vec<BackendStatus> = Vec::new();
        for (_, status) in self.jobs.values() {
            let mut s = status.clone();
            if let Some(pid) = s.pid.filter(|_| s.state.has_process()) {
                if let Some(&(cpu, rss)) = self.usage.get(&(pid as i32)) {
                    s.cpu_percent = Some(cpu);
                    s.rss_bytes = Some(rss);
                }
                if let Some(at) = s.detail.started_at {
                    s.uptime_s = Some(at.elapsed().as_secs());
                }
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
        rest.sort_by(|a, b| crate::human::file_name(&a.file).cmp(crate::human::file_name(&b.file)));
        first.extend(rest);
        Snapshot { backends: first }
    }
}

/// The fields a status takes from the definition alone, for a job's status
/// and a file without a job alike.
pub fn fill_def(s: &mut BackendStatus, def: &crate::manifest::Backend) {
    s.id = Some(def.id.to_string());
    s.name = Some(def.name.clone());
    s.version = Some(def.version.to_string());
    s.detail.sha256 = def.executable.as_ref().map(|e| e.sha256);
    s.signed_by.clone_from(&def.signed_by);
    s.depends_on = def
        .depends_on
        .iter()
        .map(|(id, d)| (id.to_string(), d.condition))
        .collect();
    // What the job learns (checks, kept versions) is laid over this.
    s.update = def
        .update
        .as_ref()
        .map(|_| crate::status::UpdateStatus::default());
}

/// Where the executable would be found now (else its first candidate), as
/// shown to people.
pub fn shown_path(def: &crate::manifest::Backend) -> Option<String> {
    def.executable
        .as_ref()
        .and_then(|e| e.resolve().or(e.candidates.first().map(|p| p.as_path())))
        .map(crate::paths::shown)
}

fn blank(file: &std::path::Path) -> BackendStatus {
    BackendStatus::new(file.display().to_string(), State::Stopped)
}

/// The status of a file that has no job.
pub fn other_status(entry: &Entry) -> BackendStatus {
    let mut s = blank(&entry.file);
    if let Some(def) = &entry.backend {
        fill_def(&mut s, def);
        s.sandbox = def.sandbox.as_ref().map(crate::sandbox::status_of);
        s.path = shown_path(def);
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
