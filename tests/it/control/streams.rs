//! `watch` and `logs` on the socket, and `berth status --watch` (issue #24,
//! points 4 and 5): real launcher, real backends, raw sockets as clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::home::*;

/// A client that sent one streaming request and reads its lines.
pub struct Stream {
    reader: BufReader<UnixStream>,
    /// What was asked, to check each line against its schema.
    request: String,
}

impl Stream {
    pub fn open(socket: &Path, request: &str) -> Self {
        let mut s = UnixStream::connect(socket).unwrap();
        s.write_all(format!("{request}\n").as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Self {
            reader: BufReader::new(s),
            request: request.to_owned(),
        }
    }

    /// The next line as JSON; panics after 30 s of silence or at the end.
    pub fn next(&mut self) -> serde_json::Value {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .expect("a line within 30 s");
        assert!(n > 0, "the stream ended");
        crate::protocol::check::stream(self.request.as_bytes(), &line)
    }

    /// Lines until one satisfies `done` (included).
    pub fn until(
        &mut self,
        mut done: impl FnMut(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let mut seen = Vec::new();
        loop {
            let v = self.next();
            let stop = done(&v);
            seen.push(v);
            if stop {
                return seen;
            }
        }
    }
}

/// The states of `id` in the `status` events among `lines`, repeats merged.
fn states(lines: &[serde_json::Value], id: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in lines {
        if v["event"] == "status" && v["backend"]["id"] == id {
            let s = v["backend"]["state"].as_str().unwrap().to_owned();
            if out.last() != Some(&s) {
                out.push(s);
            }
        }
    }
    out
}

fn is_state(v: &serde_json::Value, id: &str, state: &str) -> bool {
    v["event"] == "status" && v["backend"]["id"] == id && v["backend"]["state"] == state
}

#[test]
fn a_watch_sees_starting_running_stopped_and_a_deleted_file_as_removed() {
    let home = Home::new();
    home.backend(
        "slow",
        "sleep 1\necho '{\"status\": \"ready\"}'\nexec sleep 600",
        "ready: { stdout_json: { status: ready }, timeout: 20s }\n",
    );
    let _l = home.launch();
    let mut w = Stream::open(&home.socket(), r#"{"cmd": "watch"}"#);
    let first = w.next();
    assert_eq!(first["ok"], true, "{first}");
    let list = first["data"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "stopped");
    let file = list[0]["file"].as_str().unwrap().to_owned();

    assert_eq!(home.run(&["start", "slow"]).code(), 0);
    let seen = w.until(|v| is_state(v, "slow", "running"));
    assert_eq!(states(&seen, "slow"), ["starting", "running"], "{seen:?}");
    // Reading `status` samples CPU and memory, which the snapshots carry:
    // a running backend that only ages sends no line for it.
    for _ in 0..3 {
        assert_eq!(home.status_of("slow")["state"], "running");
    }
    assert_eq!(home.run(&["stop", "slow"]).code(), 0);
    let seen = w.until(|v| is_state(v, "slow", "stopped"));
    let after = states(&seen, "slow");
    assert!(
        after == ["stopping", "stopped"] || after == ["stopped"],
        "nothing but the stop after running: {seen:?}"
    );

    std::fs::remove_file(&file).unwrap();
    let seen = w.until(|v| v["event"] == "removed");
    assert_eq!(seen.last().unwrap()["file"], file.as_str(), "{seen:?}");
}

/// Whether the launcher has closed `s` (a Unix socket reports the hang-up
/// even with unread data queued).
fn closed_by_peer(s: &UnixStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(s.as_fd(), PollFlags::empty())];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|_| {
        fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
    })
}

// A watcher that does not read must cost the launcher at most 1 MiB and
// never hold up anyone else.
#[test]
fn a_watcher_that_does_not_read_is_closed_past_1_mib_and_status_still_answers() {
    let home = Home::new();
    // Each line changes its status line (4 KB long): a snapshot per line,
    // about 100 a second, so 1 MiB piles up in seconds, not at once.
    home.backend(
        "chatty",
        "pad=$(printf '%04000d' 0)\ni=0\nwhile :; do i=$((i+1)); echo \"{\\\"status\\\": \\\"$pad $i\\\"}\"; sleep 0.01; done",
        "",
    );
    let _l = home.launch();
    let mut stuck = UnixStream::connect(home.socket()).unwrap();
    stuck.write_all(b"{\"cmd\": \"watch\"}\n").unwrap();
    assert_eq!(home.run(&["start", "chatty"]).code(), 0);
    let started = Instant::now();
    let mut answered = 0;
    while !closed_by_peer(&stuck) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the non-reading watcher was never closed"
        );
        // Another client is answered meanwhile (its own 10 s bound).
        let out = home.run(&["status", "--json"]);
        assert_eq!(out.code(), 0, "{out:?}");
        answered += 1;
    }
    assert!(answered > 0);
    // What reached the socket before it closed: whole status lines, the
    // first of them the status reply.
    let mut text = Vec::new();
    stuck
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stuck.read_to_end(&mut text).unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.starts_with("{\"ok\":true,\"data\":["),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(text.contains("\"event\":\"status\""));
    let own = std::fs::read_to_string(home.path().join("state/berth/berth.log")).unwrap();
    assert!(own.contains("fell behind by over 1 MiB"), "{own}");
    // The launcher is still itself: it answers and stops the backend.
    assert_eq!(home.status_of("chatty")["state"], "running");
    assert_eq!(home.run(&["stop", "chatty"]).code(), 0);
}

