//! Test support: a minimal program hosting a supervisor through the public
//! API, so tests can `kill -9` a real supervising process and check that the
//! guardian leaves no backend behind.
//!
//! Usage: `supervise LOG_DIR STOP_TIMEOUT_MS ID=EXECUTABLE...`. Each
//! executable is hashed and started; one line `<id> <pid>` per backend is
//! printed once running, then `ready`; then it sleeps until killed. Like
//! berth itself, it runs the guardian when called as `supervise __guardian`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use berth::manifest::{Backend, BackendId, Executable, RestartSpec, StopSpec};
use berth::registry::{Catalog, Entry, Standing};
use berth::status::{Config, State};
use berth::supervisor;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__guardian") {
        return match supervisor::guardian::main() {
            Ok(code) => code,
            Err(_) => ExitCode::FAILURE,
        };
    }
    if args.len() < 3 {
        eprintln!("usage: supervise LOG_DIR STOP_TIMEOUT_MS ID=EXECUTABLE...");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("supervise: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Vec<String>) -> ExitCode {
    let log_dir = PathBuf::from(&args[0]);
    let timeout = Duration::from_millis(args[1].parse().unwrap_or(2000));
    let mut entries = Vec::new();
    for spec in &args[2..] {
        let Some((id, exe)) = spec.split_once('=') else {
            eprintln!("supervise: expected ID=EXECUTABLE, got {spec}");
            return ExitCode::from(2);
        };
        let exe = std::path::absolute(exe).unwrap_or_else(|_| PathBuf::from(exe));
        let (Ok(id), Ok(sha256)) = (BackendId::new(id), berth::integrity::hash_file(&exe)) else {
            eprintln!("supervise: bad backend {spec}");
            return ExitCode::from(2);
        };
        let workdir = exe.parent().map(PathBuf::from).unwrap_or_default();
        let backend = Backend {
            file: workdir.join(format!("{id}.yaml")),
            id,
            name: spec.clone(),
            version: semver::Version::new(1, 0, 0),
            requires: None,
            executable: Some(Executable {
                candidates: vec![exe],
                sha256,
                platform_key: "linux".into(),
                files: None,
            }),
            args: vec![],
            env: BTreeMap::new(),
            workdir,
            autostart: true,
            notify: true,
            stop: StopSpec {
                timeout,
                ..StopSpec::default()
            },
            restart: RestartSpec::default(),
            ready: berth::manifest::ReadySpec::at_once(),
            health: None,
            actions: vec![],
            signed_by: None,
            sandbox: None,
            port_auto: false,
            token: false,
            depends_on: Default::default(),
            update: None,
        };
        entries.push(Entry {
            file: backend.file.clone(),
            backend: Some(Arc::new(backend)),
            error: None,
            standing: Standing::Winner,
            dependency_error: None,
        });
    }
    let sup = supervisor::spawn(Config {
        // Only a backend with `ready.notify` or `health.watchdog` needs it.
        notify_dir: log_dir.join("notify"),
        log_dir,
        log_max_size: 10 * 1024 * 1024,
        log_backups: 3,
        env_remove: Vec::new(),
        updates_dir: None,
    });
    sup.apply(Catalog { entries }).await;
    let mut rx = sup.subscribe();
    loop {
        let snap = rx.borrow_and_update().clone();
        if !snap.backends.is_empty() && snap.backends.iter().all(|b| b.state == State::Running) {
            for b in &snap.backends {
                println!(
                    "{} {}",
                    b.id.as_deref().unwrap_or("?"),
                    b.pid.unwrap_or_default()
                );
            }
            println!("ready");
            break;
        }
        if rx.changed().await.is_err() {
            return ExitCode::FAILURE;
        }
    }
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
