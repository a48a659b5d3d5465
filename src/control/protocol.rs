//! The wire format of the control socket: one JSON object per line each way.
//!
//! A request is `{"cmd": "status"}` or `{"cmd": "start", "id": "python"}`; a
//! reply is `{"ok": true, "data": ...}` or `{"ok": false, "error": "..."}`.
//! Both sides of the socket use these types, so the client and the server
//! cannot drift apart. Replies may carry a `note` (e.g. "python is already
//! running") that the client prints on stderr; old clients ignore it.
//!
//! These types are also the protocol's published contract: the JSON Schemas
//! of `berth schema --protocol` are generated from them ([`super::schema`])
//! and docs/PROTOCOL.md describes them. Within [`PROTOCOL_VERSION`], fields
//! and requests are only ever added.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::BackendStatus;

use crate::verb::Verb;

/// The protocol's version, `version`'s `protocol`: raised only when a
/// field or request is renamed or removed (additions keep it).
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the server reads, without its newline: a `send`
/// may carry a line of the documented 64 KiB
/// ([`crate::manifest::actions::MAX_SEND_LINE`]), so the request around it
/// (`cmd`, `id`, `wait`, `timeout_ms`) gets room of its own.
pub const MAX_LINE: usize = crate::manifest::actions::MAX_SEND_LINE + ENVELOPE;

/// Room for the request around a `send`'s line.
const ENVELOPE: usize = 4 * 1024;

/// One request line.
///
/// On the wire each verb is its own `cmd` (`{"cmd": "start", "id": ...}`);
/// in berth it is one [`Request::Command`] carrying the [`Verb`] as the user
/// gave it. `Wire` is the line's exact shape, converted both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(from = "Wire", into = "Wire")]
#[schemars(description = "One request line: `cmd` names the request; no other field is accepted.")]
pub enum Request {
    /// Every manifest file: `data` is the array of `BackendStatus`.
    Status,
    /// A verb on `id`; the reply comes once it is running (start, restart),
    /// its process group is gone (stop), or it has settled otherwise.
    Command { id: String, verb: Verb },
    /// One line for a backend's stdin (v2).
    Send(SendRequest),
    /// Run `id`'s manifest action `label`, as the tray does (v2).
    Action { id: String, label: String },
    /// Start every backend that can start; replies at once.
    StartAll,
    /// Stop every backend in parallel; replies once all are stopped.
    StopAll,
    /// Read the backends folder again (like SIGHUP).
    Rescan,
    /// berth's version and the protocol's (v3): `data` is [`Version`].
    Version,
    /// Keep the connection and hear every change (v3): the first line is
    /// the `status` reply, then one [`Event::Status`] or [`Event::Removed`]
    /// line per change. See [`Event`] for what counts as a change.
    Watch,
    /// A backend's output (v3): see [`LogsRequest`].
    Logs(LogsRequest),
}

