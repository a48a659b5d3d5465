//! The tray as a desktop panel sees it: the real `berth run`, a private
//! session bus on which the test plays the StatusNotifierWatcher (a panel),
//! and the X display of the environment. Run under
//! `dbus-run-session -- xvfb-run -a cargo test --test it tray`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::desktop::Desktop;
use crate::panel::{MenuNode, Panel};
use crate::util::{running, wait_gone};

mod update;

/// Every wait is at least 3x what it takes here (the tray follows within 1 s,
/// the Python backend is ready in about 2 s).
const WAIT: Duration = Duration::from_secs(20);

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// `berth run` in a temp dir of its own; SIGKILLed if the test fails early
/// (its guardian then stops the backends).
struct Berth {
    child: Child,
    dir: tempfile::TempDir,
}

impl Berth {
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berth.err")).unwrap_or_default()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill with berth's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "berth did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tray's item on `panel`, once berth registered it.
fn registered(panel: &Panel, berth: &Berth) -> String {
    panel
        .wait_item(WAIT)
        .unwrap_or_else(|| panic!("the tray never registered; stderr:\n{}", berth.stderr()))
}

fn spawn_berth(cmd: Command, dir: tempfile::TempDir) -> Berth {
    spawn_berth_with(cmd, dir, &[])
}

/// [`spawn_berth`] with more arguments to `berth run` (more folders).
fn spawn_berth_with(cmd: Command, dir: tempfile::TempDir, extra: &[&Path]) -> Berth {
    let mut args = Vec::new();
    for folder in extra {
        args.push(std::ffi::OsStr::new("--backends"));
        args.push(folder.as_os_str());
    }
    spawn_berth_run(cmd, dir, &args)
}

/// [`spawn_berth`] with `args` after `run`'s own.
fn spawn_berth_run(mut cmd: Command, dir: tempfile::TempDir, args: &[&std::ffi::OsStr]) -> Berth {
    let err = File::create(dir.path().join("berth.err")).unwrap();
    // The socket's folder must be ours and 0700.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    cmd.arg("run")
        .arg("--backends")
        .arg(dir.path().join("backends"))
        .arg("--socket")
        .arg(run.join("berth.sock"));
    cmd.args(args);
    // A test that set (or removed) XDG_RUNTIME_DIR itself keeps its choice.
    if !cmd.get_envs().any(|(key, _)| key == "XDG_RUNTIME_DIR") {
        cmd.env("XDG_RUNTIME_DIR", &run);
    }
    cmd.env("XDG_STATE_HOME", dir.path().join("state"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    Berth {
        child: cmd.spawn().expect("spawn berth"),
        dir,
    }
}

/// A manifest for `exe`, pinned to its current digest.
fn manifest(dir: &Path, id: &str, name: &str, exe: &Path, args: &str) {
    let digest = berth::integrity::hash_file(exe).expect("hash the executable");
    std::fs::write(
        dir.join(format!("{id}.yaml")),
        format!(
            "id: {id}\nname: \"{name}\"\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {}\n    sha256: \"{digest}\"\nargs: {args}\nstop: {{ signal: TERM, timeout: 5s }}\n",
            exe.display()
        ),
    )
    .unwrap();
}

/// A temp dir whose `backends/` holds one `/bin/sh -c SCRIPT` backend.
fn shell_backend(id: &str, name: &str, script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let backends = dir.path().join("backends");
    std::fs::create_dir(&backends).unwrap();
    let args = serde_json::to_string(&["-c", script]).unwrap();
    manifest(&backends, id, name, Path::new("/bin/sh"), &args);
    dir
}

fn python_backend() -> PathBuf {
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/dist/backend");
    assert!(
        exe.exists(),
        "{} is missing: run python/build.sh first",
        exe.display()
    );
    exe
}

/// The entry, checked to be enabled before it is clicked (dbusmenu would
/// deliver a click on a disabled one too; a panel would not send it).
fn click(panel: &Panel, item: &str, root: &MenuNode, path: &[&str]) {
    let mut node = root;
    for step in path {
        node = node
            .child(step)
            .unwrap_or_else(|| panic!("no {step:?} in\n{}", root.render()));
    }
    assert!(node.enabled, "{path:?} is disabled:\n{}", root.render());
    panel.click(item, node.id).unwrap();
}

fn pid_of(sub: &MenuNode) -> u32 {
    let line = &sub.child("PID ").expect("a PID line").label;
    line["PID ".len()..]
        .split(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad PID line {line:?}"))
}

fn group_gone(pgid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let rc = unsafe { libc::kill(-(pgid as i32), 0) };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

fn wait_group_gone(pgid: u32) -> bool {
    let deadline = Instant::now() + WAIT;
    while !group_gone(pgid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn the_tray_shows_and_drives_every_backend() {
    let Some(desktop) = Desktop::start("the_tray_shows_and_drives_every_backend") else {
        return;
    };
    let python = python_backend();
    let dir = tempfile::tempdir().unwrap();
    let backends = dir.path().join("backends");
    std::fs::create_dir(&backends).unwrap();
    manifest(
        &backends,
        "python",
        "Python Backend",
        &python,
        "[\"--port\", \"0\"]",
    );
    manifest(
        &backends,
        "sleeper",
        "Sleeper & Co",
        Path::new("/bin/sleep"),
        "[\"300\"]",
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(backends.join("python.yaml"))
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(b"ready: { stdout_json: { status: ready }, timeout: 15s }\n")
        })
        .unwrap();

    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let mut berth = spawn_berth(desktop.command(BERTH), dir);
    let item = registered(&panel, &berth);

    // The layout of DESIGN.md, with every entry's enabled state.
    let root = panel
        .wait_layout(&item, WAIT, |r| r.child("Sleeper & Co").is_some())
        .unwrap_or_else(|last| panic!("no backends in the tray:\n{last}"));
    assert_eq!(
        root.labels(),
        [
            "berth: 0 of 2 running",
            "---",
            "Python Backend",
            "Sleeper & Co",
            "---",
            "Open backends folder",
            "Start all",
            "Stop all",
            "Start at login",
            "Quit"
        ],
        "\n{}",
        root.render()
    );
    let sub = root.child("Python Backend").unwrap();
    let labels = sub.labels();
    assert_eq!(
        labels[..8],
        [
            "🔴 Stopped",
            "---",
            "Start",
            "Stop",
            "Restart",
            "---",
            "Open log",
            python.to_str().unwrap()
        ],
        "\n{}",
        root.render()
    );
    assert!(labels[8].starts_with("v1.0.0 · sha256 "), "{}", labels[8]);
    let enabled = |node: &MenuNode, label: &str| node.child(label).unwrap().enabled;
    assert!(!enabled(sub, "🔴 Stopped"));
    assert!(enabled(sub, "Start") && !enabled(sub, "Stop") && enabled(sub, "Restart"));
    assert!(
        !enabled(sub, python.to_str().unwrap()),
        "the path is informational"
    );
    assert!(!enabled(&root, "berth: "), "the header is informational");
    assert!(enabled(&root, "Start all") && !enabled(&root, "Stop all"));

    // Start: Running, a PID, a verified digest.
    click(&panel, &item, &root, &["Python Backend", "Start"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            r.child("Python Backend")
                .is_some_and(|s| s.child("🟢 Running").is_some() && s.child("PID ").is_some())
        })
        .unwrap_or_else(|last| panic!("python never ran:\n{last}\n{}", berth.stderr()));
    let sub = root.child("Python Backend").unwrap();
    let pid = pid_of(sub);
    assert!(running(pid), "PID {pid} from the tray is not running");
    assert!(!enabled(sub, "Start") && enabled(sub, "Stop") && enabled(sub, "Restart"));
    assert!(sub.child("v1.0.0").unwrap().label.ends_with('✓'));
    assert_eq!(root.labels()[0], "berth: 1 of 2 running");

    // Stop: Stopped, and nothing left of the process group.
    click(&panel, &item, &root, &["Python Backend", "Stop"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            r.child("Python Backend")
                .is_some_and(|s| s.child("🔴 Stopped").is_some() && s.child("PID ").is_none())
        })
        .unwrap_or_else(|last| panic!("python never stopped:\n{last}"));
    assert!(
        wait_gone(pid, WAIT) && wait_group_gone(pid),
        "python left processes"
    );
    assert_eq!(root.labels()[0], "berth: 0 of 2 running");

    // A new manifest gets its submenu, in name order: the watcher's hot
    // reload, no signal.
    manifest(
        &backends,
        "extra",
        "Extra",
        Path::new("/bin/sleep"),
        "[\"300\"]",
    );
    let root = panel
        .wait_layout(&item, WAIT, |r| r.child("Extra").is_some())
        .unwrap_or_else(|last| panic!("no submenu for the new manifest:\n{last}"));
    assert_eq!(
        root.labels()[..5],
        [
            "berth: 0 of 3 running",
            "---",
            "Extra",
            "Python Backend",
            "Sleeper & Co"
        ]
    );

    // A broken manifest: one warning entry naming the file and the error.
    std::fs::write(
        backends.join("broken.yaml"),
        "id: broken\nname: Broken\nversion: 1.0.0\nargz: [1]\n",
    )
    .unwrap();
    let root = panel
        .wait_layout(&item, WAIT, |r| r.child("⚠ broken.yaml: ").is_some())
        .unwrap_or_else(|last| panic!("no warning for broken.yaml:\n{last}"));
    let warning = root.child("⚠ broken.yaml: ").unwrap();
    assert!(warning.label.contains("argz"), "{}", warning.label);
    assert_eq!(
        root.children
            .iter()
            .filter(|c| c.label.starts_with('⚠'))
            .count(),
        1
    );

    // Removed files: the submenu and the warning go away, in place.
    std::fs::remove_file(backends.join("extra.yaml")).unwrap();
    std::fs::remove_file(backends.join("broken.yaml")).unwrap();
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            r.child("Extra").is_none() && r.child("⚠").is_none()
        })
        .unwrap_or_else(|last| panic!("removed manifests still shown:\n{last}"));
    assert_eq!(
        root.labels()[..5],
        [
            "berth: 0 of 2 running",
            "---",
            "Python Backend",
            "Sleeper & Co",
            "---"
        ]
    );

    // Quit with backends running: every one stopped, exit 0.
    click(&panel, &item, &root, &["Start all"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| r.labels()[0] == "berth: 2 of 2 running")
        .unwrap_or_else(|last| panic!("start all did not start all:\n{last}"));
    let pids: Vec<u32> = ["Python Backend", "Sleeper & Co"]
        .iter()
        .map(|name| pid_of(root.child(name).unwrap()))
        .collect();
    click(&panel, &item, &root, &["Quit"]);
    let status = berth.wait_exit(WAIT);
    assert!(
        status.success(),
        "berth exited with {status}:\n{}",
        berth.stderr()
    );
    for pid in pids {
        assert!(group_gone(pid), "backend group {pid} outlived berth");
    }
    assert!(!berth.stderr().contains("panicked"), "{}", berth.stderr());
}

/// SIGTERM stops every backend like the tray's Quit, and the tray says so
/// meanwhile (a backend that ignores SIGTERM keeps it saying so for the whole
/// stop timeout), then berth exits 0.
#[test]
fn sigterm_shows_stopping_in_the_tray_then_exits() {
    let Some(desktop) = Desktop::start("sigterm_shows_stopping_in_the_tray_then_exits") else {
        return;
    };
    let dir = shell_backend("stubborn", "Stubborn", "trap '' TERM; exec sleep 300");
    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let mut berth = spawn_berth(desktop.command(BERTH), dir);
    let item = registered(&panel, &berth);
    let root = panel
        .wait_layout(&item, WAIT, |r| r.child("Stubborn").is_some())
        .unwrap_or_else(|last| panic!("no backend in the tray:\n{last}"));
    click(&panel, &item, &root, &["Start all"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| r.labels()[0] == "berth: 1 of 1 running")
        .unwrap_or_else(|last| panic!("start all did not start it:\n{last}"));
    let pid = pid_of(root.child("Stubborn").unwrap());

    berth.signal(libc::SIGTERM);
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            r.labels()[0] == "berth: stopping every backend…"
        })
        .unwrap_or_else(|last| panic!("the tray never said it was stopping:\n{last}"));
    let quit = root.child("Quit").expect("a Quit entry");
    assert!(!quit.enabled, "Quit still enabled while stopping");
    let status = berth.wait_exit(WAIT);
    assert!(
        status.success(),
        "berth exited with {status}:\n{}",
        berth.stderr()
    );
    assert!(group_gone(pid), "backend group {pid} outlived berth");
}

/// Memory is sampled only while someone looks: a running backend's process
/// line has no figure while the menu is closed, gets one as soon as the
/// panel opens its submenu, and keeps moving while it stays open.
#[test]
fn the_process_line_shows_memory_once_the_submenu_opens() {
    let Some(desktop) = Desktop::start("the_process_line_shows_memory_once_the_submenu_opens")
    else {
        return;
    };
    let dir = shell_backend("mem", "Mem", "exec sleep 300");
    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let berth = spawn_berth(desktop.command(BERTH), dir);
    let item = registered(&panel, &berth);
    let root = panel
        .wait_layout(&item, WAIT, |r| r.child("Mem").is_some())
        .unwrap_or_else(|last| panic!("no backend in the tray:\n{last}"));
    click(&panel, &item, &root, &["Mem", "Start"]);
    panel
        .wait_layout(&item, WAIT, |r| {
            r.child("Mem").is_some_and(|s| s.child("PID ").is_some())
        })
        .unwrap_or_else(|last| panic!("mem never ran:\n{last}"));
    // Longer than the old once-a-second sampling: still nothing sampled.
    std::thread::sleep(Duration::from_millis(2500));
    let root = panel.layout(&item).unwrap();
    let sub = root.child("Mem").unwrap();
    let line = &sub.child("PID ").unwrap().label;
    assert!(
        !line.ends_with(" MB"),
        "sampled with the menu closed: {line}"
    );

    panel.open(&item, sub.id).unwrap();
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            r.child("Mem")
                .and_then(|s| s.child("PID "))
                .is_some_and(|p| p.label.ends_with(" MB"))
        })
        .unwrap_or_else(|last| {
            panic!("no memory in the open submenu:\n{last}\n{}", berth.stderr())
        });
    let sub = root.child("Mem").unwrap();
    let first = sub.child("PID ").unwrap().label.clone();
    // Open: the uptime moves without any other event.
    panel
        .wait_layout(&item, WAIT, |r| {
            r.child("Mem")
                .and_then(|s| s.child("PID "))
                .is_some_and(|p| p.label != first && p.label.ends_with(" MB"))
        })
        .unwrap_or_else(|last| panic!("the open submenu stood still:\n{last}"));
    // Closed: sampling (and with it the relabelling) stops.
    panel.close(&item, sub.id).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let before = panel.layout(&item).unwrap();
    let before = before
        .child("Mem")
        .unwrap()
        .child("PID ")
        .unwrap()
        .label
        .clone();
    std::thread::sleep(Duration::from_millis(2500));
    let after = panel.layout(&item).unwrap();
    let after = &after.child("Mem").unwrap().child("PID ").unwrap().label;
    assert_eq!(&before, after, "still relabelled after the submenu closed");
}

/// "Start at login" is a check item that shows whether the autostart entry
/// exists, and a click writes or removes it; a crashed backend's submenu
/// shows its last stderr line.
#[test]
fn start_at_login_toggles_the_autostart_entry_and_a_crash_shows_its_last_error() {
    let Some(desktop) = Desktop::start("start_at_login_toggles_the_autostart_entry") else {
        return;
    };
    let dir = shell_backend("crasher", "Crasher", "echo 'ValueError: boom' >&2; exit 3");
    let entry = dir.path().join("config/autostart/berth.desktop");
    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let berth = spawn_berth(desktop.command(BERTH), dir);
    let item = registered(&panel, &berth);
    let login = |root: &MenuNode| root.child("Start at login").and_then(|n| n.checked);
    let root = panel
        .wait_layout(&item, WAIT, |r| login(r).is_some())
        .unwrap_or_else(|last| panic!("no Start at login check item:\n{last}"));
    assert_eq!(login(&root), Some(false), "{}", root.render());
    click(&panel, &item, &root, &["Start at login"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| login(r) == Some(true))
        .unwrap_or_else(|last| panic!("the check item did not turn on:\n{last}"));
    let text = std::fs::read_to_string(&entry).expect("the click wrote the entry");
    assert!(text.contains("X-GNOME-Autostart-enabled=true"), "{text}");
    // The folders of `--backends` are kept (issue #23, point 8).
    assert!(
        text.contains(" run --backends "),
        "the tray's entry lost --backends: {text}"
    );
    click(&panel, &item, &root, &["Start at login"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| login(r) == Some(false))
        .unwrap_or_else(|last| panic!("the check item did not turn off:\n{last}"));
    assert!(!entry.exists(), "the click did not remove the entry");

    click(&panel, &item, &root, &["Crasher", "Start"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            r.child("Crasher")
                .is_some_and(|c| c.child("last error: ValueError: boom").is_some())
        })
        .unwrap_or_else(|last| panic!("no last error line:\n{last}"));
    let line = root.child("Crasher").unwrap().child("last error").unwrap();
    assert!(!line.enabled, "informational");
}

/// Issue #23, point 8: the "Start at login" item went stale after `berth
/// autostart enable` (a click then inverted what the user saw), and the
/// tray's entry dropped `--backends`. The item follows the file (watched),
/// a click sets what the item shows becoming, and the entry keeps the
/// folders.
#[test]
fn start_at_login_follows_the_entry_and_keeps_the_backends_folders() {
    let Some(desktop) = Desktop::start("start_at_login_follows_the_entry") else {
        return;
    };
    let dir = shell_backend("calm", "Calm", "exec sleep 300");
    let entry = dir.path().join("config/autostart/berth.desktop");
    let config = dir.path().join("config");
    let backends = dir.path().join("backends");
    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let berth = spawn_berth(desktop.command(BERTH), dir);
    let item = registered(&panel, &berth);
    let login = |root: &MenuNode| root.child("Start at login").and_then(|n| n.checked);
    panel
        .wait_layout(&item, WAIT, |r| login(r) == Some(false))
        .unwrap_or_else(|last| panic!("no Start at login check item:\n{last}"));
    // Turned on from outside, then the menu opens.
    let out = Command::new(BERTH)
        .args(["autostart", "enable"])
        .env("XDG_CONFIG_HOME", &config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let root = panel
        .wait_layout(&item, WAIT, |r| login(r) == Some(true))
        .unwrap_or_else(|last| panic!("the item did not follow the entry:\n{last}"));
    // Shown on: a click turns it off.
    click(&panel, &item, &root, &["Start at login"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| login(r) == Some(false))
        .unwrap_or_else(|last| panic!("the click did not turn it off:\n{last}"));
    assert!(!entry.exists(), "the click did not remove the entry");
    click(&panel, &item, &root, &["Start at login"]);
    panel
        .wait_layout(&item, WAIT, |r| login(r) == Some(true))
        .unwrap_or_else(|last| panic!("the click did not turn it on:\n{last}"));
    let text = std::fs::read_to_string(&entry).expect("the click wrote the entry");
    assert!(
        text.contains(&format!("--backends \"{}\"", backends.display()))
            || text.contains(&format!("--backends {}", backends.display())),
        "the entry dropped --backends: {text}"
    );
}

/// Issue #23, point 9: without `XDG_RUNTIME_DIR` (su, runuser, startx
/// without pam_systemd) tray-icon wrote its icon files to a shared
/// `$TMPDIR/tray-icon`, following a link another user planted there. They
/// go to berth's own 0700 runtime folder (the socket's) instead.
#[test]
fn the_tray_icon_files_are_written_where_only_this_user_can_write() {
    let Some(desktop) = Desktop::start("the_tray_icon_files_are_written_where_only") else {
        return;
    };
    let dir = shell_backend("calm", "Calm", "exec sleep 300");
    let tmp = dir.path().join("tmp");
    let victim = dir.path().join("victim");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::create_dir(&victim).unwrap();
    std::os::unix::fs::symlink(&victim, tmp.join("tray-icon")).unwrap();
    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let mut cmd = desktop.command(BERTH);
    cmd.env_remove("XDG_RUNTIME_DIR").env("TMPDIR", &tmp);
    let berth = spawn_berth(cmd, dir);
    let item = registered(&panel, &berth);
    panel
        .wait_layout(&item, WAIT, |r| r.child("Calm").is_some())
        .unwrap_or_else(|last| panic!("no menu:\n{last}"));
    let icons = berth.dir.path().join("run/tray-icon");
    let written: Vec<_> = std::fs::read_dir(&icons)
        .unwrap_or_else(|e| panic!("{}: {e}; stderr:\n{}", icons.display(), berth.stderr()))
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(!written.is_empty(), "no icon file in {}", icons.display());
    let planted: Vec<_> = std::fs::read_dir(&victim).unwrap().flatten().collect();
    assert!(
        planted.is_empty(),
        "written through the planted link: {planted:?}"
    );
}

/// Two backends folders (the second the user folder): a broken file in each
/// is a warning named by its full path, and "Open backends folder" opens
/// the user folder, without the environment berth-tray set for itself.
#[test]
fn open_backends_folder_opens_the_user_folder_and_warnings_name_full_paths() {
    let Some(desktop) = Desktop::start("open_backends_folder_opens_the_user_folder") else {
        return;
    };
    let dir = shell_backend("calm", "Calm", "exec sleep 300");
    let user = dir.path().join("config/berth/backends");
    std::fs::create_dir_all(&user).unwrap();
    let shipped = dir.path().join("backends");
    for folder in [&user, &shipped] {
        std::fs::write(folder.join("broken.yaml"), "id: [").unwrap();
    }
    // A stand-in for xdg-open that records what it was asked to open, and
    // whether it inherited what berth-tray set for its own GTK.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    crate::util::script(
        &bin,
        "xdg-open",
        &format!(
            "echo \"$1 gl=${{GDK_GL-unset}} theme=${{GTK_THEME-unset}}\" >> {}/opened",
            dir.path().display()
        ),
    );
    let opened = dir.path().join("opened");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let mut cmd = desktop.command(BERTH);
    cmd.env("PATH", path);
    let berth = spawn_berth_with(cmd, dir, &[&user]);
    let item = registered(&panel, &berth);
    let warning = |folder: &Path| format!("⚠ {}", folder.join("broken.yaml").display());
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            r.child(&warning(&user)).is_some() && r.child(&warning(&shipped)).is_some()
        })
        .unwrap_or_else(|last| panic!("no warning per folder by full path:\n{last}"));
    click(&panel, &item, &root, &["Open backends folder"]);
    // Written whole (a first line and its newline) by the stand-in.
    let text = crate::util::wait_file(&opened, WAIT);
    assert_eq!(
        text.trim(),
        format!("{} gl=unset theme=unset", user.display())
    );
}

/// No display, or no session bus: one line, and berth runs headless.
#[test]
fn without_a_display_or_a_bus_berth_runs_headless() {
    for (case, display, expect) in [
        ("no display", None, "no display"),
        ("no bus", Some(":99"), "no D-Bus session bus"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("backends")).unwrap();
        let mut cmd = Command::new(BERTH);
        cmd.env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        if let Some(display) = display {
            cmd.env("DISPLAY", display);
        }
        assert_serves_headless(spawn_berth(cmd, dir), case, expect);
    }
}

/// What `berth-tray` set for its own GTK (`GDK_GL`, `NO_AT_BRIDGE`) is not
/// the backends' environment, also when there is no display to show a tray
/// on (issue #10: the overrides reach the supervisor as configuration).
#[test]
fn backends_do_not_inherit_the_trays_own_environment() {
    let out = tempfile::tempdir().unwrap();
    let seen = out.path().join("seen");
    let script = format!(
        "echo \"gl=${{GDK_GL-unset}} at=${{NO_AT_BRIDGE-unset}} mine=$MINE\" > {}; exec sleep 300",
        seen.display()
    );
    let dir = shell_backend("env", "Env", &script);
    let mut cmd = Command::new(BERTH);
    cmd.env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("GDK_GL")
        .env_remove("NO_AT_BRIDGE")
        .env("MINE", "kept");
    let mut berth = spawn_berth(cmd, dir);
    let socket = berth.dir.path().join("run/berth.sock");
    assert!(
        crate::control::home::wait_until(WAIT, || socket.exists()),
        "{}",
        berth.stderr()
    );
    let out = Command::new(BERTH)
        .arg("--socket")
        .arg(&socket)
        .args(["start", "env"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}", berth.stderr());
    assert_eq!(
        crate::util::wait_file(&seen, WAIT),
        "gl=unset at=unset mine=kept",
        "{}",
        berth.stderr()
    );
    // berth-tray itself ran (and set its variables), then found no display.
    assert!(
        berth.stderr().contains("no tray: no display"),
        "{}",
        berth.stderr()
    );
    berth.signal(libc::SIGTERM);
    assert!(berth.wait_exit(WAIT).success());
}

/// `berth` serves its socket without a tray, said so in exactly one line
/// containing `expect`, and quits with 0 on SIGTERM.
fn assert_serves_headless(mut berth: Berth, case: &str, expect: &str) {
    let deadline = Instant::now() + WAIT;
    while !berth.dir.path().join("run/berth.sock").exists() {
        assert!(
            Instant::now() < deadline,
            "{case}: no socket:\n{}",
            berth.stderr()
        );
        assert!(
            berth.child.try_wait().unwrap().is_none(),
            "{case}: berth exited:\n{}",
            berth.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    berth.signal(libc::SIGTERM);
    let status = berth.wait_exit(WAIT);
    let stderr = berth.stderr();
    assert!(status.success(), "{case}: exit {status}:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("no tray")).collect();
    assert_eq!(lines.len(), 1, "{case}: one line expected:\n{stderr}");
    assert!(lines[0].contains(expect), "{case}: {}", lines[0]);
    assert!(!stderr.contains("panicked"), "{case}:\n{stderr}");
}

/// The appindicator library missing (it is loaded at run time): one line,
/// and berth runs headless. The library is hidden the real way, by mounting
/// an empty file over it in a private mount namespace (needs root, as CI is).
#[test]
fn without_the_appindicator_library_berth_runs_headless() {
    let test = "without_the_appindicator_library_berth_runs_headless";
    let Some(desktop) = Desktop::start(test) else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "{test}: needs root for a private mount namespace");
        eprintln!("\n*** SKIPPED {test}: needs root (unshare --mount).\n");
        return;
    }
    let hide: Vec<String> = ["libayatana-appindicator3.so.1", "libappindicator3.so.1"]
        .iter()
        .flat_map(|name| {
            [
                "/usr/lib/x86_64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu",
                "/usr/lib",
            ]
            .iter()
            .map(move |dir| format!("{dir}/{name}"))
        })
        .filter(|path| Path::new(path).exists())
        .map(|path| format!("mount --bind /dev/null {path} && "))
        .collect();
    assert!(
        !hide.is_empty(),
        "the appindicator library is not installed"
    );
    let script = format!("{}exec \"$0\" \"$@\"", hide.concat());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("backends")).unwrap();
    let mut cmd = desktop.command("unshare");
    cmd.args(["--mount", "--", "sh", "-c", &script, BERTH]);
    assert_serves_headless(spawn_berth(cmd, dir), "no appindicator", "appindicator");
}

/// The manifest's actions as tray items (issue #13): labels in order,
/// disabled while their variables are unknown, a click runs them.
#[test]
fn manifest_actions_are_tray_items_that_run_when_clicked() {
    let Some(desktop) = Desktop::start("manifest_actions_are_tray_items_that_run_when_clicked")
    else {
        return;
    };
    let dir = shell_backend(
        "web",
        "Web",
        "echo '{\"status\": \"ready\", \"port\": 4242}'; while read -r line; do echo \"got $line\"; done",
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("backends/web.yaml"))
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(
                b"ready: { stdout_json: { status: ready } }\nactions:\n  - label: Open web UI\n    open: \"http://127.0.0.1:${ready.port}/\"\n  - label: Reindex\n    send: { action: reindex }\n",
            )
        })
        .unwrap();
    let (path, record) = crate::util::recording_opener(dir.path());

    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let mut cmd = desktop.command(BERTH);
    cmd.env("PATH", path);
    let berth = spawn_berth(cmd, dir);
    let item = registered(&panel, &berth);
    let root = panel
        .wait_layout(&item, WAIT, |r| r.child("Web").is_some())
        .unwrap_or_else(|last| panic!("no backend in the tray:\n{last}"));
    let sub = root.child("Web").unwrap();
    assert_eq!(
        sub.labels()[..9],
        [
            "🔴 Stopped",
            "---",
            "Start",
            "Stop",
            "Restart",
            "---",
            "Open web UI",
            "Reindex",
            "---"
        ],
        "\n{}",
        root.render()
    );
    assert!(
        !sub.child("Open web UI").unwrap().enabled,
        "{}",
        root.render()
    );
    assert!(!sub.child("Reindex").unwrap().enabled, "{}", root.render());

    click(&panel, &item, &root, &["Web", "Start"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            r.child("Web")
                .and_then(|s| s.child("Open web UI"))
                .is_some_and(|i| i.enabled)
        })
        .unwrap_or_else(|last| panic!("the actions never became available:\n{last}"));
    click(&panel, &item, &root, &["Web", "Open web UI"]);
    click(&panel, &item, &root, &["Web", "Reindex"]);
    let deadline = Instant::now() + WAIT;
    let log = berth.dir.path().join("state/berth/logs/web.log");
    loop {
        let opened = std::fs::read_to_string(&record).unwrap_or_default();
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        if opened == "http://127.0.0.1:4242/\n" && logged.contains("got {\"action\":\"reindex\"}") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "opened {opened:?}, log {logged:?}, stderr {}",
            berth.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The PNG file the panel is told to show for `item` (`IconThemePath` +
/// `IconName`), decoded to RGBA with its width.
fn item_icon(panel: &Panel, item: &str) -> (Vec<u8>, u32) {
    let dir: String = panel.item_property(item, "IconThemePath").unwrap();
    let name: String = panel.item_property(item, "IconName").unwrap();
    // libayatana names the file itself (an absolute path or a name in
    // the theme path), with or without its extension.
    let path = Path::new(&dir).join(&name);
    let path = if path.extension().is_some() {
        path
    } else {
        path.with_extension("png")
    };
    let file = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut rgba = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut rgba).unwrap();
    assert_eq!(frame.color_type, png::ColorType::Rgba, "{}", path.display());
    (rgba, frame.width)
}

fn rgba_at(rgba: &[u8], width: u32, x: u32, y: u32) -> [u8; 4] {
    let i = ((y * width + x) * 4) as usize;
    [rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]]
}

/// `--title` and `--icon` (issue #24, point 2): the panel reads the app's
/// title as the item's `Title` (what it shows on hover) and on the menu's
/// first line, and its icon is the app's PNG with the state as a badge that
/// follows the backends; a file that is no PNG is one line and berth's icon.
#[test]
fn an_apps_title_and_icon_are_what_the_panel_shows() {
    let Some(desktop) = Desktop::start("an_apps_title_and_icon_are_what_the_panel_shows") else {
        return;
    };
    let dir = shell_backend("calm", "Calm", "exec sleep 300");
    // A 64x64 blue square: the app's icon.
    let icon = dir.path().join("acme.png");
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, 64, 64);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_image_data(&[0, 0, 255].repeat(64 * 64))
        .unwrap();
    drop(writer);
    std::fs::write(&icon, &png_bytes).unwrap();

    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let mut cmd = desktop.command(BERTH);
    cmd.args(["--app", "acme"]);
    let berth = spawn_berth_run(
        cmd,
        dir,
        &[
            "--title".as_ref(),
            "Acme Studio".as_ref(),
            "--icon".as_ref(),
            icon.as_os_str(),
        ],
    );
    let item = registered(&panel, &berth);
    let title: String = panel.item_property(&item, "Title").unwrap();
    assert_eq!(title, "Acme Studio");
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            r.labels()[0] == "Acme Studio: 0 of 1 running"
        })
        .unwrap_or_else(|last| panic!("the first line is not the title:\n{last}"));
    let (rgba, width) = item_icon(&panel, &item);
    let corner = width - 7 * width / 32;
    assert_eq!(
        rgba_at(&rgba, width, 2, 2),
        [0, 0, 255, 255],
        "the app's icon"
    );
    let idle = rgba_at(&rgba, width, corner, corner);
    assert_ne!(idle[..3], [0, 0, 255], "no badge over the icon");

