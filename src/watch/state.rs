//! The pure half of hot reload: what berth last read from each manifest file,
//! and the decision of which files to read again.
//!
//! Nothing here knows about notify. A reload is asked for a [`Scope`] (the
//! paths a debounced batch named, or the whole folder) and always looks at the
//! folder as it is *now*, never at what the events said happened: a file
//! deleted and recreated by an atomic-rename save is simply present, so it is
//! an edit, never a removal. Only files whose [`Fingerprint`] moved are parsed
//! again, and only the ids they had or have are resolved again (an index of
//! files by id avoids scanning the folder), so the cost of a reload follows
//! the size of the change, not the size of the folder (see
//! `benches/reload.rs`).
//!
//! A manifest's fingerprint includes its signature file's (`X.yaml.minisig`):
//! a signature appearing, changing or vanishing re-reads and re-judges the
//! manifest, even when the manifest's own bytes did not move.
//!
//! The state spans every backends folder of the run: files are keyed by
//! their absolute path, and ids compete across folders by the same-id rule
//! ([`registry::resolve`]). Each folder is read on its own: one that is
//! missing, not a folder or unreadable is a [`FolderProblem`] and keeps its
//! files as they were, while the other folders are read as usual.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::manifest::{Backend, BackendId, Places};
use crate::registry::{self, Catalog, Entry, FileRead, RegistryError};
use crate::trust::{self, Trust};

/// A file read this soon after its last change may change again within the
/// same file-system timestamp tick (a jiffy, at most 10 ms on Linux) without
/// its fingerprint moving; such a read is "racy" and is not trusted later
/// (the same rule as git's racily-clean index entries).
const RACY_WINDOW: Duration = Duration::from_millis(50);

/// A cheap stand-in for a file's content: if none of these moved, the bytes
/// did not either (except for racy reads, see `RACY_WINDOW`).
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

/// Why a reload could not look at one folder. Its files are left as they
/// were (nothing counts as removed until the folder can be read again); the
/// other folders are read as usual.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FolderProblem {
    /// The folder does not exist (deleted, being replaced, not made yet).
    #[error("{}: the backends folder is missing", dir.display())]
    Missing { dir: PathBuf },
    /// Something else than a folder has its name (a file).
    #[error("{}: the backends folder is not a folder", dir.display())]
    NotAFolder { dir: PathBuf },
    /// It could not be listed (permissions).
    #[error("{}: cannot read the backends folder: {reason}", dir.display())]
    Unreadable { dir: PathBuf, reason: String },
}

impl FolderProblem {
    /// The folder it is about.
    pub fn dir(&self) -> &Path {
        match self {
            Self::Missing { dir } | Self::NotAFolder { dir } | Self::Unreadable { dir, .. } => dir,
        }
    }

    /// Missing or replaced by a file: it may come back as a folder (the
    /// watcher looks for it).
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Missing { .. } | Self::NotAFolder { .. })
    }

    /// What reading `dir` failed with.
    fn of(dir: &Path, error: &io::Error) -> Self {
        let dir = dir.to_path_buf();
        match error.kind() {
            io::ErrorKind::NotFound => Self::Missing { dir },
            io::ErrorKind::NotADirectory => Self::NotAFolder { dir },
            _ => Self::Unreadable {
                dir,
                reason: error.to_string(),
            },
        }
    }
}

/// The signature file of a manifest, as stat'ed beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigStat {
    Absent,
    Seen(Fingerprint),
    /// Could not be stat'ed: never counts as unchanged.
    Unknown,
}

