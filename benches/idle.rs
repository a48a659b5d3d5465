//! What an idle launcher costs: `berth run --headless` with three stopped
//! backends, measured over 30 s of nothing happening, beside supervisord
//! with the same three programs measured in the same window.
//!
//! Targets: under 50 ms of CPU and under 10 MB resident. References:
//! supervisord (measured here, when installed) and the PM2 daemon (65 MB
//! resident, measured once on this machine; not re-measured: it needs node).
//!
//! `BERTH_IDLE_SECS` shortens the window for a quick look; `BERTH_BIN`
//! measures another berth binary (an installed or release build).

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{BERTH, Guard, SUPERVISORD, cpu_ms, status_field, verdict};
const TARGET_CPU_MS: f64 = 50.0;
const TARGET_RSS_MB: f64 = 10.0;
const PM2_RSS_MB: f64 = 65.0;

fn main() {
    let secs: u64 = std::env::var("BERTH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let backends = dir.join("b");
    let ids: Vec<String> = ["alpha", "beta", "gamma"].map(String::from).to_vec();
    support::write_backends(&backends, &ids, "exec sleep 600", "");

    let socket = dir.join("run/berth.sock");
    let bin = std::env::var_os("BERTH_BIN").unwrap_or_else(|| BERTH.into());
    let mut berth = Guard(
        Command::new(&bin)
            .args(["run", "--headless", "--backends"])
            .arg(&backends)
            .arg("--socket")
            .arg(&socket)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("berth run"),
    );
    wait_for_three(&socket);

    let mut supervisord = Path::new(SUPERVISORD).exists().then(|| {
        let programs: Vec<(String, String)> = ["alpha", "beta", "gamma"]
            .iter()
            .map(|id| (id.to_string(), format!("{}/{id}.sh", backends.display())))
            .collect();
        support::start_supervisord(dir, &programs, false)
    });

    // Let start-up work (first scan, allocator growth, python imports) finish.
    std::thread::sleep(Duration::from_secs(3));
    let pids: Vec<(&str, u32)> = std::iter::once(("berth", berth.0.id()))
        .chain(supervisord.as_ref().map(|s| ("supervisord", s.0.id())))
        .collect();
    let before: Vec<f64> = pids.iter().map(|(_, pid)| cpu_ms(*pid)).collect();
    println!(
        "idle: {} measuring for {secs} s with three stopped backends ...",
        Path::new(&bin).display()
    );
    std::thread::sleep(Duration::from_secs(secs));
    let mut rows = Vec::new();
    for ((name, pid), before) in pids.iter().zip(before) {
        let cpu = cpu_ms(*pid) - before;
        let rss_mb = status_field(*pid, "VmRSS:") as f64 / 1024.0;
        let threads = status_field(*pid, "Threads:");
        rows.push((*name, cpu, rss_mb, threads));
    }
    berth.stop();
    if let Some(s) = supervisord.as_mut() {
        s.stop();
    }

    println!();
    println!(
        "{:<14} {:>12} {:>10} {:>8}",
        "", "cpu (ms)", "rss (MB)", "threads"
    );
    for (name, cpu, rss, threads) in &rows {
        println!("{name:<14} {cpu:>12.0} {rss:>10.1} {threads:>8}");
    }
    println!(
        "{:<14} {:>12} {:>10.1} {:>8}",
        "pm2 daemon*", "-", PM2_RSS_MB, "-"
    );
    println!("* measured once on this machine, not in this run");
    let (_, cpu, rss, _) = rows[0];
    println!();
    println!(
        "berth idle cpu: {cpu:.0} ms in {secs} s (target < {TARGET_CPU_MS} ms): {}",
        verdict(cpu < TARGET_CPU_MS)
    );
    println!(
        "berth idle rss: {rss:.1} MB (target < {TARGET_RSS_MB} MB): {}",
        verdict(rss < TARGET_RSS_MB)
    );
    if let Some((_, s_cpu, s_rss, _)) = rows.get(1) {
        println!(
            "ratio berth / supervisord: rss {:.2}x, cpu {cpu:.0} ms vs {s_cpu:.0} ms",
            rss / s_rss
        );
    }
    println!("ratio berth / pm2 daemon: rss {:.2}x", rss / PM2_RSS_MB);
}

/// Waits until the launcher answers `status` with three backends.
fn wait_for_three(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = UnixStream::connect(socket) {
            let _ = s.write_all(b"{\"cmd\":\"status\"}\n");
            let mut line = String::new();
            let _ = BufReader::new(s).read_line(&mut line);
            let reply: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if reply["data"].as_array().map(Vec::len) == Some(3) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "berth never listed three backends"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
