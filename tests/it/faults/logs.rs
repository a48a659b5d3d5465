//! Logs survive their file: deleted or renamed live, on a full disk, or
//! replaced by a planted symlink.

use std::process::Command;

use super::*;
use crate::control::home::wait_until;

/// A backend printing `tick N` every 20 ms.
fn ticking(home: &Home, id: &str) {
    home.backend(
        id,
        "i=0; while :; do echo \"tick $i\"; i=$((i+1)); sleep 0.02; done",
        "",
    );
}

/// Every line of `text` is whole and stamped: nothing half-written.
fn assert_whole_lines(text: &str) {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "partial line: {text:?}"
    );
    for line in text.lines() {
        let (stamp, rest) = line.split_once(' ').unwrap();
        assert_eq!(stamp.len(), 24, "{line:?}");
        assert!(rest.starts_with("stdout tick "), "{line:?}");
        rest[12..]
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{line:?}"));
    }
}

#[test]
fn a_deleted_or_renamed_live_log_is_recreated_within_a_second() {
    let home = Home::new();
    ticking(&home, "tick");
    let _l = home.launch();
    assert_eq!(run_within(&home, &["start", "tick"]).code(), 0);
    let log = home.log("tick");
    let has_lines =
        |p: &std::path::Path| std::fs::read_to_string(p).is_ok_and(|t| t.lines().count() >= 3);
    assert!(wait_until(T, || has_lines(&log)));
    std::fs::remove_file(&log).unwrap();
    let gone = Instant::now();
    // Target: a second; deadline 3x.
    assert!(
        wait_until(Duration::from_secs(3), || has_lines(&log)),
        "never recreated"
    );
    eprintln!(
        "deleted log recreated with lines after {:?}",
        gone.elapsed()
    );
    let renamed = log.with_extension("log.rotated");
    std::fs::rename(&log, &renamed).unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || has_lines(&log)),
        "never recreated"
    );
    assert_eq!(run_within(&home, &["stop", "tick"]).code(), 0);
    assert_whole_lines(&std::fs::read_to_string(&renamed).unwrap());
    assert_whole_lines(&std::fs::read_to_string(&log).unwrap());
}

#[test]
fn a_planted_log_symlink_is_not_followed() {
    let home = Home::new();
    ticking(&home, "tick");
    let logs = home.path().join("state/berth/logs");
    std::fs::create_dir_all(&logs).unwrap();
    let victim = home.path().join("victim");
    std::os::unix::fs::symlink(&victim, logs.join("tick.log")).unwrap();
    let _l = home.launch();
    let out = run_within(&home, &["start", "tick"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("symbolic link"), "{out:?}");
    assert_eq!(home.status_of("tick")["state"], "failed");
    assert!(!victim.exists(), "berth wrote through the link");
}

/// A tmpfs of `size` mounted at `dir` for the test's life (the test runs as
/// root, as CI does).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mount a tmpfs at {} (needs root)", dir.display());
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_drops_lines_reports_once_and_logging_resumes() {
    let home = Home::new();
    ticking(&home, "tick");
    let logs = home.path().join("state/berth/logs");
    let _fs = Tmpfs::mount(&logs, "256k");
    let _l = home.launch();
    assert_eq!(run_within(&home, &["start", "tick"]).code(), 0);
    let log = home.log("tick");
    assert!(wait_until(T, || std::fs::read_to_string(&log)
        .is_ok_and(|t| !t.is_empty())));
    // Fill the disk.
    let filler = logs.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let error = |home: &Home| home.status_of("tick")["error"].as_str().map(str::to_owned);
    assert!(
        wait_until(T, || error(&home)
            .is_some_and(|e| e.contains("No space left on device"))),
        "{:?}",
        home.status_of("tick")
    );
    let full_at = std::fs::read_to_string(&log).unwrap().len();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    // Resumes within a second of the space coming back (deadline 3x).
    assert!(
        wait_until(Duration::from_secs(3), || std::fs::read_to_string(&log)
            .unwrap()
            .len()
            > full_at + 200),
        "logging never resumed"
    );
    assert!(wait_until(Duration::from_secs(3), || error(&home).is_none()));
    eprintln!("logging resumed {:?} after space returned", freed.elapsed());
    assert_eq!(run_within(&home, &["stop", "tick"]).code(), 0);
    assert_whole_lines(&std::fs::read_to_string(&log).unwrap());
    let own = berth_log(&home);
    assert_eq!(own.matches("No space left on device").count(), 1, "{own}");
    assert_eq!(
        own.matches("backend log writable again").count(),
        1,
        "{own}"
    );
}

// Issue #23, point 10: backend logs and berth.log were 0644 in 0755
// folders, readable by every other user of the machine; also those an
// earlier berth left that way.
#[test]
fn logs_are_readable_by_this_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    ticking(&home, "old");
    ticking(&home, "new");
    let state = home.path().join("state/berth");
    let logs = state.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for dir in [&state, &logs] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let old = home.log("old");
    std::fs::write(&old, "").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _l = home.launch();
    assert_eq!(home.run(&["start", "old"]).code(), 0);
    assert_eq!(home.run(&["start", "new"]).code(), 0);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for (path, want) in [
        (state.clone(), 0o700),
        (logs.clone(), 0o700),
        (state.join("berth.log"), 0o600),
        (home.log("old"), 0o600),
        (home.log("new"), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
}
