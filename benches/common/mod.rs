//! What benchmarks that drive a real supervisor share: a backend with the
//! defaults, and a supervisor (with its guardian) running a catalog of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth::manifest::{Backend, BackendId, Executable, ReadySpec, RestartSpec, StopSpec};
use berth::registry::{Catalog, Entry, Standing};
use berth::status::Config;
use berth::supervisor::{self, SupervisorHandle};

/// Backend `id` running `exe` (digest pinned), running once spawned, no
/// restarts, no notifications; callers change what they measure.
pub fn backend(dir: &Path, id: &str, exe: &Path) -> Backend {
    Backend {
        file: dir.join(format!("{id}.yaml")),
        id: BackendId::new(id).expect("id"),
        name: id.into(),
        version: semver::Version::new(1, 0, 0),
        requires: None,
        executable: Some(Executable {
            candidates: vec![exe.to_path_buf()],
            sha256: berth::integrity::hash_file(exe).expect("hash"),
            platform_key: "linux".into(),
            files: None,
        }),
        args: vec![],
        env: BTreeMap::new(),
        workdir: dir.to_path_buf(),
        autostart: false,
        stop: StopSpec {
            timeout: Duration::from_secs(5),
            ..StopSpec::default()
        },
        restart: RestartSpec::default(),
        ready: ReadySpec::at_once(),
        health: None,
        actions: vec![],
        sandbox: None,
        signed_by: None,
        port_auto: false,
        token: false,
        depends_on: Default::default(),
        update: None,
        notify: false,
    }
}

/// A supervisor with logs (and sd_notify sockets) under `dir`, rotated as
/// `berth run` does by default (10MB x 3), every backend of `backends` a
/// winner. Needs a tokio runtime.
pub async fn supervise(dir: &Path, backends: Vec<Backend>) -> SupervisorHandle {
    let sup = supervisor::spawn_with_guardian(
        Config {
            log_dir: dir.join("logs"),
            log_max_size: 10 << 20,
            log_backups: 3,
            notify_dir: dir.join("notify"),
            env_remove: Vec::new(),
            updates_dir: None,
        },
        None::<PathBuf>,
    );
    let entries = backends
        .into_iter()
        .map(|b| Entry {
            file: b.file.clone(),
            backend: Some(Arc::new(b)),
            error: None,
            standing: Standing::Winner,
            dependency_error: None,
        })
        .collect();
    sup.apply(Catalog { entries }).await;
    sup
}
