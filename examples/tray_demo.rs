//! Runs the real tray with a synthetic snapshot stream, without a supervisor:
//! `cargo run --example tray_demo` under a desktop (or dbus-run-session +
//! Xvfb). The backends cycle through a few states every 2 s; Start/Stop
//! clicks are applied to the fake state at once; Quit shows "stopping" for a
//! second and exits 0. `TRAY_DEMO_STATIC=1` publishes one snapshot only (an
//! idle tray, for measurements).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::manifest::Digest;
use berth::status::{BackendStatus, Detail, Snapshot, State};
use berth::tray::{self, Click, TrayInputs};
use berth::verb::Verb;

fn backend(id: &str, name: &str, state: State) -> BackendStatus {
    BackendStatus {
        id: Some(id.into()),
        name: Some(name.into()),
        version: Some("1.0.0".into()),
        path: Some(format!("/opt/{id}/dist/backend")),
        detail: Detail {
            sha256: Some(Digest([0x3f; 32])),
            log: Some(PathBuf::from(format!("/tmp/{id}.log"))),
            ..Detail::default()
        },
        ..BackendStatus::new(format!("/tmp/backends/{id}.yaml"), state)
    }
}

fn snapshot(step: usize, python_running: bool, started: Instant) -> Snapshot {
    let mut python = backend("python", "Python Backend", State::Stopped);
    if python_running {
        python.state = State::Running;
        python.ready = true;
        python.pid = Some(4242);
        python.detail.started_at = Some(started);
        python.rss_bytes = Some(41_000_000);
        python.detail.verified = Some(true);
    }
    let mut go = backend("go", "Go & Friends", State::Stopped);
    match step % 4 {
        1 => {
            go.state = State::Exited;
            go.exit_code = Some(1);
        }
        2 => {
            go.state = State::Backoff;
            go.detail.retry_at = Some(Instant::now() + Duration::from_secs(2));
        }
        3 => {
            go.state = State::IntegrityFailed;
            go.detail.verified = Some(false);
        }
        _ => {}
    }
    let mut backends = vec![go, python];
    if step % 2 == 1 {
        backends.push(BackendStatus {
            id: None,
            name: None,
            version: None,
            path: None,
            error: Some("line 4: unknown field `argz`".into()),
            ..backend("broken", "", State::Invalid)
        });
        backends.last_mut().unwrap().file = "/tmp/backends/broken.yaml".into();
    }
    Snapshot { backends }
}

fn main() {
    tray::prepare_env();
    if let Err(e) = tray::probe() {
        eprintln!("tray_demo: no tray: {e}");
        std::process::exit(1);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (snap_tx, snap_rx) = tokio::sync::watch::channel(Arc::new(snapshot(0, false, started)));
    let (action_tx, mut action_rx) = tokio::sync::mpsc::unbounded_channel();
    let (exit_tx, exit_rx) = tokio::sync::watch::channel(false);
    let (quitting_tx, quitting_rx) = tokio::sync::watch::channel(false);
    let animate = std::env::var_os("TRAY_DEMO_STATIC").is_none();
    runtime.spawn(async move {
        let mut step = 0;
        let mut running = false;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = tick.tick(), if animate => step += 1,
                action = action_rx.recv() => match action {
                    Some(Click::Command(_, Verb::Stop) | Click::StopAll) => running = false,
                    Some(Click::Command(..) | Click::StartAll) => running = true,
                    Some(Click::Quit) | None => {
                        let _ = quitting_tx.send(true);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let _ = exit_tx.send(true);
                        return;
                    }
                    Some(other) => eprintln!("tray_demo: {other}"),
                },
            }
            let _ = snap_tx.send(Arc::new(snapshot(step, running, started)));
        }
    });
    // A private folder for the icon files (berth uses its socket's folder).
    let icon_dir = tempfile::tempdir().expect("a temporary folder for the icons");
    let result = tray::run(TrayInputs {
        snapshots: snap_rx,
        actions: action_tx,
        quitting: quitting_rx,
        exit: exit_rx,
        face: berth::tray::Face {
            backends_dir: PathBuf::from("/tmp/backends"),
            app: berth::paths::AppName::default(),
            title: "berth".to_owned(),
            icon: None,
        },
        icon_dir: icon_dir.path().to_path_buf(),
        login_dirs: Vec::new(),
        runtime: runtime.handle().clone(),
        shown: tokio::sync::watch::channel(false).0,
    });
    if let Err(e) = result {
        eprintln!("tray_demo: {e}");
        std::process::exit(1);
    }
}
