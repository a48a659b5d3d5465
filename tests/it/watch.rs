//! Hot reload end to end: a real folder, real file operations (writes,
//! renames, deletes, editor leftovers), the real notify watcher, and the real
//! supervisor running shell-script backends whose digests are in the YAML.
//!
//! "Nothing spurious" is checked twice: on every snapshot the supervisor
//! published (a recorder task), and on the number of catalogs the watcher
//! applied (an intermediate catalog that a later one replaced before the
//! snapshot recorder woke up still counts there).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::supervisor::{Snapshot, State, SupervisorHandle};
use berth::watch::{self, Progress, WatchConfig, WatchHandle};

use crate::util::{self, running, script, wait_gone};

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

    async fn start(env: util::Env, dir: PathBuf) -> Self {
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
        let config = WatchConfig::new(dir.clone(), env.path().join("resources"));
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
        self.sup().start(id).await.unwrap();
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

#[tokio::test(flavor = "multi_thread")]
async fn new_valid_manifest_appears_stopped_or_autostarted() {
    let fx = Fx::new(&[]).await;
    let a = exe(fx.env.path(), "a");
    let b = exe(fx.env.path(), "b");
    fx.write("a.yaml", &manifest("a", "1.0.0", &a, ""));
    fx.write("b.yaml", &manifest("b", "1.0.0", &b, "autostart: true\n"));
    fx.wait("a stopped and b running", |s| {
        s.get("a").is_some_and(|a| a.state == State::Stopped)
            && s.get("b").is_some_and(|b| b.state == State::Running)
    })
    .await;
    fx.assert_never("a manifest in the middle of being written", has_error);
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_manifest_stops_its_backend_then_drops_it_and_spares_the_others() {
    let tmp = util::env();
    let a = exe(tmp.path(), "a");
    let b = exe(tmp.path(), "b");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    std::fs::write(dir.join("b.yaml"), manifest("b", "1.0.0", &b, "")).unwrap();
    let fx = Fx::start(tmp, dir).await;
    let pid_a = fx.start_running("a").await;
    let pid_b = fx.start_running("b").await;

    std::fs::remove_file(fx.dir.join("a.yaml")).unwrap();
    fx.wait("a gone from the snapshot", |s| {
        !ids(s).contains(&"a".into())
    })
    .await;
    assert!(
        wait_gone(pid_a, T),
        "the removed backend's process survived"
    );
    assert_eq!(
        fx.pid("b"),
        Some(pid_b),
        "an unrelated backend was disturbed"
    );
    assert!(running(pid_b));
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_of_a_stopped_backend_is_used_and_autostart_starts_nothing() {
    let tmp = util::env();
    let a = exe(tmp.path(), "a");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    let fx = Fx::start(tmp, dir).await;
    assert_eq!(fx.sup().snapshot().get("a").unwrap().state, State::Stopped);

    fx.mark().await;
    let edited = manifest("a", "1.0.0", &a, "autostart: true\nenv: { MODE: edited }\n")
        .replace("name: Backend a", "name: Renamed");
    let before = fx.progress();
    fx.write("a.yaml", &edited);
    fx.wait("the new name", |s| {
        s.get("a")
            .is_some_and(|a| a.name.as_deref() == Some("Renamed"))
    })
    .await;
    fx.wait_reloads(before, 1).await;
    tokio::time::sleep(QUIET).await;
    let s = fx.sup().snapshot().get("a").unwrap().clone();
    assert_eq!(s.state, State::Stopped, "turning autostart on started it");
    assert!(!s.pending_restart);
    fx.assert_never("a start caused by the edit", |s| {
        s.get("a").is_some_and(|a| a.state != State::Stopped)
    });

    // The new definition is what Start uses.
    fx.start_running("a").await;
    assert_eq!(wait_runs(fx.env.path(), "a", 1), "edited");
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_of_a_running_backend_keeps_it_running_until_restart() {
    let tmp = util::env();
    let a = exe(tmp.path(), "a");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    let fx = Fx::start(tmp, dir).await;
    let pid = fx.start_running("a").await;

    fx.write("a.yaml", &manifest("a", "1.0.0", &a, "env: { MODE: v2 }\n"));
    let s = fx
        .wait("pending_restart", |s| {
            s.get("a").is_some_and(|a| a.pending_restart)
        })
        .await;
    let s = s.get("a").unwrap();
    assert_eq!((s.state, s.pid), (State::Running, Some(pid)));
    assert!(running(pid));

    fx.sup().restart("a").await.unwrap();
    let s = util::wait_for(fx.sup(), "a", T, |s| {
        s.state == State::Running && s.pid != Some(pid)
    })
    .await;
    assert!(!s.pending_restart);
    assert_eq!(wait_runs(fx.env.path(), "a", 2), "v2");
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_edit_keeps_the_running_backend_and_shows_the_error_until_fixed() {
    let tmp = util::env();
    let a = exe(tmp.path(), "a");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    let good = manifest("a", "1.0.0", &a, "");
    std::fs::write(dir.join("a.yaml"), &good).unwrap();
    let fx = Fx::start(tmp, dir).await;
    let pid = fx.start_running("a").await;
    fx.mark().await;

    fx.write("a.yaml", "id: a\nname: [unclosed\n");
    let s = fx
        .wait("the parse error", |s| {
            s.get("a").is_some_and(|a| a.error.is_some())
        })
        .await;
    let s = s.get("a").unwrap();
    let error = s.error.as_deref().unwrap();
    assert!(
        error.contains("a.yaml") && error.contains("line"),
        "{error}"
    );
    assert_eq!((s.state, s.pid), (State::Running, Some(pid)));
    assert_eq!(s.name.as_deref(), Some("Backend a"), "last good definition");
    assert!(!s.pending_restart, "nothing new to restart into");

    fx.write("a.yaml", &good);
    let s = fx
        .wait("the error cleared", |s| {
            s.get("a").is_some_and(|a| a.error.is_none())
        })
        .await;
    assert_eq!(s.get("a").unwrap().pid, Some(pid));
    assert!(running(pid));
    fx.assert_never("a stop caused by the broken file", |s| {
        s.get("a").is_none_or(|a| a.pid != Some(pid))
    });
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn higher_version_rename_and_clashing_copy_never_stop() {
    let tmp = util::env();
    let a = exe(tmp.path(), "a");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    let v1 = manifest("a", "1.0.0", &a, "");
    std::fs::write(dir.join("a.yaml"), &v1).unwrap();
    let fx = Fx::start(tmp, dir).await;
    let pid = fx.start_running("a").await;
    fx.mark().await;
    let a_file = |s: &Snapshot, name: &str| {
        s.get("a")
            .is_some_and(|a| a.file.ends_with(&format!("/{name}")))
    };

    // A same-version copy clashes: the running file keeps winning.
    fx.write("copy.yaml", &v1);
    fx.wait("the copy listed with its error", |s| {
        s.backends
            .iter()
            .any(|b| b.file.ends_with("/copy.yaml") && b.error.is_some())
    })
    .await;
    assert!(a_file(&fx.sup().snapshot(), "a.yaml"));
    std::fs::remove_file(fx.dir.join("copy.yaml")).unwrap();

    // A rename is an edit of the same backend.
    std::fs::rename(fx.dir.join("a.yaml"), fx.dir.join("renamed.yaml")).unwrap();
    fx.wait("the renamed file winning", |s| a_file(s, "renamed.yaml"))
        .await;
    assert_eq!(fx.pid("a"), Some(pid));

    // A higher version in another file: an edit, pending restart.
    fx.write("a-2.yaml", &manifest("a", "2.0.0", &a, ""));
    let s = fx
        .wait("version 2 winning", |s| {
            s.get("a")
                .is_some_and(|a| a.version.as_deref() == Some("2.0.0"))
        })
        .await;
    let s = s.get("a").unwrap();
    assert_eq!((s.state, s.pid), (State::Running, Some(pid)));
    assert!(s.pending_restart);
    assert!(
        s.file.ends_with("/a-2.yaml"),
        "the higher version wins: {s:?}"
    );
    fx.assert_never("a stop", |s| s.get("a").is_none_or(|a| a.pid != Some(pid)));
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replaced_executable_is_checked_at_the_next_start() {
    let tmp = util::env();
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    // The executable sits in the backends folder itself: its events are not
    // manifest events.
    let a = exe(&dir, "srv.sh");
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    let fx = Fx::start(tmp, dir).await;
    let pid = fx.start_running("a").await;
    let before = fx.progress();

    // Replaced by a rename, as a build would.
    let new = fx.dir.join("srv.sh.new");
    std::fs::write(&new, "#!/bin/sh\nexec sleep 299\n").unwrap();
    std::fs::rename(&new, &a).unwrap();
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied, "no manifest changed");
    assert_eq!(fx.pid("a"), Some(pid), "the running process is left alone");

    fx.sup().stop("a").await.unwrap();
    let _ = fx.sup().start("a").await;
    let s = util::wait_for(fx.sup(), "a", T, |s| s.state == State::IntegrityFailed).await;
    assert_eq!(s.pid, None);
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_folder_stops_nothing_until_it_exists_again() {
    let tmp = util::env();
    let a = exe(tmp.path(), "a");
    let b = exe(tmp.path(), "b");
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    let (ma, mb) = (
        manifest("a", "1.0.0", &a, ""),
        manifest("b", "1.0.0", &b, ""),
    );
    std::fs::write(dir.join("a.yaml"), &ma).unwrap();
    std::fs::write(dir.join("b.yaml"), &mb).unwrap();
    let fx = Fx::start(tmp, dir.clone()).await;
    let pid_a = fx.start_running("a").await;
    let pid_b = fx.start_running("b").await;
    fx.mark().await;

    // Renamed away and back.
    let aside = fx.env.path().join("backends.old");
    std::fs::rename(&dir, &aside).unwrap();
    wait_missing(&fx, true).await;
    std::fs::rename(&aside, &dir).unwrap();
    wait_missing(&fx, false).await;
    assert_eq!((fx.pid("a"), fx.pid("b")), (Some(pid_a), Some(pid_b)));

    // Deleted: everything keeps running while it is missing.
    std::fs::remove_dir_all(&dir).unwrap();
    wait_missing(&fx, true).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!((fx.pid("a"), fx.pid("b")), (Some(pid_a), Some(pid_b)));
    assert!(running(pid_a) && running(pid_b));

    // Back with only b: a counts as removed now, b is untouched.
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("b.yaml"), &mb).unwrap();
    fx.wait("a removed", |s| !ids(s).contains(&"a".into()))
        .await;
    assert!(wait_gone(pid_a, T));
    assert_eq!(fx.pid("b"), Some(pid_b));
    fx.assert_never("b disturbed", |s| {
        s.get("b").is_none_or(|b| b.pid != Some(pid_b))
    });

    // And the new folder is watched.
    std::fs::write(dir.join("a.yaml"), &ma).unwrap();
    fx.wait("a back", |s| s.get("a").is_some()).await;
    fx.finish().await;
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

#[tokio::test(flavor = "multi_thread")]
async fn atomic_rename_save_and_quick_recreate_are_edits() {
    let (fx, pid) = with_running(&["a"]).await;
    let exe = fx.env.path().join("bin/a");
    let before = fx.progress();

    // Write a temp file, rename it over (what most editors do).
    let tmp = fx.dir.join(".a.yaml.tmp1234");
    std::fs::write(&tmp, manifest("a", "1.0.0", &exe, "env: { MODE: v2 }\n")).unwrap();
    std::fs::rename(&tmp, fx.dir.join("a.yaml")).unwrap();
    fx.wait("pending restart after the rename save", |s| {
        s.get("a").is_some_and(|a| a.pending_restart)
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied + 1);

    // Delete, then recreate well within the debounce.
    let before = fx.progress();
    std::fs::remove_file(fx.dir.join("a.yaml")).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    fx.write(
        "a.yaml",
        &manifest("a", "1.0.0", &exe, "env: { MODE: v3 }\n"),
    );
    fx.wait_reloads(before, 1).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied + 1);

    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("a stop", stopped_or_moved("a", pid));
    fx.assert_never("an error", has_error);
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn editor_leftovers_are_ignored() {
    let (fx, pid) = with_running(&["a"]).await;
    let before = fx.progress();
    let junk = "id: [this is not a manifest\n";
    for name in [
        ".a.yaml.swp",
        ".a.yaml.swx",
        "a.yaml~",
        "4913",
        ".hidden.yaml",
    ] {
        fx.write(name, junk);
    }
    std::os::unix::fs::symlink("user@host.1234:1700000000", fx.dir.join(".#a.yaml")).unwrap();
    std::fs::remove_file(fx.dir.join("4913")).unwrap();
    // A sentinel written after them: once it shows, their events were seen.
    let z = exe(fx.env.path(), "z");
    fx.write("z.yaml", &manifest("z", "1.0.0", &z, ""));
    fx.wait("the sentinel", |s| s.get("z").is_some()).await;
    tokio::time::sleep(QUIET).await;

    let snap = fx.sup().snapshot();
    assert_eq!(snap.backends.len(), 2, "{snap:#?}");
    assert_eq!(
        fx.progress().applied,
        before.applied + 1,
        "only the sentinel"
    );
    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("an error", has_error);
    fx.finish().await;
}

/// Writes `text` to `path` in two chunks with a pause shorter than the
/// debounce in between, like a slow editor or a copy over the network.
async fn write_in_two_chunks(path: &Path, text: &str) {
    use std::io::Write;
    let cut = text.find("executable:").unwrap() + 5;
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&text.as_bytes()[..cut]).unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    f.write_all(&text.as_bytes()[cut..]).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_written_in_two_chunks_gives_no_error_and_no_stop() {
    let (fx, pid) = with_running(&["a"]).await;
    let exe_a = fx.env.path().join("bin/a");
    let b = exe(fx.env.path(), "b");

    // A new file.
    let before = fx.progress();
    write_in_two_chunks(&fx.dir.join("b.yaml"), &manifest("b", "1.0.0", &b, "")).await;
    fx.wait("b", |s| s.get("b").is_some()).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied + 1);

    // An edit of the running one.
    let before = fx.progress();
    let edited = manifest("a", "1.0.0", &exe_a, "env: { MODE: v2 }\n");
    write_in_two_chunks(&fx.dir.join("a.yaml"), &edited).await;
    fx.wait("pending restart", |s| {
        s.get("a").is_some_and(|a| a.pending_restart)
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(fx.progress().applied, before.applied + 1);

    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("a stop", stopped_or_moved("a", pid));
    fx.assert_never("a half-written file read", has_error);
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_manifests_dropped_at_once() {
    let (fx, pid) = with_running(&["a"]).await;
    let exe = exe(fx.env.path(), "many");
    let texts: Vec<(String, String)> = (0..50)
        .map(|i| {
            let id = format!("m{i:02}");
            (format!("{id}.yaml"), manifest(&id, "1.0.0", &exe, ""))
        })
        .collect();
    for (name, text) in &texts {
        fx.write(name, text);
    }
    let snap = fx
        .wait("all 50", |s| s.backends.len() == 51 && !has_error(s))
        .await;
    assert!(snap.backends.iter().all(|b| b.state != State::Invalid));
    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("an error", has_error);
    fx.assert_never("a stop", stopped_or_moved("a", pid));
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unrelated_reloads_leave_a_running_backend_alone() {
    let (fx, pid) = with_running(&["a", "b"]).await;
    let b = fx.env.path().join("bin/b");
    let c = exe(fx.env.path(), "c");
    fx.write("b.yaml", &manifest("b", "1.1.0", &b, ""));
    fx.write("c.yaml", &manifest("c", "1.0.0", &c, ""));
    fx.write("broken.yaml", "id: broken\nargz: []\n");
    fx.wait("b edited, c added, broken listed", |s| {
        s.get("b")
            .is_some_and(|b| b.version.as_deref() == Some("1.1.0"))
            && s.get("c").is_some()
            && s.backends.iter().any(|x| x.file.ends_with("/broken.yaml"))
    })
    .await;
    std::fs::remove_file(fx.dir.join("c.yaml")).unwrap();
    std::fs::remove_file(fx.dir.join("broken.yaml")).unwrap();
    fx.wait("c and broken gone", |s| s.backends.len() == 2)
        .await;

    let a = fx.sup().snapshot().get("a").unwrap().clone();
    assert_eq!(
        (a.state, a.pid, a.pending_restart),
        (State::Running, Some(pid), false)
    );
    fx.assert_never("a disturbed", |s| {
        s.get("a")
            .is_none_or(|a| a.pid != Some(pid) || a.pending_restart || a.error.is_some())
    });
    fx.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rescan_reads_every_file_and_catches_what_notify_missed() {
    let (fx, pid) = with_running(&["a", "b"]).await;
    let before = fx.progress();
    fx.watch.rescan_and_wait().await.unwrap();
    let after = fx.progress();
    assert_eq!(after.full_scans, before.full_scans + 1);
    assert_eq!(
        after.rereads,
        before.rereads + 2,
        "a rescan reads every file"
    );
    assert_eq!(after.applied, before.applied, "same files, same catalog");

    // An edit through a hard link outside the folder: inotify on the folder
    // does not see it, SIGHUP's rescan does.
    let outside = fx.env.path().join("b-link.yaml");
    std::fs::hard_link(fx.dir.join("b.yaml"), &outside).unwrap();
    let b = fx.env.path().join("bin/b");
    let before = fx.progress();
    std::fs::write(&outside, manifest("b", "1.1.0", &b, "")).unwrap();
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        fx.progress().applied,
        before.applied,
        "notify saw it after all"
    );
    fx.watch.rescan();
    fx.wait("b 1.1.0", |s| {
        s.get("b")
            .is_some_and(|b| b.version.as_deref() == Some("1.1.0"))
    })
    .await;

    // A rescan of a missing folder says so and changes nothing.
    let aside = fx.env.path().join("aside");
    std::fs::rename(&fx.dir, &aside).unwrap();
    let err = fx.watch.rescan_and_wait().await.unwrap_err();
    assert!(
        matches!(err, watch::RescanError::FolderMissing { .. }),
        "{err}"
    );
    assert_eq!(fx.pid("a"), Some(pid));
    fx.assert_never("a disturbed", stopped_or_moved("a", pid));
    fx.finish().await;
}

/// `berth status --json` against the launcher of `home`: the listed ids.
fn listed_ids(home: &Path) -> Option<Vec<String>> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--socket")
        .arg(home.join("run/berth/berth.sock"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    Some(
        list.iter()
            .filter_map(|b| b["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

#[test]
fn the_launcher_follows_the_folder_without_sighup() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--socket")
        .arg(home.path().join("run/berth/berth.sock"))
        .args(["run", "--headless", "--backends"])
        .arg(&dir)
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_RUNTIME_DIR", home.path().join("run"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env_remove("BERTH_SOCKET")
        .env_remove("BERTH_BACKENDS")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = |what: &str, pred: &dyn Fn(&[String]) -> bool| {
        let deadline = Instant::now() + T;
        loop {
            if listed_ids(home.path()).is_some_and(|ids| pred(&ids)) {
                return;
            }
            assert!(Instant::now() < deadline, "launcher never showed {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until("an empty folder", &|ids| ids.is_empty());

    let a = exe(home.path(), "a");
    std::fs::write(dir.join("a.yaml"), manifest("a", "1.0.0", &a, "")).unwrap();
    until("the new manifest", &|ids| ids == ["a"]);
    std::fs::remove_file(dir.join("a.yaml")).unwrap();
    until("the removal", &|ids| ids.is_empty());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
