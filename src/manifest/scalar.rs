//! Checked scalars of a manifest: ids, semver, digests, durations, paths.
//!
//! Each one is validated *inside* the serde visitor, not after
//! deserialisation: serde_yaml attaches the line, column and field path of the
//! node being read only to errors raised while that node is being visited, so
//! this is what lets `stop: { timeout: 5 }` be reported as
//! `line 7 column 17: stop.timeout: ...` instead of pointing at the document.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::{BackendId, Digest};
use crate::vars::Template;

/// A scalar that is parsed from its YAML text and checked on the way.
pub trait Scalar: Sized {
    /// What the visitor says it expected (`a duration like 5s`).
    const EXPECTING: &'static str;
    /// Parses and checks the text; the error is the message shown to the user.
    fn parse(text: &str) -> Result<Self, String>;
}

/// The visitor behind [`scalar!`]: a string, checked by [`Scalar::parse`].
pub(crate) struct ScalarVisitor<T>(pub(crate) PhantomData<T>);

impl<T: Scalar> Visitor<'_> for ScalarVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::parse(v).map_err(E::custom)
    }
}

/// Implements `Deserialize` through [`Scalar::parse`] and `JsonSchema` from a
/// literal schema (also for scalars outside this module: `vars::Template`,
/// an action's `open` target).
macro_rules! scalar {
    ($ty:ident, $name:literal, $schema:tt) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str($crate::manifest::scalar::ScalarVisitor::<$ty>(
                    ::std::marker::PhantomData,
                ))
            }
        }

        impl ::schemars::JsonSchema for $ty {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed($name)
            }

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                ::schemars::json_schema!($schema)
            }
        }
    };
}
pub(crate) use scalar;

/// `${id}` `${pid}` `${ready.KEY}` text (an `open` action, health probes).
impl Scalar for Template {
    const EXPECTING: &'static str = "a string with ${id}, ${pid} or ${ready.KEY}";
    fn parse(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

scalar!(Template, "Template", {
    "type": "string",
    "pattern": "^([^$]|\\$(?!\\{)|\\$\\{(id|pid|port|ready\\.[A-Za-z0-9_-]+)\\})*$",
    "description": "Text with the variables ${id}, ${pid} (the leader), ${port} (port: auto) and ${ready.KEY} (KEY of the ready JSON line, or the port of a tcp/http ready probe as ${ready.port})."
});

/// The backend id: `[a-z0-9][a-z0-9-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Id(pub BackendId);

impl Scalar for Id {
    const EXPECTING: &'static str = "a backend id like `python`";
    fn parse(text: &str) -> Result<Self, String> {
        BackendId::new(text).map(Id)
    }
}

scalar!(Id, "Id", {
    "type": "string",
    "pattern": "^[a-z0-9][a-z0-9-]{0,62}$",
    "description": "Unique backend id: 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit."
});

/// A label: non-empty, one line.
#[derive(Debug, Clone, PartialEq)]
pub struct Label(pub String);

impl Scalar for Label {
    const EXPECTING: &'static str = "a non-empty name";
    fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("must not be empty".to_owned());
        }
        if text.chars().any(char::is_control) {
            return Err("must be one line without control characters".to_owned());
        }
        Ok(Self(text.to_owned()))
    }
}

scalar!(Label, "Label", {
    "type": "string",
    "minLength": 1,
    "pattern": "^[^\\u0000-\\u001f\\u007f]*\\S[^\\u0000-\\u001f\\u007f]*$"
});

/// Any string handed to the operating system (argument, environment value,
/// folder): NUL cannot be passed there.
#[derive(Debug, Clone, PartialEq)]
pub struct Text(pub String);

impl Scalar for Text {
    const EXPECTING: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, String> {
        if text.contains('\0') {
            return Err("must not contain a NUL character".to_owned());
        }
        Ok(Self(text.to_owned()))
    }
}

// serde_yaml hands any plain scalar to a string visitor as written, so
// `args: [--port, 5000]` passes "5000": the schema says so rather than
// flagging what berth runs.
scalar!(Text, "Text", {
    "type": ["string", "number", "boolean", "null"],
    "description": "A string; any other scalar is passed exactly as written (5000 is \"5000\")."
});

