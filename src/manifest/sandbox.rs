//! `sandbox`: the manifest's least-privilege section, as written (serde +
//! schemars types) and validated ([`Sandbox`]: absolute paths, ports, limits).
//!
//! Kept apart from `raw` and `validate` because it is one feature with its
//! own variables (`${data}`, `${tmp}`, `${home}`, `${manifest_dir}`): what the
//! kernel makes of it lives in [`crate::sandbox`].

use std::num::{NonZeroU16, NonZeroU64};
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::scalar::{ByteSize, DurationText, RESOURCES_VAR, SandboxPathText};

/// `sandbox`: confine the backend with Landlock and rlimits (Linux).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with filesystem, network, limits and best_effort"
)]
pub struct RawSandbox {
    /// Absent: no filesystem rule. Present: the backend reads only the system's
    /// runtime, its executable's folder and these paths, and writes only
    /// `${data}`, `${tmp}` and these paths.
    pub filesystem: Option<RawFilesystem>,
    /// TCP ports (Landlock ABI 4, Linux 6.7). Absent: no network rule.
    pub network: Option<RawNetwork>,
    /// Resource limits set before exec.
    pub limits: Option<RawLimits>,
    /// true: run with what the kernel can enforce and say what not; false
    /// (default): a rule the kernel cannot enforce means the backend is not launched.
    pub best_effort: Option<bool>,
}

/// `sandbox.filesystem`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with read and write")]
pub struct RawFilesystem {
    /// Folders or files it may read and execute beneath.
    #[serde(default)]
    pub read: Vec<SandboxPathText>,
    /// Folders or files it may read, write, create and remove beneath.
    #[serde(default)]
    pub write: Vec<SandboxPathText>,
}

/// `sandbox.network`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with bind and connect")]
pub struct RawNetwork {
    /// TCP ports it may bind; 0 allows an ephemeral port.
    #[serde(default)]
    pub bind: Vec<u16>,
    /// TCP ports it may connect to.
    #[serde(default)]
    pub connect: Vec<NonZeroU16>,
}

/// `sandbox.limits`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with memory, open_files, cpu_time and core_dumps"
)]
pub struct RawLimits {
    /// Address space (RLIMIT_AS), like 2GB.
    pub memory: Option<ByteSize>,
    /// Open descriptors (RLIMIT_NOFILE).
    pub open_files: Option<NonZeroU64>,
    /// CPU time (RLIMIT_CPU), rounded up to whole seconds; SIGXCPU, then SIGKILL a second later.
    pub cpu_time: Option<DurationText>,
    /// false: no core dumps (RLIMIT_CORE 0); true: up to the hard limit.
    pub core_dumps: Option<bool>,
}

/// A validated `sandbox`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sandbox {
    pub filesystem: Option<FsRules>,
    pub network: Option<NetRules>,
    pub limits: Limits,
    pub best_effort: bool,
    /// `${tmp}`: created 0700 at launch, passed as `TMPDIR`.
    pub tmp: PathBuf,
    /// `${data}`: created 0700 at launch.
    pub data: PathBuf,
}

/// Absolute paths, variables expanded. The base allowances are added at launch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FsRules {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetRules {
    pub bind: Vec<u16>,
    pub connect: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    pub memory: Option<u64>,
    pub open_files: Option<u64>,
    /// Whole seconds, at least 1.
    pub cpu_time: Option<u64>,
    pub core_dumps: Option<bool>,
}

/// What the variables of a sandbox path expand to.
pub struct Vars<'a> {
    pub resources: &'a Path,
    pub folder: &'a Path,
    pub tmp: &'a Path,
    pub data: &'a Path,
    pub home: &'a Path,
}

impl Vars<'_> {
    fn expand(&self, text: &str) -> PathBuf {
        let pairs: [(&str, &Path); 5] = [
            (RESOURCES_VAR, self.resources),
            ("${data}", self.data),
            ("${tmp}", self.tmp),
            ("${home}", self.home),
            ("${manifest_dir}", self.folder),
        ];
        // Built as an OsString so non-UTF-8 folders survive intact.
        let mut out = std::ffi::OsString::new();
        let mut rest = text;
        'outer: while !rest.is_empty() {
            for (var, value) in pairs {
                if let Some(after) = rest.strip_prefix(var) {
                    out.push(value.as_os_str());
                    rest = after;
                    continue 'outer;
                }
            }
            let skip = rest.chars().next().map_or(1, char::len_utf8);
            let next = rest[skip..].find("${").map_or(rest.len(), |i| i + skip);
            out.push(&rest[..next]);
            rest = &rest[next..];
        }
        self.folder.join(PathBuf::from(out))
    }
}

impl RawSandbox {
    /// Applies defaults and expands every path (relative ones against the
    /// manifest's folder).
    pub fn validate(self, vars: &Vars<'_>) -> Sandbox {
        let paths = |list: Vec<SandboxPathText>| list.iter().map(|p| vars.expand(&p.0)).collect();
        let limits = self.limits.map_or_else(Limits::default, |l| Limits {
            memory: l.memory.map(|m| m.0),
            open_files: l.open_files.map(NonZeroU64::get),
            cpu_time: l.cpu_time.map(|d| whole_seconds(d.0)),
            core_dumps: l.core_dumps,
        });
        Sandbox {
            filesystem: self.filesystem.map(|f| FsRules {
                read: paths(f.read),
                write: paths(f.write),
            }),
            network: self.network.map(|n| NetRules {
                bind: n.bind,
                connect: n.connect.into_iter().map(NonZeroU16::get).collect(),
            }),
            limits,
            best_effort: self.best_effort.unwrap_or(false),
            tmp: vars.tmp.to_path_buf(),
            data: vars.data.to_path_buf(),
        }
    }
}

