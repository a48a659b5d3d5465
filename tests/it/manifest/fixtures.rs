//! Every fixture under `tests/fixtures/` through `berth check`.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Run, berth, fixtures, run};

/// Each invalid fixture and the text after `<path>: ` on its one stderr line.
const INVALID: &[(&str, &str)] = &[
    (
        "action-bad-url.yaml",
        "line 10 column 11: actions[0].open: invalid target \"file://docs/index.html\": expected an http:// or https:// URL or an absolute path",
    ),
    (
        "action-duplicate-label.yaml",
        "line 9 column 3: actions: duplicate action label \"Ping\": labels must be unique",
    ),
    (
        "action-unknown-variable.yaml",
        "line 10 column 11: actions[0].open: unknown variable `${host}`: use ${id}, ${pid}, ${port}, ${token} or ${ready.KEY} (KEY of letters, digits, '_' and '-')",
    ),
    (
        "update-bad-scheme.yaml",
        "line 9 column 9: update.feed: invalid URL \"ftp://example.org/feed/\": expected an https:// URL (http:// only for a loopback address)",
    ),
    (
        "update-http-localhost.yaml",
        "line 9 column 9: update.feed: \"http://localhost:8000/feed/\": http is allowed only for a loopback address (127.0.0.1, [::1]); use https",
    ),
    (
        "update-http-remote.yaml",
        "line 9 column 9: update.feed: \"http://example.org/feed/\": http is allowed only for a loopback address (127.0.0.1, [::1]); use https",
    ),
    (
        "update-no-feed.yaml",
        "line 8 column 9: update.feed: required field missing",
    ),
    (
        "update-unknown-field.yaml",
        "line 10 column 3: update: unknown field `chek`, did you mean `check`?",
    ),
    (
        "update-check-too-short.yaml",
        "line 10 column 10: update.check: check \"59s\" is too often: the smallest is 1m (like 6h)",
    ),
    (
        "update-probation-zero.yaml",
        "line 10 column 14: update.probation: \"0s\" is zero: give a duration of more than 0, like 10s",
    ),
    (
        "update-auto-not-bool.yaml",
        "line 10 column 9: update.auto: invalid type: string \"sometimes\", expected a boolean",
    ),
    (
        "health-two-checks.yaml",
        "line 9 column 3: health: more than one check: give only one of http, tcp or watchdog",
    ),
    (
        "health-interval-zero.yaml",
        "line 10 column 13: health.interval: \"0s\" is zero: give a duration of more than 0, like 10s",
    ),
    (
        "health-failures-zero.yaml",
        "line 10 column 13: health.failures: 0 is not a count: give at least 1",
    ),
    (
        "health-unknown-variable.yaml",
        "line 9 column 9: health.http: unknown variable `${host}`: use ${id}, ${pid}, ${port}, ${token} or ${ready.KEY} (KEY of letters, digits, '_' and '-')",
    ),
    (
        "health-watchdog-interval.yaml",
        "line 9 column 3: health: interval, timeout and failures apply to http and tcp checks: a watchdog fails at the first missed heartbeat",
    ),
    (
        "health-tcp-port.yaml",
        "line 9 column 8: health.tcp: invalid address \"127.0.0.1:70000\": expected host:port, like 127.0.0.1:5000",
    ),
    (
        "ready-notify-false.yaml",
        "line 8 column 8: ready: notify: false is not a probe: write notify: true, or another probe",
    ),
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
        "deeply-nested-block.yaml",
        "line 136 column 257: nested too deeply (YAML recursion limit exceeded)",
    ),
    (
        "deeply-nested-flow.yaml",
        "line 10 column 1013: more than 1000 '[' and '{': nested too deeply or too many flow collections",
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
        "line 8 column 8: ready: no probe: expected one of stdout_json, tcp, http, notify or uptime",
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
        "line 9 column 3: ready: more than one probe: give only one of stdout_json, tcp, http, notify or uptime",
    ),
    (
        "unknown-field.yaml",
        "line 8 column 1: unknown field `color`, expected one of `id`, `name`, `version`, `requires`, `executable`, `args`, `env`, `port`, `token`, `workdir`, `autostart`, `notify`, `stop`, `restart`, `ready`, `health`, `sandbox`, `update`, `actions`, `depends_on`",
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
    (
        "backoff-too-short.yaml",
        "line 8 column 37: restart.backoff: backoff \"99ms\" is too short: the smallest is 100ms",
    ),
    (
        "http-port-too-big.yaml",
        "line 8 column 16: ready.http: invalid URL \"http://127.0.0.1:99999/\": port \"99999\" is not a number from 1 to 65535",
    ),
    (
        "max-retries-too-big.yaml",
        "line 8 column 25: restart.max_retries: invalid value: integer `4294967296`, expected u32",
    ),
    (
        "null-platform.yaml",
        "line 5 column 3: executable: no platform entry: expected at least one of linux, linux-x86_64, macos, windows-x86_64, ...",
    ),
    (
        "null-probe-alone.yaml",
        "line 8 column 8: ready: no probe: expected one of stdout_json, tcp, http, notify or uptime",
    ),
    (
        "stdout-json-empty.yaml",
        "line 8 column 8: ready: stdout_json must name at least one key",
    ),
    (
        "tcp-port-too-big.yaml",
        "line 8 column 15: ready.tcp: invalid address \"127.0.0.1:65536\": expected host:port, like 127.0.0.1:5000",
    ),
    // v3: `port: auto` and `token: true`.
    (
        "port-variable-without-auto.yaml",
        "line 8 column 18: args[1]: `${port}` needs `port: auto` in the manifest",
    ),
    (
        "tcp-auto-without-port.yaml",
        "line 8 column 15: ready.tcp: `tcp: auto` needs `port: auto` in the manifest",
    ),
    (
        "port-not-auto.yaml",
        "line 8 column 7: port: unknown variant `8080`, expected `auto`",
    ),
    (
        "token-in-args.yaml",
        "line 9 column 19: args[1]: `${token}` is allowed only in `open` actions and `health.http` headers (never in arguments, visible in ps, nor in a URL berth may log); the backend reads it from BERTH_TOKEN",
    ),
    (
        "token-in-health-url.yaml",
        "line 10 column 9: health.http: `${token}` is allowed only in `open` actions and `health.http` headers (never in arguments, visible in ps, nor in a URL berth may log); the backend reads it from BERTH_TOKEN",
    ),
    (
        "token-without-true.yaml",
        "line 11 column 11: actions[0].open: `${token}` needs `token: true` in the manifest",
    ),
    (
        "health-headers-on-tcp.yaml",
        "line 10 column 3: health: headers apply to http checks only",
    ),
    // v3: `depends_on`.
    (
        "depends-bad-condition.yaml",
        "line 9 column 7: depends_on.db: unknown variant `ready`, expected one of `started`, `running`, `healthy`",
    ),
    (
        "depends-bad-id.yaml",
        "line 9 column 3: depends_on: invalid id \"DB\": expected 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit",
    ),
    (
        "depends-list.yaml",
        "line 8 column 13: depends_on: invalid type: sequence, expected a mapping",
    ),
    (
        "depends-long-form-typo.yaml",
        "line 9 column 29: depends_on.db: unknown field `restat`, did you mean `restart`?",
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

/// Regression: libyaml's cost grows with the square of flow nesting; a
/// megabyte of `[` once took minutes. The 30 s limit of [`berth`] guards it.
#[test]
fn a_megabyte_of_brackets_is_rejected_cheaply() {
    let text = "[".repeat(1024 * 1024);
    let (dir, out) = check_alone("brackets.yaml", text.as_bytes());
    assert_one_line_error(
        "brackets.yaml",
        &out,
        &dir,
        "line 1 column 1001: more than 1000 '[' and '{': nested too deeply or too many flow collections",
    );
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
            vec![
                "FILE",
                "ID",
                "VERSION",
                "STATE",
                "PATH",
                "CHECKSUM",
                "SIGNATURE",
                "NOTE"
            ],
            vec![
                "depends.yaml",
                "depends",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec!["flow-style.yml", "flow", "0.0.1", "ok", t, "ok", "unsigned"],
            vec![
                "full.yaml",
                "full",
                "2.1.0-beta.1+build.7",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "health-http.yaml",
                "health-http",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "health-tcp.yaml",
                "health-tcp",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "health-watchdog.yaml",
                "health-watchdog",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "minimal-old.yaml",
                "minimal",
                "0.9.0",
                "superseded",
                "-",
                "-",
                "unsigned",
                "by minimal.yaml"
            ],
            vec![
                "minimal.yaml",
                "minimal",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "needs-newer-berth.yaml",
                "future",
                "1.0.0",
                "incompatible",
                "-",
                "-",
                "unsigned",
                "requires >=99.0, berth is 0.1.0"
            ],
            vec![
                "null-platform-beside.yaml",
                "null-platform",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "null-probe-beside.yaml",
                "null-probe",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "port-auto-http.yaml",
                "port-auto-http",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "port-auto.yaml",
                "port-auto",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "resources.yaml",
                "resources",
                "0.1.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "scalars.yaml",
                "scalars",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec![
                "update-loopback.yaml",
                "update-loopback",
                "1.0.0",
                "ok",
                t,
                "ok",
                "unsigned"
            ],
            vec!["update.yaml", "update", "1.0.0", "ok", t, "ok", "unsigned"],
            vec![
                "windows-only.yaml",
                "windows-only",
                "1.0.0",
                "unsupported",
                "-",
                "-",
                "unsigned",
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
