//! The supervisor against real processes: shell scripts in temp dirs, real
//! process groups, real log files, real sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::manifest::{Probe, ReadySpec, RestartPolicy, RestartSpec, StopSpec};
use berth::registry::{Catalog, Entry, Standing};
use berth::supervisor::{ActionError, Outcome, State};

use crate::util::{backend, catalog, env, running, script, wait_file, wait_for, wait_gone};

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn start_stop_restart_and_no_double_start() {
    let e = env();
    let exe = script(e.path(), "srv.sh", "echo $$ >> pids\nexec sleep 60");
    e.sup.apply(catalog([backend(e.path(), "srv", &exe)])).await;
    assert_eq!(e.sup.snapshot().get("srv").unwrap().state, State::Stopped);

    assert_eq!(e.sup.start("srv").await, Ok(Outcome::Done));
    let s = wait_for(&e.sup, "srv", T, |s| s.state == State::Running).await;
    let pid = s.pid.unwrap();
    assert!(s.ready);
    assert_eq!(
        e.sup.start("srv").await,
        Ok(Outcome::Noop("srv is already running".into()))
    );
    assert_eq!(e.sup.snapshot().get("srv").unwrap().pid, Some(pid));

    assert_eq!(e.sup.restart("srv").await, Ok(Outcome::Done));
    let s = wait_for(&e.sup, "srv", T, |s| s.state == State::Running).await;
    assert_ne!(s.pid, Some(pid));
    assert!(!running(pid), "old process survived the restart");

    let pid = s.pid.unwrap();
    assert_eq!(e.sup.stop("srv").await, Ok(Outcome::Done));
    assert!(!running(pid));
    let s = e.sup.snapshot().get("srv").unwrap().clone();
    assert_eq!((s.state, s.pid), (State::Stopped, None));
    assert_eq!(
        e.sup.stop("srv").await,
        Ok(Outcome::Noop("srv is not running".into()))
    );
    assert_eq!(
        e.sup.start("nope").await,
        Err(ActionError::UnknownId("nope".into()))
    );
    let pids = std::fs::read_to_string(e.path().join("pids")).unwrap();
    assert_eq!(pids.lines().count(), 2, "exactly two processes were started");
}

#[tokio::test(flavor = "multi_thread")]
async fn term_ignoring_child_is_killed_after_timeout() {
    let e = env();
    let exe = script(
        e.path(),
        "stubborn.sh",
        "trap '' TERM\necho up > up\nwhile true; do sleep 0.1; done",
    );
    let mut b = backend(e.path(), "stubborn", &exe);
    b.stop.timeout = Duration::from_millis(500);
    e.sup.apply(catalog([b])).await;
    e.sup.start("stubborn").await.unwrap();
    wait_file(&e.path().join("up"), T);
    let pid = e.sup.snapshot().get("stubborn").unwrap().pid.unwrap();
    let t0 = Instant::now();
    e.sup.stop("stubborn").await.unwrap();
    let took = t0.elapsed();
    assert!(!running(pid));
    assert!(took >= Duration::from_millis(450), "stopped too early: {took:?}");
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_ends_grandchildren() {
    let e = env();
    let exe = script(
        e.path(),
        "parent.sh",
        "sh -c 'trap \"\" TERM; while true; do sleep 0.1; done' &\necho $! > grandchild\nwait",
    );
    let mut b = backend(e.path(), "parent", &exe);
    b.stop.timeout = Duration::from_millis(300);
    e.sup.apply(catalog([b])).await;
    e.sup.start("parent").await.unwrap();
    let gc: u32 = wait_file(&e.path().join("grandchild"), T).parse().unwrap();
    assert!(running(gc));
    e.sup.stop("parent").await.unwrap();
    assert!(!running(gc), "grandchild {gc} survived the stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_exit_stops_its_group_then_exited() {
    let e = env();
    let exe = script(
        e.path(),
        "leaver.sh",
        "sleep 60 &\necho $! > grandchild\nsleep 0.3\nexit 3",
    );
    e.sup.apply(catalog([backend(e.path(), "leaver", &exe)])).await;
    e.sup.start("leaver").await.unwrap();
    let gc: u32 = wait_file(&e.path().join("grandchild"), T).parse().unwrap();
    let s = wait_for(&e.sup, "leaver", T, |s| s.state == State::Exited).await;
    assert_eq!(s.exit_code, Some(3));
    assert_eq!(s.signal, None);
    assert!(!running(gc), "grandchild {gc} outlived its leader");
}

#[tokio::test(flavor = "multi_thread")]
async fn integrity_failure_spawns_nothing() {
    let e = env();
    let exe = script(e.path(), "m.sh", "touch marker\nexec sleep 60");
    let mut b = backend(e.path(), "m", &exe);
    b.executable.as_mut().unwrap().sha256 = berth::manifest::Digest([7; 32]);
    e.sup.apply(catalog([b])).await;
    let err = e.sup.start("m").await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("checksum mismatch: expected 0707"), "{msg}");
    assert!(!msg.contains('\n'));
    let s = e.sup.snapshot().get("m").unwrap().clone();
    assert_eq!(s.state, State::IntegrityFailed);
    assert_eq!(s.pid, None);
    assert_eq!(s.detail.verified, Some(false));
    assert!(s.error.unwrap().starts_with("checksum mismatch"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!e.path().join("marker").exists(), "the script ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_executable_is_not_found() {
    let e = env();
    let exe = script(e.path(), "gone.sh", "exec sleep 60");
    let b = backend(e.path(), "gone", &exe);
    std::fs::remove_file(&exe).unwrap();
    e.sup.apply(catalog([b])).await;
    let err = e.sup.start("gone").await.unwrap_err().to_string();
    assert!(err.contains("executable not found: tried"), "{err}");
    assert!(err.contains("gone.sh"), "{err}");
    assert_eq!(e.sup.snapshot().get("gone").unwrap().state, State::NotFound);
    // A rebuilt executable is picked up at the next start.
    script(e.path(), "gone.sh", "exec sleep 60");
    e.sup.start("gone").await.unwrap();
    wait_for(&e.sup, "gone", T, |s| s.state == State::Running).await;
    e.sup.stop("gone").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn swapping_the_file_after_the_check_runs_the_checked_bytes() {
    let e = env();
    let exe = script(e.path(), "swap.sh", "echo good > result\nexec sleep 60");
    let evil = script(e.path(), "evil.sh", "echo evil > result\nexec sleep 60");
    e.sup.apply(catalog([backend(e.path(), "swap", &exe)])).await;
    let target = exe.clone();
    berth::integrity::set_after_verify_hook(Some(Box::new(move |p| {
        if p == target {
            std::fs::rename(&evil, &target).unwrap();
        }
    })));
    let r = e.sup.start("swap").await;
    berth::integrity::set_after_verify_hook(None);
    r.unwrap();
    assert_eq!(wait_file(&e.path().join("result"), T), "good");
    assert!(std::fs::read_to_string(&exe).unwrap().contains("evil"));
    e.sup.stop("swap").await.unwrap();
}
