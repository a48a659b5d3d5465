//! `actions`: the manifest's extra items of a backend's submenu.
//!
//! Each action is one of three kinds (`open` a URL or path, `send` one JSON
//! line to stdin, `restart` with extra arguments). Like every other field
//! they are checked while serde visits them, so an unknown variable, a
//! duplicate label or a bad URL is reported with its line, column and field.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::scalar::{Label, Scalar, Text};
use crate::vars::{Template, TokenUse};

/// Most actions one manifest may declare.
pub const MAX_ACTIONS: usize = 64;

/// Longest line `send` may write to a backend's stdin, newline excluded.
pub const MAX_SEND_LINE: usize = 64 * 1024;

/// One validated action.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub label: String,
    pub kind: ActionKind,
}

/// What an action does.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// Open this URL or absolute path with `xdg-open`, variables expanded
    /// and the result checked.
    Open(OpenTarget),
    /// Write this compact JSON text plus `\n` to the backend's stdin.
    Send(String),
    /// Restart with these arguments appended to the manifest's `args`.
    Restart(Vec<String>),
}

/// The target of an `open` action: an http(s) URL or an absolute path.
///
/// The values variables take come from the backend (its ready line), which
/// is untrusted: a port of `1@evil.example` would move the URL to another
/// host, a whole target of `file:///...` or `--version` would open what the
/// manifest never named. So the target is checked again after expansion
/// ([`OpenTarget::resolve`]): a URL keeps the scheme, user and host the
/// manifest wrote (a variable may fill the port or the path, never the
/// host), a path stays absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTarget {
    template: Template,
    written: Written,
}

/// What the manifest fixed of an `open` target, before any variable.
#[derive(Debug, Clone, PartialEq)]
enum Written {
    /// An http(s) URL: its scheme, user, password and host, and its port
    /// when the manifest wrote one (not a variable).
    Url {
        origin: url::Url,
        port_is_variable: bool,
    },
    /// An absolute path, or a target that is one variable's value: that
    /// value must be an absolute path.
    Path,
}

/// Why an `open` target was refused after expansion, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenRefused {
    #[error(transparent)]
    NotKnown(#[from] crate::vars::NotKnown),
    #[error("refused to open {target:?}: not a valid URL ({reason})")]
    BadUrl { target: String, reason: String },
    #[error("refused to open {target:?}: its {part} is {found:?}, the manifest wrote {written:?}")]
    Moved {
        target: String,
        part: &'static str,
        found: String,
        written: String,
    },
    #[error(
        "refused to open {target:?}: neither an http(s) URL of the manifest's host nor an absolute path"
    )]
    NotAPath { target: String },
}