/// A request line as written: one `cmd` per verb, `args` left out when
/// empty (no ARGS: the manifest's `args` alone). Its doc comments are the
/// schema's descriptions (`berth schema --protocol`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
enum Wire {
    /// Every manifest file; `data` is the status array.
    Status,
    /// Start `id` and answer once it is running or has settled otherwise.
    Start {
        id: String,
        /// Appended to the manifest's `args` for this run only.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
    /// Stop `id` and answer once its processes are gone.
    Stop { id: String },
    /// Stop then start `id`; answered like `start`.
    Restart {
        id: String,
        /// Appended to the manifest's `args` for this run only.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
    /// Read the feed of `id`'s `update` section; the reply's status shows
    /// what it offers (`update.available`) and its note says it in words.
    CheckUpdate { id: String },
    /// Install the version `id`'s feed offers and switch to it: answered
    /// once it runs on it (it was running) or is installed (it was not).
    Update { id: String },
    /// Go back to the version of `id` kept before the installed one.
    Rollback { id: String },
    /// Write one JSON line to `id`'s stdin, optionally waiting for its answer.
    Send(SendRequest),
    /// Run `id`'s manifest action `label`, as the tray does.
    Action { id: String, label: String },
    /// Start every backend that can start; answered at once.
    StartAll,
    /// Stop every backend; answered once all are stopped.
    StopAll,
    /// Read the backends folders again.
    Rescan,
    /// berth's version and the protocol's.
    Version,
    /// Keep the connection: the `status` reply first, then one `status` or
    /// `removed` event per change.
    Watch,
    /// `id`'s output: its last `lines` log lines (default 10) as `log`
    /// events, then a reply with `data` null; with `follow`, every new line
    /// after it as a `log` event, until the client hangs up.
    Logs(LogsRequest),
}

impl From<Wire> for Request {
    fn from(wire: Wire) -> Self {
        let command = |id, verb| Self::Command { id, verb };
        match wire {
            Wire::Status => Self::Status,
            Wire::Start { id, args } => command(id, Verb::Start { args }),
            Wire::Stop { id } => command(id, Verb::Stop),
            Wire::Restart { id, args } => command(id, Verb::Restart { args }),
            Wire::CheckUpdate { id } => command(id, Verb::CheckUpdate),
            Wire::Update { id } => command(id, Verb::Update),
            Wire::Rollback { id } => command(id, Verb::Rollback),
            Wire::Send(send) => Self::Send(send),
            Wire::Action { id, label } => Self::Action { id, label },
            Wire::StartAll => Self::StartAll,
            Wire::StopAll => Self::StopAll,
            Wire::Rescan => Self::Rescan,
            Wire::Version => Self::Version,
            Wire::Watch => Self::Watch,
            Wire::Logs(logs) => Self::Logs(logs),
        }
    }
}

impl From<Request> for Wire {
    fn from(request: Request) -> Self {
        match request {
            Request::Status => Self::Status,
            Request::Command { id, verb } => match verb {
                Verb::Start { args } => Self::Start { id, args },
                Verb::Stop => Self::Stop { id },
                Verb::Restart { args } => Self::Restart { id, args },
                Verb::CheckUpdate => Self::CheckUpdate { id },
                Verb::Update => Self::Update { id },
                Verb::Rollback => Self::Rollback { id },
            },
            Request::Send(send) => Self::Send(send),
            Request::Action { id, label } => Self::Action { id, label },
            Request::StartAll => Self::StartAll,
            Request::StopAll => Self::StopAll,
            Request::Rescan => Self::Rescan,
            Request::Version => Self::Version,
            Request::Watch => Self::Watch,
            Request::Logs(logs) => Self::Logs(logs),
        }
    }
}

/// Write `line` as one compact JSON line to `id`'s stdin (v2); with `wait`,
/// the reply carries the first later stdout JSON object whose `key` renders
/// as `value`, or an error after `timeout_ms` (default 5 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub id: String,
    pub line: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `{"cmd": "logs", "id": ..., "follow": bool, "lines": N}` (v3): the last
/// `lines` lines of `id`'s log (default [`LogsRequest::DEFAULT_LINES`]) as
/// [`Event::Log`] lines, oldest first, then one `{"ok": true, "data": null}`
/// reply line that ends the history. Without `follow` that reply ends the
/// request (the connection takes the next one); with `follow` every new
/// line of the backend follows it as an [`Event::Log`], across restarts
/// and rotations, until the client hangs up. An unknown id gets the usual
/// error reply instead of any of this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsRequest {
    pub id: String,
    #[serde(default)]
    pub follow: bool,
    #[serde(default = "LogsRequest::default_lines")]
    pub lines: usize,
}

impl LogsRequest {
    /// Lines of history when the request names none (as `tail`).
    pub const DEFAULT_LINES: usize = 10;

    fn default_lines() -> usize {
        Self::DEFAULT_LINES
    }
}

/// `--wait KEY=VALUE` of `berth send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    pub key: String,
    pub value: String,
}

