//! Helpers shared by the integration tests: temp dirs with executable
//! scripts, backends built directly in Rust, waiting on snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::manifest::{Backend, BackendId, Executable, RestartSpec, StopSpec};
use berth::registry::{Catalog, Entry, Standing};
use berth::status::{BackendStatus, Config};
use berth::supervisor::{self, SupervisorHandle};

/// Writes an executable `#!/bin/sh` script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A backend running `exe`, with its current digest and defaults otherwise.
pub fn backend(dir: &Path, id: &str, exe: &Path) -> Backend {
    Backend {
        file: dir.join(format!("{id}.yaml")),
        id: BackendId::new(id).unwrap(),
        name: format!("Backend {id}"),
        version: semver::Version::new(1, 0, 0),
        requires: None,
        executable: Some(Executable {
            candidates: vec![exe.to_path_buf()],
            sha256: berth::integrity::hash_file(exe).unwrap(),
            platform_key: "linux".into(),
            files: None,
        }),
        args: vec![],
        env: BTreeMap::new(),
        workdir: dir.to_path_buf(),
        autostart: false,
        notify: true,
        stop: StopSpec {
            timeout: Duration::from_secs(2),
            ..StopSpec::default()
        },
        restart: RestartSpec::default(),
        ready: berth::manifest::ReadySpec::at_once(),
        health: None,
        actions: vec![],
        signed_by: None,
        sandbox: None,
        port_auto: false,
        token: false,
        depends_on: Default::default(),
        update: None,
    }
}

/// A catalog in which every backend wins.
pub fn catalog(backends: impl IntoIterator<Item = Backend>) -> Catalog {
    Catalog {
        entries: backends
            .into_iter()
            .map(|b| Entry {
                file: b.file.clone(),
                backend: Some(Arc::new(b)),
                error: None,
                standing: Standing::Winner,
                dependency_error: None,
            })
            .collect(),
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub sup: SupervisorHandle,
}

impl Env {
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.log_dir().join(format!("{id}.log"))).unwrap_or_default()
    }
}

/// A supervisor with a guardian (the real berth binary) and logs in a temp dir.
pub fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor::spawn_with_guardian(
        Config {
            log_dir: dir.path().join("logs"),
            log_max_size: 10 * 1024 * 1024,
            log_backups: 3,
            notify_dir: dir.path().join("run/notify"),
            env_remove: Vec::new(),
            updates_dir: None,
        },
        Some(PathBuf::from(env!("CARGO_BIN_EXE_berth"))),
    );
    Env { dir, sup }
}

/// Waits until the status of `id` satisfies `pred`; panics with the last
/// status after `timeout`.
pub async fn wait_for(
    sup: &SupervisorHandle,
    id: &str,
    timeout: Duration,
    pred: impl Fn(&BackendStatus) -> bool,
) -> BackendStatus {
    let deadline = Instant::now() + timeout;
    let mut rx = sup.subscribe();
    loop {
        if let Some(s) = rx.borrow_and_update().get(id)
            && pred(s)
        {
            return s.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
            panic!("timed out; last status: {:#?}", sup.snapshot().get(id));
        }
    }
}

/// Is `pid` a process that still runs (zombies count as gone)?
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let rest = &stat[stat.rfind(')').unwrap() + 1..];
            !rest.trim_start().starts_with('Z')
        }
        Err(_) => false,
    }
}

/// Waits until a file exists and holds a non-empty first line; returns it.
pub fn wait_file(path: &Path, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Some(line) = text.lines().next().filter(|l| !l.is_empty())
            && text.ends_with('\n')
        {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `pid` is gone; false on timeout.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while running(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Every non-zombie process whose process group is `pgid`.
pub fn group_pids(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .collect();
        if rest[0] != "Z" && rest[2].parse::<u32>() == Ok(pgid) {
            out.push(pid);
        }
    }
    out
}

/// The children of `parent` running `__guardian`.
pub fn guardians_of(parent: u32) -> Vec<u32> {
    let mut found: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: u32 = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
            (ppid == parent && cmdline.contains("__guardian") && running(pid)).then_some(pid)
        })
        .collect();
    found.sort();
    found
}

/// The real PyInstaller onefile build of `python/backend.py`. Absent: the
/// test fails and says how to build it, unless `BERTH_SKIP_PYINSTALLER=1`
/// (then `None`: the caller skips).
pub fn pyinstaller_backend() -> Option<PathBuf> {
    pyinstaller_build("python/dist/backend", "python/build.sh")
}

/// The executable of a PyInstaller build at `exe` (in the source tree),
/// built by the command `how`. Absent: the test fails and says how to build
/// it, unless `BERTH_SKIP_PYINSTALLER=1` (then `None`: the caller skips).
pub fn pyinstaller_build(exe: &str, how: &str) -> Option<PathBuf> {
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join(exe);
    if exe.is_file() {
        return Some(exe);
    }
    if std::env::var("BERTH_SKIP_PYINSTALLER").as_deref() == Ok("1") {
        eprintln!(
            "skipped: {} is absent and BERTH_SKIP_PYINSTALLER=1",
            exe.display()
        );
        return None;
    }
    panic!(
        "{} is missing: run {how} first (or set BERTH_SKIP_PYINSTALLER=1 to skip)",
        exe.display()
    );
}

/// The `supervise` example binary.
pub fn example_supervise() -> PathBuf {
    example("supervise")
}

/// The example binary `name` (built by `cargo test`, else built here;
/// `cargo test --test it` does not build examples, so one older than this
/// test binary is rebuilt rather than run stale).
pub fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let exe = deps
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&exe) < modified(&deps) {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success());
    }
    exe
}

/// A fake `xdg-open` in `dir/bin` that appends its argument to
/// `dir/opened.txt` (the real one would open a browser here): returns the
/// `PATH` that finds it first, and the record.
pub fn recording_opener(dir: &Path) -> (String, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.join("opened.txt");
    let script = bin.join("xdg-open");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", record.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    (path, record)
}
