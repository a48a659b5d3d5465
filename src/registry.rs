//! The registry: a folder of manifests, resolved into one winning file per id.
//!
//! A backend is identified by its id. Among the files that carry an id, the
//! highest `version` whose `requires` accepts this berth wins; the others are
//! superseded. Same id and same version twice is an error on both files,
//! except that a file that already won keeps winning (a clashing copy dropped
//! beside a running backend must never stop it).
//!
//! Trust is decided here too (DESIGN.md "Trust"): a file is read once, its
//! signature judged against those very bytes ([`crate::trust`]), and a file
//! whose current text is not trusted is handled like an invalid one. It
//! keeps its last good (trusted) definition if it had one; without one it is
//! `untrusted` and never competes for its id, so an unsigned copy dropped
//! beside a signed backend can neither win nor shadow it. A last good
//! definition is good only while the key that signed it is trusted: the
//! watcher drops it when a reload of the keys loses that key
//! ([`crate::trust::Trust::still_vouches`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::manifest::{Backend, BackendId, ManifestError, Places};
use crate::trust::{Trust, Verdict};

pub mod dependencies;

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
    /// The file parses, but its signature is missing (when required), bad,
    /// or by no trusted key, and it has no trusted definition to fall back
    /// on: never launched, and it does not compete for its id.
    Untrusted { reason: String },
}

/// One manifest file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Absolute path.
    pub file: PathBuf,
    /// The definition in force: the file's current one if it is valid (and
    /// trusted), else the last good one seen during this run (hot reload),
    /// else none. For an [`Standing::Untrusted`] file: its untrusted text,
    /// shown but never run.
    pub backend: Option<Arc<Backend>>,
    /// Why the file's current text is not used, in one line (parse or
    /// validation error, duplicate id and version, a dependency cycle).
    pub error: Option<String>,
    pub standing: Standing,
    /// What is wrong with a winner's `depends_on` that only the other
    /// manifests tell (an id none defines, `healthy` on a dependency
    /// without `health`), in one line; set by [`dependencies::apply`]. The
    /// definition stays in force, but it cannot start until this is gone.
    pub dependency_error: Option<String>,
}

impl Entry {
    pub fn id(&self) -> Option<&BackendId> {
        self.backend.as_ref().map(|b| &b.id)
    }

    /// Every problem to show beside the file, in one line: its own error
    /// and its dependency error.
    pub fn shown_error(&self) -> Option<String> {
        match (&self.error, &self.dependency_error) {
            (Some(own), Some(deps)) => Some(format!("{own}; {deps}")),
            (own, deps) => own.clone().or_else(|| deps.clone()),
        }
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
    /// What the file says now (`signed_by` set when a trusted key signed it).
    pub current: Result<Arc<Backend>, ManifestError>,
    /// Why the current text, though it parses, may not be used: its
    /// signature's verdict, in one line. `None`: trusted (or unsigned and no
    /// signature required).
    pub untrusted: Option<String>,
    /// The last valid and trusted definition this file had during this run
    /// (hot reload keeps it in force while the file is broken or untrusted).
    pub last_good: Option<Arc<Backend>>,
    /// An installed update: the updates folder's `ID.yaml`
    /// ([`FileRead::load_installed`]), which competes only beside its id's
    /// own manifest with an `update` section (see [`resolve`]).
    pub installed: bool,
}

impl FileRead {
    /// Reads `shown` (the manifest at `file`, by the path errors should name)
    /// once, judges its signature against those bytes, and parses them. The
    /// last good definition is the current one when it can be used.
    pub fn load(file: PathBuf, shown: &Path, places: &Places, trust: &Trust) -> Self {
        let read = crate::manifest::validate::read_bounded(shown).and_then(|bytes| {
            let backend = crate::manifest::parse(shown, &bytes, places)?;
            Ok((backend, trust.verdict(shown, &bytes)))
        });
        let (current, untrusted) = match read {
            Ok((mut backend, verdict)) => {
                backend.signed_by = verdict.signer().map(str::to_owned);
                let untrusted = match verdict {
                    Verdict::Untrusted(reason) => Some(reason),
                    Verdict::Unsigned | Verdict::Signed(_) => None,
                };
                (Ok(Arc::new(backend)), untrusted)
            }
            Err(e) => (Err(e), None),
        };
        let mut read = Self {
            file,
            current,
            untrusted,
            last_good: None,
            installed: false,
        };
        read.last_good = read.usable().cloned();
        read
    }

