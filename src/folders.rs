//! Which backends folders berth reads: the one place that decides, for
//! `run`, `check`, `pin` and `autostart` alike (DESIGN.md, "CLI" and
//! "Installed layout").
//!
//! Every `--backends DIR` given, else `BERTH_BACKENDS` (colon separated),
//! else `./backends` when it exists, else the user folder
//! (`$XDG_CONFIG_HOME/NAME/backends`, NAME the instance's `--app`) plus the installed folder
//! (`backends/` beside the real berth binary) when it exists.
//!
//! A folder named twice, also through a symlink or another spelling, is read
//! once: two watches and two reads of the same files would make every file
//! clash with itself. Whether a folder exists, is a folder and can be read is
//! not decided here but by every read of it ([`crate::watch::FolderState`]),
//! since that changes while berth runs.
//!
//! The updates folder (`$XDG_DATA_HOME/NAME/updates`, DESIGN.md "Updates")
//! is read with these folders whichever were chosen, `--backends` included,
//! but it is not one of them: its files are installed updates, read
//! through their links and judged by their own rules
//! ([`crate::watch::FolderState::with_updates`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::paths::AppName;

/// Where the folder list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--backends DIR`, one or more.
    Given,
    /// `BERTH_BACKENDS`.
    Env,
    /// `./backends` in the current folder.
    Local,
    /// The user folder plus the installed one.
    Default,
}

impl Source {
    /// The user named the folders: one that does not exist is their mistake.
    pub fn is_explicit(self) -> bool {
        matches!(self, Self::Given | Self::Env)
    }
}

/// A folder left out because it was already in the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backends folder {}: the same folder as {}, read once", dir.display(), same_as.display())]
pub struct Duplicate {
    pub dir: PathBuf,
    pub same_as: PathBuf,
}

/// The backends folders of this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folders {
    /// Absolute (symlinks kept, so messages use the user's spelling), each
    /// real folder once, in the order given.
    pub dirs: Vec<PathBuf>,
    pub source: Source,
    /// The folders left out as given twice: one line each.
    pub duplicates: Vec<Duplicate>,
    /// The instance's user folder (`$XDG_CONFIG_HOME/NAME/backends`),
    /// whether it is in the list or not.
    pub user: PathBuf,
}

/// `BERTH_BACKENDS`: colon-separated folders (empty parts ignored).
pub const ENV: &str = "BERTH_BACKENDS";

impl Folders {
    /// The folders for `given` (`--backends` values), reading
    /// `BERTH_BACKENDS` and the file system for the defaults; the user
    /// folder is the instance `app`'s.
    pub fn choose(given: &[PathBuf], app: &AppName) -> Self {
        Self::choose_from(given, std::env::var_os(ENV), app)
    }

    /// [`Folders::choose`] with the variable's value passed in.
    pub fn choose_from(given: &[PathBuf], env: Option<OsString>, app: &AppName) -> Self {
        let user = crate::paths::config_backends_dir(app);
        let from_env: Vec<PathBuf> = env
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let local = PathBuf::from("backends");
        let (source, dirs) = if !given.is_empty() {
            (Source::Given, given.to_vec())
        } else if !from_env.is_empty() {
            (Source::Env, from_env)
        } else if local.is_dir() {
            (Source::Local, vec![local])
        } else {
            let mut dirs = vec![user.clone()];
            dirs.extend(crate::paths::installed_backends_dir());
            (Source::Default, dirs)
        };
        Self::dedup(source, &dirs, user)
    }

    fn dedup(source: Source, dirs: &[PathBuf], user: PathBuf) -> Self {
        let mut out = Self {
            dirs: Vec::new(),
            source,
            duplicates: Vec::new(),
            user,
        };
        let mut seen: Vec<(PathBuf, PathBuf)> = Vec::new();
        for dir in dirs {
            let dir = crate::paths::absolute(dir);
            let key = identity(&dir);
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                out.duplicates.push(Duplicate {
                    dir,
                    same_as: first.clone(),
                });
                continue;
            }
            seen.push((key, dir.clone()));
            out.dirs.push(dir);
        }
        out
    }

    /// The user folder, when it is one of these folders (the default list).
    pub fn user_dir(&self) -> Option<&Path> {
        let user = identity(&crate::paths::absolute(&self.user));
        self.dirs
            .iter()
            .find(|d| identity(d) == user)
            .map(PathBuf::as_path)
    }

    /// What "Open backends folder" opens: the user folder when it is in the
    /// list, else the first folder.
    pub fn to_open(&self) -> Option<&Path> {
        self.user_dir()
            .or_else(|| self.dirs.first().map(PathBuf::as_path))
    }

    /// Creates the user folder when the default list is used ("created on
    /// first run"); other folders are never created.
    pub fn create_user_dir(&self) -> std::io::Result<()> {
        if self.source != Source::Default {
            return Ok(());
        }
        match self.user_dir() {
            Some(dir) if !dir.is_dir() => std::fs::create_dir_all(dir),
            _ => Ok(()),
        }
    }
}

/// What makes two spellings the same folder: the real path when it exists
/// (symlinks, `..`), else the path with `.` and `..` folded.
fn identity(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| PathBuf::from(crate::paths::shown(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_folders_win_and_each_real_folder_counts_once() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let respelled = tmp.path().join("b/../a/.");
        let missing = tmp.path().join("gone");
        let f = Folders::choose_from(
            &[
                a.clone(),
                b.clone(),
                link.clone(),
                respelled.clone(),
                missing.clone(),
                tmp.path().join("x/../gone"),
            ],
            Some("/elsewhere".into()),
            &AppName::default(),
        );
        assert_eq!(f.source, Source::Given);
        assert_eq!(f.dirs, [a.clone(), b, missing.clone()]);
        let dups: Vec<(PathBuf, PathBuf)> = f
            .duplicates
            .iter()
            .map(|d| (d.dir.clone(), d.same_as.clone()))
            .collect();
        assert_eq!(
            dups,
            [
                (link, a.clone()),
                (respelled, a),
                (tmp.path().join("x/../gone"), missing)
            ]
        );
    }

    #[test]
    fn the_variable_is_colon_separated() {
        let f = Folders::choose_from(&[], Some("/one::/two".into()), &AppName::default());
        assert_eq!(f.source, Source::Env);
        assert_eq!(f.dirs, [PathBuf::from("/one"), PathBuf::from("/two")]);
        assert!(f.source.is_explicit());
        assert_eq!(f.to_open(), Some(Path::new("/one")));
    }
}
