//! `depends_on` (v3): the backends that must have got somewhere before this
//! one is spawned.
//!
//! Each entry is checked while serde visits it, like every other field, so a
//! bad id, an unknown condition or a typo in the long form is reported with
//! its line, column and field. What needs the other manifests (an id no
//! manifest defines, `healthy` on a dependency without `health`, a cycle)
//! is the graph's to find: see [`crate::graph`].
//!
//! Two spellings, as in docker compose: `db: healthy` and
//! `db: { condition: healthy, restart: true }`. In the long form `condition`
//! may be left out and is then `started`, docker compose's default too.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::BackendId;
use super::scalar::Id;
use super::unique_map::{KeyName, UniqueMap};

/// How far a dependency must get before the backend that needs it is spawned.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    serde::Serialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// Its process exists.
    Started,
    /// Its readiness probe matched (state `running`).
    Running,
    /// Its first health check passed (the dependency must have `health`).
    Healthy,
}

impl Condition {
    /// The word the manifest and `status --json` use.
    pub fn word(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Running => "running",
            Self::Healthy => "healthy",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One validated edge of `depends_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dependency {
    pub condition: Condition,
    /// `restart: true`: when the dependency stops or restarts for any reason,
    /// this backend is stopped first and started again once the dependency
    /// is back at its condition. Default false.
    pub restart: bool,
}

/// `depends_on` as validated: dependency id -> edge.
pub type DependsOn = BTreeMap<BackendId, Dependency>;

impl KeyName for Id {
    fn key_name(&self) -> &str {
        self.0.as_str()
    }
}

/// `depends_on` as written: unique ids, each with a condition.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct RawDependsOn(pub UniqueMap<Id, RawDependency>);

impl From<RawDependsOn> for DependsOn {
    fn from(raw: RawDependsOn) -> Self {
        raw.0.0.into_iter().map(|(id, d)| (id.0, d.0)).collect()
    }
}

/// The long form's fields.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with condition and restart"
)]
pub struct DependencyFields {
    /// started (default), running or healthy.
    pub condition: Option<Condition>,
    /// Stop this backend first whenever the dependency stops or restarts, and start it again once the dependency is back (default false).
    pub restart: Option<bool>,
}

/// One entry: `started`, `running`, `healthy`, or `{ condition, restart }`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDependency(pub Dependency);

impl<'de> Deserialize<'de> for RawDependency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDependency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a condition (started, running or healthy) or a mapping with condition and restart",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDependency, E> {
                let condition = Condition::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                Ok(RawDependency(Dependency {
                    condition,
                    restart: false,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDependency, A::Error> {
                let f = DependencyFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawDependency(Dependency {
                    condition: f.condition.unwrap_or(Condition::Started),
                    restart: f.restart.unwrap_or(false),
                }))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RawDependency {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Dependency")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "How far the dependency must get before this backend is spawned: a condition, or { condition, restart }.",
            "anyOf": [
                generator.subschema_for::<Condition>(),
                generator.subschema_for::<DependencyFields>(),
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn parse(depends: &str) -> Result<super::DependsOn, crate::manifest::ManifestError> {
        let text = format!(
            "id: api\nname: A\nversion: 0.1.0\nexecutable: {{ linux: {{ path: /bin/a, sha256: {ZEROS} }} }}\n{depends}"
        );
        crate::manifest::parse(
            Path::new("api.yaml"),
            text.as_bytes(),
            &std::path::PathBuf::from("/r").into(),
        )
        .map(|b| b.depends_on)
    }

    #[test]
    fn short_and_long_forms() {
        let deps = parse(
            "depends_on:\n  db: healthy\n  models: { condition: running, restart: true }\n  cache: { restart: true }\n  log: started\n",
        )
        .unwrap();
        let words: Vec<String> = deps
            .iter()
            .map(|(id, d)| format!("{id}={}/{}", d.condition, d.restart))
            .collect();
        assert_eq!(
            words,
            [
                "cache=started/true",
                "db=healthy/false",
                "log=started/false",
                "models=running/true"
            ]
        );
        assert!(parse("").unwrap().is_empty());
        assert!(parse("depends_on: {}\n").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_line_column_and_field() {
        let e = parse("depends_on:\n  db: ready\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(6), Some(7)), "{e}");
        assert_eq!(e.field.as_deref(), Some("depends_on.db"), "{e}");
        assert!(e.message.contains("started"), "{e}");

        let e = parse("depends_on:\n  Bad_Id: started\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(6), Some(3)), "{e}");
        assert!(e.message.starts_with("invalid id \"Bad_Id\""), "{e}");

        let e = parse("depends_on:\n  db: { condition: running, restat: true }\n").unwrap_err();
        assert!(e.message.starts_with("unknown field `restat`"), "{e}");
        assert_eq!(e.line, Some(6), "{e}");

        let e = parse("depends_on:\n  db: started\n  db: running\n").unwrap_err();
        assert!(e.message.contains("duplicate key `db`"), "{e}");

        let e = parse("depends_on: [db]\n").unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");

        let e = parse("depends_on:\n  db: { restart: yes please }\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("depends_on.db.restart"), "{e}");
    }

    #[test]
    fn an_edit_of_depends_on_alone_runs_the_same_process() {
        let text = |depends: &str, args: &str| {
            format!(
                "id: api\nname: A\nversion: 0.1.0\nexecutable: {{ linux: {{ path: /bin/a, sha256: {ZEROS} }} }}\nargs: [{args}]\n{depends}"
            )
        };
        let load = |t: String| {
            crate::manifest::parse(
                Path::new("api.yaml"),
                t.as_bytes(),
                &std::path::PathBuf::from("/r").into(),
            )
            .unwrap()
        };
        let before = load(text("", "x"));
        let more_deps = load(text("depends_on: { db: running }\n", "x"));
        let other_args = load(text("depends_on: { db: running }\n", "y"));
        assert!(before.runs_like(&before) && before.runs_like(&more_deps));
        assert!(!more_deps.runs_like(&other_args) && !before.runs_like(&other_args));
    }
}
