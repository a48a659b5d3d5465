//! The manifest exactly as written: serde + schemars types.
//!
//! These types mirror the YAML one to one, so the same definitions read the
//! file and generate `schemas/backend.schema.json`. Every check that can be
//! tied to one node of the document happens while serde visits that node (see
//! [`super::scalar`]), so its error carries the node's line and column.
//! Doc comments become the schema's descriptions, which editors show.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::scalar::{
    Backoff, DurationText, EnvName, HttpUrl, Id, Label, PathText, RunText, SemReq, SemVersion,
    Sha256, TcpAddr, TreeDir,
};
use super::unique_map::UniqueMap;

/// A berth backend manifest (v1): one backend per file.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a manifest mapping with id, name, version and executable"
)]
#[schemars(title = "berth backend manifest v1")]
pub struct RawManifest {
    /// Unique backend id.
    pub id: Id,
    /// The tray submenu's label.
    pub name: Label,
    /// Semver version of the backend; the highest compatible version of an id wins.
    pub version: SemVersion,
    /// Semver requirement on berth's own version (pre-release tag ignored).
    pub requires: Option<SemReq>,
    /// One entry per platform; the most specific key (`linux-x86_64` before `linux`) wins.
    pub executable: Executables,
    /// Arguments passed as-is, never through a shell (`${port}` expanded with `port: auto`).
    #[serde(default)]
    pub args: Vec<RunText>,
    /// Variables added to the inherited environment (`${port}` expanded with `port: auto`).
    #[serde(default)]
    pub env: UniqueMap<EnvName, RunText>,
    /// `auto`: berth picks a free 127.0.0.1 TCP port before each run, passed as `PORT` and `${port}` (v3).
    pub port: Option<PortMode>,
    /// `true`: a fresh random secret per run in `BERTH_TOKEN`, `${token}` in `open` actions and `health.http` headers (v3).
    pub token: Option<bool>,
    /// Working directory, relative to the manifest's folder (default: the manifest's folder).
    pub workdir: Option<PathText>,
    /// Start when berth starts (default false: start on demand).
    pub autostart: Option<bool>,
    /// Desktop notifications when it crashes, gives up or fails its checks (default true).
    pub notify: Option<bool>,
    /// How to stop (default: TERM, then KILL after 5s).
    pub stop: Option<RawStop>,
    /// What to do when the process ends by itself (default: never restart).
    pub restart: Option<RawRestart>,
    /// How to tell the backend is ready (default: `{ uptime: 1s }`, up for a second).
    pub ready: Option<RawReady>,
    /// One check that the backend is still working, from `running` on (v2).
    pub health: Option<super::health::RawHealth>,
    /// Least privilege (Linux): Landlock filesystem and TCP rules, rlimits.
    pub sandbox: Option<super::sandbox::RawSandbox>,
    /// Where the backend's signed releases are published (v3): `berth update ID --check` reads them.
    pub update: Option<super::update::RawUpdate>,
    /// Extra items of the backend's submenu (open a URL, send a JSON line, restart with arguments).
    #[serde(default)]
    pub actions: super::actions::RawActions,
    /// Backends to start first, each with how far it must get: `db: healthy` or `db: { condition: running, restart: true }` (v3).
    #[serde(default)]
    pub depends_on: super::depends::RawDependsOn,
}

/// `port`: how the backend's port is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PortMode {
    /// A free 127.0.0.1 TCP port, chosen by berth before each run.
    Auto,
}

/// `stop`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with signal and timeout")]
pub struct RawStop {
    /// Signal sent to the process group (default TERM).
    pub signal: Option<super::StopSignal>,
    /// Time to wait after the signal before KILL (default 5s).
    pub timeout: Option<DurationText>,
}

/// `restart`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with policy, max_retries and backoff"
)]
pub struct RawRestart {
    /// never (default), on-failure (non-zero exit or a signal berth did not send), always.
    pub policy: Option<RawPolicy>,
    /// Restarts before giving up (default 3; 0: none).
    #[schemars(range(max = 4294967295u32))]
    pub max_retries: Option<u32>,
    /// First delay before a restart, doubled each time up to 30s (default 1s, at least 100ms).
    pub backoff: Option<Backoff>,
}

