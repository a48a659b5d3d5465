//! `berth schema --protocol / --status` print the checked-in schemas, and
//! the schemas reject what berth would never send.

use std::path::Path;

use serde_json::{Value, json};

use crate::control::home::Home;

fn printed(args: &[&str]) -> String {
    let out = Home::new().run(args);
    assert_eq!(out.code(), 0, "{out:?}");
    out.stdout()
}

#[track_caller]
fn same_as_checked_in(args: &[&str], file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        printed(args) == checked_in,
        "{file} is stale (a request, reply, event or status type changed): \
         run `scripts/schemas.sh` and commit what it writes (a field added to \
         a reply, event or status needs #[serde(default)], so replies recorded \
         before it stay valid)"
    );
}

#[test]
fn the_checked_in_protocol_schema_is_the_generated_one() {
    same_as_checked_in(&["schema", "--protocol"], "schemas/protocol.schema.json");
}

#[test]
fn the_checked_in_status_schema_is_the_generated_one() {
    same_as_checked_in(&["schema", "--status"], "schemas/status.schema.json");
}

#[test]
fn plain_schema_is_still_the_manifest_schema() {
    let text = printed(&["schema"]);
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema["title"], "berth backend manifest v1");
    let out = Home::new().run(&["schema", "--protocol", "--status"]);
    assert_eq!(out.code(), 2, "{out:?}");
}

fn status(state: &str) -> Value {
    json!({
        "id": "python", "name": "Python", "version": "1.0.0", "path": "/b/backend",
        "error": null, "status_line": null, "signal": null, "file": "/b/python.yaml",
        "state": state, "pid": 4242, "uptime_s": 3, "rss_bytes": 1000, "exit_code": null,
        "cpu_percent": 0.5, "ready": true, "pending_restart": false, "restarts": 0,
        "args": [], "healthy": null, "last_stderr": null, "signed_by": null,
        "sandbox": null, "actions": [{"label": "Ping", "available": true}],
        "ready_json": {"port": 5000}, "port": null, "token": null
    })
}

fn valid(kind: &str, value: &Value) -> bool {
    let line = value.to_string();
    let request = match kind {
        "StatusReply" => br#"{"cmd":"status"}"#.as_slice(),
        "CommandReply" => br#"{"cmd":"start","id":"python"}"#,
        "VersionReply" => br#"{"cmd":"version"}"#,
        _ => b"?",
    };
    std::panic::catch_unwind(|| super::check::reply(request, &line)).is_ok()
}

// A schema that accepts anything would make every other check vacuous.
#[test]
fn the_schemas_reject_what_berth_never_sends() {
    assert!(valid(
        "StatusReply",
        &json!({"ok": true, "data": [status("running")]})
    ));
    assert!(valid(
        "CommandReply",
        &json!({"ok": true, "data": null, "note": "x"})
    ));
    assert!(valid("StatusReply", &json!({"ok": false, "error": "no"})));
    assert!(valid(
        "VersionReply",
        &json!({"ok": true, "data": {"berth": "0.1.0", "protocol": 1}})
    ));

    assert!(!valid(
        "StatusReply",
        &json!({"ok": true, "data": [status("sleeping")]})
    ));
    let mut missing = status("running");
    missing.as_object_mut().unwrap().remove("pid");
    assert!(!valid(
        "StatusReply",
        &json!({"ok": true, "data": [missing]})
    ));
    assert!(
        !valid("StatusReply", &json!({"ok": true})),
        "success without data"
    );
    assert!(!valid(
        "StatusReply",
        &json!({"ok": false, "data": [], "error": "x"})
    ));
    assert!(
        !valid("StatusReply", &json!({"ok": false})),
        "refusal without error"
    );
    assert!(!valid(
        "VersionReply",
        &json!({"ok": true, "data": {"berth": "0.1.0"}})
    ));
    assert!(!valid(
        "CommandReply",
        &json!({"ok": true, "data": [status("running")]})
    ));

    let event =
        |value: Value| std::panic::catch_unwind(|| super::check::event(&value.to_string())).is_ok();
    assert!(event(
        json!({"event": "status", "backend": status("running")})
    ));
    assert!(event(json!({"event": "removed", "file": "/b/web.yaml"})));
    assert!(event(
        json!({"event": "log", "id": "web", "stream": "stderr", "line": "x", "run": null})
    ));
    assert!(!event(json!({"event": "status", "backend": {"id": "web"}})));
    assert!(!event(json!({"event": "removed"})));
    assert!(!event(
        json!({"event": "log", "id": "web", "stream": "stdin", "line": "x", "run": 1})
    ));
    assert!(!event(json!({"event": "moved", "file": "/b/web.yaml"})));
    let logs = |line: &str| {
        let request = br#"{"cmd":"logs","id":"web"}"#;
        std::panic::catch_unwind(|| super::check::stream(request, line)).is_ok()
    };
    assert!(logs(
        r#"{"event":"log","id":"web","stream":"stdout","line":"x","run":7}"#
    ));
    assert!(logs(r#"{"ok":true,"data":null}"#), "the end of the history");
    assert!(!logs(r#"{"ok":true,"data":[]}"#));

    let request = |line: &str| std::panic::catch_unwind(|| super::check::request(line)).is_ok();
    assert!(request(
        r#"{"cmd":"send","id":"p","line":{"a":1},"wait":{"key":"id","value":"7"}}"#
    ));
    assert!(request(r#"{"cmd":"version"}"#));
    assert!(request(
        r#"{"cmd":"logs","id":"web","follow":true,"lines":5}"#
    ));
    assert!(!request(r#"{"cmd":"watch","id":"web"}"#));
    assert!(!request(r#"{"cmd":"version","id":"p"}"#));
    assert!(!request(r#"{"cmd":"start"}"#));
    assert!(!request(r#"{"cmd":"fly"}"#));
}
