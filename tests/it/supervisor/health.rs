//! Health after ready: the default `{ uptime: 1s }` probe, sd_notify
//! readiness and its sender check, the watchdog, and http/tcp checks whose
//! failures stop the group and go through the restart policy.

use berth::verb::Verb;
use std::time::Instant;

use berth::manifest::RestartPolicy;
use berth::manifest::health::{HealthCheck, HealthSpec};
use berth::vars::Template;

use super::*;

/// `ready: { notify: true, timeout }`.
fn notify_ready(timeout: Duration) -> ReadySpec {
    ReadySpec {
        probe: Probe::Notify,
        timeout,
    }
}

/// `health: { watchdog: period }` (interval, timeout and failures unused).
fn watchdog(period: Duration) -> Option<HealthSpec> {
    Some(HealthSpec {
        check: HealthCheck::Watchdog(period),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        failures: 3,
        headers: Vec::new(),
    })
}

fn uptime(d: Duration) -> ReadySpec {
    ReadySpec {
        probe: Probe::Uptime(d),
        timeout: Duration::from_secs(15),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn default_uptime_probe_keeps_a_quick_crash_from_counting_as_running() {
    let e = env();
    let mut b = scripted(&e, "quick", "exit 3");
    b.ready = ReadySpec::default();
    apply_and_start(&e, b).await.unwrap();
    let s = wait_for(&e.sup, "quick", T, |s| !s.state.has_process()).await;
    assert_eq!(s.state, State::Exited);
    assert_eq!(s.exit_code, Some(3));
    assert!(!s.ready);
    let mut b = scripted(&e, "steady", "exec sleep 60");
    b.ready = uptime(Duration::from_millis(600));
    let t0 = Instant::now();
    apply_and_start(&e, b).await.unwrap();
    assert_eq!(
        e.sup.snapshot().get("steady").unwrap().state,
        State::Starting
    );
    wait_running(&e, "steady").await;
    assert!(
        t0.elapsed() >= Duration::from_millis(600),
        "running before its uptime"
    );
    e.sup.command("steady", Verb::Stop).await.unwrap();
}

/// A python3 script that uses sd_notify by hand (standard library), as a
/// client library does: one datagram per call.
fn notifier(body: &str) -> String {
    format!(
        r#"exec python3 -c '
import os, socket, time
def notify(msg):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(msg.encode(), os.environ["NOTIFY_SOCKET"])
    s.close()
{body}
'"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_ready_and_status_from_the_group_only() {
    let e = env();
    let mut b = scripted(
        &e,
        "notif",
        &notifier(
            r#"print("env", os.environ.get("WATCHDOG_PID"), flush=True)
time.sleep(1.5)
notify("STATUS=warming up")
notify("READY=1")
time.sleep(60)"#,
        ),
    );
    b.ready = notify_ready(Duration::from_secs(15));
    apply_and_start(&e, b).await.unwrap();
    let sock = e.path().join("run/notify/notif.sock");
    let deadline = Instant::now() + T;
    while !sock.exists() {
        assert!(Instant::now() < deadline, "no notify socket");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // From outside the backend's group (this test process): dropped.
    let outsider = std::os::unix::net::UnixDatagram::unbound().unwrap();
    outsider.send_to(b"READY=1\nSTATUS=forged", &sock).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = e.sup.snapshot().get("notif").unwrap().clone();
    assert_eq!(
        s.state,
        State::Starting,
        "a datagram from outside made it ready"
    );
    assert_eq!(s.status_line, None);
    let s = wait_running(&e, "notif").await;
    assert_eq!(s.status_line.as_deref(), Some("warming up"));
    assert!(e.log("notif").contains("env None"), "{}", e.log("notif"));
    e.sup.command("notif", Verb::Stop).await.unwrap();
    assert!(!sock.exists(), "the socket outlives the run");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missed_watchdog_heartbeat_fails_at_once() {
    let e = env();
    // Beats every 200 ms for a second, then hangs.
    let mut b = scripted(
        &e,
        "dog",
        &notifier(
            r#"print("usec", os.environ["WATCHDOG_USEC"], flush=True)
notify("READY=1")
for _ in range(5):
    notify("WATCHDOG=1")
    time.sleep(0.2)
time.sleep(60)"#,
        ),
    );
    // The watchdog runs from `running` on: python's start-up is not counted.
    b.ready = notify_ready(Duration::from_secs(15));
    b.health = watchdog(Duration::from_millis(700));
    apply_and_start(&e, b).await.unwrap();
    wait_running(&e, "dog").await;
    let t0 = Instant::now();
    let s = wait_for(&e.sup, "dog", T, |s| s.state == State::Failed).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "failed while it was beating"
    );
    assert_eq!(s.error.as_deref(), Some("watchdog: no heartbeat for 700ms"));
    assert!(e.log("dog").contains("usec 700000"), "{}", e.log("dog"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_http_checks_stop_the_group_then_restart_like_a_crash() {
    let e = env();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // 200 for the first two requests of each run, 503 afterwards.
    let mut b = scripted(
        &e,
        "web",
        &format!(
            r#"echo run >> runs
exec python3 -c '
import http.server
n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n[0] += 1
        self.send_response(200 if n[0] <= 2 else 503)
        self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", {port}), H).serve_forever()
'"#
        ),
    );
    b.ready = ReadySpec {
        probe: Probe::Http(format!("http://127.0.0.1:{port}/")),
        timeout: Duration::from_secs(15),
    };
    b.health = Some(HealthSpec {
        check: HealthCheck::Http(
            Template::parse("http://127.0.0.1:${ready.port}/api/status").unwrap(),
        ),
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        failures: 2,
        headers: Vec::new(),
    });
    b.restart.policy = RestartPolicy::OnFailure;
    b.restart.max_retries = 1;
    b.restart.backoff = Duration::from_millis(100);
    apply_and_start(&e, b).await.unwrap();
    let s = wait_for(&e.sup, "web", T, |s| s.healthy == Some(true)).await;
    let first = s.pid.unwrap();
    let s = wait_for(&e.sup, "web", T, |s| s.healthy == Some(false)).await;
    assert_eq!(s.state, State::Running, "one failure of two acts already");
    let s = wait_for(&e.sup, "web", T * 2, |s| s.state == State::Failed).await;
    assert_eq!(s.restarts, 1);
    assert_eq!(s.healthy, None);
    assert_eq!(
        s.error.as_deref(),
        Some(
            format!("health check failed 2 times: GET http://127.0.0.1:{port}/api/status: HTTP 503; gave up after 1 retries")
                .as_str()
        )
    );
    assert!(wait_gone_async(first).await, "the unhealthy group survived");
    let runs = std::fs::read_to_string(e.path().join("runs")).unwrap();
    assert_eq!(runs.lines().count(), 2, "one restart, as for a crash");
}

async fn wait_gone_async(pid: u32) -> bool {
    tokio::task::spawn_blocking(move || crate::util::wait_gone(pid, T))
        .await
        .unwrap()
}

/// The test venv's python (`python/build.sh --dev` installs the PyPI
/// `sdnotify` package into it); a missing one fails and says how to get it.
fn venv_python_with_sdnotify() -> std::path::PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/.venv/bin/python");
    let found = std::process::Command::new(&python)
        .args(["-c", "import sdnotify"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{} cannot import sdnotify: run python/build.sh --dev",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread")]
async fn the_unmodified_pypi_sdnotify_client_is_ready_and_beats_under_berth() {
    let python = venv_python_with_sdnotify();
    let e = env();
    // The library as its README shows it: nothing berth-specific.
    let mut b = scripted(
        &e,
        "pypi",
        &format!(
            r#"exec {} -c '
import time, sdnotify
n = sdnotify.SystemdNotifier()
time.sleep(0.5)
n.notify("STATUS=from sdnotify")
n.notify("READY=1")
while True:
    n.notify("WATCHDOG=1")
    time.sleep(0.2)
'"#,
            python.display()
        ),
    );
    b.ready = notify_ready(Duration::from_secs(15));
    b.health = watchdog(Duration::from_millis(800));
    apply_and_start(&e, b).await.unwrap();
    let s = wait_running(&e, "pypi").await;
    assert_eq!(s.status_line.as_deref(), Some("from sdnotify"));
    let pid = s.pid;
    let s = wait_for(&e.sup, "pypi", T, |s| s.healthy == Some(true)).await;
    assert_eq!(s.pid, pid);
    // Many watchdog periods later: still the same healthy run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = e.sup.snapshot().get("pypi").unwrap().clone();
    assert_eq!(
        (s.state, s.pid, s.healthy, s.restarts),
        (State::Running, pid, Some(true), 0),
        "{s:#?}"
    );
    e.sup.command("pypi", Verb::Stop).await.unwrap();
    assert_eq!(e.sup.snapshot().get("pypi").unwrap().state, State::Stopped);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pyinstaller_build_is_ready_by_notify_and_stays_healthy_under_a_watchdog() {
    let Some(exe) = crate::util::pyinstaller_backend() else {
        return;
    };
    let e = env();
    // The issue's 2 s watchdog (a heartbeat every second) and the 10 s one
    // of the docs (every 5 s), side by side for longer than 10 s.
    let mut backends = Vec::new();
    for (id, period) in [("py2", 2), ("py10", 10)] {
        let mut b = backend(e.path(), id, &exe);
        b.args = vec!["--port".into(), "0".into()];
        b.stop.timeout = Duration::from_secs(5);
        b.ready = notify_ready(Duration::from_secs(30));
        b.health = watchdog(Duration::from_secs(period));
        b.restart.policy = RestartPolicy::OnFailure;
        backends.push(b);
    }
    e.sup.apply(catalog(backends)).await;
    let mut pids = Vec::new();
    for id in ["py2", "py10"] {
        e.sup.command(id, Verb::start()).await.unwrap();
        let s = wait_for(&e.sup, id, Duration::from_secs(60), |s| {
            s.state == State::Running
        })
        .await;
        pids.push(s.pid.unwrap());
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(12) {
        for (id, pid) in ["py2", "py10"].iter().zip(&pids) {
            let s = e.sup.snapshot().get(id).unwrap().clone();
            assert_eq!(
                (s.state, s.pid, s.restarts, s.error.as_deref()),
                (State::Running, Some(*pid), 0, None),
                "{id} after {:?}: {s:#?}",
                t0.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for id in ["py2", "py10"] {
        let s = e.sup.snapshot().get(id).unwrap().clone();
        assert_eq!(s.healthy, Some(true), "{id}: no heartbeat seen: {s:#?}");
    }
    // sd_notify or not, it still prints its JSON lines.
    let log = e.log("py2");
    assert!(log.contains(r#""status": "ready""#), "{log}");
    for (id, pid) in ["py2", "py10"].iter().zip(&pids) {
        let members = crate::util::group_pids(*pid);
        let t = Instant::now();
        e.sup.command(id, Verb::Stop).await.unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "{id} took the SIGKILL path"
        );
        for m in &members {
            assert!(!crate::util::running(*m), "{m} of {id} survived");
        }
        let s = e.sup.snapshot().get(id).unwrap().clone();
        assert_eq!((s.state, s.error), (State::Stopped, None));
        assert!(
            e.log(id)
                .lines()
                .any(|l| l.ends_with(r#"stdout {"status": "stopped"}"#)),
            "{id} did not stop gracefully:\n{}",
            e.log(id)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn extend_timeout_holds_off_not_ready_and_stopping_makes_an_exit_the_backends_own() {
    let e = env();
    // Asks for 6 s more at once, is ready after 4 s (past its 3 s timeout:
    // python's own start-up must fit in the 3 s on a loaded machine), then
    // announces its exit and exits 1.
    let mut b = scripted(
        &e,
        "polite",
        &notifier(
            r#"notify("EXTEND_TIMEOUT_USEC=6000000")
time.sleep(4)
notify("READY=1")
time.sleep(0.5)
notify("STOPPING=1")
time.sleep(0.5)
raise SystemExit(1)"#,
        ),
    );
    b.ready = notify_ready(Duration::from_secs(3));
    b.restart.policy = RestartPolicy::OnFailure;
    b.restart.backoff = Duration::from_millis(100);
    let t0 = Instant::now();
    apply_and_start(&e, b).await.unwrap();
    let mut rx = e.sup.subscribe();
    let s = loop {
        let s = rx.borrow_and_update().get("polite").cloned().unwrap();
        assert_eq!(
            s.error,
            None,
            "the extended timeout was not honoured after {:?}",
            t0.elapsed()
        );
        if s.state != State::Starting {
            break s;
        }
        tokio::time::timeout(T, rx.changed())
            .await
            .unwrap()
            .unwrap();
    };
    assert_eq!(s.state, State::Running);
    let s = wait_for(&e.sup, "polite", T, |s| !s.state.has_process()).await;
    assert_eq!(
        (s.state, s.exit_code, s.restarts),
        (State::Exited, Some(1), 0),
        "an announced exit was restarted as a crash: {s:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watchdog_trigger_fails_at_once_and_restarts_by_the_policy() {
    let e = env();
    let mut b = scripted(
        &e,
        "hung",
        &notifier(
            r#"notify("READY=1")
notify("WATCHDOG=1")
time.sleep(0.3)
notify("WATCHDOG=trigger")
time.sleep(60)"#,
        ),
    );
    b.ready = notify_ready(Duration::from_secs(15));
    b.health = watchdog(Duration::from_secs(60));
    b.restart.policy = RestartPolicy::Always;
    b.restart.max_retries = 1;
    b.restart.backoff = Duration::from_millis(100);
    apply_and_start(&e, b).await.unwrap();
    let t0 = Instant::now();
    let s = wait_for(&e.sup, "hung", T * 2, |s| s.state == State::Failed).await;
    // Twice (a restart), each long before its 60 s watchdog.
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert_eq!(s.restarts, 1);
    assert_eq!(
        s.error.as_deref(),
        Some(
            "watchdog: the backend reported a failure (WATCHDOG=trigger); gave up after 1 retries"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_on_the_port_of_the_ready_line_passes_as_the_shipped_manifest_asks() {
    let e = env();
    // backend.py itself, as backends/python.yaml runs its frozen build:
    // `--port 0`, ready by its JSON line, checked on the port that line gave.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/backend.py");
    let mut b = scripted(
        &e,
        "py",
        &format!("exec python3 {} --port 0", script.display()),
    );
    b.ready = ready_spec(status_ready(), Duration::from_secs(30));
    b.health = Some(HealthSpec {
        check: HealthCheck::Http(
            Template::parse("http://127.0.0.1:${ready.port}/api/status").unwrap(),
        ),
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        failures: 3,
        headers: Vec::new(),
    });
    apply_and_start(&e, b).await.unwrap();
    let s = wait_for(&e.sup, "py", T * 3, |s| s.healthy == Some(true)).await;
    assert_eq!((s.state, s.error), (State::Running, None));
    e.sup.command("py", Verb::Stop).await.unwrap();
}