impl Request {
    /// Parses one line (without its newline) into a request, or the one-line
    /// reason it is not one.
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_owned())?;
        super::unique_keys::check(text)?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("request is not JSON: {e}"))?;
        let Some(cmd) = value.get("cmd") else {
            return Err(r#"request has no "cmd" field"#.to_owned());
        };
        let Some(cmd) = cmd.as_str().map(str::to_owned) else {
            return Err(r#""cmd" must be a string"#.to_owned());
        };
        let request: Self = serde_json::from_value(value.clone()).map_err(|e| {
            let msg = e.to_string();
            if msg.starts_with("unknown variant") {
                format!("unknown command {cmd:?}")
            } else {
                format!("bad {cmd:?} request: {msg}")
            }
        })?;
        // serde ignores extra fields beside the tag of a unit variant (struct
        // variants deny them themselves); a typo like `"ID"` must not pass.
        if let Some(object) = value.as_object()
            && let Some(extra) = object.keys().find(|k| {
                *k != "cmd" && !(k.as_str() == "id" && request.id().is_some()) && request.is_unit()
            })
        {
            return Err(format!("bad {cmd:?} request: unknown field `{extra}`"));
        }
        Ok(request)
    }

    /// The backend the request is about, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Command { id, .. }
            | Self::Send(SendRequest { id, .. })
            | Self::Action { id, .. }
            | Self::Logs(LogsRequest { id, .. }) => Some(id),
            Self::Status
            | Self::StartAll
            | Self::StopAll
            | Self::Rescan
            | Self::Version
            | Self::Watch => None,
        }
    }

    fn is_unit(&self) -> bool {
        matches!(
            self,
            Self::Status
                | Self::StartAll
                | Self::StopAll
                | Self::Rescan
                | Self::Version
                | Self::Watch
                | Self::Command {
                    verb: Verb::Stop | Verb::CheckUpdate | Verb::Update | Verb::Rollback,
                    ..
                }
        )
    }

    /// The request as one line, newline included.
    pub fn to_line(&self) -> String {
        // Serializing a plain enum of strings cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// One reply line: `{"ok": true, "data": ...}`, with a `note` worth telling
/// the user even though the request succeeded, or `{"ok": false, "error":
/// "..."}`. `T` is what the request's `data` is (see the aliases below);
/// both sides use this type, and the protocol's schema is derived from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = reply_shape)]
pub struct Reply<T> {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What the request answers; absent when `ok` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    /// Why the request was refused or failed, in one line; only when `ok`
    /// is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Worth telling the user although the request succeeded (e.g.
    /// "python is already running").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What [`Reply::ok`] and [`Reply::error`] guarantee, in the schema: a
/// success always has `data` (`null` included), a refusal an `error` and
/// never `data`.
fn reply_shape(schema: &mut schemars::Schema) {
    schema.insert(
        "oneOf".into(),
        serde_json::json!([
            { "properties": { "ok": { "const": true } }, "required": ["data"] },
            { "properties": { "ok": { "const": false }, "data": false }, "required": ["error"] }
        ]),
    );
}

/// `status`: every manifest file.
pub type StatusReply = Reply<Vec<BackendStatus>>;
/// `start`, `stop`, `restart`: the backend's status once it reached the
/// goal (`null` if it left the catalog meanwhile).
pub type CommandReply = Reply<Option<BackendStatus>>;
/// `send`: with `wait`, the stdout JSON object that answered; else `null`.
pub type SendReply = Reply<Option<serde_json::Map<String, serde_json::Value>>>;
/// `action`: see [`Acted`].
pub type ActionReply = Reply<Acted>;
/// `start-all`, `stop-all`, `rescan`, and every refusal: `data` is `null`.
pub type NullReply = Reply<()>;
/// `version`: see [`Version`].
pub type VersionReply = Reply<Version>;

/// `version`'s `data`, e.g. `{"berth": "0.1.0", "protocol": 1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Version {
    /// The launcher's own version (semver).
    pub berth: String,
    /// The protocol this launcher speaks (`PROTOCOL_VERSION`): 1, raised
    /// only when something is renamed or removed.
    #[schemars(range(min = 1))]
    pub protocol: u32,
}

impl Version {
    /// This build's versions.
    pub fn current() -> Self {
        Self {
            berth: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: PROTOCOL_VERSION,
        }
    }
}

/// `logs`: the line that ends its history (`data` is `null`); see
/// [`LogsRequest`].
pub type LogsEnd = NullReply;

/// One line of a stream that is not a reply (v3): what `watch` and
/// `logs` send after their first reply line.
///
/// `watch` sends [`Event::Status`] when anything of a file's status changed
/// except its sampled figures: `uptime_s`, `cpu_percent` and `rss_bytes`
/// move while a backend merely runs, so a change of those alone sends
/// nothing (a still backend is silent); a line that is sent carries their
/// values of that moment. Changes closer together than the watcher reads
/// them may arrive as one line with the latest status: the last line about
/// a file is always its current status.
///
/// A client that falls behind by more than [`WATCH_BACKLOG`] bytes is sent
/// the error reply `{"ok": false, "error": "<what> fell behind by over 1
/// MiB; closing"}` (best effort) and closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// `{"event": "status", "backend": {...}}`: the complete status of the
    /// file that changed, the same object as in `status`.
    Status { backend: Box<BackendStatus> },
    /// `{"event": "removed", "file": "..."}`: the manifest file is gone
    /// from every backends folder.
    Removed { file: String },
    /// `{"event": "log", "id": ..., "stream": "stdout", "line": ..., "run":
    /// <pid>}`: one line a backend wrote.
    Log(LogLine),
}

