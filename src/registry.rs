//! The registry: a folder of manifests, resolved into one winning file per id.
//!
//! A backend is identified by its id. Among the files that carry an id, the
//! highest `version` whose `requires` accepts this berth wins; the others are
//! superseded. Same id and same version twice is an error on both files,
//! except that a file that already won keeps winning (a clashing copy dropped
//! beside a running backend must never stop it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::manifest::{Backend, BackendId, ManifestError};

/// Where one manifest file stands after resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// This file defines its id: the supervisor runs a job for it.
    Winner,
    /// Another file with the same id wins.
    Superseded { by: PathBuf },
    /// `requires` does not accept this berth (and no compatible file won).
    Incompatible { reason: String },
    /// The file has no usable definition (`error` says why).
    Invalid,
}

/// One manifest file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Absolute path.
    pub file: PathBuf,
    /// The definition in force: the file's current one if it is valid, else the
    /// last good one seen during this run (hot reload), else none.
    pub backend: Option<Arc<Backend>>,
    /// Why the file's current text is not used, in one line (parse or
    /// validation error, duplicate id and version).
    pub error: Option<String>,
    pub standing: Standing,
}

impl Entry {
    pub fn id(&self) -> Option<&BackendId> {
        self.backend.as_ref().map(|b| &b.id)
    }
}

/// Every manifest file of a folder, sorted by file name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub entries: Vec<Entry>,
}

impl Catalog {
    /// The winning entries: one per id.
    pub fn winners(&self) -> impl Iterator<Item = (&Entry, &Arc<Backend>)> {
        self.entries
            .iter()
            .filter_map(|e| match (&e.standing, &e.backend) {
                (Standing::Winner, Some(b)) => Some((e, b)),
                _ => None,
            })
    }

    pub fn winner(&self, id: &str) -> Option<&Arc<Backend>> {
        self.winners().map(|(_, b)| b).find(|b| b.id.as_str() == id)
    }
}

/// Errors reading the folder itself (a bad file is never an error here: it is
/// an [`Entry`] with [`Standing::Invalid`]).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{}: {source}", dir.display())]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Is `name` a manifest file name (`*.yaml` / `*.yml`, not hidden)?
pub fn is_manifest_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// The latest read of one manifest file, as kept by the loader or watcher.
#[derive(Debug, Clone)]
pub struct FileRead {
    /// Absolute path.
    pub file: PathBuf,
    /// What the file says now.
    pub current: Result<Arc<Backend>, ManifestError>,
    /// The last valid definition this file had during this run (hot reload
    /// keeps it in force while the file is broken).
    pub last_good: Option<Arc<Backend>>,
}

/// The manifest files directly in `dir` (absolute paths, sorted by name):
/// `*.yaml` / `*.yml`, not hidden, not folders. (Issue #2 fills this in.)
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    let _ = dir;
    todo!("registry::list")
}

/// Decides where every file stands. `previous` is the catalog in force before
/// (empty at start-up): a file that won there keeps winning a same-version
/// clash. (Issue #2 fills this in.)
pub fn resolve(files: &[FileRead], previous: &Catalog, berth: &semver::Version) -> Catalog {
    let _ = (files, previous, berth);
    todo!("registry::resolve")
}

/// Loads every manifest of `dir` and resolves winners: `berth check` and the
/// launcher's first load.
pub fn scan(dir: &Path, resources: &Path) -> Result<Catalog, RegistryError> {
    let reads: Vec<FileRead> = list(dir)?
        .into_iter()
        .map(|file| FileRead {
            current: crate::manifest::load(&file, resources).map(Arc::new),
            last_good: None,
            file,
        })
        .collect();
    Ok(resolve(
        &reads,
        &Catalog::default(),
        &crate::berth_version(),
    ))
}
