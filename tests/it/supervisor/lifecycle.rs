//! Starting, stopping and restarting one backend, and ending whole process
//! groups: SIGTERM then SIGKILL after the timeout, grandchildren included,
//! at shutdown and through the kill-all-now path.

use berth::verb::Verb;
use std::time::Instant;

use crate::util::{group_pids, pyinstaller_backend, running, wait_gone};

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn start_stop_restart_and_no_double_start() {
    let e = env();
    let b = scripted(&e, "srv", "echo $$ >> pids\nexec sleep 60");
    e.sup.apply(catalog([b])).await;
    assert_eq!(e.sup.snapshot().get("srv").unwrap().state, State::Stopped);

    assert!(accepted(e.sup.command("srv", Verb::start()).await));
    let s = wait_running(&e, "srv").await;
    let pid = s.pid.unwrap();
    assert!(s.ready);
    assert_eq!(wait_file(&e.path().join("pids"), T), pid.to_string());
    assert_eq!(
        e.sup.command("srv", Verb::start()).await,
        Ok(Outcome::Noop("srv is already running".into()))
    );
    assert_eq!(e.sup.snapshot().get("srv").unwrap().pid, Some(pid));

    assert!(accepted(e.sup.command("srv", Verb::restart()).await));
    let s = wait_running(&e, "srv").await;
    assert_ne!(s.pid, Some(pid));
    assert!(!running(pid), "old process survived the restart");
    let deadline = Instant::now() + T;
    while std::fs::read_to_string(e.path().join("pids"))
        .unwrap()
        .lines()
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "the restarted process never ran");
        std::thread::sleep(Duration::from_millis(10));
    }

    let pid = s.pid.unwrap();
    assert_eq!(e.sup.command("srv", Verb::Stop).await, Ok(Outcome::Done));
    assert!(!running(pid));
    let s = e.sup.snapshot().get("srv").unwrap().clone();
    assert_eq!((s.state, s.pid), (State::Stopped, None));
    assert_eq!(
        e.sup.command("srv", Verb::Stop).await,
        Ok(Outcome::Noop("srv is not running".into()))
    );
    assert_eq!(
        e.sup.command("nope", Verb::start()).await,
        Err(ActionError::UnknownId("nope".into()))
    );
    let pids = std::fs::read_to_string(e.path().join("pids")).unwrap();
    assert_eq!(
        pids.lines().count(),
        2,
        "exactly two processes were started"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn term_ignoring_child_is_killed_after_timeout() {
    let e = env();
    let mut b = scripted(
        &e,
        "stubborn",
        "trap '' TERM\necho up > up\nwhile true; do sleep 0.1; done",
    );
    b.stop.timeout = Duration::from_millis(500);
    apply_and_start(&e, b).await.unwrap();
    wait_file(&e.path().join("up"), T);
    let pid = e.sup.snapshot().get("stubborn").unwrap().pid.unwrap();
    let t0 = Instant::now();
    e.sup.command("stubborn", Verb::Stop).await.unwrap();
    let took = t0.elapsed();
    assert!(!running(pid));
    assert!(
        took >= Duration::from_millis(450),
        "stopped too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_ends_grandchildren() {
    let e = env();
    let mut b = scripted(&e, "parent", DEAF_GRANDCHILD);
    b.stop.timeout = Duration::from_millis(300);
    apply_and_start(&e, b).await.unwrap();
    let gc = pid_file(&e.path().join("grandchild"));
    assert!(running(gc));
    e.sup.command("parent", Verb::Stop).await.unwrap();
    assert!(!running(gc), "grandchild {gc} survived the stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_exit_stops_its_group_then_exited() {
    let e = env();
    let b = scripted(
        &e,
        "leaver",
        "sleep 60 &\necho $! > grandchild\nsleep 0.3\nexit 3",
    );
    apply_and_start(&e, b).await.unwrap();
    let gc = pid_file(&e.path().join("grandchild"));
    let s = wait_state(&e, "leaver", State::Exited).await;
    assert_eq!(s.exit_code, Some(3));
    assert_eq!(s.signal, None);
    assert!(!running(gc), "grandchild {gc} outlived its leader");
}

#[tokio::test(flavor = "multi_thread")]
async fn pyinstaller_onefile_stops_gracefully_as_a_group() {
    let Some(exe) = pyinstaller_backend() else {
        return;
    };
    let e = env();
    let mut b = backend(e.path(), "py", &exe);
    b.stop.timeout = Duration::from_secs(5);
    b.ready = ready_spec(status_ready(), Duration::from_secs(30));
    apply_and_start(&e, b).await.unwrap();
    let s = wait_for(&e.sup, "py", Duration::from_secs(60), |s| {
        s.state == State::Running
    })
    .await;
    let leader = s.pid.unwrap();
    let members = group_pids(leader);
    assert!(members.len() >= 2, "bootloader and python: {members:?}");
    let t0 = Instant::now();
    e.sup.command("py", Verb::Stop).await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "took the SIGKILL path: {:?}",
        t0.elapsed()
    );
    for pid in &members {
        assert!(!running(*pid), "{pid} of the onefile group survived");
    }
    let log = e.log("py");
    assert!(
        log.lines()
            .any(|l| l.ends_with(r#"stdout {"status": "stopped"}"#)),
        "no graceful shutdown line in:\n{log}"
    );
    // The status line went with its run (issue #23, point 13).
    assert_eq!(
        e.sup.snapshot().get("py").unwrap().status_line.as_deref(),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_stops_everything_and_refuses_later_commands() {
    let e = env();
    let a = script(e.path(), "a.sh", "exec sleep 60");
    let mut ba = backend(e.path(), "one", &a);
    ba.autostart = true;
    let mut bb = backend(e.path(), "two", &a);
    bb.autostart = true;
    e.sup.apply(catalog([ba, bb])).await;
    let p1 = running_pid(&e, "one").await;
    let p2 = running_pid(&e, "two").await;
    e.sup.shutdown().await;
    assert!(!running(p1) && !running(p2));
    assert_eq!(
        e.sup.command("one", Verb::start()).await,
        Err(ActionError::ShutDown)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_all_now_kills_every_group_at_once() {
    let e = env();
    let mut b = scripted(
        &e,
        "deaf",
        "trap '' TERM\nsleep 60 &\necho $! > gc.$$\nwait",
    );
    b.stop.timeout = Duration::from_secs(30);
    apply_and_start(&e, b).await.unwrap();
    let pid = spawned_pid(&e, "deaf").await;
    let gc = pid_file(&e.path().join(format!("gc.{pid}")));
    e.sup.kill_all_now();
    assert!(wait_gone(pid, Duration::from_secs(3)) && wait_gone(gc, Duration::from_secs(3)));
    let s = wait_state(&e, "deaf", State::Exited).await;
    assert_eq!(s.signal.as_deref(), Some("SIGKILL"));
}
