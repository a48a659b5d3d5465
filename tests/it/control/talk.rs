//! Talking to backends through the real binary (issue #13): `berth send`
//! against the real PyInstaller build, a backend that never reads its stdin,
//! each action kind, `start -- ARGS`, `ready_json` and the ready line's place
//! in the log.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::home::*;

/// The shipped manifest (backends/python.yaml, its actions and sandbox
/// included) pointed at the real PyInstaller build.
fn shipped_python(home: &Home) -> bool {
    let Some(exe) = crate::util::pyinstaller_backend() else {
        return false;
    };
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("backends/python.yaml"),
    )
    .unwrap();
    let digest = berth::integrity::hash_file(&exe).unwrap().to_string();
    let manifest = shipped
        .replace("../python/dist/backend", &exe.display().to_string())
        .replace(&"0".repeat(64), &digest);
    std::fs::write(home.backends().join("python.yaml"), manifest).unwrap();
    true
}

#[test]
fn send_wait_gets_the_pong_of_the_pyinstaller_build_and_ready_json_holds_its_port() {
    let home = Home::new();
    if !shipped_python(&home) {
        return;
    }
    let (path, record) = crate::util::recording_opener(home.path());
    let _l = home.launch_with_cmd(&[], |c| {
        c.env("PATH", &path);
    });
    let out = home.run(&["start", "python"]);
    assert_eq!(out.code(), 0, "{out:?}");
    // When start returns, the ready line is already in the log file.
    let log = std::fs::read_to_string(home.log("python")).unwrap();
    assert!(log.contains("stdout {\"status\": \"ready\""), "{log}");
    let status = home.status_of("python");
    let port = status["ready_json"]["port"].as_u64().unwrap();
    assert!(port > 0, "{status}");
    assert_eq!(status["ready_json"]["status"], "ready");
    // port: auto (issue #25): the port berth chose, passed as --port.
    assert_eq!(status["port"], port, "{status}");
    assert_eq!(
        status["args"],
        serde_json::json!(["--port", port.to_string()])
    );
    assert_eq!(
        status["actions"],
        serde_json::json!([
            { "label": "Open web UI", "available": true },
            { "label": "Ping", "available": true }
        ])
    );

    let out = send_wait(&home, "python", r#"{"action": "ping", "id": 7}"#, "id=7");
    let reply: serde_json::Value = serde_json::from_str(out.stdout().trim()).unwrap();
    assert_eq!(reply, serde_json::json!({"reply": "pong", "id": 7}));

    // A wait that nothing answers exits 1 at its timeout, in one line.
    let out = home.run(&[
        "send",
        "python",
        r#"{"action": "ping", "id": 8}"#,
        "--wait",
        "id=9",
        "--timeout",
        "300ms",
    ]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(
        out.stderr().trim(),
        format!("berth: no stdout JSON object with id=9 from python within 300ms"),
        "{out:?}"
    );

    // The shipped actions: Ping reaches the backend, Open web UI opens a
    // URL the backend really serves.
    let out = home.run(&["action", "python", "Ping"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(home.log("python"))
            .unwrap_or_default()
            .contains("stdout {\"reply\": \"pong\"}")
    }));
    let out = home.run(&["action", "python", "Open web UI"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let url = format!("http://127.0.0.1:{port}/api/status");
    assert_eq!(wait_for_lines(&record, 1), [url.as_str()]);
    let mut http = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    http.write_all(b"GET /api/status HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut http, &mut answer).unwrap();
    assert!(answer.contains(" 200 "), "{answer}");

    home.run(&["stop", "python"]);
    let status = home.status_of("python");
    assert_eq!(status["ready_json"], serde_json::Value::Null);
    // The last run's arguments stay visible; its port went with it.
    assert_eq!(status["port"], serde_json::Value::Null, "{status}");
    assert_eq!(
        status["args"],
        serde_json::json!(["--port", port.to_string()])
    );
}

/// `berth send ID JSON --wait KEY=VALUE`, which must succeed.
#[track_caller]
fn send_wait(home: &Home, id: &str, json: &str, wait: &str) -> Out {
    let out = home.run(&["send", id, json, "--wait", wait]);
    assert_eq!(out.code(), 0, "{out:?}");
    out
}

/// `out` exited `code` with one stderr line that contains `text`.
#[track_caller]
fn refused(out: &Out, code: i32, text: &str) {
    assert_eq!(out.code(), code, "{out:?}");
    let err = out.stderr();
    assert!(err.contains(text) && one_line(&err), "{out:?}");
}

#[test]
fn send_refusals_have_one_line_and_the_documented_exit_code() {
    let home = Home::new();
    home.backend("idle", "exec sleep 600", "");
    let _l = home.launch();
    refused(
        &home.run(&["send", "idle", "{}"]),
        1,
        "idle: cannot send while stopped: it is not running",
    );
    refused(
        &home.run(&["send", "nope", "{}"]),
        1,
        "no backend with id \"nope\"",
    );
    // Usage errors: clap's hint may follow the first line.
    let out = home.run(&["send", "idle", "{not json"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("is not JSON"), "{out:?}");
    let out = home.run(&["send", "idle", "{}", "--wait", "novalue"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("expected KEY=VALUE"), "{out:?}");
    let out = home.run(&["send", "idle", "{}", "--timeout", "5"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert_eq!(home.run(&["start", "idle"]).code(), 0);
    let big = format!("\"{}\"", "x".repeat(70 * 1024));
    refused(
        &home.run(&["send", "idle", &big]),
        1,
        "over the limit of 65536 (64 KiB)",
    );
}

#[test]
fn a_backend_that_never_reads_stdin_fills_its_queue_and_nobody_else_waits() {
    let home = Home::new();
    home.backend("deaf", "exec sleep 600", "");
    // A second backend that answers every line it reads.
    home.backend(
        "echo",
        "while read -r line; do echo \"{\\\"echo\\\": 1, \\\"n\\\": $(echo \"$line\" | tr -dc 0-9)}\"; done",
        "",
    );
    let _l = home.launch();
    for id in ["deaf", "echo"] {
        assert_eq!(home.run(&["start", id]).code(), 0);
    }
    // One connection, 60 KiB lines, until the queue (1 MiB) and the pipe
    // (64 KiB) are full: about 18 lines.
    let mut stream = UnixStream::connect(home.socket()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let chunk = "y".repeat(60 * 1024);
    let mut refused = None;
    for n in 0..40 {
        let request = serde_json::json!({"cmd": "send", "id": "deaf", "line": chunk});
        let started = Instant::now();
        writeln!(stream, "{request}").unwrap();
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "send {n} blocked"
        );
        let reply = crate::protocol::check::reply(request.to_string().as_bytes(), &reply);
        if reply["ok"] == false {
            refused = Some((n, reply["error"].as_str().unwrap().to_owned()));
            break;
        }
    }
    let (n, error) = refused.expect("never refused");
    assert_eq!(error, "stdin of deaf is full (not reading)");
    assert!((16..=20).contains(&n), "refused after {n} lines");

    // Everything else keeps answering at once.
    let started = Instant::now();
    assert_eq!(home.status_of("deaf")["state"], "running");
    let out = home.run(&["send", "echo", r#"{"n": 42}"#, "--wait", "n=42"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout().contains("\"echo\":1"), "{out:?}");
    // The queue is full for a line of that size (a small one may still fit).
    let out = home.run(&["send", "deaf", &format!("\"{chunk}\"")]);
    assert_eq!(out.code(), 1);
    assert!(out.stderr().contains("is full (not reading)"), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // And the deaf one still stops.
    assert_eq!(home.run(&["stop", "deaf"]).code(), 0);
}

#[test]
fn each_action_kind_runs_from_the_cli() {
    let home = Home::new();
    let (path, record) = crate::util::recording_opener(home.path());
    home.backend(
        "web",
        "echo '{\"status\": \"ready\", \"port\": 4321}'\nwhile read -r line; do echo \"got $line\"; done",
        "ready: { stdout_json: { status: ready } }\nactions:\n  - label: Open web UI\n    open: \"http://127.0.0.1:${ready.port}/x?id=${id}\"\n  - label: Docs\n    open: \"/usr/share/doc/${id}\"\n  - label: Reindex\n    send: { action: reindex }\n  - label: Debug\n    restart: [\"--debug\"]\n",
    );
    let _l = home.launch_with_cmd(&[], |c| {
        c.env("PATH", &path);
    });

    // Stopped: only what needs no run is available.
    let status = home.status_of("web");
    let available: Vec<bool> = status["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["available"].as_bool().unwrap())
        .collect();
    assert_eq!(available, [false, true, false, true], "{status}");
    let out = home.run(&["action", "web", "Open web UI"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr().contains("${ready.port} is not known") && one_line(&out.stderr()),
        "{out:?}"
    );
    let out = home.run(&["action", "web", "Nope"]);
    assert_eq!(out.code(), 1);
    assert!(out.stderr().contains("has no action \"Nope\""), "{out:?}");

    // restart with arguments: starts it, with them appended.
    let out = home.run(&["action", "web", "Debug"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        home.status_of("web")["args"],
        serde_json::json!(["--debug"])
    );

    let out = home.run(&["action", "web", "Open web UI"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout().contains("http://127.0.0.1:4321/x?id=web"),
        "{out:?}"
    );
    let out = home.run(&["action", "web", "Docs"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let opened = wait_for_lines(&record, 2);
    assert_eq!(
        opened,
        ["http://127.0.0.1:4321/x?id=web", "/usr/share/doc/web"]
    );

    let out = home.run(&["action", "web", "Reindex"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(home.log("web"))
            .unwrap_or_default()
            .contains("stdout got {\"action\":\"reindex\"}")
    }));

    // A plain restart forgets the ARGS.
    assert_eq!(home.run(&["restart", "web"]).code(), 0);
    assert_eq!(home.status_of("web")["args"], serde_json::json!([]));
}

fn wait_for_lines(file: &std::path::Path, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    wait_until(Duration::from_secs(10), || {
        lines = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.len() >= n
    });
    lines
}

#[test]
fn start_args_are_repeated_by_automatic_restarts_and_dropped_by_a_plain_start() {
    let home = Home::new();
    let calls = home.path().join("calls.txt");
    home.backend(
        "flaky",
        &format!("echo \"$*\" >> {}\nsleep 0.2\nexit 3", calls.display()),
        // Running at spawn (v1's probe): each run lives 0.2 s, under the
        // default `{ uptime: 1s }`.
        "args: [\"--base\"]\nready: { uptime: 0s }\nrestart: { policy: on-failure, max_retries: 2, backoff: 100ms }\n",
    );
    let _l = home.launch();
    let out = home.run(&["start", "flaky", "--", "--port", "0"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let lines = wait_for_lines(&calls, 3);
    assert_eq!(lines, ["--base --port 0"; 3], "{lines:?}");
    assert!(wait_until(Duration::from_secs(10), || {
        home.status_of("flaky")["state"] == "failed"
    }));
    assert_eq!(
        home.status_of("flaky")["args"],
        serde_json::json!(["--base", "--port", "0"])
    );
    home.run(&["start", "flaky"]);
    let lines = wait_for_lines(&calls, 4);
    assert_eq!(lines[3], "--base");
}

/// The socket writes to a running backend without asking its job, so this
/// checks the two things the job still decides: once a stop begins, a line
/// is refused with the state and never reaches the process; and a stdout
/// line with a `status` still updates the status while the replies around
/// it answer their senders.
#[test]
fn a_stopping_backend_takes_no_more_lines_and_status_lines_still_count() {
    let home = Home::new();
    let seen = home.path().join("seen");
    // Echoes each line to stdout and to `seen`; takes its time to stop.
    home.backend(
        "slow",
        &format!(
            "trap 'sleep 5' TERM\nwhile read -r line; do echo \"$line\"; echo \"$line\" >> {}; done",
            seen.display()
        ),
        "",
    );
    let _l = home.launch();
    assert_eq!(home.run(&["start", "slow"]).code(), 0);

    send_wait(&home, "slow", r#"{"status": "busy", "n": 1}"#, "n=1");
    send_wait(&home, "slow", r#"{"n": 2}"#, "n=2");
    assert_eq!(home.status_of("slow")["status_line"], "busy");

    let stop = home.berth(&["stop", "slow"]).spawn().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || home.status_of("slow")["state"]
            == "stopping"),
        "never stopping"
    );
    refused(
        &home.run(&["send", "slow", r#"{"n": 3}"#]),
        1,
        "slow: cannot send while stopping",
    );
    let out = stop.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
}

/// Issue #23, point 5: the ready line is the backend's word, and it must not
/// move an `open` action to another host, turn it into a `file:` URL or an
/// option of `xdg-open`. Each is refused with its reason; the opener sees
/// only the target that kept the manifest's host.
#[test]
fn an_open_action_is_not_steered_by_the_ready_line() {
    let home = Home::new();
    let (path, record) = crate::util::recording_opener(home.path());
    home.backend(
        "web",
        "echo '{\"status\": \"ready\", \"port\": \"1@evil.example\", \"url\": \"file:///etc/passwd\", \"flag\": \"--version\", \"good\": 4321}'\nsleep 60",
        "ready: { stdout_json: { status: ready } }\nactions:\n  - { label: Host, open: \"http://127.0.0.1:${ready.port}/ui\" }\n  - { label: File, open: \"${ready.url}\" }\n  - { label: Flag, open: \"${ready.flag}\" }\n  - { label: Good, open: \"http://127.0.0.1:${ready.good}/ui\" }\n",
    );
    let _l = home.launch_with_cmd(&[], |c| {
        c.env("PATH", &path);
    });
    assert_eq!(home.run(&["start", "web"]).code(), 0);
    let available: Vec<bool> = home.status_of("web")["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["available"].as_bool().unwrap())
        .collect();
    assert_eq!(available, [false, false, false, true]);
    for (label, reason) in [
        (
            "Host",
            "its host is \"evil.example\", the manifest wrote \"127.0.0.1\"",
        ),
        ("File", "neither an http(s) URL"),
        ("Flag", "neither an http(s) URL"),
    ] {
        let out = home.run(&["action", "web", label]);
        assert_eq!(out.code(), 1, "{label}: {out:?}");
        assert!(
            out.stderr().contains(reason) && one_line(&out.stderr()),
            "{label}: {out:?}"
        );
    }
    assert_eq!(home.run(&["action", "web", "Good"]).code(), 0);
    assert_eq!(wait_for_lines(&record, 1), ["http://127.0.0.1:4321/ui"]);
    // Nothing else reached the opener.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(wait_for_lines(&record, 1), ["http://127.0.0.1:4321/ui"]);
}

/// Issue #23, point 13: a `send` line of the documented 64 KiB was refused,
/// because the request around it counted against the socket's line limit.
#[test]
fn a_send_line_of_exactly_64_kib_is_accepted() {
    let home = Home::new();
    home.backend(
        "reader",
        "echo '{\"status\": \"ready\"}'\nwhile read -r line; do echo \"got ${#line}\"; done",
        "ready: { stdout_json: { status: ready } }\n",
    );
    let _l = home.launch();
    assert_eq!(home.run(&["start", "reader"]).code(), 0);
    // A JSON string: its quotes count, so the compact line is 65536 bytes.
    let line = format!("\"{}\"", "x".repeat(64 * 1024 - 2));
    let out = home.run(&["send", "reader", &line]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(home.log("reader"))
            .unwrap_or_default()
            .contains("stdout got 65536")
    }));
    // One byte more is refused, in one line.
    let line = format!("\"{}\"", "x".repeat(64 * 1024 - 1));
    let out = home.run(&["send", "reader", &line]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("over the limit"), "{out:?}");
}

/// Issue #23, point 13: a backend that had said `{"status": "ready"}` kept
/// showing "ready" once stopped or exited; the status line goes with its run.
#[test]
fn the_status_line_is_cleared_with_its_run() {
    let home = Home::new();
    home.backend(
        "said",
        "echo '{\"status\": \"ready\"}'\nread -r line\nexit 1",
        "ready: { stdout_json: { status: ready } }\n",
    );
    let _l = home.launch();
    for end in ["stop", "exit"] {
        assert_eq!(home.run(&["start", "said"]).code(), 0);
        assert_eq!(home.status_of("said")["status_line"], "ready");
        match end {
            "stop" => assert_eq!(home.run(&["stop", "said"]).code(), 0),
            _ => {
                assert_eq!(home.run(&["send", "said", "1"]).code(), 0);
                assert!(wait_until(Duration::from_secs(10), || {
                    home.status_of("said")["state"] == "exited"
                }));
            }
        }
        let status = home.status_of("said");
        assert_eq!(status["status_line"], serde_json::Value::Null, "{status}");
    }
}
