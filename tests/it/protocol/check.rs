//! Every line the integration tests read from the control socket, and every
//! `berth status --json` they parse, is validated here against the
//! checked-in schemas (`schemas/protocol.schema.json`,
//! `schemas/status.schema.json`) by a third-party validator, the
//! `jsonschema` crate: what apps are told the protocol is, is what berth
//! sends. The harness's readers call in once (`control::home::raw`,
//! `Home::run` for `status --json`, ...), so each existing test checks what
//! it sees without saying so.
//!
//! A reply is checked against the reply kind of the request it answers
//! (`status` -> `StatusReply`, ...); a line that is not a request it knows
//! is answered by a refusal, checked against `Reply`. The lines of a
//! `watch` or `logs` stream are events (`$defs/Event`) or replies
//! ([`stream`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::{Value, json};

/// A checked-in schema, parsed.
fn schema_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/schemas.sh)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The validator of `$defs/NAME` of `schema` (its other definitions kept, so
/// its `$ref`s resolve).
fn definition(schema: &Value, name: &str) -> Validator {
    let mut root = schema.clone();
    let object = root.as_object_mut().unwrap();
    object.remove("anyOf");
    object.remove("type");
    object.remove("items");
    object.insert("$ref".into(), json!(format!("#/$defs/{name}")));
    jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("$defs/{name}: {e}"))
}

/// The reply kinds, and which request is answered by which.
const REPLIES: &[(&str, &str)] = &[
    ("status", "StatusReply"),
    ("start", "CommandReply"),
    ("stop", "CommandReply"),
    ("restart", "CommandReply"),
    ("send", "SendReply"),
    ("action", "ActionReply"),
    ("start-all", "NullReply"),
    ("stop-all", "NullReply"),
    ("rescan", "NullReply"),
    ("version", "VersionReply"),
    // The first line of `watch`; the line that ends the history of `logs`.
    ("watch", "StatusReply"),
    ("logs", "NullReply"),
];

struct Schemas {
    /// A validator for each of the protocol schema's `$defs`, by name.
    protocol: HashMap<String, Validator>,
    status: Validator,
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let protocol = schema_file("protocol.schema.json");
        let names = protocol["$defs"].as_object().unwrap().keys();
        Schemas {
            protocol: names
                .map(|name| (name.clone(), definition(&protocol, name)))
                .collect(),
            status: jsonschema::validator_for(&schema_file("status.schema.json")).unwrap(),
        }
    })
}

/// The validator of the protocol schema's `$defs/NAME`.
#[track_caller]
fn protocol_def(name: &str) -> &'static Validator {
    schemas()
        .protocol
        .get(name)
        .unwrap_or_else(|| panic!("the protocol schema has no $defs/{name}"))
}

/// Fails the calling test when `value` does not match `validator`, naming
/// the line and every mismatch.
#[track_caller]
fn assert_valid(validator: &Validator, what: &str, line: &str, value: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
        .collect();
    assert!(
        errors.is_empty(),
        "this {what} does not match the checked-in schema:\n  {}\n{}",
        line.trim_end(),
        errors.join("\n")
    );
}

#[track_caller]
fn parse(what: &str, line: &str) -> Value {
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("this {what} is not one JSON value ({e}):\n  {line:?}"))
}

/// The reply kind answering `request` (a raw request line): `Reply` (any)
/// for a line that is no request berth knows.
pub fn reply_kind(request: &[u8]) -> &'static str {
    let cmd = serde_json::from_slice::<Value>(request)
        .ok()
        .and_then(|v| v.get("cmd").and_then(Value::as_str).map(str::to_owned));
    REPLIES
        .iter()
        .find(|(c, _)| Some(*c) == cmd.as_deref())
        .map_or("Reply", |(_, kind)| kind)
}

/// Checks one reply `line` read from the socket after sending `request`;
/// returns it parsed.
#[track_caller]
pub fn reply(request: &[u8], line: &str) -> Value {
    let kind = reply_kind(request);
    let value = parse("reply", line);
    assert_valid(protocol_def(kind), &format!("{kind} line"), line, &value);
    value
}

/// Checks one event line (`{"event": ...}`) against `$defs/Event`.
#[track_caller]
pub fn event(line: &str) -> Value {
    let value = parse("event", line);
    assert_valid(protocol_def("Event"), "event", line, &value);
    value
}

/// Checks one line of a `watch` or `logs` stream opened by `request`: an
/// event, or a reply (its first line, the end of a history, a closing
/// refusal).
#[track_caller]
pub fn stream(request: &[u8], line: &str) -> Value {
    let value = parse("stream line", line);
    if value.get("event").is_some() {
        event(line)
    } else {
        reply(request, line)
    }
}

/// Checks every line of `text`, all read after sending `request` (`b""`
/// for lines berth sends on its own, like an idle connection's close).
#[track_caller]
pub fn lines(request: &[u8], text: &str) {
    for line in text.lines() {
        reply(request, line);
    }
}

/// Checks one request line against `$defs/Request`.
#[track_caller]
pub fn request(line: &str) -> Value {
    let value = parse("request", line);
    assert_valid(protocol_def("Request"), "request", line, &value);
    value
}

/// Checks the output of `berth status --json`; returns the array.
#[track_caller]
pub fn status_json(text: &str) -> Vec<Value> {
    let value = parse("`status --json` output", text);
    assert_valid(&schemas().status, "`status --json` output", text, &value);
    serde_json::from_value(value).unwrap()
}

/// Checks one line of `berth status --watch --json`: the status array
/// first, then one event per line.
#[track_caller]
pub fn watch_json(line: &str, first: bool) -> Value {
    if first {
        Value::Array(status_json(line))
    } else {
        event(line)
    }
}

/// Checks what a finished `berth ARGS` printed, when it is one of the
/// outputs the schemas describe (`status --json` that succeeded, with or
/// without `--watch`).
#[track_caller]
pub fn cli(args: &[&str], output: &std::process::Output) {
    let json_status = args.first() == Some(&"status") && args.contains(&"--json");
    if !json_status || !output.status.success() {
        return;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    if args.contains(&"--watch") {
        for (n, line) in text.lines().enumerate() {
            watch_json(line, n == 0);
        }
    } else {
        status_json(&text);
    }
}
