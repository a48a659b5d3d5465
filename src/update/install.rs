//! The updates folder: installed versions of backends, each made visible
//! whole by one rename, the previous one kept for `--rollback`
//! (DESIGN.md, "Updates": "Nothing half-installed").
//!
//! ```text
//! updates/                         $XDG_DATA_HOME/NAME/updates
//!   ID.yaml -> ID/VERSION/ID.yaml  the installed version: a symbolic link,
//!                                  replaced by one rename
//!   ID/previous -> VERSION         the version before it (absent: the shipped one)
//!   ID/VERSION/                    a version, whole: ID.yaml, ID.yaml.minisig,
//!                                  the executable, its `files` folder
//!   ID/.staging.PID.N/             a version being built (never read)
//!   ID/bad                         versions rolled back after a failed
//!                                  probation, one a line: never offered again
//! ```
//!
//! A version is built in a staging folder beside the versions (same file
//! system), verified there, renamed to `ID/VERSION`, and only then does the
//! link `ID.yaml` move to it (a new link renamed over the old one). A
//! kill at any moment leaves the link on the old version or the new one,
//! both whole; [`Updates::recover`] removes staging folders and versions no
//! link names. The link's target is a manifest whose relative paths and
//! signature are beside it: whoever reads `ID.yaml` reads through the link
//! to its real folder.
//!
//! This module only keeps the folder; what goes into a staging folder and
//! whether it may be installed is decided before [`Updates::publish`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::manifest::BackendId;

const STAGING_PREFIX: &str = ".staging.";
const PREVIOUS: &str = "previous";
/// The bad list's bound: far more versions than a backend ever fails.
const MAX_BAD_BYTES: u64 = 64 * 1024;
const BAD: &str = "bad";
/// The temporary file a new bad list is written to before its rename.
const BAD_TMP_PREFIX: &str = ".bad.";

/// The updates folder of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updates {
    dir: PathBuf,
}

/// A folder being built for one version of `id`; removed when dropped
/// unless published.
#[derive(Debug)]
pub struct Staging {
    id: BackendId,
    dir: Option<PathBuf>,
}

impl Staging {
    pub fn path(&self) -> &Path {
        self.dir.as_deref().unwrap_or(Path::new(""))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = fs::remove_dir_all(&dir);
            // A refused first update leaves no trace: the id's folder goes
            // too when nothing else is in it (else this fails, harmlessly).
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

/// Why the updates folder could not be changed: one line.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{id} {version} is already installed in {}", dir.display())]
    Present {
        id: String,
        version: semver::Version,
        dir: PathBuf,
    },
    #[error("{}: not a folder (a symbolic link?): nothing is written through it", path.display())]
    NotOurs { path: PathBuf },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Updates {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The instance's folder ([`crate::paths::updates_dir`]).
    pub fn of(app: &crate::paths::AppName) -> Self {
        Self::at(crate::paths::updates_dir(app))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The link that names `id`'s installed version.
    pub fn link(&self, id: &BackendId) -> PathBuf {
        self.dir.join(format!("{id}.yaml"))
    }

    fn versions(&self, id: &BackendId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    /// `id`'s folder, created 0700 if missing, and refused when it is not a
    /// real folder: a link planted in its place would have berth stage,
    /// publish and list versions somewhere else.
    fn own_dir(&self, id: &BackendId) -> Result<PathBuf, InstallError> {
        let dir = self.versions(id);
        crate::paths::create_private_dir(&dir).map_err(io_at(&dir))?;
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(dir),
            Ok(_) => Err(InstallError::NotOurs { path: dir }),
            Err(source) => Err(InstallError::Io { path: dir, source }),
        }
    }

    /// The installed version of `id`, if one is.
    pub fn current(&self, id: &BackendId) -> Option<semver::Version> {
        let target = fs::read_link(self.link(id)).ok()?;
        // `ID/VERSION/ID.yaml`
        let version = target.parent()?.file_name()?.to_str()?;
        version.parse().ok()
    }

    /// The version kept for `--rollback` (None: the shipped one).
    pub fn previous(&self, id: &BackendId) -> Option<semver::Version> {
        let target = fs::read_link(self.versions(id).join(PREVIOUS)).ok()?;
        target.to_str()?.parse().ok()
    }

    /// The versions of `id` that failed their probation, lowest first. The
    /// file is berth's own; a line that is not a version is skipped.
    pub fn bad(&self, id: &BackendId) -> Vec<semver::Version> {
        // A plain file, read up to a bound: a link planted in its place
        // (to /dev/zero, a pipe) must not hang or fill the launcher.
        let path = self.versions(id).join(BAD);
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Vec::new();
        }
        let mut text = String::new();
        let read = fs::File::open(&path).and_then(|f| {
            io::Read::read_to_string(&mut io::Read::take(f, MAX_BAD_BYTES), &mut text)
        });
        if read.is_err() {
            return Vec::new();
        }
        let mut list: Vec<semver::Version> =
            text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        list.sort();
        list.dedup();
        list
    }

    /// Adds `version` to `id`'s bad versions, so no check offers it again.
    /// The list is written whole to a temporary file, flushed, and renamed
    /// over the old one: a crash leaves the old list or the new one.
    pub fn mark_bad(&self, id: &BackendId, version: &semver::Version) -> Result<(), InstallError> {
        let mut list = self.bad(id);
        if list.contains(version) {
            return Ok(());
        }
        list.push(version.clone());
        list.sort();
        let versions = self.own_dir(id)?;
        let text: String = list.iter().map(|v| format!("{v}\n")).collect();
        let tmp = versions.join(format!("{BAD_TMP_PREFIX}{}", std::process::id()));
        // A new file, never one found there: a link planted at this
        // predictable name must not make berth write through it.
        let _ = fs::remove_file(&tmp);
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            io::Write::write_all(&mut file, text.as_bytes())?;
            file.sync_all()
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(InstallError::Io { path: tmp, source });
        }
        let path = versions.join(BAD);
        if let Err(source) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(InstallError::Io { path, source });
        }
        sync_dir(&versions).map_err(io_at(&versions))
    }