    /// Reads an installed update: `link` is the updates folder's `ID.yaml`,
    /// a symbolic link to `ID/VERSION/ID.yaml` ([`crate::update::install`]).
    /// The manifest is read through the link at its real path, so its
    /// relative paths resolve against its own version folder and its
    /// signature is the one beside it; a signature by a trusted key is
    /// required always (DESIGN.md "Updates"). The definition keeps the
    /// link's path as its file (the one the folder lists), and its id must
    /// be the link's name.
    pub fn load_installed(link: PathBuf, places: &Places, trust: &Trust) -> Self {
        let real = match std::fs::canonicalize(&link) {
            Ok(real) => real,
            Err(e) => {
                let error = ManifestError::file(&link, format!("cannot follow the link: {e}"));
                return Self::failed(link, error);
            }
        };
        let read = crate::manifest::validate::read_bounded(&real).and_then(|bytes| {
            let backend = crate::manifest::parse(&real, &bytes, places)?;
            Ok((backend, trust.verdict_signed(&real, &bytes)))
        });
        let (mut backend, verdict) = match read {
            Ok(read) => read,
            Err(e) => return Self::failed(link, e),
        };
        let named = link.file_stem().and_then(|s| s.to_str());
        if named != Some(backend.id.as_str()) {
            let error = ManifestError::file(
                &real,
                format!(
                    "id {} in the updates folder's {}: an installed update is named after its id",
                    backend.id,
                    link.file_name().unwrap_or_default().to_string_lossy()
                ),
            );
            return Self::failed(link, error);
        }
        backend.file.clone_from(&link);
        backend.signed_by = verdict.signer().map(str::to_owned);
        let untrusted = match verdict {
            Verdict::Untrusted(reason) => Some(reason),
            Verdict::Unsigned | Verdict::Signed(_) => None,
        };
        let mut read = Self {
            file: link,
            current: Ok(Arc::new(backend)),
            untrusted,
            last_good: None,
            installed: true,
        };
        read.last_good = read.usable().cloned();
        read
    }

    /// An installed update that cannot be read.
    fn failed(link: PathBuf, error: ManifestError) -> Self {
        Self {
            file: link,
            current: Err(error),
            untrusted: None,
            last_good: None,
            installed: true,
        }
    }

