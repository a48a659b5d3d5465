//! Through the real binary: `status --json`, an older kernel played with the
//! test-only ABI override in both modes, the control socket refusing a
//! sandboxed caller, and the real PyInstaller build sandboxed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{PROBE, outcome, report_lines};
use crate::control::home::{Home, wait_until};

/// A probe backend `id` in `home` with these checks (then a 30 s sleep, so
/// `start` sees it running) and this `sandbox` YAML.
fn probe_backend(home: &Home, id: &str, checks: &[String], sandbox: &str) {
    std::fs::write(home.backends().join("probe.py"), PROBE).unwrap();
    let mut args: Vec<String> = checks.iter().map(|c| format!("{c:?}")).collect();
    args.push("\"sleep=30\"".into());
    home.backend(
        id,
        &format!(
            "exec /usr/bin/python3 -I '{}' \"$@\"",
            home.backends().join("probe.py").display()
        ),
        &format!("args: [{}]\n{sandbox}", args.join(", ")),
    );
}

fn secret(home: &Home) -> String {
    let dir = home.path().join("home");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), "secret\n").unwrap();
    format!("read={}", dir.join("secret").display())
}

/// Waits for the probe's `done` line; its report lines.
pub(super) fn report(home: &Home, id: &str) -> Vec<String> {
    let log = home.log(id);
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("stdout done"))),
        "probe never finished: {:?}",
        std::fs::read_to_string(&log)
    );
    report_lines(&std::fs::read_to_string(&log).unwrap())
}

const NET_SANDBOX: &str =
    "sandbox:\n  filesystem: { read: [], write: [] }\n  network: { bind: [0], connect: [] }\n";

#[test]
fn status_says_enforced_on_this_kernel() {
    let home = Home::new();
    let secret = secret(&home);
    probe_backend(&home, "boxed", std::slice::from_ref(&secret), NET_SANDBOX);
    probe_backend(&home, "plain", std::slice::from_ref(&secret), "");
    let _l = home.launch();
    assert_eq!(home.status_of("boxed")["sandbox"], "enforced");
    assert_eq!(home.status_of("plain")["sandbox"], serde_json::Value::Null);
    assert_eq!(home.run(&["start", "boxed"]).code(), 0);
    assert_eq!(home.run(&["start", "plain"]).code(), 0);
    assert_eq!(outcome(&report(&home, "boxed"), &secret), "denied EACCES");
    assert_eq!(outcome(&report(&home, "plain"), &secret), "ok");
    assert_eq!(home.status_of("boxed")["sandbox"], "enforced");
}

#[test]
fn kernel_without_network_rules_best_effort_runs_partial_and_says_so() {
    let home = Home::new();
    let secret = secret(&home);
    let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let connect = format!("connect={}", outside.local_addr().unwrap().port());
    let sandbox = format!("{NET_SANDBOX}  best_effort: true\n");
    probe_backend(&home, "boxed", &[secret.clone(), connect.clone()], &sandbox);
    let _l = home.launch_with_cmd(&[], |c| {
        c.env("BERTH_TEST_LANDLOCK_ABI", "3");
    });
    assert_eq!(home.run(&["start", "boxed"]).code(), 0);
    let lines = report(&home, "boxed");
    let status = home.status_of("boxed");
    let said = status["sandbox"].as_str().unwrap();
    assert!(
        said.starts_with("partial: network rules (Landlock ABI 4), signal scoping (Landlock ABI 6); BERTH_TEST_LANDLOCK_ABI=3"),
        "{said}"
    );
    // What it says is true: the filesystem rules hold, the network ones do not.
    assert_eq!(outcome(&lines, &secret), "denied EACCES");
    assert_eq!(outcome(&lines, &connect), "ok");
}

