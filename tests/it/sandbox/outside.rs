//! Escapes found from outside (issue #23, points 1, 3 and 4), each played by
//! a hostile sandboxed backend against the real binary: commanding berth on
//! a connection its child made, passing as another backend's process group
//! to forge its sd_notify notices, and reading berth's environment and
//! memory map through /proc.

use std::time::Duration;

use super::{PROBE, outcome};
use crate::control::home::{Home, wait_until};

const SANDBOX: &str = "sandbox:\n  filesystem: { read: [], write: [] }\n";

/// A probe backend `id` with this `sandbox` YAML, whose checks come from
/// `berth start ID -- CHECKS...` (the manifest has no args of its own).
fn probe(home: &Home, id: &str, sandbox: &str) {
    std::fs::write(home.backends().join("probe.py"), PROBE).unwrap();
    home.backend(
        id,
        &format!(
            "exec /usr/bin/python3 -I '{}' \"$@\"",
            home.backends().join("probe.py").display()
        ),
        sandbox,
    );
}

/// Starts the probe `id` with `checks` (then a 30 s sleep, so `start` sees
/// it running) and waits for its report lines.
fn run_probe(home: &Home, id: &str, checks: &[String]) -> Vec<String> {
    let mut args = vec!["start", id, "--"];
    args.extend(checks.iter().map(String::as_str));
    args.push("sleep=30");
    let out = home.run(&args);
    assert_eq!(out.code(), 0, "{out:?}");
    super::launcher::report(home, id)
}

