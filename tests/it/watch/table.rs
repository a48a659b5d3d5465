//! One test per row of DESIGN.md's hot-reload table.

use super::*;
use berth::verb::Verb;

#[tokio::test(flavor = "multi_thread")]
async fn new_valid_manifest_appears_stopped_or_autostarted() {
    let fx = Fx::new(&[]).await;
    let a = exe(fx.env.path(), "a");
    let b = exe(fx.env.path(), "b");
    fx.write("a.yaml", &manifest("a", "1.0.0", &a, ""));
    fx.write("b.yaml", &manifest("b", "1.0.0", &b, "autostart: true\n"));
    fx.wait("a stopped and b running", |s| {
        s.get("a").is_some_and(|a| a.state == State::Stopped)
            && s.get("b").is_some_and(|b| b.state == State::Running)
    })
    .await;
    fx.assert_never("a manifest in the middle of being written", has_error);
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_manifest_stops_its_backend_then_drops_it_and_spares_the_others() {
    let tmp = util::env();
    // Takes its time to stop gracefully, so the stop is visible.
    let a = script(
        tmp.path(),
        "slow-stop.sh",
        "trap 'sleep 0.3; exit 0' TERM\nwhile true; do sleep 0.05; done",
    );
    let b = exe(tmp.path(), "b");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    std::fs::write(dir.join("b.yaml"), manifest("b", "1.0.0", &b, "")).unwrap();
    let fx = Fx::start(tmp, dir).await;
    let pid_a = fx.start_running("a").await;
    let pid_b = fx.start_running("b").await;
    fx.mark().await;

    std::fs::remove_file(fx.dir.join("a.yaml")).unwrap();
    fx.wait("a gone from the snapshot", |s| {
        !ids(s).contains(&"a".into())
    })
    .await;
    // Stopped gracefully first, then removed: by the time the entry is gone,
    // so is the process (a zombie not yet reaped counts as gone).
    assert!(
        !running(pid_a),
        "the entry was removed before its process stopped"
    );
    let stopping = fx.seen.lock().unwrap().iter().any(|s| {
        s.backends
            .iter()
            .any(|x| x.id.as_deref() == Some("a") && x.state == State::Stopping)
    });
    assert!(stopping, "the removed backend was never seen stopping");
    assert_eq!(
        fx.pid("b"),
        Some(pid_b),
        "an unrelated backend was disturbed"
    );
    assert!(running(pid_b));
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_of_a_stopped_backend_is_used_and_autostart_starts_nothing() {
    let tmp = util::env();
    let a = exe(tmp.path(), "a");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    let fx = Fx::start(tmp, dir).await;
    assert_eq!(fx.sup().snapshot().get("a").unwrap().state, State::Stopped);

    fx.mark().await;
    let edited = manifest("a", "1.0.0", &a, "autostart: true\nenv: { MODE: edited }\n")
        .replace("name: Backend a", "name: Renamed");
    let before = fx.progress();
    fx.write("a.yaml", &edited);
    fx.wait("the new name", |s| {
        s.get("a")
            .is_some_and(|a| a.name.as_deref() == Some("Renamed"))
    })
    .await;
    fx.wait_reloads(before, 1).await;
    tokio::time::sleep(QUIET).await;
    let s = fx.sup().snapshot().get("a").unwrap().clone();
    assert_eq!(s.state, State::Stopped, "turning autostart on started it");
    assert!(!s.pending_restart);
    fx.assert_never("a start caused by the edit", |s| {
        s.get("a").is_some_and(|a| a.state != State::Stopped)
    });

    // The new definition is what Start uses.
    fx.start_running("a").await;
    assert_eq!(wait_runs(fx.env.path(), "a", 1), "edited");
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_of_a_running_backend_keeps_it_running_until_restart() {
    let tmp = util::env();
    let a = exe(tmp.path(), "a");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    let fx = Fx::start(tmp, dir).await;
    let pid = fx.start_running("a").await;

    fx.write("a.yaml", &manifest("a", "1.0.0", &a, "env: { MODE: v2 }\n"));
    let s = fx
        .wait("pending_restart", |s| {
            s.get("a").is_some_and(|a| a.pending_restart)
        })
        .await;
    let s = s.get("a").unwrap();
    assert_eq!((s.state, s.pid), (State::Running, Some(pid)));
    assert!(running(pid));

    fx.sup().command("a", Verb::restart()).await.unwrap();
    let s = util::wait_for(fx.sup(), "a", T, |s| {
        s.state == State::Running && s.pid != Some(pid)
    })
    .await;
    assert!(!s.pending_restart);
    assert_eq!(wait_runs(fx.env.path(), "a", 2), "v2");
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_edit_keeps_the_running_backend_and_shows_the_error_until_fixed() {
    let (fx, pid) = with_running(&["a"]).await;
    let good = manifest("a", "1.0.0", &fx.exe_path("a"), "");

    fx.write("a.yaml", "id: a\nname: [unclosed\n");
    let s = fx
        .wait("the parse error", |s| {
            s.get("a").is_some_and(|a| a.error.is_some())
        })
        .await;
    let s = s.get("a").unwrap();
    let error = s.error.as_deref().unwrap();
    assert!(
        error.contains("a.yaml") && error.contains("line"),
        "{error}"
    );
    assert_eq!((s.state, s.pid), (State::Running, Some(pid)));
    assert_eq!(s.name.as_deref(), Some("Backend a"), "last good definition");
    assert!(!s.pending_restart, "nothing new to restart into");

    fx.write("a.yaml", &good);
    let s = fx
        .wait("the error cleared", |s| {
            s.get("a").is_some_and(|a| a.error.is_none())
        })
        .await;
    assert_eq!(s.get("a").unwrap().pid, Some(pid));
    assert!(running(pid));
    fx.assert_never("a stop caused by the broken file", |s| {
        s.get("a").is_none_or(|a| a.pid != Some(pid))
    });
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn higher_version_rename_and_clashing_copy_never_stop() {
    let (fx, pid) = with_running(&["a"]).await;
    let a = fx.exe_path("a");
    let v1 = manifest("a", "1.0.0", &a, "");
    let a_file = |s: &Snapshot, name: &str| {
        s.get("a")
            .is_some_and(|a| a.file.ends_with(&format!("/{name}")))
    };

    // A same-version copy clashes: the running file keeps winning.
    fx.write("copy.yaml", &v1);
    fx.wait("the copy listed with its error", |s| {
        s.backends
            .iter()
            .any(|b| b.file.ends_with("/copy.yaml") && b.error.is_some())
    })
    .await;
    assert!(a_file(&fx.sup().snapshot(), "a.yaml"));
    std::fs::remove_file(fx.dir.join("copy.yaml")).unwrap();

    // A rename is an edit of the same backend.
    std::fs::rename(fx.dir.join("a.yaml"), fx.dir.join("renamed.yaml")).unwrap();
    fx.wait("the renamed file winning", |s| a_file(s, "renamed.yaml"))
        .await;
    assert_eq!(fx.pid("a"), Some(pid));

    // A higher version in another file: an edit, pending restart.
    fx.write("a-2.yaml", &manifest("a", "2.0.0", &a, ""));
    let s = fx
        .wait("version 2 winning", |s| {
            s.get("a")
                .is_some_and(|a| a.version.as_deref() == Some("2.0.0"))
        })
        .await;
    let s = s.get("a").unwrap();
    assert_eq!((s.state, s.pid), (State::Running, Some(pid)));
    assert!(s.pending_restart);
    assert!(
        s.file.ends_with("/a-2.yaml"),
        "the higher version wins: {s:?}"
    );
    fx.assert_never("a stop", |s| s.get("a").is_none_or(|a| a.pid != Some(pid)));
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replaced_executable_is_checked_at_the_next_start() {
    let tmp = util::env();
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    // The executable sits in the backends folder itself: its events are not
    // manifest events.
    let a = exe(&dir, "srv.sh");
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    let fx = Fx::start(tmp, dir).await;
    let pid = fx.start_running("a").await;
    let before = fx.progress();

    // Replaced by a rename, as a build would.
    let new = fx.dir.join("srv.sh.new");
    std::fs::write(&new, "#!/bin/sh\nexec sleep 299\n").unwrap();
    std::fs::rename(&new, &a).unwrap();
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied, "no manifest changed");
    assert_eq!(fx.pid("a"), Some(pid), "the running process is left alone");

    fx.sup().command("a", Verb::Stop).await.unwrap();
    let _ = fx.sup().command("a", Verb::start()).await;
    let s = util::wait_for(fx.sup(), "a", T, |s| s.state == State::IntegrityFailed).await;
    assert_eq!(s.pid, None);
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_folder_stops_nothing_until_it_exists_again() {
    let tmp = util::env();
    let a = exe(tmp.path(), "a");
    let b = exe(tmp.path(), "b");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    let (ma, mb) = (
        manifest("a", "1.0.0", &a, ""),
        manifest("b", "1.0.0", &b, ""),
    );
    std::fs::write(dir.join("a.yaml"), &ma).unwrap();
    std::fs::write(dir.join("b.yaml"), &mb).unwrap();
    let fx = Fx::start(tmp, dir.clone()).await;
    let pid_a = fx.start_running("a").await;
    let pid_b = fx.start_running("b").await;
    fx.mark().await;

    // Renamed away and back.
    let aside = fx.env.path().join("backends.old");
    std::fs::rename(&dir, &aside).unwrap();
    wait_missing(&fx, true).await;
    std::fs::rename(&aside, &dir).unwrap();
    wait_missing(&fx, false).await;
    assert_eq!((fx.pid("a"), fx.pid("b")), (Some(pid_a), Some(pid_b)));

    // Deleted: everything keeps running while it is missing.
    std::fs::remove_dir_all(&dir).unwrap();
    wait_missing(&fx, true).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!((fx.pid("a"), fx.pid("b")), (Some(pid_a), Some(pid_b)));
    assert!(running(pid_a) && running(pid_b));

    // Back with only b: a counts as removed now, b is untouched.
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("b.yaml"), &mb).unwrap();
    fx.wait("a removed", |s| !ids(s).contains(&"a".into()))
        .await;
    assert!(wait_gone(pid_a, T));
    assert_eq!(fx.pid("b"), Some(pid_b));
    fx.assert_never("b disturbed", |s| {
        s.get("b").is_none_or(|b| b.pid != Some(pid_b))
    });

    // And the new folder is watched.
    std::fs::write(dir.join("a.yaml"), &ma).unwrap();
    fx.wait("a back", |s| s.get("a").is_some()).await;
    fx.finish().await;
}