    /// The current definition, if it is valid and trusted.
    pub fn usable(&self) -> Option<&Arc<Backend>> {
        self.current
            .as_ref()
            .ok()
            .filter(|_| self.untrusted.is_none())
    }
}

/// The manifest files directly in `dir` (absolute paths, sorted by name):
/// `*.yaml` / `*.yml`, not hidden, not folders. A symlink counts when it
/// points at a file.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    let read_err = |source| RegistryError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    };
    let abs = crate::paths::absolute(dir);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        // `metadata` follows symlinks; a dangling link or a folder is skipped.
        if is_manifest_name(name) && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            files.push(abs.join(name));
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Decides where every file stands. `previous` is the catalog in force before
/// (empty at start-up): a file that won there keeps winning a same-version
/// clash.
///
/// Each file's definition is its current one when valid, else its last good
/// one. Per id: files whose `requires` rejects `berth` (pre-release ignored)
/// are incompatible; the highest compatible version wins and the other
/// compatible files are superseded. Two files with the same id and version
/// both carry a duplicate error; at the top, neither wins unless one already
/// won in `previous`.
///
/// An installed update ([`FileRead::installed`]) competes only with the
/// file that wins its id among the backends folders (its own manifest), and
/// only while that one has an `update` section; otherwise it is not in force
/// (incompatible, with the reason). It wins with a higher version than its
/// own manifest's, and then carries that manifest's `update` section with
/// [`UpdateSpec::shipped`](crate::manifest::update::UpdateSpec::shipped)
/// set; the same version or a lower one is superseded by it (a berth package
/// that ships a newer version wins over an older installed update).
pub fn resolve(files: &[FileRead], previous: &Catalog, berth: &semver::Version) -> Catalog {
    let core = semver::Version::new(berth.major, berth.minor, berth.patch);
    let installed: BTreeSet<&Path> = files
        .iter()
        .filter(|f| f.installed)
        .map(|f| f.file.as_path())
        .collect();
    let mut entries: Vec<Entry> = files.iter().map(entry).collect();
    entries.sort_by(|a, b| (a.file.file_name(), &a.file).cmp(&(b.file.file_name(), &b.file)));

    let mut by_id: BTreeMap<BackendId, Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if matches!(e.standing, Standing::Untrusted { .. }) {
            continue;
        }
        if let Some(id) = e.id() {
            by_id.entry(id.clone()).or_default().push(i);
        }
    }
    for (id, group) in by_id {
        let (updates, shipped): (Vec<usize>, Vec<usize>) = group
            .iter()
            .partition(|&&i| installed.contains(entries[i].file.as_path()));
        let winner = resolve_id(&mut entries, &id, &shipped, previous, berth, &core);
        for i in updates {
            if let Some(reason) = incompatible(&entries[i], berth, &core) {
                entries[i].standing = Standing::Incompatible { reason };
                continue;
            }
            admit_update(&mut entries, i, winner, &shipped);
        }
    }
    Catalog { entries }
}

/// Why `entry`'s `requires` rejects this berth, if it does.
fn incompatible(entry: &Entry, berth: &semver::Version, core: &semver::Version) -> Option<String> {
    let requires = entry.backend.as_ref()?.requires.as_ref()?;
    (!requires.matches(core)).then(|| format!("requires {requires}, berth is {berth}"))
}

/// The same-id rule among the files of `group` (the backends folders' files
/// of `id`): sets their standings and returns the winner, if any.
fn resolve_id(
    entries: &mut [Entry],
    id: &BackendId,
    group: &[usize],
    previous: &Catalog,
    berth: &semver::Version,
    core: &semver::Version,
) -> Option<usize> {
    mark_duplicates(entries, group);
    let mut compatible = Vec::new();
    for &i in group {
        match incompatible(&entries[i], berth, core) {
            Some(reason) => entries[i].standing = Standing::Incompatible { reason },
            None => compatible.push(i),
        }
    }
    let version = |i: usize| entries[i].backend.as_ref().map(|b| b.version.clone());
    let top = compatible.iter().filter_map(|&i| version(i)).max()?;
    let tops: Vec<usize> = compatible
        .iter()
        .copied()
        .filter(|&i| version(i).as_ref() == Some(&top))
        .collect();
    let winner = if let [only] = tops[..] {
        Some(only)
    } else {
        // A clash keeps the file that already won: a copy dropped beside a
        // running backend must never stop it.
        tops.iter().copied().find(|&i| {
            previous.entries.iter().any(|p| {
                p.file == entries[i].file && p.standing == Standing::Winner && p.id() == Some(id)
            })
        })
    };
    let by = entries[winner.unwrap_or(tops[0])].file.clone();
    for &i in &compatible {
        entries[i].standing = if Some(i) == winner {
            Standing::Winner
        } else if tops.contains(&i) {
            Standing::Invalid
        } else {
            Standing::Superseded { by: by.clone() }
        };
    }
    winner
}

