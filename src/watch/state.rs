//! The pure half of hot reload: what berth last read from each manifest file,
//! and the decision of which files to read again.
//!
//! Nothing here knows about notify. A reload is asked for a [`Scope`] (the
//! paths a debounced batch named, or the whole folder) and always looks at the
//! folder as it is *now*, never at what the events said happened: a file
//! deleted and recreated by an atomic-rename save is simply present, so it is
//! an edit, never a removal. Only files whose [`Fingerprint`] moved are parsed
//! again, so the cost of a reload follows the size of the change, not the size
//! of the folder (see `benches/reload.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::registry::{self, Catalog, FileRead, RegistryError};

/// A file read this soon after its last change may change again within the
/// same file-system timestamp tick (a jiffy, at most 10 ms on Linux) without
/// its fingerprint moving; such a read is "racy" and is not trusted later
/// (the same rule as git's racily-clean index entries).
const RACY_WINDOW: Duration = Duration::from_millis(50);

/// A cheap stand-in for a file's content: if none of these moved, the bytes
/// did not either (except for racy reads, see [`RACY_WINDOW`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    mtime_ns: i128,
    ctime_ns: i128,
    size: u64,
    inode: u64,
    device: u64,
}

impl Fingerprint {
    /// The fingerprint of a file's (followed) metadata.
    pub fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
            Self {
                mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
                ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
                size: meta.len(),
                inode: meta.ino(),
                device: meta.dev(),
            }
        }
        #[cfg(not(unix))]
        {
            let mtime_ns = meta.modified().map_or(0, |t| unix_ns(t));
            Self {
                mtime_ns,
                ctime_ns: mtime_ns,
                size: meta.len(),
                inode: 0,
                device: 0,
            }
        }
    }

    /// The later of the change and modification times.
    fn newest_ns(&self) -> i128 {
        self.mtime_ns.max(self.ctime_ns)
    }
}

fn unix_ns(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// What a reload looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Only these paths (a debounced batch): each is read again if its
    /// fingerprint moved, added if new, dropped if gone. Files not named are
    /// left alone even if the listing shows them new or gone: their own events
    /// are still being debounced (a half-written file must not be read early).
    Paths(BTreeSet<PathBuf>),
    /// Every file of the folder (start-up, event overflow, watcher error, the
    /// folder reappearing). `force` re-reads files whose fingerprint did not
    /// move too (SIGHUP: the user asked for a reload).
    Full { force: bool },
}

/// What one reload did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reload {
    /// Files parsed and validated again (new ones included).
    pub reread: usize,
    /// Files no longer in the folder.
    pub dropped: usize,
    /// The catalog differs from the one before: it must be applied.
    pub changed: bool,
}

/// Why a reload could not look at the folder. The state is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The folder does not exist (deleted, or being replaced). Nothing counts
    /// as removed until it exists again.
    #[error("{}: the backends folder is missing", dir.display())]
    FolderMissing { dir: PathBuf },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// One manifest file as last read.
#[derive(Debug, Clone)]
struct Tracked {
    /// `None` when the file could not be stat'ed: always read again.
    fingerprint: Option<Fingerprint>,
    /// Read within [`RACY_WINDOW`] of its last change: read again next time it
    /// is in scope even if the fingerprint did not move.
    racy: bool,
    read: FileRead,
}

/// The backends folder as berth last read it, and the catalog resolved from it.
#[derive(Debug)]
pub struct FolderState {
    dir: PathBuf,
    resources: PathBuf,
    berth: semver::Version,
    files: BTreeMap<PathBuf, Tracked>,
    catalog: Catalog,
}

impl FolderState {
    /// An empty state for `dir` (nothing read yet: the first reload should be
    /// `Scope::Full`). `resources` is what `${resources}` expands to.
    pub fn new(dir: PathBuf, resources: PathBuf) -> Self {
        Self {
            dir,
            resources,
            berth: crate::berth_version(),
            files: BTreeMap::new(),
            catalog: Catalog::default(),
        }
    }

    /// The backends folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The catalog resolved by the last successful reload.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// How many manifest files are known.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Brings the state up to date with the folder for `scope`, and resolves a
    /// new catalog when anything moved. On error the state is unchanged.
    pub fn reload(&mut self, scope: &Scope) -> Result<Reload, ReloadError> {
        let listed = match registry::list(&self.dir) {
            Ok(listed) => listed,
            Err(RegistryError::ReadDir { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                return Err(ReloadError::FolderMissing {
                    dir: self.dir.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let in_scope = |path: &Path| match scope {
            Scope::Full { .. } => true,
            Scope::Paths(paths) => paths.contains(path),
        };
        let force = matches!(scope, Scope::Full { force: true });

        let mut out = Reload::default();
        let present: BTreeSet<&Path> = listed.iter().map(PathBuf::as_path).collect();
        let before = self.files.len();
        self.files
            .retain(|path, _| present.contains(path.as_path()) || !in_scope(path));
        out.dropped = before - self.files.len();

        for path in listed.iter().filter(|p| in_scope(p)) {
            match self.refresh(path, force) {
                Refresh::Unchanged => {}
                Refresh::Reread => out.reread += 1,
                Refresh::Gone => {
                    if self.files.remove(path).is_some() {
                        out.dropped += 1;
                    }
                }
            }
        }

        if out.reread == 0 && out.dropped == 0 {
            return Ok(out);
        }
        let reads: Vec<FileRead> = self.files.values().map(|t| t.read.clone()).collect();
        let next = registry::resolve(&reads, &self.catalog, &self.berth);
        out.changed = next != self.catalog;
        self.catalog = next;
        Ok(out)
    }

    /// Reads `path` again if its fingerprint moved (or `force`).
    fn refresh(&mut self, path: &Path, force: bool) -> Refresh {
        // The clock is read before the stat, and the stat done before the
        // read: a write racing with us then shows as a moved fingerprint or a
        // racy read, never as a silently stale one.
        let read_at = unix_ns(SystemTime::now());
        let fingerprint = match std::fs::metadata(path) {
            Ok(meta) => Some(Fingerprint::of(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Refresh::Gone,
            // Unreadable metadata: the read below reports the error itself.
            Err(_) => None,
        };
        let previous = self.files.get(path);
        if let Some(t) = previous
            && !force
            && !t.racy
            && fingerprint.is_some()
            && t.fingerprint == fingerprint
        {
            return Refresh::Unchanged;
        }
        let current = crate::manifest::load(path, &self.resources).map(Arc::new);
        let last_good = match &current {
            Ok(backend) => Some(Arc::clone(backend)),
            Err(_) => previous.and_then(|t| t.read.last_good.clone()),
        };
        let racy =
            fingerprint.is_none_or(|f| f.newest_ns() + RACY_WINDOW.as_nanos() as i128 >= read_at);
        tracing::debug!(
            file = %path.display(),
            ok = current.is_ok(),
            racy,
            "manifest read"
        );
        self.files.insert(
            path.to_path_buf(),
            Tracked {
                fingerprint,
                racy,
                read: FileRead {
                    file: path.to_path_buf(),
                    current,
                    last_good,
                },
            },
        );
        Refresh::Reread
    }
}

enum Refresh {
    Unchanged,
    Reread,
    Gone,
}
