//! The control protocol's JSON Schemas, generated from the very types the
//! server reads and writes, so the published contract cannot drift from the
//! wire: `schemas/protocol.schema.json` (every request, reply and event) and
//! `schemas/status.schema.json` (`berth status --json`). `berth schema
//! --protocol` / `--status` print them; a test fails when the checked-in
//! files are stale (`scripts/schemas.sh` regenerates them).
//!
//! Requests are described as the server accepts them (serde's deserialize
//! side), replies and the status as it writes them (the serialize side:
//! every field that is always written is required, `null` included), except
//! that a field added within the protocol version (it has a serde default)
//! is optional, so replies recorded before it existed stay valid.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value};

use super::protocol::{
    ActionReply, CommandReply, Event, NullReply, PROTOCOL_VERSION, Request, SendReply, StatusReply,
    VersionReply,
};
use crate::status::BackendStatus;

/// Every reply kind: the name of its definition, what it answers (the
/// schema's description; docs/PROTOCOL.md says the same), its schema.
macro_rules! reply_kinds {
    ($($kind:ident: $answers:literal,)*) => {
        fn replies(generator: &mut SchemaGenerator) -> Vec<(&'static str, &'static str, Schema)> {
            vec![$((stringify!($kind), $answers, $kind::json_schema(generator))),*]
        }
    };
}

reply_kinds! {
    StatusReply: "The reply to `status`, and the first line of `watch`: `data` is every manifest file's status.",
    CommandReply: "The reply to `start`, `stop` and `restart`, once the backend reached the goal or settled: `data` is its status (`null` if its file left meanwhile); a no-op carries a `note`.",
    SendReply: "The reply to `send`: with `wait`, `data` is the backend's stdout JSON object that answered; else `null`.",
    ActionReply: "The reply to `action`: what the manifest action did.",
    NullReply: "The reply to `start-all`, `stop-all` and `rescan`, and the line that ends the history of `logs` (`data` is `null`); also the shape of every refusal (`ok` false, `error`).",
    VersionReply: "The reply to `version`.",
}

fn generator(settings: SchemaSettings) -> SchemaGenerator {
    settings.into_generator()
}

/// `schemas/protocol.schema.json`: a line on the socket is a `Request`, a
/// `Reply` (one of the reply kinds) or an `Event`.
pub fn protocol() -> Schema {
    let mut requests = generator(SchemaSettings::draft2020_12().for_deserialize());
    let request = Request::json_schema(&mut requests);
    let mut writes = generator(SchemaSettings::draft2020_12().for_serialize());
    let replies = replies(&mut writes);
    let mut event = Event::json_schema(&mut writes);
    event.insert(
        "description".into(),
        "A line of a stream that is not a reply: after the first reply line of `watch` (`status`, `removed`), and the lines of `logs` (`log`).".into(),
    );

    let mut defs = Map::new();
    defs.insert("Request".into(), request.to_value());
    defs.insert("Event".into(), event.to_value());
    let mut any_reply = Vec::new();
    for (name, description, mut schema) in replies {
        schema.insert("description".into(), description.into());
        schema.remove("title");
        any_reply.push(json_schema!({ "$ref": format!("#/$defs/{name}") }).to_value());
        defs.insert(name.into(), schema.to_value());
    }
    defs.insert(
        "Reply".into(),
        serde_json::json!({
            "description": "Any reply line: exactly one per request line, in order.",
            "anyOf": any_reply,
        }),
    );
    for (name, schema) in requests
        .take_definitions(true)
        .into_iter()
        .chain(writes.take_definitions(true))
    {
        // Requests and replies share no type with two shapes (a unit test
        // holds that), so a name met twice is the same schema.
        defs.entry(name).or_insert(schema);
    }

    let mut root = json_schema!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": format!("berth control protocol {PROTOCOL_VERSION}"),
        "description": "One JSON object per line on berth's control socket: a client writes Request lines, berth answers each with one Reply line; `watch` and `logs` also send Event lines. See docs/PROTOCOL.md.",
        "anyOf": [
            { "$ref": "#/$defs/Request" },
            { "$ref": "#/$defs/Reply" },
            { "$ref": "#/$defs/Event" },
        ],
    });
    root.insert("$defs".into(), Value::Object(defs));
    added_fields_are_optional(root)
}

/// `schemas/status.schema.json`: the array `berth status --json` prints,
/// its element under `$defs/BackendStatus`.
pub fn status() -> Schema {
    let mut schema = generator(SchemaSettings::draft2020_12().for_serialize())
        .into_root_schema_for::<Vec<BackendStatus>>();
    schema.insert("title".into(), "berth status --json".into());
    schema.insert(
        "description".into(),
        "One object per manifest file (superseded and invalid ones included), sorted like the tray. The same object is in the control socket's `status` reply and in `watch`'s `status` events.".into(),
    );
    added_fields_are_optional(schema)
}

/// Within a protocol version fields are only added, and what an older berth
/// of the same version wrote must stay valid: so a field added later is
/// not `required`, although berth always writes it. Such a field carries
/// `#[serde(default)]` (berth's own client reads old replies through it
/// too), which is what marks it here: every property with a `default` is
/// dropped from its object's `required`.
fn added_fields_are_optional(schema: Schema) -> Schema {
    let mut value = schema.to_value();
    drop_defaulted_from_required(&mut value);
    Schema::try_from(value).unwrap_or_else(|_| Schema::default())
}

fn drop_defaulted_from_required(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let defaulted: Vec<String> = map
                .get("properties")
                .and_then(Value::as_object)
                .map(|props| {
                    props
                        .iter()
                        .filter(|(_, p)| p.get("default").is_some())
                        .map(|(name, _)| name.clone())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Array(required)) = map.get_mut("required") {
                required.retain(|name| !defaulted.iter().any(|d| name == d.as_str()));
            }
            map.values_mut().for_each(drop_defaulted_from_required);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_defaulted_from_required),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_type_is_described_two_ways() {
        let mut requests = generator(SchemaSettings::draft2020_12().for_deserialize());
        Request::json_schema(&mut requests);
        let mut writes = generator(SchemaSettings::draft2020_12().for_serialize());
        replies(&mut writes);
        let written = writes.take_definitions(true);
        for (name, schema) in requests.take_definitions(true) {
            if let Some(other) = written.get(&name) {
                assert_eq!(&schema, other, "{name} is read and written differently");
            }
        }
    }

    #[test]
    fn a_field_added_with_a_default_is_optional_the_others_required() {
        let schema = status().to_value();
        let status = &schema["$defs"]["BackendStatus"];
        let required: Vec<&str> = status["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for (name, property) in status["properties"].as_object().unwrap() {
            let defaulted = property.get("default").is_some();
            assert_eq!(required.contains(&name.as_str()), !defaulted, "{name}");
        }
        assert!(required.contains(&"pid") && required.contains(&"token"));
    }

    #[test]
    fn every_request_and_reply_is_defined() {
        let schema = protocol().to_value();
        let defs = schema["$defs"].as_object().unwrap();
        for name in [
            "Request",
            "Reply",
            "Event",
            "StatusReply",
            "VersionReply",
            "BackendStatus",
        ] {
            assert!(defs.contains_key(name), "{name} missing");
        }
        let commands: Vec<&str> = defs["Request"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["properties"]["cmd"]["const"].as_str())
            .collect();
        assert!(
            commands.contains(&"version") && commands.contains(&"start-all"),
            "{commands:?}"
        );
    }
}
