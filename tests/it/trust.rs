//! Trust (issue #15) through the real binary: keys and signatures made by
//! berth and by Debian's `minisign` (installed by scripts/deps.sh), both
//! directions; `check`'s signature column and exit codes; every bad input
//! as a fixture with its one-line error; the launcher with
//! `--require-signatures`; and a real PyInstaller onedir build pinned by its
//! tree digest.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::control::home::{Home, Out, one_line, wait_until};

mod onedir;

/// Debian's minisign, with no terminal: a password prompt would fail.
fn minisign(args: &[&str], dir: &Path) -> Out {
    let out = Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("minisign not runnable ({e}): run scripts/deps.sh"));
    Out(out)
}

fn keys(home: &Home) -> PathBuf {
    let dir = home.path().join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The folder berth trusts in this home (`$XDG_CONFIG_HOME/berth/trusted`).
fn trusted(home: &Home) -> PathBuf {
    let dir = home.path().join("config/berth/trusted");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn trust_key(home: &Home, public: &Path, name: &str) {
    std::fs::copy(public, trusted(home).join(format!("{name}.pub"))).unwrap();
}

fn ok(out: &Out) {
    assert_eq!(out.code(), 0, "{out:?}");
}

/// `berth check --require-signatures` of the home's folder.
fn check_required(home: &Home) -> Out {
    home.run(&[
        "check",
        "--require-signatures",
        home.backends().to_str().unwrap(),
    ])
}

#[test]
fn berth_keys_and_signatures_work_with_minisign() {
    let home = Home::new();
    home.backend("a", "exec sleep 30", "");
    home.backend("b", "exec sleep 30", "");
    let keys = keys(&home);
    ok(&home.run(&["keygen", "acme", "--dir", keys.to_str().unwrap()]));
    let secret = keys.join("acme.key");
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the secret key must be private");
    let manifest = home.backends().join("a.yaml");
    ok(&home.run(&[
        "sign",
        manifest.to_str().unwrap(),
        "--key",
        secret.to_str().unwrap(),
    ]));
    // minisign verifies berth's signature with berth's public key...
    ok(&minisign(
        &["-V", "-p", "../keys/acme.pub", "-m", "a.yaml"],
        &home.backends(),
    ));
    // ... and signs with berth's secret key; berth verifies that one.
    ok(&minisign(
        &["-S", "-W", "-s", "../keys/acme.key", "-m", "b.yaml"],
        &home.backends(),
    ));
    trust_key(&home, &keys.join("acme.pub"), "acme");
    let out = check_required(&home);
    ok(&out);
    assert_eq!(out.stdout().matches("signed by acme").count(), 2, "{out:?}");
}

#[test]
fn minisign_keys_and_both_signature_kinds_verify_in_berth() {
    let home = Home::new();
    home.backend("a", "exec sleep 30", "");
    let keys = keys(&home);
    ok(&minisign(
        &["-G", "-W", "-p", "vendor.pub", "-s", "vendor.key"],
        &keys,
    ));
    trust_key(&home, &keys.join("vendor.pub"), "vendor");
    let b = home.backends();
    // Pre-hashed (minisign's default), then legacy (`-l`), then berth signing
    // with minisign's key (which minisign then verifies).
    for args in [
        &["-S", "-W", "-s", "../keys/vendor.key", "-m", "a.yaml"][..],
        &["-S", "-l", "-W", "-s", "../keys/vendor.key", "-m", "a.yaml"][..],
    ] {
        ok(&minisign(args, &b));
        let sig = std::fs::read_to_string(b.join("a.yaml.minisig")).unwrap();
        let out = check_required(&home);
        ok(&out);
        assert!(out.stdout().contains("signed by vendor"), "{sig}\n{out:?}");
    }
    ok(&home.run(&[
        "sign",
        b.join("a.yaml").to_str().unwrap(),
        "--key",
        keys.join("vendor.key").to_str().unwrap(),
    ]));
    ok(&minisign(
        &["-V", "-p", "../keys/vendor.pub", "-m", "a.yaml"],
        &b,
    ));
    ok(&check_required(&home));
}

#[test]
fn keygen_never_overwrites_without_force() {
    let home = Home::new();
    let keys = keys(&home);
    let dir = keys.to_str().unwrap();
    ok(&home.run(&["keygen", "acme", "--dir", dir]));
    let before = std::fs::read(keys.join("acme.key")).unwrap();
    let out = home.run(&["keygen", "acme", "--dir", dir]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        one_line(&out.stderr()) && out.stderr().contains("already exists"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(keys.join("acme.key")).unwrap(), before);
    ok(&home.run(&["keygen", "acme", "--dir", dir, "--force"]));
    assert_ne!(std::fs::read(keys.join("acme.key")).unwrap(), before);
    let mode = std::fs::metadata(keys.join("acme.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn check_has_a_signature_column_and_fails_on_untrusted_winners() {
    let home = Home::new();
    home.backend("a", "exec sleep 30", "");
    let dir = home.backends();
    let dir = dir.to_str().unwrap();
    let out = home.run(&["check", dir]);
    ok(&out);
    assert!(
        out.stdout().contains("SIGNATURE") && out.stdout().contains("unsigned"),
        "{out:?}"
    );
    for out in [
        check_required(&home),
        Out(home
            .berth(&["check", dir])
            .env("BERTH_REQUIRE_SIGNATURES", "1")
            .output()
            .unwrap()),
    ] {
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(one_line(&out.stderr()), "{out:?}");
        assert!(
            out.stderr()
                .contains("a.yaml: not signed (a.yaml.minisig is missing)"),
            "{out:?}"
        );
        assert!(out.stdout().contains("untrusted"), "{out:?}");
    }
}

/// A signed backend `a` (key `acme`, trusted) in a fresh home.
fn signed_home() -> (Home, PathBuf) {
    let home = Home::new();
    home.backend("a", "exec sleep 30", "");
    let keys = keys(&home);
    ok(&home.run(&["keygen", "acme", "--dir", keys.to_str().unwrap()]));
    trust_key(&home, &keys.join("acme.pub"), "acme");
    let key = keys.join("acme.key");
    sign(&home, "a.yaml", &key);
    (home, key)
}

fn sign(home: &Home, manifest: &str, key: &Path) {
    let m = home.backends().join(manifest);
    ok(&home.run(&["sign", m.to_str().unwrap(), "--key", key.to_str().unwrap()]));
}

/// Runs `check` on the fixture and asserts exit 1 and exactly one stderr
/// line containing `want`, without a panic.
fn assert_check_fails(home: &Home, require: bool, want: &str) {
    let dir = home.backends();
    let mut args = vec!["check", dir.to_str().unwrap()];
    if require {
        args.push("--require-signatures");
    }
    let out = home.run(&args);
    assert_eq!(out.code(), 1, "{want}: {out:?}");
    assert!(!out.stderr().contains("panicked"), "{out:?}");
    let stderr = out.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(want)).collect();
    assert_eq!(lines.len(), 1, "expected one line with {want:?}: {out:?}");
}

#[test]
fn bad_signatures_are_one_clear_line_each() {
    let (home, _) = signed_home();
    let sig = home.backends().join("a.yaml.minisig");
    let good = std::fs::read_to_string(&sig).unwrap();
    // Garbage, truncated: untrusted even without --require-signatures.
    for (text, want) in [
        (
            "garbage\n".to_owned(),
            "a.yaml.minisig: not a minisign signature (garbage or truncated)",
        ),
        (
            good[..good.len() / 2].to_owned(),
            "not a minisign signature",
        ),
    ] {
        std::fs::write(&sig, text).unwrap();
        assert_check_fails(&home, false, want);
    }
    // A signature for another file.
    home.backend("b", "exec sleep 30", "");
    std::fs::write(&sig, &good).unwrap();
    std::fs::copy(&sig, home.backends().join("b.yaml.minisig")).unwrap();
    assert_check_fails(
        &home,
        false,
        "b.yaml.minisig: does not match b.yaml: it was made for a.yaml",
    );
    std::fs::remove_file(home.backends().join("b.yaml.minisig")).unwrap();
    std::fs::remove_file(home.backends().join("b.yaml")).unwrap();
    ok(&check_required(&home));
}

#[test]
fn bad_keys_and_key_folders_are_one_line_and_sign_nothing() {
    let (home, _) = signed_home();
    // A public key file that is not one: a warning line; its signature by
    // that "key" is not trusted.
    let acme = trusted(&home).join("acme.pub");
    let real = std::fs::read_to_string(&acme).unwrap();
    std::fs::write(&acme, "not a key\n").unwrap();
    let out = check_required(&home);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr().contains("acme.pub: not a minisign public key"),
        "{out:?}"
    );
    assert!(
        out.stderr().contains("but no trusted key is installed"),
        "{out:?}"
    );
    assert_eq!(out.stderr().lines().count(), 2, "{out:?}");
    std::fs::write(&acme, real).unwrap();
    // A key folder that cannot be read (here: a file where a folder should
    // be; as root, permission bits do not stop a read).
    let not_a_folder = home.path().join("keys-file");
    std::fs::write(&not_a_folder, "x").unwrap();
    let out = Out(home
        .berth(&[
            "check",
            "--require-signatures",
            home.backends().to_str().unwrap(),
        ])
        .env("BERTH_TRUSTED", &not_a_folder)
        .output()
        .unwrap());
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .contains("keys-file: cannot read the trusted keys folder"),
        "{out:?}"
    );
    assert!(!out.stderr().contains("panicked"));
}

#[test]
fn bad_files_entries_are_one_clear_line_each() {
    let home = Home::new();
    home.backend("a", "exec sleep 30", "");
    let m = home.backends().join("a.yaml");
    let text = std::fs::read_to_string(&m).unwrap();
    let zeros = "0".repeat(64);
    let with_files = |dir: &str| {
        text.replacen(
            "    sha256:",
            &format!("    files: {{ dir: \"{dir}\", sha256: {zeros} }}\n    sha256:"),
            1,
        )
    };
    std::fs::write(&m, with_files("../lib")).unwrap();
    assert_check_fails(
        &home,
        false,
        "executable.linux.files.dir: \"../lib\" escapes the executable's folder",
    );
    std::fs::write(&m, with_files("/opt/lib")).unwrap();
    assert_check_fails(&home, false, "is absolute");
    std::fs::write(&m, with_files("_internal")).unwrap();
    assert_check_fails(&home, false, "_internal: no such folder (files.dir)");
}

// Issue #23, point 7: for about a second after start an unsigned manifest
// written just before was missing ("no backend with id"), not `untrusted`.
#[test]
fn an_unsigned_manifest_is_untrusted_from_the_first_answer_of_the_socket() {
    let (home, _key) = signed_home();
    home.backend("b", "exec sleep 30", "");
    let _launcher = home.launch_with(&["--require-signatures"]);
    let b = home.status_of("b");
    assert_eq!(b["state"], "untrusted", "{b}");
    assert!(b["error"].as_str().unwrap().contains("not signed"), "{b}");
    let out = home.run(&["start", "b"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("untrusted"), "{out:?}");
}

#[test]
fn the_launcher_requires_signatures_and_names_the_signer() {
    let (home, key) = signed_home();
    home.backend("b", "exec sleep 30", "");
    let _launcher = home.launch_with(&["--require-signatures"]);
    let a = home.status_of("a");
    assert_eq!(a["signed_by"], "acme", "{a}");
    assert_eq!(a["state"], "stopped", "{a}");
    // Listed from the start-up scan on (b was written just before).
    assert!(wait_until(Duration::from_secs(10), || home
        .status_json()
        .iter()
        .any(|s| s["id"] == "b")));
    let b = home.status_of("b");
    assert_eq!(b["state"], "untrusted", "{b}");
    assert!(b["error"].as_str().unwrap().contains("not signed"), "{b}");
    assert_eq!(b["signed_by"], serde_json::Value::Null);
    let out = home.run(&["start", "b"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        one_line(&out.stderr()) && out.stderr().contains("untrusted"),
        "{out:?}"
    );
    ok(&home.run(&["start", "a"]));
    let pid = home.status_of("a")["pid"].as_u64().unwrap();

    // An edit that breaks the signature: a keeps running on its signed
    // definition, the error shown.
    let m = home.backends().join("a.yaml");
    let mut text = std::fs::read_to_string(&m).unwrap();
    text.push_str("args: [\"--evil\"]\n");
    std::fs::write(&m, &text).unwrap();
    let broken = |s: &serde_json::Value| {
        s["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not match a.yaml"))
    };
    assert!(wait_until(Duration::from_secs(10), || broken(
        &home.status_of("a")
    )));
    let a = home.status_of("a");
    assert_eq!(
        (a["state"].as_str(), a["pid"].as_u64()),
        (Some("running"), Some(pid)),
        "{a}"
    );
    assert_eq!(a["signed_by"], "acme", "{a}");
    assert_eq!(
        a["pending_restart"], false,
        "the unsigned edit must not be pending: {a}"
    );
    // Signed again: the error clears and the edit is pending.
    sign(&home, "a.yaml", &key);
    assert!(wait_until(Duration::from_secs(10), || {
        let a = home.status_of("a");
        a["error"].is_null() && a["pending_restart"] == true
    }));
    // The signature vanishing: untrusted edit again, still running.
    std::fs::remove_file(home.backends().join("a.yaml.minisig")).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        home.status_of("a")["error"]
            .as_str()
            .is_some_and(|e| e.contains("not signed"))
    }));
    assert_eq!(home.status_of("a")["pid"].as_u64(), Some(pid));
}

