//! How files get written in practice: atomic saves, editor leftovers, slow
//! writes, bursts; unrelated reloads; rescans; the launcher end to end.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn atomic_rename_save_and_quick_recreate_are_edits() {
    let (fx, pid) = with_running(&["a"]).await;
    let exe = fx.env.path().join("bin/a");
    let before = fx.progress();

    // Write a temp file, rename it over (what most editors do).
    let tmp = fx.dir.join(".a.yaml.tmp1234");
    std::fs::write(&tmp, manifest("a", "1.0.0", &exe, "env: { MODE: v2 }\n")).unwrap();
    std::fs::rename(&tmp, fx.dir.join("a.yaml")).unwrap();
    fx.wait("pending restart after the rename save", |s| {
        s.get("a").is_some_and(|a| a.pending_restart)
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied + 1);

    // Delete, then recreate well within the debounce.
    let before = fx.progress();
    std::fs::remove_file(fx.dir.join("a.yaml")).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    fx.write(
        "a.yaml",
        &manifest("a", "1.0.0", &exe, "env: { MODE: v3 }\n"),
    );
    fx.wait_reloads(before, 1).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied + 1);

    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("a stop", stopped_or_moved("a", pid));
    fx.assert_never("an error", has_error);
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn editor_leftovers_are_ignored() {
    let (fx, pid) = with_running(&["a"]).await;
    let before = fx.progress();
    let junk = "id: [this is not a manifest\n";
    for name in [
        ".a.yaml.swp",
        ".a.yaml.swx",
        "a.yaml~",
        "4913",
        ".hidden.yaml",
    ] {
        fx.write(name, junk);
    }
    std::os::unix::fs::symlink("user@host.1234:1700000000", fx.dir.join(".#a.yaml")).unwrap();
    std::fs::remove_file(fx.dir.join("4913")).unwrap();
    // A sentinel written after them: once it shows, their events were seen.
    let z = exe(fx.env.path(), "z");
    fx.write("z.yaml", &manifest("z", "1.0.0", &z, ""));
    fx.wait("the sentinel", |s| s.get("z").is_some()).await;
    tokio::time::sleep(QUIET).await;

    let snap = fx.sup().snapshot();
    assert_eq!(snap.backends.len(), 2, "{snap:#?}");
    assert_eq!(
        fx.progress().applied,
        before.applied + 1,
        "only the sentinel"
    );
    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("an error", has_error);
    fx.finish().await;
}

/// Writes `text` to `path` in two chunks with a pause shorter than the
/// debounce in between, like a slow editor or a copy over the network.
async fn write_in_two_chunks(path: &Path, text: &str) {
    use std::io::Write;
    let cut = text.find("executable:").unwrap() + 5;
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&text.as_bytes()[..cut]).unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    f.write_all(&text.as_bytes()[cut..]).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_written_in_two_chunks_gives_no_error_and_no_stop() {
    let (fx, pid) = with_running(&["a"]).await;
    let exe_a = fx.env.path().join("bin/a");
    let b = exe(fx.env.path(), "b");

    // A new file.
    let before = fx.progress();
    write_in_two_chunks(&fx.dir.join("b.yaml"), &manifest("b", "1.0.0", &b, "")).await;
    fx.wait("b", |s| s.get("b").is_some()).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied + 1);

    // An edit of the running one.
    let before = fx.progress();
    let edited = manifest("a", "1.0.0", &exe_a, "env: { MODE: v2 }\n");
    write_in_two_chunks(&fx.dir.join("a.yaml"), &edited).await;
    fx.wait("pending restart", |s| {
        s.get("a").is_some_and(|a| a.pending_restart)
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied + 1);

    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("a stop", stopped_or_moved("a", pid));
    fx.assert_never("a half-written file read", has_error);
    fx.finish().await;
}

