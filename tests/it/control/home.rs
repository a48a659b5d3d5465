//! The test harness: a temp home with backends, a launcher process, and
//! helpers to run clients and read their output.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A temp dir laid out like a user's machine: backends, state, runtime dir.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Traversable by others, so only berth's own 0700 socket folder keeps
        // another user out (the permission test relies on it).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn backends(&self) -> PathBuf {
        self.path().join("b")
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("run/berth/berth.sock")
    }

    pub fn log(&self, id: &str) -> PathBuf {
        self.path().join(format!("state/berth/logs/{id}.log"))
    }

    /// A `#!/bin/sh` backend `id` with a manifest carrying its real digest.
    pub fn backend(&self, id: &str, script: &str, extra: &str) {
        let exe = self.backends().join(format!("{id}.sh"));
        std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let digest = berth::integrity::hash_file(&exe).unwrap();
        let manifest = format!(
            "id: {id}\nname: Backend {id}\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {id}.sh\n    sha256: {digest}\nstop: {{ timeout: 2s }}\n{extra}"
        );
        std::fs::write(self.backends().join(format!("{id}.yaml")), manifest).unwrap();
    }

    /// `berth --socket <this home's socket> ARGS`.
    pub fn berth(&self, args: &[&str]) -> Command {
        let mut cmd = self.berth_bare();
        cmd.arg("--socket").arg(self.socket()).args(args);
        cmd
    }

    /// `berth` with this home's environment and no arguments yet.
    pub fn berth_bare(&self) -> Command {
        self.berth_at(Path::new(BERTH))
    }

    /// A berth executable at `program` with this home's environment.
    pub fn berth_at(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("XDG_STATE_HOME", self.path().join("state"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env_remove("BERTH_SOCKET")
            .env_remove("BERTH_BACKENDS")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `berth ARGS` to the end; what it printed is checked against the
    /// schemas when they describe it (`status --json`).
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Out {
        let output = self.berth(args).output().unwrap();
        crate::protocol::check::cli(args, &output);
        Out(output)
    }

    /// Starts `berth run --headless` and waits until it answers.
    pub fn launch(&self) -> Launcher {
        self.launch_with(&[])
    }

    /// [`Home::launch`] with extra arguments to `berth run`.
    pub fn launch_with(&self, extra: &[&str]) -> Launcher {
        self.launch_with_cmd(extra, |_| {})
    }

    /// [`Home::launch_with`], with something added to the launcher's command
    /// (an environment variable).
    pub fn launch_with_cmd(&self, extra: &[&str], f: impl FnOnce(&mut Command)) -> Launcher {
        let mut cmd = self.berth(&["run", "--headless", "--backends"]);
        f(&mut cmd);
        self.launch_cmd(cmd, extra)
    }

    /// [`Home::launch`] with no capabilities: as root, `setpriv` drops them
    /// all before berth starts, so to the kernel berth and its backends are
    /// an ordinary user's processes (no CAP_SYS_PTRACE, no DAC override).
    /// `f` adds to the command (an environment variable).
    pub fn launch_unprivileged(&self, f: impl FnOnce(&mut Command)) -> Launcher {
        let mut cmd = if nix::unistd::geteuid().is_root() {
            let mut c = self.berth_at(Path::new("setpriv"));
            c.args([
                "--inh-caps=-all",
                "--ambient-caps=-all",
                "--bounding-set=-all",
                BERTH,
            ]);
            c
        } else {
            self.berth_bare()
        };
        cmd.arg("--socket")
            .arg(self.socket())
            .args(["run", "--headless", "--backends"]);
        f(&mut cmd);
        self.launch_cmd(cmd, &[])
    }

    /// Spawns `cmd` (`... run --headless --backends`) with this home's
    /// backends folder and `extra`, and waits until it answers.
    fn launch_cmd(&self, mut cmd: Command, extra: &[&str]) -> Launcher {
        let backends = self.backends();
        let child = cmd
            .arg(&backends)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.path().join("launcher.err")).unwrap())
            .spawn()
            .unwrap();
        let mut launcher = Launcher {
            child,
            err: self.path().join("launcher.err"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while UnixStream::connect(self.socket()).is_err() {
            if let Ok(Some(status)) = launcher.child.try_wait() {
                panic!("launcher exited {status}: {}", launcher.stderr());
            }
            assert!(Instant::now() < deadline, "launcher never served");
            std::thread::sleep(Duration::from_millis(20));
        }
        launcher
    }

    pub fn status_json(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["status", "--json"]);
        assert_eq!(out.code(), 0, "{out:?}");
        serde_json::from_str(&out.stdout()).unwrap()
    }

    pub fn status_of(&self, id: &str) -> serde_json::Value {
        self.status_json()
            .into_iter()
            .find(|b| b["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed"))
    }
}

pub struct Launcher {
    pub child: Child,
    pub err: PathBuf,
}

impl Launcher {
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).unwrap();
    }

    /// Waits for the launcher to exit; its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "launcher did not exit: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(self.pid(), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub struct Out(pub Output);

impl Out {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstdout: {}\nstderr: {}",
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

pub fn one_line(text: &str) -> bool {
    text.lines().count() == 1 && text.ends_with('\n')
}

pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// One raw request line, one raw reply line (checked against the protocol
/// schema's reply to that request).
#[track_caller]
pub fn raw(socket: &Path, line: &[u8]) -> serde_json::Value {
    let mut s = UnixStream::connect(socket).unwrap();
    s.write_all(line).unwrap();
    let mut out = String::new();
    BufReader::new(s).read_line(&mut out).unwrap();
    crate::protocol::check::reply(line, &out)
}