/// Where the installed update `i` stands beside `own`, the file that wins
/// its id among the backends folders (`shipped`, all that id's files there).
fn admit_update(entries: &mut [Entry], i: usize, own: Option<usize>, shipped: &[usize]) {
    let Some(mine) = entries[i].backend.clone() else {
        return;
    };
    let own_def = own.and_then(|o| entries[o].backend.clone());
    let spec = own_def.as_ref().and_then(|d| d.update.clone());
    let (Some(own), Some(own_def), Some(spec)) = (own, own_def, spec) else {
        let none = match own.map(|o| &entries[o].file) {
            Some(file) => format!(" ({} has none)", file.display()),
            None => String::new(),
        };
        entries[i].standing = Standing::Incompatible {
            reason: format!(
                "{}: not in force: no manifest of {} with an update section in the backends folders{none}",
                entries[i].file.display(),
                mine.id
            ),
        };
        return;
    };
    if mine.version <= own_def.version {
        entries[i].standing = Standing::Superseded {
            by: entries[own].file.clone(),
        };
        return;
    }
    let mut def = (*mine).clone();
    def.update = Some(crate::manifest::update::UpdateSpec {
        shipped: Some(own_def.version.clone()),
        ..spec
    });
    entries[i].backend = Some(Arc::new(def));
    entries[i].standing = Standing::Winner;
    let by = entries[i].file.clone();
    for &s in shipped {
        if matches!(
            entries[s].standing,
            Standing::Winner | Standing::Superseded { .. }
        ) {
            entries[s].standing = Standing::Superseded { by: by.clone() };
        }
    }
}

/// A file's entry before resolution: its usable definition (current, else
/// last good), or, for an untrusted text with nothing to fall back on, that
/// text marked untrusted.
fn entry(f: &FileRead) -> Entry {
    let error = f
        .current
        .as_ref()
        .err()
        .map(ToString::to_string)
        .or_else(|| f.untrusted.clone());
    let (backend, standing) = match (f.usable().or(f.last_good.as_ref()), &f.untrusted) {
        (Some(b), _) => (Some(b.clone()), Standing::Invalid),
        (None, Some(reason)) => (
            f.current.as_ref().ok().cloned(),
            Standing::Untrusted {
                reason: reason.clone(),
            },
        ),
        (None, None) => (None, Standing::Invalid),
    };
    Entry {
        file: f.file.clone(),
        backend,
        error,
        standing,
        dependency_error: None,
    }
}

