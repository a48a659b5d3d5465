//! The reload path without a watcher (inotify limits reached): SIGHUP and
//! `rescan` go through the same incremental folder state as the watcher.

use super::*;
use crate::status::State;
use crate::supervisor;
use crate::verb::Verb;
use std::path::Path;

fn manifest(exe: &Path, extra: &str) -> String {
    let digest = crate::integrity::hash_file(exe).unwrap();
    format!(
        "id: srv\nname: Server\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {}\n    sha256: {digest}\n{extra}",
        exe.display()
    )
}

/// Regression (#10): without a watcher a rescan went through a fresh scan
/// with no last good definition, so a typo stopped and removed a running
/// backend.
#[tokio::test(flavor = "multi_thread")]
async fn a_typo_during_a_rescan_without_watcher_keeps_the_running_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    let exe = tmp.path().join("srv.sh");
    std::fs::write(&exe, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let file = dir.join("srv.yaml");
    std::fs::write(&file, manifest(&exe, "")).unwrap();
    let handle = supervisor::spawn_with_guardian(
        crate::status::Config {
            log_dir: tmp.path().join("logs"),
            log_max_size: 1 << 20,
            log_backups: 1,
            notify_dir: tmp.path().join("notify"),
            env_remove: Vec::new(),
            updates_dir: None,
        },
        None,
    );
    let mut folder = watch::FolderState::new(vec![dir.clone()], tmp.path().to_path_buf());
    rescan(&mut folder, &handle).await.unwrap();
    handle.command("srv", Verb::start()).await.unwrap();
    // Running once up a second (the default `{ uptime: 1s }` probe).
    let mut rx = handle.subscribe();
    let pid = loop {
        if let Some(s) = rx.borrow_and_update().get("srv")
            && s.state == State::Running
        {
            break s.pid.unwrap();
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.changed())
            .await
            .expect("running within 10 s")
            .unwrap();
    };

    std::fs::write(&file, manifest(&exe, "argz: [oops]\n")).unwrap();
    rescan(&mut folder, &handle).await.unwrap();
    let s = handle.snapshot().get("srv").cloned().unwrap();
    assert_eq!((s.state, s.pid), (State::Running, Some(pid)));
    let error = s.error.unwrap_or_default();
    assert!(error.contains("argz"), "the error is shown: {error:?}");
    handle.shutdown().await;
}
