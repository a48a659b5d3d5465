//! Desktop notifications, end to end: the real `berth run --headless`, a
//! private session bus, and Debian's `dunst` as the notification server
//! (`dunstctl history` shows what it received). Run under
//! `dbus-run-session -- xvfb-run -a cargo test --test it notify` (dunst needs
//! the X display).

mod session;
mod updates;

use std::time::{Duration, Instant};

use crate::desktop::Desktop;
use crate::util::script;
use session::{Berth, WAIT, backend, berth_pid, session};

const CRASH: &str =
    "echo 'Traceback (most recent call last):' >&2\necho 'ValueError: <boom> & more' >&2\nexit 3";

#[test]
fn crashes_failures_and_checksum_mismatches_notify_with_the_last_stderr_line() {
    let Some((dir, desktop, dunst)) = session("notify: each event") else {
        return;
    };
    backend(dir.path(), "quiet", "Quiet", CRASH, "notify: false\n");
    backend(dir.path(), "crasher", "Crasher", CRASH, "");
    backend(
        dir.path(),
        "giveup",
        "Give Up",
        CRASH,
        "restart: { policy: on-failure, max_retries: 1, backoff: 100ms }\n",
    );
    backend(
        dir.path(),
        "fails",
        "Fails",
        CRASH,
        "restart: { policy: on-failure, max_retries: 0 }\n",
    );
    backend(dir.path(), "stopme", "Stop Me", "exec sleep 300", "");
    backend(dir.path(), "tampered", "Tampered", "exec sleep 300", "");
    // Change the script after pinning its digest.
    std::fs::write(dir.path().join("tampered.sh"), "#!/bin/sh\necho evil\n").unwrap();
    let berth = Berth::start(&desktop, dir.path(), &[]);

    // A user's Stop never notifies; `notify: false` neither, crash or not.
    berth.cli(&desktop, &["start", "stopme"]);
    berth.wait_state(&desktop, "stopme", "running");
    assert!(berth.cli(&desktop, &["stop", "stopme"]).status.success());
    berth.cli(&desktop, &["start", "quiet"]);
    berth.wait_state(&desktop, "quiet", "exited");

    berth.cli(&desktop, &["start", "crasher"]);
    let crash = dunst.wait_for(&desktop, "Crasher crashed");
    assert_eq!(crash.body, "exited (code 3)\nValueError: <boom> & more");
    let status = berth.wait_state(&desktop, "crasher", "exited");
    assert_eq!(status["last_stderr"], "ValueError: <boom> & more");

    berth.cli(&desktop, &["start", "giveup"]);
    // The first crash is shown at once; the one that gives up is held by the
    // rate limit (it shows up merged, see the burst test).
    let first = dunst.wait_for(&desktop, "Give Up crashed");
    assert!(
        first.body.starts_with("exited (code 3); restarting"),
        "{first:?}"
    );
    berth.wait_state(&desktop, "giveup", "failed");

    berth.cli(&desktop, &["start", "fails"]);
    let failed = dunst.wait_for(&desktop, "Fails failed");
    assert_eq!(
        failed.body,
        "exited (code 3); gave up restarting\nValueError: <boom> & more"
    );

    assert!(!berth.cli(&desktop, &["start", "tampered"]).status.success());
    let mismatch = dunst.wait_for(&desktop, "Tampered: checksum mismatch");
    // Issue #23, point 12: the file, in words, not two 64-digit hashes.
    assert!(
        mismatch.body.contains("changed since it was pinned")
            && mismatch.body.contains("tampered")
            && !mismatch.body.contains(&"0".repeat(64)),
        "{mismatch:?}"
    );

    let shown = dunst.shown(&desktop);
    let summaries: Vec<&str> = shown.iter().map(|s| s.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "Crasher crashed",
            "Give Up crashed",
            "Fails failed",
            "Tampered: checksum mismatch"
        ],
        "{shown:#?}"
    );
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_backend_found_unhealthy_notifies_why_it_was_stopped() {
    let Some((dir, desktop, dunst)) = session("notify: unhealthy") else {
        return;
    };
    let (sick, flaky) = (closed_port(), closed_port());
    backend(
        dir.path(),
        "sick",
        "Sick",
        "exec sleep 300",
        &format!(
            "ready: {{ uptime: 0s }}\nhealth: {{ tcp: \"127.0.0.1:{sick}\", interval: 200ms, failures: 2 }}\n"
        ),
    );
    backend(
        dir.path(),
        "flaky",
        "Flaky",
        "exec sleep 300",
        &format!(
            "ready: {{ uptime: 0s }}\nhealth: {{ tcp: \"127.0.0.1:{flaky}\", interval: 200ms, failures: 1 }}\nrestart: {{ policy: on-failure, max_retries: 1, backoff: 100ms }}\n"
        ),
    );
    let berth = Berth::start(&desktop, dir.path(), &[]);

    // `never`: stopped and failed, with the checks' last reason.
    berth.cli(&desktop, &["start", "sick"]);
    let note = dunst.wait_for(&desktop, "Sick is unhealthy");
    assert!(
        note.body.starts_with(&format!(
            "health check failed 2 times: tcp 127.0.0.1:{sick}: "
        )),
        "{note:?}"
    );
    assert!(!note.body.contains("restarting"), "{note:?}");
    let status = berth.wait_state(&desktop, "sick", "failed");
    assert_eq!(status["error"].as_str(), Some(note.body.as_str()));

    // `on-failure`: the first is shown at once and says it restarts; the
    // second (it gives up) is held by the rate limit.
    berth.cli(&desktop, &["start", "flaky"]);
    let note = dunst.wait_for(&desktop, "Flaky is unhealthy");
    assert!(note.body.ends_with("; restarting"), "{note:?}");
    let status = berth.wait_state(&desktop, "flaky", "failed");
    assert!(
        status["error"]
            .as_str()
            .is_some_and(|e| e.ends_with("; gave up after 1 retries")),
        "{status}"
    );
    assert_eq!(status["restarts"], 1);
}

