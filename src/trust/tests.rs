use super::*;

/// minisign-verify's own test vectors (by minisign's author): one key, a
/// legacy (`Ed`) and a pre-hashed (`ED`) signature of the bytes `test`.
const VECTOR_PUB: &str = "untrusted comment: minisign public key\nRWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n";
const LEGACY_SIG: &str = "untrusted comment: signature from minisign secret key\nRWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=\ntrusted comment: timestamp:1555779966\tfile:test\nQtKMXWyYcwdpZAlPF7tE2ENJkRd1ujvKjlj1m9RtHTBnZPa5WKU5uWRs5GoP5M/VqE81QFuMKI5k/SfNQUaOAA==\n";
const PREHASHED_SIG: &str = "untrusted comment: signature from minisign secret key\nRUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=\ntrusted comment: timestamp:1633700835\tfile:test\tprehashed\nwLMDjy9FLAuxZ3q4NlEvkgtyhrr0gtTu6KC4KBJdITbbOeAi1zBIYo0v4iTgt8jJpIidRJnp94ABQkJAgAooBQ==\n";

struct Fx {
    _tmp: tempfile::TempDir,
    keys: PathBuf,
    manifest: PathBuf,
}

fn fx(keys: &[(&str, &str)]) -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("trusted");
    std::fs::create_dir(&dir).unwrap();
    for (name, text) in keys {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let manifest = tmp.path().join("test");
    std::fs::write(&manifest, "test").unwrap();
    Fx {
        keys: dir,
        manifest,
        _tmp: tmp,
    }
}

fn trust(fx: &Fx, require: bool) -> Trust {
    Trust::load(Policy {
        require,
        dirs: vec![fx.keys.clone()],
    })
}

fn sign_with(fx: &Fx, sig: &str) {
    std::fs::write(signature_path(&fx.manifest), sig).unwrap();
}

#[test]
fn both_kinds_of_signature_verify() {
    let f = fx(&[("vendor.pub", VECTOR_PUB)]);
    let t = trust(&f, true);
    assert_eq!(t.key_names().collect::<Vec<_>>(), ["vendor"]);
    for sig in [LEGACY_SIG, PREHASHED_SIG] {
        sign_with(&f, sig);
        assert_eq!(
            t.verdict(&f.manifest, b"test"),
            Verdict::Signed("vendor".into())
        );
        // One changed byte: untrusted, naming the signature file.
        let Verdict::Untrusted(reason) = t.verdict(&f.manifest, b"Test") else {
            panic!("a tampered manifest verified");
        };
        assert!(
            reason.contains("test.minisig: does not match test"),
            "{reason}"
        );
    }
}

#[test]
fn unsigned_is_untrusted_only_when_required() {
    let f = fx(&[("vendor.pub", VECTOR_PUB)]);
    assert_eq!(
        trust(&f, false).verdict(&f.manifest, b"test"),
        Verdict::Unsigned
    );
    let Verdict::Untrusted(reason) = trust(&f, true).verdict(&f.manifest, b"test") else {
        panic!("unsigned passed with signatures required");
    };
    assert!(
        reason.contains("not signed (test.minisig is missing)"),
        "{reason}"
    );
}

#[test]
fn a_present_signature_must_verify_even_when_not_required() {
    let f = fx(&[]);
    sign_with(&f, PREHASHED_SIG);
    let Verdict::Untrusted(reason) = trust(&f, false).verdict(&f.manifest, b"test") else {
        panic!("a signature by no trusted key passed");
    };
    assert!(
        reason.contains("but no trusted key is installed"),
        "{reason}"
    );
}