/// The literal `${port}`, expanded in `args`, `env` and `ready` (v3).
pub const PORT_VAR: &str = "${port}";
/// The literal `${token}`, refused in `args` and `env` (v3).
pub const TOKEN_VAR: &str = "${token}";

/// Checks `${port}` and `${token}` in a field that is not a [`Template`]
/// (`args`, `env`, `ready`): other `${...}` text stays as written there,
/// as it always has.
fn check_run_vars(text: &str) -> Result<(), String> {
    if text.contains(PORT_VAR) && !crate::vars::scope().port {
        return Err(crate::vars::PORT_NEEDS_AUTO.to_owned());
    }
    if text.contains(TOKEN_VAR) {
        return Err(crate::vars::TOKEN_NOT_HERE.to_owned());
    }
    Ok(())
}

/// An argument or environment value: [`Text`] in which `${port}` is the
/// run's port (with `port: auto`) and `${token}` is refused (the backend
/// reads `BERTH_TOKEN`; an argument is visible in `ps`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunText(pub String);

impl Scalar for RunText {
    const EXPECTING: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, String> {
        let Text(text) = Text::parse(text)?;
        check_run_vars(&text)?;
        Ok(Self(text))
    }
}

scalar!(RunText, "RunText", {
    "type": ["string", "number", "boolean", "null"],
    "not": { "type": "string", "pattern": "\\$\\{token\\}" },
    "description": "A string (any other scalar is passed exactly as written: 5000 is \"5000\"); ${port} is the port berth chose (port: auto); ${token} is refused (the backend reads BERTH_TOKEN)."
});

/// An environment variable name: non-empty, no `=`, no NUL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvName(pub String);

impl Scalar for EnvName {
    const EXPECTING: &'static str = "an environment variable name";
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.contains(['=', '\0']) {
            return Err(format!(
                "invalid environment variable name {text:?}: it must be non-empty without '=' or NUL"
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

scalar!(EnvName, "EnvName", { "type": "string", "pattern": "^[^=\\u0000]+$" });

/// A candidate path: non-empty; `${resources}` is the only variable.
#[derive(Debug, Clone, PartialEq)]
pub struct PathText(pub String);

/// The variable a path may use.
pub const RESOURCES_VAR: &str = "${resources}";

impl Scalar for PathText {
    const EXPECTING: &'static str = "a path";
    fn parse(text: &str) -> Result<Self, String> {
        check_path(text, &[RESOURCES_VAR]).map_err(|p| {
            p.word(|var| format!("unknown variable `{var}}}`: only {RESOURCES_VAR} is expanded"))
        })?;
        Ok(Self(text.to_owned()))
    }
}

/// A path is non-empty, has no NUL, and uses only `vars`; an unknown
/// variable's name (up to its `}`) is left for the caller to word.
fn check_path(text: &str, vars: &[&str]) -> Result<(), PathProblem> {
    if text.is_empty() {
        return Err(PathProblem::Other("a path must not be empty"));
    }
    if text.contains('\0') {
        return Err(PathProblem::Other("must not contain a NUL character"));
    }
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        rest = &rest[at..];
        let Some(var) = vars.iter().find(|v| rest.starts_with(**v)) else {
            return Err(PathProblem::UnknownVar(
                rest.chars().take_while(|c| *c != '}').collect(),
            ));
        };
        rest = &rest[var.len()..];
    }
    Ok(())
}

/// Why [`check_path`] refused a path.
enum PathProblem {
    Other(&'static str),
    UnknownVar(String),
}

impl PathProblem {
    /// The message, with `unknown` wording an unknown variable.
    fn word(self, unknown: impl FnOnce(&str) -> String) -> String {
        match self {
            Self::Other(msg) => msg.to_owned(),
            Self::UnknownVar(var) => unknown(&var),
        }
    }
}

scalar!(PathText, "PathText", { "type": "string", "minLength": 1 });

/// The variables a `sandbox` path may use (DESIGN.md, "Sandbox").
pub const SANDBOX_VARS: [&str; 5] = [
    RESOURCES_VAR,
    "${data}",
    "${tmp}",
    "${home}",
    "${manifest_dir}",
];

/// A `sandbox.filesystem` path: non-empty; only [`SANDBOX_VARS`] are expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxPathText(pub String);

impl Scalar for SandboxPathText {
    const EXPECTING: &'static str = "a path";
    fn parse(text: &str) -> Result<Self, String> {
        check_path(text, &SANDBOX_VARS).map_err(|p| {
            p.word(|var| {
                format!(
                    "unknown variable `{var}}}`: expected one of {}",
                    SANDBOX_VARS.join(", ")
                )
            })
        })?;
        Ok(Self(text.to_owned()))
    }
}

scalar!(SandboxPathText, "SandboxPath", {
    "type": "string",
    "minLength": 1,
    "description": "A path; relative to the manifest's folder; ${resources}, ${data}, ${tmp}, ${home} and ${manifest_dir} are expanded."
});

/// Parses `10MB`, `512KiB`, `1G` or a plain byte count. `K`/`M`/`G` are powers
/// of 1024, as in supervisord's `logfile_maxbytes`: the one reading of a size,
/// for the manifest (`limits.memory`) and the CLI (`--log-max-size`) alike.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!("invalid size {text:?}: expected a number with an optional unit, like 10MB")
    })?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {unit:?} (use B, KB, MB or GB)"
            ));
        }
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))?;
    if bytes == 0 {
        return Err(format!("invalid size {text:?}: must be greater than zero"));
    }
    Ok(bytes)
}

