//! `health`: one check that a running backend is still working (v2).
//!
//! A readiness probe says a backend came up; this section says how to tell
//! it still works: an `http` or `tcp` check every `interval`, or an sd_notify
//! `watchdog` heartbeat. It is checked while serde visits it, like every
//! other field, so two checks, a zero interval or failures, and an unknown
//! variable are reported with their line, column and field.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::scalar::{Count, HttpTemplate, PositiveDuration, Scalar, TcpTemplate, scalar};
use super::unique_map::{KeyName, UniqueMap};
use crate::vars::{Template, TokenUse};

/// Defaults of DESIGN.md's "Health (v2)".
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_FAILURES: u32 = 3;

/// A validated `health` section.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSpec {
    pub check: HealthCheck,
    /// Time between two http/tcp checks.
    pub interval: Duration,
    /// Longest one http/tcp check may take.
    pub timeout: Duration,
    /// Consecutive failed checks that make the backend unhealthy.
    pub failures: u32,
    /// Headers of each `http` check (v3), values expanded per run: the
    /// one place besides an `open` action where `${token}` may go.
    pub headers: Vec<(String, Template)>,
}

/// What is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheck {
    /// Any 2xx answer to a GET of this URL (variables expanded per run).
    Http(Template),
    /// A successful connect to this `host:port` (variables expanded per run).
    Tcp(Template),
    /// sd_notify `WATCHDOG=1` at least this often (`WATCHDOG_USEC`).
    Watchdog(Duration),
}

impl HealthCheck {
    /// The template to expand for this run, if the check has one.
    pub fn target(&self) -> Option<&Template> {
        match self {
            Self::Http(t) | Self::Tcp(t) => Some(t),
            Self::Watchdog(_) => None,
        }
    }
}

/// The fields of `health`, before the one-check rule.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with one check (http, tcp or watchdog)"
)]
pub struct HealthFields {
    /// Healthy while a GET of this http:// URL answers 2xx (`${ready.port}` and the other variables are expanded).
    pub http: Option<HttpTemplate>,
    /// Healthy while a TCP connect to host:port succeeds (variables expanded).
    pub tcp: Option<TcpTemplate>,
    /// The backend sends sd_notify `WATCHDOG=1` at least this often; berth sets `WATCHDOG_USEC`. A missed heartbeat fails at once.
    pub watchdog: Option<PositiveDuration>,
    /// Time between two http/tcp checks (default 10s).
    pub interval: Option<PositiveDuration>,
    /// Longest one http/tcp check may take (default 2s).
    pub timeout: Option<PositiveDuration>,
    /// Consecutive failed http/tcp checks before berth stops the backend and applies the restart policy (default 3).
    pub failures: Option<Count>,
    /// Headers sent with each `http` check, like `Authorization: "Bearer ${token}"`.
    pub headers: Option<UniqueMap<HeaderName, HeaderValue>>,
}

/// An HTTP header name: a token of RFC 9110 (letters, digits, ``!#$%&'*+-.^_`|~``).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeaderName(pub String);

impl Scalar for HeaderName {
    const EXPECTING: &'static str = "an HTTP header name";
    fn parse(text: &str) -> Result<Self, String> {
        let ok = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
        // Host and Connection are the check's own.
        let own = ["host", "connection"].contains(&text.to_ascii_lowercase().as_str());
        match (ok, own) {
            (true, false) => Ok(Self(text.to_owned())),
            (true, true) => Err(format!("{text} is set by berth itself")),
            (false, _) => Err(format!(
                "invalid header name {text:?}: use letters, digits and !#$%&'*+-.^_`|~"
            )),
        }
    }
}

scalar!(HeaderName, "HeaderName", {
    "type": "string",
    "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
    "not": { "pattern": "^([Hh][Oo][Ss][Tt]|[Cc][Oo][Nn][Nn][Ee][Cc][Tt][Ii][Oo][Nn])$" }
});

impl KeyName for HeaderName {
    fn key_name(&self) -> &str {
        &self.0
    }
}

/// A header's value: text without control characters (no CR/LF: no second
/// header smuggled in), variables `${token}` included.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderValue(pub Template);

