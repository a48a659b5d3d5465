//! How soon berth reports `running` once a backend is ready (DESIGN.md,
//! "Health (v2)": tcp and http readiness within about 10 ms of the moment
//! the program listens). Goal: berth adds at most 10 ms at the median.
//!
//! One python3 server, three ways to be ready: it listens on TCP (`tcp`
//! probe), answers HTTP (`http` probe), or prints a JSON line
//! (`stdout_json`). It notes the CLOCK_MONOTONIC instant at which it became
//! ready (right after `listen()`, or right before the line), after a delay
//! that varies by round (so the probes' back-off is met at different
//! points). Each round runs it twice, alternated so both see the same
//! machine: under berth, where the lag is "snapshot says running" minus
//! that instant; and directly, with a plain loop that tries every 200 µs
//! (connect, GET, or read the pipe): the reference lag. Also printed:
//! spawn-to-ready of the direct run and start-to-running under berth.

mod common;

use berth::verb::Verb;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use berth::manifest::{Backend, Probe, ReadySpec};
use berth::status::State;
use berth::supervisor::SupervisorHandle;

const ROUNDS: usize = 20;

/// `server.py MODE PORT`: reads its delay from `delay`, writes the ready
/// instant (ns, CLOCK_MONOTONIC, the clock of Rust's `Instant`) to `stamp`.
const SERVER: &str = r#"#!/usr/bin/env python3
import os, socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
time.sleep(float(open("delay").read()))
def mark(t):
    with open("stamp.tmp", "w") as f:
        f.write(str(t))
    os.rename("stamp.tmp", "stamp")
if mode == "stdout":
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    print('{"status": "ready"}', flush=True)
    mark(t)
    time.sleep(60)
    sys.exit(0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
mark(time.clock_gettime_ns(time.CLOCK_MONOTONIC))
while True:
    c, _ = s.accept()
    if mode == "http":
        c.recv(4096)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    c.close()
"#;

#[derive(Clone, Copy)]
enum Kind {
    Tcp,
    Http,
    Stdout,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Http => "http",
            Self::Stdout => "stdout_json",
        }
    }

    fn mode(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Http => "http",
            Self::Stdout => "stdout",
        }
    }

    fn probe(self, port: u16) -> Probe {
        match self {
            Self::Tcp => Probe::Tcp(format!("127.0.0.1:{port}")),
            Self::Http => Probe::Http(format!("http://127.0.0.1:{port}/")),
            Self::Stdout => Probe::StdoutJson(
                [("status".to_owned(), serde_json::json!("ready"))]
                    .into_iter()
                    .collect(),
            ),
        }
    }
}

/// Now on CLOCK_MONOTONIC, in ns.
fn now_ns() -> i128 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The server's ready instant, once it wrote it.
fn stamp(dir: &Path) -> i128 {
    let path = dir.join("stamp");
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return text.trim().parse().expect("stamp");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn backend(dir: &Path, kind: Kind, port: u16, exe: &Path) -> Backend {
    let mut b = common::backend(dir, kind.mode(), exe);
    b.args = vec![kind.mode().into(), port.to_string()];
    b.ready = ReadySpec {
        probe: kind.probe(port),
        timeout: Duration::from_secs(15),
    };
    b
}

/// One run under berth: (start-to-running, ready-to-running) in ns.
async fn under_berth(sup: &SupervisorHandle, dir: &Path, kind: Kind) -> (i128, i128) {
    let _ = std::fs::remove_file(dir.join("stamp"));
    let id = kind.mode();
    let mut rx = sup.subscribe();
    let t0 = now_ns();
    sup.command(id, Verb::start()).await.expect("start");
    while rx.borrow_and_update().get(id).map(|b| b.state) != Some(State::Running) {
        rx.changed().await.expect("supervisor alive");
    }
    let running = now_ns();
    let ready = stamp(dir);
    sup.command(id, Verb::Stop).await.expect("stop");
    (running - t0, running - ready)
}

/// One direct run with a plain polling loop: (spawn-to-ready,
/// ready-to-seen) in ns.
fn direct(dir: &Path, kind: Kind, port: u16, exe: &Path) -> (i128, i128) {
    let _ = std::fs::remove_file(dir.join("stamp"));
    let t0 = now_ns();
    let mut child = Command::new(exe)
        .args([kind.mode(), &port.to_string()])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let seen = match kind {
        Kind::Stdout => {
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("ready line");
            now_ns()
        }
        Kind::Tcp | Kind::Http => loop {
            let ok = TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
                if let Kind::Http = kind {
                    let mut head = [0u8; 12];
                    s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
                        && s.read_exact(&mut head).is_ok()
                        && head.starts_with(b"HTTP/1.0 200")
                } else {
                    true
                }
            });
            if ok {
                break now_ns();
            }
            std::thread::sleep(Duration::from_micros(200));
        },
    };
    let ready = stamp(dir);
    // The group: python and nothing else, ended like berth's stop.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    (ready - t0, seen - ready)
}

fn median_ms(v: &mut [i128]) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64 / 1e6
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe: PathBuf = dir.path().join("server.py");
    std::fs::write(&exe, SERVER).expect("server");
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let kinds = [Kind::Tcp, Kind::Http, Kind::Stdout];
    let ports: Vec<u16> = kinds.iter().map(|_| free_port()).collect();
    let backends = kinds
        .iter()
        .zip(&ports)
        .map(|(k, p)| backend(dir.path(), *k, *p, &exe))
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sup = common::supervise(dir.path(), backends).await;
        for (kind, port) in kinds.iter().zip(&ports) {
            let (mut spawn_ready, mut seen) = (Vec::new(), Vec::new());
            let (mut start_running, mut lag) = (Vec::new(), Vec::new());
            // One warm-up round of each, not counted.
            std::fs::write(dir.path().join("delay"), "0").expect("delay");
            direct(dir.path(), *kind, *port, &exe);
            under_berth(&sup, dir.path(), *kind).await;
            for round in 0..ROUNDS {
                // 0 to 400 ms after python is up: the probes' back-off is
                // met early and late.
                let delay = (round % 5) as f64 * 0.1;
                std::fs::write(dir.path().join("delay"), delay.to_string()).expect("delay");
                let (a, b) = direct(dir.path(), *kind, *port, &exe);
                spawn_ready.push(a);
                seen.push(b);
                let (c, d) = under_berth(&sup, dir.path(), *kind).await;
                start_running.push(c);
                lag.push(d);
            }
            let (reference, berth) = (median_ms(&mut seen), median_ms(&mut lag));
            println!(
                "probe {:<11}: ready-to-running, median of {ROUNDS}: berth {berth:.2} ms, plain 200 µs loop {reference:.2} ms, added {:.2} ms (goal <= 10 ms); spawn-to-ready directly {:.1} ms, start-to-running under berth {:.1} ms",
                kind.name(),
                berth - reference,
                median_ms(&mut spawn_ready),
                median_ms(&mut start_running),
            );
        }
        sup.shutdown().await;
    });
}
