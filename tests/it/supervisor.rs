//! The supervisor against real processes: shell scripts in temp dirs, real
//! process groups, real log files, real sockets.
//!
//! One file per theme below `supervisor/`; this file holds what they share:
//! the deadline, building and launching a scripted backend, and waiting for
//! the pids the tests then watch.

use berth::verb::Verb;
use std::path::Path;
use std::time::Duration;

use berth::manifest::{Backend, Probe, ReadySpec};
use berth::status::{ActionError, BackendStatus, Outcome, State};

use crate::util::{Env, backend, catalog, env, script, wait_file, wait_for};

mod catalog;
mod depends;
mod events;
mod health;
mod integrity;
mod lifecycle;
mod logs;
mod orphans;
mod readiness;
mod restarts;
mod states;

/// Deadline for anything the supervisor does: over 3x its targets on a
/// loaded machine.
const T: Duration = Duration::from_secs(10);

/// A script whose grandchild ignores SIGTERM and writes its pid to
/// `grandchild`: only a signal to the whole group ends it.
const DEAF_GRANDCHILD: &str =
    "sh -c 'trap \"\" TERM; while true; do sleep 0.1; done' &\necho $! > grandchild\nwait";

/// A backend `id` running the script `<id>.sh` (in the env's dir) with `body`.
fn scripted(e: &Env, id: &str, body: &str) -> Backend {
    backend(e.path(), id, &script(e.path(), &format!("{id}.sh"), body))
}

/// Applies a catalog of just `b`, then asks to start it.
async fn apply_and_start(e: &Env, b: Backend) -> Result<Outcome, ActionError> {
    let id = b.id.as_str().to_owned();
    e.sup.apply(catalog([b])).await;
    e.sup.command(&id, Verb::start()).await
}

/// A start or restart was accepted: `Done`, or `Reached` when the run was
/// already `running` when the job answered (a probe that matches at spawn).
fn accepted(outcome: Result<Outcome, ActionError>) -> bool {
    matches!(outcome, Ok(Outcome::Done | Outcome::Reached(_)))
}

/// Waits for `id` to be in `state` and returns its status.
async fn wait_state(e: &Env, id: &str, state: State) -> BackendStatus {
    wait_for(&e.sup, id, T, |s| s.state == state).await
}

/// Waits for `id` to be running and returns its status.
async fn wait_running(e: &Env, id: &str) -> BackendStatus {
    wait_state(e, id, State::Running).await
}

/// Waits for `id` to be running and returns its leader's pid.
async fn running_pid(e: &Env, id: &str) -> u32 {
    wait_running(e, id).await.pid.unwrap()
}

/// Waits for `id` to have a process (ready or not) and returns its pid.
async fn spawned_pid(e: &Env, id: &str) -> u32 {
    wait_for(&e.sup, id, T, |s| s.pid.is_some())
        .await
        .pid
        .unwrap()
}

/// Waits for the file at `path` and reads the pid a script wrote into it.
fn pid_file(path: &Path) -> u32 {
    wait_file(path, T).parse().unwrap()
}

/// Sends `signal` to the process `pid`.
fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
}

fn ready_spec(probe: Probe, timeout: Duration) -> ReadySpec {
    ReadySpec { probe, timeout }
}

/// The stdout probe waiting for a `{"status": "ready"}` line.
fn status_ready() -> Probe {
    Probe::StdoutJson(
        serde_json::json!({"status": "ready"})
            .as_object()
            .unwrap()
            .clone(),
    )
}
