//! Unit tests of the reload state against real temp folders.

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
    FolderState::new(vec![dir.to_path_buf()], dir.join("resources"))
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
    let r = s.reload(&Scope::Full { force: false });
    assert_eq!((r.reread, r.dropped, r.changed), (2, 0, true));
    assert_eq!(s.catalog().winners().count(), 2);

    // Nothing moved: nothing read, nothing to apply.
    let r = s.reload(&Scope::Full { force: false });
    assert_eq!(r, Reload::default());
    let r = s.reload(&paths(dir, &["a.yaml", "b.yaml"]));
    assert_eq!(r, Reload::default());

    // A forced rescan reads everything; same content, same catalog.
    let r = s.reload(&Scope::Full { force: true });
    assert_eq!((r.reread, r.changed), (2, false));

    write_settled(dir, &[("a.yaml", manifest("a", "1.1.0"))]);
    let r = s.reload(&paths(dir, &["a.yaml", "b.yaml"]));
    assert_eq!((r.reread, r.changed), (1, true));
    assert_eq!(winner_version(&s, "a").as_deref(), Some("1.1.0"));
}

#[test]
fn a_batch_only_looks_at_the_paths_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_settled(dir, &[("a.yaml", manifest("a", "1.0.0"))]);
    let mut s = state(dir);
    s.reload(&Scope::Full { force: false });

    // A half-written new file and a file being replaced (gone for now),
    // both with their events still pending: the batch for x.yaml must
    // neither read the first nor drop the second.
    std::fs::write(dir.join("new.yaml"), "id: new\nname: [").unwrap();
    std::fs::remove_file(dir.join("a.yaml")).unwrap();
    write_settled(dir, &[("x.yaml", manifest("x", "1.0.0"))]);
    let r = s.reload(&paths(dir, &["x.yaml"]));
    assert_eq!((r.reread, r.dropped), (1, 0));
    assert!(s.catalog().winner("a").is_some(), "a dropped too early");
    assert!(s.catalog().entries.iter().all(|e| e.error.is_none()));

    // Their own batch comes.
    let r = s.reload(&paths(dir, &["a.yaml"]));
    assert_eq!((r.reread, r.dropped, r.changed), (0, 1, true));
    assert!(s.catalog().winner("a").is_none());
    // Names that are not manifests never count, even when named.
    std::fs::write(dir.join("4913"), "x").unwrap();
    let r = s.reload(&paths(dir, &["4913", "x.yaml~"]));
    assert_eq!(r, Reload::default());
}

#[test]
fn a_broken_edit_keeps_the_last_good_definition() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_settled(dir, &[("a.yaml", manifest("a", "1.0.0"))]);
    let mut s = state(dir);
    s.reload(&Scope::Full { force: false });

    write_settled(dir, &[("a.yaml", "id: a\nname: [unclosed\n".to_owned())]);
    let r = s.reload(&paths(dir, &["a.yaml"]));
    assert!(r.changed);
    let entry = &s.catalog().entries[0];
    assert_eq!(entry.standing, Standing::Winner);
    assert_eq!(winner_version(&s, "a").as_deref(), Some("1.0.0"));
    let error = entry.error.as_deref().unwrap();
    assert!(error.contains("a.yaml"), "{error}");

    // Broken differently: still the same last good definition.
    write_settled(dir, &[("a.yaml", "id: a\nargz: []\n".to_owned())]);
    s.reload(&paths(dir, &["a.yaml"]));
    assert_eq!(winner_version(&s, "a").as_deref(), Some("1.0.0"));

    write_settled(dir, &[("a.yaml", manifest("a", "2.0.0"))]);
    s.reload(&paths(dir, &["a.yaml"]));
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
    s.reload(&Scope::Full { force: false });
    let before = s.catalog().clone();

    std::fs::remove_dir_all(&dir).unwrap();
    for scope in [Scope::Full { force: false }, paths(&dir, &["a.yaml"])] {
        let r = s.reload(&scope);
        assert!(!r.changed);
        assert_eq!(s.problems(), [FolderProblem::Missing { dir: dir.clone() }]);
        assert_eq!(s.catalog(), &before);
    }

    std::fs::create_dir(&dir).unwrap();
    write_settled(&dir, &[("b.yaml", manifest("b", "1.0.0"))]);
    let r = s.reload(&Scope::Full { force: false });
    assert_eq!((r.reread, r.dropped, r.changed), (1, 1, true));
    assert!(s.problems().is_empty());
    assert!(s.catalog().winner("a").is_none());
    assert!(s.catalog().winner("b").is_some());
}

#[test]
fn a_racy_read_is_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0")).unwrap();
    let mut s = state(dir);
    s.reload(&Scope::Full { force: false });
    // Read right after the write: the same fingerprint could hide a
    // second write within the same timestamp tick, so it is read again.
    let r = s.reload(&paths(dir, &["a.yaml"]));
    assert_eq!(r.reread, 1);
    std::thread::sleep(RACY_WINDOW + Duration::from_millis(20));
    let r = s.reload(&paths(dir, &["a.yaml"]));
    assert_eq!(r.reread, 1, "the last read was still racy when it was made");
    let r = s.reload(&paths(dir, &["a.yaml"]));
    assert_eq!(r.reread, 0);
}

