//! When a started backend counts as running: the stdout JSON, TCP and HTTP
//! probes, a probe that times out, and what the status shows meanwhile
//! (status_line, error) and once running (CPU, RSS, uptime).

use berth::verb::Verb;
use std::time::Instant;

use super::*;

/// A free port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_json_readiness_and_status_line() {
    let e = env();
    let mut b = scripted(
        &e,
        "json",
        r#"echo '{"status": "booting"}'
sleep 0.5
echo '{"status": "ready", "port": 1}'
exec sleep 60"#,
    );
    b.ready = ready_spec(status_ready(), Duration::from_secs(15));
    apply_and_start(&e, b).await.unwrap();
    let s = wait_for(&e.sup, "json", T, |s| {
        s.status_line.as_deref() == Some("booting")
    })
    .await;
    assert_eq!(s.state, State::Starting);
    assert!(!s.ready);
    let s = wait_running(&e, "json").await;
    assert_eq!(s.status_line.as_deref(), Some("ready"));
    assert!(s.ready);
    e.sup.command("json", Verb::Stop).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_readiness() {
    let e = env();
    let port = free_port();
    let mut b = scripted(
        &e,
        "tcp",
        &format!(
            "sleep 0.5\nexec python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", {port})); s.listen(); time.sleep(60)'"
        ),
    );
    b.ready = ready_spec(
        Probe::Tcp(format!("127.0.0.1:{port}")),
        Duration::from_secs(15),
    );
    apply_and_start(&e, b).await.unwrap();
    assert_eq!(e.sup.snapshot().get("tcp").unwrap().state, State::Starting);
    wait_running(&e, "tcp").await;
    e.sup.command("tcp", Verb::Stop).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn http_readiness_needs_2xx() {
    let e = env();
    let port = free_port();
    // Answers 503 for the first second, then 200.
    let mut b = scripted(
        &e,
        "http",
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
    b.ready = ready_spec(
        Probe::Http(format!("http://127.0.0.1:{port}/api/status")),
        Duration::from_secs(15),
    );
    e.sup.apply(catalog([b])).await;
    let t0 = Instant::now();
    e.sup.command("http", Verb::start()).await.unwrap();
    wait_running(&e, "http").await;
    assert!(t0.elapsed() >= Duration::from_millis(900), "ready on a 503");
    e.sup.command("http", Verb::Stop).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_timeout_keeps_starting_then_a_late_match_runs() {
    let e = env();
    let mut b = scripted(
        &e,
        "late",
        "sleep 1.5\necho '{\"status\": \"ready\"}'\nexec sleep 60",
    );
    b.ready = ready_spec(status_ready(), Duration::from_millis(500));
    apply_and_start(&e, b).await.unwrap();
    let s = wait_for(&e.sup, "late", T, |s| s.error.is_some()).await;
    assert_eq!(s.state, State::Starting);
    assert_eq!(s.error.as_deref(), Some("not ready after 500ms"));
    let pid = s.pid;
    let s = wait_running(&e, "late").await;
    assert_eq!(s.error, None);
    assert_eq!(s.pid, pid, "nothing was restarted");
    e.sup.command("late", Verb::Stop).await.unwrap();
}

/// Usage is sampled when someone looks, not before: a busy backend shows
/// no figure until `look`, then its CPU and memory, and a second look
/// measures the time since the first.
#[tokio::test(flavor = "multi_thread")]
async fn cpu_and_rss_while_running() {
    let e = env();
    let b = scripted(&e, "busy", "while true; do :; done");
    apply_and_start(&e, b).await.unwrap();
    wait_running(&e, "busy").await;
    // Longer than the old once-a-second sampling.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = e.sup.snapshot().get("busy").unwrap().clone();
    assert_eq!(
        (s.cpu_percent, s.rss_bytes),
        (None, None),
        "sampled unasked"
    );
    e.sup.look().await;
    let s = e.sup.snapshot().get("busy").unwrap().clone();
    assert!(s.cpu_percent.is_some_and(|c| c > 5.0), "{s:?}");
    assert!(s.rss_bytes.is_some_and(|r| r > 0), "{s:?}");
    assert!(s.uptime_s.is_some_and(|u| u >= 1), "{s:?}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    e.sup.look().await;
    let again = e.sup.snapshot().get("busy").unwrap().clone();
    assert!(again.cpu_percent.is_some_and(|c| c > 5.0), "{again:?}");
    e.sup.command("busy", Verb::Stop).await.unwrap();
    let s = e.sup.snapshot().get("busy").unwrap().clone();
    assert_eq!((s.cpu_percent, s.rss_bytes, s.uptime_s), (None, None, None));
}