impl OpenTarget {
    /// The template as parsed.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The target with its variables expanded, checked against what the
    /// manifest wrote; a URL comes back in its normalised form, which is
    /// what was checked and what the opener gets.
    pub fn resolve(&self, values: &crate::vars::Values<'_>) -> Result<String, OpenRefused> {
        let target = self.template.expand(values)?;
        match &self.written {
            Written::Path if target.starts_with('/') => Ok(target),
            Written::Path => Err(OpenRefused::NotAPath { target }),
            Written::Url {
                origin,
                port_is_variable,
            } => {
                let url = url::Url::parse(&target).map_err(|e| OpenRefused::BadUrl {
                    target: target.clone(),
                    reason: e.to_string(),
                })?;
                let port = |u: &url::Url| u.port().map(|p| p.to_string()).unwrap_or_default();
                let parts: [(&'static str, String, String); 5] = [
                    (
                        "host",
                        url.host_str().unwrap_or_default().into(),
                        origin.host_str().unwrap_or_default().into(),
                    ),
                    ("scheme", url.scheme().into(), origin.scheme().into()),
                    ("user", url.username().into(), origin.username().into()),
                    (
                        "password",
                        url.password().unwrap_or_default().into(),
                        origin.password().unwrap_or_default().into(),
                    ),
                    (
                        "port",
                        port(&url),
                        if *port_is_variable {
                            port(&url)
                        } else {
                            port(origin)
                        },
                    ),
                ];
                match parts
                    .into_iter()
                    .find(|(_, found, written)| found != written)
                {
                    Some((part, found, written)) => Err(OpenRefused::Moved {
                        target,
                        part,
                        found,
                        written,
                    }),
                    None => Ok(url.into()),
                }
            }
        }
    }
}

impl Scalar for OpenTarget {
    const EXPECTING: &'static str = "an http(s) URL or an absolute path";
    fn parse(text: &str) -> Result<Self, String> {
        // The one field besides a health header that may carry the token:
        // the URL goes to the desktop's opener, not to a log.
        let template = Template::parse_for(text, TokenUse::Allowed)?;
        let url = ["http://", "https://"]
            .iter()
            .find_map(|scheme| Some((*scheme, text.strip_prefix(scheme)?)));
        let written = match url {
            Some((scheme, rest)) => {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                if authority.is_empty() || text.contains(char::is_whitespace) {
                    return Err(format!("invalid URL {text:?}: no host"));
                }
                // A variable may stand for the port (after the last ':'),
                // nowhere else in the authority.
                let (fixed, port_is_variable) = match authority.rsplit_once(':') {
                    Some((host, port)) if is_one_variable(port) => (host, true),
                    _ => (authority, false),
                };
                if fixed.contains("${") {
                    return Err(format!(
                        "invalid URL {text:?}: a variable may fill the port or the path, not the host"
                    ));
                }
                let origin = url::Url::parse(&format!("{scheme}{fixed}/"))
                    .map_err(|e| format!("invalid URL {text:?}: {e}"))?;
                Written::Url {
                    origin,
                    port_is_variable,
                }
            }
            None if text.starts_with('/') || text.starts_with("${") => Written::Path,
            None => {
                return Err(format!(
                    "invalid target {text:?}: expected an http:// or https:// URL or an absolute path"
                ));
            }
        };
        Ok(Self { template, written })
    }
}

/// `text` is exactly one `${...}`.
fn is_one_variable(text: &str) -> bool {
    text.strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .is_some_and(|name| !name.contains(['{', '}', '$']))
}

super::scalar::scalar!(OpenTarget, "OpenTarget", {
    "type": "string",
    // An authority without variables but a port, or an absolute path, or a
    // target that is a variable (which must expand to an absolute path).
    "pattern": "^(https?://([^/?#\\s$]|\\$(?!\\{))+(:\\$\\{[^{}$]*\\})?([/?#]\\S*)?|/.*|\\$\\{.*)$",
    // The variables, as `Template` checks them.
    "allOf": [{ "pattern": "^([^$]|\\$(?!\\{)|\\$\\{(id|pid|port|token|ready\\.[A-Za-z0-9_-]+)\\})*$" }],
    "description": "An http(s) URL or an absolute path, opened with xdg-open; may use ${id}, ${pid}, ${ready.KEY}, ${port} (port: auto) and ${token} (token: true), in a URL only for the port or the path. The expanded target must keep the manifest's host, or be an absolute path."
});

/// The JSON value of a `send` action, kept as its compact text.
#[derive(Debug, Clone, PartialEq)]
pub struct SendLine(pub String);

impl<'de> Deserialize<'de> for SendLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let text = value.to_string();
        if text.len() > MAX_SEND_LINE {
            return Err(de::Error::custom(format_args!(
                "the JSON line is {} bytes, over the limit of {MAX_SEND_LINE} (64 KiB)",
                text.len()
            )));
        }
        Ok(Self(text))
    }
}

impl JsonSchema for SendLine {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("SendLine")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Any JSON value, written to the backend's stdin as one compact line."
        })
    }
}

