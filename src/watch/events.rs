//! From notify events to a reload plan.
//!
//! The events are only hints of *where* to look: the reload reads the folder
//! as it is once it has gone quiet. What matters here is to ignore what is not a
//! manifest (editor swap files, vim's `4913` probe, hidden files), to ignore
//! berth's own reads (inotify reports opens), and to notice when the folder
//! itself came or went, or when events may have been lost. A signature file
//! (`X.yaml.minisig`) stands for its manifest: its event names `X.yaml`, so
//! the manifest is judged again, and a manifest and its signature replaced
//! together are read together once the folder is quiet.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind};

use crate::registry::is_manifest_name;
use crate::trust::manifest_of_signature;

/// What a batch of events asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Manifest paths named by the batch.
    pub paths: BTreeSet<PathBuf>,
    /// Events may have been lost (overflow): look at the whole folder.
    pub rescan: bool,
    /// A folder itself (or its parent) was created, removed or renamed: the
    /// watches must be set up again, then every folder looked at.
    pub rearm: bool,
    /// A folder's own permissions or owner changed: worth a rearm only while
    /// a folder cannot be read or watched (it may be readable now).
    pub attrib: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.rescan && !self.rearm
    }

    /// Folds `other` into this plan.
    pub fn merge(&mut self, other: Plan) {
        self.paths.extend(other.paths);
        self.rescan |= other.rescan;
        self.rearm |= other.rearm;
        self.attrib |= other.attrib;
    }

    /// Adds one event. Returns whether it mattered (named a manifest, moved
    /// the folder, asked for a rescan): only those keep the folder from
    /// counting as quiet, so berth's own reads never delay or cause a reload.
    pub fn add(&mut self, dirs: &[PathBuf], event: &notify::Event) -> bool {
        if event.need_rescan() {
            self.rescan = true;
            return true;
        }
        if !changes_something(&event.kind) {
            return false;
        }
        let mut relevant = false;
        for path in &event.paths {
            match classify_in(dirs, path) {
                Target::Manifest => {
                    self.paths.insert(path.clone());
                    relevant = true;
                }
                Target::Signature(manifest) => {
                    self.paths.insert(manifest);
                    relevant = true;
                }
                Target::Folder => {
                    // The folder's own metadata (mtime moves with every entry
                    // added) says nothing; only its coming and going matters,
                    // and a chmod while it cannot be read (the task decides).
                    if matches!(event.kind, EventKind::Modify(ModifyKind::Metadata(_))) {
                        self.attrib = true;
                    }
                    if matches!(
                        event.kind,
                        EventKind::Create(_)
                            | EventKind::Remove(_)
                            | EventKind::Modify(ModifyKind::Name(_))
                    ) {
                        self.rearm = true;
                        relevant = true;
                    }
                }
                Target::Ignored => {}
            }
        }
        relevant
    }
}

/// Does this kind of event mean the file may be different? Opens and reads
/// are not changes (berth's own reads would otherwise wake it up again).
fn changes_something(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

/// Where a path stands relative to the watched folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A manifest file directly in the folder.
    Manifest,
    /// The signature file of this manifest (directly in the folder).
    Signature(PathBuf),
    /// The folder itself, or a folder above it.
    Folder,
    /// Anything else: editor leftovers, hidden files, siblings of the folder.
    Ignored,
}

/// Classifies `path` for the folders `dirs`: a manifest (or signature) of
/// one of them, else one of them (or a folder above one), else ignored.
pub fn classify_in(dirs: &[PathBuf], path: &Path) -> Target {
    let mut target = Target::Ignored;
    for dir in dirs {
        match classify(dir, path) {
            Target::Ignored => {}
            Target::Folder => target = Target::Folder,
            // A file of a folder: one folder holds it directly.
            file => return file,
        }
    }
    target
}

