//! Errors that name the right thing (issue #12): a missing workdir is not a
//! missing executable, and a folder given as the executable says so.

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
