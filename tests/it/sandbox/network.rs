//! TCP rules: listed ports only; port 0 allows an ephemeral bind.

use std::net::TcpListener;

use berth::manifest::sandbox::NetRules;

use super::{Lab, outcome};

/// A port nobody listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn sandboxed_backend_connects_and_binds_only_listed_ports() {
    let lab = Lab::new();
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let unlisted = TcpListener::bind("127.0.0.1:0").unwrap();
    let (allowed_port, unlisted_port) = (
        allowed.local_addr().unwrap().port(),
        unlisted.local_addr().unwrap().port(),
    );
    let bind_unlisted = free_port();
    let mut sandbox = lab.sandbox();
    sandbox.network = Some(NetRules {
        bind: vec![0],
        connect: vec![allowed_port],
    });
    let checks = [
        format!("connect={allowed_port}"),
        format!("connect={unlisted_port}"),
        format!("bind={bind_unlisted}"),
        "bind=0".to_owned(),
    ];
    let lines = lab.run("probe", Some(sandbox), &checks).await;
    assert_eq!(outcome(&lines, &checks[0]), "ok");
    assert_eq!(outcome(&lines, &checks[1]), "denied EACCES");
    assert_eq!(outcome(&lines, &checks[2]), "denied EACCES");
    assert_eq!(outcome(&lines, &checks[3]), "ok");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("bound ") && l != "bound 0")
    );
    // The same checks unsandboxed all pass: the denials are the sandbox's.
    let plain = lab.run("plain", None, &checks).await;
    for c in &checks {
        assert_eq!(outcome(&plain, c), "ok", "{c}");
    }
}
