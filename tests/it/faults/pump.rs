//! A run's log pump ends with its run: an escaped process (setsid) that
//! holds the old pipes neither writes into a later run's log nor keeps
//! berth's descriptors growing.

use super::*;
use crate::control::home::alive;
use crate::util::wait_file;

/// The number of descriptors `pid` has open.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Kills the escapees listed in a file when dropped, also when a test fails.
struct Reaper(std::path::PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        for p in std::fs::read_to_string(&self.0).unwrap_or_default().lines() {
            if let Ok(pid) = p.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

#[test]
fn an_escaped_process_keeps_no_old_pump_alive() {
    let home = Home::new();
    // Each run leaves an escapee that prints its own pid forever, on the
    // run's stdout, out of the group's reach. One Python process (Debian's,
    // not a pyenv shim that takes seconds to start; Python ignores SIGPIPE,
    // write errors are skipped): a shell loop forking `sleep` 50 times a
    // second died in a loaded CI run, which proved nothing.
    home.backend(
        "esc",
        "setsid /usr/bin/python3 -S -c '\nimport os, time\nline = b\"esc %d\\n\" % os.getpid()\nwhile True:\n    try:\n        os.write(1, line)\n    except OSError:\n        pass\n    time.sleep(0.02)\n' &\necho $! >> escapees\necho run\nexec sleep 600",
        "",
    );
    let l = home.launch();
    let berth = l.child.id();
    let escapees = home.backends().join("escapees");
    let _reaper = Reaper(escapees.clone());
    let start = |n: usize| {
        let out = run_within(&home, &["start", "esc"]);
        assert_eq!(out.code(), 0, "{out:?}");
        let deadline = Instant::now() + T;
        while std::fs::read_to_string(&escapees)
            .unwrap_or_default()
            .lines()
            .count()
            < n
        {
            assert!(Instant::now() < deadline, "run {n} left no escapee");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    start(1);
    let _ = wait_file(&escapees, T);
    let before = fd_count(berth);
    let mut counts = Vec::new();
    for n in 2..=6 {
        let out = run_within(&home, &["stop", "esc"]);
        assert_eq!(out.code(), 0, "{out:?}");
        start(n);
        counts.push(fd_count(berth));
    }
    let pids: Vec<u64> = std::fs::read_to_string(&escapees)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 6);
    // Every escapee still runs (else the test proves nothing).
    for &p in &pids {
        assert!(alive(p), "escapee {p} died");
    }
    eprintln!("berth's descriptors: {before} after the first run, then {counts:?}");
    assert!(
        counts.iter().all(|&c| c <= before + 2),
        "descriptors grow with restarts: {before} then {counts:?}"
    );
    // The old escapees' lines stop at their run's end: over 300 ms only the
    // current run's escapee is logged.
    let count = |pid: u64| {
        std::fs::read_to_string(home.log("esc"))
            .unwrap()
            .lines()
            .filter(|l| l.ends_with(&format!(" stdout esc {pid}")))
            .count()
    };
    let old: Vec<usize> = pids[..5].iter().map(|&p| count(p)).collect();
    let current = count(pids[5]);
    std::thread::sleep(Duration::from_millis(300));
    let old_after: Vec<usize> = pids[..5].iter().map(|&p| count(p)).collect();
    assert_eq!(
        old, old_after,
        "an old run's escapee still writes into the log"
    );
    assert!(
        count(pids[5]) > current,
        "the current run is not logged: {pids:?}\n{}",
        std::fs::read_to_string(home.log("esc")).unwrap_or_default()
    );
    let out = run_within(&home, &["stop", "esc"]);
    assert_eq!(out.code(), 0, "{out:?}");
}
