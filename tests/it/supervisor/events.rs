//! The job's events (the source of desktop notifications) and `last_stderr`:
//! a crash says so with its last stderr line; a user's Stop and a removal
//! say nothing.

use berth::status::State;
use berth::supervisor::EventKind;
use berth::verb::Verb;
use tokio::sync::broadcast::error::TryRecvError;

use super::{T, apply_and_start, scripted, wait_state};
use crate::util::catalog;

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_is_an_event_with_the_last_stderr_line_and_a_new_run_starts_clean() {
    let e = crate::util::env();
    let mut events = e.sup.events();
    let b = scripted(
        &e,
        "crash",
        "echo 'Traceback (most recent call last):' >&2\necho 'ValueError: boom' >&2\necho '' >&2\nexit 3",
    );
    apply_and_start(&e, b).await.unwrap();
    let status = wait_state(&e, "crash", State::Exited).await;
    assert_eq!(status.last_stderr.as_deref(), Some("ValueError: boom"));
    let event = tokio::time::timeout(T, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.id, "crash");
    assert_eq!(event.last_stderr.as_deref(), Some("ValueError: boom"));
    assert_eq!(
        event.kind,
        EventKind::Exited {
            code: Some(3),
            signal: None,
            then: State::Exited
        }
    );
    // The next run prints nothing on stderr: its last_stderr is its own.
    let quiet = scripted(&e, "crash", "exit 0");
    e.sup.apply(catalog([quiet])).await;
    e.sup.command("crash", Verb::start()).await.unwrap();
    let status = wait_state(&e, "crash", State::Exited).await;
    assert_eq!(status.last_stderr, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_stop_and_a_removal_are_no_events() {
    let e = crate::util::env();
    let mut events = e.sup.events();
    let b = scripted(&e, "calm", "echo 'about to sleep' >&2\nexec sleep 300");
    apply_and_start(&e, b.clone()).await.unwrap();
    wait_state(&e, "calm", State::Running).await;
    let deadline = std::time::Instant::now() + T;
    while !e.log("calm").contains("about to sleep") {
        assert!(
            std::time::Instant::now() < deadline,
            "no stderr line logged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    e.sup.command("calm", Verb::Stop).await.unwrap();
    let status = wait_state(&e, "calm", State::Stopped).await;
    assert_eq!(status.last_stderr.as_deref(), Some("about to sleep"));
    e.sup.command("calm", Verb::start()).await.unwrap();
    wait_state(&e, "calm", State::Running).await;
    e.sup.apply(catalog([])).await;
    let deadline = std::time::Instant::now() + T;
    while e.sup.snapshot().get("calm").is_some() {
        assert!(std::time::Instant::now() < deadline, "never removed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);
}
