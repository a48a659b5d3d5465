//! rlimits: memory (RLIMIT_AS) and open files (RLIMIT_NOFILE).

use berth::manifest::sandbox::Limits;
use berth::verb::Verb;

use super::{Lab, outcome};

#[tokio::test]
async fn sandboxed_backend_cannot_exceed_its_memory_or_open_files_limit() {
    let lab = Lab::new();
    let mut sandbox = lab.sandbox();
    sandbox.limits = Limits {
        memory: Some(256 << 20),
        open_files: Some(64),
        cpu_time: Some(60),
        core_dumps: Some(false),
    };
    let checks = [
        format!("alloc={}", 16 << 20),
        format!("alloc={}", 1u64 << 30),
        "files=20".to_owned(),
        "files=100".to_owned(),
    ];
    let lines = lab.run("probe", Some(sandbox.clone()), &checks).await;
    assert_eq!(outcome(&lines, &checks[0]), "ok");
    assert_eq!(outcome(&lines, &checks[1]), "denied ENOMEM");
    assert_eq!(outcome(&lines, &checks[2]), "ok");
    assert_eq!(outcome(&lines, &checks[3]), "denied EMFILE");
    // Limits alone (no filesystem rule) are a sandbox too.
    sandbox.filesystem = None;
    let lines = lab.run("limits", Some(sandbox), &checks[1..2]).await;
    assert_eq!(outcome(&lines, &checks[1]), "denied ENOMEM");
    let plain = lab.run("plain", None, &checks).await;
    for c in &checks {
        assert_eq!(outcome(&plain, c), "ok", "{c}");
    }
}

#[tokio::test]
async fn limit_over_the_hard_limit_fails_with_the_reason() {
    let lab = Lab::new();
    let mut sandbox = lab.sandbox();
    sandbox.limits.open_files = Some(u64::MAX - 1);
    let b = lab.backend("probe", Some(sandbox), &[]);
    lab.env.sup.apply(crate::util::catalog([b])).await;
    let err = lab
        .env
        .sup
        .command("probe", Verb::start())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("sandbox: open_files"), "{err}");
    let st = lab.env.sup.snapshot();
    assert_eq!(st.get("probe").unwrap().state, berth::status::State::Failed);
}
