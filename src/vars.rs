//! Variable templates: `${id}`, `${pid}` and `${ready.KEY}` in manifest strings.
//!
//! Several fields (an `open` action's URL, `health.http`, `health.tcp`) name
//! things that exist only once a backend runs: its leader's pid, or a port it
//! chose and announced on its ready line. A [`Template`] is parsed and checked
//! while serde reads the field, so an unknown variable is a manifest error with
//! the line, column and field like every other scalar; it is expanded later
//! against the [`Values`] known for one run, and a variable that is not known
//! yet is a typed [`NotKnown`] the caller shows (a disabled tray item, a
//! refused `berth action`), never a half-expanded string.
//!
//! A leaf module: `manifest` uses it, so it uses nothing of `manifest` (its
//! own serde and schema impls), keeping the module graph free of cycles.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::{Map, Value};

/// What a template field expects, for serde's "invalid type" errors.
const EXPECTING: &str = "a string with ${id}, ${pid} or ${ready.KEY}";

/// One variable a template may use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Var {
    /// `${id}`: the backend's id, always known.
    Id,
    /// `${pid}`: the leader's pid, known while a process runs.
    Pid,
    /// `${ready.KEY}`: KEY of the ready JSON object, or `port` of a tcp/http
    /// ready probe; known once the backend is ready.
    Ready(String),
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id => f.write_str("${id}"),
            Self::Pid => f.write_str("${pid}"),
            Self::Ready(key) => write!(f, "${{ready.{key}}}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A manifest string with variables, checked when it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// What a run knows: the values variables expand to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Values<'a> {
    /// The backend id.
    pub id: &'a str,
    /// The leader's pid while a process runs.
    pub pid: Option<u32>,
    /// The stdout JSON object that made the backend ready (`stdout_json`).
    pub ready_json: Option<&'a Map<String, Value>>,
    /// The port of a `tcp`/`http` ready probe, once it matched: `${ready.port}`.
    pub ready_port: Option<u16>,
}

/// A variable that has no value for this run (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotKnown {
    #[error("{0} is not known: the backend is not running")]
    NotRunning(Var),
    #[error("{0} is not known yet: the backend is not ready")]
    NotReady(Var),
    #[error("{0} is not known: the ready line has no key {key:?}", key = ready_key(.0))]
    NoSuchKey(Var),
}

fn ready_key(var: &Var) -> &str {
    match var {
        Var::Ready(key) => key,
        Var::Id | Var::Pid => "",
    }
}

impl Template {
    /// Parses `text`; the error is one line naming the bad variable.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains('\0') {
            return Err("must not contain a NUL character".to_owned());
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed variable `{}`", &rest[start..]))?;
            parts.push(Part::Var(parse_var(&after[..end])?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self {
            source: text.to_owned(),
            parts,
        })
    }

    /// The text as written in the manifest.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Every variable used, in order, repeats included.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Text(_) => None,
        })
    }

    /// True when expanding needs a running process (`${pid}` or `${ready.*}`).
    pub fn needs_running(&self) -> bool {
        self.vars().any(|v| !matches!(v, Var::Id))
    }

    /// True when expanding needs a ready backend (`${ready.*}`).
    pub fn needs_ready(&self) -> bool {
        self.vars().any(|v| matches!(v, Var::Ready(_)))
    }

    /// The text with every variable replaced, or the first one not known.
    pub fn expand(&self, values: &Values<'_>) -> Result<String, NotKnown> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&values.get(v)?),
            }
        }
        Ok(out)
    }
}

impl Values<'_> {
    /// One variable's value as text (a JSON string without quotes, any other
    /// JSON value as compact JSON).
    pub fn get(&self, var: &Var) -> Result<Cow<'_, str>, NotKnown> {
        match var {
            Var::Id => Ok(Cow::Borrowed(self.id)),
            Var::Pid => self
                .pid
                .map(|p| Cow::Owned(p.to_string()))
                .ok_or_else(|| NotKnown::NotRunning(var.clone())),
            Var::Ready(key) => {
                if let Some(json) = self.ready_json {
                    return match json.get(key) {
                        Some(Value::String(s)) => Ok(Cow::Borrowed(s)),
                        Some(other) => Ok(Cow::Owned(other.to_string())),
                        None => match self.ready_port {
                            Some(port) if key == "port" => Ok(Cow::Owned(port.to_string())),
                            _ => Err(NotKnown::NoSuchKey(var.clone())),
                        },
                    };
                }
                match self.ready_port {
                    Some(port) if key == "port" => Ok(Cow::Owned(port.to_string())),
                    Some(_) => Err(NotKnown::NoSuchKey(var.clone())),
                    None if self.pid.is_none() => Err(NotKnown::NotRunning(var.clone())),
                    None => Err(NotKnown::NotReady(var.clone())),
                }
            }
        }
    }
}

