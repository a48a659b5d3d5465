//! The updates folder read with the backends folders, through the real
//! binary (issue #27, point 5; DESIGN.md "Updates"): an installed version,
//! signed by a trusted key, wins over the shipped manifest and runs from its
//! own folder; an unsigned one is refused with its line; it counts only
//! while the shipped manifest has its `update` section. The versions are
//! installed with the updates folder's own API (what `berth update` uses),
//! from script backends: no feed, no PyInstaller build.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth::manifest::BackendId;
use berth::update::install::Updates;

use crate::control::home::{Home, wait_until};

const UPDATE: &str = "update:\n  feed: http://127.0.0.1:9/feed/\n";

/// The updates folder of the test home's default instance.
fn updates(home: &Home) -> Updates {
    Updates::at(home.path().join("data/berth/updates"))
}

fn link(home: &Home) -> PathBuf {
    updates(home).link(&id())
}

fn id() -> BackendId {
    BackendId::new("demo").unwrap()
}

/// A key made by `berth keygen`, trusted in the home; returns its secret half.
fn trusted_key(home: &Home) -> PathBuf {
    let keys = home.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let out = home.run(&["keygen", "acme", "--dir", keys.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    let trusted = home.path().join("config/berth/trusted");
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::copy(keys.join("acme.pub"), trusted.join("acme.pub")).unwrap();
    keys.join("acme.key")
}

/// Installs demo `version`: a script that prints its working folder, beside a
/// manifest that names it by a relative path; signed by `key` when given.
fn install(home: &Home, version: &str, key: Option<&Path>) {
    let staging = updates(home).stage(&id()).unwrap();
    let dir = staging.path();
    let exe = dir.join("run.sh");
    std::fs::write(
        &exe,
        "#!/bin/sh\necho \"installed in $(pwd)\"\nexec sleep 30\n",
    )
    .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sha = berth::integrity::hash_file(&exe).unwrap();
    let manifest = dir.join("demo.yaml");
    std::fs::write(
        &manifest,
        format!(
            "id: demo\nname: Demo\nversion: {version}\nexecutable:\n  linux:\n    path: run.sh\n    sha256: {sha}\nstop: {{ timeout: 2s }}\n"
        ),
    )
    .unwrap();
    if let Some(key) = key {
        let out = home.run(&[
            "sign",
            manifest.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        assert_eq!(out.code(), 0, "{out:?}");
    }
    updates(home)
        .publish(staging, &version.parse().unwrap())
        .unwrap();
}

/// The status object of `file`.
fn status_of_file(home: &Home, file: &Path) -> serde_json::Value {
    let file = file.to_str().unwrap();
    home.status_json()
        .into_iter()
        .find(|b| b["file"] == file)
        .unwrap_or_else(|| panic!("{file} not listed"))
}

#[test]
fn an_installed_update_wins_runs_from_its_own_folder_and_counts_only_beside_an_update_section() {
    let home = Home::new();
    home.backend("demo", "echo shipped; exec sleep 30", UPDATE);
    let key = trusted_key(&home);
    install(&home, "1.1.0", Some(&key));
    let version_dir =
        std::fs::canonicalize(home.path().join("data/berth/updates/demo/1.1.0")).unwrap();

    // `berth check` reads the updates folder with the backends folder.
    let backends = home.backends();
    let out = home.run(&["check", backends.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    let row = out
        .stdout()
        .lines()
        .find(|l| l.starts_with(link(&home).to_str().unwrap()))
        .map(str::to_owned);
    let row = row.unwrap_or_else(|| panic!("no row for the installed update: {out:?}"));
    assert!(
        row.contains("1.1.0") && row.contains("ok") && row.contains("signed by acme"),
        "{row}"
    );
    assert!(out.stdout().contains("superseded"), "{out:?}");
    // `pin` never edits a signed, installed version.
    let out = home.run(&["pin", "demo", "--backends", backends.to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(
        out.stderr().trim_end(),
        format!(
            "berth: {}: demo 1.1.0 in force is an installed update, verified by its signature: pin edits only manifests of the backends folders",
            link(&home).display()
        )
    );

    let _launcher = home.launch();
    let demo = status_of_file(&home, &link(&home));
    assert_eq!(demo["version"], "1.1.0", "{demo}");
    assert_eq!(demo["signed_by"], "acme", "{demo}");
    assert_eq!(
        demo["path"],
        version_dir.join("run.sh").to_str().unwrap(),
        "{demo}"
    );
    assert!(demo["update"].is_object(), "{demo}");
    let shipped = home.backends().join("demo.yaml");
    assert_eq!(status_of_file(&home, &shipped)["state"], "superseded");

    let out = home.run(&["start", "demo"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let log = home.log("demo");
    let expected = format!("installed in {}", version_dir.display());
    assert!(
        wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains(&expected))
        }),
        "{:?}",
        std::fs::read_to_string(&log)
    );

    // Another version installed while it runs: the link moved over is one
    // change of demo, applied as an edit (restart to apply).
    install(&home, "1.2.0", Some(&key));
    let mut moved = serde_json::Value::Null;
    let seen = wait_until(Duration::from_secs(5), || {
        moved = status_of_file(&home, &link(&home));
        moved["version"] == "1.2.0"
    });
    assert!(seen, "{moved}");
    assert_eq!(moved["state"], "running", "{moved}");
    assert_eq!(moved["pending_restart"], true, "{moved}");

    // The shipped manifest loses its `update` section: the installed version
    // no longer counts, and the shipped definition is in force again.
    std::fs::write(
        &shipped,
        std::fs::read_to_string(&shipped)
            .unwrap()
            .replace(UPDATE, ""),
    )
    .unwrap();
    let mut installed = serde_json::Value::Null;
    let back = wait_until(Duration::from_secs(5), || {
        installed = status_of_file(&home, &link(&home));
        installed["state"] == "incompatible"
    });
    assert!(back, "{installed}");
    let reason = format!(
        "{}: not in force: no manifest of demo with an update section in the backends folders ({} has none)",
        link(&home).display(),
        shipped.display()
    );
    assert_eq!(installed["error"], reason.as_str());
    let shipped_now = status_of_file(&home, &shipped);
    assert_eq!(shipped_now["version"], "1.0.0", "{shipped_now}");
    assert!(shipped_now["update"].is_null(), "{shipped_now}");
    assert_ne!(shipped_now["state"], "superseded", "{shipped_now}");
}

#[test]
fn an_unsigned_installed_update_is_refused_with_its_line_and_a_crash_s_leftovers_go_at_start() {
    let home = Home::new();
    home.backend("demo", "echo shipped; exec sleep 30", UPDATE);
    trusted_key(&home);
    install(&home, "1.1.0", None);
    // What a kill during a download leaves behind.
    let leftover = home.path().join("data/berth/updates/demo/.staging.1.0");
    std::fs::create_dir_all(&leftover).unwrap();
    let refused = format!(
        "{}: not signed (demo.yaml.minisig is missing) and an installed update must be signed by a trusted key",
        std::fs::canonicalize(home.path().join("data/berth/updates/demo/1.1.0/demo.yaml"))
            .unwrap()
            .display()
    );

    let backends = home.backends();
    let out = home.run(&["check", backends.to_str().unwrap()]);
    let row = out
        .stdout()
        .lines()
        .find(|l| l.starts_with(link(&home).to_str().unwrap()))
        .map(str::to_owned);
    assert!(
        row.as_deref().is_some_and(|r| r.contains("untrusted")),
        "{out:?}"
    );

    let _launcher = home.launch();
    let installed = status_of_file(&home, &link(&home));
    assert_eq!(installed["state"], "untrusted", "{installed}");
    assert_eq!(installed["error"], refused.as_str());
    let shipped = status_of_file(&home, &home.backends().join("demo.yaml"));
    assert_eq!(shipped["version"], "1.0.0", "{shipped}");
    assert_eq!(shipped["state"], "stopped", "{shipped}");

    // `recover` ran once at start, before the first read, and said so.
    assert!(!leftover.exists());
    let log = std::fs::read_to_string(home.path().join("state/berth/berth.log")).unwrap();
    assert!(
        log.contains(&format!(
            "{}: removed an unfinished update",
            leftover.display()
        )),
        "{log}"
    );
}

#[test]
fn an_absent_updates_folder_is_no_warning_at_start_and_is_read_once_it_appears() {
    let home = Home::new();
    home.backend("demo", "exec sleep 30", UPDATE);
    let key = trusted_key(&home);
    let launcher = home.launch();
    assert_eq!(home.status_of("demo")["version"], "1.0.0");
    // Absent before this first start: nothing to warn about.
    let err = launcher.stderr();
    assert!(err.contains("berth launcher ready"), "{err}");
    assert!(!err.contains("WARN"), "{err}");
    // Made at start (0700), so it is watched from the first moment.
    let dir = updates(&home).dir().to_path_buf();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    // Gone while berth runs, then made again by an install.
    std::fs::remove_dir(&dir).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    install(&home, "1.1.0", Some(&key));
    let mut demo = serde_json::Value::Null;
    let seen = wait_until(Duration::from_secs(5), || {
        demo = home.status_of("demo");
        demo["version"] == "1.1.0"
    });
    assert!(seen, "{demo}");
    // (notify itself may say at WARN that the gone folder's watch was gone.)
    let err = launcher.stderr();
    assert!(!err.contains("missing"), "{err}");
}
