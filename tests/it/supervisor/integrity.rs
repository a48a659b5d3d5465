//! What a launch runs: only bytes whose digest was checked, nothing when the
//! check fails or the file is gone, and none of berth's own descriptors.

use super::*;
use berth::verb::Verb;

#[tokio::test(flavor = "multi_thread")]
async fn integrity_failure_spawns_nothing() {
    let e = env();
    let mut b = scripted(&e, "m", "touch marker\nexec sleep 60");
    b.executable.as_mut().unwrap().sha256 = berth::manifest::Digest([7; 32]);
    let err = apply_and_start(&e, b).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("checksum mismatch: expected 0707"), "{msg}");
    assert!(!msg.contains('\n'));
    let s = e.sup.snapshot().get("m").unwrap().clone();
    assert_eq!(s.state, State::IntegrityFailed);
    assert_eq!(s.pid, None);
    assert_eq!(s.detail.verified, Some(false));
    assert!(s.error.unwrap().starts_with("checksum mismatch"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!e.path().join("marker").exists(), "the script ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_executable_is_not_found() {
    let e = env();
    let b = scripted(&e, "gone", "exec sleep 60");
    std::fs::remove_file(e.path().join("gone.sh")).unwrap();
    let err = apply_and_start(&e, b).await.unwrap_err().to_string();
    assert!(err.contains("executable not found: tried"), "{err}");
    assert!(err.contains("gone.sh"), "{err}");
    assert_eq!(e.sup.snapshot().get("gone").unwrap().state, State::NotFound);
    // A rebuilt executable is picked up at the next start.
    script(e.path(), "gone.sh", "exec sleep 60");
    e.sup.command("gone", Verb::start()).await.unwrap();
    wait_running(&e, "gone").await;
    e.sup.command("gone", Verb::Stop).await.unwrap();
}

// A `#!` script runs by its path (its interpreter must see the real `$0`),
// so the child checks that the path still names the hashed file: a swap
// after the check runs nothing.
#[tokio::test(flavor = "multi_thread")]
async fn swapping_a_script_after_the_check_runs_nothing() {
    let e = env();
    let exe = script(e.path(), "swap.sh", "echo good > result\nexec sleep 60");
    let evil = script(e.path(), "evil.sh", "echo evil > result\nexec sleep 60");
    e.sup
        .apply(catalog([backend(e.path(), "swap", &exe)]))
        .await;
    let target = exe.clone();
    berth::integrity::set_after_verify_hook(Some(Box::new(move |p| {
        if p == target {
            std::fs::rename(&evil, &target).unwrap();
        }
    })));
    let r = e.sup.command("swap", Verb::start()).await;
    berth::integrity::set_after_verify_hook(None);
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("changed while or after it was hashed: not run"),
        "{err}"
    );
    assert_eq!(
        e.sup.snapshot().get("swap").unwrap().state,
        State::IntegrityFailed
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!e.path().join("result").exists(), "a script ran");
}

// A backend inherits stdin, stdout, stderr and (for a `#!` script) its own
// file, and nothing else of berth's: here a pipe berth holds without
// close-on-exec, as a descriptor inherited from a terminal would be.
#[tokio::test(flavor = "multi_thread")]
async fn a_backend_inherits_no_descriptor_of_berths() {
    let e = env();
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array we own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let exe = script(e.path(), "fds.sh", "exec sleep 60");
    let b = backend(e.path(), "fds", &exe);
    assert!(accepted(apply_and_start(&e, b).await));
    let pid = running_pid(&e, "fds").await;
    // Look once the shell has become `sleep`: while it still runs the script,
    // the shell's own descriptors come and go.
    let comm = format!("/proc/{pid}/comm");
    let deadline = std::time::Instant::now() + T;
    while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
        assert!(
            std::time::Instant::now() < deadline,
            "the script never exec'd sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut open: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_string_lossy().parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect();
    open.sort();
    let unexpected: Vec<_> = open
        .iter()
        .filter(|(fd, target)| *fd > 2 && *target != exe.display().to_string())
        .collect();
    assert!(unexpected.is_empty(), "leaked into the backend: {open:?}");
    e.sup.command("fds", Verb::Stop).await.unwrap();
    // SAFETY: closing the two descriptors this test opened.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}

/// Regression (#12): a backend whose executable is missing showed `stopped`
/// until someone pressed Start.
#[tokio::test(flavor = "multi_thread")]
async fn missing_executable_shows_not_found_without_a_start_and_flips_back() {
    let e = env();
    let b = scripted(&e, "late", "exec sleep 60");
    let exe = e.path().join("late.sh");
    let body = std::fs::read(&exe).unwrap();
    std::fs::remove_file(&exe).unwrap();
    e.sup.apply(catalog([b.clone()])).await;
    let s = e.sup.snapshot().get("late").unwrap().clone();
    assert_eq!(s.state, State::NotFound);
    assert!(s.error.unwrap().contains("executable not found"));
    // It appears: the next look (a status request, a reload) says stopped.
    std::fs::write(&exe, &body).unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    e.sup.recheck().await;
    let s = e.sup.snapshot().get("late").unwrap().clone();
    assert_eq!((s.state, s.error), (State::Stopped, None));
    std::fs::remove_file(&exe).unwrap();
    e.sup.apply(catalog([b])).await;
    wait_state(&e, "late", State::NotFound).await;
}

/// Regression (#12): hashing ran on the async runtime, so every other task
/// (status replies, log pumps) stalled while a big executable was hashed.
/// One worker thread: a hash on it would block everything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn hashing_a_big_executable_does_not_stall_the_runtime() {
    let e = env();
    let exe = e.path().join("big");
    // Sparse: cheap to make, still read and hashed byte by byte.
    let f = std::fs::File::create(&exe).unwrap();
    f.set_len(48 << 20).unwrap();
    drop(f);
    let mut b = backend(e.path(), "big", &exe);
    b.executable.as_mut().unwrap().sha256 = berth::manifest::Digest([0u8; 32]);
    e.sup.apply(catalog([b])).await;
    let sup = e.sup.clone();
    let start = tokio::spawn(async move { sup.command("big", Verb::start()).await });
    let mut worst = Duration::ZERO;
    let mut samples = 0;
    while !start.is_finished() {
        let t = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        worst = worst.max(t.elapsed());
        samples += 1;
    }
    assert!(
        start.await.unwrap().is_err(),
        "the digest is wrong on purpose"
    );
    assert!(samples >= 3, "the hash ended before it could be observed");
    // Target 100 ms; 5x that on a loaded machine.
    assert!(
        worst < Duration::from_millis(500),
        "the runtime stalled {worst:?}"
    );
}
