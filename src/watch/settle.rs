//! What the watcher shows of the folder: valid reads at once, errors only
//! once their file has stayed unchanged for [`ERROR_DELAY`], and each newly
//! broken file logged once (WARN) with its repair (INFO).
//!
//! The debounce alone cannot tell a writer that pauses mid-file from a file
//! saved broken; waiting a second more before believing an error can, and
//! costs nothing for valid saves (DESIGN.md "Hot reload", v2). The
//! [`FolderState`](super::FolderState) stays the truth; this only decides
//! which view of it is applied, so it keeps no parsing of its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::registry::{Catalog, Entry};

/// How long a file must stay unchanged before its error is shown.
pub const ERROR_DELAY: Duration = Duration::from_secs(1);

/// The last applied view and the errors already logged.
#[derive(Debug, Default)]
pub struct Settle {
    applied: Option<Catalog>,
    logged: HashMap<PathBuf, String>,
    /// The start-up scan is over: fresh errors wait from now on.
    started: bool,
}

/// How long ago `file` was last modified (zero if in the future or unknown).
fn age(file: &Path, now: SystemTime) -> Duration {
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or(Duration::ZERO)
}

impl Settle {
    /// The view of `current` to apply now, and how long until a withheld
    /// error is due (then call again). A fresh error is replaced by what was
    /// applied for that file before (its last good definition), or left out
    /// when the file is new.
    pub fn view(&self, current: &Catalog, now: SystemTime) -> (Catalog, Option<Duration>) {
        let mut again: Option<Duration> = None;
        // The start-up scan shows every file as it is: from the moment the
        // socket answers, a file is listed with its true state (an unsigned
        // one `untrusted`), never missing because it is under a second old.
        // A writer caught mid-file then is corrected by its next event.
        let start_up = !self.started;
        let mut entries = Vec::with_capacity(current.entries.len());
        for entry in &current.entries {
            let Some(_) = &entry.error else {
                entries.push(entry.clone());
                continue;
            };
            let age = age(&entry.file, now);
            let before = self.previous(&entry.file);
            let shown_already = before.is_some_and(|b| b.error == entry.error);
            if start_up || age >= ERROR_DELAY || shown_already {
                entries.push(entry.clone());
                continue;
            }
            let wait = ERROR_DELAY - age;
            again = Some(again.map_or(wait, |a| a.min(wait)));
            if let Some(before) = before {
                entries.push(before.clone());
            }
        }
        (Catalog { entries }, again)
    }

    /// Ends the start-up scan (also when it found nothing to apply).
    pub fn end_start_up(&mut self) {
        self.started = true;
    }

    fn previous(&self, file: &Path) -> Option<&Entry> {
        self.applied
            .as_ref()
            .and_then(|c| c.entries.iter().find(|e| e.file == file))
    }

    /// Whether `view` differs from what was applied last.
    pub fn is_new(&self, view: &Catalog) -> bool {
        self.applied.as_ref() != Some(view)
    }

    /// Records `view` as applied and logs each newly broken file once at
    /// WARN and each repaired one at INFO.
    pub fn applied(&mut self, view: Catalog) {
        for entry in &view.entries {
            match (&entry.error, self.logged.get(&entry.file)) {
                (Some(error), Some(logged)) if logged == error => {}
                (Some(error), _) => {
                    tracing::warn!(file = %entry.file.display(), "manifest invalid: {error}");
                    self.logged.insert(entry.file.clone(), error.clone());
                }
                (None, Some(_)) => {
                    tracing::info!(file = %entry.file.display(), "manifest repaired");
                    self.logged.remove(&entry.file);
                }
                (None, None) => {}
            }
        }
        self.logged
            .retain(|file, _| view.entries.iter().any(|e| &e.file == file));
        self.applied = Some(view);
        self.started = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Standing;

    fn entry(file: &Path, error: Option<&str>) -> Entry {
        Entry {
            file: file.to_path_buf(),
            backend: None,
            error: error.map(str::to_owned),
            standing: Standing::Invalid,
            dependency_error: None,
        }
    }

    #[test]
    fn a_fresh_error_waits_and_an_old_one_shows() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, "id: [").unwrap();
        let broken = Catalog {
            entries: vec![entry(&file, Some("line 1: bad"))],
        };
        let mut settle = Settle::default();
        // At start-up every file shows as it is.
        let (view, again) = settle.view(&broken, SystemTime::now());
        assert_eq!((&view, again), (&broken, None));
        // Once something was applied, a fresh error waits.
        settle.applied(Catalog::default());
        let (view, again) = settle.view(&broken, SystemTime::now());
        assert!(
            view.entries.is_empty(),
            "a new broken file is not shown yet"
        );
        assert!(again.is_some_and(|d| d <= ERROR_DELAY));
        let later = SystemTime::now() + ERROR_DELAY;
        let (view, again) = settle.view(&broken, later);
        assert_eq!(view, broken);
        assert_eq!(again, None);
    }
}
