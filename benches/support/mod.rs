//! What the launcher benchmarks share: backends written to a folder, a
//! headless `berth run`, supervisord as the reference, control requests,
//! and CPU/RSS read from /proc.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
pub const SUPERVISORD: &str = "/usr/bin/supervisord";

/// The berth binary to measure: `BERTH_BIN` (an installed or other build),
/// else this build's.
pub fn berth_bin() -> PathBuf {
    std::env::var_os("BERTH_BIN").map_or_else(|| BERTH.into(), PathBuf::from)
}

/// `BERTH_<name>_SECS`, else `default` seconds.
pub fn secs(name: &str, default: u64) -> u64 {
    std::env::var(format!("BERTH_{name}_SECS"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One `<id>.sh` running `script` and its pinned `<id>.yaml` per id, in
/// `dir`; `extra` is appended to each manifest.
pub fn write_backends(dir: &Path, ids: &[String], script: &str, extra: &str) {
    std::fs::create_dir_all(dir).expect("backends dir");
    for id in ids {
        let exe = dir.join(format!("{id}.sh"));
        std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).expect("script");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let digest = berth::integrity::hash_file(&exe).expect("hash");
        std::fs::write(
            dir.join(format!("{id}.yaml")),
            format!(
                "id: {id}\nname: {id}\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {id}.sh\n    sha256: {digest}\n{extra}"
            ),
        )
        .expect("manifest");
    }
}

/// `b000`, `b001`, ...
pub fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("b{i:03}")).collect()
}

/// `berth run --headless` on `backends`, its socket and state under `home`.
pub fn berth_headless(backends: &Path, home: &Path) -> Guard {
    berth_headless_of(berth_bin().as_os_str(), backends, home)
}

/// [`berth_headless`] of another binary `bin`.
pub fn berth_headless_of(bin: &std::ffi::OsStr, backends: &Path, home: &Path) -> Guard {
    std::fs::create_dir_all(home).expect("home");
    Guard(
        Command::new(bin)
            .args(["run", "--headless", "--backends"])
            .arg(backends)
            .arg("--socket")
            .arg(home.join("run/berth.sock"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("berth run"),
    )
}

/// One control request and its reply.
pub fn request(socket: &Path, line: &str) -> serde_json::Value {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.write_all(format!("{line}\n").as_bytes()).expect("send");
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).expect("reply");
    serde_json::from_str(&reply).unwrap_or_default()
}

/// Waits until `status` satisfies `done`.
pub fn wait_status(socket: &Path, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if UnixStream::connect(socket).is_ok() {
            let reply = request(socket, r#"{"cmd":"status"}"#);
            if reply["data"].as_array().is_some_and(|list| done(list)) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "berth never got to: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many entries of a status list are in `state`.
pub fn count(list: &[serde_json::Value], state: &str) -> usize {
    list.iter().filter(|b| b["state"] == state).count()
}

/// supervisord running `programs` (`(name, command)`), each started at
/// once when `autostart`.
pub fn start_supervisord(dir: &Path, programs: &[(String, String)], autostart: bool) -> Guard {
    let conf = dir.join("supervisord.conf");
    let mut text = format!(
        "[supervisord]\nnodaemon=true\nlogfile={0}/sd.log\npidfile={0}/sd.pid\nchildlogdir={0}\n\n[unix_http_server]\nfile={0}/sd.sock\n\n",
        dir.display()
    );
    for (name, command) in programs {
        text.push_str(&format!(
            "[program:{name}]\ncommand={command}\nautostart={autostart}\n\n"
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

/// Kills the child on every exit path, gracefully first.
pub struct Guard(pub Child);

impl Guard {
    pub fn stop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
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

/// utime + stime of a process (all its threads), in milliseconds.
pub fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    (utime + stime) as f64 * 1000.0 / clock_ticks_per_second()
}

/// A numeric field of /proc/PID/status (kB for sizes).
pub fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("/proc/PID/status")
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn rss_mb(pid: u32) -> f64 {
    status_field(pid, "VmRSS:") as f64 / 1024.0
}

fn clock_ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)
        .map_or(100.0, |t| t as f64)
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// The median of `times`, in milliseconds.
pub fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

/// The load averages, for the figures printed beside them (the machine is
/// shared: a figure means little without them).
pub fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    format!("load average {}", fields.join(", "))
}

/// `name` on PATH; installed from Debian when missing (curl and the like).
pub fn which(name: &str) -> String {
    let found = |n: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {n}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(path) = found(name) {
        return path;
    }
    let installed = Command::new("sh")
        .args([
            "-c",
            &format!("apt-get install -y {name} || sudo apt-get install -y {name}"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(installed, "{name} is missing and could not be installed");
    found(name).unwrap_or_else(|| panic!("{name} not found after installing it"))
}

/// The reference of the update benchmarks: `curl -o dest url` then
/// `sha256sum dest`, checked against `digest`; how long both took.
pub fn curl_and_sha256sum(
    curl: &str,
    url: &str,
    dest: &Path,
    digest: &impl std::fmt::Display,
) -> Duration {
    let started = Instant::now();
    let ok = Command::new(curl)
        .args(["-s", "-f", "-o"])
        .arg(dest)
        .arg(url)
        .status()
        .expect("curl")
        .success();
    let sum = Command::new("sha256sum")
        .arg(dest)
        .output()
        .expect("sha256sum");
    let took = started.elapsed();
    assert!(ok && sum.status.success(), "curl or sha256sum failed");
    assert!(String::from_utf8_lossy(&sum.stdout).starts_with(&digest.to_string()));
    took
}