fn parse_var(name: &str) -> Result<Var, String> {
    match name {
        "id" => Ok(Var::Id),
        "pid" => Ok(Var::Pid),
        _ => match name.strip_prefix("ready.") {
            Some(key)
                if !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) =>
            {
                Ok(Var::Ready(key.to_owned()))
            }
            _ => Err(format!(
                "unknown variable `${{{name}}}`: use ${{id}}, ${{pid}} or ${{ready.KEY}} (KEY of letters, digits, '_' and '-')"
            )),
        },
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

struct TemplateVisitor;

impl Visitor<'_> for TemplateVisitor {
    type Value = Template;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Template, E> {
        Template::parse(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TemplateVisitor)
    }
}

impl JsonSchema for Template {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Template")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^([^$]|\\$(?!\\{)|\\$\\{(id|pid|ready\\.[A-Za-z0-9_-]+)\\})*$",
            "description": "Text with the variables ${id}, ${pid} (the leader) and ${ready.KEY} (KEY of the ready JSON line, or the port of a tcp/http ready probe as ${ready.port})."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(pid: Option<u32>, json: Option<&'a Map<String, Value>>) -> Values<'a> {
        Values {
            id: "python",
            pid,
            ready_json: json,
            ready_port: None,
        }
    }

    #[test]
    fn expands_every_kind_of_variable() {
        let t = Template::parse("http://127.0.0.1:${ready.port}/${id}?p=${pid}&d=${ready.debug}")
            .unwrap();
        let json: Map<String, Value> =
            serde_json::from_str(r#"{"port": 5000, "debug": true, "status": "ready"}"#).unwrap();
        assert_eq!(
            t.expand(&values(Some(42), Some(&json))).unwrap(),
            "http://127.0.0.1:5000/python?p=42&d=true"
        );
        assert!(t.needs_running() && t.needs_ready());
        assert_eq!(t.vars().count(), 4);
    }

    #[test]
    fn string_values_lose_their_quotes() {
        let json: Map<String, Value> = serde_json::from_str(r#"{"host": "::1"}"#).unwrap();
        let t = Template::parse("${ready.host}").unwrap();
        assert_eq!(t.expand(&values(Some(1), Some(&json))).unwrap(), "::1");
    }

    #[test]
    fn port_of_a_tcp_probe_is_ready_port() {
        let t = Template::parse("127.0.0.1:${ready.port}").unwrap();
        let v = Values {
            ready_port: Some(8080),
            ..values(Some(1), None)
        };
        assert_eq!(t.expand(&v).unwrap(), "127.0.0.1:8080");
        let other = Template::parse("${ready.host}").unwrap();
        assert!(matches!(other.expand(&v), Err(NotKnown::NoSuchKey(_))));
    }

    #[test]
    fn not_known_says_why() {
        let t = Template::parse("${ready.port}").unwrap();
        let err = t.expand(&values(None, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "${ready.port} is not known: the backend is not running"
        );
        let err = t.expand(&values(Some(3), None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "${ready.port} is not known yet: the backend is not ready"
        );
        let json = Map::new();
        let err = t.expand(&values(Some(3), Some(&json))).unwrap_err();
        assert!(err.to_string().contains("no key \"port\""), "{err}");
        let pid = Template::parse("${pid}").unwrap();
        assert!(matches!(
            pid.expand(&values(None, None)),
            Err(NotKnown::NotRunning(Var::Pid))
        ));
    }

    #[test]
    fn id_only_needs_nothing() {
        let t = Template::parse("/tmp/${id}.html").unwrap();
        assert!(!t.needs_running() && !t.needs_ready());
        assert_eq!(t.expand(&values(None, None)).unwrap(), "/tmp/python.html");
    }

    #[test]
    fn unknown_and_unclosed_variables_are_refused() {
        for bad in ["${port}", "${ready.}", "${ready.a b}", "${}", "${ID}"] {
            let err = Template::parse(bad).unwrap_err();
            assert!(err.starts_with("unknown variable `$"), "{bad}: {err}");
        }
        assert!(Template::parse("x${id").unwrap_err().contains("unclosed"));
        assert!(Template::parse("a\0b").is_err());
    }

    #[test]
    fn a_lone_dollar_is_text() {
        let t = Template::parse("$5 and $x").unwrap();
        assert_eq!(t.expand(&values(None, None)).unwrap(), "$5 and $x");
    }

    #[test]
    fn errors_from_yaml_keep_line_and_column() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            url: Template,
        }
        let err = serde_yaml::from_str::<Doc>("url: \"${nope}\"\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("url: unknown variable `${nope}`") && text.contains("line 1 column 6"),
            "{text}"
        );
    }
}
