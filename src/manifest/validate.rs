//! Bytes -> [`RawManifest`] -> [`Backend`], and every error as one line.
//!
//! The file is bounded before it is read (1 MiB, checked on the metadata and
//! again while reading), must be UTF-8 text, and is then handed to serde_yaml,
//! whose nesting limit (128) and alias expansion limit keep "billion laughs"
//! and deeply nested documents cheap. serde_yaml's message is split back into
//! line, column, field and text so that [`ManifestError`] shows them in one
//! consistent order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Places;
use super::error::{line_column, yaml_error};
use super::platform::Platform;
use super::raw::{RawManifest, RawPolicy};
use super::scalar::RESOURCES_VAR;
use super::{
    Backend, DEFAULT_READY_TIMEOUT, Executable, MAX_MANIFEST_BYTES, ManifestError, Probe,
    ReadySpec, RestartPolicy, RestartSpec, StopSpec,
};

/// Most `[` and `{` characters a manifest may hold (see `decode`).
pub const MAX_FLOW_OPENERS: usize = 1000;

impl ManifestError {
    /// An error about the whole file (no position, no field).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }
}

/// Reads `file` (at most [`MAX_MANIFEST_BYTES`]) and validates it.
pub fn load(file: &Path, places: &Places) -> Result<Backend, ManifestError> {
    let bytes = read_bounded(file)?;
    parse(file, &bytes, places)
}

fn too_big(file: &Path, size: u64) -> ManifestError {
    ManifestError::file(
        file,
        format!(
            "file is {size} bytes, over the limit of {MAX_MANIFEST_BYTES} bytes (1 MiB); not read"
        ),
    )
}

/// Reads the file, refusing anything but a regular file of at most 1 MiB
/// without reading more than one byte past the limit.
pub fn read_bounded(file: &Path) -> Result<Vec<u8>, ManifestError> {
    let io_err = |e: std::io::Error| ManifestError::file(file, format!("cannot read: {e}"));
    let meta = std::fs::metadata(file).map_err(io_err)?;
    if !meta.is_file() {
        return Err(ManifestError::file(file, "not a regular file"));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(too_big(file, meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    File::open(file)
        .and_then(|f| f.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        // The file grew between the metadata check and the read.
        return Err(too_big(file, bytes.len() as u64));
    }
    Ok(bytes)
}

/// Validates the text of a manifest. `file` is used for messages and to
/// resolve relative paths; nothing is read from disk. Pure: the fuzz target
/// calls it with arbitrary bytes.
pub fn parse(file: &Path, bytes: &[u8], places: &Places) -> Result<Backend, ManifestError> {
    let raw = parse_raw(file, bytes)?;
    Ok(to_backend(raw, file, places, Platform::current()))
}

/// Decodes and deserializes the text, with every check the types carry.
pub fn parse_raw(file: &Path, bytes: &[u8]) -> Result<RawManifest, ManifestError> {
    let text = decode(file, bytes)?;
    crate::vars::with_scope(scope_of(text), || {
        serde_yaml::from_str::<RawManifest>(text).map_err(|e| yaml_error(file, text, &e))
    })
}

/// `port: auto` and `token: true`, read before the rest of the document:
/// a field that uses `${port}` may come before `port` in the file, and is
/// still checked while serde visits it (its own line and column). A
/// document this pass cannot read is reported by the full pass.
fn scope_of(text: &str) -> crate::vars::VarScope {
    #[derive(serde::Deserialize)]
    struct Switches {
        port: Option<serde_yaml::Value>,
        token: Option<serde_yaml::Value>,
    }
    match serde_yaml::from_str::<Switches>(text) {
        Ok(s) => crate::vars::VarScope {
            port: s.port.as_ref().and_then(serde_yaml::Value::as_str) == Some("auto"),
            token: s.token.as_ref().and_then(serde_yaml::Value::as_bool) == Some(true),
        },
        Err(_) => crate::vars::VarScope::default(),
    }
}

/// UTF-8 text without NUL, not empty.
fn decode<'a>(file: &Path, bytes: &'a [u8]) -> Result<&'a str, ManifestError> {
    let at = |offset: usize, message: String| {
        let (line, column) = line_column(&bytes[..offset]);
        ManifestError {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(column),
            field: None,
            message,
        }
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        at(
            e.valid_up_to(),
            format!(
                "not UTF-8 text (byte 0x{:02x} at offset {}): a manifest is a YAML text file",
                bytes[e.valid_up_to()],
                e.valid_up_to()
            ),
        )
    })?;
    if let Some(nul) = text.find('\0') {
        return Err(at(
            nul,
            "binary data (a NUL byte): a manifest is a YAML text file".to_owned(),
        ));
    }
    if text.trim().is_empty() {
        return Err(ManifestError::file(
            file,
            "the file is empty: expected a mapping with id, name, version and executable",
        ));
    }
    // libyaml re-examines every open flow collection at each token, so deep
    // flow nesting (`[[[[...`) costs quadratic time long before serde_yaml's
    // depth limit applies. Every `[` and `{` is counted, wherever it is: a
    // bound that needs no YAML lexer and that no real manifest comes near.
    if let Some((offset, _)) = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| matches!(b, b'[' | b'{'))
        .nth(MAX_FLOW_OPENERS)
    {
        return Err(at(
            offset,
            format!(
                "more than {MAX_FLOW_OPENERS} '[' and '{{': nested too deeply or too many flow collections"
            ),
        ));
    }
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(ManifestError::file(
            file,
            "the file has only comments: expected a mapping with id, name, version and executable",
        ));
    }
    Ok(text)
}