/// A size in bytes: `2GB`, `512MB`, `65536` (K/M/G are powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ByteSize(pub u64);

impl Scalar for ByteSize {
    const EXPECTING: &'static str = "a size like 512MB or 2GB";
    fn parse(text: &str) -> Result<Self, String> {
        parse_size(text).map(Self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare integer (a byte count) is fine here, unlike a duration.
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ByteSize::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                ByteSize::parse(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("ByteSize")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "string", "pattern": "^ *[0-9]+ *([KkMmGg]([Ii]?[Bb])?|[Bb])? *$" },
                { "type": "integer", "minimum": 1 }
            ],
            "description": "A size: bytes, or a number with KB, MB or GB (powers of 1024)."
        })
    }
}

/// `version`: semver of the backend.
#[derive(Debug, Clone, PartialEq)]
pub struct SemVersion(pub semver::Version);

impl Scalar for SemVersion {
    const EXPECTING: &'static str = "a semver version like 1.0.0";
    fn parse(text: &str) -> Result<Self, String> {
        semver::Version::parse(text)
            .map(Self)
            .map_err(|e| format!("invalid semver version {text:?}: {e}"))
    }
}

scalar!(SemVersion, "SemVersion", {
    "type": "string",
    "pattern": "^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$",
    "description": "Semver version of the backend, like 1.0.0."
});

/// `requires`: a semver requirement on berth's version.
#[derive(Debug, Clone, PartialEq)]
pub struct SemReq(pub semver::VersionReq);

impl Scalar for SemReq {
    const EXPECTING: &'static str = "a semver requirement like \">=0.1\"";
    fn parse(text: &str) -> Result<Self, String> {
        semver::VersionReq::parse(text)
            .map(Self)
            .map_err(|e| format!("invalid semver requirement {text:?}: {e}"))
    }
}

scalar!(SemReq, "SemReq", {
    "type": "string",
    "minLength": 1,
    "description": "Semver requirement on berth's own version, like \">=0.1\"."
});

/// `sha256`: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq)]
pub struct Sha256(pub Digest);

impl Scalar for Sha256 {
    const EXPECTING: &'static str = "64 lowercase hex digits";
    fn parse(text: &str) -> Result<Self, String> {
        Digest::from_hex(text).map(Self)
    }
}

scalar!(Sha256, "Sha256", {
    "type": "string",
    "pattern": "^[0-9a-f]{64}$",
    "description": "SHA-256 of the executable: 64 lowercase hex digits (`berth hash FILE`, `berth pin ID`)."
});

/// A duration written `<integer>(ms|s|m|h)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationText(pub Duration);

impl Scalar for DurationText {
    const EXPECTING: &'static str = "a duration like 5s or 500ms";
    fn parse(text: &str) -> Result<Self, String> {
        parse_duration(text).map(Self)
    }
}

scalar!(DurationText, "Duration", {
    "type": "string",
    "pattern": "^[0-9]+(ms|s|m|h)$",
    "description": "A duration: an integer and a unit, ms, s, m or h (5s, 500ms)."
});