/// A restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RawPolicy {
    Never,
    OnFailure,
    Always,
}

/// One platform's executable.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with path, sha256 and optionally files"
)]
pub struct RawExecutable {
    /// One path or a list of candidates tried in order; relative to the
    /// manifest's folder; `${resources}` is berth's resources folder.
    pub path: PathSpec,
    /// SHA-256 of the executable: 64 lowercase hex digits.
    pub sha256: Sha256,
    /// A folder the program loads later (a PyInstaller onedir build's
    /// `_internal`), pinned by its tree digest (`berth hash DIR`).
    pub files: Option<RawFiles>,
}

/// `files`: a folder beside the executable, pinned by its tree digest.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with dir and sha256")]
pub struct RawFiles {
    /// The folder, relative to the chosen executable's folder (no `..`).
    pub dir: TreeDir,
    /// Its tree digest, as `berth hash DIR` prints it: 64 lowercase hex digits.
    pub sha256: Sha256,
}

/// `executable`: the platform table. A struct rather than a map so that an
/// unknown or duplicated key is reported by serde with the list of valid ones.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a map of platform keys")]
pub struct PlatformTable {
    pub linux: Option<RawExecutable>,
    #[serde(rename = "linux-x86_64")]
    pub linux_x86_64: Option<RawExecutable>,
    #[serde(rename = "linux-aarch64")]
    pub linux_aarch64: Option<RawExecutable>,
    pub macos: Option<RawExecutable>,
    #[serde(rename = "macos-x86_64")]
    pub macos_x86_64: Option<RawExecutable>,
    #[serde(rename = "macos-aarch64")]
    pub macos_aarch64: Option<RawExecutable>,
    pub windows: Option<RawExecutable>,
    #[serde(rename = "windows-x86_64")]
    pub windows_x86_64: Option<RawExecutable>,
    #[serde(rename = "windows-aarch64")]
    pub windows_aarch64: Option<RawExecutable>,
}

impl PlatformTable {
    /// Every entry with its key.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &RawExecutable)> + Clone {
        [
            ("linux", &self.linux),
            ("linux-x86_64", &self.linux_x86_64),
            ("linux-aarch64", &self.linux_aarch64),
            ("macos", &self.macos),
            ("macos-x86_64", &self.macos_x86_64),
            ("macos-aarch64", &self.macos_aarch64),
            ("windows", &self.windows),
            ("windows-x86_64", &self.windows_x86_64),
            ("windows-aarch64", &self.windows_aarch64),
        ]
        .into_iter()
        .filter_map(|(k, e)| e.as_ref().map(|e| (k, e)))
    }

    /// Every platform key, in the order of [`Self::entries`].
    pub fn keys(&self) -> [&'static str; 9] {
        [
            "linux",
            "linux-x86_64",
            "linux-aarch64",
            "macos",
            "macos-x86_64",
            "macos-aarch64",
            "windows",
            "windows-x86_64",
            "windows-aarch64",
        ]
    }

    pub fn get(&self, key: &str) -> Option<&RawExecutable> {
        self.entries().find(|(k, _)| *k == key).map(|(_, e)| e)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut RawExecutable> {
        let slot = match key {
            "linux" => &mut self.linux,
            "linux-x86_64" => &mut self.linux_x86_64,
            "linux-aarch64" => &mut self.linux_aarch64,
            "macos" => &mut self.macos,
            "macos-x86_64" => &mut self.macos_x86_64,
            "macos-aarch64" => &mut self.macos_aarch64,
            "windows" => &mut self.windows,
            "windows-x86_64" => &mut self.windows_x86_64,
            "windows-aarch64" => &mut self.windows_aarch64,
            _ => return None,
        };
        slot.as_mut()
    }
}

/// `executable`, checked to have at least one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Executables(pub PlatformTable);

impl<'de> Deserialize<'de> for Executables {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Executables;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of platform keys (like linux-x86_64) to { path, sha256 }")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Executables, A::Error> {
                let table = PlatformTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if table.entries().next().is_none() {
                    return Err(de::Error::custom(
                        "no platform entry: expected at least one of linux, linux-x86_64, macos, windows-x86_64, ...",
                    ));
                }
                Ok(Executables(table))
            }
        }
        d.deserialize_map(V)
    }
}

