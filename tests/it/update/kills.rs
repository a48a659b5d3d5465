//! Nothing half-installed (issue #27, point 5): the launcher killed with
//! SIGKILL in the middle of `berth update` at the points of
//! `berth::update::pause` (debug builds hold there when
//! `BERTH_TEST_UPDATE_PAUSE` names them), and each time the next `berth run`
//! shows a whole version that verifies and starts, with nothing of the
//! update left behind.
//!
//! Only the launcher is killed, as a crash kills it: its guardians stop the
//! backend it ran (docs/ARCHITECTURE.md, "Nothing orphaned"). Killing its
//! process group would take the guardians along (and the test, whose
//! group the launcher shares).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::feed::demo_following;
use crate::control::home::{Home, alive, wait_until};

/// What is in `updates/demo` (names, sorted).
fn versions(updates: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(updates.join("demo"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The staging folder the killed update left (there must be one).
fn staging(updates: &Path) -> PathBuf {
    let name = versions(updates)
        .into_iter()
        .find(|n| n.starts_with(".staging."))
        .unwrap_or_else(|| panic!("no staging folder in {}", updates.display()));
    updates.join("demo").join(name)
}

/// Checks what the kill at `point` left, before any launcher cleans up:
/// the update really was in the middle of that step.
fn left_at(point: &str, updates: &Path) {
    let link = updates.join("demo.yaml");
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "{point}: the link moved"
    );
    match point {
        "downloading" => {
            use std::os::unix::fs::PermissionsExt;
            let dir = staging(updates);
            assert!(dir.join("demo.yaml").is_file(), "{point}");
            // Written, not yet checked and made executable.
            let mode = std::fs::metadata(dir.join("run.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0, "{point}: the download was finished");
            assert!(
                !dir.join("lib").exists(),
                "{point}: the files were unpacked"
            );
        }
        "staged" => {
            let dir = staging(updates);
            assert!(
                dir.join("run.sh").is_file() && dir.join("lib").is_dir(),
                "{point}"
            );
        }
        "published-version" => {
            assert_eq!(versions(updates), ["1.1.0"], "{point}");
        }
        other => unreachable!("{other}"),
    }
}

#[test]
fn a_launcher_killed_mid_update_leaves_a_whole_version_that_starts() {
    let home = Home::new();
    let _server = demo_following(&home, "");
    let updates = home.path().join("data/berth/updates");
    let paused = home.path().join("paused");

    for point in ["downloading", "staged", "published-version"] {
        let _ = std::fs::remove_file(&paused);
        let mut launcher = home.launch_with_cmd(&[], |cmd| {
            cmd.env("BERTH_TEST_UPDATE_PAUSE", point)
                .env("BERTH_TEST_UPDATE_PAUSED", &paused);
        });
        assert_eq!(home.run(&["start", "demo"]).code(), 0, "{point}");
        let pid = home.status_of("demo")["pid"].as_u64().unwrap();
        let mut update = home
            .berth(&["update", "demo"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let reached = wait_until(Duration::from_secs(30), || {
            std::fs::read_to_string(&paused).is_ok_and(|p| p == point)
        });
        assert!(reached, "{point} never reached: {}", launcher.stderr());
        launcher.signal(Signal::SIGKILL);
        launcher.wait(Duration::from_secs(10));
        let _ = update.wait();
        assert!(
            wait_until(Duration::from_secs(10), || !alive(pid)),
            "{point}: the backend outlived its launcher"
        );
        left_at(point, &updates);

        // The next launcher: the old version, whole; nothing left over.
        let cleaned = recovered(&home);
        let _launcher = home.launch();
        // berth.log is written off the launcher's threads: give it time.
        assert!(
            wait_until(Duration::from_secs(5), || recovered(&home) > cleaned),
            "{point}: recover said nothing"
        );
        let status = home.status_of("demo");
        assert_eq!(status["version"], "1.0.0", "{point}: {status}");
        assert_eq!(
            status["error"],
            serde_json::Value::Null,
            "{point}: {status}"
        );
        assert!(
            versions(&updates).is_empty(),
            "{point}: {:?}",
            versions(&updates)
        );
        let out = home.run(&["start", "demo"]);
        assert_eq!(out.code(), 0, "{point}: {out:?}");
        assert_eq!(home.status_of("demo")["state"], "running", "{point}");
    }

    // And the update that was cut off three times installs whole now.
    let _launcher = home.launch();
    let out = home.run(&["update", "demo"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(home.status_of("demo")["version"], "1.1.0");
    let out = home.run(&["start", "demo"]);
    assert_eq!(out.code(), 0, "{out:?}");
}

/// How many lines of berth.log say the updates folder was cleaned up.
fn recovered(home: &Home) -> usize {
    std::fs::read_to_string(home.path().join("state/berth/berth.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("updates folder: ") && l.contains("removed"))
        .count()
}
