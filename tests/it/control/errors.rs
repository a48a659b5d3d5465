//! Errors that name the right thing (issue #12): a missing workdir is not a
//! missing executable, and a folder given as the executable says so.

use std::time::{Duration, Instant};

use super::home::*;

// A missing workdir was reported against the executable.
#[test]
fn a_missing_workdir_is_named_when_starting() {
    let home = Home::new();
    home.backend("wd", "exec sleep 600", "workdir: no-such-folder\n");
    let _l = home.launch();
    let out = home.run(&["start", "wd"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(
        out.stderr().contains("workdir ") && out.stderr().contains("no-such-folder does not exist"),
        "{out:?}"
    );
    let check = home.run(&["check", home.backends().to_str().unwrap()]);
    assert!(
        check.stdout().contains("no-such-folder does not exist"),
        "{check:?}"
    );
}

// A folder given as the executable read "not found".
#[test]
fn a_folder_given_as_the_executable_is_called_a_folder() {
    let home = Home::new();
    std::fs::create_dir(home.backends().join("tooldir")).unwrap();
    std::fs::write(
        home.backends().join("dir.yaml"),
        format!(
            "id: dir\nname: Dir\nversion: 1.0.0\nexecutable:\n  linux:\n    path: tooldir\n    sha256: {}\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let check = home.run(&["check", home.backends().to_str().unwrap()]);
    assert_eq!(check.code(), 1, "{check:?}");
    assert!(
        check.stderr().contains("executable.linux.path: ")
            && check.stderr().contains("tooldir is a folder, not a file"),
        "{check:?}"
    );
    let _l = home.launch();
    let out = home.run(&["start", "dir"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("is a folder, not a file"), "{out:?}");
}

fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

// An invalid manifest was shown in status and check but never in berth.log
// or on stderr.
#[test]
fn a_broken_manifest_is_logged_once_at_warn_and_its_repair_at_info() {
    let home = Home::new();
    home.backend("good", "exec sleep 600", "");
    let launcher = home.launch();
    let broken = home.backends().join("broken.yaml");
    std::fs::write(&broken, "id: broken\nargz: [1]\n").unwrap();
    let berth_log = home.path().join("state/berth/berth.log");
    let logged = |needle: &str| {
        let log = std::fs::read_to_string(&berth_log).unwrap_or_default();
        (count(&launcher.stderr(), needle), count(&log, needle))
    };
    assert!(
        wait_until(Duration::from_secs(10), || logged("manifest invalid")
            == (1, 1)),
        "{}",
        launcher.stderr()
    );
    let line = launcher
        .stderr()
        .lines()
        .find(|l| l.contains("manifest invalid"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("WARN") && line.contains("broken.yaml") && line.contains("argz"),
        "{line}"
    );
    // Touching it again with the same error logs nothing more.
    std::fs::write(&broken, "id: broken\nargz: [1]\n").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(logged("manifest invalid"), (1, 1));
    home.backend("broken", "exec sleep 600", "");
    assert!(
        wait_until(Duration::from_secs(10), || logged("manifest repaired")
            == (1, 1)),
        "{}",
        launcher.stderr()
    );
    assert!(
        launcher
            .stderr()
            .lines()
            .any(|l| l.contains("manifest repaired") && l.contains("INFO")),
        "{}",
        launcher.stderr()
    );
}

// A writer pausing mid-file showed its half-written file as an error.
#[test]
fn a_writer_pausing_mid_file_shows_no_error_and_a_valid_read_applies_at_once() {
    let home = Home::new();
    let launcher = home.launch();
    home.backend("slow", "exec sleep 600", "");
    let manifest = home.backends().join("slow.yaml");
    let full = std::fs::read_to_string(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    assert!(wait_until(Duration::from_secs(10), || home
        .status_json()
        .is_empty()));
    // The first half, a pause well past the debounce, then the rest.
    let (head, tail) = full.split_at(full.len() / 2);
    std::fs::write(&manifest, head).unwrap();
    let t0 = Instant::now();
    let mut seen_error = false;
    while t0.elapsed() < Duration::from_millis(600) {
        seen_error |= home.status_json().iter().any(|b| !b["error"].is_null());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&manifest)
        .unwrap();
    std::io::Write::write_all(&mut f, tail.as_bytes()).unwrap();
    drop(f);
    assert!(wait_until(Duration::from_secs(5), || home
        .status_json()
        .iter()
        .any(|b| b["id"] == "slow" && b["error"].is_null())));
    assert!(!seen_error, "a half-written file showed an error");
    assert_eq!(count(&launcher.stderr(), "manifest invalid"), 0);
}

// Issue #23, point 12: `berth start` of a script without its exec bit or its
// `#!` line printed a bare errno ("Permission denied (os error 13)", "Exec
// format error"), and a checksum mismatch had no hint; each now says what
// to do, naming the file once.
#[test]
fn first_use_errors_at_start_say_what_to_do() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    home.backend("noexec", "exec sleep 600", "");
    let noexec = home.backends().join("noexec.sh");
    std::fs::set_permissions(&noexec, std::fs::Permissions::from_mode(0o644)).unwrap();
    home.backend("noshebang", "exec sleep 600", "");
    let noshebang = home.backends().join("noshebang.sh");
    std::fs::write(&noshebang, "exec sleep 600\n").unwrap();
    home.run(&[
        "pin",
        "noshebang",
        "--backends",
        home.backends().to_str().unwrap(),
    ]);
    home.backend("tampered", "exec sleep 600", "");
    let tampered = home.backends().join("tampered.sh");
    std::fs::write(&tampered, "#!/bin/sh\nexec sleep 601\n").unwrap();
    let _l = home.launch();
    for (id, path, want) in [
        (
            "noexec",
            &noexec,
            format!("not executable: chmod +x {}", noexec.display()),
        ),
        (
            "noshebang",
            &noshebang,
            "has no #! line: add one or name the interpreter as the executable".to_owned(),
        ),
        (
            "tampered",
            &tampered,
            "run `berth pin tampered` if this file is trusted".to_owned(),
        ),
    ] {
        let out = home.run(&["start", id]);
        assert_eq!(out.code(), 1, "{out:?}");
        let err = out.stderr();
        assert!(one_line(&err) && err.contains(&want), "{id}: {out:?}");
        assert!(!err.contains("os error"), "{id}: {out:?}");
        let named = err.matches(path.to_str().unwrap()).count();
        assert!(named <= 1, "{id}: the path {named} times: {out:?}");
    }
}
