//! The Debian package of scripts/package.sh, unpacked with `dpkg -x` into a
//! temporary root (never installed into the system) and run from there, as
//! the reference tests "the packaged app".
//!
//! Building the package takes minutes (a release build and the PyInstaller
//! build), so these tests use the `.deb` that scripts/test.sh builds first.
//! scripts/test.sh sets `BERTH_REQUIRE_DEB=1`, which turns a missing package
//! into a failure; a plain `cargo test` without a package skips them and says so.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::control::home::{Home, wait_until};

fn deb() -> Option<PathBuf> {
    let name = format!("berth_{}_amd64.deb", env!("CARGO_PKG_VERSION"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/debian")
        .join(name);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("BERTH_REQUIRE_DEB").is_none(),
        "{} is missing: run scripts/package.sh",
        path.display()
    );
    eprintln!("skipped: {} not built (scripts/package.sh)", path.display());
    None
}

/// The package's files under a fresh temporary root.
fn unpacked(deb: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(root.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Traversable by the launcher's own checks (the home is 0755 too).
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    root
}

#[test]
fn the_package_passes_lintian_and_desktop_file_validate() {
    let Some(deb) = deb() else { return };
    // lintian leaves /tmp/mldbm-elf-* files behind unless TMPDIR is its own.
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("lintian")
        .arg(&deb)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{text}");
    assert!(out.status.success(), "lintian failed: {out:?}");

    let root = unpacked(&deb);
    let entry = root.path().join("usr/share/applications/berth.desktop");
    let out = Command::new("desktop-file-validate")
        .arg(&entry)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    for size in [16, 32, 48, 64, 128, 256] {
        let icon = root.path().join(format!(
            "usr/share/icons/hicolor/{size}x{size}/apps/berth.png"
        ));
        let bytes = fs::read(&icon).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{}", icon.display());
        // IHDR's width, big-endian, right after the 16-byte header.
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), size);
    }
    for file in [
        "usr/share/man/man1/berth.1.gz",
        "usr/share/man/man1/berth-run.1.gz",
        "usr/share/bash-completion/completions/berth",
        "usr/share/zsh/vendor-completions/_berth",
        "usr/share/fish/vendor_completions.d/berth.fish",
        "usr/share/berth/backend.schema.json",
        "usr/share/berth/protocol.schema.json",
        "usr/share/berth/status.schema.json",
    ] {
        assert!(root.path().join(file).is_file(), "{file} missing");
    }
    let control = Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .arg("Depends")
        .output()
        .unwrap();
    let depends = String::from_utf8_lossy(&control.stdout);
    for dep in ["libgtk-3-0", "libayatana-appindicator3-1", "xdg-utils"] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }
}

// Issue #23, point 11: on a machine with berth installed, cargo-deb followed
// the absolute links of the stage (/usr/lib/berth/berth exists there) and
// shipped copies of the installed binaries, mode 0777, as /usr/bin/berth*.
#[test]
fn the_commands_are_relative_links_never_copies_of_an_installed_berth() {
    let Some(deb) = deb() else { return };
    let root = unpacked(&deb);
    for name in ["berth", "berth-tray"] {
        let link = root.path().join("usr/bin").join(name);
        let meta = fs::symlink_metadata(&link).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{} is not a link",
            link.display()
        );
        assert_eq!(
            fs::read_link(&link).unwrap(),
            Path::new("../lib/berth").join(name),
            "{}",
            link.display()
        );
        assert!(root.path().join("usr/lib/berth").join(name).is_file());
    }
}

#[test]
fn the_unpacked_package_verifies_and_runs_its_python_backend() {
    let Some(deb) = deb() else { return };
    let root = unpacked(&deb);
    let lib = root.path().join("usr/lib/berth");
    let manifest = lib.join("backends/python.yaml");
    // The installed modeline resolves to the installed schema.
    super::assert_matches_its_schema(&manifest);
    assert_eq!(
        fs::canonicalize(super::modeline_schema(&manifest)).unwrap(),
        root.path().join("usr/share/berth/backend.schema.json")
    );
    let home = Home::new();
    let backend = lib.join("resources/python/backend");
    // Through /usr/bin's symlink and through the real file alike.
    for program in [root.path().join("usr/bin/berth"), lib.join("berth")] {
        let out = home
            .berth_at(&program)
            .arg("check")
            .arg(lib.join("backends"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {out:?}", program.display());
        let row = text
            .lines()
            .find(|l| l.starts_with("python.yaml"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            row.contains(" ok ") && row.contains(&backend.display().to_string()),
            "{row}"
        );
    }

    let launcher = home
        .berth_at(&root.path().join("usr/bin/berth"))
        .arg("--socket")
        .arg(home.socket())
        .args(["run", "--headless", "--backends"])
        .arg(lib.join("backends"))
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(home.path().join("launcher.err")).unwrap())
        .spawn()
        .unwrap();
    let mut launcher = crate::control::home::Launcher {
        child: launcher,
        err: home.path().join("launcher.err"),
    };
    assert!(
        wait_until(Duration::from_secs(15), || home.socket().exists()),
        "{}",
        launcher.stderr()
    );
    let out = home.run(&["start", "python"]);
    assert_eq!(out.code(), 0, "{out:?}\n{}", launcher.stderr());
    let status = home.status_of("python");
    assert_eq!(status["state"], "running");
    assert_eq!(status["path"], backend.display().to_string());
    let pid = status["pid"].as_u64().unwrap();
    let out = home.run(&["stop", "python"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!crate::control::home::alive(pid));
    launcher.signal(Signal::SIGTERM);
    assert_eq!(
        launcher.wait(Duration::from_secs(15)),
        Some(0),
        "{}",
        launcher.stderr()
    );
}
