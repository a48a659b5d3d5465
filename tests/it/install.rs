//! Installed like an app: `berth new`, completions and `--version` through
//! the real binary, and the Debian package unpacked (never installed) into
//! a temporary root and run from there (`install/package.rs`).

mod package;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::control::home::{Home, one_line};

/// The schema a manifest's first-line modeline names, resolved like an
/// editor does: relative to the manifest's folder.
pub fn modeline_schema(manifest: &Path) -> PathBuf {
    let text = fs::read_to_string(manifest).unwrap();
    let first = text.lines().next().unwrap();
    let target = first
        .strip_prefix("# yaml-language-server: $schema=")
        .unwrap_or_else(|| panic!("{}: no modeline: {first}", manifest.display()));
    manifest.parent().unwrap().join(target)
}

/// Validates `manifest` against the schema its modeline names.
pub fn assert_matches_its_schema(manifest: &Path) {
    let schema_file = modeline_schema(manifest);
    let schema: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(&schema_file)
            .unwrap_or_else(|e| panic!("{}: {e}", schema_file.display())),
    )
    .unwrap();
    let doc: serde_json::Value =
        serde_yaml::from_str(&fs::read_to_string(manifest).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{}: {errors:?}", manifest.display());
}

fn exe(home: &Home, name: &str) -> PathBuf {
    let path = home.path().join(name);
    crate::util::script(home.path(), name, "exec sleep 600");
    path
}

#[test]
fn new_writes_a_pinned_manifest_that_checks_clean_and_never_overwrites() {
    let home = Home::new();
    let program = exe(&home, "my server.sh");
    let out = home.run(&["new", "web", "--exe"]);
    assert_eq!(out.code(), 2, "--exe needs a value: {out:?}");
    let out = Home::run(
        &home,
        &[
            "new",
            "web",
            "--name",
            "Web: UI",
            "--exe",
            program.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    // Default folder: the user's backends folder, created.
    let file = home.path().join("config/berth/backends/web.yaml");
    assert_eq!(out.stdout().trim(), file.display().to_string());
    assert_matches_its_schema(&file);
    let check = home.run(&[
        "check",
        home.path().join("config/berth/backends").to_str().unwrap(),
    ]);
    assert_eq!(check.code(), 0, "{check:?}");
    assert!(
        check.stdout().contains("web.yaml") && check.stdout().contains(" ok"),
        "{check:?}"
    );

    let before = fs::read(&file).unwrap();
    let again = home.run(&["new", "web", "--exe", program.to_str().unwrap()]);
    assert_eq!(again.code(), 1, "{again:?}");
    assert!(one_line(&again.stderr()), "{again:?}");
    assert!(
        again.stderr().contains("web is already defined in"),
        "{again:?}"
    );
    assert_eq!(fs::read(&file).unwrap(), before, "nothing overwritten");
    let leftovers: Vec<_> = fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn new_refuses_an_existing_file_of_another_id_and_bad_input() {
    let home = Home::new();
    let program = exe(&home, "srv");
    let dir = home.backends();
    fs::write(dir.join("web.yaml"), "not a manifest: [").unwrap();
    let p = program.to_str().unwrap();
    let d = dir.to_str().unwrap();
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["new", "web", "--exe", p, "--dir", d],
            1,
            "web.yaml: already exists (not overwritten)",
        ),
        (&["new", "Web", "--exe", p, "--dir", d], 2, "ID:"),
        (
            &["new", "x", "--exe", "/nonexistent/srv", "--dir", d],
            2,
            "/nonexistent/srv: no such file (--exe)",
        ),
        (
            &["new", "x", "--exe", d, "--dir", d],
            1,
            "is a folder, not a file (--exe)",
        ),
    ];
    for (args, code, text) in cases {
        let out = home.run(args);
        assert_eq!(out.code(), code, "{args:?}: {out:?}");
        assert!(one_line(&out.stderr()), "{args:?}: {out:?}");
        assert!(out.stderr().contains(text), "{args:?}: {out:?}");
    }
    assert_eq!(
        fs::read_to_string(dir.join("web.yaml")).unwrap(),
        "not a manifest: ["
    );
}

#[test]
fn bash_loads_the_completions_and_completes_subcommands() {
    let home = Home::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = home.run(&["completions", shell]);
        assert_eq!(out.code(), 0, "{out:?}");
        assert!(out.stdout().contains("completions"), "{shell}");
    }
    let file = home.path().join("berth.bash");
    fs::write(&file, home.run(&["completions", "bash"]).stdout()).unwrap();
    // What bash-completion does on Tab after `berth st`.
    let script = format!(
        "source '{}'; COMP_WORDS=(berth st); COMP_CWORD=1; COMP_LINE='berth st'; COMP_POINT=8; \
         _berth berth st berth; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    let mut words: Vec<&str> = words.lines().collect();
    words.sort();
    assert_eq!(words, ["start", "status", "stop"], "{out:?}");
    let bad = home.run(&["completions", "tcsh"]);
    assert_eq!(bad.code(), 2, "{bad:?}");
}

#[test]
fn version_names_the_crate_version() {
    let out = Home::new().run(&["--version"]);
    assert_eq!(out.code(), 0);
    assert_eq!(
        out.stdout(),
        format!("berth {}\n", env!("CARGO_PKG_VERSION"))
    );
}

// Issue #23, point 12: a script without its exec bit or its `#!` line was
// registered and checked "ok", and failed only at the first start with a
// bare errno. `new` and `check` say so beforehand.
#[test]
fn new_and_check_warn_about_a_script_that_cannot_start() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let plain = home.path().join("plain.sh");
    fs::write(&plain, "#!/bin/sh\nexec sleep 600\n").unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    let bare = home.path().join("bare.sh");
    fs::write(&bare, "exec sleep 600\n").unwrap();
    fs::set_permissions(&bare, fs::Permissions::from_mode(0o755)).unwrap();
    let dir = home.path().join("warned");
    let dir = dir.to_str().unwrap();
    for (id, exe, want) in [
        (
            "plain",
            &plain,
            format!("not executable: chmod +x {}", plain.display()),
        ),
        (
            "bare",
            &bare,
            "no #! line: add one or name the interpreter as the executable".to_owned(),
        ),
    ] {
        let out = home.run(&["new", id, "--exe", exe.to_str().unwrap(), "--dir", dir]);
        assert_eq!(out.code(), 0, "{out:?}");
        assert!(
            one_line(&out.stderr()) && out.stderr().contains(&want),
            "{id}: {out:?}"
        );
        let check = home.run(&["check", dir]);
        let row = check
            .stdout()
            .lines()
            .find(|l| l.starts_with(&format!("{id}.yaml")))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{check:?}"));
        assert!(row.contains(&want), "{id}: {row}");
    }
}
