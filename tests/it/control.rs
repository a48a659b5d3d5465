//! The control socket and its CLI through the real binary: `berth run
//! --headless` in a temp dir, clients as separate processes, raw sockets for
//! protocol abuse. (Issue #4.)

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A temp dir laid out like a user's machine: backends, state, runtime dir.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Traversable by others, so only berth's own 0700 socket folder keeps
        // another user out (the permission test relies on it).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn backends(&self) -> PathBuf {
        self.path().join("b")
    }

    fn socket(&self) -> PathBuf {
        self.path().join("run/berth/berth.sock")
    }

    fn log(&self, id: &str) -> PathBuf {
        self.path().join(format!("state/berth/logs/{id}.log"))
    }

    /// A `#!/bin/sh` backend `id` with a manifest carrying its real digest.
    fn backend(&self, id: &str, script: &str, extra: &str) {
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
    fn berth(&self, args: &[&str]) -> Command {
        let mut cmd = self.berth_bare();
        cmd.arg("--socket").arg(self.socket()).args(args);
        cmd
    }

    /// `berth` with this home's environment and no arguments yet.
    fn berth_bare(&self) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.env("XDG_STATE_HOME", self.path().join("state"))
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env_remove("BERTH_SOCKET")
            .env_remove("BERTH_BACKENDS")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Out {
        Out(self.berth(args).output().unwrap())
    }

    /// Starts `berth run --headless` and waits until it answers.
    fn launch(&self) -> Launcher {
        let backends = self.backends();
        let child = self
            .berth(&["run", "--headless", "--backends"])
            .arg(&backends)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.path().join("launcher.err")).unwrap())
            .spawn()
            .unwrap();
        let launcher = Launcher {
            child,
            err: self.path().join("launcher.err"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while UnixStream::connect(self.socket()).is_err() {
            if let Ok(Some(status)) = launcher_try_wait(&launcher) {
                panic!("launcher exited {status}: {}", launcher.stderr());
            }
            assert!(Instant::now() < deadline, "launcher never served");
            std::thread::sleep(Duration::from_millis(20));
        }
        launcher
    }

    fn status_json(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["status", "--json"]);
        assert_eq!(out.code(), 0, "{out:?}");
        serde_json::from_str(&out.stdout()).unwrap()
    }

    fn status_of(&self, id: &str) -> serde_json::Value {
        self.status_json()
            .into_iter()
            .find(|b| b["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed"))
    }
}

fn launcher_try_wait(l: &Launcher) -> std::io::Result<Option<std::process::ExitStatus>> {
    // try_wait needs &mut; a zero-timeout waitpid via /proc is enough here.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", l.child.id()))?;
    Ok(stat
        .rsplit(')')
        .next()
        .filter(|rest| rest.trim_start().starts_with('Z'))
        .map(|_| std::process::ExitStatus::default()))
}

struct Launcher {
    child: Child,
    err: PathBuf,
}

impl Launcher {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).unwrap();
    }

    /// Waits for the launcher to exit; its exit code.
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
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

struct Out(Output);

