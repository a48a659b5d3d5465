//! The desktop is told of updates (issue #27, point 3): once per version
//! found (a second check that finds it again says nothing), and when one
//! is applied. The feed is a real `berth release` folder on a loopback
//! http server whose publisher the test's berth trusts.

use super::session::{Berth, backend, session};
use crate::control::home::Home;
use crate::update::feed::{FeedServer, Publisher};
use crate::update::release::publisher_backend;

const CRASH: &str = "echo 'boom' >&2\nexit 3";

#[test]
fn an_update_found_is_told_once_per_version_and_one_applied_once() {
    let Some((dir, desktop, dunst)) = session("notify: updates") else {
        return;
    };
    // The publisher's files live in a home of their own; its key is
    // trusted by the berth under test.
    let publishing = Home::new();
    let publisher = Publisher::untrusted(&publishing);
    publisher.release(&publishing, &publisher_backend(&publishing, "1.1.0"));
    let trusted = dir.path().join("config/berth/trusted");
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::copy(
        publisher.key.with_extension("pub"),
        trusted.join("publisher.pub"),
    )
    .unwrap();
    let server = FeedServer::serve(&publisher.feed);
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