/// Applies defaults, chooses the platform entry and makes paths absolute.
pub fn to_backend(raw: RawManifest, file: &Path, places: &Places, platform: Platform) -> Backend {
    let resources = places.resources.as_path();
    let file_abs = crate::paths::absolute(file);
    let folder = file_abs
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let table = &raw.executable.0;
    let executable = platform
        .choose(table.entries().map(|(k, _)| k))
        .and_then(|key| table.get(&key).map(|e| (key, e)))
        .map(|(key, entry)| Executable {
            candidates: entry
                .path
                .0
                .iter()
                .map(|p| folder.join(expand_resources(&p.0, resources)))
                .collect(),
            sha256: entry.sha256.0,
            platform_key: key,
            files: entry.files.as_ref().map(|f| super::Files {
                dir: PathBuf::from(&f.dir.0),
                sha256: f.sha256.0,
            }),
        });
    let stop = raw.stop.map_or_else(StopSpec::default, |s| {
        let d = StopSpec::default();
        StopSpec {
            signal: s.signal.unwrap_or(d.signal),
            timeout: s.timeout.map_or(d.timeout, |t| t.0),
        }
    });
    let restart = raw.restart.map_or_else(RestartSpec::default, |r| {
        let d = RestartSpec::default();
        RestartSpec {
            policy: r.policy.map_or(d.policy, policy),
            max_retries: r.max_retries.unwrap_or(d.max_retries),
            backoff: r.backoff.map_or(d.backoff, |b| b.0),
        }
    });
    // The visitor of `ready` guarantees exactly one probe.
    let ready = raw.ready.map_or_else(ReadySpec::default, |r| {
        let f = r.0;
        let probe = if let Some(m) = f.stdout_json {
            Probe::StdoutJson(m.0.into_iter().collect())
        } else if let Some(t) = f.tcp {
            Probe::Tcp(t.0)
        } else if let Some(h) = f.http {
            Probe::Http(h.0)
        } else if f.notify == Some(true) {
            Probe::Notify
        } else {
            Probe::Uptime(f.uptime.map_or(std::time::Duration::ZERO, |u| u.0))
        };
        ReadySpec {
            probe,
            timeout: f.timeout.map_or(DEFAULT_READY_TIMEOUT, |t| t.0),
        }
    });
    let sandbox = raw.sandbox.map(|s| {
        let id = raw.id.0.as_str();
        s.validate(&super::sandbox::Vars {
            resources,
            folder: &folder,
            tmp: &crate::paths::sandbox_tmp(&places.app, id),
            data: &crate::paths::sandbox_data(&places.app, id),
            home: &crate::paths::home(),
        })
    });
    Backend {
        id: raw.id.0,
        name: raw.name.0,
        version: raw.version.0,
        requires: raw.requires.map(|r| r.0),
        executable,
        args: raw.args.into_iter().map(|a| a.0).collect(),
        port_auto: raw.port == Some(super::raw::PortMode::Auto),
        token: raw.token == Some(true),
        env: raw
            .env
            .0
            .into_iter()
            .map(|(k, v)| (k.0, v.0))
            .collect::<BTreeMap<_, _>>(),
        workdir: raw
            .workdir
            .map_or_else(|| folder.clone(), |w| folder.join(w.0)),
        autostart: raw.autostart.unwrap_or(false),
        notify: raw.notify.unwrap_or(true),
        stop,
        restart,
        ready,
        health: raw.health.map(Into::into),
        update: raw.update.map(Into::into),
        actions: raw.actions.0.into_iter().map(Into::into).collect(),
        depends_on: raw.depends_on.into(),
        signed_by: None,
        sandbox,
        file: file_abs,
    }
}

