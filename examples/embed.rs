//! Embedding berth's launcher in your own program (a Tauri app's Rust
//! side): a backends folder with one small backend, the launcher started
//! in-process, the backend started and followed to `running` on the watch
//! receiver, stopped, and the launcher shut down.
//!
//! Usage: `embed` (no arguments). It prints one line per step:
//! `running <pid>`, `stopped`, `shut down`. The instance is `embed-example`:
//! its logs go under `$XDG_STATE_HOME/embed-example/`.

use std::os::unix::fs::PermissionsExt;
use std::process::ExitCode;
use std::time::Duration;

use berth::{AppName, Launcher, State, Verb};

fn main() -> ExitCode {
    // The guardians that stop every backend if this process is killed run
    // this same executable: let them in first.
    if let Some(code) = berth::embed::run_guardian_if_asked() {
        return code;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let folder = tempfile::tempdir()?;
    write_backend(folder.path())?;

    let app: AppName = "embed-example".parse()?;
    let launcher = Launcher::builder(app)
        .backends(folder.path())
        .notifications(false)
        .start()
        .await?;
    let handle = launcher.handle();
    let mut snapshots = handle.subscribe();

    // A start returns once the process is spawned; `running` comes when
    // its readiness check passes, on the snapshots.
    handle.command("demo", Verb::start()).await?;
    let running = tokio::time::timeout(
        Duration::from_secs(30),
        snapshots.wait_for(|s| s.get("demo").is_some_and(|b| b.state == State::Running)),
    )
    .await??;
    let pid = running.get("demo").and_then(|b| b.pid).unwrap_or_default();
    drop(running);
    println!("running {pid}");

    // A stop returns once the backend's whole process group is gone.
    handle.command("demo", Verb::Stop).await?;
    let state = handle.snapshot().get("demo").map(|b| b.state);
    println!("{}", state.map_or("gone", State::as_str));

    // Stops whatever still runs (nothing here), as the tray's Quit does.
    launcher.shutdown().await;
    println!("shut down");
    Ok(())
}

/// `demo.sh`, a backend that sleeps, and its manifest with the script's
/// SHA-256 (berth runs nothing whose digest does not match).
fn write_backend(dir: &std::path::Path) -> std::io::Result<()> {
    let exe = dir.join("demo.sh");
    std::fs::write(&exe, "#!/bin/sh\nexec sleep 600\n")?;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
    let digest = berth::integrity::hash_file(&exe)?;
    std::fs::write(
        dir.join("demo.yaml"),
        format!(
            "id: demo\nname: Demo\nversion: 1.0.0\nexecutable:\n  linux:\n    path: demo.sh\n    sha256: {digest}\nready: {{ uptime: 0s }}\nstop: {{ timeout: 2s }}\n"
        ),
    )
}
