//! What an idle launcher costs: `berth run --headless` with three stopped
//! backends, measured over 30 s of nothing happening, beside supervisord
//! with the same three programs measured in the same window.
//!
//! Targets: under 50 ms of CPU and under 10 MB resident. References:
//! supervisord (measured here, when installed) and the PM2 daemon (65 MB
//! resident, measured once on this machine; not re-measured: it needs node).
//!
//! `BERTH_IDLE_SECS` shortens the window for a quick look; `BERTH_BIN`
//! measures another berth binary (an installed or release build);
//! `BERTH_BASE_BIN` names a build to compare with (say main before a
//! change), idling beside it in the same window. Resident memory is shown
//! with its anonymous part (`RssAnon`): the rest is clean file pages, most
//! of them berth's own code touched at start.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
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

    let bin = std::env::var_os("BERTH_BIN").unwrap_or_else(|| BERTH.into());
    let mut berth = launch(&bin, &backends, &dir.join("berth"));
    // A base build (say main before a change) idles in the same window.
    let base_bin = std::env::var_os("BERTH_BASE_BIN");
    let mut base = base_bin
        .as_ref()
        .map(|b| launch(b, &backends, &dir.join("base")));

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
        .chain(base.as_ref().map(|b| ("berth base", b.0.id())))
        .chain(supervisord.as_ref().map(|s| ("supervisord", s.0.id())))
        .collect();
    let before: Vec<f64> = pids.iter().map(|(_, pid)| cpu_ms(*pid)).collect();
    println!(
        "idle: {} measuring for {secs} s with three stopped backends ({}) ...",
        Path::new(&bin).display(),
        support::load()
    );
    if let Some(b) = &base_bin {
        println!("idle: base {}", Path::new(b).display());
    }
    std::thread::sleep(Duration::from_secs(secs));
    let mut rows = Vec::new();
    for ((name, pid), before) in pids.iter().zip(before) {
        let cpu = cpu_ms(*pid) - before;
        let mb = |field| status_field(*pid, field) as f64 / 1024.0;
        let threads = status_field(*pid, "Threads:");
        rows.push((*name, cpu, mb("VmRSS:"), mb("RssAnon:"), threads));
    }
    berth.stop();
    if let Some(b) = base.as_mut() {
        b.stop();
    }
    if let Some(s) = supervisord.as_mut() {
        s.stop();
    }

    println!();
    println!(
        "{:<14} {:>12} {:>10} {:>10} {:>8}",
        "", "cpu (ms)", "rss (MB)", "anon (MB)", "threads"
    );
    for (name, cpu, rss, anon, threads) in &rows {
        println!("{name:<14} {cpu:>12.0} {rss:>10.1} {anon:>10.1} {threads:>8}");
    }
    println!(
        "{:<14} {:>12} {:>10.1} {:>10} {:>8}",
        "pm2 daemon*", "-", PM2_RSS_MB, "-", "-"
    );
    println!("* measured once on this machine, not in this run");
    let (_, cpu, rss, anon, _) = rows[0];
    println!();
    println!(
        "berth idle cpu: {cpu:.0} ms in {secs} s (target < {TARGET_CPU_MS} ms): {}",
        verdict(cpu < TARGET_CPU_MS)
    );
    println!(
        "berth idle rss: {rss:.1} MB (target < {TARGET_RSS_MB} MB): {}; of it anonymous (RssAnon) {anon:.1} MB, the rest file pages (berth's code, libc)",
        verdict(rss < TARGET_RSS_MB)
    );
    if let Some((_, b_cpu, b_rss, b_anon, _)) = rows.iter().find(|r| r.0 == "berth base") {
        println!(
            "ratio berth / base: rss {:.3}x ({:+.2} MB, anon {:+.2} MB), cpu {cpu:.0} ms vs {b_cpu:.0} ms",
            rss / b_rss,
            rss - b_rss,
            anon - b_anon
        );
    }
    if let Some((_, s_cpu, s_rss, _, _)) = rows.iter().find(|r| r.0 == "supervisord") {
        println!(
            "ratio berth / supervisord: rss {:.2}x, cpu {cpu:.0} ms vs {s_cpu:.0} ms",
            rss / s_rss
        );
    }
    println!("ratio berth / pm2 daemon: rss {:.2}x", rss / PM2_RSS_MB);
}

/// `berth run --headless` of `bin` on `backends`, its socket and state
/// under `home`; returns once it lists the three backends.
fn launch(bin: &std::ffi::OsStr, backends: &Path, home: &Path) -> Guard {
    let berth = support::berth_headless_of(bin, backends, home);
    wait_for_three(&home.join("run/berth.sock"));
    berth
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