#[test]
fn status_watch_json_prints_a_line_per_change_and_exits_0_when_the_launcher_quits() {
    let home = Home::new();
    let out = home.run(&["status", "--watch", "--json"]);
    assert_eq!(out.code(), 2, "no launcher: {out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");

    home.backend("one", "exec sleep 600", "");
    let mut l = home.launch();
    let mut cli = home
        .berth(&["status", "--watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cli.stdout.take().unwrap()).lines();
    let first = crate::protocol::check::watch_json(&lines.next().unwrap().unwrap(), true);
    assert_eq!(first[0]["id"], "one", "the status array first: {first}");
    assert_eq!(home.run(&["start", "one"]).code(), 0);
    loop {
        let line = lines.next().expect("a line per change").unwrap();
        let v = crate::protocol::check::watch_json(&line, false);
        assert_eq!(v["event"], "status", "{line}");
        if v["backend"]["state"] == "running" {
            break;
        }
    }
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait(Duration::from_secs(15)), Some(0), "{}", l.stderr());
    // The rest of the stream, then a clean end.
    for line in lines {
        let v = crate::protocol::check::watch_json(&line.unwrap(), false);
        assert_eq!(v["event"], "status");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = cli.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "status --watch outlived the launcher"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    cli.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("closed the stream"), "{err}");
}

#[test]
fn status_watch_prints_the_table_then_a_row_per_change() {
    let home = Home::new();
    home.backend("one", "exec sleep 600", "");
    let mut l = home.launch();
    let mut cli = home
        .berth(&["status", "--watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cli.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATE"),
        "{header}"
    );
    let row = lines.next().unwrap().unwrap();
    assert!(row.starts_with("one") && row.contains("stopped"), "{row}");
    assert_eq!(home.run(&["start", "one"]).code(), 0);
    loop {
        let row = lines.next().expect("a row per change").unwrap();
        assert!(row.starts_with("one"), "{row}");
        if row.contains("running") {
            break;
        }
    }
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait(Duration::from_secs(15)), Some(0));
    let _ = cli.wait();
}

/// The `log` events of `lines`: `(stream, line, run)`.
fn logged(lines: &[serde_json::Value]) -> Vec<(String, String, Option<u64>)> {
    lines
        .iter()
        .filter(|v| v["event"] == "log")
        .map(|v| {
            (
                v["stream"].as_str().unwrap().to_owned(),
                v["line"].as_str().unwrap().to_owned(),
                v["run"].as_u64(),
            )
        })
        .collect()
}

fn is_end(v: &serde_json::Value) -> bool {
    v.get("ok").is_some()
}

