//! Hot-reload benchmarks (issue #6). `cargo bench --bench reload`.
//!
//! 1. Work per reload: a folder of 1000 manifests, one edited. The full scan
//!    (every file parsed) is the reference; the incremental reload must cost a
//!    small fraction of it and barely grow with the folder (measured at 100
//!    and 1000 files).
//! 2. Latency: 100 manifests dropped one by one into a watched folder; the time
//!    from the write to the supervisor's snapshot showing the backend, with
//!    the default debounce (target: p95 at most 250 ms).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth::status::Config;
use berth::supervisor;
use berth::watch::{self, FolderState, Scope, WatchConfig};

fn manifest(id: &str, version: &str) -> String {
    format!(
        "id: {id}\nname: Backend {id}\nversion: {version}\nexecutable:\n  linux-x86_64:\n    path: [../dist/{id}, \"${{resources}}/{id}\"]\n    sha256: {}\n  linux:\n    path: ../dist/{id}\n    sha256: {}\nargs: [\"--port\", \"5000\"]\nenv: {{ MODE: tray }}\nstop: {{ signal: TERM, timeout: 5s }}\nrestart: {{ policy: on-failure, max_retries: 3, backoff: 1s }}\nready: {{ stdout_json: {{ status: ready }}, timeout: 15s }}\n",
        "0".repeat(64),
        "1".repeat(64)
    )
}

fn fill(dir: &Path, n: usize) {
    for i in 0..n {
        let id = format!("b{i:04}");
        std::fs::write(dir.join(format!("{id}.yaml")), manifest(&id, "1.0.0")).unwrap();
    }
    // Past the racy window: the fingerprints of these files are trusted.
    std::thread::sleep(Duration::from_millis(100));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median time of a full scan of `dir` from an empty state.
fn full_scan(dir: &Path, runs: usize) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let mut state = FolderState::new(vec![dir.to_path_buf()], dir.join("res"));
                let t = Instant::now();
                let r = state.reload(&Scope::Full { force: false });
                let took = t.elapsed();
                assert!(r.changed);
                took
            })
            .collect(),
    )
}

/// Median time of the reload that follows an edit of one file of `dir`.
fn incremental(dir: &Path, runs: usize) -> Duration {
    let mut state = FolderState::new(vec![dir.to_path_buf()], dir.join("res"));
    state.reload(&Scope::Full { force: false });
    let edited: PathBuf = dir.join("b0000.yaml");
    let scope = Scope::Paths([edited.clone()].into());
    median(
        (0..runs)
            .map(|i| {
                std::fs::write(&edited, manifest("b0000", &format!("1.0.{}", i + 1))).unwrap();
                let t = Instant::now();
                let r = state.reload(&scope);
                let took = t.elapsed();
                assert_eq!((r.reread, r.changed), (1, true));
                took
            })
            .collect(),
    )
}

fn work_per_reload() {
    let small = tempfile::tempdir().unwrap();
    let large = tempfile::tempdir().unwrap();
    fill(small.path(), 100);
    fill(large.path(), 1000);

    let full = full_scan(large.path(), 5);
    let one = median(
        (0..30)
            .map(|_| {
                let t = Instant::now();
                berth::manifest::load(
                    &large.path().join("b0001.yaml"),
                    &large.path().to_path_buf().into(),
                )
                .unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let inc_large = incremental(large.path(), 30);
    let inc_small = incremental(small.path(), 30);
    println!("reload work, 1000 manifests, one edited:");
    println!("  full scan of 1000 files:           {full:>12.3?}");
    println!("  incremental reload of 1 (of 1000): {inc_large:>12.3?}");
    println!("  incremental reload of 1 (of 100):  {inc_small:>12.3?}");
    println!("  reference, parsing one manifest:   {one:>12.3?}");
    println!(
        "  full / incremental:                {:>9.1}x",
        full.as_secs_f64() / inc_large.as_secs_f64()
    );
    println!(
        "  incremental / one parse:            {:>9.2}x",
        inc_large.as_secs_f64() / one.as_secs_f64()
    );
    println!(
        "  incremental growth, 1000 vs 100 files: {:.2}x (files: 10x)",
        inc_large.as_secs_f64() / inc_small.as_secs_f64()
    );
}

async fn latency() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backends");
    std::fs::create_dir(&dir).unwrap();
    let sup = supervisor::spawn_with_guardian(
        Config {
            log_dir: tmp.path().join("logs"),
            log_max_size: 1 << 20,
            log_backups: 1,
            notify_dir: tmp.path().join("notify"),
            env_remove: Vec::new(),
            updates_dir: None,
        },
        None,
    );
    let config = WatchConfig::new(vec![dir.clone()], tmp.path().join("res"));
    let debounce = config.debounce;
    let watcher = watch::spawn(config, sup.clone()).await.unwrap();
    let mut rx = sup.subscribe();
    let mut samples = Vec::with_capacity(100);
    for i in 0..100 {
        let id = format!("l{i:03}");
        let text = manifest(&id, "1.0.0");
        let t = Instant::now();
        std::fs::write(dir.join(format!("{id}.yaml")), text).unwrap();
        loop {
            if rx.borrow_and_update().get(&id).is_some() {
                break;
            }
            tokio::time::timeout(Duration::from_secs(10), rx.changed())
                .await
                .expect("a manifest never showed up")
                .unwrap();
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let (p50, p95) = (percentile(&samples, 50.0), percentile(&samples, 95.0));
    println!("write-to-snapshot latency, 100 manifests one by one (debounce {debounce:?}):");
    println!(
        "  p50: {p50:>10.1?}   p95: {p95:>10.1?}   max: {:>10.1?}",
        samples[99]
    );
    println!(
        "  p95 / debounce: {:.2}x   target p95 <= 250 ms: {}",
        p95.as_secs_f64() / debounce.as_secs_f64(),
        if p95 <= Duration::from_millis(250) {
            "met"
        } else {
            "NOT met"
        }
    );
    watcher.shutdown().await;
    sup.shutdown().await;
}

fn main() {
    work_per_reload();
    tokio::runtime::Runtime::new().unwrap().block_on(latency());
}