    click(&panel, &item, &root, &["Start all"]);
    panel
        .wait_layout(&item, WAIT, |r| {
            r.labels()[0] == "Acme Studio: 1 of 1 running"
        })
        .unwrap_or_else(|last| panic!("start all did not start it:\n{last}"));
    let deadline = Instant::now() + WAIT;
    loop {
        let (rgba, width) = item_icon(&panel, &item);
        let badge = rgba_at(&rgba, width, corner, corner);
        if badge != idle {
            assert_eq!(
                rgba_at(&rgba, width, 2, 2),
                [0, 0, 255, 255],
                "the app's icon"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the badge did not follow the state"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(berth);

    // Not a PNG: one line naming the file, and berth's own disc.
    let dir = shell_backend("calm", "Calm", "exec sleep 300");
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, "not an image").unwrap();
    let panel_items = panel.items().len();
    let berth = spawn_berth_run(
        desktop.command(BERTH),
        dir,
        &["--icon".as_ref(), bad.as_os_str()],
    );
    let deadline = Instant::now() + WAIT;
    while panel.items().len() == panel_items {
        assert!(
            Instant::now() < deadline,
            "no second item; stderr:\n{}",
            berth.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let item = panel.items().pop().unwrap();
    let (rgba, width) = item_icon(&panel, &item);
    assert_eq!(
        rgba_at(&rgba, width, width / 2, width / 2),
        [255, 255, 255, 255],
        "berth's disc has a white hub"
    );
    let stderr = berth.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("--icon")).collect();
    let prefix = format!("--icon {}: not a PNG image (", bad.display());
    assert!(
        lines.len() == 1
            && lines[0].contains(&prefix)
            && lines[0].ends_with("); showing berth's icon"),
        "{stderr}"
    );
}

/// A backend's info line names what its `depends_on` needs, and follows an
/// edit of it (issue #26, point 7).
#[test]
fn the_info_line_says_what_a_backend_needs() {
    let Some(desktop) = Desktop::start("the_info_line_says_what_a_backend_needs") else {
        return;
    };
    let dir = shell_backend("api", "API", "exec sleep 300");
    let backends = dir.path().join("backends");
    let args = serde_json::to_string(&["-c", "exec sleep 300"]).unwrap();
    manifest(&backends, "db", "DB", Path::new("/bin/sh"), &args);
    manifest(&backends, "models", "Models", Path::new("/bin/sh"), &args);
    let api = backends.join("api.yaml");
    let plain = std::fs::read_to_string(&api).unwrap();
    std::fs::write(
        &api,
        format!("{plain}depends_on: {{ models: running, db: started }}\n"),
    )
    .unwrap();
    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let berth = spawn_berth(desktop.command(BERTH), dir);
    let item = registered(&panel, &berth);
    let info = |r: &MenuNode| {
        r.child("API")
            .and_then(|s| s.child("v1.0.0"))
            .map(|l| l.label.clone())
    };
    let root = panel
        .wait_layout(&item, WAIT, |r| info(r).is_some())
        .unwrap_or_else(|last| panic!("no API in the tray:\n{last}\n{}", berth.stderr()));
    let line = info(&root).unwrap();
    assert!(line.ends_with(" · needs db, models"), "{line}");
    assert!(!root.child("DB").unwrap().render().contains("needs"));

    std::fs::write(&api, format!("{plain}depends_on: {{ db: started }}\n")).unwrap();
    panel
        .wait_layout(&item, WAIT, |r| {
            info(r).is_some_and(|l| l.ends_with(" · needs db"))
        })
        .unwrap_or_else(|last| panic!("the edit never showed:\n{last}"));
}
