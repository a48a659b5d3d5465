//! The parts of a notification test: dunst on a private bus (what it
//! received, its context menu), `berth run --headless` on that bus, and
//! script backends.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::desktop::Desktop;
use crate::util::script;

/// Each wait is at least 3x what it takes here (a notification arrives
/// within a second of the crash).
pub const WAIT: Duration = Duration::from_secs(15);
const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A notification as dunst recorded it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub summary: String,
    pub body: String,
}

/// dunst on the test's bus; killed on drop.
pub struct Dunst {
    child: Child,
    dir: PathBuf,
}

impl Dunst {
    /// Starts dunst with a config whose context menu ("dmenu") picks the
    /// line that contains the text of `<dir>/pick`, and waits until it owns
    /// the notifications name.
    pub fn start(desktop: &Desktop, dir: &Path) -> Self {
        let dmenu = script(
            dir,
            "dmenu.sh",
            &format!(
                "cat > {0}/menu.txt\ngrep -m1 -F \"$(cat {0}/pick)\" {0}/menu.txt",
                dir.display()
            ),
        );
        let config = dir.join("dunstrc");
        std::fs::write(
            &config,
            format!(
                "[global]\n    history_length = 200\n    dmenu = {}\n",
                dmenu.display()
            ),
        )
        .unwrap();
        let log = File::create(dir.join("dunst.log")).unwrap();
        let child = desktop
            .command("dunst")
            .arg("-config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run dunst (scripts/deps.sh installs it)");
        let this = Self {
            child,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + WAIT;
        while !has_owner(desktop, "org.freedesktop.Notifications") {
            assert!(Instant::now() < deadline, "dunst did not take the bus name");
            std::thread::sleep(Duration::from_millis(50));
        }
        this
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill with dunst's pid and a valid signal number.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Every notification received so far, oldest first (`dunstctl
    /// history` lists closed ones only, so everything shown is closed first).
    pub fn shown(&self, desktop: &Desktop) -> Vec<Shown> {
        let ok = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
        assert!(ok(desktop.command("dunstctl").arg("close-all")));
        let out = desktop.command("dunstctl").arg("history").output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let mut list: Vec<(i64, Shown)> = json["data"][0]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| {
                        (
                            n["id"]["data"].as_i64().unwrap_or(0),
                            Shown {
                                summary: n["summary"]["data"].as_str().unwrap_or("").to_owned(),
                                body: n["body"]["data"].as_str().unwrap_or("").to_owned(),
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        list.sort_by_key(|(id, _)| *id);
        list.into_iter().map(|(_, s)| s).collect()
    }

    /// Waits until a notification whose summary is `summary` was received.
    pub fn wait_for(&self, desktop: &Desktop, summary: &str) -> Shown {
        let deadline = Instant::now() + WAIT;
        loop {
            let shown = self.shown(desktop);
            if let Some(s) = shown.iter().find(|s| s.summary == summary) {
                return s.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no notification {summary:?}; got {shown:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens dunst's context menu (as the keyboard shortcut does) and picks
    /// the entry that contains `text`, e.g. `Restart (Alpha crashed)`.
    pub fn pick_action(&self, desktop: &Desktop, text: &str) {
        std::fs::write(self.dir.join("pick"), text).unwrap();
        let out = desktop.command("dunstctl").arg("context").output().unwrap();
        assert!(out.status.success(), "dunstctl context: {out:?}");
    }

    /// The context menu dunst offered last time.
    pub fn menu(&self) -> String {
        std::fs::read_to_string(self.dir.join("menu.txt")).unwrap_or_default()
    }
}

impl Drop for Dunst {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp dir, a bare session bus and dunst on it; `None` when the test
/// cannot run here (no display).
pub fn session(test: &str) -> Option<(tempfile::TempDir, Desktop, Dunst)> {
    let dir = tempfile::tempdir().unwrap();
    let desktop = Desktop::start_bare(test, dir.path())?;
    let dunst = Dunst::start(&desktop, dir.path());
    Some((dir, desktop, dunst))
}

fn has_owner(desktop: &Desktop, name: &str) -> bool {
    desktop
        .command("dbus-send")
        .args([
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            &format!("string:{name}"),
        ])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
}

/// The launcher's pid (to signal it).
pub fn berth_pid(berth: &Berth) -> i32 {
    berth.child.id() as i32
}

/// `berth run --headless` on the desktop's bus, in `dir`.
pub struct Berth {
    child: Child,
    dir: PathBuf,
}

impl Berth {
    pub fn start(desktop: &Desktop, dir: &Path, extra: &[&str]) -> Self {
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let err = File::create(dir.join("berth.err")).unwrap();
        let child = desktop
            .command(BERTH)
            .arg("run")
            .arg("--headless")
            .arg("--backends")
            .arg(dir.join("backends"))
            .args(extra)
            .env("BERTH_SOCKET", run.join("berth.sock"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_RUNTIME_DIR", &run)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", dir.join("bin").display()),
            )
            .env("RUST_LOG", "info,berth=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let berth = Self {
            child,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + WAIT;
        while !berth.cli(desktop, &["status"]).status.success() {
            assert!(Instant::now() < deadline, "no launcher: {}", berth.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        berth
    }

    pub fn cli(&self, desktop: &Desktop, args: &[&str]) -> std::process::Output {
        desktop
            .command(BERTH)
            .args(args)
            .env("BERTH_SOCKET", self.dir.join("run/berth.sock"))
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env("XDG_DATA_HOME", self.dir.join("data"))
            .output()
            .unwrap()
    }

    pub fn status(&self, desktop: &Desktop, id: &str) -> serde_json::Value {
        let out = self.cli(desktop, &["status", "--json"]);
        crate::protocol::check::cli(&["status", "--json"], &out);
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {all}"))
    }

    pub fn wait_state(&self, desktop: &Desktop, id: &str, state: &str) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status(desktop, id);
            if s["state"] == state {
                return s;
            }
            assert!(Instant::now() < deadline, "{id} never {state}: {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("berth.err")).unwrap_or_default()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        // SIGTERM: backends are stopped (a user's Quit, which never notifies).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A manifest for the script `body`, with `extra` YAML lines.
pub fn backend(dir: &Path, id: &str, name: &str, body: &str, extra: &str) {
    let backends = dir.join("backends");
    std::fs::create_dir_all(&backends).unwrap();
    let exe = script(dir, &format!("{id}.sh"), body);
    let digest = berth::integrity::hash_file(&exe).unwrap();
    std::fs::write(
        backends.join(format!("{id}.yaml")),
        format!(
            "id: {id}\nname: {name}\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {}\n    sha256: \"{digest}\"\nstop: {{ timeout: 2s }}\n{extra}",
            exe.display()
        ),
    )
    .unwrap();
}
