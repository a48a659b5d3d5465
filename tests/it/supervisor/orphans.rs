//! No orphans even when the supervisor itself is SIGKILLed: the guardian
//! process (berth's child, in its own group, holding nothing of berth's)
//! ends every backend group, PyInstaller onefile pairs included.

use std::io::BufRead;
use std::time::Instant;

use nix::sys::signal::Signal;

use crate::util::{
    example_supervise, group_pids, guardians_of, pyinstaller_backend, running, wait_gone,
};

use super::*;

#[test]
fn killed_supervisor_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let shell = script(dir.path(), "shell.sh", DEAF_GRANDCHILD);
    let mut specs = vec![format!("shell={}", shell.display())];
    let py = pyinstaller_backend();
    if let Some(py) = &py {
        specs.push(format!("py={}", py.display()));
    }
    let stop_timeout = Duration::from_millis(1000);
    let mut child = std::process::Command::new(example_supervise())
        .arg(dir.path().join("logs"))
        .arg(stop_timeout.as_millis().to_string())
        .args(&specs)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut leaders = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        leaders.push(line.split_once(' ').unwrap().1.parse::<u32>().unwrap());
    }
    assert_eq!(leaders.len(), specs.len());
    let gc = pid_file(&dir.path().join("grandchild"));
    let mut all: Vec<u32> = leaders.iter().flat_map(|&l| group_pids(l)).collect();
    all.push(gc);
    if py.is_some() {
        assert!(
            all.len() >= 4,
            "expected the onefile's two processes: {all:?}"
        );
    }
    // The guardians: two of berth's children, each in its own group, each
    // holding only its pipe and the shared lock, deaf to Ctrl-C.
    let guardians = guardians_of(child.id());
    assert_eq!(guardians.len(), 2, "{guardians:?}");
    for &guardian in &guardians {
        assert_eq!(group_pids(guardian), [guardian]);
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{guardian}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        assert_eq!(
            fds,
            ["0", "1", "2", "3"],
            "the guardian holds descriptors of berth's"
        );
        let lock = std::fs::read_link(format!("/proc/{guardian}/fd/3")).unwrap();
        assert!(
            lock.to_string_lossy().contains("memfd:berth-guardian-lock"),
            "{lock:?}"
        );
        signal(guardian, Signal::SIGINT);
    }
    std::thread::sleep(Duration::from_millis(100));
    for &guardian in &guardians {
        assert!(running(guardian), "SIGINT killed the guardian");
    }
    child.kill().unwrap();
    let killed = Instant::now();
    child.wait().unwrap();
    // Target: stop timeout + 1 s; deadline 3x that for a noisy machine.
    let target = stop_timeout + Duration::from_secs(1);
    for pid in &all {
        assert!(
            wait_gone(*pid, 3 * target),
            "{pid} survived the supervisor's death"
        );
    }
    eprintln!(
        "all backend processes gone {:?} after SIGKILL",
        killed.elapsed()
    );
    for &guardian in &guardians {
        assert!(wait_gone(guardian, T), "the guardian did not exit");
    }
    eprintln!("guardians gone {:?} after SIGKILL", killed.elapsed());
}
