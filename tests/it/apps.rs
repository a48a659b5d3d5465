//! Apps built on berth (issue #24): one instance per app (`--app NAME`,
//! `BERTH_APP`), through the real binary with real folders, sockets and
//! processes.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::control::home::{Home, Launcher, Out, alive, one_line};

/// Well over 3x anything awaited here, on a loaded machine.
const T: Duration = Duration::from_secs(15);

/// The instance `app` of this home: its own folders under NAME.
struct App<'a> {
    home: &'a Home,
    name: &'a str,
}

impl App<'_> {
    fn config(&self) -> PathBuf {
        self.home.path().join("config").join(self.name)
    }

    fn state(&self) -> PathBuf {
        self.home.path().join("state").join(self.name)
    }

    fn socket(&self) -> PathBuf {
        self.home
            .path()
            .join("run")
            .join(self.name)
            .join("berth.sock")
    }

    /// A `#!/bin/sh` backend `id` in the instance's user backends folder.
    fn backend(&self, id: &str) {
        let dir = self.config().join("backends");
        fs::create_dir_all(&dir).unwrap();
        let exe = dir.join(format!("{id}.sh"));
        fs::write(&exe, "#!/bin/sh\nexec sleep 600\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        let digest = berth::integrity::hash_file(&exe).unwrap();
        fs::write(
            dir.join(format!("{id}.yaml")),
            format!(
                "id: {id}\nname: Backend {id}\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {id}.sh\n    sha256: {digest}\nstop: {{ timeout: 2s }}\n"
            ),
        )
        .unwrap();
    }

    /// `berth --app NAME ARGS`, from the home (no `./backends` there), with
    /// no `--socket`: the instance's own socket is found by its name.
    fn berth(&self, args: &[&str]) -> Command {
        let mut cmd = self.home.berth_bare();
        cmd.current_dir(self.home.path())
            .env_remove("BERTH_APP")
            .arg("--app")
            .arg(self.name)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Out {
        let output = self.berth(args).output().unwrap();
        crate::protocol::check::cli(args, &output);
        Out(output)
    }

    fn status(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["status", "--json"]);
        assert_eq!(out.code(), 0, "{}: {out:?}", self.name);
        serde_json::from_str(&out.stdout()).unwrap()
    }

    /// Starts `cmd` (a `berth run --headless` of this instance) and waits
    /// until its socket answers.
    fn launch(&self, mut cmd: Command) -> Launcher {
        let err = self.home.path().join(format!("{}.err", self.name));
        let child = cmd
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut launcher = Launcher { child, err };
        let deadline = Instant::now() + T;
        while UnixStream::connect(self.socket()).is_err() {
            if let Ok(Some(status)) = launcher.child.try_wait() {
                panic!("{} exited {status}: {}", self.name, launcher.stderr());
            }
            assert!(Instant::now() < deadline, "{} never served", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
        launcher
    }
}

fn ids(list: &[serde_json::Value]) -> Vec<&str> {
    list.iter().filter_map(|b| b["id"].as_str()).collect()
}

/// Every file and folder below `dir`, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Issue #24 point 1: two instances with different names run side by side
/// from their default folders; each has its own socket, backends folder,
/// logs, berth.log and autostart entry, and neither sees or touches the
/// other's; nothing is written under `berth`.
#[test]
fn two_instances_run_side_by_side_without_touching_each_other() {
    let home = Home::new();
    let alpha = App {
        home: &home,
        name: "alpha",
    };
    let beta = App {
        home: &home,
        name: "beta-2",
    };
    alpha.backend("a");
    beta.backend("b");
    let mut alpha_run = alpha.launch(alpha.berth(&["run", "--headless"]));
    // BERTH_APP names the instance as --app does.
    let mut by_env = home.berth_bare();
    by_env
        .current_dir(home.path())
        .env("BERTH_APP", beta.name)
        .args(["run", "--headless"]);
    let mut beta_run = beta.launch(by_env);

    assert_eq!(ids(&alpha.status()), ["a"]);
    assert_eq!(ids(&beta.status()), ["b"]);
    let out = alpha.run(&["start", "a"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let out = beta.run(&["start", "b"]);
    assert_eq!(out.code(), 0, "{out:?}");
    // Each instance knows only its own backends.
    let out = beta.run(&["stop", "a"]);
    assert_eq!(out.code(), 1, "{out:?}");
    let a_pid = alpha.status()[0]["pid"].as_u64().unwrap();
    let b_pid = beta.status()[0]["pid"].as_u64().unwrap();

    // Logs and berth.log under each name; `logs` reads the instance's own.
    assert!(alpha.state().join("logs/a.log").is_file());
    assert!(beta.state().join("logs/b.log").is_file());
    assert!(alpha.state().join("berth.log").is_file());
    assert!(beta.state().join("berth.log").is_file());
    assert_eq!(alpha.run(&["logs", "a"]).code(), 0);
    let out = beta.run(&["logs", "a"]);
    assert_ne!(out.code(), 0, "{out:?}");

    // Start at login: one entry per instance, its Exec naming the instance.
    let out = alpha.run(&["autostart", "enable"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let entry = fs::read_to_string(home.path().join("config/autostart/alpha.desktop")).unwrap();
    let exec = entry.lines().find(|l| l.starts_with("Exec=")).unwrap();
    assert!(exec.ends_with(" run --app alpha"), "{entry}");
    assert!(
        beta.run(&["autostart", "status"])
            .stdout()
            .contains("disabled")
    );

    // Stopping one instance leaves the other's backend running.
    alpha_run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(alpha_run.wait(T), Some(0), "{}", alpha_run.stderr());
    assert!(wait_gone(a_pid), "alpha's backend outlived alpha");
    assert!(alive(b_pid), "beta's backend was stopped with alpha");
    assert_eq!(ids(&beta.status()), ["b"]);
    assert_eq!(beta.status()[0]["state"], "running");

    // Nothing of either instance is under the other's name, nor `berth`.
    for root in ["config", "state", "run"] {
        let mut names: Vec<String> = fs::read_dir(home.path().join(root))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "autostart")
            .collect();
        names.sort();
        assert_eq!(names, ["alpha", "beta-2"], "{root}");
    }
    let alpha_files = tree(&alpha.state());
    assert!(
        !alpha_files.iter().any(|f| f.contains("b.log")),
        "{alpha_files:?}"
    );
    let beta_files = tree(&beta.state());
    assert!(
        !beta_files.iter().any(|f| f.contains("a.log")),
        "{beta_files:?}"
    );
    beta_run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(beta_run.wait(T), Some(0), "{}", beta_run.stderr());
}

fn wait_gone(pid: u64) -> bool {
    crate::control::home::wait_until(T, || !alive(pid))
}

/// Issue #24 point 1: a name that is not an id is a usage error in one line
/// naming it, from the flag and from the variable, for every command.
#[test]
fn a_bad_app_name_is_one_usage_line() {
    let home = Home::new();
    for (flag, env) in [
        (Some("Acme"), None),
        (None, Some("../x")),
        (Some("-x"), None),
    ] {
        for args in [&["status"][..], &["run", "--headless"], &["logs", "a"]] {
            let mut cmd = home.berth_bare();
            cmd.current_dir(home.path());
            if let Some(name) = flag {
                cmd.arg(format!("--app={name}"));
            }
            if let Some(name) = env {
                cmd.env("BERTH_APP", name);
            }
            let out = Out(cmd.args(args).output().unwrap());
            let bad = flag.or(env).unwrap();
            assert_eq!(out.code(), 2, "{args:?} {out:?}");
            assert!(one_line(&out.stderr()), "{out:?}");
            assert!(
                out.stderr()
                    .contains(&format!("invalid app name \"{bad}\"")),
                "{out:?}"
            );
        }
    }
    assert!(!home.path().join("state").exists());
    assert!(!home.path().join("run").exists());
}

/// A subreaper (Python's ctypes prctl) that starts `sh` as berth's parent:
/// the `sh` starts `berth ARGS` in the background, writes both pids, and
/// waits. Once the `sh` is killed, berth is reparented to the subreaper,
/// which writes berth's exit code to `code` when it ends. (berth's pid is
/// written before it can end: berth waits for its backends first.)
const SUBREAPER: &str = r#"
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
out = sys.argv[1]
sh = subprocess.Popen(["/bin/sh", "-c", '"$@" & echo $$ $! > "$OUT.tmp"; mv "$OUT.tmp" "$OUT/pids"; wait', "sh"] + sys.argv[2:], env=dict(os.environ, OUT=out))
while True:
    pid, status = os.wait()
    # Orphans of the backends' groups end here too; only berth counts.
    berth = open(out + "/pids").read().split()[1] if os.path.exists(out + "/pids") else None
    if str(pid) == berth:
        with open(out + "/code.tmp", "w") as f:
            f.write(str(os.waitstatus_to_exitcode(status)) + "\n")
        os.rename(out + "/code.tmp", out + "/code")
        break
"#;

/// Issue #24 point 3: with `--with-parent`, SIGKILL of the process that
/// started berth stops every backend as Quit does, and berth exits 0.
#[test]
fn the_parent_killed_with_sigkill_takes_berth_and_every_backend_along() {
    parent_killed(&["--headless"]);
}

/// The same through `berth run` without `--headless`: berth execs
/// `berth-tray` (same pid, the parent handed over), which finds no display
/// and runs headless.
#[test]
fn the_parent_is_followed_across_the_exec_of_berth_tray() {
    parent_killed(&[]);
}

fn parent_killed(extra: &[&str]) {
    let home = Home::new();
    home.backend("one", "exec sleep 600", "");
    home.backend("two", "sleep 600 & wait", "");
    let out_dir = home.path().join("reaper");
    fs::create_dir(&out_dir).unwrap();
    let mut berth = home.berth(&["run", "--with-parent", "--backends"]);
    berth.arg(home.backends()).args(extra);
    let mut reaper = Command::new("/usr/bin/python3");
    reaper
        .arg("-c")
        .arg(SUBREAPER)
        .arg(&out_dir)
        .arg(berth.get_program())
        .args(berth.get_args())
        .envs(
            berth
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env_remove("BERTH_SOCKET")
        .env_remove("BERTH_BACKENDS")
        .env_remove("BERTH_APP")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(home.path().join("launcher.err")).unwrap());
    let mut reaper = reaper.spawn().unwrap();
    let pids = crate::util::wait_file(&out_dir.join("pids"), T);
    let (parent, berth_pid): (i32, u64) = {
        let mut it = pids.split_whitespace();
        (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
        )
    };
    let served = crate::control::home::wait_until(T, || UnixStream::connect(home.socket()).is_ok());
    let err = || fs::read_to_string(home.path().join("launcher.err")).unwrap_or_default();
    assert!(served, "berth never served: {}", err());
    for id in ["one", "two"] {
        let out = home.run(&["start", id]);
        assert_eq!(out.code(), 0, "{out:?}");
    }
    let pids: Vec<u64> = home
        .status_json()
        .iter()
        .filter_map(|b| b["pid"].as_u64())
        .collect();
    assert_eq!(pids.len(), 2);
    let groups: Vec<u32> = pids
        .iter()
        .flat_map(|p| crate::util::group_pids(*p as u32))
        .collect();
    assert!(groups.len() >= 3, "{groups:?}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(parent),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let code = crate::util::wait_file(&out_dir.join("code"), T);
    assert_eq!(code, "0", "{}", err());
    assert!(!alive(berth_pid));
    for pid in groups {
        assert!(!alive(pid.into()), "{pid} outlived berth: {}", err());
    }
    assert!(err().contains("the parent process ended"), "{}", err());
    let _ = reaper.wait();
}

/// Issue #24 point 3: a parent that is already gone is exit 2 in one line,
/// before anything is served.
#[test]
fn a_parent_already_gone_is_a_usage_error() {
    let home = Home::new();
    // A pid that was ours and has ended: not berth's parent.
    let mut gone = Command::new("/bin/true").spawn().unwrap();
    let pid = gone.id().to_string();
    gone.wait().unwrap();
    for extra in [&["--parent-pid", pid.as_str()][..], &["--parent-pid", "1"]] {
        let out = Out(home
            .berth(&["run", "--headless", "--with-parent", "--backends"])
            .arg(home.backends())
            .args(extra)
            .output()
            .unwrap());
        assert_eq!(out.code(), 2, "{out:?}");
        assert!(one_line(&out.stderr()), "{out:?}");
        assert!(out.stderr().contains("is already gone"), "{out:?}");
        assert!(!home.socket().exists());
    }
}
