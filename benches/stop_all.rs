//! Stop-all stops every backend in parallel: 10 backends that each take 1 s
//! to exit after SIGTERM; the total should stay under 1.5 s (one backend's
//! time, not ten).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::manifest::{Backend, BackendId, Executable, RestartSpec, StopSpec};
use berth::registry::{Catalog, Entry, Standing};
use berth::status::{Config, State};
use berth::supervisor;

const BACKENDS: usize = 10;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = dir.path().join("slow.sh");
    // `sleep & wait` so the trap runs at once (sh defers traps while a
    // foreground child runs).
    std::fs::write(
        &exe,
        "#!/bin/sh\ntrap 'sleep 1; exit 0' TERM\nwhile true; do sleep 60 & wait $!; done\n",
    )
    .expect("write script");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let sha256 = berth::integrity::hash_file(&exe).expect("hash");
    let entries = (0..BACKENDS)
        .map(|i| {
            let backend = Backend {
                file: dir.path().join(format!("b{i}.yaml")),
                id: BackendId::new(&format!("b{i}")).expect("id"),
                name: format!("b{i}"),
                version: semver::Version::new(1, 0, 0),
                requires: None,
                executable: Some(Executable {
                    candidates: vec![exe.clone()],
                    sha256,
                    platform_key: "linux".into(),
                    files: None,
                }),
                args: vec![],
                env: BTreeMap::new(),
                workdir: dir.path().to_path_buf(),
                autostart: true,
                notify: true,
                stop: StopSpec {
                    timeout: Duration::from_secs(5),
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
            Entry {
                file: backend.file.clone(),
                backend: Some(Arc::new(backend)),
                error: None,
                standing: Standing::Winner,
                dependency_error: None,
            }
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sup = supervisor::spawn_with_guardian(
            Config {
                log_dir: dir.path().join("logs"),
                log_max_size: 10 << 20,
                log_backups: 3,
                notify_dir: dir.path().join("notify"),
                env_remove: Vec::new(),
                updates_dir: None,
            },
            None::<PathBuf>,
        );
        sup.apply(Catalog { entries }).await;
        let mut rx = sup.subscribe();
        while !rx
            .borrow_and_update()
            .backends
            .iter()
            .all(|b| b.state == State::Running)
        {
            rx.changed().await.expect("supervisor alive");
        }
        // Let every shell install its trap.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        sup.stop_all().await;
        let took = t0.elapsed();
        let stopped = sup
            .snapshot()
            .backends
            .iter()
            .filter(|b| b.state == State::Stopped)
            .count();
        println!(
            "stop_all: {BACKENDS} backends taking 1 s each to exit: {:.3} s total (target < 1.5 s), {stopped} stopped",
            took.as_secs_f64()
        );
    });
}
