//! The guarantees under faults (issue 11), each through the real binary
//! (`berth run --headless` in a temp home) and real processes: a guardian
//! killed or stopped, a log file deleted, renamed, planted as a symlink or on
//! a full disk, scripts run by their path, an executable overwritten in place
//! while it is hashed, a file the kernel cannot execute, and an escaped
//! process holding a backend's pipes.

mod exec;
mod guardian;
mod logs;
mod pump;

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::control::home::{Home, Out};

/// Deadline for anything berth does here: over 3x its targets.
const T: Duration = Duration::from_secs(10);

/// Runs `berth ARGS` against `home`'s launcher and fails the test if it does
/// not answer within `T` (a client that hangs is the fault some tests guard).
fn run_within(home: &Home, args: &[&str]) -> Out {
    let mut child = home
        .berth(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + T;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`berth {}` did not answer within {T:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Out(child.wait_with_output().unwrap())
}

/// berth's own log in `home`.
fn berth_log(home: &Home) -> String {
    std::fs::read_to_string(home.path().join("state/berth/berth.log")).unwrap_or_default()
}