impl JsonSchema for Executables {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Executables")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = PlatformTable::json_schema(generator);
        // At least one entry that is not null (`linux: ~` alone is no entry).
        let keys = PlatformTable::default().keys();
        let any: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| serde_json::json!({ "required": [k], "properties": { *k: { "type": "object" } } }))
            .collect();
        schema.insert("anyOf".to_owned(), any.into());
        schema
    }
}

/// `path`: one string or a non-empty list of candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct PathSpec(pub Vec<PathText>);

impl<'de> Deserialize<'de> for PathSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PathSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PathSpec, E> {
                use super::scalar::Scalar as _;
                PathText::parse(v)
                    .map(|p| PathSpec(vec![p]))
                    .map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PathSpec, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<PathText>()? {
                    out.push(p);
                }
                if out.is_empty() {
                    return Err(de::Error::custom("the list of paths is empty"));
                }
                Ok(PathSpec(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for PathSpec {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("PathSpec")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "string", "minLength": 1 },
                { "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1 }
            ]
        })
    }
}

/// The fields of `ready`, before the one-probe check.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with one probe and a timeout"
)]
pub struct ReadyFields {
    /// Ready once a stdout line is a JSON object holding every given key with the given value.
    pub stdout_json: Option<UniqueMap<String, serde_json::Value>>,
    /// Ready once a TCP connect to host:port succeeds (`auto`: the port berth chose).
    pub tcp: Option<TcpAddr>,
    /// Ready once a GET of this http:// URL answers 2xx.
    pub http: Option<HttpUrl>,
    /// `true`: ready once the backend sends sd_notify's `READY=1` to `$NOTIFY_SOCKET`.
    pub notify: Option<bool>,
    /// Ready once the process has stayed up this long (`0s`: at once).
    pub uptime: Option<DurationText>,
    /// How long to wait before reporting "not ready" (default 15s).
    pub timeout: Option<DurationText>,
}

/// `ready`: exactly one probe plus an optional timeout.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReady(pub ReadyFields);

impl<'de> Deserialize<'de> for RawReady {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawReady;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping with one of stdout_json, tcp, http, notify or uptime")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawReady, A::Error> {
                let f = ReadyFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if f.notify == Some(false) {
                    return Err(de::Error::custom(
                        "notify: false is not a probe: write notify: true, or another probe",
                    ));
                }
                super::one_of::exactly_one(
                    "probe",
                    &[
                        ("stdout_json", f.stdout_json.is_some()),
                        ("tcp", f.tcp.is_some()),
                        ("http", f.http.is_some()),
                        ("notify", f.notify.is_some()),
                        ("uptime", f.uptime.is_some()),
                    ],
                )?;
                if f.stdout_json.as_ref().is_some_and(|m| m.0.is_empty()) {
                    return Err(de::Error::custom("stdout_json must name at least one key"));
                }
                Ok(RawReady(f))
            }
        }
        d.deserialize_map(V)
    }
}

impl JsonSchema for RawReady {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Ready")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = ReadyFields::json_schema(generator);
        schema.insert(
            "description".to_owned(),
            "Exactly one probe (stdout_json, tcp, http, notify or uptime) plus an optional timeout (default 15s). Without `ready`: { uptime: 1s }."
                .into(),
        );
        schema.insert(
            "oneOf".to_owned(),
            // A null probe counts as absent, as in berth; an empty
            // stdout_json names nothing to wait for.
            serde_json::json!([
                { "required": ["stdout_json"], "properties": { "stdout_json": { "type": "object", "minProperties": 1 } } },
                { "required": ["tcp"], "properties": { "tcp": { "type": "string" } } },
                { "required": ["http"], "properties": { "http": { "type": "string" } } },
                { "required": ["notify"], "properties": { "notify": { "const": true } } },
                { "required": ["uptime"], "properties": { "uptime": { "type": "string" } } }
            ]),
        );
        schema
    }
}

/// The JSON Schema of a manifest, as checked in at `schemas/backend.schema.json`.
pub fn json_schema() -> Schema {
    schemars::schema_for!(RawManifest)
}