/// Classifies `path` for the folder `dir`.
pub fn classify(dir: &Path, path: &Path) -> Target {
    if path.parent() == Some(dir) {
        let manifest = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_manifest_name);
        if manifest {
            return Target::Manifest;
        }
        return match manifest_of_signature(path) {
            Some(m)
                if m.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_manifest_name) =>
            {
                Target::Signature(m)
            }
            _ => Target::Ignored,
        };
    }
    if dir.starts_with(path) {
        Target::Folder
    } else {
        Target::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};
    use notify::{Event, event::Flag};

    fn dir() -> PathBuf {
        PathBuf::from("/home/u/app/backends")
    }

    fn ev(kind: EventKind, paths: &[&str]) -> Event {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    fn plan(events: &[Event]) -> Plan {
        let mut plan = Plan::default();
        for e in events {
            plan.add(&[dir()], e);
        }
        plan
    }

    #[test]
    fn manifests_are_kept_and_editor_leftovers_ignored() {
        let p = plan(&[
            ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/a.yaml"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["/home/u/app/backends/b.yml"],
            ),
            ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/.a.yaml.swp"],
            ),
            ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/a.yaml~"],
            ),
            ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/.#a.yaml"],
            ),
            ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/4913"],
            ),
            ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/sub/c.yaml"],
            ),
        ]);
        let expected: BTreeSet<PathBuf> =
            ["a.yaml", "b.yml"].iter().map(|n| dir().join(n)).collect();
        assert_eq!(p.paths, expected);
        assert!(!p.rescan && !p.rearm);
    }

    #[test]
    fn a_signature_stands_for_its_manifest() {
        let p = plan(&[
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &[
                    "/home/u/app/backends/.tmp-sig",
                    "/home/u/app/backends/a.yaml.minisig",
                ],
            ),
            ev(
                EventKind::Remove(RemoveKind::File),
                &["/home/u/app/backends/b.yml.minisig"],
            ),
            // Not signatures of manifests: ignored.
            ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/notes.txt.minisig"],
            ),
            ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/.a.yaml.minisig"],
            ),
            ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/.minisig"],
            ),
        ]);
        let expected: BTreeSet<PathBuf> =
            ["a.yaml", "b.yml"].iter().map(|n| dir().join(n)).collect();
        assert_eq!(p.paths, expected);
    }

    #[test]
    fn a_rename_names_both_sides() {
        let p = plan(&[ev(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &[
                "/home/u/app/backends/.a.yaml.tmp",
                "/home/u/app/backends/a.yaml",
            ],
        )]);
        assert_eq!(p.paths, BTreeSet::from([dir().join("a.yaml")]));
    }

    #[test]
    fn opens_and_reads_are_not_changes() {
        let p = plan(&[
            ev(
                EventKind::Access(AccessKind::Open(notify::event::AccessMode::Any)),
                &["/home/u/app/backends/a.yaml"],
            ),
            ev(
                EventKind::Access(AccessKind::Open(notify::event::AccessMode::Any)),
                &["/home/u/app/backends"],
            ),
        ]);
        assert!(p.is_empty());
        let p = plan(&[ev(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &["/home/u/app/backends/a.yaml"],
        )]);
        assert_eq!(p.paths.len(), 1);
    }

    #[test]
    fn the_folder_coming_and_going_rearms() {
        for kind in [
            EventKind::Remove(RemoveKind::Folder),
            EventKind::Create(CreateKind::Folder),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
        ] {
            assert!(plan(&[ev(kind, &["/home/u/app/backends"])]).rearm);
        }
        // The parent going away too.
        assert!(plan(&[ev(EventKind::Remove(RemoveKind::Folder), &["/home/u/app"])]).rearm);
        // A metadata change of the folder (every new entry moves its mtime) is not.
        let p = plan(&[ev(
            EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any)),
            &["/home/u/app/backends"],
        )]);
        assert!(p.is_empty() && p.attrib);
        // Siblings in the parent are ignored.
        let p = plan(&[ev(
            EventKind::Create(CreateKind::File),
            &["/home/u/app/backends.yaml"],
        )]);
        assert!(p.is_empty());
    }

    #[test]
    fn only_relevant_events_keep_the_folder_from_being_quiet() {
        let d = [dir()];
        let mut p = Plan::default();
        // berth's own reads, editor leftovers, the folder's mtime: not relevant.
        assert!(!p.add(
            &d,
            &ev(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                &["/home/u/app/backends/a.yaml"],
            )
        ));
        assert!(!p.add(
            &d,
            &ev(
                EventKind::Create(CreateKind::File),
                &["/home/u/app/backends/.a.yaml.swp"],
            )
        ));
        assert!(!p.add(
            &d,
            &ev(
                EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any)),
                &["/home/u/app/backends"],
            )
        ));
        assert!(p.is_empty());
        // A manifest written, the folder removed, an overflow: relevant.
        assert!(p.add(
            &d,
            &ev(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["/home/u/app/backends/a.yaml"],
            )
        ));
        assert!(p.add(
            &d,
            &ev(
                EventKind::Remove(RemoveKind::Folder),
                &["/home/u/app/backends"]
            )
        ));
        assert!(p.add(&d, &Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        let mut q = Plan::default();
        q.merge(p.clone());
        assert_eq!(q, p);
        assert!(q.rearm && q.rescan && q.paths.len() == 1);
    }

    #[test]
    fn each_folder_names_its_own_files() {
        let dirs = [dir(), PathBuf::from("/usr/lib/berth/backends")];
        let mut p = Plan::default();
        for path in [
            "/usr/lib/berth/backends/python.yaml",
            "/home/u/app/backends/python.yaml",
            "/usr/lib/berth/python.yaml",
        ] {
            p.add(&dirs, &ev(EventKind::Create(CreateKind::File), &[path]));
        }
        let expected: BTreeSet<PathBuf> = [
            "/usr/lib/berth/backends/python.yaml",
            "/home/u/app/backends/python.yaml",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(p.paths, expected);
        assert!(!p.rearm);
        // The installed folder's parent going away rearms every folder.
        p.add(
            &dirs,
            &ev(EventKind::Remove(RemoveKind::Folder), &["/usr/lib/berth"]),
        );
        assert!(p.rearm);
        // A folder that is another's parent: its own files are manifests.
        let nested = [PathBuf::from("/a"), PathBuf::from("/a/b")];
        assert_eq!(
            classify_in(&nested, Path::new("/a/x.yaml")),
            Target::Manifest
        );
        assert_eq!(
            classify_in(&nested, Path::new("/a/b/x.yaml")),
            Target::Manifest
        );
        assert_eq!(classify_in(&nested, Path::new("/a/b")), Target::Folder);
    }

    #[test]
    fn overflow_asks_for_a_rescan() {
        let p = plan(&[Event::new(EventKind::Other).set_flag(Flag::Rescan)]);
        assert!(p.rescan);
    }
}
