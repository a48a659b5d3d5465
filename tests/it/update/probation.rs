//! Probation through the real binary (issue #27, point 6): a 1.1.0 that
//! never becomes ready, one that exits while on probation, and one that
//! turns unhealthy are each stopped, 1.0.0 is reinstated and started again
//! (it was running), 1.1.0 is marked bad (not offered again; a 1.2.0 is),
//! and the reason is in `berth update`'s exit 1, `status --json` and
//! berth.log. Script backends, all three updated at once under one
//! launcher, so the test takes one probation's time.

use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::feed::{FeedServer, Publisher, finished, release_script};
use crate::control::home::{Home, Out, one_line, wait_until};

/// The three ways a 1.1.0 fails, each the release of its own id in one
/// feed: `(id, script, manifest extra)`. `healthy` is a port listening
/// until the test closes it.
fn failures(healthy: u16) -> [(&'static str, String, String); 3] {
    [
        (
            "never-ready",
            "exec sleep 30".into(),
            "ready: { stdout_json: { status: ready }, timeout: 1s }\n".into(),
        ),
        (
            "exits",
            "sleep 1\nexit 3".into(),
            "ready: { uptime: 0s }\n".into(),
        ),
        (
            "unhealthy",
            "exec sleep 30".into(),
            format!(
                "ready: {{ uptime: 0s }}\nhealth: {{ tcp: \"127.0.0.1:{healthy}\", interval: 200ms, failures: 2 }}\n"
            ),
        ),
    ]
}

fn spawn_update(home: &Home, id: &str) -> Child {
    home.berth(&["update", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn check(home: &Home, id: &str) -> Out {
    home.run(&["update", id, "--check"])
}

#[test]
fn a_1_1_0_that_fails_its_probation_is_rolled_back_and_marked_bad() {
    let home = Home::new();
    let publisher = Publisher::new(&home);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let healthy = listener.local_addr().unwrap().port();
    let server = FeedServer::serve(&publisher.feed);
    // Probation 3 s (30 s in the wording, scaled down): the exiting
    // one exits 1 s after it is running, well inside it.
    let section = format!("update:\n  feed: {}\n  probation: 3s\n", server.url());
    for (id, script, extra) in failures(healthy) {
        release_script(&home, &publisher, id, "1.1.0", &script, &extra);
        home.backend(
            id,
            "exec sleep 30",
            &format!("ready: {{ uptime: 0s }}\n{section}"),
        );
    }
    let _launcher = home.launch();
    let mut pids = Vec::new();
    for (id, ..) in failures(healthy) {
        let out = home.run(&["start", id]);
        assert_eq!(out.code(), 0, "{id}: {out:?}");
        pids.push(home.status_of(id)["pid"].clone());
    }

    let updates: Vec<Child> = failures(healthy)
        .iter()
        .map(|(id, ..)| spawn_update(&home, id))
        .collect();
    // The unhealthy one first comes up healthy, then its check fails.
    assert!(
        wait_until(Duration::from_secs(15), || {
            let s = home.status_of("unhealthy");
            s["version"] == "1.1.0" && s["healthy"] == true
        }),
        "{}",
        home.status_of("unhealthy")
    );
    drop(listener);

    for ((id, ..), (child, pid)) in failures(healthy).iter().zip(updates.into_iter().zip(pids)) {
        let out = finished(child);
        assert_eq!(out.code(), 1, "{id}: {out:?}");
        assert!(one_line(&out.stderr()), "{id}: {out:?}");
        assert!(
            out.stderr()
                .contains(&format!("{id} 1.1.0 rolled back to 1.0.0: ")),
            "{id}: {out:?}"
        );
        let status = home.status_of(id);
        assert_eq!(status["version"], "1.0.0", "{id}: {status}");
        assert_eq!(status["state"], "running", "{id}: started again: {status}");
        assert_ne!(status["pid"], pid, "{id}: {status}");
        assert_eq!(
            status["update"]["bad"],
            serde_json::json!(["1.1.0"]),
            "{id}: {status}"
        );
        assert!(
            status["update"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("rolled back")),
            "{id}: {status}"
        );
        // Not offered again.
        let out = check(&home, id);
        assert_eq!(out.code(), 0, "{id}: {out:?}");
        assert!(!out.stdout().contains("1.1.0 available"), "{id}: {out:?}");
    }
    let log = std::fs::read_to_string(home.path().join("state/berth/berth.log")).unwrap();
    for (id, ..) in failures(healthy) {
        assert!(
            log.lines()
                .any(|l| l.contains(id) && l.contains("rolled back")),
            "{id}: {log}"
        );
    }

    // A newer version is offered although 1.1.0 is bad.
    release_script(&home, &publisher, "exits", "1.2.0", "exec sleep 30", "");
    let out = check(&home, "exits");
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout().contains("1.2.0 available"), "{out:?}");
}