/// How far a streaming client may fall behind before it is closed.
pub const WATCH_BACKLOG: usize = 1024 * 1024;

/// One line of a backend's output (the `log` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogLine {
    pub id: String,
    pub stream: Stream,
    /// The line without its newline (invalid UTF-8 replaced by U+FFFD).
    pub line: String,
    /// The pid of the run that wrote it; `null` for a line of the log's
    /// history written before this launcher started (its file does not
    /// say which process wrote it).
    pub run: Option<u32>,
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The word in the log file and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

impl Event {
    /// The event as one line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| {
            // Only a non-finite float could fail; say so instead of hanging up.
            r#"{"ok":false,"error":"event could not be encoded"}"#.to_owned()
        });
        line.push('\n');
        line
    }
}

/// What a manifest action did (`action`'s `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Acted {
    /// An `open` action: the target handed to the desktop's opener.
    Opened { opened: String },
    /// A `send` action: its line was queued (`true`).
    Sent { sent: bool },
    /// A `restart` action: answered like `restart`.
    Restarted(Option<Box<BackendStatus>>),
}

impl<T: Serialize> Reply<T> {
    pub fn ok(data: T) -> Self {
        Self {
            ok: true,
            data: Some(data),
            error: None,
            note: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            data: None,
            error: Some(message.into()),
            note: None,
        }
    }

    pub fn with_note(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }

    /// The same `ok`, `error` and `note` for another kind of `data`, without it.
    pub fn without_data<U>(self) -> Reply<U> {
        Reply {
            ok: self.ok,
            data: None,
            error: self.error,
            note: self.note,
        }
    }

    /// The reply as one line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| {
            // Only a non-finite float could fail; say so instead of hanging up.
            r#"{"ok":false,"error":"reply could not be encoded"}"#.to_owned()
        });
        line.push('\n');
        line
    }
}

