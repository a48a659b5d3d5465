//! The desktop is told of updates (issue #27, point 3): once per version
//! found (a second check that finds it again says nothing), when one is
//! applied, and at once when one is rolled back, even right after a crash
//! opened the rate limit's window. The feed is a real `berth release`
//! folder on a loopback http server whose publisher the test's berth
//! trusts.

use std::path::Path;

use super::session::{Berth, backend, session};
use crate::control::home::Home;
use crate::update::feed::{FeedServer, Publisher};
use crate::update::probation::script_release;
use crate::update::release::publisher_backend;

const CRASH: &str = "echo 'boom' >&2\nexit 3";

/// `release` (a manifest in `publishing`, the publisher's own home)
/// released and served, its key trusted by the berth of the session `dir`.
fn feed_for(dir: &Path, publishing: &Home, release: &Path) -> FeedServer {
    let publisher = Publisher::untrusted(publishing);
    publisher.release(publishing, release);
    let trusted = dir.join("config/berth/trusted");
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::copy(
        publisher.key.with_extension("pub"),
        trusted.join("publisher.pub"),
    )
    .unwrap();
    FeedServer::serve(&publisher.feed)
}

#[test]
fn an_update_found_is_told_once_per_version_and_one_applied_once() {
    let Some((dir, desktop, dunst)) = session("notify: updates") else {
        return;
    };
    let publishing = Home::new();
    let server = feed_for(
        dir.path(),
        &publishing,
        &publisher_backend(&publishing, "1.1.0"),
    );
    backend(
        dir.path(),
        "demo",
        "Demo",
        "exec sleep 300",
        &format!("update:\n  feed: {}\n", server.url()),
    );
    backend(dir.path(), "crasher", "Crasher", CRASH, "");
    let berth = Berth::start(&desktop, dir.path(), &[]);

    let check = || {
        let out = berth.cli(&desktop, &["update", "demo", "--check"]);
        assert!(out.status.success(), "{out:?}");
    };
    check();
    let found = dunst.wait_for(&desktop, "Demo 1.1.0 is available");
    assert_eq!(found.body, "");
    check();
    // Events reach the desktop in order: once the crash after the second
    // check is shown, a second "available" would have been shown before it.
    berth.cli(&desktop, &["start", "crasher"]);
    dunst.wait_for(&desktop, "Crasher crashed");
    let shown = dunst.shown(&desktop);
    let summaries: Vec<&str> = shown.iter().map(|s| s.summary.as_str()).collect();
    assert_eq!(
        summaries,
        ["Demo 1.1.0 is available", "Crasher crashed"],
        "{shown:#?}"
    );

    let out = berth.cli(&desktop, &["update", "demo"]);
    assert!(out.status.success(), "{out:?}");
    let applied = dunst.wait_for(&desktop, "Demo updated to 1.1.0");
    assert_eq!(applied.body, "from 1.0.0");
}

#[test]
fn a_rollback_is_told_at_once_even_right_after_a_crash() {
    let Some((dir, desktop, dunst)) = session("notify: rollback") else {
        return;
    };
    let publishing = Home::new();
    // 1.1.0 runs, then exits within its 3 s probation.
    let failing = script_release(
        &publishing,
        "1.1.0",
        "sleep 1\necho 'broken 1.1.0' >&2\nexit 3",
        "ready: { uptime: 0s }\n",
    );
    let server = feed_for(dir.path(), &publishing, &failing);
    backend(
        dir.path(),
        "demo",
        "Demo",
        "exec sleep 300",
        &format!(
            "ready: {{ uptime: 0s }}\nupdate:\n  feed: {}\n  probation: 3s\n",
            server.url()
        ),
    );
    let berth = Berth::start(&desktop, dir.path(), &[]);
    assert!(berth.cli(&desktop, &["start", "demo"]).status.success());
    berth.wait_state(&desktop, "demo", "running");
    let out = berth.cli(&desktop, &["update", "demo"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // The crash of 1.1.0 is told and opens the 30 s rate-limit window;
    // the rollback is told within WAIT (15 s) all the same.
    let note = dunst.wait_for(&desktop, "Demo 1.1.0 rolled back to 1.0.0");
    assert!(
        note.body.starts_with("exited with code 3") && note.body.ends_with("into its 3s probation"),
        "{note:?}"
    );
    let shown = dunst.shown(&desktop);
    let summaries: Vec<&str> = shown.iter().map(|s| s.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "Demo 1.1.0 is available",
            "Demo crashed",
            "Demo 1.1.0 rolled back to 1.0.0"
        ],
        "{shown:#?}"
    );
}
