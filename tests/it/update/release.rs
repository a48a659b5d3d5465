//! `berth release`: the release folder is whole and signed, a second run
//! adds to its index, and a release that does not match its pins is refused
//! with one line and writes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::control::home::{Home, Out, one_line};

/// A onedir-like backend in its own folder: `app/run.sh` and `app/lib/`
/// (a file with its own mode and a symbolic link), pinned at `version`.
pub fn publisher_backend(home: &Home, version: &str) -> PathBuf {
    let src = home.path().join("src");
    let lib = src.join("app/lib");
    std::fs::create_dir_all(&lib).unwrap();
    let exe = src.join("app/run.sh");
    std::fs::write(&exe, format!("#!/bin/sh\necho {version}\nexec sleep 30\n")).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(lib.join("data.txt"), format!("library {version}\n")).unwrap();
    std::fs::set_permissions(lib.join("data.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let _ = std::fs::remove_file(lib.join("link"));
    std::os::unix::fs::symlink("data.txt", lib.join("link")).unwrap();
    let sha = berth::integrity::hash_file(&exe).unwrap();
    let tree = berth::tree::digest(&lib).unwrap();
    let manifest = src.join("demo.yaml");
    std::fs::write(
        &manifest,
        format!(
            "# the publisher's own comment\nid: demo\nname: Demo\nversion: {version}\nworkdir: app\nexecutable:\n  linux:\n    path: [missing/run.sh, app/run.sh]\n    sha256: {sha}\n    files: {{ dir: lib, sha256: {tree} }}\n  windows-x86_64:\n    path: app/run.exe\n    sha256: {sha}\nstop: {{ timeout: 2s }}\n"
        ),
    )
    .unwrap();
    manifest
}

/// `berth keygen publisher` in the home; returns the secret key.
pub fn publisher_key(home: &Home) -> PathBuf {
    let keys = home.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let out = home.run(&["keygen", "publisher", "--dir", keys.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    keys.join("publisher.key")
}

/// `berth release MANIFEST --key KEY --out DIR`.
pub fn release(home: &Home, manifest: &Path, key: &Path, out: &Path) -> Out {
    home.run(&[
        "release",
        manifest.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

fn index(feed: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(feed.join("index.json")).unwrap()).unwrap()
}

fn sha(path: &Path) -> String {
    berth::integrity::hash_file(path).unwrap().to_string()
}

#[test]
fn a_release_is_signed_whole_and_runs_from_its_own_folder() {
    let home = Home::new();
    let manifest = publisher_backend(&home, "1.0.0");
    let key = publisher_key(&home);
    let feed = home.path().join("feed");
    let out = release(&home, &manifest, &key, &feed);
    assert_eq!(out.code(), 0, "{out:?}");

    let index = index(&feed);
    assert_eq!(index["format"], 1);
    let releases = index["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 1);
    let r = &releases[0];
    let dir = format!("demo/1.0.0/{}", platform());
    assert_eq!(
        (&r["id"], &r["version"], &r["platform"]),
        (
            &"demo".into(),
            &"1.0.0".into(),
            &serde_json::Value::from(platform())
        )
    );
    for (field, name) in [
        ("manifest", "demo.yaml"),
        ("executable", "run.sh"),
        ("files", "files.tar"),
    ] {
        let path = feed.join(&dir).join(name);
        assert_eq!(r[field]["path"], format!("{dir}/{name}"), "{field}");
        assert_eq!(
            r[field]["size"],
            std::fs::metadata(&path).unwrap().len(),
            "{field}"
        );
        assert_eq!(r[field]["sha256"], sha(&path), "{field}");
    }

    // The release's manifest names only its own files: no development path,
    // no workdir, only this platform.
    let text = std::fs::read_to_string(feed.join(&dir).join("demo.yaml")).unwrap();
    assert!(!text.contains("missing/"), "{text}");
    assert!(!text.contains("workdir"), "{text}");
    assert!(!text.contains("windows"), "{text}");

    // Trusting the publisher's key, the release (its files folder unpacked)
    // verifies as a backends folder with signatures required: the manifest's
    // signature, the executable's digest and the tree digest of `lib`, modes
    // and link included.
    let trusted = home.path().join("config/berth/trusted");
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::copy(key.with_extension("pub"), trusted.join("publisher.pub")).unwrap();
    let lib = feed.join(&dir).join("lib");
    std::fs::create_dir(&lib).unwrap();
    let tar = Command::new("tar")
        .arg("-xpf")
        .arg(feed.join(&dir).join("files.tar"))
        .arg("-C")
        .arg(&lib)
        .status()
        .unwrap();
    assert!(tar.success());
    let check = home.run(&[
        "check",
        "--require-signatures",
        feed.join(&dir).to_str().unwrap(),
    ]);
    assert_eq!(check.code(), 0, "{check:?}");
    assert!(check.stdout().contains("publisher"), "{check:?}");

    // The index's signature is the publisher's, over the index's bytes:
    // minisign itself says so.
    let verify = Command::new("minisign")
        .args(["-V", "-q", "-p"])
        .arg(key.with_extension("pub"))
        .arg("-m")
        .arg(feed.join("index.json"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

#[test]
fn releasing_again_adds_to_the_index_and_replaces_the_same_release() {
    let home = Home::new();
    let key = publisher_key(&home);
    let feed = home.path().join("feed");
    for version in ["1.0.0", "1.1.0", "1.1.0"] {
        let manifest = publisher_backend(&home, version);
        let out = release(&home, &manifest, &key, &feed);
        assert_eq!(out.code(), 0, "{out:?}");
    }
    let index = index(&feed);
    let versions: Vec<&str> = index["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.0.0", "1.1.0"]);
    let exe = feed.join(format!("demo/1.0.0/{}/run.sh", platform()));
    assert!(std::fs::read_to_string(exe).unwrap().contains("echo 1.0.0"));
    // No temporary folder is left in the feed.
    let hidden: Vec<_> = std::fs::read_dir(&feed)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn a_stale_pin_is_refused_and_nothing_is_written() {
    let home = Home::new();
    let key = publisher_key(&home);
    let manifest = publisher_backend(&home, "1.0.0");
    let feed = home.path().join("feed");
    std::fs::write(
        home.path().join("src/app/run.sh"),
        "#!/bin/sh\necho rebuilt\n",
    )
    .unwrap();
    let out = release(&home, &manifest, &key, &feed);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(
        out.stderr()
            .contains("run `berth pin demo` first; not released"),
        "{out:?}"
    );
    assert!(!feed.join("index.json").exists());

    // A files folder changed after pinning: the same.
    let manifest = publisher_backend(&home, "1.0.0");
    std::fs::write(home.path().join("src/app/lib/extra"), "x").unwrap();
    let out = release(&home, &manifest, &key, &feed);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("tree digest mismatch"), "{out:?}");
    assert!(!feed.join("index.json").exists());
}

#[test]
fn a_folder_with_a_foreign_index_is_refused() {
    let home = Home::new();
    let key = publisher_key(&home);
    let manifest = publisher_backend(&home, "1.0.0");
    let feed = home.path().join("feed");
    std::fs::create_dir_all(&feed).unwrap();
    std::fs::write(feed.join("index.json"), "<html>not found</html>").unwrap();
    let out = release(&home, &manifest, &key, &feed);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("not a release index"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(feed.join("index.json")).unwrap(),
        "<html>not found</html>"
    );
    assert!(!feed.join("demo").exists());
}