/// A refusal's line (`data` is never there).
pub fn error_line(message: impl Into<String>) -> String {
    NullReply::error(message).to_line()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_the_documented_lines() {
        assert_eq!(Request::parse(br#"{"cmd": "status"}"#), Ok(Request::Status));
        assert_eq!(
            Request::parse(br#"{"cmd": "start", "id": "python"}"#),
            Ok(Request::Command {
                id: "python".into(),
                verb: Verb::start()
            })
        );
        assert_eq!(
            Request::parse(br#"{"cmd":"stop-all"}"#),
            Ok(Request::StopAll)
        );
        assert_eq!(
            Request::Command {
                id: "a".into(),
                verb: Verb::restart()
            }
            .to_line(),
            "{\"cmd\":\"restart\",\"id\":\"a\"}\n"
        );
    }

    #[test]
    fn v2_requests_match_the_documented_lines() {
        assert_eq!(
            Request::parse(br#"{"cmd": "start", "id": "python", "args": ["--debug"]}"#),
            Ok(Request::Command {
                id: "python".into(),
                verb: Verb::Start {
                    args: vec!["--debug".into()]
                }
            })
        );
        let send = Request::parse(
            br#"{"cmd": "send", "id": "python", "line": {"action": "ping", "id": 7}, "wait": {"key": "id", "value": "7"}, "timeout_ms": 2000}"#,
        )
        .unwrap();
        assert_eq!(
            send,
            Request::Send(SendRequest {
                id: "python".into(),
                line: serde_json::json!({"action": "ping", "id": 7}),
                wait: Some(Wait {
                    key: "id".into(),
                    value: "7".into()
                }),
                timeout_ms: Some(2000)
            })
        );
        assert_eq!(
            Request::parse(br#"{"cmd": "action", "id": "python", "label": "Ping"}"#),
            Ok(Request::Action {
                id: "python".into(),
                label: "Ping".into()
            })
        );
        let err = Request::parse(br#"{"cmd": "send", "id": "p", "line": 1, "wiat": 1}"#);
        assert!(err.unwrap_err().contains("unknown field"));
        let err = Request::parse(br#"{"cmd": "action", "id": "p"}"#);
        assert!(err.unwrap_err().contains("missing field `label`"));
    }

    #[test]
    fn update_verbs_match_the_documented_lines() {
        for (line, verb) in [
            (r#"{"cmd":"check-update","id":"python"}"#, Verb::CheckUpdate),
            (r#"{"cmd":"update","id":"python"}"#, Verb::Update),
            (r#"{"cmd":"rollback","id":"python"}"#, Verb::Rollback),
        ] {
            let request = Request::Command {
                id: "python".into(),
                verb,
            };
            assert_eq!(Request::parse(line.as_bytes()), Ok(request.clone()));
            assert_eq!(request.to_line(), format!("{line}\n"));
        }
        assert!(
            Request::parse(br#"{"cmd":"update","id":"p","version":"9"}"#)
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn version_is_a_request_without_fields() {
        assert_eq!(
            Request::parse(br#"{"cmd": "version"}"#),
            Ok(Request::Version)
        );
        assert_eq!(Request::Version.to_line(), "{\"cmd\":\"version\"}\n");
        assert_eq!(
            VersionReply::ok(Version::current()).to_line(),
            format!(
                "{{\"ok\":true,\"data\":{{\"berth\":\"{}\",\"protocol\":1}}}}\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn v3_streams_match_the_documented_lines() {
        assert_eq!(Request::parse(br#"{"cmd": "watch"}"#), Ok(Request::Watch));
        assert!(
            Request::parse(br#"{"cmd": "watch", "id": "x"}"#)
                .unwrap_err()
                .contains("unknown field `id`")
        );
        assert_eq!(
            Request::parse(br#"{"cmd": "logs", "id": "python", "follow": true, "lines": 50}"#),
            Ok(Request::Logs(LogsRequest {
                id: "python".into(),
                follow: true,
                lines: 50
            }))
        );
        assert_eq!(
            Request::parse(br#"{"cmd": "logs", "id": "python"}"#),
            Ok(Request::Logs(LogsRequest {
                id: "python".into(),
                follow: false,
                lines: LogsRequest::DEFAULT_LINES
            }))
        );
        assert!(
            Request::parse(br#"{"cmd": "logs", "id": "p", "folow": true}"#)
                .unwrap_err()
                .contains("unknown field")
        );
        assert_eq!(Request::Watch.to_line(), "{\"cmd\":\"watch\"}\n");
        assert_eq!(
            Event::Removed {
                file: "/b/x.yaml".into()
            }
            .to_line(),
            "{\"event\":\"removed\",\"file\":\"/b/x.yaml\"}\n"
        );
        assert_eq!(
            Event::Log(LogLine {
                id: "python".into(),
                stream: Stream::Stderr,
                line: "oops".into(),
                run: Some(42)
            })
            .to_line(),
            "{\"event\":\"log\",\"id\":\"python\",\"stream\":\"stderr\",\"line\":\"oops\",\"run\":42}\n"
        );
        let status = Event::Status {
            backend: Box::new(BackendStatus::new(
                "/b/x.yaml",
                crate::status::State::Stopped,
            )),
        };
        let value: serde_json::Value = serde_json::from_str(&status.to_line()).unwrap();
        assert_eq!(value["event"], "status");
        assert_eq!(value["backend"]["state"], "stopped");
        assert_eq!(value["backend"]["file"], "/b/x.yaml");
        let back: Event = serde_json::from_value(value).unwrap();
        assert_eq!(back, status);
    }

    #[test]
    fn bad_requests_have_one_line_reasons() {
        let err = |line: &[u8]| Request::parse(line).unwrap_err();
        assert!(err(b"hello").starts_with("request is not JSON"));
        assert_eq!(err(br#"{"cmd": "fly"}"#), r#"unknown command "fly""#);
        assert_eq!(err(br#"{"id": "x"}"#), r#"request has no "cmd" field"#);
        assert_eq!(err(br#"{"cmd": 3}"#), r#""cmd" must be a string"#);
        assert!(err(br#"{"cmd": "start"}"#).contains("missing field `id`"));
        assert!(err(br#"{"cmd": "status", "x": 1}"#).contains("unknown field"));
        assert_eq!(err(b"\xff"), "request is not UTF-8");
        assert!(err(b"[1,2]").contains("no \"cmd\""));
        assert_eq!(
            err(br#"{"cmd": "status", "cmd": "stop-all"}"#),
            r#"duplicate key "cmd""#
        );
    }

    #[test]
    fn replies_omit_empty_fields() {
        assert_eq!(
            error_line("no backend with id \"x\""),
            "{\"ok\":false,\"error\":\"no backend with id \\\"x\\\"\"}\n"
        );
        assert_eq!(
            StatusReply::ok(vec![]).to_line(),
            "{\"ok\":true,\"data\":[]}\n"
        );
    }
}
