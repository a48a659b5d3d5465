//! What supervising costs while nothing happens: 100 running backends (a
//! `sleep`) under `berth run --headless`, beside supervisord running the
//! same 100 programs, both measured over the same 30 s window.
//!
//! Target: berth <= supervisord, or <= 30 ms per 30 s (issue #10, "nothing
//! is awake without need"). Before usage was sampled only when looked at:
//! berth 230 ms against supervisord's 20 ms.
//!
//! `BERTH_RUNNING_SECS` changes the window; `BERTH_BIN` measures another
//! berth binary.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

const BACKENDS: usize = 100;
const TARGET_MS_PER_30S: f64 = 30.0;

fn main() {
    let secs = secs("RUNNING", 30);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let backends = dir.join("b");
    let ids = ids(BACKENDS);
    write_backends(&backends, &ids, "exec sleep 3600", "autostart: true\n");

    let home = dir.join("berth");
    let mut berth = berth_headless(&backends, &home);
    let socket = home.join("run/berth.sock");
    wait_status(&socket, "100 running", |list| {
        count(list, "running") == BACKENDS
    });

    let sd_dir = dir.join("sd");
    std::fs::create_dir(&sd_dir).expect("supervisord dir");
    let programs: Vec<(String, String)> = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                backends.join(format!("{id}.sh")).display().to_string(),
            )
        })
        .collect();
    let mut supervisord = std::path::Path::new(SUPERVISORD)
        .exists()
        .then(|| start_supervisord(&sd_dir, &programs, true));

    // Start-up settles: every program spawned, readiness (1 s uptime) met,
    // supervisord's startsecs (1 s) passed, and the figures the `status`
    // above asked for no longer kept live (berth's 10 s linger).
    std::thread::sleep(Duration::from_secs(12));
    let pids: Vec<(&str, u32)> = std::iter::once(("berth", berth.0.id()))
        .chain(supervisord.as_ref().map(|s| ("supervisord", s.0.id())))
        .collect();
    let before: Vec<f64> = pids.iter().map(|(_, pid)| cpu_ms(*pid)).collect();
    println!(
        "running: {} measuring for {secs} s with {BACKENDS} running backends ...",
        berth_bin().display()
    );
    std::thread::sleep(Duration::from_secs(secs));
    let rows: Vec<(&str, f64, f64)> = pids
        .iter()
        .zip(before)
        .map(|((name, pid), before)| (*name, cpu_ms(*pid) - before, rss_mb(*pid)))
        .collect();
    // Still all running (nothing crashed and restarted during the window).
    let list = request(&socket, r#"{"cmd":"status"}"#);
    let running = list["data"].as_array().map_or(0, |l| count(l, "running"));
    berth.stop();
    if let Some(s) = supervisord.as_mut() {
        s.stop();
    }

    println!("\n{:<14} {:>16} {:>10}", "", "cpu ms per 30 s", "rss MB");
    let per_30s = |ms: f64| ms * 30.0 / secs as f64;
    for (name, cpu, rss) in &rows {
        println!("{name:<14} {:>16.0} {rss:>10.1}", per_30s(*cpu));
    }
    let berth_cpu = per_30s(rows[0].1);
    println!("\nberth: {running} of {BACKENDS} still running after the window");
    match rows.get(1) {
        Some(&(_, sd_cpu, _)) => {
            let sd_cpu = per_30s(sd_cpu);
            println!(
                "ratio berth / supervisord: cpu {:.2}x ({berth_cpu:.0} ms vs {sd_cpu:.0} ms)",
                berth_cpu / sd_cpu.max(1.0)
            );
            println!(
                "target berth <= supervisord or <= {TARGET_MS_PER_30S} ms per 30 s: {}",
                verdict(berth_cpu <= sd_cpu || berth_cpu <= TARGET_MS_PER_30S)
            );
        }
        None => println!(
            "supervisord not installed; target <= {TARGET_MS_PER_30S} ms per 30 s: {}",
            verdict(berth_cpu <= TARGET_MS_PER_30S)
        ),
    }
}
