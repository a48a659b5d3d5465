//! `check`, `hash`, `pin` and `schema`: output and exit codes.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::{TOOL_DIGEST, ZEROS, berth, fixtures, run};

fn manifest(id: &str, path: &str, digest: &str) -> String {
    format!(
        "id: {id}\nname: {id}\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {path}\n    sha256: \"{digest}\"\n"
    )
}

#[test]
fn check_exit_codes() {
    let missing = run(berth().args(["check", "/nonexistent/berth-backends"]));
    assert_eq!(missing.code, Some(2));
    assert_eq!(
        missing.stderr,
        "berth: /nonexistent/berth-backends: no such folder\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let empty = run(berth().arg("check").arg(dir.path()));
    assert_eq!((empty.code, empty.stderr.as_str()), (Some(0), ""));

    // BERTH_BACKENDS is the default folder.
    fs::write(
        dir.path().join("gone.yaml"),
        manifest("gone", "nope", TOOL_DIGEST),
    )
    .unwrap();
    let not_found = run(berth().arg("check").env("BERTH_BACKENDS", dir.path()));
    assert_eq!(not_found.code, Some(1));
    assert_eq!(
        not_found.stderr,
        format!(
            "{0}/gone.yaml: executable.linux.path: not found: tried {0}/nope\n",
            dir.path().display()
        )
    );
    assert!(
        not_found.stdout.contains(" not-found "),
        "{}",
        not_found.stdout
    );

    fs::copy(fixtures().join("valid/bin/tool"), dir.path().join("tool")).unwrap();
    fs::write(
        dir.path().join("gone.yaml"),
        manifest("gone", "tool", ZEROS),
    )
    .unwrap();
    let mismatch = run(berth().arg("check").arg(dir.path()));
    assert_eq!(mismatch.code, Some(1));
    assert_eq!(
        mismatch.stderr,
        format!(
            "{0}/gone.yaml: executable.linux.sha256: mismatch: {0}/tool has {TOOL_DIGEST}, the manifest says the placeholder digest (64 zeros); run `berth pin gone` if this file is trusted\n",
            dir.path().display()
        )
    );
    assert!(
        mismatch.stdout.contains(" integrity-failed "),
        "{}",
        mismatch.stdout
    );

    fs::write(
        dir.path().join("gone.yaml"),
        manifest("gone", "tool", TOOL_DIGEST),
    )
    .unwrap();
    let ok = run(berth().arg("check").arg(dir.path()));
    assert_eq!((ok.code, ok.stderr.as_str()), (Some(0), ""));
}

#[test]
fn hash_prints_the_digest() {
    let out = run(berth().arg("hash").arg(fixtures().join("valid/bin/tool")));
    assert_eq!(
        (out.code, out.stdout),
        (Some(0), format!("{TOOL_DIGEST}\n"))
    );
    let missing = run(berth().args(["hash", "/nonexistent/file"]));
    assert_eq!(missing.code, Some(2));
    assert_eq!(
        missing.stderr,
        "berth: /nonexistent/file: no such file or folder\n"
    );
}

fn schema() -> serde_json::Value {
    let out = run(berth().arg("schema"));
    assert_eq!(out.code, Some(0));
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
fn the_checked_in_schema_is_the_generated_one() {
    let out = run(berth().arg("schema"));
    let file = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/backend.schema.json"),
    )
    .unwrap();
    assert_eq!(
        out.stdout, file,
        "run `berth schema > schemas/backend.schema.json`"
    );
}

fn yaml_as_json(path: &Path) -> serde_json::Value {
    serde_yaml::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn shipped_and_valid_manifests_match_the_schema() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [root.join("backends"), fixtures().join("valid")] {
        let Ok(read) = fs::read_dir(&dir) else {
            continue;
        };
        files.extend(
            read.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml")),
        );
    }
    assert!(files.len() >= 7);
    for file in files {
        let errors: Vec<String> = validator
            .iter_errors(&yaml_as_json(&file))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
    // The schema is not vacuous: what berth rejects for its shape, it rejects too.
    for name in [
        "unknown-field.yaml",
        "misspelled-nested.yaml",
        "bad-platform.yaml",
        "bad-id-uppercase.yaml",
        "digest-uppercase.yaml",
        "digest-too-short.yaml",
        "bad-duration-bare.yaml",
        "bad-duration-unit.yaml",
        "bad-signal.yaml",
        "empty-executable.yaml",
        "two-probes.yaml",
        "no-probe.yaml",
        "empty-path-list.yaml",
        "missing-id.yaml",
        "bad-semver.yaml",
    ] {
        let value = yaml_as_json(&fixtures().join("invalid").join(name));
        assert!(!validator.is_valid(&value), "the schema accepts {name}");
    }
}

/// [`PIN_ME`] with `digest` as this architecture's digest (the other one is zeros).
fn pin_me(digest: &str) -> String {
    let (this, other) = if std::env::consts::ARCH == "aarch64" {
        ("DIGEST_aarch64", "DIGEST_x86_64")
    } else {
        ("DIGEST_x86_64", "DIGEST_aarch64")
    };
    PIN_ME.replace(this, digest).replace(other, ZEROS)
}

/// A backends folder with the fixture tool and one manifest to pin.
fn pin_folder(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(fixtures().join("valid/bin/tool"), dir.path().join("tool")).unwrap();
    let file = dir.path().join("py.yaml");
    fs::write(&file, text).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    (dir, file)
}

const PIN_ME: &str = "# yaml-language-server: $schema=../schemas/backend.schema.json\n\
id: py          # the id\n\
name: Py\n\
version: 1.0.0\n\
executable:\n\
\x20 linux-x86_64:  { path: [missing, tool], sha256: 'DIGEST_x86_64' }   # pinned by berth\n\
\x20 linux-aarch64: { path: [missing, tool], sha256: 'DIGEST_aarch64' }\n\
\x20 linux:\n\
\x20   path: tool\n\
\x20   sha256: \"0000000000000000000000000000000000000000000000000000000000000000\" # generic\n\
\x20 windows: { path: tool.exe, sha256: 0000000000000000000000000000000000000000000000000000000000000000 }\n\
args: [--port, \"5000\"]\n";

#[test]
fn pin_rewrites_only_the_current_platform_digest() {
    let key = format!("linux-{}", std::env::consts::ARCH);
    for old in [
        ZEROS,
        "3f7c",
        "3F7C000000000000000000000000000000000000000000000000000000000000",
    ] {
        let text = pin_me(old);
        let (dir, file) = pin_folder(&text);
        let before_inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&file).unwrap());
        let out = run(berth().args(["pin", "py", "--backends"]).arg(dir.path()));
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(
            out.stdout,
            format!(
                "{0}/py.yaml: py {key} pinned to {TOOL_DIGEST} ({0}/tool)\n",
                dir.path().display()
            )
        );
        let after = fs::read_to_string(&file).unwrap();
        // Exactly the one value differs: every other byte, comment and
        // quote is where it was.
        let line_of = |t: &str| {
            t.lines()
                .position(|l| l.contains(&format!("{key}:")))
                .unwrap()
        };
        let changed: Vec<(&str, &str)> = text
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{after}");
        let expected_line = text
            .lines()
            .nth(line_of(&text))
            .unwrap()
            .replacen(old, TOOL_DIGEST, 1);
        assert_eq!(
            changed[0],
            (
                text.lines().nth(line_of(&text)).unwrap(),
                expected_line.as_str()
            )
        );
        assert_eq!(after.len(), text.len() - old.len() + 64);
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_ne!(
            std::os::unix::fs::MetadataExt::ino(&meta),
            before_inode,
            "not renamed in"
        );
        // Only the manifest and the tool are left: no temporary file.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);

        let again = run(berth().args(["pin", "py", "--backends"]).arg(dir.path()));
        assert_eq!(again.code, Some(0));
        assert!(again.stdout.contains("already pinned"), "{}", again.stdout);
        assert_eq!(fs::read_to_string(&file).unwrap(), after);
        let check = run(berth().arg("check").arg(dir.path()));
        assert_eq!((check.code, check.stderr.as_str()), (Some(0), ""));
    }
}