/// `restart.backoff`: a duration of at least [`MIN_BACKOFF`]. A crash loop
/// at `0ms` restarted as fast as berth could spawn (21% to 100% of a core);
/// at 100ms, doubling to 30 s, it costs a few percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff(pub Duration);

/// The smallest accepted `restart.backoff`.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);

impl Scalar for Backoff {
    const EXPECTING: &'static str = "a duration of at least 100ms, like 1s";
    fn parse(text: &str) -> Result<Self, String> {
        let d = parse_duration(text)?;
        if d < MIN_BACKOFF {
            return Err(format!(
                "backoff {text:?} is too short: the smallest is 100ms"
            ));
        }
        Ok(Self(d))
    }
}

// At least 100 ms: 100 or more milliseconds, or at least one s, m or h
// (leading zeros allowed, as the parser reads them).
scalar!(Backoff, "Backoff", {
    "type": "string",
    "pattern": "^0*([1-9][0-9]{2,}ms|[1-9][0-9]*(s|m|h))$",
    "description": "First delay before a restart: a duration of at least 100ms (1s, 500ms)."
});

/// Parses `<integer>(ms|s|m|h)`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let bad = || {
        format!(
            "invalid duration {text:?}: expected an integer and a unit, ms, s, m or h (like 5s or 500ms)"
        )
    };
    if digits.is_empty() {
        return Err(bad());
    }
    if unit.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: a bare number is not a duration; add a unit (like {text}s)"
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: too large"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("invalid duration {text:?}: too large"))
}

/// `ready.tcp`: `host:port`.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpAddr(pub String);

/// `ready: { tcp: auto }`: the port berth chose, on 127.0.0.1.
pub const TCP_AUTO: &str = "auto";

impl Scalar for TcpAddr {
    const EXPECTING: &'static str = "host:port";
    fn parse(text: &str) -> Result<Self, String> {
        if text == TCP_AUTO {
            if !crate::vars::scope().port {
                return Err("`tcp: auto` needs `port: auto` in the manifest".to_owned());
            }
            return Ok(Self(format!("127.0.0.1:{PORT_VAR}")));
        }
        check_run_vars(text)?;
        let original = text;
        let shape = text.replace(PORT_VAR, "1");
        let text = shape.as_str();
        let bad = || format!("invalid address {text:?}: expected host:port, like 127.0.0.1:5000");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad());
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(()),
            _ => Err(bad()),
        }?;
        Ok(Self(original.to_owned()))
    }
}

scalar!(TcpAddr, "TcpAddr", {
    "type": "string",
    "pattern": "^(auto|\\S+:(0*(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})|\\$\\{port\\}))$",
    "description": "Ready once a TCP connect to host:port succeeds; `auto` (or host:${port}) is the port berth chose (port: auto)."
});

/// `ready.http`: an `http://` URL.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpUrl(pub String);

impl Scalar for HttpUrl {
    const EXPECTING: &'static str = "an http:// URL";
    fn parse(text: &str) -> Result<Self, String> {
        check_run_vars(text)?;
        let original = text;
        let shape = text.replace(PORT_VAR, "1");
        let text = shape.as_str();
        let host = text.strip_prefix("http://").ok_or_else(|| {
            format!("invalid URL {text:?}: expected an http:// URL, like http://127.0.0.1:5000/")
        })?;
        let authority = host.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || text.contains(char::is_whitespace) {
            return Err(format!("invalid URL {text:?}: no host"));
        }
        // `host:port`, or a bracketed IPv6 address with an optional port.
        let port = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => Some(p),
            _ => None,
        };
        if let Some(port) = port
            && !matches!(port.parse::<u16>(), Ok(p) if p > 0)
        {
            return Err(format!(
                "invalid URL {text:?}: port {port:?} is not a number from 1 to 65535"
            ));
        }
        Ok(Self(original.to_owned()))
    }
}

scalar!(HttpUrl, "HttpUrl", {
    "type": "string",
    "pattern": "^http://([^/?#\\s:\\[\\]]+|\\[[^\\]/?#\\s]*\\])(:(0*(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})|\\$\\{port\\}))?([/?#]\\S*)?$",
    "not": { "pattern": "\\$\\{token\\}" },
    "description": "Ready once a GET of this http:// URL answers 2xx; ${port} is the port berth chose (port: auto)."
});

