//! The cost of the sandbox: spawn-to-running of the same backend with and
//! without a full sandbox (filesystem and TCP rules, signal scoping, four
//! rlimits), alternated in one run so both see the same machine. Goal: the
//! sandbox adds under 5 ms. Also prints the ruleset build alone.

mod common;

use berth::verb::Verb;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth::manifest::Backend;
use berth::manifest::sandbox::{FsRules, Limits, NetRules, Sandbox};
use berth::status::State;
use berth::supervisor::SupervisorHandle;

const ROUNDS: usize = 40;

fn backend(dir: &Path, id: &str, exe: &Path, sandbox: Option<Sandbox>) -> Backend {
    let mut b = common::backend(dir, id, exe);
    b.args = vec!["60".into()];
    b.sandbox = sandbox;
    b
}

/// From `start` to the snapshot saying running.
async fn spawn_to_running(sup: &SupervisorHandle, id: &str) -> Duration {
    let mut rx = sup.subscribe();
    let t0 = Instant::now();
    sup.command(id, Verb::start()).await.expect("start");
    while rx.borrow_and_update().get(id).map(|b| b.state) != Some(State::Running) {
        rx.changed().await.expect("supervisor alive");
    }
    let took = t0.elapsed();
    sup.command(id, Verb::Stop).await.expect("stop");
    took
}

fn median_ms(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = PathBuf::from("/usr/bin/sleep");
    let sandbox = Sandbox {
        filesystem: Some(FsRules {
            read: vec![dir.path().join("ro")],
            write: vec![dir.path().join("rw")],
        }),
        network: Some(NetRules {
            bind: vec![0],
            connect: vec![5432],
        }),
        limits: Limits {
            memory: Some(1 << 30),
            open_files: Some(256),
            cpu_time: Some(3600),
            core_dumps: Some(false),
        },
        best_effort: false,
        tmp: dir.path().join("tmp"),
        data: dir.path().join("data"),
    };
    let backends = vec![
        backend(dir.path(), "plain", &exe, None),
        backend(dir.path(), "boxed", &exe, Some(sandbox.clone())),
    ];
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (mut plain, mut boxed) = rt.block_on(async {
        let sup = common::supervise(dir.path(), backends).await;
        let (mut plain, mut boxed) = (Vec::new(), Vec::new());
        // One warm-up round each, not counted.
        spawn_to_running(&sup, "plain").await;
        spawn_to_running(&sup, "boxed").await;
        for _ in 0..ROUNDS {
            plain.push(spawn_to_running(&sup, "plain").await);
            boxed.push(spawn_to_running(&sup, "boxed").await);
        }
        let st = sup.snapshot();
        assert_eq!(
            st.get("boxed").and_then(|b| b.sandbox.clone()).as_deref(),
            Some("enforced")
        );
        (plain, boxed)
    });
    let mut build: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t0 = Instant::now();
            let p = berth::sandbox::prepare(&sandbox, &exe, &[]).expect("prepare");
            let took = t0.elapsed();
            drop(p);
            took
        })
        .collect();
    let (p, b) = (median_ms(&mut plain), median_ms(&mut boxed));
    println!(
        "sandbox: spawn-to-running, median of {ROUNDS}: unsandboxed {p:.2} ms, sandboxed {b:.2} ms, added {:.2} ms (goal < 5 ms); ruleset build alone {:.2} ms",
        b - p,
        median_ms(&mut build)
    );
}
