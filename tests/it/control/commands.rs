//! status / start / stop / restart through the real launcher, and protocol abuse.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::home::*;

// ---------------------------------------------------------------- commands

#[test]
fn status_prints_a_table_and_the_documented_json() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    std::fs::write(home.backends().join("broken.yaml"), "id: [\n").unwrap();
    let _l = home.launch();
    // An error is shown once its file has been unchanged for 1 s.
    assert!(wait_until(Duration::from_secs(10), || home
        .status_json()
        .len()
        == 2));

    let out = home.run(&["status"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let text = out.stdout();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for col in [
        "ID", "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "CPU", "MEMORY", "VERSION", "READY",
        "ERROR",
    ] {
        assert!(lines[0].contains(col), "{col} missing: {text}");
    }
    assert!(
        lines[1].starts_with("alpha") && lines[1].contains("stopped"),
        "{text}"
    );
    assert!(
        lines[2].contains("invalid") && lines[2].contains("broken.yaml"),
        "{text}"
    );

    let list = home.status_json();
    assert_eq!(list.len(), 2);
    let keys: Vec<&str> = list[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "id",
        "name",
        "version",
        "path",
        "error",
        "status_line",
        "signal",
        "file",
        "state",
        "pid",
        "uptime_s",
        "rss_bytes",
        "exit_code",
        "cpu_percent",
        "ready",
        "pending_restart",
        "restarts",
        "args",
        "healthy",
        "last_stderr",
        "signed_by",
        "sandbox",
        "actions",
        "ready_json",
        "port",
        "token",
        "depends_on",
        "waiting_for",
        "update",
    ];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(list[1]["id"], serde_json::Value::Null);
    assert_eq!(list[1]["state"], "invalid");
    assert!(list[1]["file"].as_str().unwrap().starts_with('/'));
}

/// CPU and memory are sampled when `status` asks (not in the background):
/// the very first `status` of a busy backend shows its load and memory, a
/// quiet one shows next to no CPU, and the next `status` measures again.
#[test]
fn status_shows_the_cpu_and_memory_of_a_busy_backend_at_once() {
    let home = Home::new();
    home.backend("busy", "while :; do :; done", "");
    home.backend("quiet", "exec sleep 600", "");
    let _l = home.launch();
    for id in ["busy", "quiet"] {
        let out = home.run(&["start", id]);
        assert_eq!(out.code(), 0, "{out:?}");
    }
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..2 {
        let busy = home.status_of("busy");
        let cpu = busy["cpu_percent"].as_f64().unwrap_or(-1.0);
        assert!(cpu > 10.0, "busy cpu {cpu}: {busy}");
        assert!(busy["rss_bytes"].as_u64().is_some_and(|r| r > 0), "{busy}");
        let quiet = home.status_of("quiet");
        let cpu = quiet["cpu_percent"].as_f64().unwrap_or(-1.0);
        assert!((0.0..5.0).contains(&cpu), "quiet cpu {cpu}: {quiet}");
        assert!(
            quiet["rss_bytes"].as_u64().is_some_and(|r| r > 0),
            "{quiet}"
        );
        std::thread::sleep(Duration::from_millis(700));
    }
}

#[test]
fn start_stop_restart_wait_for_the_outcome() {
    let home = Home::new();
    home.backend(
        "alpha",
        r#"echo '{"status": "ready"}'; exec sleep 600"#,
        "ready: { stdout_json: { status: ready }, timeout: 10s }\n",
    );
    let _l = home.launch();

    let out = home.run(&["start", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout().starts_with("alpha: running (pid "), "{out:?}");
    let status = home.status_of("alpha");
    assert_eq!(status["state"], "running");
    assert_eq!(status["ready"], true);
    let pid = status["pid"].as_u64().unwrap();
    assert!(alive(pid));

    let out = home.run(&["start", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stderr(), "berth: alpha is already running\n");

    let out = home.run(&["restart", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let new_pid = home.status_of("alpha")["pid"].as_u64().unwrap();
    assert_ne!(pid, new_pid);
    assert!(!alive(pid));

    let out = home.run(&["stop", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "alpha: stopped\n");
    assert!(!alive(new_pid), "stop returns once the process is gone");

    let out = home.run(&["stop", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr().starts_with("berth: ") && one_line(&out.stderr()),
        "{out:?}"
    );
}

#[test]
fn a_start_that_does_not_reach_running_exits_1_with_the_reason() {
    let home = Home::new();
    let ready = "ready: { stdout_json: { status: ready }, timeout: 1s }\n";
    home.backend("crash", "echo boom >&2; exit 3", ready);
    home.backend("mute", "exec sleep 600", ready);
    home.backend("tampered", "exec sleep 600", "");
    std::fs::write(
        home.backends().join("tampered.sh"),
        "#!/bin/sh\necho evil\n",
    )
    .unwrap();
    // A manifest with a typo defines no id: its own error is the answer.
    std::fs::write(
        home.backends().join("typo.yaml"),
        "id: typo\nname: Typo\nversion: 1.0\n",
    )
    .unwrap();
    let _l = home.launch();

    let out = home.run(&["start", "typo"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(
        out.stderr()
            .starts_with("berth: no backend with id \"typo\": ")
            && out.stderr().contains("typo.yaml is invalid: ")
            && out.stderr().contains("version"),
        "{out:?}"
    );

    let out = home.run(&["start", "crash"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(out.stderr(), "berth: crash: exited (code 3)\n");

    let out = home.run(&["start", "mute"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(out.stderr(), "berth: mute: starting: not ready after 1s\n");

    let out = home.run(&["start", "tampered"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().starts_with("berth: tampered: "), "{out:?}");
    assert!(out.stderr().contains("checksum mismatch"), "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");

    let out = home.run(&["start", "ghost"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(out.stderr(), "berth: no backend with id \"ghost\"\n");
}

// ---------------------------------------------------------------- protocol

#[test]
fn the_real_launcher_survives_protocol_abuse() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    let _l = home.launch();
    let sock = home.socket();

    for (line, want) in [
        (&b"garbage\n"[..], "request is not JSON"),
        (b"{\"cmd\":\"dance\"}\n", "unknown command \"dance\""),
        (b"{\"cmd\":\"start\"}\n", "missing field `id`"),
        (
            b"{\"cmd\":\"stop\",\"id\":\"ghost\"}\n",
            "no backend with id \"ghost\"",
        ),
        (b"\xff\xff\n", "request is not UTF-8"),
    ] {
        let reply = raw(&sock, line);
        assert_eq!(reply["ok"], false);
        assert!(reply["error"].as_str().unwrap().contains(want), "{reply}");
    }

    // A 10 MB line: an error reply, then the connection is closed.
    let mut s = UnixStream::connect(&sock).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..10 {
            if w.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got); // ends in EOF or ECONNRESET
    writer.join().unwrap();
    crate::protocol::check::lines(b"", &String::from_utf8_lossy(&got));
    assert_eq!(
        String::from_utf8_lossy(&got),
        "{\"ok\":false,\"error\":\"request line over 68 KiB\"}\n"
    );

    // 200 clients at once, half of them talking nonsense.
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let line: &[u8] = if i % 2 == 0 {
                    b"{\"cmd\":\"status\"}\n"
                } else {
                    b"{]\n"
                };
                raw(&sock, line)["ok"] == (i % 2 == 0)
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap());
    }
    assert_eq!(raw(&sock, b"{\"cmd\":\"status\"}\n")["ok"], true);
}

#[test]
fn a_silent_client_is_closed_after_10_seconds() {
    let home = Home::new();
    let _l = home.launch();
    let mut s = UnixStream::connect(home.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let t0 = Instant::now();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    let waited = t0.elapsed();
    crate::protocol::check::lines(b"", &got);
    assert!(waited >= Duration::from_secs(9), "closed after {waited:?}");
    assert!(got.contains("no request for 10s"), "{got}");
    assert_eq!(home.run(&["status"]).code(), 0, "still serving");
}