/// RLIMIT_CPU counts seconds: round up, and never 0 (which would kill at once).
fn whole_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars<'static> {
        Vars {
            resources: Path::new("/opt/res"),
            folder: Path::new("/m/backends"),
            tmp: Path::new("/run/u/berth/tmp/x"),
            data: Path::new("/s/berth/data/x"),
            home: Path::new("/home/u"),
        }
    }

    #[test]
    fn variables_and_relative_paths() {
        let v = vars();
        assert_eq!(v.expand("${resources}/py"), Path::new("/opt/res/py"));
        assert_eq!(v.expand("${home}/.venv"), Path::new("/home/u/.venv"));
        assert_eq!(
            v.expand("${manifest_dir}/../x"),
            Path::new("/m/backends/../x")
        );
        assert_eq!(v.expand("${data}"), Path::new("/s/berth/data/x"));
        assert_eq!(
            v.expand("${tmp}/a${data}"),
            Path::new("/run/u/berth/tmp/x/a/s/berth/data/x")
        );
        assert_eq!(v.expand("lib"), Path::new("/m/backends/lib"));
        assert_eq!(v.expand("/abs/$x"), Path::new("/abs/$x"));
    }

    #[test]
    fn cpu_time_rounds_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3600)), 3600);
    }
}

#[cfg(test)]
mod parse_tests {
    use std::path::Path;

    const HEAD: &str = "id: a\nname: A\nversion: 0.1.0\nexecutable: { linux: { path: /bin/a, sha256: \"0000000000000000000000000000000000000000000000000000000000000000\" } }\n";

    fn parse(sandbox: &str) -> Result<super::Sandbox, String> {
        let text = format!("{HEAD}sandbox:\n{sandbox}");
        crate::manifest::parse(
            Path::new("/m/a.yaml"),
            text.as_bytes(),
            &std::path::PathBuf::from("/res").into(),
        )
        .map(|b| b.sandbox.expect("a sandbox"))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn every_field() {
        let s = parse(
            "  filesystem: { read: [\"${resources}\", lib], write: [\"${data}/x\"] }\n  network: { bind: [0, 8080], connect: [5432] }\n  limits: { memory: 2GB, open_files: 4096, cpu_time: 1h, core_dumps: false }\n  best_effort: true\n",
        )
        .unwrap();
        let fs = s.filesystem.unwrap();
        assert_eq!(fs.read, [Path::new("/res"), Path::new("/m/lib")]);
        assert!(fs.write[0].ends_with("berth/data/a/x"), "{:?}", fs.write);
        assert_eq!(s.network.unwrap().connect, [5432]);
        assert_eq!(s.limits.memory, Some(2 << 30));
        assert_eq!(s.limits.open_files, Some(4096));
        assert_eq!(s.limits.cpu_time, Some(3600));
        assert_eq!(s.limits.core_dumps, Some(false));
        assert!(s.best_effort);
        assert!(s.tmp.ends_with("tmp/a"), "{:?}", s.tmp);
    }

    #[test]
    fn tmp_and_data_are_the_instances() {
        let text = format!("{HEAD}sandbox:\n  limits: {{ open_files: 64 }}\n");
        let app = crate::paths::AppName::new("acme").unwrap();
        let places = crate::manifest::Places::new("/res", app);
        let s = crate::manifest::parse(Path::new("/m/a.yaml"), text.as_bytes(), &places)
            .unwrap()
            .sandbox
            .unwrap();
        assert!(s.data.ends_with("acme/data/a"), "{:?}", s.data);
        // `$XDG_RUNTIME_DIR/acme/tmp/a`, else `/tmp/acme-$UID/tmp/a`.
        let tmp = s.tmp.to_string_lossy();
        assert!(tmp.contains("/acme") && tmp.ends_with("/tmp/a"), "{tmp}");
    }

    #[test]
    fn defaults() {
        let s = parse("  limits: { open_files: 64 }\n").unwrap();
        assert_eq!(s.filesystem, None);
        assert_eq!(s.network, None);
        assert!(!s.best_effort, "strict unless asked");
        let s = parse("  filesystem: {}\n  network: {}\n").unwrap();
        assert_eq!(s.filesystem.unwrap(), super::FsRules::default());
        assert_eq!(s.network.unwrap(), super::NetRules::default());
    }

    #[test]
    fn errors_name_line_and_field() {
        let cases = [
            (
                "  filesystem: { raed: [] }\n",
                "line 6 column 17: sandbox.filesystem: unknown field `raed`",
            ),
            (
                "  filesystem: { read: [\"${nope}/x\"] }\n",
                "sandbox.filesystem.read[0]: unknown variable `${nope}`",
            ),
            (
                "  network: { connect: [0] }\n",
                "sandbox.network.connect[0]: invalid value: integer `0`",
            ),
            (
                "  network: { bind: [70000] }\n",
                "sandbox.network.bind[0]: invalid value: integer `70000`",
            ),
            (
                "  limits: { memory: 2XB }\n",
                "sandbox.limits.memory: invalid size \"2XB\"",
            ),
            (
                "  limits: { open_files: 0 }\n",
                "sandbox.limits.open_files: invalid value: integer `0`",
            ),
            ("  limits: { cpu_time: 5 }\n", "sandbox.limits.cpu_time: "),
            (
                "  best_effort: yes please\n",
                "sandbox.best_effort: invalid type",
            ),
            ("  firewall: {}\n", "sandbox: unknown field `firewall`"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
