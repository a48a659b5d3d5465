//! The sandbox (issue #16) against the real kernel: Landlock, no_new_privs
//! and rlimits applied to real backend processes. Each can and cannot of a
//! sandboxed backend is one probe of `probe.py`, run under
//! `/usr/bin/python3 -I` (the `python3` on PATH here lives under /root,
//! which a sandboxed backend cannot read).

mod filesystem;
mod launcher;
mod limits;
mod network;
mod outside;

use berth::verb::Verb;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth::manifest::Backend;
use berth::manifest::sandbox::{FsRules, Limits, Sandbox};
use berth::status::State;

use crate::util;

/// Runs each argument as one check and prints `<check>: ok` or
/// `<check>: denied <ERRNO>`, then `done`.
pub const PROBE: &str = r#"
import errno, os, socket, sys, time

def report(name, fn):
    try:
        fn()
        print(f"{name}: ok", flush=True)
    except OSError as e:
        print(f"{name}: denied {errno.errorcode.get(e.errno, e.errno)}", flush=True)
    except MemoryError:
        print(f"{name}: denied ENOMEM", flush=True)

held = []
def bind(port):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen()
    print(f"bound {s.getsockname()[1]}", flush=True)
    s.close()

def write(path):
    with open(path, "w") as f:
        f.write("x")

def control(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b'{"cmd": "status"}\n')
    print("reply " + s.makefile().readline().strip(), flush=True)

for arg in sys.argv[1:]:
    kind, _, target = arg.partition("=")
    if kind == "read":
        report(arg, lambda: open(target, "rb").read())
    elif kind == "list":
        report(arg, lambda: os.listdir(target))
    elif kind == "write":
        report(arg, lambda: write(target))
    elif kind == "connect":
        report(arg, lambda: socket.create_connection(("127.0.0.1", int(target)), timeout=5).close())
    elif kind == "bind":
        report(arg, lambda: bind(int(target)))
    elif kind == "alloc":
        report(arg, lambda: held.append(bytearray(int(target))))
    elif kind == "files":
        report(arg, lambda: held.extend(open("/dev/null") for _ in range(int(target))))
    elif kind == "kill":
        report(arg, lambda: os.kill(int(target), 0))
    elif kind == "env":
        print(f"env {target}={os.environ.get(target)}", flush=True)
    elif kind == "control":
        report(arg, lambda: control(target))
    elif kind == "control-new-group":
        # A child that leaves the backend's process group first.
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)
            report(arg, lambda: control(target))
            os._exit(0)
        os.waitpid(pid, 0)
    elif kind == "control-inherited":
        # A child connects and exits; this process then writes on the
        # connection it inherited: `control-inherited=<socket>;<request>`.
        path, _, request = target.partition(";")
        s = socket.socket(socket.AF_UNIX)
        pid = os.fork()
        if pid == 0:
            s.connect(path)
            os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.5)
        s.sendall(request.encode() + b"\n")
        print("reply " + s.makefile().readline().strip(), flush=True)
    elif kind == "notify-as":
        # A child joins another process group, then speaks on that group's
        # sd_notify socket: `notify-as=<pgid>;<socket>;<datagram>`.
        pgid, path, datagram = target.split(";", 2)
        pid = os.fork()
        if pid == 0:
            report(f"setpgid {pgid}", lambda: os.setpgid(0, int(pgid)))
            d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            report("notify", lambda: d.sendto(datagram.encode(), path))
            # Alive while berth reads the sender's group.
            time.sleep(1)
            os._exit(0)
        os.waitpid(pid, 0)
    elif kind == "sleep":
        print("done", flush=True)
        time.sleep(float(target))
    elif kind == "mode":
        print(f"mode {oct(os.stat(target).st_mode & 0o777)}", flush=True)
print("done", flush=True)
"#;

/// A temp dir with `bin/probe.sh` (the executable; its folder is the only
/// non-system folder a sandboxed backend may read by default), a fake home
/// and an unlisted folder, each holding a `secret` file.
pub struct Lab {
    pub env: util::Env,
    pub exe: PathBuf,
}

impl Lab {
    pub fn new() -> Self {
        let env = util::env();
        let root = env.path();
        for dir in ["bin", "home", "other", "listed", "writable"] {
            std::fs::create_dir(root.join(dir)).unwrap();
        }
        for dir in ["home", "other", "listed"] {
            std::fs::write(root.join(dir).join("secret"), "secret\n").unwrap();
        }
        std::fs::write(root.join("bin/probe.py"), PROBE).unwrap();
        let exe = root.join("bin/probe.sh");
        // An absolute path: on main a script's $0 is still /proc/self/fd/N.
        let py = root.join("bin/probe.py");
        std::fs::write(
            &exe,
            format!(
                "#!/bin/sh\nexec /usr/bin/python3 -I '{}' \"$@\"\n",
                py.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { env, exe }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.env.path().join(rel)
    }

    /// A sandbox with filesystem rules (`read: [listed]`, `write: [writable]`)
    /// and `${tmp}`, `${data}` inside the lab.
    pub fn sandbox(&self) -> Sandbox {
        Sandbox {
            filesystem: Some(FsRules {
                read: vec![self.path("listed")],
                write: vec![self.path("writable")],
            }),
            network: None,
            limits: Limits::default(),
            best_effort: false,
            tmp: self.path("rt/berth/tmp/probe"),
            data: self.path("state/berth/data/probe"),
        }
    }

    pub fn backend(&self, id: &str, sandbox: Option<Sandbox>, checks: &[String]) -> Backend {
        let mut b = util::backend(self.env.path(), id, &self.exe);
        b.args = checks.to_vec();
        b.sandbox = sandbox;
        b
    }

    /// Runs the probe as backend `id` until it exits; its report lines.
    pub async fn run(&self, id: &str, sandbox: Option<Sandbox>, checks: &[String]) -> Vec<String> {
        let b = self.backend(id, sandbox, checks);
        self.env.sup.apply(util::catalog([b])).await;
        self.env.sup.command(id, Verb::start()).await.unwrap();
        let st = util::wait_for(&self.env.sup, id, Duration::from_secs(30), |s| {
            !s.state.has_process()
        })
        .await;
        assert_eq!(st.state, State::Exited, "{st:#?}\n{}", self.env.log(id));
        let log = self.env.log(id);
        assert!(log.contains("stdout done"), "probe did not finish:\n{log}");
        report_lines(&log)
    }
}

/// The stdout text of each log line.
pub fn report_lines(log: &str) -> Vec<String> {
    let lines: Vec<String> = log
        .lines()
        .filter_map(|l| l.split_once(" stdout ").map(|(_, t)| t.to_owned()))
        .collect();
    // The probe's `control` checks print the socket's reply line as read.
    for reply in lines.iter().filter_map(|l| l.strip_prefix("reply ")) {
        crate::protocol::check::lines(b"", reply);
    }
    lines
}

/// The outcome the probe printed for `check`: `ok` or `denied <ERRNO>`.
pub fn outcome<'a>(lines: &'a [String], check: &str) -> &'a str {
    let prefix = format!("{check}: ");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no outcome for {check} in {lines:#?}"))
}

pub fn check(kind: &str, target: impl AsRef<Path>) -> String {
    format!("{kind}={}", target.as_ref().display())
}
