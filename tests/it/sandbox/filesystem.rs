//! Filesystem rules: what a sandboxed backend can and cannot read and write.

use super::{Lab, check, outcome};

#[tokio::test]
async fn sandboxed_backend_cannot_read_home_or_unlisted_folders() {
    let lab = Lab::new();
    let checks = [
        check("read", lab.path("home/secret")),
        check("read", lab.path("other/secret")),
        check("list", lab.path("home")),
        check("read", lab.path("listed/secret")),
        check("list", lab.path("listed")),
        check("read", "/etc/hostname"),
    ];
    let lines = lab.run("probe", Some(lab.sandbox()), &checks).await;
    assert_eq!(outcome(&lines, &checks[0]), "denied EACCES");
    assert_eq!(outcome(&lines, &checks[1]), "denied EACCES");
    assert_eq!(outcome(&lines, &checks[2]), "denied EACCES");
    assert_eq!(outcome(&lines, &checks[3]), "ok");
    assert_eq!(outcome(&lines, &checks[4]), "ok");
    assert_eq!(
        outcome(&lines, &checks[5]),
        "ok",
        "the system's /etc is readable"
    );
}

#[tokio::test]
async fn unsandboxed_backend_reads_the_same_secret() {
    let lab = Lab::new();
    let checks = [
        check("read", lab.path("home/secret")),
        check("read", lab.path("other/secret")),
        check("write", lab.path("other/new")),
    ];
    let lines = lab.run("plain", None, &checks).await;
    for c in &checks {
        assert_eq!(outcome(&lines, c), "ok", "{c}");
    }
    let status = lab.env.sup.snapshot();
    assert_eq!(status.get("plain").unwrap().sandbox, None);
}

#[tokio::test]
async fn sandboxed_backend_writes_only_data_tmp_and_write_paths() {
    let lab = Lab::new();
    let sandbox = lab.sandbox();
    let (tmp, data) = (sandbox.tmp.clone(), sandbox.data.clone());
    let checks = [
        check("write", lab.path("other/new")),
        check("write", lab.path("listed/new")),
        check("write", lab.path("bin/new")),
        check("write", "/tmp/berth-sandbox-test-must-not-exist"),
        check("write", data.join("state.json")),
        check("write", tmp.join("scratch")),
        check("write", lab.path("writable/out")),
        check("write", "/dev/null"),
        "env=TMPDIR".to_owned(),
    ];
    let lines = lab.run("probe", Some(sandbox), &checks).await;
    for c in &checks[..4] {
        assert_eq!(outcome(&lines, c), "denied EACCES", "{c}");
    }
    for c in &checks[4..8] {
        assert_eq!(outcome(&lines, c), "ok", "{c}");
    }
    assert!(!lab.path("other/new").exists() && !lab.path("listed/new").exists());
    assert!(!std::path::Path::new("/tmp/berth-sandbox-test-must-not-exist").exists());
    assert!(
        lines.contains(&format!("env TMPDIR={}", tmp.display())),
        "{lines:#?}"
    );
    use std::os::unix::fs::PermissionsExt;
    for dir in [&tmp, &data] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    let st = lab.env.sup.snapshot();
    assert_eq!(
        st.get("probe").unwrap().sandbox.as_deref(),
        Some("enforced")
    );
}

#[tokio::test]
async fn sandboxed_backend_cannot_signal_outside_its_sandbox() {
    let lab = Lab::new();
    let mut outsider = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let checks = [check("kill", outsider.id().to_string())];
    let lines = lab.run("probe", Some(lab.sandbox()), &checks).await;
    let plain = lab.run("plain", None, &checks).await;
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert_eq!(outcome(&lines, &checks[0]), "denied EPERM");
    assert_eq!(outcome(&plain, &checks[0]), "ok");
}