#[test]
fn incremental_resolution_equals_a_full_one() {
    random_walk(false);
}

/// The same walk with `depends_on` edges among the ids: cycles made and
/// broken, ids that come and go; the dependency check after an incremental
/// reload (its "before" from the replaced entries) equals a full one's.
#[test]
fn incremental_resolution_equals_a_full_one_with_dependencies() {
    random_walk(true);
}

fn random_walk(dependencies: bool) {
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
    let mut cycles = 0;
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
                let depends = if dependencies {
                    let on = ["", "a: started", "b: running", "c: started, d: started"];
                    format!("depends_on: {{ {} }}\n", on[next(4) as usize])
                } else {
                    String::new()
                };
                let text = format!("{}{requires}{depends}", manifest(id, version));
                std::fs::write(&path, text).unwrap();
            }
        }
        incremental.reload(&paths(dir, &[&name]));
        full.reload(&Scope::Full { force: false });
        assert_eq!(incremental.catalog(), full.catalog(), "step {step}");
        let cyclic = |e: &Entry| e.error.as_deref().is_some_and(|e| e.contains("cycle"));
        cycles += usize::from(full.catalog().entries.iter().any(cyclic));
    }
    // The walk met cycles (or had no edges to make them).
    assert_eq!(cycles > 0, dependencies, "{cycles} steps with a cycle");
}

#[test]
fn one_path_is_judged_like_the_listing_judges_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("a.yaml"), "x").unwrap();
    std::fs::write(dir.join("b.yml"), "x").unwrap();
    std::fs::write(dir.join(".hidden.yaml"), "x").unwrap();
    std::fs::write(dir.join("a.yaml~"), "x").unwrap();
    std::fs::write(dir.join("4913"), "x").unwrap();
    std::fs::create_dir(dir.join("folder.yaml")).unwrap();
    std::os::unix::fs::symlink(dir.join("a.yaml"), dir.join("link.yaml")).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling.yaml")).unwrap();
    let listed = registry::list(dir).unwrap();
    let mut judged: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| is_manifest_file(p))
        .collect();
    judged.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(judged, listed_sorted);
    assert_eq!(listed.len(), 3, "{listed:?}");
}

/// Several folders: an id competes across them, and a folder that is missing
/// or a file keeps its files while the others are read.
#[test]
fn folders_compete_by_id_and_fail_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let user = tmp.path().join("user");
    let shipped = tmp.path().join("shipped");
    std::fs::create_dir(&user).unwrap();
    std::fs::create_dir(&shipped).unwrap();
    write_settled(&shipped, &[("py.yaml", manifest("py", "1.0.0"))]);
    let mut s = FolderState::new(
        vec![user.clone(), shipped.clone()],
        tmp.path().to_path_buf(),
    );
    s.reload(&Scope::Full { force: false });
    assert_eq!(winner_version(&s, "py").as_deref(), Some("1.0.0"));

    // A user copy with a higher version overrides the shipped one...
    write_settled(&user, &[("py.yaml", manifest("py", "1.1.0"))]);
    let r = s.reload(&paths(&user, &["py.yaml"]));
    assert!(r.changed);
    assert_eq!(winner_version(&s, "py").as_deref(), Some("1.1.0"));
    let superseded = s
        .catalog()
        .entries
        .iter()
        .find(|e| e.file == shipped.join("py.yaml"))
        .unwrap();
    assert_eq!(
        superseded.standing,
        Standing::Superseded {
            by: user.join("py.yaml")
        }
    );

    // ...and while the user folder is gone, nothing of it is dropped, and the
    // shipped folder is still read.
    std::fs::remove_dir_all(&user).unwrap();
    write_settled(&shipped, &[("other.yaml", manifest("other", "1.0.0"))]);
    let r = s.reload(&Scope::Full { force: false });
    assert_eq!((r.reread, r.dropped), (1, 0));
    assert_eq!(s.problems(), [FolderProblem::Missing { dir: user.clone() }]);
    assert_eq!(winner_version(&s, "py").as_deref(), Some("1.1.0"));
    assert!(s.catalog().winner("other").is_some());

    // A file where the folder was: a problem of its own kind, same rule.
    std::fs::write(&user, "not a folder").unwrap();
    s.reload(&paths(&user, &["py.yaml"]));
    assert_eq!(
        s.problems(),
        [FolderProblem::NotAFolder { dir: user.clone() }]
    );
    assert_eq!(winner_version(&s, "py").as_deref(), Some("1.1.0"));

    // Back as an empty folder: the copy is removed, the shipped one wins.
    std::fs::remove_file(&user).unwrap();
    std::fs::create_dir(&user).unwrap();
    let r = s.reload(&Scope::Full { force: false });
    assert_eq!(r.dropped, 1);
    assert!(s.problems().is_empty());
    assert_eq!(winner_version(&s, "py").as_deref(), Some("1.0.0"));
}
