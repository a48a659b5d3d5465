//! What happens when a backend ends on its own: the restart policies
//! (on-failure, always, never), backoff and its retry count, a user stop
//! during backoff, and exits by signal.

use berth::manifest::{RestartPolicy, RestartSpec};
use berth::verb::Verb;
use nix::sys::signal::Signal;

use super::*;

fn restart(policy: RestartPolicy, max_retries: u32, backoff_ms: u64) -> RestartSpec {
    RestartSpec {
        policy,
        max_retries,
        backoff: Duration::from_millis(backoff_ms),
    }
}

/// The lines the scripts appended to `runs`, one per run.
fn runs(e: &Env) -> Vec<String> {
    std::fs::read_to_string(e.path().join("runs"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_retries_with_backoff_then_fails() {
    let e = env();
    let mut b = scripted(&e, "crash", "date +%s.%N >> runs\nexit 1");
    b.restart = restart(RestartPolicy::OnFailure, 3, 100);
    apply_and_start(&e, b).await.unwrap();
    let s = wait_state(&e, "crash", State::Backoff).await;
    assert!(s.detail.retry_at.is_some());
    let s = wait_state(&e, "crash", State::Failed).await;
    assert_eq!(s.restarts, 3);
    assert_eq!(s.exit_code, Some(1));
    let runs: Vec<f64> = runs(&e).iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(runs.len(), 4, "one start and three retries");
    // Backoff doubles: 100, 200, 400 ms.
    assert!(runs[3] - runs[2] >= 0.38, "{runs:?}");
    assert!(runs[2] - runs[1] >= 0.18, "{runs:?}");
    // A user start resets the count.
    e.sup.command("crash", Verb::start()).await.unwrap();
    let s = wait_state(&e, "crash", State::Backoff).await;
    assert_eq!(s.restarts, 1);
    e.sup.command("crash", Verb::Stop).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn max_retries_zero_fails_at_once_and_on_failure_ignores_exit_0() {
    let e = env();
    let mut a = scripted(&e, "c0", "exit 2");
    a.restart = restart(RestartPolicy::OnFailure, 0, 100);
    let mut b = scripted(&e, "ok", "exit 0");
    b.restart = restart(RestartPolicy::OnFailure, 3, 100);
    e.sup.apply(catalog([a, b])).await;
    e.sup.command("c0", Verb::start()).await.unwrap();
    e.sup.command("ok", Verb::start()).await.unwrap();
    let s = wait_state(&e, "c0", State::Failed).await;
    assert_eq!((s.restarts, s.exit_code), (0, Some(2)));
    let s = wait_state(&e, "ok", State::Exited).await;
    assert_eq!((s.restarts, s.exit_code), (0, Some(0)));
}

#[tokio::test(flavor = "multi_thread")]
async fn always_restarts_after_exit_0() {
    let e = env();
    let mut b = scripted(&e, "loop", "echo x >> runs\nsleep 0.1\nexit 0");
    b.restart = restart(RestartPolicy::Always, 2, 50);
    apply_and_start(&e, b).await.unwrap();
    let s = wait_state(&e, "loop", State::Failed).await;
    assert_eq!(s.restarts, 2);
    assert_eq!(runs(&e).len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn never_keeps_exit_code() {
    let e = env();
    apply_and_start(&e, scripted(&e, "once", "exit 7"))
        .await
        .unwrap();
    let s = wait_state(&e, "once", State::Exited).await;
    assert_eq!(
        (s.exit_code, s.signal.as_deref(), s.pid),
        (Some(7), None, None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn user_stop_during_backoff_stops_for_good() {
    let e = env();
    let mut b = scripted(&e, "bo", "echo x >> runs\nexit 1");
    b.restart = restart(RestartPolicy::OnFailure, 5, 800);
    apply_and_start(&e, b).await.unwrap();
    wait_state(&e, "bo", State::Backoff).await;
    assert_eq!(e.sup.command("bo", Verb::Stop).await, Ok(Outcome::Done));
    assert_eq!(e.sup.snapshot().get("bo").unwrap().state, State::Stopped);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let s = e.sup.snapshot().get("bo").unwrap().clone();
    assert_eq!(s.state, State::Stopped);
    assert_eq!(runs(&e).len(), 1, "restarted after a user stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn death_by_signal_is_recorded() {
    let e = env();
    let segv = scripted(&e, "segv", "kill -SEGV $$");
    let victim = scripted(&e, "victim", "exec sleep 60");
    e.sup.apply(catalog([segv, victim])).await;
    e.sup.command("segv", Verb::start()).await.unwrap();
    e.sup.command("victim", Verb::start()).await.unwrap();
    let s = wait_state(&e, "segv", State::Exited).await;
    assert_eq!((s.exit_code, s.signal.as_deref()), (None, Some("SIGSEGV")));
    signal(spawned_pid(&e, "victim").await, Signal::SIGKILL);
    let s = wait_state(&e, "victim", State::Exited).await;
    assert_eq!(s.signal.as_deref(), Some("SIGKILL"));
}

// DESIGN.md: Start is refused only in invalid, incompatible, unsupported and
// superseded; in backoff it starts at once instead of waiting out the delay.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_start_during_backoff_starts_at_once() {
    let e = env();
    let mut b = scripted(
        &e,
        "flaky",
        "if [ -e second ]; then exec sleep 60; fi\ntouch second\nexit 1",
    );
    b.restart = restart(RestartPolicy::OnFailure, 3, 30_000);
    apply_and_start(&e, b).await.unwrap();
    wait_state(&e, "flaky", State::Backoff).await;
    let asked = std::time::Instant::now();
    assert!(accepted(e.sup.command("flaky", Verb::start()).await));
    let s = wait_running(&e, "flaky").await;
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "waited for the backoff"
    );
    assert_eq!((s.restarts, s.detail.retry_at), (0, None));
    e.sup.command("flaky", Verb::Stop).await.unwrap();
}
