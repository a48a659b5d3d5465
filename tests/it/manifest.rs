//! Manifests through the real binary: every fixture's error exactly as the
//! user sees it, `check` / `hash` / `pin` / `schema` and their exit codes.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

const TOOL_DIGEST: &str = "469488650bd443000c01321d34476ef01d8dce0d04a331742b13e9aedfde2c7d";
const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The binary, isolated from the user's environment, with a time limit far
/// above what any of these commands needs.
fn berth() -> Command {
    let mut cmd = Command::cargo_bin("berth").unwrap();
    cmd.env_remove("BERTH_BACKENDS")
        .env_remove("BERTH_RESOURCES")
        .env_remove("RUST_BACKTRACE")
        .timeout(Duration::from_secs(30));
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Each invalid fixture and the text after `<path>: ` on its one stderr line.
const INVALID: &[(&str, &str)] = &[
    (
        "alias-bomb.yaml",
        "too many alias expansions (YAML repetition limit exceeded)",
    ),
    (
        "bad-duration-bare.yaml",
        "line 9 column 12: stop.timeout: invalid duration \"5\": a bare number is not a duration; add a unit (like 5s)",
    ),
    (
        "bad-duration-ready.yaml",
        "line 8 column 42: ready.timeout: invalid duration \"1.5s\": expected an integer and a unit, ms, s, m or h (like 5s or 500ms)",
    ),
    (
        "bad-duration-unit.yaml",
        "line 8 column 21: restart.backoff: invalid duration \"5sec\": expected an integer and a unit, ms, s, m or h (like 5s or 500ms)",
    ),
    (
        "bad-http.yaml",
        "line 8 column 16: ready.http: invalid URL \"https://127.0.0.1/\": expected an http:// URL, like http://127.0.0.1:5000/",
    ),
    (
        "bad-id-leading-dash.yaml",
        "line 1 column 5: id: invalid id \"-python\": expected 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit",
    ),
    (
        "bad-id-too-long.yaml",
        "line 1 column 5: id: invalid id \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": expected 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit",
    ),
    (
        "bad-id-uppercase.yaml",
        "line 1 column 5: id: invalid id \"Python\": expected 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit",
    ),
    (
        "bad-platform.yaml",
        "line 5 column 3: executable: unknown field `freebsd`, expected one of `linux`, `linux-x86_64`, `linux-aarch64`, `macos`, `macos-x86_64`, `macos-aarch64`, `windows`, `windows-x86_64`, `windows-aarch64`",
    ),
    (
        "bad-policy.yaml",
        "line 8 column 20: restart.policy: unknown variant `on_failure`, expected one of `never`, `on-failure`, `always`",
    ),
    (
        "bad-requires.yaml",
        "line 8 column 11: requires: invalid semver requirement \">=one\": unexpected character 'o' while parsing major version number",
    ),
    (
        "bad-semver-leading-v.yaml",
        "line 3 column 10: version: invalid semver version \"v1.0.0\": unexpected character 'v' while parsing major version number",
    ),
    (
        "bad-semver.yaml",
        "line 3 column 10: version: invalid semver version \"1.0\": unexpected end of input while parsing minor version number",
    ),
    (
        "bad-signal.yaml",
        "line 8 column 17: stop.signal: unknown variant `SIGTERM`, expected one of `TERM`, `INT`, `HUP`, `QUIT`, `USR1`, `USR2`, `KILL`",
    ),
    (
        "bad-tcp.yaml",
        "line 8 column 15: ready.tcp: invalid address \"localhost\": expected host:port, like 127.0.0.1:5000",
    ),
    (
        "binary.yaml",
        "line 2 column 118: not UTF-8 text (byte 0x80 at offset 136): a manifest is a YAML text file",
    ),
    (
        "broken-yaml.yaml",
        "line 4 column 1: found unexpected end of stream, while scanning a quoted scalar at line 2 column 7",
    ),
    (
        "comments-only.yaml",
        "the file has only comments: expected a mapping with id, name, version and executable",
    ),
    (
        "deeply-nested.yaml",
        "line 10 column 138: nested too deeply (YAML recursion limit exceeded)",
    ),
    (
        "digest-not-hex.yaml",
        "line 7 column 13: executable.linux.sha256: 'g' is not a hex digit",
    ),
    (
        "digest-too-short.yaml",
        "line 7 column 13: executable.linux.sha256: expected 64 lowercase hex digits, found 40 characters",
    ),
    (
        "digest-uppercase.yaml",
        "line 7 column 13: executable.linux.sha256: uppercase hex digits are not allowed; use lowercase",
    ),
    (
        "duplicate-env.yaml",
        "line 9 column 3: env: duplicate key `MODE`",
    ),
    ("duplicate-field.yaml", "line 1 column 1: name: given twice"),
    (
        "empty-executable.yaml",
        "line 4 column 13: executable: no platform entry: expected at least one of linux, linux-x86_64, macos, windows-x86_64, ...",
    ),
    (
        "empty-name.yaml",
        "line 2 column 7: name: must not be empty",
    ),
    (
        "empty-path-list.yaml",
        "line 6 column 11: executable.linux.path: the list of paths is empty",
    ),
    (
        "empty.yaml",
        "the file is empty: expected a mapping with id, name, version and executable",
    ),
    (
        "missing-id.yaml",
        "line 1 column 1: id: required field missing",
    ),
    (
        "missing-sha256.yaml",
        "line 6 column 5: executable.linux.sha256: required field missing",
    ),
    (
        "misspelled-field.yaml",
        "line 8 column 1: unknown field `argz`, did you mean `args`?",
    ),
    (
        "misspelled-nested.yaml",
        "line 9 column 3: stop: unknown field `sgnal`, did you mean `signal`?",
    ),
    (
        "misspelled-platform.yaml",
        "line 5 column 3: executable: unknown field `linux-arm64`, did you mean `linux-aarch64`?",
    ),
    (
        "no-probe.yaml",
        "line 8 column 8: ready: no probe: expected one of stdout_json, tcp or http",
    ),
    (
        "not-a-mapping.yaml",
        "line 1 column 1: invalid type: sequence, expected a manifest mapping with id, name, version and executable",
    ),
    (
        "nul-byte.yaml",
        "line 2 column 10: binary data (a NUL byte): a manifest is a YAML text file",
    ),
    (
        "tab-indent.yaml",
        "line 6 column 1: found character that cannot start any token, while scanning for the next token (YAML does not allow tabs for indentation; use spaces)",
    ),
    (
        "two-documents.yaml",
        "more than one YAML document (---): one manifest per file",
    ),
    (
        "two-probes.yaml",
        "line 9 column 3: ready: more than one probe: give only one of stdout_json, tcp or http",
    ),
    (
        "unknown-field.yaml",
        "line 8 column 1: unknown field `color`, expected one of `id`, `name`, `version`, `requires`, `executable`, `args`, `env`, `workdir`, `autostart`, `stop`, `restart`, `ready`",
    ),
    (
        "unknown-variable.yaml",
        "line 6 column 11: executable.linux.path: unknown variable `${HOME}`: only ${resources} is expanded",
    ),
    (
        "wrong-type-args-item.yaml",
        "line 8 column 16: args[1]: invalid type: sequence, expected a string",
    ),
    (
        "wrong-type-args.yaml",
        "line 8 column 7: args: invalid type: string \"--port 5000\", expected a sequence",
    ),
    (
        "wrong-type-autostart.yaml",
        "line 8 column 12: autostart: invalid type: string \"yes\", expected a boolean",
    ),
    (
        "wrong-type-env.yaml",
        "line 8 column 6: env: invalid type: sequence, expected a mapping",
    ),
    (
        "wrong-type-max-retries.yaml",
        "line 9 column 16: restart.max_retries: invalid type: integer `-1`, expected u32",
    ),
];

/// `berth check` on a folder holding only `file`: exit 1, the table on
/// stdout, exactly one line naming the file on stderr.
fn check_alone(name: &str, bytes: &[u8]) -> (PathBuf, Run) {
    let dir = tempfile::tempdir().unwrap().keep();
    fs::write(dir.join(name), bytes).unwrap();
    let out = run(berth().arg("check").arg(&dir));
    (dir, out)
}

fn assert_one_line_error(name: &str, out: &Run, dir: &Path, expected: &str) {
    assert_eq!(out.code, Some(1), "{name}: {}", out.stderr);
    assert_eq!(
        out.stderr,
        format!("{}: {expected}\n", dir.join(name).display()),
        "{name}"
    );
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"));
    let row = out.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with(name) && row.contains(" invalid"),
        "{name}: {}",
        out.stdout
    );
}

