//! What an idle launcher costs: `berth run --headless` with three stopped
//! backends, measured over 30 s of nothing happening, beside supervisord
//! with the same three programs measured in the same window.
//!
//! Targets: under 50 ms of CPU and under 10 MB resident. References:
//! supervisord (measured here, when installed) and the PM2 daemon (65 MB
//! resident, measured once on this machine; not re-measured: it needs node).
//!
//! `BERTH_IDLE_SECS` shortens the window for a quick look.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const SUPERVISORD: &str = "/usr/bin/supervisord";
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
    std::fs::create_dir(&backends).expect("backends dir");
    for id in ["alpha", "beta", "gamma"] {
        let exe = backends.join(format!("{id}.sh"));
        std::fs::write(&exe, "#!/bin/sh\nexec sleep 600\n").expect("script");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let digest = berth::integrity::hash_file(&exe).expect("hash");
        std::fs::write(
            backends.join(format!("{id}.yaml")),
            format!(
                "id: {id}\nname: {id}\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {id}.sh\n    sha256: {digest}\n"
            ),
        )
        .expect("manifest");
    }

    let socket = dir.join("run/berth.sock");
    let mut berth = Guard(
        Command::new(BERTH)
            .args(["run", "--headless", "--backends"])
            .arg(&backends)
            .arg("--socket")
            .arg(&socket)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("berth run"),
    );
    wait_for_three(&socket);

    let mut supervisord = Path::new(SUPERVISORD)
        .exists()
        .then(|| start_supervisord(dir, &backends));

    // Let start-up work (first scan, allocator growth, python imports) finish.
    std::thread::sleep(Duration::from_secs(3));
    let pids: Vec<(&str, u32)> = std::iter::once(("berth", berth.0.id()))
        .chain(supervisord.as_ref().map(|s| ("supervisord", s.0.id())))
        .collect();
    let before: Vec<u64> = pids.iter().map(|(_, pid)| cpu_ticks(*pid)).collect();
    println!("idle: measuring for {secs} s with three stopped backends ...");
    std::thread::sleep(Duration::from_secs(secs));
    let tick_ms = 1000.0 / clock_ticks_per_second();
    let mut rows = Vec::new();
    for ((name, pid), before) in pids.iter().zip(before) {
        let cpu_ms = (cpu_ticks(*pid) - before) as f64 * tick_ms;
        let rss_mb = status_field(*pid, "VmRSS:") as f64 / 1024.0;
        let threads = status_field(*pid, "Threads:");
        rows.push((*name, cpu_ms, rss_mb, threads));
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

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// Kills the child on every exit path, gracefully first.
struct Guard(Child);

impl Guard {
    fn stop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
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

fn start_supervisord(dir: &Path, backends: &Path) -> Guard {
    let conf = dir.join("supervisord.conf");
    let mut text = format!(
        "[supervisord]\nnodaemon=true\nlogfile={0}/sd.log\npidfile={0}/sd.pid\nchildlogdir={0}\n\n[unix_http_server]\nfile={0}/sd.sock\n\n",
        dir.display()
    );
    for id in ["alpha", "beta", "gamma"] {
        text.push_str(&format!(
            "[program:{id}]\ncommand={}/{id}.sh\nautostart=false\n\n",
            backends.display()
        ));
    }
    std::fs::write(&conf, text).expect("supervisord.conf");
    let child = Command::new(SUPERVISORD)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("supervisord");
    let sock = dir.join("sd.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "supervisord never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Guard(child)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    utime + stime
}

/// A numeric field of /proc/PID/status (kB for sizes).
fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("/proc/PID/status")
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}
