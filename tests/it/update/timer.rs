//! `update.check` (issue #27, point 7): a running launcher reads the feed
//! of a backend that has `check` on its own, again each interval, and
//! never reads the feed of one without it.
//!
//! The smallest `check` a manifest may give is 1m; debug builds accept
//! shorter ones when `BERTH_TEST_MIN_CHECK` says so, so here `check: 2s`
//! means exactly that (the first check comes after 2 s too: sooner than the
//! usual 10 s, never later than one interval).

use std::time::Duration;

use super::feed::demo_following;
use crate::control::home::{Home, wait_until};

/// At least 3x the 2 s interval.
const WAIT: Duration = Duration::from_secs(15);

#[test]
fn check_reads_the_feed_on_its_own_only_for_backends_that_have_it() {
    let home = Home::new();
    let server = demo_following(&home, "  check: 2s\n");
    let feed = server.url();
    home.backend(
        "asked",
        "exec sleep 30",
        &format!("update:\n  feed: {feed}\n"),
    );
    let _launcher = home.launch_with_cmd(&[], |cmd| {
        cmd.env("BERTH_TEST_MIN_CHECK", "1s");
    });

    let update = |id: &str| home.status_of(id)["update"].clone();
    assert!(
        wait_until(WAIT, || update("demo")["available"] == "1.1.0"),
        "no timed check found 1.1.0: {}",
        update("demo")
    );
    let first = update("demo")["checked"].clone();
    assert!(first.is_string(), "{}", update("demo"));
    // Again one interval later (`checked` has whole seconds).
    assert!(
        wait_until(WAIT, || update("demo")["checked"] != first),
        "no second timed check: {}",
        update("demo")
    );
    // Nothing installed without `auto`, and nobody asked about `asked`.
    assert_eq!(home.status_of("demo")["version"], "1.0.0");
    let asked = update("asked");
    assert!(
        asked["checked"].is_null() && asked["available"].is_null() && asked["error"].is_null(),
        "{asked}"
    );
}

#[test]
fn auto_installs_what_a_timed_check_finds() {
    let home = Home::new();
    let _server = demo_following(&home, "  check: 2s\n  auto: true\n");
    let _launcher = home.launch_with_cmd(&[], |cmd| {
        cmd.env("BERTH_TEST_MIN_CHECK", "1s");
    });
    assert!(
        wait_until(WAIT, || home.status_of("demo")["version"] == "1.1.0"),
        "1.1.0 was not installed on its own: {}",
        home.status_of("demo")
    );
    let update = home.status_of("demo")["update"].clone();
    assert!(update["available"].is_null(), "{update}");
    assert_eq!(update["previous"], "1.0.0", "{update}");
}
