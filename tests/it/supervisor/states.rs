//! Every snapshot a job publishes is a finished transition: recorded over a
//! start / stop / crash / backoff / restart cycle, each one has a pid only
//! in a state with a process and an exit only in a state without.

use berth::verb::Verb;
use std::sync::{Arc, Mutex};

use berth::manifest::{RestartPolicy, RestartSpec};
use nix::sys::signal::Signal;

use super::*;

/// Collects every snapshot of `id` the receiver sees (a watch channel keeps
/// only the newest, so a very short state may be missed, never invented).
fn record(
    e: &Env,
    id: &'static str,
) -> (Arc<Mutex<Vec<BackendStatus>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut rx = e.sup.subscribe();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            if let Some(s) = rx.borrow_and_update().get(id).cloned() {
                out.lock().unwrap().push(s);
            }
        }
    });
    (seen, task)
}

fn check_consistent(s: &BackendStatus) {
    let process = s.state.has_process();
    assert_eq!(s.pid.is_some(), process, "pid vs state: {s:?}");
    assert_eq!(
        s.detail.started_at.is_some(),
        process,
        "start time vs state: {s:?}"
    );
    if process {
        assert_eq!(
            (s.exit_code, &s.signal),
            (None, &None),
            "exit while a process runs: {s:?}"
        );
    } else {
        assert_eq!(s.uptime_s, None, "uptime without a process: {s:?}");
        assert_eq!(s.cpu_percent, None, "cpu without a process: {s:?}");
    }
    assert_eq!(s.ready, s.state == State::Running, "ready vs state: {s:?}");
    assert_eq!(
        s.detail.retry_at.is_some(),
        s.state == State::Backoff,
        "retry time vs state: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_snapshot_of_a_start_stop_crash_restart_cycle_is_consistent() {
    let e = env();
    // The leader's child ignores SIGTERM, so after the leader dies the group
    // lingers for the whole stop timeout.
    let mut b = scripted(
        &e,
        "cyc",
        "sh -c 'trap \"\" TERM; echo $$ > child; while true; do sleep 0.1; done' &\nexec sleep 60",
    );
    b.stop.timeout = Duration::from_secs(1);
    b.restart = RestartSpec {
        policy: RestartPolicy::OnFailure,
        max_retries: 3,
        backoff: Duration::from_millis(300),
    };
    e.sup.apply(catalog([b])).await;
    let (seen, recorder) = record(&e, "cyc");

    assert!(accepted(e.sup.command("cyc", Verb::start()).await));
    wait_running(&e, "cyc").await;
    assert_eq!(e.sup.command("cyc", Verb::Stop).await, Ok(Outcome::Done));
    // Removed before the start: the script may write it before start returns.
    let child = e.path().join("child");
    let _ = std::fs::remove_file(&child);
    assert!(accepted(e.sup.command("cyc", Verb::start()).await));
    let pid = running_pid(&e, "cyc").await;
    pid_file(&child);
    // A crash: the leader dies by a signal berth did not send.
    signal(pid, Signal::SIGKILL);
    let s = wait_state(&e, "cyc", State::Stopping).await;
    assert_eq!(s.pid, Some(pid), "the lingering group is shown stopping");
    wait_state(&e, "cyc", State::Backoff).await;
    let s = wait_running(&e, "cyc").await;
    assert_ne!(s.pid, Some(pid));
    assert_eq!(s.restarts, 1);
    assert!(accepted(e.sup.command("cyc", Verb::restart()).await));
    wait_running(&e, "cyc").await;
    assert_eq!(e.sup.command("cyc", Verb::Stop).await, Ok(Outcome::Done));
    recorder.abort();

    let seen = seen.lock().unwrap();
    for s in seen.iter() {
        check_consistent(s);
    }
    // No dead leader is ever shown running: after the crash, the first
    // snapshot that is not `running` with the old pid is `stopping`.
    let crash = seen
        .iter()
        .position(|s| s.pid == Some(pid) && s.state == State::Running)
        .unwrap();
    // (The metrics task republishes about once a second: repeats are fine.)
    let mut after: Vec<State> = seen[crash..]
        .iter()
        .map(|s| s.state)
        .filter(|&st| st != State::Running)
        .collect();
    after.dedup();
    after.truncate(2);
    assert_eq!(after, [State::Stopping, State::Backoff]);
    let states: Vec<State> = seen.iter().map(|s| s.state).collect();
    for want in [
        State::Running,
        State::Stopping,
        State::Stopped,
        State::Backoff,
    ] {
        assert!(states.contains(&want), "{want:?} never seen in {states:?}");
    }
}

/// A stop is a state of the job, not a loop that blocks it: an edit and a
/// second Stop are answered while the first waits out the timeout.
#[tokio::test(flavor = "multi_thread")]
async fn stop_answers_while_another_stop_waits_out_the_timeout() {
    let e = env();
    let mut b = scripted(&e, "slow", DEAF_GRANDCHILD);
    b.stop.timeout = Duration::from_secs(2);
    apply_and_start(&e, b).await.unwrap();
    wait_running(&e, "slow").await;
    pid_file(&e.path().join("grandchild"));
    let sup = e.sup.clone();
    let first = tokio::spawn(async move { sup.command("slow", Verb::Stop).await });
    wait_state(&e, "slow", State::Stopping).await;
    // An edit applied during the stop is shown at once, not after it.
    let mut edited = scripted(&e, "slow", DEAF_GRANDCHILD);
    edited.name = "Renamed".into();
    let started = std::time::Instant::now();
    e.sup.apply(catalog([edited])).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "apply waited for the stop"
    );
    assert_eq!(
        e.sup.snapshot().get("slow").unwrap().name.as_deref(),
        Some("Renamed")
    );
    assert_eq!(e.sup.command("slow", Verb::Stop).await, Ok(Outcome::Done));
    assert_eq!(first.await.unwrap(), Ok(Outcome::Done));
    assert_eq!(e.sup.snapshot().get("slow").unwrap().state, State::Stopped);
}
