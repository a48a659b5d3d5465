use super::*;

fn id() -> BackendId {
    BackendId::new("demo").unwrap()
}

fn v(text: &str) -> semver::Version {
    text.parse().unwrap()
}

/// Stages a version whose manifest says which it is, and publishes it.
fn install(updates: &Updates, version: &str) {
    let staging = updates.stage(&id()).unwrap();
    fs::write(
        staging.path().join("demo.yaml"),
        format!("version: {version}\n"),
    )
    .unwrap();
    updates.publish(staging, &v(version)).unwrap();
}

/// What `updates/demo.yaml` reads as, through the link.
fn read(updates: &Updates) -> Option<String> {
    fs::read_to_string(updates.link(&id())).ok()
}

/// The names in `updates/demo/`, sorted.
fn kept(updates: &Updates) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(updates.dir().join("demo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn each_version_is_installed_whole_and_the_one_before_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    assert_eq!(updates.current(&id()), None);
    install(&updates, "1.1.0");
    assert_eq!(read(&updates).as_deref(), Some("version: 1.1.0\n"));
    assert_eq!(updates.current(&id()), Some(v("1.1.0")));
    assert_eq!(
        updates.previous(&id()),
        None,
        "the shipped version is the previous one"
    );
    install(&updates, "1.2.0");
    install(&updates, "1.3.0");
    assert_eq!(read(&updates).as_deref(), Some("version: 1.3.0\n"));
    assert_eq!(updates.previous(&id()), Some(v("1.2.0")));
    assert_eq!(
        kept(&updates),
        ["1.2.0", "1.3.0", "previous"],
        "1.1.0 is deleted"
    );

    // The same version again is refused, and its staging folder goes.
    let staging = updates.stage(&id()).unwrap();
    let err = updates
        .publish(staging, &v("1.3.0"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("demo 1.3.0 is already installed"), "{err}");
    assert_eq!(kept(&updates), ["1.2.0", "1.3.0", "previous"]);
}

#[test]
fn rollback_returns_to_the_kept_version_then_to_the_shipped_one() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    install(&updates, "1.1.0");
    install(&updates, "1.2.0");
    assert_eq!(updates.rollback(&id()).unwrap(), Some(v("1.1.0")));
    assert_eq!(read(&updates).as_deref(), Some("version: 1.1.0\n"));
    assert_eq!(kept(&updates), ["1.1.0"], "the version left is not kept");
    assert_eq!(updates.rollback(&id()).unwrap(), None);
    assert_eq!(read(&updates), None, "no link: the shipped version counts");
    assert!(fs::symlink_metadata(updates.link(&id())).is_err());
}

#[test]
fn a_dropped_staging_folder_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    let staging = updates.stage(&id()).unwrap();
    let path = staging.path().to_path_buf();
    fs::write(path.join("half"), "x").unwrap();
    drop(staging);
    assert!(!path.exists());
}

/// A kill at each step of `publish` leaves one of these states on disk;
/// after `recover`, the link reads a whole version (old or new) and no
/// staging folder, stray link or unnamed version is left.
#[test]
fn recovery_after_a_kill_at_each_step_of_an_install() {
    for step in ["staging", "renamed", "previous-kept", "temporary-link"] {
        let tmp = tempfile::tempdir().unwrap();
        let updates = Updates::at(tmp.path().join("updates"));
        install(&updates, "1.1.0");
        let versions = updates.dir().join("demo");
        // Killed while downloading: a staging folder with half a file.
        let staging = versions.join(".staging.99999.0");
        fs::create_dir(&staging).unwrap();
        fs::write(staging.join("backend"), "half").unwrap();
        if step != "staging" {
            // Killed after the staging folder became a version.
            fs::rename(&staging, versions.join("1.2.0")).unwrap();
            fs::write(versions.join("1.2.0/demo.yaml"), "version: 1.2.0\n").unwrap();
        }
        if step == "previous-kept" || step == "temporary-link" {
            std::os::unix::fs::symlink("1.1.0", versions.join("previous")).unwrap();
        }
        if step == "temporary-link" {
            // Killed between making the new link and renaming it over.
            std::os::unix::fs::symlink(
                "demo/1.2.0/demo.yaml",
                updates.dir().join(".demo.yaml.99999"),
            )
            .unwrap();
        }
        let done = updates.recover();
        assert!(!done.is_empty(), "{step}: nothing recovered");
        assert_eq!(
            read(&updates).as_deref(),
            Some("version: 1.1.0\n"),
            "{step}: the old version, whole"
        );
        assert_eq!(kept(&updates), ["1.1.0"], "{step}: {done:?}");
        let stray: Vec<_> = fs::read_dir(updates.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(stray.is_empty(), "{step}: {stray:?}");
    }
}

#[test]
fn a_link_to_a_missing_version_is_removed_at_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    install(&updates, "1.1.0");
    fs::remove_dir_all(updates.dir().join("demo/1.1.0")).unwrap();
    let done = updates.recover();
    assert!(
        done.iter().any(|l| l.contains("link to a missing version")),
        "{done:?}"
    );
    assert!(fs::symlink_metadata(updates.link(&id())).is_err());
}