/// The fields of one action, before the one-kind check.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with label and one of open, send or restart"
)]
pub struct RawActionFields {
    /// The menu item's label; unique within the manifest.
    pub label: Label,
    /// Open an http(s) URL or an absolute path with xdg-open.
    pub open: Option<OpenTarget>,
    /// Write one JSON line to the backend's stdin.
    pub send: Option<SendLine>,
    /// Restart with these arguments appended to `args`, for that run only.
    pub restart: Option<Vec<Text>>,
}

/// One action: a label and exactly one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct RawAction(pub RawActionFields);

impl<'de> Deserialize<'de> for RawAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAction;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping with label and one of open, send or restart")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAction, A::Error> {
                let f = RawActionFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let kinds = [f.open.is_some(), f.send.is_some(), f.restart.is_some()];
                match kinds.iter().filter(|k| **k).count() {
                    1 => Ok(RawAction(f)),
                    0 => Err(de::Error::custom(format_args!(
                        "action {:?} does nothing: give one of open, send or restart",
                        f.label.0
                    ))),
                    _ => Err(de::Error::custom(format_args!(
                        "action {:?} has more than one of open, send and restart: give only one",
                        f.label.0
                    ))),
                }
            }
        }
        d.deserialize_map(V)
    }
}

impl JsonSchema for RawAction {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Action")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = RawActionFields::json_schema(generator);
        schema.insert("required".to_owned(), serde_json::json!(["label"]));
        schema.insert(
            "oneOf".to_owned(),
            serde_json::json!([
                { "required": ["open"] },
                { "required": ["send"] },
                { "required": ["restart"] }
            ]),
        );
        schema
    }
}

/// `actions`: at most [`MAX_ACTIONS`], labels unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawActions(pub Vec<RawAction>);

impl<'de> Deserialize<'de> for RawActions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawActions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of actions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawActions, A::Error> {
                let mut out = Vec::new();
                let mut labels = HashSet::new();
                while let Some(action) = seq.next_element::<RawAction>()? {
                    if out.len() == MAX_ACTIONS {
                        return Err(de::Error::custom(format_args!(
                            "more than {MAX_ACTIONS} actions"
                        )));
                    }
                    if !labels.insert(action.0.label.0.clone()) {
                        return Err(de::Error::custom(format_args!(
                            "duplicate action label {:?}: labels must be unique",
                            action.0.label.0
                        )));
                    }
                    out.push(action);
                }
                Ok(RawActions(out))
            }
        }
        d.deserialize_seq(V)
    }
}

impl JsonSchema for RawActions {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Actions")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "maxItems": MAX_ACTIONS,
            "items": generator.subschema_for::<RawAction>(),
            "description": "Extra items of the backend's submenu, in this order; labels unique."
        })
    }
}

