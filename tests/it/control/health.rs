//! Health through the real launcher and CLI: the default `{ uptime: 1s }`
//! probe as `berth start` reports it, and `healthy` in `status --json` as a
//! TCP check passes, fails and gives up. (Issue #14.)

use std::net::TcpListener;
use std::time::Duration;

use super::home::{Home, wait_until};

#[test]
fn start_of_a_program_that_dies_at_once_exits_1_unless_it_asks_for_v1() {
    let home = Home::new();
    home.backend("quick", "exit 3", "");
    home.backend("v1", "exit 3", "ready: { uptime: 0s }\n");
    home.backend("steady", "exec sleep 600", "");
    let _l = home.launch();

    let out = home.run(&["start", "quick"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(out.stderr(), "berth: quick: exited (code 3)\n");
    // `uptime: 0s` is "running once spawned": start succeeds, the exit comes after.
    let out = home.run(&["start", "v1"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(wait_until(Duration::from_secs(10), || {
        home.status_of("v1")["state"] == "exited"
    }));
    // The default probe: running only once up a second.
    let t = std::time::Instant::now();
    let out = home.run(&["start", "steady"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(home.status_of("steady")["healthy"], serde_json::Value::Null);
}

/// A run that is `running` at spawn (`uptime: 0s`) and ends at once still
/// reached its goal: `berth start` exits 0 even when the end is published
/// before the server reads the outcome (it once read the exit instead, and
/// failed this under load).
#[test]
fn a_start_running_at_spawn_succeeds_though_the_run_ends_before_the_reply_is_read() {
    let home = Home::new();
    home.backend("v1", "exit 3", "ready: { uptime: 0s }\n");
    let _l = home.launch();
    for round in 0..20 {
        let out = home.run(&["start", "v1"]);
        assert_eq!(out.code(), 0, "round {round}: {out:?}");
        assert!(wait_until(Duration::from_secs(10), || {
            home.status_of("v1")["state"] == "exited"
        }));
    }
}

#[test]
fn status_json_says_healthy_then_failing_then_failed_with_the_reason() {
    let home = Home::new();
    // The test holds the port the check connects to: open, then closed.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    home.backend(
        "web",
        "exec sleep 600",
        &format!(
            "ready: {{ uptime: 0s }}\nhealth: {{ tcp: \"127.0.0.1:{port}\", interval: 300ms, failures: 3 }}\n"
        ),
    );
    let _l = home.launch();
    assert_eq!(home.run(&["start", "web"]).code(), 0);
    let pid = home.status_of("web")["pid"].as_u64().unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        home.status_of("web")["healthy"] == true
    }));
    drop(listener);
    assert!(
        wait_until(Duration::from_secs(10), || {
            let s = home.status_of("web");
            s["state"] == "running" && s["healthy"] == false
        }),
        "never running and unhealthy: {}",
        home.status_of("web")
    );
    assert!(wait_until(Duration::from_secs(10), || {
        home.status_of("web")["state"] == "failed"
    }));
    let s = home.status_of("web");
    assert_eq!(s["healthy"], serde_json::Value::Null, "{s}");
    let error = s["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "health check failed 3 times: tcp 127.0.0.1:{port}: "
        )),
        "{error}"
    );
    assert!(!super::home::alive(pid), "the unhealthy group survived");
}