/// The debounce waits for the folder to go quiet, but not forever: a
/// manifest rewritten without pause (every 30 ms, well inside the 100 ms
/// debounce) is still picked up while the writes go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_folder_that_never_goes_quiet_still_reloads() {
    let (fx, pid) = with_running(&["a"]).await;
    let c = exe(fx.env.path(), "c");
    let text = manifest("c", "1.0.0", &c, "");
    let tmp = fx.dir.join(".c.yaml.tmp");
    let deadline = Instant::now() + T;
    let mut writes = 0;
    while fx.sup().snapshot().get("c").is_none() {
        assert!(
            Instant::now() < deadline,
            "never reloaded during {writes} writes: {:?}",
            fx.progress()
        );
        // Atomic saves: never half written, always an event on c.yaml.
        std::fs::write(&tmp, &text).unwrap();
        std::fs::rename(&tmp, fx.dir.join("c.yaml")).unwrap();
        writes += 1;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(writes > 3, "the folder was quiet after {writes} writes");
    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("an error", has_error);
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_manifests_dropped_at_once() {
    let (fx, pid) = with_running(&["a"]).await;
    let exe = exe(fx.env.path(), "many");
    let texts: Vec<(String, String)> = (0..50)
        .map(|i| {
            let id = format!("m{i:02}");
            (format!("{id}.yaml"), manifest(&id, "1.0.0", &exe, ""))
        })
        .collect();
    for (name, text) in &texts {
        fx.write(name, text);
    }
    let snap = fx
        .wait("all 50", |s| s.backends.len() == 51 && !has_error(s))
        .await;
    assert!(snap.backends.iter().all(|b| b.state != State::Invalid));
    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("an error", has_error);
    fx.assert_never("a stop", stopped_or_moved("a", pid));
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unrelated_reloads_leave_a_running_backend_alone() {
    let (fx, pid) = with_running(&["a", "b"]).await;
    let b = fx.env.path().join("bin/b");
    let c = exe(fx.env.path(), "c");
    fx.write("b.yaml", &manifest("b", "1.1.0", &b, ""));
    fx.write("c.yaml", &manifest("c", "1.0.0", &c, ""));
    fx.write("broken.yaml", "id: broken\nargz: []\n");
    fx.wait("b edited, c added, broken listed", |s| {
        s.get("b")
            .is_some_and(|b| b.version.as_deref() == Some("1.1.0"))
            && s.get("c").is_some()
            && s.backends.iter().any(|x| x.file.ends_with("/broken.yaml"))
    })
    .await;
    std::fs::remove_file(fx.dir.join("c.yaml")).unwrap();
    std::fs::remove_file(fx.dir.join("broken.yaml")).unwrap();
    fx.wait("c and broken gone", |s| s.backends.len() == 2)
        .await;

    let a = fx.sup().snapshot().get("a").unwrap().clone();
    assert_eq!(
        (a.state, a.pid, a.pending_restart),
        (State::Running, Some(pid), false)
    );
    fx.assert_never("a disturbed", |s| {
        s.get("a")
            .is_none_or(|a| a.pid != Some(pid) || a.pending_restart || a.error.is_some())
    });
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rescan_reads_every_file_and_catches_what_notify_missed() {
    let (fx, pid) = with_running(&["a", "b"]).await;
    let before = fx.progress();
    fx.watch.rescan_and_wait().await.unwrap();
    let after = fx.progress();
    assert_eq!(after.full_scans, before.full_scans + 1);
    assert_eq!(
        after.rereads,
        before.rereads + 2,
        "a rescan reads every file"
    );
    assert_eq!(after.applied, before.applied, "same files, same catalog");

    // An edit through a hard link outside the folder: inotify on the folder
    // does not see it, SIGHUP's rescan does.
    let outside = fx.env.path().join("b-link.yaml");
    std::fs::hard_link(fx.dir.join("b.yaml"), &outside).unwrap();
    let b = fx.env.path().join("bin/b");
    let before = fx.progress();
    std::fs::write(&outside, manifest("b", "1.1.0", &b, "")).unwrap();
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        fx.progress().applied,
        before.applied,
        "notify saw it after all"
    );
    fx.watch.rescan();
    fx.wait("b 1.1.0", |s| {
        s.get("b")
            .is_some_and(|b| b.version.as_deref() == Some("1.1.0"))
    })
    .await;

    // A rescan of a missing folder says so and changes nothing.
    let aside = fx.env.path().join("aside");
    std::fs::rename(&fx.dir, &aside).unwrap();
    let err = fx.watch.rescan_and_wait().await.unwrap_err();
    assert_eq!(
        err,
        watch::RescanError::Folders(vec![watch::FolderProblem::Missing {
            dir: fx.dir.clone()
        }])
    );
    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("a disturbed", stopped_or_moved("a", pid));
    fx.finish().await;
}

/// `berth status --json` against the launcher of `home`: the listed ids.
fn listed_ids(home: &Path) -> Option<Vec<String>> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--socket")
        .arg(home.join("run/berth/berth.sock"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let list = crate::protocol::check::status_json(&String::from_utf8_lossy(&out.stdout));
    Some(
        list.iter()
            .filter_map(|b| b["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

#[test]
fn the_launcher_follows_the_folder_without_sighup() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--socket")
        .arg(home.path().join("run/berth/berth.sock"))
        .args(["run", "--headless", "--backends"])
        .arg(&dir)
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_RUNTIME_DIR", home.path().join("run"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env_remove("BERTH_SOCKET")
        .env_remove("BERTH_BACKENDS")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = |what: &str, pred: &dyn Fn(&[String]) -> bool| {
        let deadline = Instant::now() + T;
        loop {
            if listed_ids(home.path()).is_some_and(|ids| pred(&ids)) {
                return;
            }
            assert!(Instant::now() < deadline, "launcher never showed {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until("an empty folder", &|ids| ids.is_empty());

    let a = exe(home.path(), "a");
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    until("the new manifest", &|ids| ids == ["a"]);
    std::fs::remove_file(dir.join("a.yaml")).unwrap();
    until("the removal", &|ids| ids.is_empty());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn overflow_and_watcher_errors_rescan_instead_of_losing_a_change() {
    use notify::event::{EventKind, Flag};

    let (fx, pid) = with_running(&["a", "b"]).await;
    let b = fx.env.path().join("bin/b");
    // Edits through a hard link outside the folder: inotify on the folder
    // never reports them, as if their events had been lost.
    let outside = fx.env.path().join("b-link.yaml");
    std::fs::hard_link(fx.dir.join("b.yaml"), &outside).unwrap();
    let version = |v: &'static str| {
        move |s: &Snapshot| s.get("b").is_some_and(|b| b.version.as_deref() == Some(v))
    };

    let before = fx.progress();
    std::fs::write(&outside, manifest("b", "1.1.0", &b, "")).unwrap();
    let overflow = notify::Event::new(EventKind::Other).set_flag(Flag::Rescan);
    fx.watch.inject(Ok(overflow));
    fx.wait("the change after the overflow", version("1.1.0"))
        .await;
    fx.wait_reloads(before, 1).await;
    assert_eq!(fx.progress().full_scans, before.full_scans + 1);

    let before = fx.progress();
    std::fs::write(&outside, manifest("b", "1.2.0", &b, "")).unwrap();
    fx.watch
        .inject(Err(notify::Error::generic("simulated watcher error")));
    fx.wait("the change after the watcher error", version("1.2.0"))
        .await;
    fx.wait_reloads(before, 1).await;
    assert_eq!(fx.progress().full_scans, before.full_scans + 1);

    // The watches were set up again: ordinary edits still arrive.
    let c = exe(fx.env.path(), "c");
    fx.write("c.yaml", &manifest("c", "1.0.0", &c, ""));
    fx.wait("c", |s| s.get("c").is_some()).await;
    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("a disturbed", stopped_or_moved("a", pid));
    fx.finish().await;
}
