//! Updating a backend from a loopback feed (issue #27, point 9), against a
//! reference measured in the same run:
//!
//! - install: berth's check + download + verify + install of the 16 MB
//!   onefile (`python/dist/backend` when built, else 16 MB of filler) from a
//!   feed made by the real `berth release`, through the library's
//!   `update::check`, `update::stage` and `Updates::publish` (signed index
//!   and manifest read and verified, the executable streamed with its size
//!   and SHA-256 checked, the version synced to disk and switched in by
//!   rename), against `curl -o` + `sha256sum` of the same executable from
//!   the same server, alternating round by round; medians and their ratio.
//!   Goal: at most 1.5x. berth's side runs in this process; curl and
//!   sha256sum each start one.
//! - switch: how long a running backend (the onefile, on a fixed port) does
//!   not serve while `berth update ID` restarts it into a new version,
//!   against its own `berth restart ID`, alternating round by round (each
//!   update round first releases a higher version). A prober asks
//!   `GET /api/status` every 2 ms; the downtime is the gap between the
//!   last answer before and the first answer after. Goal: the update's
//!   downtime at most the restart's + 50 ms (medians). Needs the onefile.
//!
//! `BERTH_UPDATE_ROUNDS` changes the number of install rounds (default 15),
//! `BERTH_SWITCH_ROUNDS` the number of switch rounds (default 5).

#[path = "../tests/it/fetch/server.rs"]
#[allow(dead_code)]
mod server;
#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::manifest::{BackendId, Places};
use berth::trust::{Policy, Trust};
use berth::update::check::{self, Installed, Offer};
use berth::update::install::Updates;
use berth::update::network::Network;
use berth::update::stage::{self, Wanted};
use url::Url;

use server::{Reply, Server};

const INSTALL_GOAL: f64 = 1.5;
const SWITCH_SLACK_MS: f64 = 50.0;
const ONEFILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/dist/backend");

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let publisher = Publisher::new(tmp.path());
    let feed_dir = publisher.feed.clone();
    // The feed as any static server serves it: files read at each request
    // (the page cache holds them after the first).
    let server = Server::http(move |path| {
        let rel = path.trim_start_matches('/');
        match std::fs::read(feed_dir.join(rel)) {
            Ok(bytes) if !rel.contains("..") => Reply::Body(bytes),
            _ => Reply::Status(404),
        }
    });
    let feed = server.url("/");
    install(&publisher, &feed, tmp.path());
    println!();
    if publisher.onefile {
        switch(&publisher, &feed, tmp.path());
    } else {
        println!("switch: skipped (no python/dist/backend: run python/build.sh)");
    }
}

/// The publisher's side: a key pair, the executable and `berth release`.
struct Publisher {
    dir: PathBuf,
    key: PathBuf,
    feed: PathBuf,
    exe: PathBuf,
    onefile: bool,
}

impl Publisher {
    fn new(tmp: &Path) -> Self {
        let dir = tmp.join("publisher");
        std::fs::create_dir_all(&dir).expect("publisher dir");
        let exe = dir.join("backend");
        let onefile = Path::new(ONEFILE).is_file();
        if onefile {
            std::fs::copy(ONEFILE, &exe).expect("copy the onefile");
        } else {
            let filler: Vec<u8> = (0..16usize << 20)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            std::fs::write(&exe, filler).expect("filler executable");
        }
        let out = berth(
            tmp,
            &["keygen", "publisher", "--dir", dir.to_str().unwrap()],
        );
        assert!(out.status.success(), "berth keygen: {out:?}");
        Self {
            key: dir.join("publisher.key"),
            feed: tmp.join("feed"),
            dir,
            exe,
            onefile,
        }
    }