#[test]
fn a_burst_of_crashes_becomes_one_notification_per_30_s() {
    let Some((dir, desktop, dunst)) = session("notify: burst") else {
        return;
    };
    backend(
        dir.path(),
        "burst",
        "Burst",
        CRASH,
        "restart: { policy: always, max_retries: 3, backoff: 100ms }\n",
    );
    let berth = Berth::start(&desktop, dir.path(), &[]);
    berth.cli(&desktop, &["start", "burst"]);
    let t0 = Instant::now();
    dunst.wait_for(&desktop, "Burst crashed");
    berth.wait_state(&desktop, "burst", "failed");
    // Four crashes happened; one notification so far.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        dunst.shown(&desktop).len(),
        1,
        "{:#?}",
        dunst.shown(&desktop)
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let merged = loop {
        let shown = dunst.shown(&desktop);
        if shown.len() > 1 {
            break shown[1].clone();
        }
        assert!(Instant::now() < deadline, "no merged notification");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        t0.elapsed() >= Duration::from_secs(28),
        "shown after {:?}",
        t0.elapsed()
    );
    assert_eq!(merged.summary, "Burst failed: crashed 4 times in 30 s");
    assert!(
        merged.body.contains("ValueError: <boom> & more"),
        "{merged:?}"
    );
}

