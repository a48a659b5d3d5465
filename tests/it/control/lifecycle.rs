//! Quitting, SIGHUP, the default folder, and `berth logs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::home::*;

// ------------------------------------------------------------- lifecycle

#[test]
fn sigterm_stops_every_backend_removes_the_socket_and_exits_0() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    home.backend("beta", "exec sleep 600", "");
    let mut l = home.launch();
    assert_eq!(home.run(&["start", "alpha"]).code(), 0);
    assert_eq!(home.run(&["start", "beta"]).code(), 0);
    let pids: Vec<u64> = ["alpha", "beta"]
        .iter()
        .map(|id| home.status_of(id)["pid"].as_u64().unwrap())
        .collect();
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait(Duration::from_secs(15)), Some(0), "{}", l.stderr());
    for pid in pids {
        assert!(!alive(pid), "backend {pid} survived");
    }
    assert!(!home.socket().exists(), "socket removed");
    // berth's own log keeps what it said, without terminal colours.
    let own = std::fs::read_to_string(home.path().join("state/berth/berth.log")).unwrap();
    assert!(own.contains("berth launcher ready"), "{own}");
    assert!(
        own.contains("SIGTERM: quitting") && !own.contains('\x1b'),
        "{own}"
    );
}

#[test]
fn a_second_sigint_kills_every_backend_and_exits_130() {
    let home = Home::new();
    // Ignores SIGTERM and has a long stop timeout: only SIGKILL ends it soon.
    home.backend(
        "stubborn",
        "trap '' TERM INT\nwhile :; do sleep 1; done",
        "",
    );
    let manifest = home.backends().join("stubborn.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("timeout: 2s", "timeout: 60s");
    std::fs::write(&manifest, text).unwrap();
    let mut l = home.launch();
    assert_eq!(home.run(&["start", "stubborn"]).code(), 0);
    let pid = home.status_of("stubborn")["pid"].as_u64().unwrap();
    l.signal(Signal::SIGINT);
    assert!(wait_until(Duration::from_secs(10), || home
        .status_of("stubborn")["state"]
        == "stopping"));
    l.signal(Signal::SIGINT);
    assert_eq!(l.wait(Duration::from_secs(15)), Some(130), "{}", l.stderr());
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "SIGKILL reached the group"
    );
}

#[test]
fn sighup_rescans_the_backends_folder() {
    let home = Home::new();
    let l = home.launch();
    assert!(home.status_json().is_empty());
    home.backend("late", "exec sleep 600", "");
    l.signal(Signal::SIGHUP);
    let listed = || home.status_json().len();
    assert!(wait_until(Duration::from_secs(10), || listed() == 1));
    // The socket's `rescan` does the same and answers once it is applied.
    home.backend("later", "exec sleep 600", "");
    let reply = raw(&home.socket(), b"{\"cmd\":\"rescan\"}\n");
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(listed(), 2);
}

