//! Hot reload end to end: a real folder, real file operations (writes,
//! renames, deletes, editor leftovers), the real notify watcher, and the real
//! supervisor running shell-script backends whose digests are in the YAML.
//!
//! "Nothing spurious" is checked twice: on every snapshot the supervisor
//! published (a recorder task), and on the number of catalogs the watcher
//! applied (an intermediate catalog that a later one replaced before the
//! snapshot recorder woke up still counts there).

use berth::verb::Verb;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::status::{Snapshot, State};
use berth::supervisor::SupervisorHandle;
use berth::watch::{self, Progress, WatchConfig, WatchHandle};

use crate::util::{self, running, script, wait_gone};

mod editing;
mod signed;
mod table;

/// Deadline for anything to happen: well over 3x the 100 ms debounce plus a
/// graceful stop, on a loaded machine.
const T: Duration = Duration::from_secs(10);
/// How long to keep watching for something that must not happen: several
/// debounce periods.
const QUIET: Duration = Duration::from_millis(600);

struct Fx {
    env: util::Env,
    dir: PathBuf,
    watch: WatchHandle,
    seen: Arc<Mutex<Vec<Arc<Snapshot>>>>,
}

impl Fx {
    /// A backends folder holding `files` before the watcher starts.
    async fn new(files: &[(&str, String)]) -> Self {
        let env = util::env();
        let dir = env.path().join("backends");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Self::start(env, dir).await
    }

    /// The script [`exe`] made for `name` in this fixture's folder.
    fn exe_path(&self, name: &str) -> PathBuf {
        self.env.path().join("bin").join(name)
    }

    async fn start(env: util::Env, dir: PathBuf) -> Self {
        Self::start_with(env, dir, Arc::new(berth::trust::Trust::none())).await
    }

    /// [`Fx::start`] judging signatures with `trust`.
    async fn start_with(env: util::Env, dir: PathBuf, trust: Arc<berth::trust::Trust>) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut rx = env.sup.subscribe();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let snap = rx.borrow_and_update().clone();
                record.lock().unwrap().push(snap);
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
        let mut config = WatchConfig::new(vec![dir.clone()], env.path().join("resources"));
        config.trust = trust;
        let watch = watch::spawn(config, env.sup.clone()).await.unwrap();
        Self {
            env,
            dir,
            watch,
            seen,
        }
    }

    fn sup(&self) -> &SupervisorHandle {
        &self.env.sup
    }

    fn progress(&self) -> Progress {
        *self.watch.progress().borrow()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn pid(&self, id: &str) -> Option<u32> {
        self.sup().snapshot().get(id).and_then(|s| s.pid)
    }

    async fn start_running(&self, id: &str) -> u32 {
        self.sup().command(id, Verb::start()).await.unwrap();
        let s = util::wait_for(self.sup(), id, T, |s| s.state == State::Running).await;
        s.pid.unwrap()
    }

    /// Waits until `pred` holds for the latest snapshot.
    async fn wait(&self, what: &str, pred: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
        let deadline = Instant::now() + T;
        let mut rx = self.sup().subscribe();
        loop {
            let snap = rx.borrow_and_update().clone();
            if pred(&snap) {
                return snap;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                panic!("timed out waiting for {what}; last snapshot: {snap:#?}");
            }
        }
    }

    /// Waits until the watcher has run `n` more reloads than `since`.
    async fn wait_reloads(&self, since: Progress, n: u64) {
        let deadline = Instant::now() + T;
        let mut rx = self.watch.progress();
        while rx.borrow_and_update().reloads < since.reloads + n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && tokio::time::timeout(left, rx.changed()).await.is_ok(),
                "the watcher never reloaded: {:?}",
                self.progress()
            );
        }
    }

    /// Forgets the snapshots recorded so far, once the recorder has caught up
    /// with the latest one: [`Fx::assert_never`] looks at that one and every
    /// later one.
    async fn mark(&self) {
        let deadline = Instant::now() + T;
        loop {
            {
                let mut seen = self.seen.lock().unwrap();
                let current = self.sup().snapshot();
                if seen.last().is_some_and(|s| Arc::ptr_eq(s, &current)) {
                    seen.clear();
                    seen.push(current);
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the recorder never caught up");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Panics if any snapshot recorded since the last mark satisfies `bad`.
    fn assert_never(&self, what: &str, bad: impl Fn(&Snapshot) -> bool) {
        let seen = self.seen.lock().unwrap();
        if let Some(snap) = seen.iter().find(|s| bad(s)) {
            panic!("{what}: {snap:#?}");
        }
    }

    async fn finish(self) {
        self.watch.shutdown().await;
        self.env.sup.shutdown().await;
    }
}

/// A backend script that records its pid and `$MODE`, then sleeps.
fn exe(dir: &Path, name: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(
        &bin,
        name,
        &format!(
            "echo \"$$ ${{MODE:-none}}\" >> {}\nexec sleep 300",
            dir.join(format!("{name}.runs")).display()
        ),
    )
}

/// A valid manifest for `exe`, with its current digest, plus `extra` lines.
fn manifest(id: &str, version: &str, exe: &Path, extra: &str) -> String {
    let digest = berth::integrity::hash_file(exe).unwrap();
    format!(
        "id: {id}\nname: Backend {id}\nversion: {version}\nexecutable:\n  linux:\n    path: {}\n    sha256: {digest}\nstop: {{ signal: TERM, timeout: 2s }}\n{extra}",
        exe.display()
    )
}

/// Waits until the backend script `name` has run `n` times; returns the
/// `$MODE` of the last run.
fn wait_runs(dir: &Path, name: &str, n: usize) -> String {
    let path = dir.join(format!("{name}.runs"));
    let deadline = Instant::now() + T;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= n && text.ends_with('\n') {
            return lines[n - 1].split(' ').nth(1).unwrap_or("").to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{name} never ran {n} times: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn has_error(snap: &Snapshot) -> bool {
    snap.backends.iter().any(|b| b.error.is_some())
}

fn ids(snap: &Snapshot) -> Vec<String> {
    snap.backends.iter().filter_map(|b| b.id.clone()).collect()
}

async fn wait_missing(fx: &Fx, missing: bool) {
    let mut rx = fx.watch.progress();
    let deadline = Instant::now() + T;
    while rx.borrow_and_update().folder_missing != missing {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero() && tokio::time::timeout(left, rx.changed()).await.is_ok(),
            "folder_missing never became {missing}: {:?}",
            fx.progress()
        );
    }
}

/// A fixture with `ids` as valid manifests (one script each) and the first
/// one running; returns its pid.
async fn with_running(ids: &[&str]) -> (Fx, u32) {
    let tmp = util::env();
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    for id in ids {
        let exe = exe(tmp.path(), id);
        std::fs::write(
            dir.join(format!("{id}.yaml")),
            manifest(id, "1.0.0", &exe, ""),
        )
        .unwrap();
    }
    let fx = Fx::start(tmp, dir).await;
    let pid = fx.start_running(ids[0]).await;
    fx.mark().await;
    (fx, pid)
}

fn stopped_or_moved(id: &'static str, pid: u32) -> impl Fn(&Snapshot) -> bool {
    move |s| s.get(id).is_none_or(|b| b.pid != Some(pid))
}
