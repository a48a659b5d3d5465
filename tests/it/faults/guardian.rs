//! The guardians are watched: one that dies is replaced at once by one that
//! knows every running group, berth and a guardian killed at the same
//! instant still leave nothing, and a guardian that stops reading (SIGSTOP)
//! blocks nothing and is replaced.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::*;
use crate::control::home::wait_until;
use crate::util::{group_pids, guardians_of, wait_file, wait_gone};

/// A backend whose child ignores SIGTERM and writes its pid to `<id>.gc`:
/// only the guardian's SIGKILL to the whole group ends it in time.
fn deaf_backend(home: &Home, id: &str) {
    home.backend(
        id,
        &format!("sh -c 'trap \"\" TERM; while :; do sleep 0.1; done' &\necho $! > {id}.gc\nwait"),
        "",
    );
}

/// Starts `id` and returns every process of its group, its deaf child included.
fn start_and_list(home: &Home, id: &str) -> Vec<u32> {
    let out = run_within(home, &["start", id]);
    assert_eq!(out.code(), 0, "{out:?}");
    let gc: u32 = wait_file(&home.backends().join(format!("{id}.gc")), T)
        .parse()
        .unwrap();
    let leader = home.status_of(id)["pid"].as_u64().unwrap() as u32;
    let mut pids = group_pids(leader);
    assert!(pids.contains(&gc), "{pids:?} lacks {gc}");
    pids.sort();
    pids
}

/// Whether `pid` is stopped by a signal (state `T` in /proc/PID/stat).
fn stopped_state(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name's closing parenthesis.
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('T'))
}

fn sig(pid: u32, s: Signal) {
    kill(Pid::from_raw(pid as i32), s).unwrap();
}

/// Kills every pid in `pids` at the same instant: all are stopped first, so
/// none runs a single instruction between the kills.
fn kill_at_once(pids: &[u32]) {
    for &p in pids {
        sig(p, Signal::SIGSTOP);
    }
    for &p in pids {
        sig(p, Signal::SIGKILL);
    }
}

/// Every pid is gone within 3x (stop timeout 2 s + 1 s).
fn assert_all_gone(pids: &[u32], since: Instant) {
    let target = Duration::from_secs(3);
    for &pid in pids {
        assert!(
            wait_gone(pid, 3 * target),
            "{pid} survived berth's death ({:?} after)",
            since.elapsed()
        );
    }
    eprintln!(
        "all {} backend processes gone {:?} after the kill",
        pids.len(),
        since.elapsed()
    );
}

/// The launcher's two guardians, once both have exec'd.
fn pair_of(launcher: u32) -> Vec<u32> {
    wait_replaced(launcher, &[], T)
}

/// Waits until `launcher` has two guardians, none of them in `old`.
fn wait_replaced(launcher: u32, old: &[u32], within: Duration) -> Vec<u32> {
    let mut now = Vec::new();
    let replaced = wait_until(within, || {
        now = guardians_of(launcher);
        now.len() == 2 && now.iter().all(|p| !old.contains(p))
    });
    assert!(replaced, "guardians {old:?} not replaced: now {now:?}");
    now
}

#[test]
fn killed_guardians_are_replaced_and_a_later_kill_of_berth_leaves_nothing() {
    let home = Home::new();
    deaf_backend(&home, "before");
    deaf_backend(&home, "after");
    let mut l = home.launch();
    let launcher = l.child.id();
    let mut pids = start_and_list(&home, "before");
    let old = pair_of(launcher);
    assert_eq!(old.len(), 2, "{old:?}");
    for &g in &old {
        let comm = std::fs::read_to_string(format!("/proc/{g}/comm")).unwrap();
        assert_eq!(comm.trim(), "berth-guardian", "killall berth would kill it");
    }
    // Both at once: no old guardian is left to cover for the new ones.
    let killed = Instant::now();
    kill_at_once(&old);
    let new = wait_replaced(launcher, &old, T);
    eprintln!(
        "guardians {old:?} replaced by {new:?} in {:?}",
        killed.elapsed()
    );
    let log = berth_log(&home);
    assert!(log.contains("a guardian died"), "{log}");
    assert!(log.contains("a new guardian took over"), "{log}");
    // A backend started after the death is protected too.
    pids.extend(start_and_list(&home, "after"));
    let killed = Instant::now();
    l.child.kill().unwrap();
    l.child.wait().unwrap();
    assert_all_gone(&pids, killed);
    for g in new {
        assert!(wait_gone(g, T), "guardian {g} did not exit");
    }
}

#[test]
fn berth_and_a_guardian_killed_at_the_same_instant_leave_nothing() {
    let home = Home::new();
    deaf_backend(&home, "a");
    deaf_backend(&home, "b");
    let mut l = home.launch();
    let launcher = l.child.id();
    let mut pids = start_and_list(&home, "a");
    pids.extend(start_and_list(&home, "b"));
    let guardians = pair_of(launcher);
    assert_eq!(guardians.len(), 2, "{guardians:?}");
    let killed = Instant::now();
    kill_at_once(&[launcher, guardians[0]]);
    l.child.wait().unwrap();
    assert_all_gone(&pids, killed);
    assert!(
        wait_gone(guardians[1], T),
        "the other guardian did not exit"
    );
}

#[test]
fn a_stopped_guardian_blocks_no_launch_and_is_replaced() {
    let home = Home::new();
    deaf_backend(&home, "a");
    let mut l = home.launch();
    let launcher = l.child.id();
    let old = pair_of(launcher);
    assert_eq!(old.len(), 2, "{old:?}");
    let stopped = old[0];
    sig(stopped, Signal::SIGSTOP);
    // kill() returns before the signal takes effect: a guardian woken in
    // read() would still take the junk below and leave room in its pipe
    // (seen under load). Fill only once it is really stopped.
    assert!(
        wait_until(T, || stopped_state(stopped)),
        "guardian {stopped} did not stop"
    );
    // Fill its pipe to the brim, as ~2000 spawns would: junk lines it ignores.
    let mut pipe = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{stopped}/fd/0"))
        .unwrap();
    let junk = vec![b'\n'; 4096];
    let mut filled = 0;
    while let Ok(n) = pipe.write(&junk) {
        filled += n;
    }
    assert!(filled >= 4096, "pipe took {filled} bytes");
    let began = Instant::now();
    // Every launch writes to that pipe; none may wait for it.
    for _ in 0..3 {
        let out = run_within(&home, &["start", "a"]);
        assert_eq!(out.code(), 0, "{out:?}");
        let out = run_within(&home, &["stop", "a"]);
        assert_eq!(out.code(), 0, "{out:?}");
        std::fs::remove_file(home.backends().join("a.gc")).unwrap();
    }
    eprintln!(
        "3 starts and stops with a full guardian pipe: {:?}",
        began.elapsed()
    );
    let pids = start_and_list(&home, "a");
    // Replaced after 5 s without reading.
    let new = wait_replaced(launcher, &[stopped], Duration::from_secs(5) + T);
    assert!(
        new.contains(&old[1]),
        "the healthy guardian was replaced too"
    );
    let log = berth_log(&home);
    assert!(log.contains("has read nothing for 5s"), "{log}");
    assert!(wait_gone(stopped, T), "the stopped guardian was not killed");
    drop(pipe);
    let killed = Instant::now();
    l.child.kill().unwrap();
    l.child.wait().unwrap();
    assert_all_gone(&pids, killed);
}
