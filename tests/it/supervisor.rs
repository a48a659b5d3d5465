//! The supervisor against real processes: shell scripts in temp dirs, real
//! process groups, real log files, real sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::manifest::{Probe, ReadySpec, RestartPolicy, RestartSpec};
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
    assert_eq!(wait_file(&e.path().join("pids"), T), pid.to_string());
    assert_eq!(
        e.sup.start("srv").await,
        Ok(Outcome::Noop("srv is already running".into()))
    );
    assert_eq!(e.sup.snapshot().get("srv").unwrap().pid, Some(pid));

    assert_eq!(e.sup.restart("srv").await, Ok(Outcome::Done));
    let s = wait_for(&e.sup, "srv", T, |s| s.state == State::Running).await;
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
    assert_eq!(
        pids.lines().count(),
        2,
        "exactly two processes were started"
    );
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
    assert!(
        took >= Duration::from_millis(450),
        "stopped too early: {took:?}"
    );
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
    e.sup
        .apply(catalog([backend(e.path(), "leaver", &exe)]))
        .await;
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
    e.sup
        .apply(catalog([backend(e.path(), "swap", &exe)]))
        .await;
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

fn ready_spec(probe: Probe, timeout: Duration) -> Option<ReadySpec> {
    Some(ReadySpec { probe, timeout })
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_json_readiness_and_status_line() {
    let e = env();
    let exe = script(
        e.path(),
        "json.sh",
        r#"echo '{"status": "booting"}'
sleep 0.5
echo '{"status": "ready", "port": 1}'
exec sleep 60"#,
    );
    let mut b = backend(e.path(), "json", &exe);
    let want = serde_json::json!({"status": "ready"});
    b.ready = ready_spec(
        Probe::StdoutJson(want.as_object().unwrap().clone()),
        Duration::from_secs(15),
    );
    e.sup.apply(catalog([b])).await;
    e.sup.start("json").await.unwrap();
    let s = wait_for(&e.sup, "json", T, |s| {
        s.status_line.as_deref() == Some("booting")
    })
    .await;
    assert_eq!(s.state, State::Starting);
    assert!(!s.ready);
    let s = wait_for(&e.sup, "json", T, |s| s.state == State::Running).await;
    assert_eq!(s.status_line.as_deref(), Some("ready"));
    assert!(s.ready);
    e.sup.stop("json").await.unwrap();
}

/// A free port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_readiness() {
    let e = env();
    let port = free_port();
    let exe = script(
        e.path(),
        "tcp.sh",
        &format!(
            "sleep 0.5\nexec python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", {port})); s.listen(); time.sleep(60)'"
        ),
    );
    let mut b = backend(e.path(), "tcp", &exe);
    b.ready = ready_spec(
        Probe::Tcp(format!("127.0.0.1:{port}")),
        Duration::from_secs(15),
    );
    e.sup.apply(catalog([b])).await;
    e.sup.start("tcp").await.unwrap();
    assert_eq!(e.sup.snapshot().get("tcp").unwrap().state, State::Starting);
    wait_for(&e.sup, "tcp", T, |s| s.state == State::Running).await;
    e.sup.stop("tcp").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn http_readiness_needs_2xx() {
    let e = env();
    let port = free_port();
    // Answers 503 for the first second, then 200.
    let exe = script(
        e.path(),
        "http.sh",
        &format!(
            r#"exec python3 -c '
import http.server, time
t0 = time.time()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/api/status" and time.time() - t0 > 1
        self.send_response(200 if ok else 503)
        self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", {port}), H).serve_forever()
'"#
        ),
    );
    let mut b = backend(e.path(), "http", &exe);
    b.ready = ready_spec(
        Probe::Http(format!("http://127.0.0.1:{port}/api/status")),
        Duration::from_secs(15),
    );
    e.sup.apply(catalog([b])).await;
    let t0 = Instant::now();
    e.sup.start("http").await.unwrap();
    wait_for(&e.sup, "http", T, |s| s.state == State::Running).await;
    assert!(t0.elapsed() >= Duration::from_millis(900), "ready on a 503");
    e.sup.stop("http").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_timeout_keeps_starting_then_a_late_match_runs() {
    let e = env();
    let exe = script(
        e.path(),
        "late.sh",
        "sleep 1.5\necho '{\"status\": \"ready\"}'\nexec sleep 60",
    );
    let mut b = backend(e.path(), "late", &exe);
    b.ready = ready_spec(
        Probe::StdoutJson(
            serde_json::json!({"status": "ready"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        Duration::from_millis(500),
    );
    e.sup.apply(catalog([b])).await;
    e.sup.start("late").await.unwrap();
    let s = wait_for(&e.sup, "late", T, |s| s.error.is_some()).await;
    assert_eq!(s.state, State::Starting);
    assert_eq!(s.error.as_deref(), Some("not ready after 500ms"));
    let pid = s.pid;
    let s = wait_for(&e.sup, "late", T, |s| s.state == State::Running).await;
    assert_eq!(s.error, None);
    assert_eq!(s.pid, pid, "nothing was restarted");
    e.sup.stop("late").await.unwrap();
}

fn restart(policy: RestartPolicy, max_retries: u32, backoff_ms: u64) -> RestartSpec {
    RestartSpec {
        policy,
        max_retries,
        backoff: Duration::from_millis(backoff_ms),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_retries_with_backoff_then_fails() {
    let e = env();
    let exe = script(e.path(), "crash.sh", "date +%s.%N >> runs\nexit 1");
    let mut b = backend(e.path(), "crash", &exe);
    b.restart = restart(RestartPolicy::OnFailure, 3, 100);
    e.sup.apply(catalog([b])).await;
    e.sup.start("crash").await.unwrap();
    let s = wait_for(&e.sup, "crash", T, |s| s.state == State::Backoff).await;
    assert!(s.detail.retry_at.is_some());
    let s = wait_for(&e.sup, "crash", T, |s| s.state == State::Failed).await;
    assert_eq!(s.restarts, 3);
    assert_eq!(s.exit_code, Some(1));
    let runs: Vec<f64> = std::fs::read_to_string(e.path().join("runs"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(runs.len(), 4, "one start and three retries");
    // Backoff doubles: 100, 200, 400 ms.
    assert!(runs[3] - runs[2] >= 0.38, "{runs:?}");
    assert!(runs[2] - runs[1] >= 0.18, "{runs:?}");
    // A user start resets the count.
    e.sup.start("crash").await.unwrap();
    let s = wait_for(&e.sup, "crash", T, |s| s.state == State::Backoff).await;
    assert_eq!(s.restarts, 1);
    e.sup.stop("crash").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn max_retries_zero_fails_at_once_and_on_failure_ignores_exit_0() {
    let e = env();
    let crash = script(e.path(), "c0.sh", "exit 2");
    let clean = script(e.path(), "ok.sh", "exit 0");
    let mut a = backend(e.path(), "c0", &crash);
    a.restart = restart(RestartPolicy::OnFailure, 0, 100);
    let mut b = backend(e.path(), "ok", &clean);
    b.restart = restart(RestartPolicy::OnFailure, 3, 100);
    e.sup.apply(catalog([a, b])).await;
    e.sup.start("c0").await.unwrap();
    e.sup.start("ok").await.unwrap();
    let s = wait_for(&e.sup, "c0", T, |s| s.state == State::Failed).await;
    assert_eq!((s.restarts, s.exit_code), (0, Some(2)));
    let s = wait_for(&e.sup, "ok", T, |s| s.state == State::Exited).await;
    assert_eq!((s.restarts, s.exit_code), (0, Some(0)));
}

#[tokio::test(flavor = "multi_thread")]
async fn always_restarts_after_exit_0() {
    let e = env();
    let exe = script(e.path(), "loop.sh", "echo x >> runs\nsleep 0.1\nexit 0");
    let mut b = backend(e.path(), "loop", &exe);
    b.restart = restart(RestartPolicy::Always, 2, 50);
    e.sup.apply(catalog([b])).await;
    e.sup.start("loop").await.unwrap();
    let s = wait_for(&e.sup, "loop", T, |s| s.state == State::Failed).await;
    assert_eq!(s.restarts, 2);
    let runs = std::fs::read_to_string(e.path().join("runs")).unwrap();
    assert_eq!(runs.lines().count(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn never_keeps_exit_code() {
    let e = env();
    let exe = script(e.path(), "once.sh", "exit 7");
    e.sup
        .apply(catalog([backend(e.path(), "once", &exe)]))
        .await;
    e.sup.start("once").await.unwrap();
    let s = wait_for(&e.sup, "once", T, |s| s.state == State::Exited).await;
    assert_eq!(
        (s.exit_code, s.signal.as_deref(), s.pid),
        (Some(7), None, None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn user_stop_during_backoff_stops_for_good() {
    let e = env();
    let exe = script(e.path(), "bo.sh", "echo x >> runs\nexit 1");
    let mut b = backend(e.path(), "bo", &exe);
    b.restart = restart(RestartPolicy::OnFailure, 5, 800);
    e.sup.apply(catalog([b])).await;
    e.sup.start("bo").await.unwrap();
    wait_for(&e.sup, "bo", T, |s| s.state == State::Backoff).await;
    assert_eq!(e.sup.stop("bo").await, Ok(Outcome::Done));
    assert_eq!(e.sup.snapshot().get("bo").unwrap().state, State::Stopped);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let s = e.sup.snapshot().get("bo").unwrap().clone();
    assert_eq!(s.state, State::Stopped);
    let runs = std::fs::read_to_string(e.path().join("runs")).unwrap();
    assert_eq!(runs.lines().count(), 1, "restarted after a user stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn death_by_signal_is_recorded() {
    let e = env();
    let segv = script(e.path(), "segv.sh", "kill -SEGV $$");
    let victim = script(e.path(), "victim.sh", "exec sleep 60");
    e.sup
        .apply(catalog([
            backend(e.path(), "segv", &segv),
            backend(e.path(), "victim", &victim),
        ]))
        .await;
    e.sup.start("segv").await.unwrap();
    e.sup.start("victim").await.unwrap();
    let s = wait_for(&e.sup, "segv", T, |s| s.state == State::Exited).await;
    assert_eq!((s.exit_code, s.signal.as_deref()), (None, Some("SIGSEGV")));
    let pid = wait_for(&e.sup, "victim", T, |s| s.pid.is_some())
        .await
        .pid
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let s = wait_for(&e.sup, "victim", T, |s| s.state == State::Exited).await;
    assert_eq!(s.signal.as_deref(), Some("SIGKILL"));
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_are_stamped_and_flushed_promptly() {
    let e = env();
    let exe = script(
        e.path(),
        "talk.sh",
        "echo hello\necho oops >&2\nprintf 'partial'\nsleep 60",
    );
    e.sup
        .apply(catalog([backend(e.path(), "talk", &exe)]))
        .await;
    e.sup.start("talk").await.unwrap();
    // Within 3x the ~100 ms target, while the backend is quiet.
    let deadline = Instant::now() + Duration::from_millis(300);
    let mut log = String::new();
    while Instant::now() < deadline {
        log = e.log("talk");
        if log.lines().count() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log:?}");
    // Two pipes: their relative order is not defined.
    lines.sort_by_key(|l| l.split_once(' ').map(|x| x.1));
    assert!(lines[0].ends_with(" stderr oops"), "{}", lines[0]);
    let (stamp, rest) = lines[1].split_once(' ').unwrap();
    assert_eq!(rest, "stdout hello");
    assert_eq!(stamp.len(), 24, "{stamp}");
    assert!(stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T' && stamp.as_bytes()[19] == b'.');
    assert!(stamp.starts_with("20"), "{stamp}");
    e.sup.stop("talk").await.unwrap();
    // The partial last line is written when the stream ends.
    assert!(
        e.log("talk")
            .lines()
            .last()
            .unwrap()
            .ends_with(" stdout partial")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_and_rss_while_running() {
    let e = env();
    let exe = script(e.path(), "busy.sh", "while true; do :; done");
    e.sup
        .apply(catalog([backend(e.path(), "busy", &exe)]))
        .await;
    e.sup.start("busy").await.unwrap();
    let s = wait_for(&e.sup, "busy", T, |s| {
        s.cpu_percent.is_some_and(|c| c > 5.0) && s.rss_bytes.is_some_and(|r| r > 0)
    })
    .await;
    assert!(s.uptime_s.is_some());
    e.sup.stop("busy").await.unwrap();
    let s = e.sup.snapshot().get("busy").unwrap().clone();
    assert_eq!((s.cpu_percent, s.rss_bytes, s.uptime_s), (None, None, None));
}

#[tokio::test(flavor = "multi_thread")]
async fn pyinstaller_onefile_stops_gracefully_as_a_group() {
    let Some(exe) = crate::util::pyinstaller_backend() else {
        return;
    };
    let e = env();
    let mut b = backend(e.path(), "py", &exe);
    b.stop.timeout = Duration::from_secs(5);
    b.ready = ready_spec(
        Probe::StdoutJson(
            serde_json::json!({"status": "ready"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        Duration::from_secs(30),
    );
    e.sup.apply(catalog([b])).await;
    e.sup.start("py").await.unwrap();
    let s = wait_for(&e.sup, "py", Duration::from_secs(60), |s| {
        s.state == State::Running
    })
    .await;
    let leader = s.pid.unwrap();
    let members = crate::util::group_pids(leader);
    assert!(members.len() >= 2, "bootloader and python: {members:?}");
    let t0 = Instant::now();
    e.sup.stop("py").await.unwrap();
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
    assert_eq!(
        e.sup.snapshot().get("py").unwrap().status_line.as_deref(),
        Some("stopped")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_adds_edits_and_removes() {
    let e = env();
    let a = script(e.path(), "a.sh", "echo \"$@\" > args.$$\nexec sleep 60");
    let b = script(e.path(), "b.sh", "exec sleep 60");
    let mut ba = backend(e.path(), "alpha", &a);
    ba.autostart = true;
    let mut bb = backend(e.path(), "beta", &b);
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
    let s = wait_for(&e.sup, "alpha", T, |s| s.state == State::Running).await;
    let pid = s.pid.unwrap();
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
    e.sup.restart("alpha").await.unwrap();
    let s = wait_for(&e.sup, "alpha", T, |s| s.state == State::Running).await;
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
        e.sup.start("alpha").await,
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
    cat.entries.push(Entry {
        file: old.file.clone(),
        backend: Some(Arc::new(old)),
        error: None,
        standing: Standing::Superseded {
            by: e.path().join("web.yaml"),
        },
    });
    cat.entries.push(Entry {
        file: e.path().join("broken.yaml"),
        backend: None,
        error: Some("broken.yaml: line 1: oops".into()),
        standing: Standing::Invalid,
    });
    cat.entries.push(Entry {
        file: incompatible.file.clone(),
        backend: Some(Arc::new(incompatible)),
        error: None,
        standing: Standing::Incompatible {
            reason: "requires >=9 (berth is 0.1.0)".into(),
        },
    });
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
    let err = e.sup.start("future").await.unwrap_err().to_string();
    assert!(
        err.contains("incompatible") && err.contains("requires >=9"),
        "{err}"
    );
    let err = e.sup.start("nowhere").await.unwrap_err().to_string();
    assert!(err.contains("unsupported"), "{err}");
    let _ = Catalog::default();
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
    let p1 = wait_for(&e.sup, "one", T, |s| s.state == State::Running)
        .await
        .pid
        .unwrap();
    let p2 = wait_for(&e.sup, "two", T, |s| s.state == State::Running)
        .await
        .pid
        .unwrap();
    e.sup.shutdown().await;
    assert!(!running(p1) && !running(p2));
    assert_eq!(e.sup.start("one").await, Err(ActionError::ShutDown));
}

#[test]
fn killed_supervisor_leaves_no_process_behind() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let shell = script(
        dir.path(),
        "shell.sh",
        "sh -c 'trap \"\" TERM; while true; do sleep 0.1; done' &\necho $! > grandchild\nwait",
    );
    let mut specs = vec![format!("shell={}", shell.display())];
    let py = crate::util::pyinstaller_backend();
    if let Some(py) = &py {
        specs.push(format!("py={}", py.display()));
    }
    let stop_timeout = Duration::from_millis(1000);
    let mut child = std::process::Command::new(crate::util::example_supervise())
        .arg(dir.path().join("logs"))
        .arg(stop_timeout.as_millis().to_string())
        .args(&specs)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut leaders = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        leaders.push(line.split_once(' ').unwrap().1.parse::<u32>().unwrap());
    }
    assert_eq!(leaders.len(), specs.len());
    let gc: u32 = wait_file(&dir.path().join("grandchild"), T)
        .parse()
        .unwrap();
    let mut all: Vec<u32> = leaders
        .iter()
        .flat_map(|&l| crate::util::group_pids(l))
        .collect();
    all.push(gc);
    if py.is_some() {
        assert!(
            all.len() >= 4,
            "expected the onefile's two processes: {all:?}"
        );
    }
    // The guardian: berth's child, in its own group, deaf to Ctrl-C.
    let guardian = guardian_of(child.id()).expect("no guardian process");
    assert_eq!(crate::util::group_pids(guardian), [guardian]);
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{guardian}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "the guardian holds descriptors of berth's"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(guardian as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(running(guardian), "SIGINT killed the guardian");
    child.kill().unwrap();
    let killed = Instant::now();
    child.wait().unwrap();
    // Target: stop timeout + 1 s; deadline 3x that for a noisy machine.
    let target = stop_timeout + Duration::from_secs(1);
    for pid in &all {
        assert!(
            wait_gone(*pid, 3 * target),
            "{pid} survived the supervisor's death"
        );
    }
    eprintln!(
        "all backend processes gone {:?} after SIGKILL",
        killed.elapsed()
    );
    assert!(wait_gone(guardian, T), "the guardian did not exit");
    eprintln!("guardian gone {:?} after SIGKILL", killed.elapsed());
}

/// The child of `parent` running `__guardian`.
fn guardian_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid: u32 = stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
        (ppid == parent && cmdline.contains("__guardian")).then_some(pid)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_rotate_by_size_through_the_supervisor() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let sup = berth::supervisor::spawn_with_guardian(
        berth::supervisor::Config {
            log_dir: logs.clone(),
            log_max_size: 2000,
            log_backups: 2,
        },
        None,
    );
    let exe = script(
        dir.path(),
        "chatty.sh",
        "i=0; while [ $i -lt 200 ]; do echo \"line $i\"; i=$((i+1)); done",
    );
    sup.apply(catalog([backend(dir.path(), "chatty", &exe)]))
        .await;
    sup.start("chatty").await.unwrap();
    wait_for(&sup, "chatty", T, |s| s.state == State::Exited).await;
    let read = |name: &str| std::fs::read_to_string(logs.join(name)).unwrap();
    let (cur, one, two) = (
        read("chatty.log"),
        read("chatty.log.1"),
        read("chatty.log.2"),
    );
    assert!(!logs.join("chatty.log.3").exists());
    assert!(cur.ends_with(" stdout line 199\n"), "{cur}");
    for f in [&cur, &one, &two] {
        assert!(f.len() <= 2000, "{} bytes", f.len());
        assert!(f.lines().all(|l| l.contains(" stdout line ")), "{f}");
    }
    // Backups hold the lines just before the current file, in order.
    let first_cur: u32 = cur
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let last_one: u32 = one
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(last_one + 1, first_cur);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_all_now_kills_every_group_at_once() {
    let e = env();
    let exe = script(
        e.path(),
        "deaf.sh",
        "trap '' TERM\nsleep 60 &\necho $! > gc.$$\nwait",
    );
    let mut b = backend(e.path(), "deaf", &exe);
    b.stop.timeout = Duration::from_secs(30);
    e.sup.apply(catalog([b])).await;
    e.sup.start("deaf").await.unwrap();
    let pid = wait_for(&e.sup, "deaf", T, |s| s.pid.is_some())
        .await
        .pid
        .unwrap();
    let gc: u32 = wait_file(&e.path().join(format!("gc.{pid}")), T)
        .parse()
        .unwrap();
    e.sup.kill_all_now();
    assert!(wait_gone(pid, Duration::from_secs(3)) && wait_gone(gc, Duration::from_secs(3)));
    let s = wait_for(&e.sup, "deaf", T, |s| s.state == State::Exited).await;
    assert_eq!(s.signal.as_deref(), Some("SIGKILL"));
}

// A backend inherits stdin, stdout, stderr and (for a `#!` script) its own
// file, and nothing else of berth's: here a pipe berth holds without
// close-on-exec, as a descriptor inherited from a terminal would be.
#[tokio::test(flavor = "multi_thread")]
async fn a_backend_inherits_no_descriptor_of_berths() {
    let e = env();
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array we own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let exe = script(e.path(), "fds.sh", "exec sleep 60");
    e.sup.apply(catalog([backend(e.path(), "fds", &exe)])).await;
    assert_eq!(e.sup.start("fds").await, Ok(Outcome::Done));
    let pid = wait_for(&e.sup, "fds", T, |s| s.state == State::Running)
        .await
        .pid
        .unwrap();
    let mut open: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|entry| {
            let fd = entry.file_name().to_string_lossy().parse().unwrap();
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            (fd, target.display().to_string())
        })
        .collect();
    open.sort();
    let unexpected: Vec<_> = open
        .iter()
        .filter(|(fd, target)| *fd > 2 && *target != exe.display().to_string())
        .collect();
    assert!(unexpected.is_empty(), "leaked into the backend: {open:?}");
    e.sup.stop("fds").await.unwrap();
    // SAFETY: closing the two descriptors this test opened.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}
