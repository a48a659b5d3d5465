use std::os::unix::fs::{PermissionsExt, symlink};

use super::*;

fn write(dir: &Path, rel: &str, content: &[u8], mode: u32) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The tree of [`hand_computed_digest`]: files in nested folders, a mode
/// with the set-uid bit, a link, an empty folder, and names whose byte order
/// differs from a folder-by-folder walk (`bin-x` < `bin/run`, since '-' <
/// '/').
fn sample() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "a.txt", b"hello\n", 0o644);
    write(d, "a-b", b"", 0o600);
    write(d, "bin/run", b"#!/bin/sh\n", 0o755);
    write(d, "bin-x", b"x", 0o4755);
    write(d, "lib/deep/z", b"z", 0o400);
    symlink("a.txt", d.join("link")).unwrap();
    std::fs::create_dir(d.join("empty")).unwrap();
    tmp
}

/// The listing and digest below were computed by hand (Python's hashlib
/// over the lines DESIGN.md defines), not by this code.
#[test]
fn hand_computed_digest() {
    let tmp = sample();
    let lines: Vec<String> = listing(tmp.path())
        .unwrap()
        .into_iter()
        .map(|l| String::from_utf8(l).unwrap())
        .collect();
    assert_eq!(
        lines.concat(),
        "f 600 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 a-b\n\
         f 644 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 a.txt\n\
         f 4755 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 bin-x\n\
         f 755 a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf bin/run\n\
         f 400 594e519ae499312b29433b7dd8a97ff068defcba9755b6d5d00e84c524d67b06 lib/deep/z\n\
         l a.txt link\n"
    );
    assert_eq!(
        digest(tmp.path()).unwrap().to_string(),
        "9cd7448b5f3283d03a35d1b59e08194e8ad4d4f823ef987e1414d55f6b85c8ee"
    );
}

#[test]
fn an_empty_folder_is_the_digest_of_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    assert_eq!(
        digest(tmp.path()).unwrap().to_string(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn every_kind_of_change_moves_the_digest() {
    let tmp = sample();
    let d = tmp.path();
    let before = digest(d).unwrap();
    type Step = Box<dyn Fn(&Path)>;
    let changes: Vec<(&str, Step, Step)> = vec![
        (
            "content",
            Box::new(|d| std::fs::write(d.join("a.txt"), b"hellO\n").unwrap()),
            Box::new(|d| std::fs::write(d.join("a.txt"), b"hello\n").unwrap()),
        ),
        (
            "added",
            Box::new(|d| std::fs::write(d.join("empty/new"), b"").unwrap()),
            Box::new(|d| std::fs::remove_file(d.join("empty/new")).unwrap()),
        ),
        (
            "mode",
            Box::new(|d| {
                std::fs::set_permissions(d.join("bin/run"), std::fs::Permissions::from_mode(0o700))
                    .unwrap()
            }),
            Box::new(|d| {
                std::fs::set_permissions(d.join("bin/run"), std::fs::Permissions::from_mode(0o755))
                    .unwrap()
            }),
        ),
        (
            "link target",
            Box::new(|d| {
                std::fs::remove_file(d.join("link")).unwrap();
                symlink("a-b", d.join("link")).unwrap();
            }),
            Box::new(|d| {
                std::fs::remove_file(d.join("link")).unwrap();
                symlink("a.txt", d.join("link")).unwrap();
            }),
        ),
        (
            "moved",
            Box::new(|d| std::fs::rename(d.join("lib/deep/z"), d.join("lib/z")).unwrap()),
            Box::new(|d| std::fs::rename(d.join("lib/z"), d.join("lib/deep/z")).unwrap()),
        ),
    ];
    for (what, change, undo) in changes {
        change(d);
        assert_ne!(digest(d).unwrap(), before, "{what}");
        undo(d);
        assert_eq!(digest(d).unwrap(), before, "{what} undone");
    }
    std::fs::remove_file(d.join("a-b")).unwrap();
    assert_ne!(digest(d).unwrap(), before, "removed");
}

#[test]
fn what_cannot_be_pinned_is_an_error_naming_it() {
    let tmp = sample();
    let d = tmp.path();
    nix::unistd::mkfifo(
        &d.join("lib/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let e = digest(d).unwrap_err();
    assert!(matches!(e, TreeError::Unsupported { .. }), "{e}");
    assert!(
        e.to_string().contains("lib/fifo") && e.to_string().contains("FIFO"),
        "{e}"
    );
    std::fs::remove_file(d.join("lib/fifo")).unwrap();

    std::fs::write(d.join("bad\nname"), b"").unwrap();
    assert!(matches!(digest(d).unwrap_err(), TreeError::Newline { .. }));
    std::fs::remove_file(d.join("bad\nname")).unwrap();
    symlink("a\nb", d.join("badlink")).unwrap();
    assert!(matches!(digest(d).unwrap_err(), TreeError::Newline { .. }));
    std::fs::remove_file(d.join("badlink")).unwrap();
    digest(d).unwrap();

    assert!(matches!(
        digest(&d.join("missing")).unwrap_err(),
        TreeError::Missing { .. }
    ));
    assert!(matches!(
        digest(&d.join("a.txt")).unwrap_err(),
        TreeError::NotAFolder { .. }
    ));
    symlink(d.join("lib"), d.join("lib-link")).unwrap();
    assert!(matches!(
        digest(&d.join("lib-link")).unwrap_err(),
        TreeError::Symlink { .. }
    ));
}

#[test]
fn check_names_the_folder_on_a_mismatch() {
    let tmp = sample();
    let exe = tmp.path().join("bin/run");
    let files = Files {
        dir: PathBuf::from("../lib"),
        sha256: Digest([0; 32]),
    };
    // `..` never reaches here (the manifest refuses it); the folder is
    // still computed lexically beside the executable.
    let e = check(&exe, &files).unwrap_err();
    assert!(e.to_string().contains("lib: tree digest mismatch"), "{e}");
    let good = Files {
        dir: PathBuf::from("."),
        sha256: digest(&tmp.path().join("bin")).unwrap(),
    };
    check(&exe, &good).unwrap();
}
