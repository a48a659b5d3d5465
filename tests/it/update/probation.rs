//! Probation and rollback through the real launcher (issue #27, point 6):
//! a running `demo` 1.0.0 updated to a 1.1.0 that never becomes ready, that
//! exits once running, or that turns unhealthy, each before its probation
//! (3 s here) is over: `berth update` exits 1 with the reason, 1.0.0 runs
//! again, 1.1.0 is in `update.bad` and not offered again while a 1.2.0 is;
//! and `--rollback` back to the kept version. Script backends, served by
//! the shared feed fixture; the PyInstaller run is `e2e`'s.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::feed::{FeedServer, Publisher, finished};
use crate::control::home::{Home, Launcher, Out, one_line, wait_until};

/// A release of `demo` at `version` running `script`, with `extra`
/// manifest lines (its ready probe, its health), in its own source folder.
pub fn script_release(home: &Home, version: &str, script: &str, extra: &str) -> PathBuf {
    let src = home.path().join(format!("src-{version}"));
    std::fs::create_dir_all(&src).unwrap();
    let exe = src.join("run.sh");
    std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sha = berth::integrity::hash_file(&exe).unwrap();
    let manifest = src.join("demo.yaml");
    std::fs::write(
        &manifest,
        format!(
            "id: demo\nname: Demo\nversion: {version}\nexecutable:\n  linux:\n    path: run.sh\n    sha256: {sha}\nstop: {{ timeout: 2s }}\n{extra}"
        ),
    )
    .unwrap();
    manifest
}

/// The feed served and trusted, `demo` 1.0.0 (ready at once, probation
/// 3 s) following it, a launcher running it; `bad` released as 1.1.0.
struct Setup {
    home: Home,
    publisher: Publisher,
    _server: FeedServer,
    _launcher: Launcher,
}

impl Setup {
    fn new(script: &str, extra: &str) -> Self {
        Self::with_shipped_ready(script, extra, "{ uptime: 0s }")
    }

    /// As [`Setup::new`], with the shipped 1.0.0's `ready`.
    fn with_shipped_ready(script: &str, extra: &str, ready: &str) -> Self {
        let home = Home::new();
        let publisher = Publisher::new(&home);
        publisher.release(&home, &script_release(&home, "1.1.0", script, extra));
        let server = FeedServer::serve(&publisher.feed);
        home.backend(
            "demo",
            "exec sleep 60",
            &format!(
                "ready: {ready}\nupdate:\n  feed: {}\n  probation: 3s\n",
                server.url()
            ),
        );
        let launcher = home.launch();
        let out = home.run(&["start", "demo"]);
        assert_eq!(out.code(), 0, "{out:?}");
        Self {
            home,
            publisher,
            _server: server,
            _launcher: launcher,
        }
    }

    /// `berth update demo` left running while the test looks elsewhere.
    fn spawn_update(&self) -> Child {
        self.home
            .berth(&["update", "demo"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn update(&self, flag: Option<&str>) -> Out {
        let mut args = vec!["update", "demo"];
        args.extend(flag);
        self.home.run(&args)
    }

    /// `berth update demo` rolls 1.1.0 back with a reason that starts
    /// with `reason` and holds `also`; 1.0.0 runs again; 1.1.0 is bad and
    /// never offered again, a 1.2.0 is.
    fn rolled_back(&self, reason: &str, also: &str) {
        let pid = self.home.status_of("demo")["pid"].as_u64().unwrap();
        let out = self.update(None);
        self.said(&out, pid, reason, also);
    }

    /// What [`Setup::rolled_back`] checks once `berth update` answered
    /// `out`; `pid` was 1.0.0's before.
    fn said(&self, out: &Out, pid: u64, reason: &str, also: &str) {
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(one_line(&out.stderr()), "{out:?}");
        let line = "demo 1.1.0 rolled back to 1.0.0: ";
        assert!(
            out.stderr().contains(&format!("{line}{reason}")) && out.stderr().contains(also),
            "{out:?}"
        );
        let s = self.home.status_of("demo");
        assert_eq!(s["state"], "running", "{s}");
        assert_eq!(s["version"], "1.0.0", "{s}");
        assert_ne!(s["pid"].as_u64().unwrap(), pid, "not restarted: {s}");
        assert_eq!(s["update"]["bad"], serde_json::json!(["1.1.0"]), "{s}");
        let error = s["update"]["error"].as_str().unwrap_or_default();
        assert!(error.contains(line) && error.contains(reason), "{s}");
        let log = std::fs::read_to_string(self.home.path().join("state/berth/berth.log"))
            .unwrap_or_default();
        assert!(log.contains("rolled back"), "berth.log: {log}");

        let out = self.update(Some("--check"));
        assert_eq!(out.code(), 0, "{out:?}");
        assert!(out.stdout().starts_with("demo: up to date"), "{out:?}");
        let fixed = script_release(
            &self.home,
            "1.2.0",
            "exec sleep 60",
            "ready: { uptime: 0s }\n",
        );
        self.publisher.release(&self.home, &fixed);
        let out = self.update(Some("--check"));
        assert_eq!(out.code(), 0, "{out:?}");
        assert_eq!(out.stdout(), "demo: 1.2.0 available (installed 1.0.0)\n");
    }
}

#[test]
fn a_new_version_that_never_becomes_ready_is_rolled_back() {
    let setup = Setup::new(
        "exec sleep 60",
        "ready: { stdout_json: { status: ready }, timeout: 1s }\n",
    );
    setup.rolled_back("never became ready within 1s", "");
}

#[test]
fn a_new_version_that_exits_during_probation_is_rolled_back_though_the_policy_restarts() {
    let setup = Setup::new(
        "sleep 1; exit 3",
        "ready: { uptime: 0s }\nrestart: { policy: always, backoff: 100ms }\n",
    );
    // Seconds into it depend on the machine's load.
    setup.rolled_back("exited with code 3 ", "into its 3s probation");
}

#[test]
fn a_new_version_that_turns_unhealthy_during_probation_is_rolled_back() {
    // The check connects to a port the test holds: healthy, then not.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let setup = Setup::new(
        "exec sleep 60",
        &format!(
            "ready: {{ uptime: 0s }}\nhealth: {{ tcp: \"127.0.0.1:{port}\", interval: 200ms, failures: 2 }}\n"
        ),
    );
    let home = &setup.home;
    let pid = home.status_of("demo")["pid"].as_u64().unwrap();
    let update = setup.spawn_update();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let s = home.status_of("demo");
            s["version"] == "1.1.0" && s["healthy"] == true
        }),
        "1.1.0 never healthy: {}",
        home.status_of("demo")
    );
    drop(listener);
    let out = finished(update);
    setup.said(
        &out,
        pid,
        "unhealthy: health check failed 2 times: tcp 127.0.0.1:",
        "into its 3s probation",
    );
}

