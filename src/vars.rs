//! Variable templates: `${id}`, `${pid}`, `${ready.KEY}`, `${port}` and
//! `${token}` in manifest strings.
//!
//! Several fields (an `open` action's URL, `health.http`, `health.tcp`) name
//! things that exist only once a backend runs: its leader's pid, or a port it
//! chose and announced on its ready line. A [`Template`] is parsed and checked
//! while serde reads the field (its `Deserialize` is `manifest::scalar`'s,
//! so this module depends on nothing of berth's), so an unknown variable is
//! a manifest error with the line, column and field like every other scalar; it is expanded later
//! against the [`Values`] known for one run, and a variable that is not known
//! yet is a typed [`NotKnown`] the caller shows (a disabled tray item, a
//! refused `berth action`), never a half-expanded string.
//!
//! `${port}` and `${token}` exist only when the manifest asks for them
//! (`port: auto`, `token: true`), fields that may come after the one being
//! read: the manifest's parser reads those two first and sets the [`VarScope`]
//! for the whole document, so a misplaced variable is still reported at its
//! own line and column. `${token}` is accepted only where it cannot reach a
//! log or `ps` (an `open` action, a `health.http` header): see [`TokenUse`].

use std::cell::Cell;

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

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
    /// `${port}`: the port berth chose for this run (`port: auto`).
    Port,
    /// `${token}`: this run's secret (`token: true`).
    Token,
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id => f.write_str("${id}"),
            Self::Pid => f.write_str("${pid}"),
            Self::Ready(key) => write!(f, "${{ready.{key}}}"),
            Self::Port => f.write_str("${port}"),
            Self::Token => f.write_str("${token}"),
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
    /// The port chosen for the current run (`port: auto`): `${port}`.
    pub port: Option<u16>,
    /// The current run's secret (`token: true`): `${token}`.
    pub token: Option<&'a str>,
}

/// What the manifest being read declares: whether `${port}` and `${token}`
/// have a value to take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VarScope {
    /// `port: auto`.
    pub port: bool,
    /// `token: true`.
    pub token: bool,
}

thread_local! {
    static SCOPE: Cell<VarScope> = const { Cell::new(VarScope { port: false, token: false }) };
}

/// Runs `f` (a manifest's deserialisation) with `scope` in force; the
/// previous scope comes back afterwards, even if `f` panics.
pub fn with_scope<T>(scope: VarScope, f: impl FnOnce() -> T) -> T {
    struct Restore(VarScope);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SCOPE.with(|s| s.replace(scope)));
    f()
}

/// The scope of the manifest being read (none outside a manifest).
pub fn scope() -> VarScope {
    SCOPE.with(Cell::get)
}

/// Whether a field may carry `${token}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// An `open` action or a `health.http` header: never logged, never in
    /// argv.
    Allowed,
    /// Any other field (a URL berth shows in its errors, an argument).
    Refused,
}

/// The message for `${port}` in a manifest without `port: auto`.
pub const PORT_NEEDS_AUTO: &str = "`${port}` needs `port: auto` in the manifest";
/// The message for `${token}` in a manifest without `token: true`.
pub const TOKEN_NEEDS_TRUE: &str = "`${token}` needs `token: true` in the manifest";
/// The message for `${token}` where it could leak.
pub const TOKEN_NOT_HERE: &str = "`${token}` is allowed only in `open` actions and `health.http` headers (never in arguments, visible in ps, nor in a URL berth may log); the backend reads it from BERTH_TOKEN";

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
        Var::Id | Var::Pid | Var::Port | Var::Token => "",
    }
}

impl Template {
    /// Parses `text` for a field where `${token}` is refused; the error is
    /// one line naming the bad variable.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_for(text, TokenUse::Refused)
    }

    /// Parses `text`, checking `${port}` and `${token}` against the
    /// manifest's [`scope`] and `token` (may this field carry it?).
    pub fn parse_for(text: &str, token: TokenUse) -> Result<Self, String> {
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
            let var = parse_var(&after[..end])?;
            check_scope(&var, token)?;
            parts.push(Part::Var(var));
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

    /// True when expanding needs a running process (`${pid}`, `${ready.*}`,
    /// `${port}` or `${token}`).
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
            Var::Port => self
                .port
                .map(|p| Cow::Owned(p.to_string()))
                .ok_or_else(|| NotKnown::NotRunning(var.clone())),
            Var::Token => self
                .token
                .map(Cow::Borrowed)
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

/// Is `var` usable in this manifest, in this field?
fn check_scope(var: &Var, token: TokenUse) -> Result<(), String> {
    let scope = scope();
    match var {
        Var::Port if !scope.port => Err(PORT_NEEDS_AUTO.to_owned()),
        Var::Token if token == TokenUse::Refused => Err(TOKEN_NOT_HERE.to_owned()),
        Var::Token if !scope.token => Err(TOKEN_NEEDS_TRUE.to_owned()),
        _ => Ok(()),
    }
}

fn parse_var(name: &str) -> Result<Var, String> {
    match name {
        "id" => Ok(Var::Id),
        "pid" => Ok(Var::Pid),
        "port" => Ok(Var::Port),
        "token" => Ok(Var::Token),
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
                "unknown variable `${{{name}}}`: use ${{id}}, ${{pid}}, ${{port}}, ${{token}} or ${{ready.KEY}} (KEY of letters, digits, '_' and '-')"
            )),
        },
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
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
            port: None,
            token: None,
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
        for bad in ["${ready.}", "${ready.a b}", "${}", "${ID}"] {
            let err = Template::parse(bad).unwrap_err();
            assert!(err.starts_with("unknown variable `$"), "{bad}: {err}");
        }
        assert!(Template::parse("x${id").unwrap_err().contains("unclosed"));
        assert!(Template::parse("a\0b").is_err());
    }

    #[test]
    fn port_and_token_need_the_manifest_to_ask_for_them() {
        assert_eq!(Template::parse("${port}").unwrap_err(), PORT_NEEDS_AUTO);
        assert_eq!(
            Template::parse_for("${token}", TokenUse::Allowed).unwrap_err(),
            TOKEN_NEEDS_TRUE
        );
        let both = VarScope {
            port: true,
            token: true,
        };
        with_scope(both, || {
            let url =
                Template::parse_for("http://h:${port}/?t=${token}", TokenUse::Allowed).unwrap();
            let v = Values {
                port: Some(4321),
                token: Some("abc"),
                ..values(Some(1), None)
            };
            assert_eq!(url.expand(&v).unwrap(), "http://h:4321/?t=abc");
            assert_eq!(
                url.expand(&values(None, None)).unwrap_err().to_string(),
                "${port} is not known: the backend is not running"
            );
            // Never where berth may show it (a health URL, an argument).
            assert_eq!(Template::parse("${token}").unwrap_err(), TOKEN_NOT_HERE);
        });
        // The scope ends with the manifest.
        assert_eq!(scope(), VarScope::default());
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