#[test]
fn the_default_backends_folder_is_created_on_first_run() {
    let home = Home::new();
    // No --backends, no ./backends in the working directory: the config folder.
    let mut child = home
        .berth(&["run", "--headless"])
        .current_dir(home.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let created = home.path().join("config/berth/backends");
    let ok = wait_until(Duration::from_secs(15), || {
        UnixStream::connect(home.socket()).is_ok()
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(ok, "launcher never served: {err}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(created.is_dir());
}

/// berth's stderr is coloured only for a person at a terminal: not into a
/// file or a pipe, and not at a terminal when `NO_COLOR` is set. The terminal
/// is a pty from util-linux's `script`.
#[test]
fn stderr_is_coloured_only_at_a_terminal_without_no_color() {
    let home = Home::new();
    let mut l = home.launch();
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait(Duration::from_secs(15)), Some(0), "{}", l.stderr());
    let err = l.stderr();
    assert!(
        err.contains("berth launcher ready") && !err.contains('\x1b'),
        "{err:?}"
    );

    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped the terminal half: util-linux `script` is missing");
        return;
    }
    let at_terminal = |no_color: Option<&str>| {
        let line = format!(
            "timeout -s TERM 3 {BERTH} --socket {} run --headless --backends {}",
            home.socket().display(),
            home.backends().display()
        );
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_RUNTIME_DIR", home.path().join("run"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("launcher starting"), "{text:?}");
        text
    };
    let plain = at_terminal(None);
    assert!(
        plain.contains("\x1b["),
        "no colour at a terminal: {plain:?}"
    );
    let no_color = at_terminal(Some("1"));
    assert!(
        !no_color.contains('\x1b'),
        "colour despite NO_COLOR: {no_color:?}"
    );
}

// -------------------------------------------------------------------- logs

#[test]
fn logs_print_the_file_without_a_launcher() {
    let home = Home::new();
    let log = home.log("alpha");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "one\ntwo\nthree\n").unwrap();

    let out = home.run(&["logs", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "one\ntwo\nthree\n");
    let out = home.run(&["logs", "alpha", "-n", "2"]);
    assert_eq!(out.stdout(), "two\nthree\n");

    let out = home.run(&["logs", "ghost"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr().starts_with("berth: no log for ghost at "),
        "{out:?}"
    );
    assert!(one_line(&out.stderr()));
    let out = home.run(&["logs", "../etc"]);
    assert_eq!(out.code(), 2, "{out:?}");
}

#[test]
fn logs_of_a_running_backend_come_from_the_supervisor() {
    let home = Home::new();
    home.backend("talker", "echo hello from talker; exec sleep 600", "");
    let _l = home.launch();
    assert_eq!(home.run(&["start", "talker"]).code(), 0);
    assert!(wait_until(Duration::from_secs(10), || {
        home.run(&["logs", "talker"])
            .stdout()
            .contains("stdout hello from talker")
    }));
}

/// The lines `child` prints, as they come (read on a thread of their own).
fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn logs_follow_across_rotation() {
    let home = Home::new();
    let log = home.log("alpha");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "before\n").unwrap();
    let mut child = home
        .berth(&["logs", "alpha", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    let next = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(next(), "before");
    let append = |text: &str| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append("appended\n");
    assert_eq!(next(), "appended");
    // Rotation as the supervisor does it: rename, then a new file.
    append("last of old\n");
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    std::fs::write(&log, "first of new\n").unwrap();
    assert_eq!(next(), "last of old");
    assert_eq!(next(), "first of new");
    append("second of new\n");
    assert_eq!(next(), "second of new");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn logs_follow_waits_for_a_log_that_does_not_exist_yet() {
    let home = Home::new();
    let log = home.log("late");
    let mut child = home
        .berth(&["logs", "late", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "gave up on a missing log"
    );
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "hello\n").unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "hello");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("berth: waiting for "), "{stderr}");
}

// Regression guard for "nothing orphaned, even when berth itself is killed":
// the real launcher, the real PyInstaller build and a script whose grandchild
// ignores SIGTERM, then `kill -9` of berth. The guardian must clean up.
#[test]
fn sigkill_of_the_launcher_leaves_no_backend_process_behind() {
    let Some(pyinstaller) = crate::util::pyinstaller_backend() else {
        return;
    };
    let home = Home::new();
    home.backend(
        "family",
        "(trap '' TERM; while :; do sleep 1; done) &\nsleep 600 &\nwait",
        "",
    );
    let digest = berth::integrity::hash_file(&pyinstaller).unwrap();
    std::fs::write(
        home.backends().join("python.yaml"),
        format!(
            "id: python\nname: Python Backend\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {}\n    sha256: \"{digest}\"\nargs: [\"--port\", \"0\"]\nready: {{ stdout_json: {{ status: ready }} }}\nstop: {{ timeout: 2s }}\n",
            pyinstaller.display()
        ),
    )
    .unwrap();
    let l = home.launch();
    for id in ["family", "python"] {
        let out = home.run(&["start", id]);
        assert_eq!(out.code(), 0, "{out:?}");
    }
    // Every member of both groups: the script, its children, the bootloader
    // and the Python process it unpacked.
    let mut members = Vec::new();
    for id in ["family", "python"] {
        let pgid = home.status_of(id)["pid"].as_u64().unwrap() as u32;
        assert!(wait_until(Duration::from_secs(10), || {
            crate::util::group_pids(pgid).len() >= 2
        }));
        members.extend(crate::util::group_pids(pgid));
    }
    assert!(members.len() >= 5, "{members:?}");

    kill(l.pid(), Signal::SIGKILL).unwrap();
    let killed = std::time::Instant::now();
    // Target: stop timeout (2 s) + 1 s; the deadline is three times that.
    let gone = wait_until(Duration::from_secs(9), || {
        members.iter().all(|&pid| !alive(pid.into()))
    });
    let survivors: Vec<_> = members.iter().filter(|&&p| alive(p.into())).collect();
    assert!(gone, "survived the launcher: {survivors:?}");
    eprintln!(
        "every backend process gone {:?} after kill -9",
        killed.elapsed()
    );
}

// Regression: `berth check big-folder | head -1` panicked in println! on EPIPE.
#[test]
fn a_reader_that_hangs_up_ends_berth_quietly() {
    let home = Home::new();
    // Enough rows to overflow a pipe buffer, so berth is still writing when
    // the reader hangs up.
    for i in 0..600 {
        std::fs::write(
            home.backends().join(format!("b{i:03}.yaml")),
            format!("id: b{i:03}\nname: Backend {i}\nversion: 1.0.0\nexecutable:\n  linux:\n    path: /nonexistent/some/rather/long/path/to/make/rows/wide/b{i:03}\n    sha256: \"{}\"\n", "0".repeat(64)),
        )
        .unwrap();
    }
    let mut child = home
        .berth(&["check", home.backends().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// The headless launcher (and every CLI command) is the `berth` executable,
// which does not link the GTK stack: only `berth-tray` does.
#[test]
fn the_headless_launcher_does_not_load_gtk() {
    let home = Home::new();
    let l = home.launch();
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", l.pid())).unwrap();
    assert!(
        !maps.contains("libgtk-3"),
        "GTK is mapped into the headless launcher"
    );
    assert!(
        !maps.contains("libgdk-3"),
        "GDK is mapped into the headless launcher"
    );
}

// `berth run` without `--headless` execs `berth-tray` from its own folder;
// when that is missing it says so in one line and runs headless.
#[test]
fn without_berth_tray_beside_it_berth_runs_headless() {
    let home = Home::new();
    let lone = home.path().join("bin");
    std::fs::create_dir(&lone).unwrap();
    std::fs::copy(BERTH, lone.join("berth")).unwrap();
    let err = home.path().join("lone.err");
    let mut child = home
        .berth_at(&lone.join("berth"))
        .arg("--socket")
        .arg(home.socket())
        .args(["run", "--backends"])
        .arg(home.backends())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || UnixStream::connect(
            home.socket()
        )
        .is_ok()),
        "never served: {}",
        std::fs::read_to_string(&err).unwrap()
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("no tray")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("berth-tray is not installed"),
        "{}",
        lines[0]
    );
}