#[test]
fn a_version_marked_bad_stays_bad_through_rollback_prune_and_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    assert_eq!(updates.bad(&id()), Vec::<semver::Version>::new());
    install(&updates, "1.0.0");
    install(&updates, "1.1.0");
    updates.mark_bad(&id(), &v("1.1.0")).unwrap();
    assert_eq!(updates.rollback(&id()).unwrap(), Some(v("1.0.0")));
    // Marking again changes nothing; a second version keeps its order.
    updates.mark_bad(&id(), &v("1.1.0")).unwrap();
    updates.mark_bad(&id(), &v("0.9.0")).unwrap();
    assert_eq!(updates.bad(&id()), [v("0.9.0"), v("1.1.0")]);
    assert_eq!(
        fs::read_to_string(updates.dir().join("demo/bad")).unwrap(),
        "0.9.0\n1.1.0\n"
    );
    install(&updates, "1.2.0");
    assert_eq!(kept(&updates), ["1.0.0", "1.2.0", "bad", "previous"]);
    // A kill between writing the next list and its rename: the list
    // renamed before is whole; recovery removes the leftover.
    fs::write(updates.dir().join("demo/.bad.99999"), "1.1").unwrap();
    let done = updates.recover();
    assert!(done.iter().any(|l| l.contains(".bad.99999")), "{done:?}");
    assert_eq!(kept(&updates), ["1.0.0", "1.2.0", "bad", "previous"]);
    assert_eq!(updates.rollback(&id()).unwrap(), Some(v("1.0.0")));
    assert_eq!(updates.rollback(&id()).unwrap(), None);
    assert_eq!(updates.bad(&id()), [v("0.9.0"), v("1.1.0")]);
}

#[test]
fn a_bad_version_can_be_marked_before_any_update_is_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    updates.mark_bad(&id(), &v("1.1.0")).unwrap();
    assert_eq!(updates.bad(&id()), [v("1.1.0")]);
    assert!(updates.recover().is_empty());
    // A line that is not a version (a hand edit) is skipped, not fatal.
    fs::write(updates.dir().join("demo/bad"), "1.1.0\nnonsense\n\n").unwrap();
    assert_eq!(updates.bad(&id()), [v("1.1.0")]);
}

#[cfg(unix)]
#[test]
fn a_link_planted_at_the_bad_lists_temporary_name_is_not_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    let outside = tmp.path().join("precious");
    fs::write(&outside, "keep me\n").unwrap();
    fs::create_dir_all(updates.dir().join("demo")).unwrap();
    let planted = updates
        .dir()
        .join("demo")
        .join(format!("{BAD_TMP_PREFIX}{}", std::process::id()));
    std::os::unix::fs::symlink(&outside, &planted).unwrap();
    updates.mark_bad(&id(), &v("1.1.0")).unwrap();
    assert_eq!(fs::read_to_string(&outside).unwrap(), "keep me\n");
    assert_eq!(updates.bad(&id()), vec![v("1.1.0")]);
}

#[cfg(unix)]
#[test]
fn a_versions_folder_planted_as_a_link_is_not_pruned_through() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    let outside = tmp.path().join("elsewhere");
    fs::create_dir_all(outside.join("1.0.0")).unwrap();
    fs::write(outside.join("1.0.0").join("data"), "keep me").unwrap();
    fs::create_dir_all(updates.dir()).unwrap();
    std::os::unix::fs::symlink(&outside, updates.dir().join("demo")).unwrap();
    updates.recover();
    assert!(updates.rollback(&id()).is_ok());
    assert!(outside.join("1.0.0").join("data").exists());
}

#[test]
fn a_versions_folder_planted_as_a_link_is_not_staged_or_marked_through() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    let outside = tmp.path().join("elsewhere");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(updates.dir()).unwrap();
    std::os::unix::fs::symlink(&outside, updates.dir().join("demo")).unwrap();
    let err = updates.stage(&id()).unwrap_err().to_string();
    assert!(err.contains("not a folder (a symbolic link?)"), "{err}");
    let version: semver::Version = "1.1.0".parse().unwrap();
    assert!(updates.mark_bad(&id(), &version).is_err());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn a_bad_list_planted_as_a_link_to_an_endless_file_is_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let updates = Updates::at(tmp.path().join("updates"));
    fs::create_dir_all(updates.dir().join("demo")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", updates.dir().join("demo").join("bad")).unwrap();
    assert_eq!(updates.bad(&id()), Vec::<semver::Version>::new());
}
