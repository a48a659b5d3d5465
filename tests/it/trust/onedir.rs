//! A real PyInstaller onedir build (`python/build.sh --onedir`) pinned by
//! `berth pin` (executable and `_internal` tree), run verified by the
//! launcher, and every kind of change to its folder refused naming it.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ok;
use crate::control::home::{Home, one_line};

/// The onedir build's folder; absent, the test fails and says how to build
/// it (`BERTH_SKIP_PYINSTALLER=1` skips, as for the onefile build).
fn onedir_build() -> Option<PathBuf> {
    let exe = crate::util::pyinstaller_build(
        "python/dist/onedir/backend/backend",
        "python/build.sh --onedir",
    )?;
    Some(exe.parent().unwrap().to_owned())
}

fn expect_mismatch(home: &Home, what: &str) {
    let out = home.run(&["check", home.backends().to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{what}: {out:?}");
    assert!(one_line(&out.stderr()), "{what}: {out:?}");
    assert!(
        out.stderr()
            .contains("backend/_internal: tree digest mismatch"),
        "{what}: {out:?}"
    );
}

#[test]
fn a_onedir_build_runs_verified_and_any_change_to_its_folder_is_refused() {
    let Some(build) = onedir_build() else {
        return;
    };
    let home = Home::new();
    let app = home.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(&build)
        .arg(&app)
        .status()
        .unwrap();
    assert!(status.success());
    let internal = app.join("backend/_internal");
    // A link inside the tree, so a changed link target can be tried.
    symlink("base_library.zip", internal.join("library-link")).unwrap();
    let zeros = "0".repeat(64);
    std::fs::write(
        home.backends().join("onedir.yaml"),
        format!(
            "id: onedir\nname: Onedir\nversion: 1.0.0\nexecutable:\n  linux:\n    path: ../app/backend/backend\n    sha256: {zeros}\n    files: {{ dir: _internal, sha256: {zeros} }}\nargs: [\"--port\", \"0\"]\nready: {{ stdout_json: {{ status: ready }}, timeout: 60s }}\n"
        ),
    )
    .unwrap();
    let out = home.run(&[
        "pin",
        "onedir",
        "--backends",
        home.backends().to_str().unwrap(),
    ]);
    ok(&out);
    assert!(out.stdout().contains("files pinned to"), "{out:?}");
    let hash = home.run(&["hash", internal.to_str().unwrap()]);
    ok(&hash);
    let manifest = std::fs::read_to_string(home.backends().join("onedir.yaml")).unwrap();
    assert!(
        manifest.contains(&format!("sha256: {} }}", hash.stdout().trim())),
        "{manifest}"
    );
    ok(&home.run(&["check", home.backends().to_str().unwrap()]));

    let _launcher = home.launch();
    ok(&home.run(&["start", "onedir"]));
    assert_eq!(home.status_of("onedir")["state"], "running");
    ok(&home.run(&["stop", "onedir"]));

    // Each change, then its undo.
    let zip = internal.join("base_library.zip");
    let bytes = std::fs::read(&zip).unwrap();
    let mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let original_mode = std::fs::metadata(&zip).unwrap().permissions().mode() & 0o7777;
    type Step<'a> = Box<dyn Fn() + 'a>;
    let steps: Vec<(&str, Step, Step)> = vec![
        (
            "changed file",
            Box::new(|| std::fs::write(&zip, b"tampered").unwrap()),
            Box::new(|| std::fs::write(&zip, &bytes).unwrap()),
        ),
        (
            "added file",
            Box::new(|| std::fs::write(internal.join("extra.py"), b"x").unwrap()),
            Box::new(|| std::fs::remove_file(internal.join("extra.py")).unwrap()),
        ),
        (
            "removed file",
            Box::new(|| std::fs::rename(&zip, app.join("aside")).unwrap()),
            Box::new(|| std::fs::rename(app.join("aside"), &zip).unwrap()),
        ),
        (
            "changed mode",
            Box::new(|| mode(&zip, 0o777)),
            Box::new(|| mode(&zip, original_mode)),
        ),
        (
            "changed link target",
            Box::new(|| {
                std::fs::remove_file(internal.join("library-link")).unwrap();
                symlink("python3.11", internal.join("library-link")).unwrap();
            }),
            Box::new(|| {
                std::fs::remove_file(internal.join("library-link")).unwrap();
                symlink("base_library.zip", internal.join("library-link")).unwrap();
            }),
        ),
    ];
    for (what, change, undo) in &steps {
        change();
        expect_mismatch(&home, what);
        undo();
        ok(&home.run(&["check", home.backends().to_str().unwrap()]));
    }

    // Through the launcher: a changed file is integrity-failed, never run.
    (steps[0].1)();
    let out = home.run(&["start", "onedir"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr().contains("_internal: tree digest mismatch"),
        "{out:?}"
    );
    let s = home.status_of("onedir");
    assert_eq!(s["state"], "integrity-failed", "{s}");
    assert!(s["pid"].is_null(), "{s}");
    (steps[0].2)();
    ok(&home.run(&["start", "onedir"]));
}