#[test]
fn notification_actions_restart_and_open_the_log_as_the_tray_does() {
    let Some((dir, desktop, dunst)) = session("notify: actions") else {
        return;
    };
    // A stand-in for xdg-open that records what it was asked to open.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(
        &bin,
        "xdg-open",
        &format!("echo \"$1\" >> {}/opened", dir.path().display()),
    );
    // Crashes on its first run only.
    let once = format!(
        "if [ ! -e {0}/ran ]; then touch {0}/ran; echo 'first run fails' >&2; exit 1; fi\nexec sleep 300",
        dir.path().display()
    );
    backend(dir.path(), "alpha", "Alpha", &once, "");
    backend(dir.path(), "beta", "Beta", CRASH, "");
    let berth = Berth::start(&desktop, dir.path(), &[]);

    berth.cli(&desktop, &["start", "alpha"]);
    berth.wait_state(&desktop, "alpha", "exited");
    // Shown (not yet closed): pick Restart from its context menu.
    let deadline = Instant::now() + WAIT;
    loop {
        dunst.pick_action(&desktop, "Restart (Alpha crashed)");
        if dunst.menu().contains("Restart (Alpha crashed)") {
            break;
        }
        assert!(Instant::now() < deadline, "menu: {}", dunst.menu());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        dunst.menu().contains("Open log (Alpha crashed)"),
        "{}",
        dunst.menu()
    );
    berth.wait_state(&desktop, "alpha", "running");

    berth.cli(&desktop, &["start", "beta"]);
    berth.wait_state(&desktop, "beta", "exited");
    let deadline = Instant::now() + WAIT;
    let opened = dir.path().join("opened");
    loop {
        dunst.pick_action(&desktop, "Open log (Beta crashed)");
        if let Ok(text) = std::fs::read_to_string(&opened) {
            assert_eq!(
                text.trim(),
                dir.path()
                    .join("state/berth/logs/beta.log")
                    .display()
                    .to_string()
            );
            break;
        }
        assert!(Instant::now() < deadline, "menu: {}", dunst.menu());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn without_a_notification_server_berth_logs_one_debug_line_and_waits_for_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(desktop) = Desktop::start_bare("notify: no server", dir.path()) else {
        return;
    };
    for id in ["one", "two"] {
        backend(dir.path(), id, id, CRASH, "");
    }
    let berth = Berth::start(&desktop, dir.path(), &[]);
    for id in ["one", "two"] {
        berth.cli(&desktop, &["start", id]);
        berth.wait_state(&desktop, id, "exited");
    }
    let deadline = Instant::now() + WAIT;
    while !berth.stderr().contains("no notification shown") {
        assert!(Instant::now() < deadline, "{}", berth.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let err = berth.stderr();
    assert_eq!(err.matches("no notification shown").count(), 1, "{err}");
    assert!(err.contains("DEBUG"), "{err}");
}

#[test]
fn a_hung_notification_server_delays_neither_the_socket_nor_the_backends() {
    let Some((dir, desktop, dunst)) = session("notify: hung server") else {
        return;
    };
    for id in ["a", "b", "c"] {
        backend(dir.path(), id, id, CRASH, "");
    }
    backend(dir.path(), "later", "Later", CRASH, "");
    backend(dir.path(), "live", "Live", "exec sleep 300", "");
    let berth = Berth::start(&desktop, dir.path(), &[]);
    // The server owns its name but answers nothing.
    dunst.signal(libc::SIGSTOP);
    for id in ["a", "b", "c"] {
        berth.cli(&desktop, &["start", id]);
    }
    // Three notifications now wait on the server (2 s timeout each); the
    // socket and the jobs go on meanwhile.
    let t = Instant::now();
    for _ in 0..5 {
        assert!(berth.cli(&desktop, &["status"]).status.success());
    }
    assert!(berth.cli(&desktop, &["start", "live"]).status.success());
    berth.wait_state(&desktop, "live", "running");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "the socket waited on the notification server: {:?}",
        t.elapsed()
    );
    // The notifier did try, and gave up on the hung call.
    let deadline = Instant::now() + WAIT;
    while !berth.stderr().contains("no notification shown") {
        assert!(Instant::now() < deadline, "{}", berth.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Once it answers again, notifications are shown again.
    dunst.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_secs(7));
    berth.cli(&desktop, &["start", "later"]);
    berth.wait_state(&desktop, "later", "exited");
    dunst.wait_for(&desktop, "Later crashed");
}

#[test]
fn an_untrusted_manifest_notifies_once() {
    let Some((dir, desktop, dunst)) = session("notify: untrusted") else {
        return;
    };
    backend(dir.path(), "signed", "Signed", "exec sleep 300", "");
    // A signature that does not verify makes the manifest untrusted always.
    std::fs::write(
        dir.path().join("backends/signed.yaml.minisig"),
        "untrusted comment: garbage\nnot a signature\n",
    )
    .unwrap();
    let berth = Berth::start(&desktop, dir.path(), &[]);
    let shown = dunst.wait_for(&desktop, "Signed: untrusted");
    assert!(!shown.body.is_empty(), "{shown:?}");
    assert_eq!(berth.status(&desktop, "signed")["state"], "untrusted");
    // A rescan that finds it still untrusted says nothing more.
    berth.cli(&desktop, &["status"]);
    // SAFETY: kill with the launcher's pid and a valid signal number.
    unsafe { libc::kill(berth_pid(&berth), libc::SIGHUP) };
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        dunst.shown(&desktop).len(),
        1,
        "{:#?}",
        dunst.shown(&desktop)
    );
}

#[test]
fn no_notify_silences_the_launcher() {
    let Some((dir, desktop, dunst)) = session("notify: --no-notify") else {
        return;
    };
    backend(dir.path(), "crasher", "Crasher", CRASH, "");
    let berth = Berth::start(&desktop, dir.path(), &["--no-notify"]);
    berth.cli(&desktop, &["start", "crasher"]);
    berth.wait_state(&desktop, "crasher", "exited");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        dunst.shown(&desktop).is_empty(),
        "{:#?}",
        dunst.shown(&desktop)
    );
}