    /// `berth release` of `python` at `version`; `rest` is appended to the
    /// manifest.
    fn release(&self, tmp: &Path, version: &str, rest: &str) {
        let sha = berth::integrity::hash_file(&self.exe).expect("hash");
        let manifest = self.dir.join("python.yaml");
        std::fs::write(
            &manifest,
            format!(
                "id: python\nname: Python\nversion: {version}\nexecutable:\n  linux:\n    path: backend\n    sha256: {sha}\n{rest}"
            ),
        )
        .expect("manifest");
        let out = berth(
            tmp,
            &[
                "release",
                manifest.to_str().unwrap(),
                "--key",
                self.key.to_str().unwrap(),
                "--out",
                self.feed.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "berth release {version}: {out:?}");
    }

    fn trusted(&self) -> PathBuf {
        self.dir.clone()
    }
}

/// The real binary with its folders under `tmp`.
fn berth(tmp: &Path, args: &[&str]) -> std::process::Output {
    Command::new(support::berth_bin())
        .args(args)
        .env("XDG_STATE_HOME", tmp.join("state"))
        .env("XDG_CONFIG_HOME", tmp.join("config"))
        .env("XDG_DATA_HOME", tmp.join("data"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("berth")
}

fn install(publisher: &Publisher, feed: &Url, tmp: &Path) {
    let rounds: usize = env_number("BERTH_UPDATE_ROUNDS", 15);
    let curl = support::which("curl");
    publisher.release(tmp, "1.1.0", "");
    let trust = Trust::load(Policy {
        require: true,
        dirs: vec![publisher.trusted()],
    });
    let places = Places::new(tmp.join("resources"), Default::default());
    let platform = berth::manifest::platform::Platform::current().keys()[0].clone();
    let id = BackendId::new("python").expect("id");
    let installed = semver::Version::new(1, 0, 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let exe_url = feed
        .join(&format!("python/1.1.0/{platform}/backend"))
        .expect("url");
    let digest = berth::integrity::hash_file(&publisher.exe).expect("hash");

    let (mut berth_times, mut reference) = (Vec::new(), Vec::new());
    let mut phases = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        let updates = Updates::at(tmp.join(format!("updates-{round}")));
        let started = Instant::now();
        let offer = runtime
            .block_on(check::check(
                Installed {
                    id: &id,
                    version: &installed,
                    bad: &[],
                },
                feed,
                &trust,
                &platform,
                &Network,
            ))
            .expect("berth check");
        let Offer::Available(release) = offer else {
            panic!("the feed offers no update: {offer:?}");
        };
        let checked = Instant::now();
        let wanted = Wanted {
            id: &id,
            installed: &installed,
            feed,
            release: &release,
        };
        let staging = runtime
            .block_on(stage::stage(&updates, wanted, &trust, &places, &Network))
            .expect("berth stage");
        let staged = Instant::now();
        updates
            .publish(staging, &release.version)
            .expect("berth publish");
        let done = Instant::now();
        berth_times.push(done - started);
        phases[0].push(checked - started);
        phases[1].push(staged - checked);
        phases[2].push(done - staged);
        assert_eq!(updates.current(&id), Some(release.version.clone()));

        let dest = tmp.join(format!("curl-{round}"));
        reference.push(support::curl_and_sha256sum(
            &curl,
            exe_url.as_str(),
            &dest,
            &digest,
        ));
        let _ = std::fs::remove_file(&dest);
        let _ = std::fs::remove_dir_all(updates.dir());
    }
    let size = std::fs::metadata(&publisher.exe).expect("size").len();
    let (b, r) = (
        support::median_ms(&mut berth_times),
        support::median_ms(&mut reference),
    );
    let [c, s, p] = phases.map(|mut t| support::median_ms(&mut t));
    let ratio = b / r;
    println!(
        "install: {:.1} MB {} from 127.0.0.1, medians of {rounds} rounds ({})",
        size as f64 / (1 << 20) as f64,
        if publisher.onefile {
            "onefile (python/dist/backend)"
        } else {
            "filler (no python/dist/backend)"
        },
        support::load()
    );
    println!(
        "install: berth check + stage + publish: {b:.1} ms (check {c:.1}, download + verify {s:.1}, sync + switch {p:.1})"
    );
    println!("install: curl -o + sha256sum:          {r:.1} ms");
    println!(
        "install: ratio {ratio:.2} (goal <= {INSTALL_GOAL}): {}",
        support::verdict(ratio <= INSTALL_GOAL)
    );
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The switch-over: restart and update alternated on a running backend.
fn switch(publisher: &Publisher, feed: &Url, tmp: &Path) {
    let rounds: usize = env_number("BERTH_SWITCH_ROUNDS", 5);
    let home = tmp.join("switch");
    let trusted = home.join("config/berth/trusted");
    std::fs::create_dir_all(&trusted).expect("trusted dir");
    std::fs::copy(
        publisher.dir.join("publisher.pub"),
        trusted.join("publisher.pub"),
    )
    .expect("trust the publisher");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // Old and new listen on the same port: the prober sees one server.
    let run = format!(
        "args: [\"--port\", \"{port}\"]\nready: {{ stdout_json: {{ status: ready }}, timeout: 15s }}\nstop: {{ timeout: 5s }}\n"
    );
    let backends = home.join("b");
    std::fs::create_dir_all(&backends).expect("backends dir");
    std::fs::copy(&publisher.exe, backends.join("backend")).expect("the shipped executable");
    let sha = berth::integrity::hash_file(&publisher.exe).expect("hash");
    std::fs::write(
        backends.join("python.yaml"),
        format!(
            "id: python\nname: Python\nversion: 1.0.0\nexecutable:\n  linux:\n    path: backend\n    sha256: {sha}\n{run}update: {{ feed: \"{feed}\", probation: 1s }}\n"
        ),
    )
    .expect("shipped manifest");
    let mut launcher = support::berth_headless(&backends, &home);
    let socket = home.join("run/berth.sock");
    support::wait_status(&socket, "python listed", |list| list.len() == 1);
    let cli = |verb: &str| {
        let out = berth(
            &home,
            &["--socket", socket.to_str().unwrap(), verb, "python"],
        );
        assert!(out.status.success(), "berth {verb}: {out:?}");
    };
    cli("start");
    let prober = Prober::start(port);
    prober.wait_serving();

    let (mut restarts, mut updates) = (Vec::new(), Vec::new());
    let mut minor = 1;
    for _ in 0..rounds {
        restarts.push(prober.downtime(|| cli("restart")));
        // The feed offers one version more; `berth update` downloads it
        // while the old one serves, then switches.
        minor += 1;
        let version = format!("1.{minor}.0");
        publisher.release(tmp, &version, &run);
        updates.push(prober.downtime(|| cli("update")));
        let status = support::request(&socket, r#"{"cmd":"status"}"#);
        assert_eq!(
            status["data"][0]["version"], version,
            "the backend runs the new version: {status}"
        );
    }
    launcher.stop();
    let (r, u) = (
        support::median_ms(&mut restarts),
        support::median_ms(&mut updates),
    );
    let max = |t: &[Duration]| t.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "switch: a running onefile backend not serving, medians of {rounds} rounds ({})",
        support::load()
    );
    println!(
        "switch: berth restart: {r:.1} ms (max {:.1})",
        max(&restarts)
    );
    println!(
        "switch: berth update:  {u:.1} ms (max {:.1})",
        max(&updates)
    );
    println!(
        "switch: update - restart = {:+.1} ms (goal <= +{SWITCH_SLACK_MS}): {}",
        u - r,
        support::verdict(u - r <= SWITCH_SLACK_MS)
    );
}

/// Asks the backend's `GET /api/status` every 2 ms from a thread and keeps
/// the gaps in its answers: `(last answer before, first answer after)`.
struct Prober {
    gaps: Arc<Mutex<Vec<(Instant, Instant)>>>,
    last_ok: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
}

impl Prober {
    fn start(port: u16) -> Self {
        let gaps = Arc::new(Mutex::new(Vec::new()));
        let last_ok = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, l, s) = (gaps.clone(), last_ok.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut failed = false;
            while !s.load(Ordering::Relaxed) {
                let at = Instant::now();
                if answers(port) {
                    let mut last = l.lock().unwrap();
                    if let (true, Some(before)) = (failed, *last) {
                        g.lock().unwrap().push((before, at));
                    }
                    *last = Some(at);
                    failed = false;
                } else {
                    failed = true;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Self {
            gaps,
            last_ok,
            stop,
        }
    }

    fn wait_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.last_ok.lock().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the backend never answered");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How long the backend did not answer during `op` (and until it
    /// answers again after it).
    fn downtime(&self, op: impl FnOnce()) -> Duration {
        let started = Instant::now();
        op();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answered = self.last_ok.lock().unwrap().is_some_and(|t| t > started);
            let gaps: Vec<_> = self
                .gaps
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, after)| *after > started)
                .copied()
                .collect();
            if answered && !gaps.is_empty() {
                return gaps.iter().map(|(before, after)| *after - *before).sum();
            }
            assert!(
                Instant::now() < deadline,
                "the backend never went down and came back"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether the backend answers `GET /api/status` with 200 now.
fn answers(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut tcp) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
    if tcp
        .write_all(b"GET /api/status HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}