/// A duration that must be more than zero (`health.interval`, a watchdog).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositiveDuration(pub Duration);

impl Scalar for PositiveDuration {
    const EXPECTING: &'static str = "a duration of more than 0, like 10s";
    fn parse(text: &str) -> Result<Self, String> {
        match parse_duration(text)? {
            Duration::ZERO => Err(format!(
                "{text:?} is zero: give a duration of more than 0, like 10s"
            )),
            d => Ok(Self(d)),
        }
    }
}

scalar!(PositiveDuration, "PositiveDuration", {
    "type": "string",
    "pattern": "^0*[1-9][0-9]*(ms|s|m|h)$",
    "description": "A duration of more than 0: an integer and a unit, ms, s, m or h (10s, 500ms)."
});

/// A count of at least 1 (`health.failures`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Count(pub u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of at least 1")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                match u32::try_from(v) {
                    Ok(0) => Err(E::custom("0 is not a count: give at least 1")),
                    Ok(n) => Ok(Count(n)),
                    Err(_) => Err(E::custom(format_args!("{v} is too large"))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format_args!(
                        "{v} is not a count: give at least 1"
                    ))),
                }
            }
        }
        d.deserialize_u64(V)
    }
}

impl JsonSchema for Count {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Count")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": u32::MAX })
    }
}

/// Checks the shape of a template as if every variable were `1`: a
/// `${ready.port}` can then stand for a port and `${id}` for a host.
fn template_shape<T>(
    text: &str,
    check: impl Fn(&str) -> Result<T, String>,
) -> Result<crate::vars::Template, String> {
    let template = crate::vars::Template::parse(text)?;
    let mut sample = text.to_owned();
    for var in template.vars() {
        sample = sample.replace(&var.to_string(), "1");
    }
    check(&sample).map_err(|e| e.replace(&format!("{sample:?}"), &format!("{text:?}")))?;
    Ok(template)
}

/// Like [`scalar!`] for a template: its schema is its shape `pattern` and
/// the variables a [`crate::vars::Template`] accepts, both.
macro_rules! template_scalar {
    ($ty:ident, $name:literal, $pattern:expr, $description:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(ScalarVisitor::<Self>(PhantomData))
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                template_schema(generator, $pattern, $description)
            }
        }
    };
}

/// `health.http`: an `http://` URL that may use variables.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTemplate(pub crate::vars::Template);

impl Scalar for HttpTemplate {
    const EXPECTING: &'static str = "an http:// URL (variables allowed)";
    fn parse(text: &str) -> Result<Self, String> {
        template_shape(text, HttpUrl::parse).map(Self)
    }
}

/// A port in a schema pattern: 1 to 65535, or text with a variable.
const PORT_OR_VARS: &str = "(0*(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})|[0-9]*(\\$\\{[^}]+\\}[0-9]*)+)";

/// A template's schema: its shape (`pattern`) and the variables a
/// [`crate::vars::Template`] accepts, both.
fn template_schema(generator: &mut SchemaGenerator, pattern: String, description: &str) -> Schema {
    let vars = crate::vars::Template::json_schema(generator);
    json_schema!({
        "type": "string",
        "allOf": [
            { "pattern": pattern },
            { "pattern": vars.get("pattern").cloned().unwrap_or_default() }
        ],
        "description": description
    })
}

template_scalar!(
    HttpTemplate,
    "HttpTemplate",
    format!("^http://([^/?#\\s:\\[\\]]+|\\[[^\\]/?#\\s]*\\])(:{PORT_OR_VARS})?([/?#]\\S*)?$"),
    "Healthy while a GET of this http:// URL answers 2xx; ${id}, ${pid} and ${ready.KEY} are expanded."
);

/// `health.tcp`: `host:port` that may use variables.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpTemplate(pub crate::vars::Template);

impl Scalar for TcpTemplate {
    const EXPECTING: &'static str = "host:port (variables allowed)";
    fn parse(text: &str) -> Result<Self, String> {
        template_shape(text, TcpAddr::parse).map(Self)
    }
}