#[test]
fn rollback_returns_to_the_kept_version_and_is_refused_when_none_is() {
    // 1.0.0 takes a second to be ready: the rollback answers once it runs.
    let setup =
        Setup::with_shipped_ready("exec sleep 60", "ready: { uptime: 0s }\n", "{ uptime: 1s }");
    let out = setup.update(Some("--rollback"));
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("no update is installed"), "{out:?}");

    // 1.1.0 passes its probation (3 s): exit 0 after it.
    let t = std::time::Instant::now();
    let out = setup.update(None);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(t.elapsed() >= Duration::from_secs(3), "{:?}", t.elapsed());
    let s = setup.home.status_of("demo");
    assert_eq!(
        (&s["version"], &s["state"]),
        (&"1.1.0".into(), &"running".into()),
        "{s}"
    );
    let pid = s["pid"].as_u64().unwrap();

    let out = setup.update(Some("--rollback"));
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout()
            .contains("demo: rolled back 1.1.0 -> 1.0.0 (running)"),
        "{out:?}"
    );
    let s = setup.home.status_of("demo");
    assert_eq!(
        (&s["version"], &s["state"]),
        (&"1.0.0".into(), &"running".into()),
        "{s}"
    );
    assert_ne!(s["pid"].as_u64(), Some(pid), "{s}");
    let s = setup.home.status_of("demo");
    assert_eq!(s["update"]["bad"], serde_json::json!([]), "{s}");
}

#[test]
fn a_users_stop_during_probation_ends_it_and_the_new_version_stays() {
    let setup = Setup::new("exec sleep 60", "ready: { uptime: 0s }\n");
    let home = &setup.home;
    let update = setup.spawn_update();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let s = home.status_of("demo");
            s["version"] == "1.1.0" && s["state"] == "running"
        }),
        "{}",
        home.status_of("demo")
    );
    // Within its 3 s probation.
    assert_eq!(home.run(&["stop", "demo"]).code(), 0);
    let out = finished(update);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(
        out.stderr()
            .contains("demo 1.1.0: probation ended by a stop; 1.1.0 stays installed"),
        "{out:?}"
    );
    let s = home.status_of("demo");
    assert_eq!(
        (&s["version"], &s["state"]),
        (&"1.1.0".into(), &"stopped".into()),
        "{s}"
    );
    assert_eq!(s["update"]["bad"], serde_json::json!([]), "{s}");
}

#[test]
fn the_first_run_of_a_version_installed_while_stopped_is_on_probation_too() {
    let setup = Setup::new(
        "exec sleep 60",
        "ready: { stdout_json: { status: ready }, timeout: 1s }\n",
    );
    let home = &setup.home;
    assert_eq!(home.run(&["stop", "demo"]).code(), 0);
    let out = setup.update(None);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(home.status_of("demo")["version"], "1.1.0");
    // Its own answer is the start's (not ready); the rollback follows.
    let _ = home.run(&["start", "demo"]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let s = home.status_of("demo");
            s["version"] == "1.0.0" && s["state"] == "running"
        }),
        "{}",
        home.status_of("demo")
    );
    let s = home.status_of("demo");
    assert_eq!(s["update"]["bad"], serde_json::json!(["1.1.0"]), "{s}");
    let error = s["update"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("demo 1.1.0 rolled back to 1.0.0: never became ready within 1s"),
        "{s}"
    );
}