#[test]
fn kernel_without_network_rules_strict_never_launches() {
    let home = Home::new();
    probe_backend(&home, "boxed", &[], NET_SANDBOX);
    let _l = home.launch_with_cmd(&[], |c| {
        c.env("BERTH_TEST_LANDLOCK_ABI", "3");
    });
    let out = home.run(&["start", "boxed"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .contains("sandbox cannot be enforced: network rules (Landlock ABI 4)"),
        "{out:?}"
    );
    let status = home.status_of("boxed");
    assert_eq!(status["state"], "failed");
    assert_eq!(status["pid"], serde_json::Value::Null);
    let error = status["error"].as_str().unwrap();
    assert!(error.starts_with("sandbox cannot be enforced: network rules (Landlock ABI 4), signal scoping (Landlock ABI 6); BERTH_TEST_LANDLOCK_ABI=3"), "{error}");
    assert!(
        !home.log("boxed").exists()
            || !std::fs::read_to_string(home.log("boxed"))
                .unwrap()
                .contains("stdout")
    );
}

#[test]
fn control_socket_refuses_a_sandboxed_backend_and_its_children() {
    let home = Home::new();
    let socket = home.socket();
    let checks = [
        format!("control={}", socket.display()),
        format!("control-new-group={}", socket.display()),
    ];
    probe_backend(&home, "boxed", &checks, NET_SANDBOX);
    probe_backend(&home, "plain", &checks[..1], "");
    let _l = home.launch();
    assert_eq!(home.run(&["start", "boxed"]).code(), 0);
    assert_eq!(home.run(&["start", "plain"]).code(), 0);
    let boxed = report(&home, "boxed");
    let refusals: Vec<_> = boxed.iter().filter(|l| l.starts_with("reply ")).collect();
    assert_eq!(refusals.len(), 2, "{boxed:#?}");
    for r in refusals {
        assert!(
            r.contains(r#""ok":false"#) && r.contains("sandboxed backend boxed"),
            "{r}"
        );
    }
    let plain = report(&home, "plain");
    let reply = plain.iter().find(|l| l.starts_with("reply ")).unwrap();
    assert!(reply.contains(r#""ok":true"#), "{reply}");
    // berth itself keeps serving everyone else.
    assert_eq!(home.run(&["status"]).code(), 0);
}

/// `token: true` (v3): the socket's own user reads a backend's token from
/// `status --json`; a sandboxed backend asking the socket for it is
/// refused, while an unsandboxed one of the same user gets it (the check
/// can fail).
#[test]
fn a_sandboxed_backend_cannot_read_its_token_from_the_control_socket() {
    let home = Home::new();
    let checks = [format!("control={}", home.socket().display())];
    probe_backend(
        &home,
        "boxed",
        &checks,
        &format!("token: true\n{NET_SANDBOX}"),
    );
    probe_backend(&home, "plain", &checks, "token: true\n");
    let _l = home.launch();
    assert_eq!(home.run(&["start", "boxed"]).code(), 0);
    assert_eq!(home.run(&["start", "plain"]).code(), 0);
    let token_of = |id: &str| home.status_of(id)["token"].as_str().unwrap().to_owned();
    let (boxed_token, plain_token) = (token_of("boxed"), token_of("plain"));
    let boxed = report(&home, "boxed");
    let reply = boxed.iter().find(|l| l.starts_with("reply ")).unwrap();
    assert!(reply.contains(r#""ok":false"#), "{reply}");
    assert!(!reply.contains(&boxed_token), "{reply}");
    let plain = report(&home, "plain");
    let reply = plain.iter().find(|l| l.starts_with("reply ")).unwrap();
    assert!(reply.contains(&plain_token), "{reply}");
}

/// `port: auto` under network rules that list no port at all: the port
/// chosen for the run is the one the backend may bind, so it comes up.
#[test]
fn a_sandboxed_backend_may_bind_the_port_chosen_for_it() {
    let home = Home::new();
    home.backend(
        "boxed",
        "exec /usr/bin/python3 -I -c 'import os, socket, time\ns = socket.socket()\ns.bind((\"127.0.0.1\", int(os.environ[\"PORT\"])))\ns.listen()\ntime.sleep(60)'",
        "port: auto\nready: { tcp: auto, timeout: 10s }\nsandbox:\n  filesystem: { read: [], write: [] }\n  network: { bind: [], connect: [] }\n",
    );
    let _l = home.launch();
    let out = home.run(&["start", "boxed"]);
    assert_eq!(
        out.code(),
        0,
        "{out:?}\n{:?}",
        std::fs::read_to_string(home.log("boxed"))
    );
    let status = home.status_of("boxed");
    assert_eq!(status["sandbox"], "enforced", "{status}");
    assert!(status["port"].as_u64().is_some(), "{status}");
}

/// The shipped profile (backends/python.yaml: no extra paths, an ephemeral
/// bind) on the real PyInstaller onefile build.
#[test]
fn pyinstaller_build_runs_sandboxed_with_the_shipped_profile() {
    let Some(exe) = crate::util::pyinstaller_backend() else {
        return;
    };
    let home = Home::new();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("backends/python.yaml"),
    )
    .unwrap();
    assert!(
        shipped.contains("sandbox:"),
        "the shipped manifest carries a sandbox"
    );
    let digest = berth::integrity::hash_file(&exe).unwrap().to_string();
    let manifest = shipped
        .replace("../python/dist/backend", &exe.display().to_string())
        .replace(&"0".repeat(64), &digest);
    std::fs::write(home.backends().join("python.yaml"), manifest).unwrap();
    let _l = home.launch();
    let out = home.run(&["start", "python"]);
    assert_eq!(
        out.code(),
        0,
        "{out:?}\n{:?}",
        std::fs::read_to_string(home.log("python"))
    );
    let status = home.status_of("python");
    assert_eq!(status["sandbox"], "enforced");
    let port = status["ready_json"]["port"]
        .as_u64()
        .unwrap_or_else(|| panic!("no ready line with a port: {status}"));
    let mut http = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    http.write_all(b"GET /api/status HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    http.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    // The onefile bootloader unpacked into ${tmp}, not /tmp.
    let tmp = home.path().join("run/berth/tmp/python");
    assert!(
        std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("_MEI")),
        "nothing unpacked in {}",
        tmp.display()
    );
    let pid = status["pid"].as_u64().unwrap();
    assert_eq!(home.run(&["stop", "python"]).code(), 0);
    assert!(!crate::control::home::alive(pid));
    let status = home.status_of("python");
    assert_eq!(status["state"], "stopped");
    let log = std::fs::read_to_string(home.log("python")).unwrap();
    assert!(
        log.contains(r#""status": "stopped""#),
        "stopped gracefully:\n{log}"
    );
}