template_scalar!(
    TcpTemplate,
    "TcpTemplate",
    format!("^\\S+:{PORT_OR_VARS}$"),
    "Healthy while a TCP connect to host:port succeeds; ${id}, ${pid} and ${ready.KEY} are expanded."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("5").unwrap_err().contains("bare number"));
        for bad in [
            "",
            "s",
            "5 s",
            "5sec",
            "-5s",
            "1.5s",
            "5S",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(
            parse_duration("18446744073709551615h")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn paths_only_know_resources() {
        assert!(PathText::parse("${resources}/a/${resources}").is_ok());
        assert!(PathText::parse("a/$b/c").is_ok());
        assert_eq!(
            PathText::parse("${HOME}/x").unwrap_err(),
            "unknown variable `${HOME}`: only ${resources} is expanded"
        );
        assert!(PathText::parse("").is_err());
    }

    #[test]
    fn tree_dirs_stay_below_the_executable() {
        assert!(TreeDir::parse("_internal").is_ok());
        assert!(TreeDir::parse("lib/python").is_ok());
        assert!(TreeDir::parse(".").is_ok());
        assert!(TreeDir::parse("a..b").is_ok());
        for bad in ["", "..", "../lib", "a/../../b", "a/..", "/opt/lib"] {
            assert!(TreeDir::parse(bad).is_err(), "{bad}");
        }
        assert!(TreeDir::parse("../x").unwrap_err().contains("escapes"));
    }

    #[test]
    fn addresses() {
        assert!(TcpAddr::parse("127.0.0.1:5000").is_ok());
        assert!(TcpAddr::parse("[::1]:80").is_ok());
        assert!(TcpAddr::parse("localhost").is_err());
        assert!(TcpAddr::parse("x:0").is_err());
        assert!(TcpAddr::parse(":80").is_err());
        assert!(HttpUrl::parse("http://127.0.0.1:5000/api/status").is_ok());
        assert!(HttpUrl::parse("https://x").is_err());
        assert!(HttpUrl::parse("http:///x").is_err());
    }

    #[test]
    fn health_targets_with_variables() {
        assert!(HttpTemplate::parse("http://127.0.0.1:${ready.port}/api/status").is_ok());
        assert!(TcpTemplate::parse("127.0.0.1:${ready.port}").is_ok());
        assert!(TcpTemplate::parse("${ready.host}:${ready.port}").is_ok());
        assert_eq!(
            TcpTemplate::parse("127.0.0.1").unwrap_err(),
            "invalid address \"127.0.0.1\": expected host:port, like 127.0.0.1:5000"
        );
        assert_eq!(
            HttpTemplate::parse("https://x:${ready.port}/").unwrap_err(),
            "invalid URL \"https://x:${ready.port}/\": expected an http:// URL, like http://127.0.0.1:5000/"
        );
        assert!(
            TcpTemplate::parse("127.0.0.1:${nope}")
                .unwrap_err()
                .starts_with("unknown variable `${nope}`")
        );
        // v3: `${port}` exists only with `port: auto`.
        assert_eq!(
            TcpTemplate::parse("127.0.0.1:${port}").unwrap_err(),
            crate::vars::PORT_NEEDS_AUTO
        );
        assert!(PositiveDuration::parse("0s").unwrap_err().contains("zero"));
        assert!(PositiveDuration::parse("0ms").is_err());
        assert_eq!(
            PositiveDuration::parse("10s"),
            Ok(PositiveDuration(Duration::from_secs(10)))
        );
    }
}

/// `files.dir`: a folder below the executable's folder, written relative to
/// it. Absolute paths and `..` are refused: the tree pinned must be the
/// program's own, not whatever a path could be made to reach.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeDir(pub String);

impl Scalar for TreeDir {
    const EXPECTING: &'static str = "a folder relative to the executable's folder";
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("a folder must not be empty".to_owned());
        }
        if text.contains('\0') {
            return Err("must not contain a NUL character".to_owned());
        }
        if text.starts_with('/') {
            return Err(format!(
                "{text:?} is absolute: write it relative to the executable's folder"
            ));
        }
        if text.split('/').any(|part| part == "..") {
            return Err(format!(
                "{text:?} escapes the executable's folder (`..`): the folder must be below it"
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

scalar!(TreeDir, "TreeDir", {
    "type": "string",
    "minLength": 1,
    "not": { "anyOf": [ { "pattern": "^/" }, { "pattern": "(^|/)\\.\\.(/|$)" } ] },
    "description": "A folder relative to the chosen executable's folder; no `..`, not absolute."
});
