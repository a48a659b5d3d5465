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

use crate::manifest::BackendId;
use crate::registry::{self, Catalog, Entry, FileRead, RegistryError};

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
        match scope {
            Scope::Full { force } => self.reload_all(*force),
            Scope::Paths(paths) => self.reload_paths(paths),
        }
    }

    /// Lists the folder and refreshes every file: O(files) by nature.
    fn reload_all(&mut self, force: bool) -> Result<Reload, ReloadError> {
        let listed = self.list()?;
        let mut out = Reload::default();
        let present: BTreeSet<&Path> = listed.iter().map(PathBuf::as_path).collect();
        let before = self.files.len();
        self.files
            .retain(|path, _| present.contains(path.as_path()));
        out.dropped = before - self.files.len();
        for path in &listed {
            match self.refresh(path, force) {
                Refresh::Unchanged => {}
                Refresh::Reread => out.reread += 1,
                Refresh::Gone => out.dropped += usize::from(self.files.remove(path).is_some()),
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

    /// Refreshes only `paths`, then resolves again only the ids those files
    /// had or have now: the work follows the change, not the folder.
    fn reload_paths(&mut self, paths: &BTreeSet<PathBuf>) -> Result<Reload, ReloadError> {
        if !self.dir.is_dir() {
            // Deleted (or replaced by something else): nothing counts as
            // removed until the folder is back.
            self.list()?;
        }
        let mut out = Reload::default();
        let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
        for path in paths {
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
                    if self.files.remove(path).is_some() {
                        out.dropped += 1;
                        touched.insert(path.clone());
                    }
                }
            }
        }
        if touched.is_empty() {
            return Ok(out);
        }
        out.changed = self.resolve_around(&touched);
        Ok(out)
    }

    /// Re-resolves the files of every id that `touched` files had (in the
    /// catalog) or have (in their new read), plus the touched files, and
    /// splices the result into the catalog. Resolution is per id, so this is
    /// the same catalog a full resolve would give (a unit test checks it).
    /// Returns whether the catalog changed.
    fn resolve_around(&mut self, touched: &BTreeSet<PathBuf>) -> bool {
        let mut ids: BTreeSet<BackendId> = BTreeSet::new();
        for path in touched {
            let key = (path.file_name(), path.as_path());
            let entries = &self.catalog.entries;
            let at = entries.partition_point(|e| catalog_order(e) < key);
            let old = entries.get(at).filter(|e| &e.file == path);
            if let Some(id) = old.and_then(Entry::id) {
                ids.insert(id.clone());
            }
        }
        for path in touched {
            if let Some(id) = self.files.get(path).and_then(|t| effective_id(&t.read)) {
                ids.insert(id.clone());
            }
        }
        // Every file is directly in the folder, so its name identifies it;
        // comparing names is much cheaper than ordering whole paths, and this
        // runs once per file of the folder.
        let names: Vec<&std::ffi::OsStr> = touched.iter().filter_map(|p| p.file_name()).collect();
        let in_subset = |file: &Path, id: Option<&BackendId>| {
            id.is_some_and(|id| ids.contains(id))
                || file.file_name().is_some_and(|n| names.contains(&n))
        };
        let reads: Vec<FileRead> = self
            .files
            .values()
            .filter(|t| in_subset(&t.read.file, effective_id(&t.read)))
            .map(|t| t.read.clone())
            .collect();
        let fresh = registry::resolve(&reads, &self.catalog, &self.berth).entries;
        let stale: Vec<Entry> = self
            .catalog
            .entries
            .iter()
            .filter(|e| in_subset(&e.file, e.id()))
            .cloned()
            .collect();
        if stale == fresh {
            return false;
        }
        let entries = &mut self.catalog.entries;
        entries.retain(|e| !in_subset(&e.file, e.id()));
        for entry in fresh {
            let at = entries.partition_point(|e| catalog_order(e) < catalog_order(&entry));
            entries.insert(at, entry);
        }
        true
    }

    fn list(&self) -> Result<Vec<PathBuf>, ReloadError> {
        match registry::list(&self.dir) {
            Ok(listed) => Ok(listed),
            Err(RegistryError::ReadDir { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                Err(ReloadError::FolderMissing {
                    dir: self.dir.clone(),
                })
            }
            Err(e) => Err(e.into()),
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

/// The id a read stands for: its current definition's, else its last good one's.
fn effective_id(read: &FileRead) -> Option<&BackendId> {
    read.current
        .as_ref()
        .ok()
        .or(read.last_good.as_ref())
        .map(|b| &b.id)
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
mod tests {
    use super::*;
    use crate::registry::Standing;

    fn manifest(id: &str, version: &str) -> String {
        format!(
            "id: {id}\nname: Backend {id}\nversion: {version}\nexecutable:\n  linux:\n    path: ./{id}\n    sha256: {}\n",
            "0".repeat(64)
        )
    }

    /// Writes files, then waits out the racy window so fingerprints are trusted.
    fn write_settled(dir: &Path, files: &[(&str, String)]) {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(20));
    }

    fn paths(dir: &Path, names: &[&str]) -> Scope {
        Scope::Paths(names.iter().map(|n| dir.join(n)).collect())
    }

    fn state(dir: &Path) -> FolderState {
        FolderState::new(dir.to_path_buf(), dir.join("resources"))
    }

    fn winner_version(s: &FolderState, id: &str) -> Option<String> {
        s.catalog().winner(id).map(|b| b.version.to_string())
    }

    #[test]
    fn only_moved_fingerprints_are_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_settled(
            dir,
            &[
                ("a.yaml", manifest("a", "1.0.0")),
                ("b.yaml", manifest("b", "1.0.0")),
            ],
        );
        let mut s = state(dir);
        let r = s.reload(&Scope::Full { force: false }).unwrap();
        assert_eq!((r.reread, r.dropped, r.changed), (2, 0, true));
        assert_eq!(s.catalog().winners().count(), 2);

        // Nothing moved: nothing read, nothing to apply.
        let r = s.reload(&Scope::Full { force: false }).unwrap();
        assert_eq!(r, Reload::default());
        let r = s.reload(&paths(dir, &["a.yaml", "b.yaml"])).unwrap();
        assert_eq!(r, Reload::default());

        // A forced rescan reads everything; same content, same catalog.
        let r = s.reload(&Scope::Full { force: true }).unwrap();
        assert_eq!((r.reread, r.changed), (2, false));

        write_settled(dir, &[("a.yaml", manifest("a", "1.1.0"))]);
        let r = s.reload(&paths(dir, &["a.yaml", "b.yaml"])).unwrap();
        assert_eq!((r.reread, r.changed), (1, true));
        assert_eq!(winner_version(&s, "a").as_deref(), Some("1.1.0"));
    }

    #[test]
    fn a_batch_only_looks_at_the_paths_it_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_settled(dir, &[("a.yaml", manifest("a", "1.0.0"))]);
        let mut s = state(dir);
        s.reload(&Scope::Full { force: false }).unwrap();

        // A half-written new file and a file being replaced (gone for now),
        // both with their events still pending: the batch for x.yaml must
        // neither read the first nor drop the second.
        std::fs::write(dir.join("new.yaml"), "id: new\nname: [").unwrap();
        std::fs::remove_file(dir.join("a.yaml")).unwrap();
        write_settled(dir, &[("x.yaml", manifest("x", "1.0.0"))]);
        let r = s.reload(&paths(dir, &["x.yaml"])).unwrap();
        assert_eq!((r.reread, r.dropped), (1, 0));
        assert!(s.catalog().winner("a").is_some(), "a dropped too early");
        assert!(s.catalog().entries.iter().all(|e| e.error.is_none()));

        // Their own batch comes.
        let r = s.reload(&paths(dir, &["a.yaml"])).unwrap();
        assert_eq!((r.reread, r.dropped, r.changed), (0, 1, true));
        assert!(s.catalog().winner("a").is_none());
        // Names that are not manifests never count, even when named.
        std::fs::write(dir.join("4913"), "x").unwrap();
        let r = s.reload(&paths(dir, &["4913", "x.yaml~"])).unwrap();
        assert_eq!(r, Reload::default());
    }

    #[test]
    fn a_broken_edit_keeps_the_last_good_definition() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_settled(dir, &[("a.yaml", manifest("a", "1.0.0"))]);
        let mut s = state(dir);
        s.reload(&Scope::Full { force: false }).unwrap();

        write_settled(dir, &[("a.yaml", "id: a\nname: [unclosed\n".to_owned())]);
        let r = s.reload(&paths(dir, &["a.yaml"])).unwrap();
        assert!(r.changed);
        let entry = &s.catalog().entries[0];
        assert_eq!(entry.standing, Standing::Winner);
        assert_eq!(winner_version(&s, "a").as_deref(), Some("1.0.0"));
        let error = entry.error.as_deref().unwrap();
        assert!(error.contains("a.yaml"), "{error}");

        // Broken differently: still the same last good definition.
        write_settled(dir, &[("a.yaml", "id: a\nargz: []\n".to_owned())]);
        s.reload(&paths(dir, &["a.yaml"])).unwrap();
        assert_eq!(winner_version(&s, "a").as_deref(), Some("1.0.0"));

        write_settled(dir, &[("a.yaml", manifest("a", "2.0.0"))]);
        s.reload(&paths(dir, &["a.yaml"])).unwrap();
        assert_eq!(s.catalog().entries[0].error, None);
        assert_eq!(winner_version(&s, "a").as_deref(), Some("2.0.0"));
    }

    #[test]
    fn a_missing_folder_changes_nothing_until_it_is_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("backends");
        std::fs::create_dir(&dir).unwrap();
        write_settled(
            &dir,
            &[
                ("a.yaml", manifest("a", "1.0.0")),
                ("b.yaml", manifest("b", "1.0.0")),
            ],
        );
        let mut s = state(&dir);
        s.reload(&Scope::Full { force: false }).unwrap();
        let before = s.catalog().clone();

        std::fs::remove_dir_all(&dir).unwrap();
        for scope in [Scope::Full { force: false }, paths(&dir, &["a.yaml"])] {
            let err = s.reload(&scope).unwrap_err();
            assert!(matches!(err, ReloadError::FolderMissing { .. }), "{err}");
            assert_eq!(s.catalog(), &before);
        }

        std::fs::create_dir(&dir).unwrap();
        write_settled(&dir, &[("b.yaml", manifest("b", "1.0.0"))]);
        let r = s.reload(&Scope::Full { force: false }).unwrap();
        assert_eq!((r.reread, r.dropped, r.changed), (1, 1, true));
        assert!(s.catalog().winner("a").is_none());
        assert!(s.catalog().winner("b").is_some());
    }

    #[test]
    fn a_racy_read_is_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0")).unwrap();
        let mut s = state(dir);
        s.reload(&Scope::Full { force: false }).unwrap();
        // Read right after the write: the same fingerprint could hide a
        // second write within the same timestamp tick, so it is read again.
        let r = s.reload(&paths(dir, &["a.yaml"])).unwrap();
        assert_eq!(r.reread, 1);
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(20));
        let r = s.reload(&paths(dir, &["a.yaml"])).unwrap();
        assert_eq!(r.reread, 1, "the last read was still racy when it was made");
        let r = s.reload(&paths(dir, &["a.yaml"])).unwrap();
        assert_eq!(r.reread, 0);
    }

    #[test]
    fn incremental_resolution_equals_a_full_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut incremental = state(dir);
        let mut full = state(dir);
        // A fixed pseudo-random walk over ids, versions, requires, broken
        // files and deletions (no rand dependency; an LCG is enough here).
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for step in 0..400 {
            let name = format!("f{}.yaml", next(8));
            let path = dir.join(&name);
            match next(10) {
                0 => {
                    let _ = std::fs::remove_file(&path);
                }
                1 => std::fs::write(&path, "id: a\nname: [broken\n").unwrap(),
                _ => {
                    let id = ["a", "b", "c"][next(3) as usize];
                    let version = ["1.0.0", "1.0.0", "2.0.0"][next(3) as usize];
                    let requires =
                        ["", "requires: \">=0.1\"\n", "requires: \">=9\"\n"][next(3) as usize];
                    std::fs::write(&path, format!("{}{requires}", manifest(id, version))).unwrap();
                }
            }
            incremental.reload(&paths(dir, &[&name])).unwrap();
            full.reload(&Scope::Full { force: false }).unwrap();
            assert_eq!(incremental.catalog(), full.catalog(), "step {step}");
        }
    }
}