#[test]
fn pin_refusals() {
    let (dir, file) = pin_folder(&pin_me(ZEROS));
    let unknown = run(berth().args(["pin", "nope", "--backends"]).arg(dir.path()));
    assert_eq!(unknown.code, Some(1));
    assert_eq!(
        unknown.stderr,
        format!(
            "berth: unknown backend id `nope` in {}\n",
            dir.path().display()
        )
    );

    fs::remove_file(dir.path().join("tool")).unwrap();
    let not_found = run(berth().args(["pin", "py", "--backends"]).arg(dir.path()));
    assert_eq!(not_found.code, Some(1));
    let key = format!("linux-{}", std::env::consts::ARCH);
    assert_eq!(
        not_found.stderr,
        format!(
            "berth: {0}/py.yaml: executable.{key}.path: not found: tried {0}/missing, {0}/tool\n",
            dir.path().display()
        )
    );

    // A fault other than the digest is not pinnable.
    fs::write(&file, pin_me(ZEROS).replace("args:", "argz:")).unwrap();
    let invalid = run(berth().args(["pin", "py", "--backends"]).arg(dir.path()));
    assert_eq!(invalid.code, Some(1));
    assert_eq!(
        invalid.stderr,
        format!(
            "berth: unknown backend id `py` in {0}; invalid files: {0}/py.yaml: line 12 column 1: unknown field `argz`, did you mean `args`?\n",
            dir.path().display()
        )
    );

    let missing = run(berth().args(["pin", "py", "--backends", "/nonexistent/dir"]));
    assert_eq!(missing.code, Some(2));
}

/// Issue #23, point 13: `berth logs -n` worked but the README's CLI table
/// did not say so. Every option of every command (but the global ones) is
/// in that command's row.
#[test]
fn the_readme_cli_table_names_every_option() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = readme.split("## CLI\n").nth(1).unwrap();
    let firsts: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split(" | ").next())
        .collect();
    let help = run(berth().arg("--help")).stdout;
    let commands: Vec<&str> = help
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.contains(&"logs"), "{help}");
    for command in commands {
        let row: String = firsts
            .iter()
            .filter(|f| {
                f.contains(&format!("`berth {command}")) || f.contains(&format!("`{command} "))
            })
            .copied()
            .collect();
        assert!(!row.is_empty(), "no row for `berth {command}`");
        let help = run(berth().args([command, "--help"])).stdout;
        let options = help.split("Options:\n").nth(1).unwrap_or_default();
        for line in options.lines() {
            let mut words = line.split_whitespace().map(|w| w.trim_end_matches(','));
            let Some(first) = words.next().filter(|w| w.starts_with('-')) else {
                continue;
            };
            let long = if first.starts_with("--") {
                first
            } else {
                words.next().unwrap_or(first)
            };
            // Global flags, described once below the table.
            if ["--socket", "--app", "--help", "--version"].contains(&long) {
                continue;
            }
            let named = |flag: &str| {
                row.match_indices(flag).any(|(i, _)| {
                    !row[i + flag.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                })
            };
            assert!(
                named(first) || named(long),
                "`berth {command}`: {first} is not in the README's CLI table"
            );
        }
    }
}