    /// A new, empty staging folder for `id` (the folders are created).
    pub fn stage(&self, id: &BackendId) -> Result<Staging, InstallError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let parent = self.own_dir(id)?;
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("{STAGING_PREFIX}{}.{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).map_err(io_at(&dir))?;
        Ok(Staging {
            id: id.clone(),
            dir: Some(dir),
        })
    }

    /// Makes the verified `staging` folder `id`'s installed `version`: it
    /// becomes `ID/VERSION` (one rename), the version installed before it
    /// is kept as the previous one, then the link moves to it (one rename),
    /// and versions older than the previous one are deleted.
    pub fn publish(
        &self,
        mut staging: Staging,
        version: &semver::Version,
    ) -> Result<(), InstallError> {
        let id = staging.id.clone();
        let versions = self.versions(&id);
        let dest = versions.join(version.to_string());
        if dest.exists() {
            return Err(InstallError::Present {
                id: id.to_string(),
                version: version.clone(),
                dir: dest,
            });
        }
        let Some(from) = staging.dir.take() else {
            return Ok(());
        };
        sync_tree(&from).map_err(io_at(&from))?;
        if let Err(source) = fs::rename(&from, &dest) {
            let _ = fs::remove_dir_all(&from);
            return Err(InstallError::Io { path: dest, source });
        }
        sync_dir(&versions).map_err(io_at(&versions))?;
        match self.current(&id) {
            Some(old) => self.point(&versions.join(PREVIOUS), Path::new(&old.to_string()))?,
            None => remove_if_present(&versions.join(PREVIOUS))?,
        }
        let target = Path::new(id.as_str())
            .join(version.to_string())
            .join(format!("{id}.yaml"));
        super::pause::at("published-version");
        self.point(&self.link(&id), &target)?;
        self.prune(&id).map(drop)
    }

    /// Back to the version kept before the installed one: the link moves to
    /// it, or goes (the shipped version counts again) when there is none.
    /// The version left is kept no longer. Returns the version now
    /// installed (None: the shipped one).
    pub fn rollback(&self, id: &BackendId) -> Result<Option<semver::Version>, InstallError> {
        let previous = self.previous(id);
        let versions = self.versions(id);
        match &previous {
            Some(v) => {
                let target = Path::new(id.as_str())
                    .join(v.to_string())
                    .join(format!("{id}.yaml"));
                self.point(&self.link(id), &target)?;
            }
            None => remove_if_present(&self.link(id))?,
        }
        remove_if_present(&versions.join(PREVIOUS))?;
        self.prune(id)?;
        Ok(previous)
    }