#[test]
fn every_invalid_fixture_is_one_exact_line() {
    let on_disk: Vec<String> = fs::read_dir(fixtures().join("invalid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        on_disk.len() >= 30,
        "only {} invalid fixtures",
        on_disk.len()
    );
    for name in &on_disk {
        assert!(
            INVALID.iter().any(|(n, _)| n == name),
            "{name} has no expected message"
        );
    }
    for (name, expected) in INVALID {
        let bytes = fs::read(fixtures().join("invalid").join(name)).unwrap();
        let (dir, out) = check_alone(name, &bytes);
        assert_one_line_error(name, &out, &dir, expected);
        fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_10_mb_file_is_rejected_unread() {
    // Valid YAML all the way, so only the size check can reject it.
    let mut text = String::from("id: big\n");
    while text.len() < 10 * 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let (dir, out) = check_alone("big.yaml", text.as_bytes());
    let expected = format!(
        "file is {} bytes, over the limit of 1048576 bytes (1 MiB); not read",
        text.len()
    );
    assert_one_line_error("big.yaml", &out, &dir, &expected);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_valid_fixtures_check_clean() {
    let dir = fixtures().join("valid");
    let out = run(berth()
        .arg("check")
        .arg(&dir)
        .env("BERTH_RESOURCES", dir.join("bin")));
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    let tool = dir.join("bin/tool").display().to_string();
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let t = tool.as_str();
    assert_eq!(
        rows,
        [
            vec!["FILE", "ID", "VERSION", "STATE", "PATH", "CHECKSUM", "NOTE"],
            vec!["flow-style.yml", "flow", "0.0.1", "ok", t, "ok"],
            vec!["full.yaml", "full", "2.1.0-beta.1+build.7", "ok", t, "ok"],
            vec![
                "minimal-old.yaml",
                "minimal",
                "0.9.0",
                "superseded",
                "-",
                "-",
                "by minimal.yaml"
            ],
            vec!["minimal.yaml", "minimal", "1.0.0", "ok", t, "ok"],
            vec![
                "needs-newer-berth.yaml",
                "future",
                "1.0.0",
                "incompatible",
                "-",
                "-",
                "requires >=99.0, berth is 0.1.0"
            ],
            vec!["resources.yaml", "resources", "0.1.0", "ok", t, "ok"],
            vec![
                "windows-only.yaml",
                "windows-only",
                "1.0.0",
                "unsupported",
                "-",
                "-",
                "no entry for linux-x86_64"
            ],
        ]
    );
}

#[test]
fn same_id_and_version_twice_is_an_error_on_both() {
    let dir = fixtures().join("duplicate");
    let out = run(berth().arg("check").arg(&dir));
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "{0}/first.yaml: duplicate: id twin version 1.0.0 is also defined in second.yaml\n\
             {0}/second.yaml: duplicate: id twin version 1.0.0 is also defined in first.yaml\n",
            dir.display()
        )
    );
    assert_eq!(
        out.stdout.matches(" duplicate ").count(),
        2,
        "{}",
        out.stdout
    );
}

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
    assert_eq!(missing.stderr, "berth: /nonexistent/file: no such file\n");
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