impl Out {
    fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    fn stderr(&self) -> String {
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

fn one_line(text: &str) -> bool {
    text.lines().count() == 1 && text.ends_with('\n')
}

fn alive(pid: u64) -> bool {
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

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// One raw request line, one raw reply line.
fn raw(socket: &Path, line: &[u8]) -> serde_json::Value {
    let mut s = UnixStream::connect(socket).unwrap();
    s.write_all(line).unwrap();
    let mut out = String::new();
    BufReader::new(s).read_line(&mut out).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out:?}: {e}"))
}

// ---------------------------------------------------------------- no launcher

#[test]
fn without_a_launcher_every_client_command_says_so_and_exits_2() {
    let home = Home::new();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["start", "python"],
        &["stop", "python"],
        &["restart", "python"],
    ] {
        let out = home.run(args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(one_line(&out.stderr()), "{out:?}");
        assert!(
            out.stderr().starts_with("berth: no launcher running on ")
                && out.stderr().contains("start one with `berth run`"),
            "{out:?}"
        );
    }
}

#[test]
fn a_stale_socket_file_is_not_a_launcher() {
    let home = Home::new();
    let sock = home.socket();
    berth::control::socket::prepare_folder(&sock).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let out = home.run(&["status"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("no launcher running"), "{out:?}");
}

#[test]
fn a_malformed_id_is_a_usage_error() {
    let home = Home::new();
    let out = home.run(&["start", "Not/An-Id"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("invalid id"), "{out:?}");
}

// ------------------------------------------------------------ socket safety

#[test]
fn a_socket_path_too_long_is_a_one_line_error() {
    let home = Home::new();
    let long = home.path().join("x".repeat(120)).join("berth.sock");
    let long = long.to_str().unwrap();
    let b = home.backends();
    let bare = |args: &[&str]| Out(home.berth_bare().args(args).output().unwrap());
    let out = bare(&[
        "run",
        "--headless",
        "--socket",
        long,
        "--backends",
        b.to_str().unwrap(),
    ]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("at most 107 bytes"), "{out:?}");
    let out = bare(&["status", "--socket", long]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("at most 107 bytes"), "{out:?}");
}

#[test]
fn an_open_socket_folder_is_refused() {
    let home = Home::new();
    let folder = home.socket().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = home.backends();
    let out = home.run(&["run", "--headless", "--backends", b.to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("has mode 0755"), "{out:?}");
}

#[test]
fn a_missing_backends_folder_is_a_usage_error() {
    let home = Home::new();
    let out = home.run(&["run", "--headless", "--backends", "/nonexistent/berth"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("does not exist"), "{out:?}");
    assert!(!home.socket().exists(), "refused before binding");
}

#[test]
fn the_socket_is_private_and_another_user_cannot_connect() {
    let home = Home::new();
    let _l = home.launch();
    let sock = home.socket();
    assert_eq!(std::fs::metadata(&sock).unwrap().mode() & 0o777, 0o600);
    let folder = std::fs::metadata(sock.parent().unwrap()).unwrap();
    assert_eq!(folder.mode() & 0o777, 0o700);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to `nobody` needs root");
        return;
    }
    let as_nobody = |socket: &Path| {
        Out(Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                BERTH,
                "status",
            ])
            .arg("--socket")
            .arg(socket)
            .output()
            .unwrap())
    };
    // Control: berth runs fine as nobody and tells a missing launcher apart.
    let out = as_nobody(&home.path().join("nowhere.sock"));
    assert_eq!(out.code(), 2, "{out:?}");
    let out = as_nobody(&sock);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("Permission denied"), "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
}

#[test]
fn a_second_launcher_refuses_and_the_first_keeps_serving() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    let _first = home.launch();
    let b = home.backends();
    let out = home.run(&["run", "--headless", "--backends", b.to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(
        out.stderr().contains("a launcher is already running on"),
        "{out:?}"
    );
    assert_eq!(home.status_json().len(), 1);
}

#[test]
fn a_stale_socket_left_by_a_killed_launcher_is_replaced() {
    let home = Home::new();
    let mut first = home.launch();
    first.signal(Signal::SIGKILL);
    first.wait(Duration::from_secs(10));
    assert!(
        home.socket().exists(),
        "SIGKILL leaves the socket file behind"
    );
    let _second = home.launch();
    assert_eq!(home.run(&["status"]).code(), 0);
}

// ---------------------------------------------------------------- commands

#[test]
fn status_prints_a_table_and_the_documented_json() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    std::fs::write(home.backends().join("broken.yaml"), "id: [\n").unwrap();
    let _l = home.launch();

    let out = home.run(&["status"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let text = out.stdout();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for col in [
        "ID", "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "CPU", "MEMORY", "VERSION", "READY",
        "ERROR",
    ] {
        assert!(lines[0].contains(col), "{col} missing: {text}");
    }
    assert!(
        lines[1].starts_with("alpha") && lines[1].contains("stopped"),
        "{text}"
    );
    assert!(
        lines[2].contains("invalid") && lines[2].contains("broken.yaml"),
        "{text}"
    );

    let list = home.status_json();
    assert_eq!(list.len(), 2);
    let keys: Vec<&str> = list[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "id",
        "name",
        "version",
        "path",
        "error",
        "status_line",
        "signal",
        "file",
        "state",
        "pid",
        "uptime_s",
        "rss_bytes",
        "exit_code",
        "cpu_percent",
        "ready",
        "pending_restart",
        "restarts",
    ];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(list[1]["id"], serde_json::Value::Null);
    assert_eq!(list[1]["state"], "invalid");
    assert!(list[1]["file"].as_str().unwrap().starts_with('/'));
}

#[test]
fn start_stop_restart_wait_for_the_outcome() {
    let home = Home::new();
    home.backend(
        "alpha",
        r#"echo '{"status": "ready"}'; exec sleep 600"#,
        "ready: { stdout_json: { status: ready }, timeout: 10s }\n",
    );
    let _l = home.launch();

    let out = home.run(&["start", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout().starts_with("alpha: running (pid "), "{out:?}");
    let status = home.status_of("alpha");
    assert_eq!(status["state"], "running");
    assert_eq!(status["ready"], true);
    let pid = status["pid"].as_u64().unwrap();
    assert!(alive(pid));

    let out = home.run(&["start", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stderr(), "berth: alpha is already running\n");

    let out = home.run(&["restart", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let new_pid = home.status_of("alpha")["pid"].as_u64().unwrap();
    assert_ne!(pid, new_pid);
    assert!(!alive(pid));

    let out = home.run(&["stop", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "alpha: stopped\n");
    assert!(!alive(new_pid), "stop returns once the process is gone");

    let out = home.run(&["stop", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr().starts_with("berth: ") && one_line(&out.stderr()),
        "{out:?}"
    );
}

#[test]
fn a_start_that_does_not_reach_running_exits_1_with_the_reason() {
    let home = Home::new();
    let ready = "ready: { stdout_json: { status: ready }, timeout: 1s }\n";
    home.backend("crash", "echo boom >&2; exit 3", ready);
    home.backend("mute", "exec sleep 600", ready);
    home.backend("tampered", "exec sleep 600", "");
    std::fs::write(
        home.backends().join("tampered.sh"),
        "#!/bin/sh\necho evil\n",
    )
    .unwrap();
    let _l = home.launch();

    let out = home.run(&["start", "crash"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(out.stderr(), "berth: crash: exited (code 3)\n");

    let out = home.run(&["start", "mute"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(out.stderr(), "berth: mute: starting: not ready after 1s\n");

    let out = home.run(&["start", "tampered"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().starts_with("berth: tampered: "), "{out:?}");
    assert!(out.stderr().contains("checksum mismatch"), "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");

    let out = home.run(&["start", "ghost"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(out.stderr(), "berth: no backend with id \"ghost\"\n");
}

// ---------------------------------------------------------------- protocol

#[test]
fn the_real_launcher_survives_protocol_abuse() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    let _l = home.launch();
    let sock = home.socket();

    for (line, want) in [
        (&b"garbage\n"[..], "request is not JSON"),
        (b"{\"cmd\":\"dance\"}\n", "unknown command \"dance\""),
        (b"{\"cmd\":\"start\"}\n", "missing field `id`"),
        (
            b"{\"cmd\":\"stop\",\"id\":\"ghost\"}\n",
            "no backend with id \"ghost\"",
        ),
        (b"\xff\xff\n", "request is not UTF-8"),
    ] {
        let reply = raw(&sock, line);
        assert_eq!(reply["ok"], false);
        assert!(reply["error"].as_str().unwrap().contains(want), "{reply}");
    }

    // A 10 MB line: an error reply, then the connection is closed.
    let mut s = UnixStream::connect(&sock).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..10 {
            if w.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got); // ends in EOF or ECONNRESET
    writer.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        "{\"ok\":false,\"error\":\"request line over 64 KiB\"}\n"
    );

    // 200 clients at once, half of them talking nonsense.
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let line: &[u8] = if i % 2 == 0 {
                    b"{\"cmd\":\"status\"}\n"
                } else {
                    b"{]\n"
                };
                raw(&sock, line)["ok"] == (i % 2 == 0)
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap());
    }
    assert_eq!(raw(&sock, b"{\"cmd\":\"status\"}\n")["ok"], true);
}

#[test]
fn a_silent_client_is_closed_after_10_seconds() {
    let home = Home::new();
    let _l = home.launch();
    let mut s = UnixStream::connect(home.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let t0 = Instant::now();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_secs(9), "closed after {waited:?}");
    assert!(got.contains("no request for 10s"), "{got}");
    assert_eq!(home.run(&["status"]).code(), 0, "still serving");
}

// ------------------------------------------------------------- lifecycle

#[test]
fn sigterm_stops_every_backend_removes_the_socket_and_exits_0() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    home.backend("beta", "exec sleep 600", "");
    let mut l = home.launch();
    assert_eq!(home.run(&["start", "alpha"]).code(), 0);
    assert_eq!(home.run(&["start", "beta"]).code(), 0);
    let pids: Vec<u64> = ["alpha", "beta"]
        .iter()
        .map(|id| home.status_of(id)["pid"].as_u64().unwrap())
        .collect();
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait(Duration::from_secs(15)), Some(0), "{}", l.stderr());
    for pid in pids {
        assert!(!alive(pid), "backend {pid} survived");
    }
    assert!(!home.socket().exists(), "socket removed");
}

#[test]
fn a_second_sigint_kills_every_backend_and_exits_130() {
    let home = Home::new();
    // Ignores SIGTERM and has a long stop timeout: only SIGKILL ends it soon.
    home.backend(
        "stubborn",
        "trap '' TERM INT\nwhile :; do sleep 1; done",
        "",
    );
    let manifest = home.backends().join("stubborn.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("timeout: 2s", "timeout: 60s");
    std::fs::write(&manifest, text).unwrap();
    let mut l = home.launch();
    assert_eq!(home.run(&["start", "stubborn"]).code(), 0);
    let pid = home.status_of("stubborn")["pid"].as_u64().unwrap();
    l.signal(Signal::SIGINT);
    assert!(wait_until(Duration::from_secs(10), || home
        .status_of("stubborn")["state"]
        == "stopping"));
    l.signal(Signal::SIGINT);
    assert_eq!(l.wait(Duration::from_secs(15)), Some(130), "{}", l.stderr());
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "SIGKILL reached the group"
    );
}

#[test]
fn sighup_rescans_the_backends_folder() {
    let home = Home::new();
    let l = home.launch();
    assert!(home.status_json().is_empty());
    home.backend("late", "exec sleep 600", "");
    l.signal(Signal::SIGHUP);
    let listed = || home.status_json().len();
    assert!(wait_until(Duration::from_secs(10), || listed() == 1));
    // The socket's `rescan` does the same and answers once it is applied.
    home.backend("later", "exec sleep 600", "");
    let reply = raw(&home.socket(), b"{\"cmd\":\"rescan\"}\n");
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(listed(), 2);
}

#[test]
fn the_default_backends_folder_is_created_on_first_run() {
    let home = Home::new();
    // No --backends, no ./backends in the working directory: the config folder.
    let mut child = home
        .berth(&["run", "--headless"])
        .current_dir(home.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let created = home.path().join("config/berth/backends");
    let ok = wait_until(Duration::from_secs(15), || {
        UnixStream::connect(home.socket()).is_ok()
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(ok, "launcher never served: {err}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(created.is_dir());
}

// -------------------------------------------------------------------- logs

#[test]
fn logs_print_the_file_without_a_launcher() {
    let home = Home::new();
    let log = home.log("alpha");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "one\ntwo\nthree\n").unwrap();

    let out = home.run(&["logs", "alpha"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "one\ntwo\nthree\n");
    let out = home.run(&["logs", "alpha", "-n", "2"]);
    assert_eq!(out.stdout(), "two\nthree\n");

    let out = home.run(&["logs", "ghost"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr().starts_with("berth: no log for ghost at "),
        "{out:?}"
    );
    assert!(one_line(&out.stderr()));
    let out = home.run(&["logs", "../etc"]);
    assert_eq!(out.code(), 2, "{out:?}");
}

#[test]
fn logs_of_a_running_backend_come_from_the_supervisor() {
    let home = Home::new();
    home.backend("talker", "echo hello from talker; exec sleep 600", "");
    let _l = home.launch();
    assert_eq!(home.run(&["start", "talker"]).code(), 0);
    assert!(wait_until(Duration::from_secs(10), || {
        home.run(&["logs", "talker"])
            .stdout()
            .contains("stdout hello from talker")
    }));
}

#[test]
fn logs_follow_across_rotation() {
    let home = Home::new();
    let log = home.log("alpha");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "before\n").unwrap();
    let mut child = home
        .berth(&["logs", "alpha", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(next(), "before");
    let append = |text: &str| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append("appended\n");
    assert_eq!(next(), "appended");
    // Rotation as the supervisor does it: rename, then a new file.
    append("last of old\n");
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    std::fs::write(&log, "first of new\n").unwrap();
    assert_eq!(next(), "last of old");
    assert_eq!(next(), "first of new");
    append("second of new\n");
    assert_eq!(next(), "second of new");
    child.kill().unwrap();
    child.wait().unwrap();
}