impl From<RawAction> for Action {
    fn from(raw: RawAction) -> Self {
        let f = raw.0;
        // The visitor guarantees exactly one kind.
        let kind = match (f.open, f.send, f.restart) {
            (Some(o), _, _) => ActionKind::Open(o),
            (None, Some(s), _) => ActionKind::Send(s.0),
            (None, None, r) => {
                ActionKind::Restart(r.unwrap_or_default().into_iter().map(|t| t.0).collect())
            }
        };
        Self {
            label: f.label.0,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<Action>, String> {
        serde_yaml::from_str::<RawActions>(yaml)
            .map(|a| a.0.into_iter().map(Action::from).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_kind_parses() {
        let actions = parse(
            "- { label: Open web UI, open: \"http://127.0.0.1:${ready.port}/\" }\n\
             - { label: Reindex, send: { action: reindex } }\n\
             - { label: Debug, restart: [\"--debug\"] }\n\
             - { label: Page, open: \"/tmp/${id}.html\" }\n",
        )
        .unwrap();
        assert_eq!(actions.len(), 4);
        assert!(matches!(&actions[0].kind, ActionKind::Open(t) if t.template().needs_ready()));
        assert_eq!(
            actions[1].kind,
            ActionKind::Send(r#"{"action":"reindex"}"#.into())
        );
        assert_eq!(actions[2].kind, ActionKind::Restart(vec!["--debug".into()]));
    }

    #[test]
    fn bad_actions_are_one_line_errors_with_position() {
        let err = parse("- { label: A, open: \"http://x/${nope}\" }\n").unwrap_err();
        assert!(err.contains("unknown variable `${nope}`"), "{err}");
        assert!(err.contains("line 1"), "{err}");
        // v3: `${port}` exists only with `port: auto`.
        let err = parse("- { label: A, open: \"http://x/${port}\" }\n").unwrap_err();
        assert!(err.contains("`${port}` needs `port: auto`"), "{err}");
        let err = parse("- { label: A, send: 1 }\n- { label: A, send: 2 }\n").unwrap_err();
        assert!(err.contains("duplicate action label \"A\""), "{err}");
        let err = parse("- { label: A, open: \"ftp://x\" }\n").unwrap_err();
        assert!(err.contains("invalid target"), "{err}");
        let err = parse("- { label: A, open: \"http:///x\" }\n").unwrap_err();
        assert!(err.contains("no host"), "{err}");
        let err = parse("- { label: A }\n").unwrap_err();
        assert!(err.contains("does nothing"), "{err}");
        let err = parse("- { label: A, send: 1, restart: [] }\n").unwrap_err();
        assert!(err.contains("more than one"), "{err}");
        let err = parse("- { label: A, opne: /x }\n").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn an_open_target_keeps_the_manifests_host_after_expansion() {
        let json = serde_json::json!({
            "port": "1@evil.example", "good": 4321, "url": "file:///etc/passwd",
            "flag": "--version", "path": "/srv/x", "host": "evil.example"
        });
        let values = crate::vars::Values {
            id: "web",
            pid: Some(7),
            ready_json: json.as_object(),
            ready_port: None,
            port: None,
            token: None,
        };
        let resolve = |t: &str| OpenTarget::parse(t).unwrap().resolve(&values);
        assert_eq!(
            resolve("http://127.0.0.1:${ready.good}/ui?id=${id}").unwrap(),
            "http://127.0.0.1:4321/ui?id=web"
        );
        assert_eq!(resolve("${ready.path}").unwrap(), "/srv/x");
        assert_eq!(
            resolve("http://localhost/${ready.port}").unwrap(),
            "http://localhost/1@evil.example"
        );
        let err = resolve("http://127.0.0.1:${ready.port}/ui").unwrap_err();
        assert!(
            matches!(&err, OpenRefused::Moved { part: "host", found, .. } if found == "evil.example"),
            "{err}"
        );
        assert!(matches!(
            resolve("${ready.url}"),
            Err(OpenRefused::NotAPath { .. })
        ));
        assert!(matches!(
            resolve("${ready.flag}"),
            Err(OpenRefused::NotAPath { .. })
        ));
        assert!(matches!(
            resolve("http://127.0.0.1:8080/${ready.flag}"),
            Ok(u) if u == "http://127.0.0.1:8080/--version"
        ));
        let err = OpenTarget::parse("http://${ready.host}/").unwrap_err();
        assert!(err.contains("not the host"), "{err}");
        let err = OpenTarget::parse("http://a${id}:80/").unwrap_err();
        assert!(err.contains("not the host"), "{err}");
        assert!(OpenTarget::parse("http://[::1]:${ready.port}/").is_ok());
    }

    #[test]
    fn at_most_64_actions() {
        let many: String = (0..=MAX_ACTIONS)
            .map(|i| format!("- {{ label: a{i}, send: {i} }}\n"))
            .collect();
        assert!(parse(&many).unwrap_err().contains("more than 64 actions"));
    }

    #[test]
    fn a_send_line_over_64_kib_is_refused() {
        let big = format!(
            "- {{ label: A, send: \"{}\" }}\n",
            "x".repeat(MAX_SEND_LINE)
        );
        assert!(parse(&big).unwrap_err().contains("over the limit"));
    }
}