/// `${resources}` -> the resources folder (only in `path`).
fn expand_resources(path: &str, resources: &Path) -> PathBuf {
    // Built as an OsString so a non-UTF-8 resources folder survives intact.
    let mut out = std::ffi::OsString::new();
    for (i, piece) in path.split(RESOURCES_VAR).enumerate() {
        if i > 0 {
            out.push(resources.as_os_str());
        }
        out.push(piece);
    }
    PathBuf::from(out)
}

fn policy(p: RawPolicy) -> RestartPolicy {
    match p {
        RawPolicy::Never => RestartPolicy::Never,
        RawPolicy::OnFailure => RestartPolicy::OnFailure,
        RawPolicy::Always => RestartPolicy::Always,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::StopSignal;
    use std::time::Duration;

    const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn full() -> String {
        format!(
            r#"id: python
name: Python Backend
version: 1.2.3-rc.1
requires: ">=0.1"
executable:
  linux:
    path: generic
    sha256: {ZEROS}
  linux-x86_64:
    path: [../dist/backend, "${{resources}}/python/backend"]
    sha256: "3f7c{rest}"
  windows-x86_64: {{ path: backend.exe, sha256: {ZEROS} }}
args: ["--port", 5000]
env: {{ BACKEND_MODE: tray, N: 1 }}
workdir: ../python
autostart: true
stop: {{ signal: INT, timeout: 500ms }}
restart: {{ policy: on-failure, max_retries: 0, backoff: 2m }}
ready: {{ stdout_json: {{ status: ready, port: 5000 }}, timeout: 1h }}
"#,
            rest = &ZEROS[4..]
        )
    }

    fn parse_on(text: &str, platform: Platform) -> Result<Backend, ManifestError> {
        let file = Path::new("/m/backends/python.yaml");
        parse_raw(file, text.as_bytes())
            .map(|raw| to_backend(raw, file, &PathBuf::from("/opt/res").into(), platform))
    }

    const LINUX_X64: Platform = Platform {
        os: "linux",
        arch: "x86_64",
    };

    #[test]
    fn update_section_values_and_defaults() {
        let with = |section: &str| {
            parse_on(&format!("{}update: {section}\n", full()), LINUX_X64)
                .unwrap()
                .update
                .unwrap()
        };
        let spec =
            with("{ feed: \"https://example.org/f/\", check: 6h, auto: true, probation: 90s }");
        assert_eq!(spec.feed.as_str(), "https://example.org/f/");
        assert_eq!(spec.check, Some(Duration::from_secs(6 * 3600)));
        assert!(spec.auto);
        assert_eq!(spec.probation, Duration::from_secs(90));
        let spec = with("{ feed: \"https://example.org/f/\" }");
        assert_eq!(spec.check, None);
        assert!(!spec.auto);
        assert_eq!(spec.probation, crate::manifest::update::DEFAULT_PROBATION);
        assert_eq!(spec.probation, Duration::from_secs(60));
    }

    #[test]
    fn every_field() {
        let b = parse_on(&full(), LINUX_X64).unwrap();
        assert_eq!(b.file, Path::new("/m/backends/python.yaml"));
        assert_eq!(b.id.as_str(), "python");
        assert_eq!(b.name, "Python Backend");
        assert_eq!(b.version, semver::Version::parse("1.2.3-rc.1").unwrap());
        assert_eq!(b.requires.unwrap().to_string(), ">=0.1");
        let exe = b.executable.unwrap();
        assert_eq!(exe.platform_key, "linux-x86_64");
        assert_eq!(
            exe.candidates,
            [
                PathBuf::from("/m/backends/../dist/backend"),
                PathBuf::from("/opt/res/python/backend")
            ]
        );
        assert_eq!(exe.sha256.to_string(), format!("3f7c{}", &ZEROS[4..]));
        assert_eq!(b.args, ["--port", "5000"]);
        assert_eq!(b.env["BACKEND_MODE"], "tray");
        assert_eq!(b.env["N"], "1");
        assert_eq!(b.workdir, Path::new("/m/backends/../python"));
        assert!(b.autostart);
        assert_eq!(
            b.stop,
            StopSpec {
                signal: StopSignal::Int,
                timeout: Duration::from_millis(500)
            }
        );
        assert_eq!(
            b.restart,
            RestartSpec {
                policy: RestartPolicy::OnFailure,
                max_retries: 0,
                backoff: Duration::from_secs(120)
            }
        );
        let ready = b.ready;
        assert_eq!(ready.timeout, Duration::from_secs(3600));
        let Probe::StdoutJson(map) = ready.probe else {
            panic!("expected stdout_json");
        };
        assert_eq!(map["status"], "ready");
        assert_eq!(map["port"], 5000);
    }

    #[test]
    fn platform_choice() {
        let text = full();
        let arm = Platform {
            os: "linux",
            arch: "aarch64",
        };
        let exe = parse_on(&text, arm).unwrap().executable.unwrap();
        assert_eq!(exe.platform_key, "linux");
        assert_eq!(exe.candidates, [PathBuf::from("/m/backends/generic")]);
        let win = Platform {
            os: "windows",
            arch: "x86_64",
        };
        assert_eq!(
            parse_on(&text, win)
                .unwrap()
                .executable
                .unwrap()
                .platform_key,
            "windows-x86_64"
        );
        let mac = Platform {
            os: "macos",
            arch: "aarch64",
        };
        assert_eq!(parse_on(&text, mac).unwrap().executable, None);
    }

    #[test]
    fn defaults() {
        let text = format!(
            "id: a\nname: A\nversion: 0.1.0\nexecutable: {{ linux: {{ path: /bin/a, sha256: {ZEROS} }} }}\n"
        );
        let b = parse_on(&text, LINUX_X64).unwrap();
        assert_eq!(b.requires, None);
        assert!(b.args.is_empty() && b.env.is_empty());
        assert_eq!(b.workdir, Path::new("/m/backends"));
        assert!(!b.autostart);
        assert_eq!(b.stop, StopSpec::default());
        assert_eq!(b.stop.timeout, Duration::from_secs(5));
        assert_eq!(b.restart, RestartSpec::default());
        assert_eq!(b.ready.probe, Probe::Uptime(Duration::from_secs(1)));
        assert_eq!(b.ready.timeout, Duration::from_secs(15));
        assert_eq!(b.health, None);
        assert_eq!(b.executable.unwrap().candidates, [PathBuf::from("/bin/a")]);
        let with_ready = format!("{text}ready: {{ tcp: \"127.0.0.1:5000\" }}\n");
        let ready = parse_on(&with_ready, LINUX_X64).unwrap().ready;
        assert_eq!(ready.timeout, Duration::from_secs(15));
        assert_eq!(ready.probe, Probe::Tcp("127.0.0.1:5000".into()));
    }

    #[test]
    fn errors_stay_on_one_line() {
        let text = "id: a\n\"x\\ny\": 1\n";
        let e = parse(
            Path::new("x.yaml"),
            text.as_bytes(),
            &PathBuf::from("/r").into(),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "unknown field `x\\ny`, expected one of `id`, `name`, `version`, `requires`, `executable`, `args`, `env`, `port`, `token`, `workdir`, `autostart`, `notify`, `stop`, `restart`, `ready`, `health`, `sandbox`, `update`, `actions`, `depends_on`"
        );
    }

    #[test]
    fn positions_of_text_errors() {
        let e = parse(
            Path::new("x.yaml"),
            b"id: a\n\xff\n",
            &PathBuf::from("/r").into(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(1)));
        assert!(e.message.starts_with("not UTF-8 text (byte 0xff"), "{e}");
        let e = parse(
            Path::new("x.yaml"),
            b"id: a\nna\0",
            &PathBuf::from("/r").into(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(3)));
    }
}