/// Puts a duplicate error on every file of `group` whose version another
/// file of the group also has.
fn mark_duplicates(entries: &mut [Entry], group: &[usize]) {
    for &i in group {
        let Some(me) = entries[i].backend.clone() else {
            continue;
        };
        let others: Vec<String> = group
            .iter()
            .filter(|&&j| j != i)
            .filter(|&&j| {
                entries[j]
                    .backend
                    .as_ref()
                    .is_some_and(|b| b.version == me.version)
            })
            .map(|&j| {
                // Beside it: its name; in another backends folder: its path.
                let other = &entries[j].file;
                crate::human::file_label(other, other.parent() == entries[i].file.parent())
            })
            .collect();
        if others.is_empty() {
            continue;
        }
        let dup = format!(
            "duplicate: id {} version {} is also defined in {}",
            me.id,
            me.version,
            others.join(", ")
        );
        entries[i].error = Some(match entries[i].error.take() {
            Some(own) => format!("{own}; {dup}"),
            None => dup,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display_name(file: &Path) -> String {
        file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    fn backend(file: &str, id: &str, version: &str, requires: Option<&str>) -> Arc<Backend> {
        let requires = requires.map_or(String::new(), |r| format!("requires: \"{r}\"\n"));
        let text = format!(
            "id: {id}\nname: N\nversion: {version}\n{requires}executable: {{ linux: {{ path: x, sha256: {} }} }}\n",
            "0".repeat(64)
        );
        Arc::new(
            crate::manifest::parse(
                Path::new(file),
                text.as_bytes(),
                &PathBuf::from("/r").into(),
            )
            .unwrap(),
        )
    }

    fn read(file: &str, id: &str, version: &str, requires: Option<&str>) -> FileRead {
        FileRead {
            file: PathBuf::from(file),
            current: Ok(backend(file, id, version, requires)),
            untrusted: None,
            last_good: None,
            installed: false,
        }
    }

    fn broken(file: &str, last_good: Option<Arc<Backend>>) -> FileRead {
        FileRead {
            file: PathBuf::from(file),
            current: Err(ManifestError::file(Path::new(file), "broken")),
            untrusted: None,
            last_good,
            installed: false,
        }
    }

    fn standings(c: &Catalog) -> Vec<(String, Standing, Option<String>)> {
        c.entries
            .iter()
            .map(|e| (display_name(&e.file), e.standing.clone(), e.error.clone()))
            .collect()
    }

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn highest_compatible_version_wins() {
        let files = [
            read("/b/c.yaml", "py", "3.0.0", Some(">=2.0")),
            read("/b/a.yaml", "py", "1.0.0", None),
            read("/b/b.yaml", "py", "2.0.0", Some(">=0.1")),
            read("/b/d.yaml", "other", "0.1.0", None),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        let by = PathBuf::from("/b/b.yaml");
        assert_eq!(
            standings(&c),
            [
                ("a.yaml".into(), Standing::Superseded { by }, None),
                ("b.yaml".into(), Standing::Winner, None),
                (
                    "c.yaml".into(),
                    Standing::Incompatible {
                        reason: "requires >=2.0, berth is 0.1.0".into()
                    },
                    None
                ),
                ("d.yaml".into(), Standing::Winner, None),
            ]
        );
        assert_eq!(c.winner("py").unwrap().version, v("2.0.0"));
        assert_eq!(c.winners().count(), 2);
    }

    #[test]
    fn pre_release_of_berth_is_ignored() {
        let files = [read("/b/a.yaml", "py", "1.0.0", Some(">=0.2"))];
        let c = resolve(&files, &Catalog::default(), &v("0.2.0-dev.3"));
        assert_eq!(c.entries[0].standing, Standing::Winner);
    }

    #[test]
    fn only_incompatible_files() {
        let files = [
            read("/b/a.yaml", "py", "1.0.0", Some(">=9")),
            read("/b/b.yaml", "py", "2.0.0", Some(">=9")),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        assert!(
            c.entries
                .iter()
                .all(|e| matches!(e.standing, Standing::Incompatible { .. }))
        );
        assert_eq!(c.winners().count(), 0);
    }

    #[test]
    fn same_version_twice_is_an_error_on_both_and_nobody_wins() {
        let files = [
            read("/b/a.yaml", "py", "1.0.0", None),
            read("/b/b.yaml", "py", "1.0.0", None),
            read("/b/c.yaml", "py", "0.9.0", None),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        assert_eq!(
            standings(&c),
            [
                (
                    "a.yaml".into(),
                    Standing::Invalid,
                    Some("duplicate: id py version 1.0.0 is also defined in b.yaml".into())
                ),
                (
                    "b.yaml".into(),
                    Standing::Invalid,
                    Some("duplicate: id py version 1.0.0 is also defined in a.yaml".into())
                ),
                (
                    "c.yaml".into(),
                    Standing::Superseded {
                        by: "/b/a.yaml".into()
                    },
                    None
                ),
            ]
        );
        assert_eq!(c.winners().count(), 0);
    }

    #[test]
    fn a_clash_across_folders_names_the_other_folder() {
        let files = [
            read("/usr/lib/berth/backends/py.yaml", "py", "1.0.0", None),
            read(
                "/home/u/.config/berth/backends/py.yaml",
                "py",
                "1.0.0",
                None,
            ),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        let errors: Vec<&str> = c
            .entries
            .iter()
            .filter_map(|e| e.error.as_deref())
            .collect();
        assert_eq!(
            errors,
            [
                "duplicate: id py version 1.0.0 is also defined in /usr/lib/berth/backends/py.yaml",
                "duplicate: id py version 1.0.0 is also defined in /home/u/.config/berth/backends/py.yaml",
            ]
        );
    }

    #[test]
    fn a_user_copy_with_a_higher_version_overrides_the_shipped_one() {
        let files = [
            read("/usr/lib/berth/backends/py.yaml", "py", "1.0.0", None),
            read(
                "/home/u/.config/berth/backends/py.yaml",
                "py",
                "1.1.0",
                None,
            ),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        let (winner, _) = c.winners().next().unwrap();
        assert_eq!(
            winner.file,
            Path::new("/home/u/.config/berth/backends/py.yaml")
        );
        assert!(c.entries.iter().any(|e| e.standing
            == Standing::Superseded {
                by: "/home/u/.config/berth/backends/py.yaml".into()
            }));
    }

    #[test]
    fn a_clashing_copy_never_unseats_the_winner() {
        let before = resolve(
            &[read("/b/b.yaml", "py", "1.0.0", None)],
            &Catalog::default(),
            &v("0.1.0"),
        );
        let files = [
            read("/b/a-copy.yaml", "py", "1.0.0", None),
            read("/b/b.yaml", "py", "1.0.0", None),
        ];
        let c = resolve(&files, &before, &v("0.1.0"));
        assert_eq!(c.entries[0].standing, Standing::Invalid);
        assert_eq!(c.entries[1].standing, Standing::Winner);
        assert!(c.entries.iter().all(|e| e.error.is_some()));
        assert_eq!(c.winner("py").unwrap().file, Path::new("/b/b.yaml"));
    }

    #[test]
    fn broken_files_keep_their_last_good_definition() {
        let good = backend("/b/a.yaml", "py", "1.0.0", None);
        let files = [broken("/b/a.yaml", Some(good)), broken("/b/z.yaml", None)];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        assert_eq!(c.entries[0].standing, Standing::Winner);
        assert_eq!(c.entries[0].error.as_deref(), Some("/b/a.yaml: broken"));
        assert_eq!(c.entries[1].standing, Standing::Invalid);
        assert_eq!(c.entries[1].backend, None);
        assert_eq!(c.entries[1].error.as_deref(), Some("/b/z.yaml: broken"));
    }

    fn untrusted(file: &str, id: &str, version: &str, last_good: Option<Arc<Backend>>) -> FileRead {
        FileRead {
            untrusted: Some(format!("{file}.minisig: bad")),
            last_good,
            ..read(file, id, version, None)
        }
    }

    #[test]
    fn an_untrusted_file_never_competes_for_its_id() {
        // A higher version, but untrusted: the signed file still wins.
        let files = [
            read("/b/a.yaml", "py", "1.0.0", None),
            untrusted("/b/z.yaml", "py", "9.0.0", None),
            untrusted("/b/lone.yaml", "lone", "1.0.0", None),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        assert_eq!(c.winner("py").unwrap().version, v("1.0.0"));
        let reason = |f: &str| Standing::Untrusted {
            reason: format!("{f}.minisig: bad"),
        };
        assert_eq!(
            standings(&c),
            [
                ("a.yaml".into(), Standing::Winner, None),
                (
                    "lone.yaml".into(),
                    reason("/b/lone.yaml"),
                    Some("/b/lone.yaml.minisig: bad".into())
                ),
                (
                    "z.yaml".into(),
                    reason("/b/z.yaml"),
                    Some("/b/z.yaml.minisig: bad".into())
                ),
            ]
        );
        // Shown with what it says, but never a winner.
        assert_eq!(c.entries[1].id().map(BackendId::as_str), Some("lone"));
        assert!(c.winner("lone").is_none());
    }

    #[test]
    fn an_untrusted_edit_keeps_the_last_good_definition() {
        let good = backend("/b/a.yaml", "py", "1.0.0", None);
        let files = [untrusted("/b/a.yaml", "py", "2.0.0", Some(good))];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        assert_eq!(c.entries[0].standing, Standing::Winner);
        assert_eq!(c.winner("py").unwrap().version, v("1.0.0"));
        assert_eq!(
            c.entries[0].error.as_deref(),
            Some("/b/a.yaml.minisig: bad")
        );
    }

    fn installed(file: &str, version: &str, requires: Option<&str>) -> FileRead {
        FileRead {
            installed: true,
            ..read(file, "py", version, requires)
        }
    }

    fn with_update(file: &str, version: &str) -> FileRead {
        let mut def = (*backend(file, "py", version, None)).clone();
        def.update = Some(crate::manifest::update::UpdateSpec {
            feed: "https://example.org/py/".parse().unwrap(),
            check: None,
            auto: false,
            probation: std::time::Duration::from_secs(60),
            shipped: None,
        });
        FileRead {
            current: Ok(Arc::new(def)),
            ..read(file, "py", version, None)
        }
    }

    #[test]
    fn an_installed_update_wins_over_every_shipped_file_with_their_winner_s_update_section() {
        let files = [
            with_update("/b/py.yaml", "1.0.0"),
            read("/b/old.yaml", "py", "0.9.0", None),
            installed("/u/py.yaml", "1.1.0", None),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        let winner = c.winner("py").unwrap();
        assert_eq!(winner.version, v("1.1.0"));
        let update = winner.update.as_ref().unwrap();
        assert_eq!(update.feed.as_str(), "https://example.org/py/");
        assert_eq!(update.shipped, Some(v("1.0.0")));
        let by = PathBuf::from("/u/py.yaml");
        for e in c.entries.iter().filter(|e| e.file.starts_with("/b")) {
            assert_eq!(e.standing, Standing::Superseded { by: by.clone() });
        }
    }

    #[test]
    fn an_installed_update_that_berth_cannot_run_leaves_the_shipped_file_in_force() {
        let files = [
            with_update("/b/py.yaml", "1.0.0"),
            installed("/u/py.yaml", "1.1.0", Some(">=9")),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        assert_eq!(c.winner("py").unwrap().version, v("1.0.0"));
        assert_eq!(
            c.winner("py").unwrap().update.as_ref().unwrap().shipped,
            None
        );
        assert_eq!(
            standings(&c)[1],
            (
                "py.yaml".into(),
                Standing::Incompatible {
                    reason: "requires >=9, berth is 0.1.0".into()
                },
                None
            )
        );
    }

    #[test]
    fn the_own_manifest_is_the_shipped_winner_and_a_clash_there_admits_no_update() {
        // The highest shipped file has no update section: the lower one's
        // does not count.
        let files = [
            with_update("/b/a.yaml", "1.0.0"),
            read("/b/z.yaml", "py", "1.0.5", None),
            installed("/u/py.yaml", "1.1.0", None),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        assert_eq!(c.winner("py").unwrap().file, Path::new("/b/z.yaml"));
        // Two shipped files clash: nobody is in force, the update neither.
        let files = [
            with_update("/b/a.yaml", "1.0.0"),
            with_update("/b/z.yaml", "1.0.0"),
            installed("/u/py.yaml", "1.1.0", None),
        ];
        let c = resolve(&files, &Catalog::default(), &v("0.1.0"));
        assert!(c.winner("py").is_none());
        assert_eq!(
            c.entries.iter().find(|e| e.file == Path::new("/u/py.yaml")).unwrap().standing,
            Standing::Incompatible {
                reason: "/u/py.yaml: not in force: no manifest of py with an update section in the backends folders".into()
            }
        );
    }

    #[cfg(unix)]
    #[test]
    fn list_takes_manifests_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.yml",
            "a.yaml",
            ".hidden.yaml",
            "notes.txt",
            "c.yaml~",
            "4913",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("a.yaml"), dir.path().join("link.yaml"))
            .unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.path().join("dangling.yaml")).unwrap();
        let names: Vec<String> = list(dir.path())
            .unwrap()
            .iter()
            .map(|p| {
                assert!(p.is_absolute());
                display_name(p)
            })
            .collect();
        assert_eq!(names, ["a.yaml", "b.yml", "link.yaml"]);
        assert!(list(&dir.path().join("missing")).is_err());
    }
}