#[test]
fn logs_give_the_last_lines_with_stream_and_run_and_follow_across_a_restart() {
    let home = Home::new();
    home.backend(
        "two",
        "echo \"out $$\"\necho \"err $$\" >&2\nexec sleep 600",
        "",
    );
    let _l = home.launch();
    let refused = raw(
        &home.socket(),
        b"{\"cmd\": \"logs\", \"id\": \"nope\", \"follow\": true}\n",
    );
    assert_eq!(refused["error"], "no backend with id \"nope\"", "{refused}");

    assert_eq!(home.run(&["start", "two"]).code(), 0);
    let first = home.status_of("two")["pid"].as_u64().unwrap();
    // Both lines are in the log once the pump flushed them.
    assert!(wait_until(Duration::from_secs(15), || {
        std::fs::read_to_string(home.log("two")).is_ok_and(|t| t.lines().count() == 2)
    }));
    let mut follower = Stream::open(
        &home.socket(),
        r#"{"cmd": "logs", "id": "two", "follow": true, "lines": 10}"#,
    );
    let history = follower.until(is_end);
    assert_eq!(
        history.last().unwrap(),
        &serde_json::json!({"ok": true, "data": null})
    );
    let mut got = logged(&history);
    got.sort();
    assert_eq!(
        got,
        [
            ("stderr".to_owned(), format!("err {first}"), Some(first)),
            ("stdout".to_owned(), format!("out {first}"), Some(first)),
        ]
    );

    assert_eq!(home.run(&["restart", "two"]).code(), 0);
    let second = home.status_of("two")["pid"].as_u64().unwrap();
    assert_ne!(first, second);
    let mut live = Vec::new();
    while live.len() < 2 {
        live.extend(logged(&[follower.next()]));
    }
    live.sort();
    assert_eq!(
        live,
        [
            ("stderr".to_owned(), format!("err {second}"), Some(second)),
            ("stdout".to_owned(), format!("out {second}"), Some(second)),
        ]
    );

    // Without follow: the last lines, the end, and the connection goes on.
    let mut once = Stream::open(
        &home.socket(),
        r#"{"cmd": "logs", "id": "two", "lines": 3}"#,
    );
    let lines = once.until(is_end);
    let got = logged(&lines);
    assert_eq!(got.len(), 3, "{lines:?}");
    assert_eq!(
        got.iter().filter(|l| l.2 == Some(second)).count(),
        2,
        "{got:?}"
    );
    assert_eq!(
        got.iter().filter(|l| l.2 == Some(first)).count(),
        1,
        "{got:?}"
    );
    once.request = r#"{"cmd": "status"}"#.to_owned();
    once.reader
        .get_mut()
        .write_all(b"{\"cmd\": \"status\"}\n")
        .unwrap();
    let status = once.next();
    assert_eq!(status["data"][0]["id"], "two", "{status}");
}

#[test]
fn a_follower_gets_every_line_once_in_order_across_rotations() {
    let home = Home::new();
    let n = 2000;
    home.backend(
        "many",
        &format!(
            "i=0\nwhile [ $i -lt {n} ]; do i=$((i+1)); echo \"line $i ....................................................................................\"; done\nexec sleep 600"
        ),
        "",
    );
    let _l = home.launch_with(&["--log-max-size", "64KiB", "--log-backups", "5"]);
    let mut follower = Stream::open(
        &home.socket(),
        r#"{"cmd": "logs", "id": "many", "follow": true, "lines": 0}"#,
    );
    assert!(is_end(&follower.next()), "no history: the end at once");
    assert_eq!(home.run(&["start", "many"]).code(), 0);
    let pid = home.status_of("many")["pid"].as_u64().unwrap();
    let mut seen = 0;
    while seen < n {
        let v = follower.next();
        assert_eq!(v["event"], "log", "{v}");
        assert_eq!(v["run"].as_u64(), Some(pid));
        let line = v["line"].as_str().unwrap();
        let k: u32 = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(k, seen + 1, "lines in order, none lost or repeated: {line}");
        seen = k;
    }
    assert!(
        home.log("many").with_extension("log.2").exists(),
        "the log rotated while followed"
    );
}

#[test]
fn a_follower_that_does_not_read_is_closed_past_1_mib_and_the_backend_goes_on() {
    let home = Home::new();
    // 200,000 lines of 100 bytes: 20 MB, far past what a follower may owe.
    home.backend(
        "flood",
        "pad=$(printf '%0100d' 0)\ni=0\nwhile [ $i -lt 200000 ]; do i=$((i+1)); echo \"$pad\"; done\necho done\nexec sleep 600",
        "",
    );
    let _l = home.launch_with(&["--log-max-size", "64MB"]);
    let mut stuck = UnixStream::connect(home.socket()).unwrap();
    stuck
        .write_all(b"{\"cmd\": \"logs\", \"id\": \"flood\", \"follow\": true, \"lines\": 0}\n")
        .unwrap();
    assert_eq!(home.run(&["start", "flood"]).code(), 0);
    assert!(
        wait_until(Duration::from_secs(120), || closed_by_peer(&stuck)),
        "the non-reading follower was never closed"
    );
    let own = std::fs::read_to_string(home.path().join("state/berth/berth.log")).unwrap();
    assert!(
        own.contains("closing a logs client that fell behind"),
        "{own}"
    );
    // The backend was not held up: every line reached the log.
    assert!(wait_until(Duration::from_secs(120), || {
        std::fs::read_to_string(home.log("flood")).is_ok_and(|t| t.ends_with(" stdout done\n"))
    }));
    let log = std::fs::read_to_string(home.log("flood")).unwrap();
    assert_eq!(log.lines().count(), 200_001);
    let _ = stuck.read(&mut [0u8; 1]);
}