    /// Finishes or removes what a crash left, for every id: staging
    /// folders go, a link to a version that is not there goes (the
    /// previous or shipped version counts), and versions no link names go.
    /// One line per thing done, for berth.log.
    pub fn recover(&self) -> Vec<String> {
        let mut done = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return done;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| BackendId::new(n).ok()) else {
                // Links, leftovers of an interrupted link rename.
                if let Some(n) = name.to_str().filter(|n| n.starts_with('.')) {
                    let path = self.dir.join(n);
                    if fs::remove_file(&path).is_ok() {
                        done.push(format!("{}: removed a leftover", path.display()));
                    }
                }
                continue;
            };
            let versions = self.versions(&id);
            if !is_real_dir(&versions) {
                continue;
            }
            if let Ok(list) = fs::read_dir(&versions) {
                for e in list.filter_map(Result::ok) {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    let path = e.path();
                    if n.starts_with(STAGING_PREFIX) {
                        if fs::remove_dir_all(&path).is_ok() {
                            done.push(format!("{}: removed an unfinished update", path.display()));
                        }
                    } else if n.starts_with(BAD_TMP_PREFIX) && fs::remove_file(&path).is_ok() {
                        // The bad list renamed over is whole; this was its next version.
                        done.push(format!("{}: removed a leftover", path.display()));
                    }
                }
            }
            let link = self.link(&id);
            if fs::symlink_metadata(&link).is_ok() && fs::metadata(&link).is_err() {
                let _ = fs::remove_file(&link);
                done.push(format!(
                    "{}: removed a link to a missing version",
                    link.display()
                ));
            }
            if self
                .previous(&id)
                .is_some_and(|p| Some(p) == self.current(&id))
            {
                // A crash between keeping the previous version and moving
                // the link: nothing new was installed.
                let _ = fs::remove_file(versions.join(PREVIOUS));
            }
            if let Ok(removed) = self.prune(&id) {
                done.extend(
                    removed
                        .iter()
                        .map(|p| format!("{}: removed a version no link names", p.display())),
                );
            }
        }
        done
    }

    /// Deletes `id`'s versions that are neither installed nor kept; says which.
    fn prune(&self, id: &BackendId) -> Result<Vec<PathBuf>, InstallError> {
        let versions = self.versions(id);
        if !is_real_dir(&versions) {
            // A link planted in berth's place: deleting "versions" through
            // it would delete folders outside the updates folder.
            return Ok(Vec::new());
        }
        let keep: Vec<String> = [self.current(id), self.previous(id)]
            .into_iter()
            .flatten()
            .map(|v| v.to_string())
            .collect();
        let mut removed = Vec::new();
        let Ok(list) = fs::read_dir(&versions) else {
            return Ok(removed);
        };
        for entry in list.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_version = name.parse::<semver::Version>().is_ok();
            if is_version && !keep.contains(&name) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(io_at(&path))?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    /// Makes `link` a symbolic link to `target` by renaming a new link over it.
    fn point(&self, link: &Path, target: &Path) -> Result<(), InstallError> {
        let name = link.file_name().unwrap_or_default().to_string_lossy();
        let tmp = link.with_file_name(format!(".{name}.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        symlink(target, &tmp).map_err(io_at(&tmp))?;
        if let Err(source) = fs::rename(&tmp, link) {
            let _ = fs::remove_file(&tmp);
            return Err(InstallError::Io {
                path: link.to_path_buf(),
                source,
            });
        }
        let parent = link.parent().unwrap_or(Path::new("/"));
        sync_dir(parent).map_err(io_at(parent))
    }
}

/// A folder itself, not a symbolic link to one.
fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn remove_if_present(path: &Path) -> Result<(), InstallError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(InstallError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_: &Path, _: &Path) -> io::Result<()> {
    // The updates folder switches versions by renaming a symbolic link;
    // Windows needs another switch (not built: only Linux is tested here).
    Err(io::Error::other(
        "updates are not supported on this platform yet",
    ))
}

/// Flushes every file below `dir` and the folders themselves, so a power
/// loss after the rename cannot leave a named version with empty files.
fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.map_err(io::Error::other)?;
        let kind = entry.file_type();
        if kind.is_file() || kind.is_dir() {
            fs::File::open(entry.path())?.sync_all()?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