/// #23.1: a child connects and exits; its sandboxed parent writes on the
/// inherited connection. Before, the peer check read `/proc/<child>` at the
/// request, found nothing, and obeyed.
#[test]
fn a_sandboxed_backend_cannot_command_berth_on_a_connection_its_child_made() {
    let home = Home::new();
    home.backend("other", "exec sleep 600", "");
    probe(&home, "boxed", SANDBOX);
    let _l = home.launch();
    assert_eq!(home.run(&["start", "other"]).code(), 0);
    let request = format!(
        "control-inherited={};{}",
        home.socket().display(),
        r#"{"cmd": "stop", "id": "other"}"#
    );
    let lines = run_probe(&home, "boxed", &[request]);
    let reply = lines
        .iter()
        .find(|l| l.starts_with("reply "))
        .unwrap_or_else(|| panic!("no reply in {lines:#?}"));
    assert!(
        reply.contains(r#""ok":false"#) && reply.contains("refused"),
        "{reply}"
    );
    assert_eq!(home.status_of("other")["state"], "running");
    // berth itself keeps serving everyone else.
    assert_eq!(home.run(&["status"]).code(), 0);
}

/// #23.3: before, every backend shared berth's session, so a backend's
/// child could `setpgid` into another backend's group and its sd_notify
/// datagrams passed the sender check: `READY=1` made a never-ready backend
/// `running` with a forged status line.
#[test]
fn a_backend_cannot_join_another_backends_group_to_forge_its_notices() {
    let home = Home::new();
    home.backend(
        "victim",
        "exec sleep 600",
        "ready: { notify: true, timeout: 1s }\n",
    );
    probe(&home, "boxed", SANDBOX);
    let _l = home.launch();
    // Never ready: `start` gives up after the timeout; it stays starting.
    assert_eq!(home.run(&["start", "victim"]).code(), 1);
    let victim = home.status_of("victim");
    assert_eq!(victim["state"], "starting", "{victim}");
    let pgid = victim["pid"].as_u64().unwrap();
    // The backend leads its own session (the 6th field of stat).
    let stat = std::fs::read_to_string(format!("/proc/{pgid}/stat")).unwrap();
    let session = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_owned();
    assert_eq!(session, pgid.to_string(), "{stat}");
    let socket = home.path().join("run/berth/notify/victim.sock");
    assert!(socket.exists(), "no notify socket at {}", socket.display());
    let attack = format!(
        "notify-as={pgid};{};READY=1\nSTATUS=forged",
        socket.display()
    );
    let lines = run_probe(&home, "boxed", &[attack]);
    assert_eq!(outcome(&lines, &format!("setpgid {pgid}")), "denied EPERM");
    // The datagram itself was sent, from outside the victim's group.
    assert_eq!(outcome(&lines, "notify"), "ok");
    std::thread::sleep(Duration::from_millis(300));
    let victim = home.status_of("victim");
    assert_eq!(victim["state"], "starting", "{victim}");
    assert_ne!(victim["status_line"], "forged", "{victim}");
}

/// A process of the same user outside berth, without capabilities: what
/// a user's other programs are to the kernel. Killed on drop.
struct Other(std::process::Child);

impl Other {
    fn start() -> Self {
        let mut cmd = if nix::unistd::geteuid().is_root() {
            let mut c = std::process::Command::new("setpriv");
            c.args([
                "--inh-caps=-all",
                "--ambient-caps=-all",
                "--bounding-set=-all",
                "sleep",
            ]);
            c
        } else {
            std::process::Command::new("sleep")
        };
        Self(cmd.arg("60").spawn().unwrap())
    }
}

impl Drop for Other {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `read=` checks of berth's and both guardians' environment, memory map
/// and auxiliary vector.
fn berth_reads(berth: u32) -> Vec<String> {
    assert!(
        wait_until(Duration::from_secs(10), || {
            crate::util::guardians_of(berth).len() == 2
        }),
        "two guardians"
    );
    let mut pids = vec![berth];
    pids.extend(crate::util::guardians_of(berth));
    pids.iter()
        .flat_map(|pid| ["environ", "maps", "auxv"].map(|f| format!("read=/proc/{pid}/{f}")))
        .collect()
}

/// #23.4: a sandboxed backend cannot read berth's (and the guardians')
/// environment, memory map or auxiliary vector, nor a user's other
/// process's. berth runs without capabilities here, as a user's session
/// would: with CAP_SYS_PTRACE (root) they are readable whatever berth does.
/// Landlock's own ptrace restriction refuses these reads across domains;
/// the next test covers a kernel without it.
#[test]
fn a_sandboxed_backend_cannot_read_berths_environment_or_memory_map() {
    let home = Home::new();
    probe(&home, "boxed", SANDBOX);
    let launcher = home.launch_unprivileged(|_| {});
    let other = Other::start();
    let own = "read=/proc/self/environ".to_owned();
    let others = format!("read=/proc/{}/environ", other.0.id());
    let mut checks = berth_reads(launcher.pid().as_raw() as u32);
    checks.extend([own.clone(), others.clone()]);
    let lines = run_probe(&home, "boxed", &checks);
    assert_eq!(outcome(&lines, &own), "ok", "it reads its own");
    for check in checks.iter().filter(|c| **c != own) {
        assert_eq!(outcome(&lines, check), "denied EACCES", "{check}");
    }
}

/// #23.4 where Landlock cannot help (no Landlock, `best_effort: true`):
/// berth and the guardians are not dumpable, so a backend still cannot read
/// them; before, it read them all. A user's other process stays readable
/// (the README's limits), which also shows the reads themselves work here.
#[test]
fn without_landlock_a_backend_still_cannot_read_berths_environment_or_memory_map() {
    let home = Home::new();
    probe(&home, "boxed", &format!("{SANDBOX}  best_effort: true\n"));
    let launcher = home.launch_unprivileged(|c| {
        c.env("BERTH_TEST_LANDLOCK_ABI", "0");
    });
    let other = Other::start();
    let others = format!("read=/proc/{}/environ", other.0.id());
    let mut checks = berth_reads(launcher.pid().as_raw() as u32);
    checks.push(others.clone());
    let lines = run_probe(&home, "boxed", &checks);
    assert!(
        home.status_of("boxed")["sandbox"]
            .as_str()
            .is_some_and(|s| s.starts_with("partial")),
        "runs without Landlock"
    );
    assert_eq!(outcome(&lines, &others), "ok", "the control read works");
    for check in checks.iter().filter(|c| **c != others) {
        assert_eq!(outcome(&lines, check), "denied EACCES", "{check}");
    }
}
