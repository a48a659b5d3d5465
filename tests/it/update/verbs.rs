//! `check-update` and `update` carried out by the running launcher (the job
//! of the backend), against a real web server on 127.0.0.1 serving a folder
//! made by the real `berth release`: what the status's `update` shows, the
//! switch of a stopped and of a running backend, and the refusals.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::feed::{FeedServer, Mode, demo_following};
use crate::control::home::{Home, Launcher, Out, one_line, wait_until};

/// The updates folder of the home's launcher.
fn updates(home: &Home) -> PathBuf {
    home.path().join("data/berth/updates")
}

/// The home's backend `demo` at 1.0.0 (a script) following the served
/// feed of the publisher's 1.1.0; a new version's probation is 1 s (a
/// running switch answers after it).
fn installed(home: &Home) -> FeedServer {
    demo_following(home, "  probation: 1s\n")
}

/// `berth update demo` said the feed has nothing newer than 1.1.0: exit 0.
fn assert_up_to_date(out: &Out) {
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout()
            .starts_with("demo: up to date (installed 1.1.0, the feed's latest"),
        "{out:?}"
    );
}

/// `berth update demo [FLAG]` (the backends folder for when no launcher runs).
fn update(home: &Home, flag: Option<&str>) -> Out {
    let backends = home.backends();
    let mut args = vec!["update", "demo", "--backends", backends.to_str().unwrap()];
    args.extend(flag);
    home.run(&args)
}

/// The publisher's 1.1.0 served and trusted, `demo` 1.0.0 installed with
/// that feed, a launcher running.
fn ready(home: &Home) -> (FeedServer, Launcher) {
    let server = installed(home);
    let launcher = home.launch();
    (server, launcher)
}

#[test]
fn check_update_through_the_launcher_fills_available_and_checked() {
    let home = Home::new();
    let (_server, _launcher) = ready(&home);
    let before = home.status_of("demo");
    assert_eq!(before["update"]["available"], serde_json::Value::Null);
    assert_eq!(before["update"]["checked"], serde_json::Value::Null);

    let out = update(&home, Some("--check"));
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "demo: 1.1.0 available (installed 1.0.0)\n");
    let after = home.status_of("demo");
    assert_eq!(after["update"]["available"], "1.1.0", "{after}");
    let checked = after["update"]["checked"].as_str().unwrap();
    assert!(
        checked.len() == 20 && checked.ends_with('Z') && checked.as_bytes()[10] == b'T',
        "{checked}"
    );
    assert_eq!(after["update"]["error"], serde_json::Value::Null);
    // Only looked: nothing installed.
    assert!(!updates(&home).join("demo.yaml").exists());
}

#[test]
fn update_refusals_are_one_line_and_change_nothing() {
    let home = Home::new();
    // Installed at the feed's version: not higher.
    let _server = demo_following(&home, "");
    let manifest = home.backends().join("demo.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("version: 1.0.0", "version: 1.1.0")).unwrap();
    home.backend("plain", "exec sleep 30", "");

    // Without a launcher: up to date is nothing to do (exit 0, what the
    // feed has on stdout), said here in the same words; a rollback needs
    // the launcher.
    assert_up_to_date(&update(&home, None));
    let out = update(&home, Some("--rollback"));
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        one_line(&out.stderr()) && out.stderr().contains("no launcher running"),
        "{out:?}"
    );

    let _launcher = home.launch();
    assert_up_to_date(&update(&home, None));
    assert!(!updates(&home).join("demo").exists());
    // The feed answered: checked, and no error to show.
    let status = home.status_of("demo");
    assert_eq!(
        status["update"]["error"],
        serde_json::Value::Null,
        "{status}"
    );
    assert!(status["update"]["checked"].is_string(), "{status}");

    let out = home.run(&["update", "plain"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("has no update section"), "{out:?}");
    let out = home.run(&["update", "ghost", "--check"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("no backend with id"), "{out:?}");
}
#[test]
fn update_while_stopped_runs_the_new_version_at_the_next_start() {
    let home = Home::new();
    let (_server, _launcher) = ready(&home);
    let out = update(&home, None);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "demo: updated 1.0.0 -> 1.1.0 (stopped)\n");
    let status = home.status_of("demo");
    assert_eq!(status["version"], "1.1.0", "{status}");
    assert_eq!(status["state"], "stopped", "{status}");
    assert_eq!(status["update"]["available"], serde_json::Value::Null);
    assert_eq!(status["update"]["previous"], "1.0.0", "{status}");

    let out = home.run(&["start", "demo"]);
    assert_eq!(out.code(), 0, "{out:?}");
    // The release's run.sh says its version first.
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(home.log("demo")).is_ok_and(|l| l.contains("1.1.0"))
        }),
        "{:?}",
        std::fs::read_to_string(home.log("demo"))
    );
}

#[test]
fn update_without_a_launcher_installs_under_its_lock_for_the_next_start() {
    let home = Home::new();
    let _server = installed(&home);
    let out = update(&home, None);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "demo: updated 1.0.0 -> 1.1.0 (stopped)\n");
    assert!(updates(&home).join("demo.yaml").exists());

    let _launcher = home.launch();
    let status = home.status_of("demo");
    assert_eq!(status["version"], "1.1.0", "{status}");
    assert_eq!(status["update"]["previous"], "1.0.0", "{status}");
}

#[test]
fn update_while_running_restarts_into_the_new_version() {
    let home = Home::new();
    let (_server, launcher) = ready(&home);
    assert_eq!(home.run(&["start", "demo"]).code(), 0);
    let old = home.status_of("demo")["pid"].as_u64().unwrap();

    let out = update(&home, None);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "demo: updated 1.0.0 -> 1.1.0 (running)\n");
    let status = home.status_of("demo");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["version"], "1.1.0", "{status}");
    assert_eq!(status["pending_restart"], false, "{status}");
    let new = status["pid"].as_u64().unwrap();
    assert_ne!(new, old);
    let log = launcher.stderr();
    assert!(log.contains("update applied"), "{log}");
}

#[test]
fn a_second_update_is_refused_while_one_stalls_and_the_launcher_keeps_answering() {
    let home = Home::new();
    let server = installed(&home);
    server.set_mode(Mode::Stall);
    // A stalled transfer fails after 2 s instead of the contract's 30.
    let launcher = home.launch_with_cmd(&[], |cmd| {
        cmd.env("BERTH_TEST_FETCH_STALL", "2");
    });
    let first = home
        .berth(&["update", "demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || launcher
            .stderr()
            .contains("update: reading the feed")),
        "{}",
        launcher.stderr()
    );

    let out = update(&home, None);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(
        out.stderr()
            .contains("demo: an update is already under way"),
        "{out:?}"
    );
    // The job answers meanwhile.
    assert_eq!(home.run(&["start", "demo"]).code(), 0);
    assert_eq!(home.status_of("demo")["state"], "running");

    let first = Out(first.wait_with_output().unwrap());
    assert_eq!(first.code(), 1, "{first:?}");
    assert!(one_line(&first.stderr()), "{first:?}");
    assert!(first.stderr().contains("no progress for 2 s"), "{first:?}");
    let status = home.status_of("demo");
    assert_eq!(status["version"], "1.0.0", "{status}");
    assert_eq!(
        status["update"]["error"].as_str(),
        first.stderr().strip_prefix("berth: ").map(str::trim_end),
        "{status}"
    );
    let left: Vec<_> = std::fs::read_dir(updates(&home).join("demo"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
