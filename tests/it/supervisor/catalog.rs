//! Applying catalogs: backends added, edited (pending restart, last good
//! definition kept on a bad edit) and removed, and the files that do not win
//! (superseded, invalid, incompatible, unsupported) listed but refused.

use berth::verb::Verb;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use berth::registry::{Entry, Standing};

use crate::util::wait_gone;

use super::*;

/// A catalog entry for `file` that does not win, with its reason.
fn loser(
    file: PathBuf,
    backend: Option<Backend>,
    error: Option<&str>,
    standing: Standing,
) -> Entry {
    Entry {
        file,
        backend: backend.map(Arc::new),
        error: error.map(str::to_owned),
        standing,
        dependency_error: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_adds_edits_and_removes() {
    let e = env();
    let mut ba = scripted(&e, "alpha", "echo \"$@\" > args.$$\nexec sleep 60");
    ba.autostart = true;
    let mut bb = scripted(&e, "beta", "exec sleep 60");
    bb.name = "A first by name".into();
    e.sup.apply(catalog([ba.clone(), bb.clone()])).await;
    // Sorted by name; autostart started alpha.
    let names: Vec<_> = e
        .sup
        .snapshot()
        .backends
        .iter()
        .map(|s| s.id.clone().unwrap())
        .collect();
    assert_eq!(names, ["beta", "alpha"]);
    let pid = running_pid(&e, "alpha").await;
    assert_eq!(e.sup.snapshot().get("beta").unwrap().state, State::Stopped);

    // Edit a running backend: it keeps running with pending_restart.
    let mut ba2 = ba.clone();
    ba2.args = vec!["x".into()];
    e.sup.apply(catalog([ba2.clone(), bb.clone()])).await;
    let s = e.sup.snapshot().get("alpha").unwrap().clone();
    assert!(s.pending_restart);
    assert_eq!((s.state, s.pid), (State::Running, Some(pid)));

    // An invalid edit keeps the last good definition and shows the error.
    let mut cat = catalog([ba2.clone(), bb.clone()]);
    cat.entries[0].error = Some("alpha.yaml: line 4: unknown field `argz`".into());
    e.sup.apply(cat).await;
    let s = e.sup.snapshot().get("alpha").unwrap().clone();
    assert_eq!((s.state, s.pid), (State::Running, Some(pid)));
    assert!(s.error.unwrap().contains("unknown field"));

    // Restart applies the new definition.
    e.sup.command("alpha", Verb::restart()).await.unwrap();
    let s = wait_running(&e, "alpha").await;
    assert!(!s.pending_restart);
    assert_ne!(s.pid, Some(pid));
    let pid = s.pid.unwrap();
    // The new argument is in use.
    assert_eq!(wait_file(&e.path().join(format!("args.{pid}")), T), "x");

    // An edit turning autostart on starts nothing.
    let mut bb2 = bb.clone();
    bb2.autostart = true;
    e.sup.apply(catalog([ba2.clone(), bb2.clone()])).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.sup.snapshot().get("beta").unwrap().state, State::Stopped);

    // Removal stops the backend gracefully, then drops it.
    e.sup.apply(catalog([bb2.clone()])).await;
    assert!(wait_gone(pid, T), "removed backend still runs");
    let deadline = Instant::now() + T;
    while e.sup.snapshot().get("alpha").is_some() {
        assert!(Instant::now() < deadline, "alpha never left the snapshot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        e.sup.command("alpha", Verb::start()).await,
        Err(ActionError::UnknownId("alpha".into()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn non_winning_files_are_listed_and_refused() {
    let e = env();
    let a = script(e.path(), "a.sh", "exec sleep 60");
    let win = backend(e.path(), "web", &a);
    let mut old = backend(e.path(), "web", &a);
    old.file = e.path().join("web-old.yaml");
    let mut incompatible = backend(e.path(), "future", &a);
    incompatible.name = "Future".into();
    let mut unsupported = backend(e.path(), "nowhere", &a);
    unsupported.executable = None;
    let mut cat = catalog([win, unsupported]);
    let by = e.path().join("web.yaml");
    cat.entries.push(loser(
        old.file.clone(),
        Some(old),
        None,
        Standing::Superseded { by },
    ));
    cat.entries.push(loser(
        e.path().join("broken.yaml"),
        None,
        Some("broken.yaml: line 1: oops"),
        Standing::Invalid,
    ));
    let reason = "requires >=9 (berth is 0.1.0)".into();
    cat.entries.push(loser(
        incompatible.file.clone(),
        Some(incompatible),
        None,
        Standing::Incompatible { reason },
    ));
    e.sup.apply(cat).await;
    let snap = e.sup.snapshot();
    let rows: Vec<(Option<&str>, State)> = snap
        .backends
        .iter()
        .map(|s| (s.id.as_deref(), s.state))
        .collect();
    assert_eq!(
        rows,
        [
            (Some("nowhere"), State::Unsupported),
            (Some("web"), State::Stopped),
            (Some("future"), State::Incompatible),
            (None, State::Invalid),
            (Some("web"), State::Superseded),
        ]
    );
    let start = |id| e.sup.command(id, Verb::start());
    let err = start("future").await.unwrap_err().to_string();
    assert!(
        err.contains("incompatible") && err.contains("requires >=9"),
        "{err}"
    );
    let err = start("nowhere").await.unwrap_err().to_string();
    assert!(err.contains("unsupported"), "{err}");
}
