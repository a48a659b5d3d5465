//! `berth autostart`: the entry through `desktop-file-validate` and through
//! an `Exec` parser written from the Desktop Entry spec (the validator
//! accepts an unquoted path with a space, so it alone cannot catch the
//! quoting bug), run from a berth installed in a folder with a space.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `Exec`'s value into its arguments, per the Desktop Entry spec: first the
/// string escapes (`\s \n \t \r \\`), then double-quoted arguments in which
/// `\"`, `` \` ``, `\$` and `\\` stand for the character; `%%` is `%`.
fn parse_exec(value: &str) -> Vec<String> {
    let mut unescaped = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('s') => unescaped.push(' '),
                Some('n') => unescaped.push('\n'),
                Some('t') => unescaped.push('\t'),
                Some('r') => unescaped.push('\r'),
                Some('\\') => unescaped.push('\\'),
                other => panic!("bad string escape \\{other:?} in {value:?}"),
            }
        } else {
            unescaped.push(c);
        }
    }
    let mut args = Vec::new();
    let mut chars = unescaped.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut arg = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => {
                        let c = chars.next().expect("escape at end");
                        assert!(matches!(c, '"' | '`' | '$' | '\\'), "bad quote escape {c}");
                        arg.push(c);
                    }
                    Some(c) => arg.push(c),
                    None => panic!("unterminated quote in {value:?}"),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                assert!(
                    !"\t\"'\\><~|&;$*?#()`".contains(c),
                    "reserved {c:?} outside quotes in {value:?}"
                );
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg.replace("%%", "%"));
    }
    args
}

fn key<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
}

fn autostart(exe: &Path, config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(exe)
        .arg("autostart")
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .output()
        .unwrap()
}

#[test]
fn the_autostart_entry_is_valid_and_quotes_a_path_with_spaces() {
    let dir = tempfile::tempdir().unwrap();
    // berth installed in a folder with a space (and a `$` to escape).
    let install = dir.path().join("my apps $1");
    std::fs::create_dir(&install).unwrap();
    let exe = install.join("berth");
    std::fs::copy(env!("CARGO_BIN_EXE_berth"), &exe).unwrap();
    let backends = dir.path().join("back ends");
    std::fs::create_dir(&backends).unwrap();
    let config = dir.path().join("config");

    let out = autostart(&exe, &config, &["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("start at login: disabled"));

    let out = autostart(
        &exe,
        &config,
        &["enable", "--backends", backends.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let file = config.join("autostart/berth.desktop");
    let text = std::fs::read_to_string(&file).unwrap();

    let validate = Command::new("desktop-file-validate")
        .arg(&file)
        .output()
        .expect("desktop-file-validate (desktop-file-utils, scripts/deps.sh)");
    assert!(
        validate.status.success() && validate.stdout.is_empty(),
        "{}\n{text}",
        String::from_utf8_lossy(&validate.stdout)
    );
    let exec = parse_exec(key(&text, "Exec"));
    assert_eq!(
        exec,
        [
            exe.to_str().unwrap(),
            "run",
            "--backends",
            backends.to_str().unwrap()
        ],
        "{text}"
    );
    assert_eq!(PathBuf::from(key(&text, "TryExec")), exe);
    assert_eq!(key(&text, "X-GNOME-Autostart-enabled"), "true");

    let out = autostart(&exe, &config, &["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("start at login: enabled"),
        "{out:?}"
    );
    // Without --backends the entry names no folder: login uses the defaults,
    // never the folder it was enabled from.
    let out = autostart(&exe, &config, &["enable"]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        parse_exec(key(&text, "Exec")),
        [exe.to_str().unwrap(), "run"]
    );

    let out = autostart(&exe, &config, &["disable"]);
    assert!(out.status.success());
    assert!(!file.exists());
    let out = autostart(&exe, &config, &["disable"]);
    assert!(out.status.success(), "disabling twice is fine");
    let out = autostart(&exe, &config, &["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("start at login: disabled"));
}

#[test]
fn autostart_with_a_missing_folder_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let out = autostart(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        &config,
        &["enable", "--backends", "/nonexistent/folder"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/folder") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!config.join("autostart/berth.desktop").exists());
}

#[test]
fn the_spec_parser_reads_quotes_and_escapes() {
    assert_eq!(
        parse_exec(r#""/a b/c\\$d" run %%x"#),
        ["/a b/c$d", "run", "%x"]
    );
}

/// `autostart enable` with several folders writes every one into `Exec`,
/// and that command line, run as the desktop would, serves them all.
#[test]
fn autostart_writes_every_folder_and_its_entry_serves_them() {
    let home = crate::control::home::Home::new();
    home.backend("first", "exec sleep 300", "");
    let second = home.path().join("second folder");
    std::fs::create_dir(&second).unwrap();
    let exe = crate::util::script(&second, "srv.sh", "exec sleep 300");
    let digest = berth::integrity::hash_file(&exe).unwrap();
    std::fs::write(
        second.join("second.yaml"),
        format!(
            "id: second\nname: Second\nversion: 1.0.0\nexecutable:\n  linux:\n    path: srv.sh\n    sha256: {digest}\n"
        ),
    )
    .unwrap();
    let (first, second) = (home.backends(), second);
    let out = home
        .berth_bare()
        .args(["autostart", "enable", "--backends"])
        .arg(&first)
        .arg("--backends")
        .arg(&second)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(home.path().join("config/autostart/berth.desktop")).unwrap();
    let exec = parse_exec(key(&text, "Exec"));
    assert_eq!(
        exec[1..],
        [
            "run",
            "--backends",
            first.to_str().unwrap(),
            "--backends",
            second.to_str().unwrap()
        ],
        "{text}"
    );
    let mut cmd = home.berth_at(Path::new(&exec[0]));
    cmd.args(&exec[1..])
        .arg("--headless")
        .arg("--socket")
        .arg(home.socket())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _launcher = crate::control::home::Launcher {
        child: cmd.spawn().unwrap(),
        err: home.path().join("none"),
    };
    let served = crate::control::home::wait_until(Duration::from_secs(15), || {
        let out = home.run(&["status", "--json"]);
        let text = out.stdout();
        out.code() == 0 && text.contains("\"first\"") && text.contains("\"second\"")
    });
    assert!(served, "{:?}", home.run(&["status"]));
}