/// #23.2: a manifest signed only by a key that was removed from the trusted
/// folders (then SIGHUP) is `untrusted` and never starts. Before, its last
/// definition outlived the key: `stopped` with the error shown, and Start
/// launched it. A running one is stopped: the user withdrew the trust it
/// ran on.
#[test]
fn a_manifest_whose_only_key_was_removed_is_untrusted_and_never_starts() {
    let (home, key) = signed_home();
    home.backend("r", "exec sleep 30", "");
    sign(&home, "r.yaml", &key);
    let launcher = home.launch();
    assert_eq!(home.status_of("a")["signed_by"], "acme");
    ok(&home.run(&["start", "r"]));
    let pid = home.status_of("r")["pid"].as_u64().unwrap();
    std::fs::remove_file(trusted(&home).join("acme.pub")).unwrap();
    launcher.signal(nix::sys::signal::Signal::SIGHUP);
    let untrusted = |id: &str| {
        let s = home.status_of(id);
        s["state"] == "untrusted"
            && s["error"]
                .as_str()
                .is_some_and(|e| e.contains("a.yaml") || e.contains("r.yaml"))
    };
    assert!(
        wait_until(Duration::from_secs(10), || untrusted("a") && untrusted("r")),
        "{:#?}",
        home.status_json()
    );
    let out = home.run(&["start", "a"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        one_line(&out.stderr()) && out.stderr().contains("untrusted"),
        "{out:?}"
    );
    assert_eq!(home.status_of("a")["pid"], serde_json::Value::Null);
    let r = home.status_of("r");
    assert_eq!(r["pid"], serde_json::Value::Null, "{r}");
    assert!(
        !crate::control::home::alive(pid),
        "r still runs on a withdrawn key"
    );
}

// Issue #23, point 12: `berth sign` with a password-protected key and no
// terminal failed with a bare I/O error from the password prompt.
#[test]
fn signing_with_a_password_protected_key_and_no_terminal_says_so() {
    use std::os::unix::process::CommandExt;
    let home = Home::new();
    home.backend("a", "exec sleep 30", "");
    let pair = minisign::KeyPair::generate_encrypted_keypair(Some("secret".into())).unwrap();
    let key = keys(&home).join("locked.key");
    std::fs::write(&key, pair.sk.to_box(None).unwrap().to_string()).unwrap();
    let manifest = home.backends().join("a.yaml");
    let mut cmd = home.berth(&[
        "sign",
        manifest.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    // SAFETY: setsid is async-signal-safe; it leaves berth without a
    // controlling terminal, as under a service manager or CI.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let out = Out(cmd.output().unwrap());
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        one_line(&out.stderr())
            && out.stderr().contains("protected by a password")
            && out.stderr().contains("terminal"),
        "{out:?}"
    );
    assert!(!home.backends().join("a.yaml.minisig").exists());
}