#[test]
fn bad_files_are_one_line_each() {
    let f = fx(&[
        ("vendor.pub", VECTOR_PUB),
        ("garbage.pub", "hello\nworld\n"),
        ("empty.pub", ""),
        ("notes.txt", "ignored"),
    ]);
    let t = trust(&f, true);
    assert_eq!(t.key_names().collect::<Vec<_>>(), ["vendor"]);
    assert_eq!(t.problems().len(), 2, "{:?}", t.problems());
    for p in t.problems() {
        assert!(
            p.contains("not a minisign public key") && !p.contains('\n'),
            "{p}"
        );
    }
    let truncated = &PREHASHED_SIG[..PREHASHED_SIG.len() / 2];
    for sig in ["", "garbage", truncated, "\u{0}\u{1}"] {
        sign_with(&f, sig);
        let Verdict::Untrusted(reason) = t.verdict(&f.manifest, b"test") else {
            panic!("{sig:?} passed");
        };
        assert!(reason.contains("not a minisign signature"), "{reason}");
    }
    std::fs::write(signature_path(&f.manifest), [0xff, 0xfe]).unwrap();
    assert!(
        matches!(t.verdict(&f.manifest, b"test"), Verdict::Untrusted(r) if r.contains("not text"))
    );
}

#[test]
fn a_signature_made_for_another_file_says_so() {
    let f = fx(&[("vendor.pub", VECTOR_PUB)]);
    let other = f.manifest.with_file_name("python.yaml");
    std::fs::write(signature_path(&other), PREHASHED_SIG).unwrap();
    let Verdict::Untrusted(reason) = trust(&f, false).verdict(&other, b"other bytes") else {
        panic!("a signature for another file passed");
    };
    assert!(
        reason.contains("does not match python.yaml: it was made for test"),
        "{reason}"
    );
}

#[test]
fn a_mismatching_signature_does_not_repeat_its_comment_with_terminal_escapes() {
    // The trusted comment of a signature that does not verify is anyone's
    // text: a feed's or a backend's escape sequences must not reach the
    // reason (berth.log, a terminal, a notification).
    let f = fx(&[("vendor.pub", VECTOR_PUB)]);
    let other = f.manifest.with_file_name("python.yaml");
    for name in ["\u{1b}]0;owned\u{7}\u{1b}[2Jx", "a\rb", &"n".repeat(4000)] {
        let hostile = PREHASHED_SIG.replace("file:test", &format!("file:{name}"));
        std::fs::write(signature_path(&other), &hostile).unwrap();
        let Verdict::Untrusted(reason) = trust(&f, false).verdict(&other, b"other bytes") else {
            panic!("a forged signature passed");
        };
        assert!(
            reason.contains("does not match python.yaml")
                && !reason.chars().any(char::is_control)
                && reason.len() < 300,
            "{reason:?}"
        );
    }
}

#[test]
fn an_unreadable_key_folder_is_a_problem_not_a_key() {
    let f = fx(&[]);
    let t = Trust::load(Policy {
        require: true,
        dirs: vec![f.manifest.clone(), f.keys.join("missing")],
    });
    // A file given as a folder cannot be read; a missing folder holds no key.
    assert_eq!(t.problems().len(), 1, "{:?}", t.problems());
    assert!(t.problems()[0].contains("cannot read the trusted keys folder"));
}

#[test]
fn signature_paths() {
    let m = Path::new("/b/python.yaml");
    assert_eq!(signature_path(m), Path::new("/b/python.yaml.minisig"));
    assert_eq!(
        manifest_of_signature(&signature_path(m)).as_deref(),
        Some(m)
    );
    assert_eq!(manifest_of_signature(m), None);
}

#[test]
fn a_removed_or_replaced_key_no_longer_vouches_for_what_it_signed() {
    let fx = fx(&[("acme.pub", VECTOR_PUB)]);
    let before = trust(&fx, false);
    assert!(trust(&fx, false).still_vouches(&before, Some("acme")));
    // Unsigned definitions stand while signatures are not required.
    assert!(trust(&fx, false).still_vouches(&before, None));
    assert!(!trust(&fx, true).still_vouches(&before, None));
    // Another key under the same name vouches for nothing the old one signed.
    let other = minisign::KeyPair::generate_unencrypted_keypair()
        .unwrap()
        .pk
        .to_box()
        .unwrap()
        .to_string();
    std::fs::write(fx.keys.join("acme.pub"), other).unwrap();
    assert!(!trust(&fx, false).still_vouches(&before, Some("acme")));
    std::fs::remove_file(fx.keys.join("acme.pub")).unwrap();
    assert!(!trust(&fx, false).still_vouches(&before, Some("acme")));
}