impl SigStat {
    fn of(manifest: &Path) -> Self {
        match std::fs::metadata(trust::signature_path(manifest)) {
            Ok(meta) => Self::Seen(Fingerprint::of(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::Absent,
            Err(_) => Self::Unknown,
        }
    }

    fn newest_ns(&self) -> Option<i128> {
        match self {
            Self::Seen(f) => Some(f.newest_ns()),
            Self::Absent | Self::Unknown => None,
        }
    }
}

/// One manifest file as last read.
#[derive(Debug, Clone)]
struct Tracked {
    /// `None` when the file could not be stat'ed: always read again.
    fingerprint: Option<Fingerprint>,
    /// Its signature file's, part of the manifest's fingerprint.
    signature: SigStat,
    /// Read within [`RACY_WINDOW`] of its last change: read again next time it
    /// is in scope even if the fingerprint did not move.
    racy: bool,
    read: FileRead,
}

/// How one manifest file is read: [`FileRead::load`] for the launcher and
/// `check`; `pin` passes one that accepts a file whose only fault is its
/// digest. Everything else (listing, fingerprints, resolution) is shared.
pub type Loader = fn(&Path, &Places, &Trust) -> FileRead;

/// The launcher's read of a manifest: its bytes once, signature judged, parsed.
fn load_file(path: &Path, places: &Places, trust: &Trust) -> FileRead {
    FileRead::load(path.to_path_buf(), path, places, trust)
}

/// The backends folders as berth last read them, and the catalog resolved
/// from all of them.
#[derive(Debug)]
pub struct FolderState {
    /// Absolute, each once (see [`crate::folders`]).
    dirs: Vec<PathBuf>,
    /// The updates folder ([`crate::update::install`]), read with the
    /// backends folders: its `ID.yaml` links are installed updates
    /// ([`FileRead::load_installed`]). Absent until the first install: not
    /// a problem then.
    updates: Option<PathBuf>,
    /// The folders the last look at them could not read.
    problems: BTreeMap<PathBuf, FolderProblem>,
    resources: Places,
    berth: semver::Version,
    files: BTreeMap<PathBuf, Tracked>,
    /// The files of each id (current definition, else last good one): the
    /// files to resolve again when one of them changes, without a scan.
    by_id: HashMap<BackendId, BTreeSet<PathBuf>>,
    /// The files resolved per id ([`registry::resolve`]), before the
    /// dependency check.
    catalog: Catalog,
    /// `catalog` with the dependency check applied
    /// ([`registry::dependencies::apply`]), when any winner has a
    /// `depends_on`; `None`: `catalog` is in force as it is.
    checked: Option<Catalog>,
    /// Whose signatures count, and whether one is required.
    trust: Arc<Trust>,
    load: Loader,
}

impl FolderState {
    /// An empty state for `dirs` (nothing read yet: the first reload should
    /// be `Scope::Full`). `resources` is what `${resources}` expands to, and
    /// the instance whose folders a sandbox gets (a bare path: berth's own).
    pub fn new(dirs: Vec<PathBuf>, resources: impl Into<Places>) -> Self {
        Self {
            dirs,
            updates: None,
            problems: BTreeMap::new(),
            resources: resources.into(),
            berth: crate::berth_version(),
            files: BTreeMap::new(),
            by_id: HashMap::new(),
            catalog: Catalog::default(),
            checked: None,
            trust: Arc::new(Trust::none()),
            load: load_file,
        }
    }

    /// Reads the updates folder `dir` with the backends folders (absolute,
    /// as they are).
    pub fn with_updates(mut self, dir: Option<PathBuf>) -> Self {
        self.updates = dir.filter(|d| !self.dirs.contains(d));
        self
    }

    /// The updates folder, if it is read.
    pub fn updates(&self) -> Option<&Path> {
        self.updates.as_deref()
    }

    /// Every folder read: the backends folders, then the updates folder.
    pub fn all_dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().chain(&self.updates).cloned().collect()
    }

    /// A state for the same folders, keys and reader with nothing read yet.
    pub fn blank(&self) -> Self {
        Self::new(self.dirs.clone(), self.resources.clone())
            .with_updates(self.updates.clone())
            .with_trust(self.trust.clone())
            .with_loader(self.load)
    }

    /// Reads each file with `load` instead of [`FileRead::load`].
    pub fn with_loader(mut self, load: Loader) -> Self {
        self.load = load;
        self
    }

    /// Whose signatures count (reloaded by a forced rescan).
    pub fn trust(&self) -> &Arc<Trust> {
        &self.trust
    }

    /// Judges signatures with `trust` from the next read on (the default
    /// trusts no key and requires nothing).
    pub fn with_trust(mut self, trust: Arc<Trust>) -> Self {
        self.trust = trust;
        self
    }

    /// The backends folders.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The folders that could not be read when last looked at, in the order
    /// of [`FolderState::dirs`].
    /// The updates folder missing is none: the first install makes it.
    pub fn problems(&self) -> Vec<FolderProblem> {
        let updates = self
            .updates
            .as_ref()
            .and_then(|d| self.problems.get(d))
            .filter(|p| !matches!(p, FolderProblem::Missing { .. }));
        self.dirs
            .iter()
            .filter_map(|d| self.problems.get(d))
            .chain(updates)
            .cloned()
            .collect()
    }

    /// What `${resources}` expands to, and the instance.
    pub fn resources(&self) -> &Places {
        &self.resources
    }

    /// The catalog resolved by the last successful reload, dependencies
    /// checked: the one in force.
    pub fn catalog(&self) -> &Catalog {
        self.checked.as_ref().unwrap_or(&self.catalog)
    }

    /// How many manifest files are known.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Brings the state up to date with the folders for `scope`, and
    /// resolves a new catalog when anything moved. A folder that cannot be
    /// read keeps its files as they were and is listed in
    /// [`FolderState::problems`].
    pub fn reload(&mut self, scope: &Scope) -> Reload {
        match scope {
            Scope::Full { force } => self.reload_all(*force),
            Scope::Paths(paths) => self.reload_paths(paths),
        }
    }

    /// Lists every folder and refreshes every file: O(files) by nature.
    fn reload_all(&mut self, force: bool) -> Reload {
        if force {
            // SIGHUP: the trusted keys may have changed too.
            let trust = Trust::load(self.trust.policy().clone());
            for problem in trust.problems() {
                tracing::warn!("{problem}");
            }
            // A last good definition vouched for by a key that is gone is
            // no longer good: the file is judged by what it says now.
            for tracked in self.files.values_mut() {
                let read = &mut tracked.read;
                if read.last_good.as_ref().is_some_and(|good| {
                    !trust.still_vouches(&self.trust, good.signed_by.as_deref())
                }) {
                    read.last_good = None;
                }
            }
            self.trust = Arc::new(trust);
        }
        let mut out = Reload::default();
        for dir in self.all_dirs() {
            let Some(listed) = self.list(&dir) else {
                continue;
            };
            let present: BTreeSet<&Path> = listed.iter().map(PathBuf::as_path).collect();
            let gone: Vec<PathBuf> = self
                .files
                .keys()
                .filter(|path| path.parent() == Some(dir.as_path()))
                .filter(|path| !present.contains(path.as_path()))
                .cloned()
                .collect();
            for path in &gone {
                out.dropped += usize::from(self.untrack(path));
            }
            for path in &listed {
                match self.refresh(path, force) {
                    Refresh::Unchanged => {}
                    Refresh::Reread => out.reread += 1,
                    Refresh::Gone => out.dropped += usize::from(self.untrack(path)),
                }
            }
        }
        if out.reread == 0 && out.dropped == 0 {
            return out;
        }
        let reads: Vec<FileRead> = self.files.values().map(|t| t.read.clone()).collect();
        let next = registry::resolve(&reads, &self.catalog, &self.berth);
        out.changed = next != self.catalog;
        if out.changed {
            let before = std::mem::replace(&mut self.catalog, next);
            let in_force = self.checked.take().unwrap_or(before);
            self.checked = registry::dependencies::apply(&self.catalog, &|file| {
                definition(&in_force.entries, file)
            });
        }
        out
    }

    /// Refreshes only `paths`, then resolves again only the ids those files
    /// had or have now: the work follows the change, not the folders.
    fn reload_paths(&mut self, paths: &BTreeSet<PathBuf>) -> Reload {
        // A folder deleted (or replaced by something else): nothing in it
        // counts as removed until it is back.
        let mut absent: BTreeSet<&Path> = BTreeSet::new();
        for dir in paths.iter().filter_map(|p| p.parent()) {
            if !absent.contains(dir) && !dir.is_dir() && self.list(dir).is_none() {
                absent.insert(dir);
            }
        }
        let mut out = Reload::default();
        let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
        for path in paths {
            if path.parent().is_none_or(|dir| absent.contains(dir)) {
                continue;
            }
            let outcome = if is_manifest_file(path) {
                self.refresh(path, false)
            } else {
                Refresh::Gone
            };
            match outcome {
                Refresh::Unchanged => {}
                Refresh::Reread => {
                    out.reread += 1;
                    touched.insert(path.clone());
                }
                Refresh::Gone => {
                    if self.untrack(path) {
                        out.dropped += 1;
                        touched.insert(path.clone());
                    }
                }
            }
        }
        if touched.is_empty() {
            return out;
        }
        out.changed = self.resolve_around(&touched);
        out
    }

    /// Re-resolves the files of every id that `touched` files had (in the
    /// catalog) or have (in their new read), plus the touched files, and
    /// splices the result into the catalog. Resolution is per id, so this is
    /// the same catalog a full resolve would give (a unit test checks it);
    /// the cost follows the files of those ids, not the folder.
    /// Returns whether the catalog changed.
    fn resolve_around(&mut self, touched: &BTreeSet<PathBuf>) -> bool {
        let mut subset: BTreeSet<PathBuf> = touched.clone();
        for path in touched {
            let old = self.catalog_index(path).map(|i| &self.catalog.entries[i]);
            let new = self.files.get(path).map(|t| &t.read);
            let ids = [old.and_then(Entry::id), new.and_then(effective_id)];
            for id in ids.into_iter().flatten() {
                subset.extend(self.by_id.get(id).into_iter().flatten().cloned());
            }
        }
        let reads: Vec<FileRead> = subset
            .iter()
            .filter_map(|path| self.files.get(path))
            .map(|t| t.read.clone())
            .collect();
        let fresh = registry::resolve(&reads, &self.catalog, &self.berth).entries;
        let mut stale: Vec<usize> = subset
            .iter()
            .filter_map(|path| self.catalog_index(path))
            .collect();
        stale.sort_unstable();
        let unchanged = stale.len() == fresh.len()
            && stale
                .iter()
                .zip(&fresh)
                .all(|(&i, e)| self.catalog.entries[i] == *e);
        if unchanged {
            return false;
        }
        let in_force = self.checked.take();
        let entries = &mut self.catalog.entries;
        let mut replaced = Vec::with_capacity(stale.len());
        for &i in stale.iter().rev() {
            replaced.push(entries.remove(i));
        }
        for entry in fresh {
            let at = entries.partition_point(|e| catalog_order(e) < catalog_order(&entry));
            entries.insert(at, entry);
        }
        // What was in force before: the checked catalog if there was one,
        // else the resolved one, whose entries of the touched ids were just
        // replaced (the others did not move).
        let resolved = &self.catalog;
        self.checked = registry::dependencies::apply(resolved, &|file| match &in_force {
            Some(in_force) => definition(&in_force.entries, file),
            None => definition(&replaced, file).or_else(|| definition(&resolved.entries, file)),
        });
        true
    }

    /// Where `path` is in the catalog (sorted by file name, as `resolve` sorts).
    fn catalog_index(&self, path: &Path) -> Option<usize> {
        let key = (path.file_name(), path);
        let entries = &self.catalog.entries;
        let at = entries.partition_point(|e| catalog_order(e) < key);
        entries.get(at).filter(|e| e.file == path).map(|_| at)
    }

    /// Forgets `path`; `false` if it was not known.
    fn untrack(&mut self, path: &Path) -> bool {
        let Some(old) = self.files.remove(path) else {
            return false;
        };
        if let Some(id) = effective_id(&old.read)
            && let Some(files) = self.by_id.get_mut(id)
        {
            files.remove(path);
            if files.is_empty() {
                self.by_id.remove(id);
            }
        }
        true
    }

    /// Records a new read of `path`, replacing the previous one.
    fn track(&mut self, path: &Path, tracked: Tracked) {
        self.untrack(path);
        if let Some(id) = effective_id(&tracked.read) {
            self.by_id
                .entry(id.clone())
                .or_default()
                .insert(path.to_path_buf());
        }
        self.files.insert(path.to_path_buf(), tracked);
    }

    /// The manifests of `dir` (one of [`FolderState::dirs`]), or `None` when
    /// it cannot be listed; either way its entry in `problems` is updated.
    fn list(&mut self, dir: &Path) -> Option<Vec<PathBuf>> {
        match registry::list(dir) {
            Ok(listed) => {
                self.problems.remove(dir);
                Some(listed)
            }
            Err(RegistryError::ReadDir { source, .. }) => {
                self.problems
                    .insert(dir.to_path_buf(), FolderProblem::of(dir, &source));
                None
            }
        }
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
        let installed = self.is_installed(path);
        // An installed update's signature is beside its real file.
        let signature = if installed {
            SigStat::of(&std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
        } else {
            SigStat::of(path)
        };
        let previous = self.files.get(path);
        if let Some(t) = previous
            && !force
            && !t.racy
            && fingerprint.is_some()
            && t.fingerprint == fingerprint
            && signature != SigStat::Unknown
            && t.signature == signature
        {
            return Refresh::Unchanged;
        }
        let mut read = if installed {
            FileRead::load_installed(path.to_path_buf(), &self.resources, &self.trust)
        } else {
            (self.load)(path, &self.resources, &self.trust)
        };
        if read.last_good.is_none() {
            read.last_good = previous.and_then(|t| t.read.last_good.clone());
        }
        let newest = fingerprint.map(|f| f.newest_ns().max(signature.newest_ns().unwrap_or(0)));
        let racy = newest.is_none_or(|n| n + RACY_WINDOW.as_nanos() as i128 >= read_at);
        tracing::debug!(
            file = %path.display(),
            ok = read.current.is_ok(),
            untrusted = read.untrusted.is_some(),
            racy,
            "manifest read"
        );
        self.track(
            path,
            Tracked {
                fingerprint,
                signature,
                racy,
                read,
            },
        );
        Refresh::Reread
    }
}

impl FolderState {
    /// Is `path` in the updates folder (an installed update)?
    fn is_installed(&self, path: &Path) -> bool {
        self.updates.is_some() && path.parent() == self.updates.as_deref()
    }
}

/// The id a read stands for: its current definition's, else its last good one's.
fn effective_id(read: &FileRead) -> Option<&BackendId> {
    read.current
        .as_ref()
        .ok()
        .or(read.last_good.as_ref())
        .map(|b| &b.id)
}

/// The definition `entries` hold for `file`.
fn definition(entries: &[Entry], file: &Path) -> Option<Arc<Backend>> {
    entries
        .iter()
        .find(|e| e.file == file)
        .and_then(|e| e.backend.clone())
}

/// The order of catalog entries (the one `registry::resolve` produces).
fn catalog_order(e: &Entry) -> (Option<&std::ffi::OsStr>, &Path) {
    (e.file.file_name(), &e.file)
}

/// Would `registry::list` list this path? (The same rule, for one path:
/// a manifest name, and a regular file once symlinks are followed.)
fn is_manifest_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(registry::is_manifest_name)
        && std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

enum Refresh {
    Unchanged,
    Reread,
    Gone,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod installed_tests;