impl Scalar for HeaderValue {
    const EXPECTING: &'static str = "a header value (variables allowed)";
    fn parse(text: &str) -> Result<Self, String> {
        if text.chars().any(|c| c.is_control() && c != '\t') {
            return Err("a header value must not contain control characters".to_owned());
        }
        Template::parse_for(text, TokenUse::Allowed).map(Self)
    }
}

scalar!(HeaderValue, "HeaderValue", {
    "type": "string",
    "pattern": "^([^$\\u0000-\\u0008\\u000a-\\u001f\\u007f]|\\$(?!\\{)|\\$\\{(id|pid|port|token|ready\\.[A-Za-z0-9_-]+)\\})*$",
    "description": "A header value; may use ${token} (token: true), ${port} (port: auto), ${id}, ${pid} and ${ready.KEY}."
});

/// `health`: exactly one check, its interval, timeout and failures.
#[derive(Debug, Clone, PartialEq)]
pub struct RawHealth(pub HealthFields);

impl<'de> Deserialize<'de> for RawHealth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHealth;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping with one of http, tcp or watchdog")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawHealth, A::Error> {
                let f = HealthFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                super::one_of::exactly_one(
                    "check",
                    &[
                        ("http", f.http.is_some()),
                        ("tcp", f.tcp.is_some()),
                        ("watchdog", f.watchdog.is_some()),
                    ],
                )?;
                if f.watchdog.is_some()
                    && (f.interval.is_some() || f.timeout.is_some() || f.failures.is_some())
                {
                    return Err(de::Error::custom(
                        "interval, timeout and failures apply to http and tcp checks: a watchdog fails at the first missed heartbeat",
                    ));
                }
                if f.headers.is_some() && f.http.is_none() {
                    return Err(de::Error::custom("headers apply to http checks only"));
                }
                Ok(RawHealth(f))
            }
        }
        d.deserialize_map(V)
    }
}

impl JsonSchema for RawHealth {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Health")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = HealthFields::json_schema(generator);
        schema.insert(
            "description".to_owned(),
            "One check after the backend is running: http, tcp (every interval, with timeout; failures in a row stop it and apply the restart policy) or watchdog (sd_notify heartbeats)."
                .into(),
        );
        schema.insert(
            "oneOf".to_owned(),
            // A null check counts as absent, as in berth.
            serde_json::json!([
                { "required": ["http"], "properties": { "http": { "type": "string" } } },
                {
                    "required": ["tcp"],
                    "properties": { "tcp": { "type": "string" } },
                    "not": { "required": ["headers"], "properties": { "headers": { "type": "object" } } }
                },
                {
                    "required": ["watchdog"],
                    "properties": { "watchdog": { "type": "string" } },
                    "not": { "anyOf": [
                        { "required": ["interval"], "properties": { "interval": { "type": "string" } } },
                        { "required": ["timeout"], "properties": { "timeout": { "type": "string" } } },
                        { "required": ["failures"], "properties": { "failures": { "type": "integer" } } },
                        { "required": ["headers"], "properties": { "headers": { "type": "object" } } }
                    ] }
                }
            ]),
        );
        schema
    }
}

impl From<RawHealth> for HealthSpec {
    fn from(raw: RawHealth) -> Self {
        let f = raw.0;
        // The visitor guarantees exactly one check.
        let check = match (f.http, f.tcp, f.watchdog) {
            (Some(h), _, _) => HealthCheck::Http(h.0),
            (None, Some(t), _) => HealthCheck::Tcp(t.0),
            (None, None, Some(w)) => HealthCheck::Watchdog(w.0),
            (None, None, None) => HealthCheck::Watchdog(DEFAULT_INTERVAL),
        };
        Self {
            check,
            interval: f.interval.map_or(DEFAULT_INTERVAL, |d| d.0),
            timeout: f.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
            failures: f.failures.map_or(DEFAULT_FAILURES, |c| c.0),
            headers: f
                .headers
                .map(|h| h.0.into_iter().map(|(k, v)| (k.0, v.0)).collect())
                .unwrap_or_default(),
        }
    }
}
