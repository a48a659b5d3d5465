//! Test hooks for kills (issue #27, point 5): "a kill -9 at any moment
//! leaves either the old or the new version whole". A test cannot hit a
//! moment inside an update by timing, so the updater stops at named points
//! and waits there to be killed:
//!
//! - `downloading`: an artifact's first bytes are written (the executable,
//!   which is downloaded first), the rest is not;
//! - `staged`: a release is staged and verified, not yet published;
//! - `published-version`: the version's folder is renamed into place (and
//!   the previous version noted), the link still names the old one.
//!
//! With `BERTH_TEST_UPDATE_PAUSE=POINT`, [`at`]`(POINT)` says so (a line
//! "berth: paused at POINT" on stderr, and POINT written to the file
//! `BERTH_TEST_UPDATE_PAUSED` names, if set, which a test polls) and never
//! returns. Only in debug builds: a release build compiles [`at`] to
//! nothing, so no environment can stop a user's update halfway.
//!
//! Where it waits: the points are reached on a blocking thread (a
//! download), or in the updater's task on the launcher's multi-threaded
//! runtime. There the wait goes through `block_in_place`, which hands the
//! worker's other tasks to another thread first, so the launcher keeps
//! answering while it holds (as it would mid-update). On a current-thread
//! runtime (the CLI's own) nothing else runs anyway and it just sleeps.

/// The variable that names the point to stop at.
pub const PAUSE: &str = "BERTH_TEST_UPDATE_PAUSE";
/// The variable that names a file to write the point into once reached.
pub const PAUSED: &str = "BERTH_TEST_UPDATE_PAUSED";

/// Stops here for good when `BERTH_TEST_UPDATE_PAUSE` is `point` (debug
/// builds only); returns at once otherwise.
#[cfg(debug_assertions)]
pub fn at(point: &str) {
    if let Some(wanted) = std::env::var_os(PAUSE) {
        let paused = std::env::var_os(PAUSED).map(std::path::PathBuf::from);
        stop_if(&wanted, point, paused.as_deref());
    }
}

/// [`at`] with the variables read.
#[cfg(debug_assertions)]
fn stop_if(wanted: &std::ffi::OsStr, point: &str, paused: Option<&std::path::Path>) {
    if wanted != point {
        return;
    }
    eprintln!("berth: paused at {point}");
    if let Some(file) = paused
        && let Err(e) = std::fs::write(file, point)
    {
        eprintln!("berth: {}: {e}", file.display());
    }
    hold()
}

/// Release builds: nothing to stop.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn at(_point: &str) {}

#[cfg(debug_assertions)]
fn hold() -> ! {
    use tokio::runtime::{Handle, RuntimeFlavor};
    fn forever() -> ! {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    match Handle::try_current() {
        // A worker's other tasks move to another thread first; on the
        // blocking pool this just runs `forever`.
        Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| forever())
        }
        _ => forever(),
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use std::ffi::OsStr;
    use std::time::Duration;

    use super::*;

    /// The held task must not take its worker with it: on a runtime of one
    /// worker, a plain sleep there would starve every other task.
    #[test]
    fn a_point_holds_its_own_task_and_the_runtime_runs_on() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("paused");
        stop_if(OsStr::new("staged"), "downloading", Some(&file));
        assert!(!file.exists(), "another point stopped");

        // Never dropped on a failed assertion: a drop waits for the held
        // thread, which never ends.
        let runtime = std::mem::ManuallyDrop::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        );
        let marker = file.clone();
        let held = runtime.spawn(async move {
            stop_if(OsStr::new("staged"), "staged", Some(&marker));
        });
        // Waited for on this thread, not with the runtime's timers: they
        // would stop too if the worker did.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&file).unwrap_or_default() != "staged" {
            assert!(std::time::Instant::now() < deadline, "never reached");
            std::thread::sleep(Duration::from_millis(10));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "the runtime stopped with the held task"
        );
        assert!(!held.is_finished());
        // The held thread never ends: do not wait for it.
        std::mem::ManuallyDrop::into_inner(runtime).shutdown_background();
    }
}
