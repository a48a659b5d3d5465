//! What an idle berth with its tray costs: CPU time over 30 idle seconds and
//! resident memory, with a StatusNotifier host on the bus (a panel: the test
//! watcher) and without one (libayatana's XEmbed fallback), each against
//! `berth run --headless` measured in the same run as the reference.
//!
//! Targets: under 50 ms of CPU in 30 s idle; under 30 MB resident with the
//! tray shown, in both cases.
//!
//! Run: `dbus-run-session -- xvfb-run -a cargo bench --bench tray_idle`
//! (`BERTH_BENCH_IDLE_S=10` shortens the idle window).

#[path = "../tests/it/desktop.rs"]
#[allow(dead_code)]
mod desktop;
#[path = "../tests/it/panel.rs"]
#[allow(dead_code)]
mod panel;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use desktop::Desktop;
use panel::Panel;

const CPU_TARGET_MS: f64 = 50.0;
const RSS_TARGET_MB: f64 = 30.0;

fn main() {
    let Some(desktop) = Desktop::start("tray_idle") else {
        return;
    };
    let idle = Duration::from_secs(
        std::env::var("BERTH_BENCH_IDLE_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    write_manifests(&dir.path().join("backends"));

    let headless = measure(
        &desktop,
        dir.path(),
        "headless",
        &["--headless"],
        None,
        idle,
    );

    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let with_panel = measure(&desktop, dir.path(), "panel", &[], Some(&panel), idle);
    drop(panel);

    let xembed = measure(&desktop, dir.path(), "xembed", &[], None, idle);

    println!(
        "\n{:<28} {:>10} {:>10} {:>12}",
        "case", "cpu ms", "rss MB", "vs headless"
    );
    for m in [&headless, &with_panel, &xembed] {
        println!(
            "{:<28} {:>10.0} {:>10.1} {:>11.2}x",
            m.label,
            m.cpu_ms,
            m.rss_mb,
            m.rss_mb / headless.rss_mb
        );
    }
    println!(
        "\ntargets: cpu < {CPU_TARGET_MS} ms per {}s idle, rss < {RSS_TARGET_MB} MB with the tray",
        idle.as_secs()
    );
    for m in [&with_panel, &xembed] {
        let cpu = if m.cpu_ms < CPU_TARGET_MS {
            "ok"
        } else {
            "MISSED"
        };
        let rss = if m.rss_mb < RSS_TARGET_MB {
            "ok"
        } else {
            "MISSED"
        };
        println!(
            "{}: cpu {cpu}, rss {rss}; the tray's own cost: {:+.0} ms cpu, {:+.1} MB",
            m.label,
            m.cpu_ms - headless.cpu_ms,
            m.rss_mb - headless.rss_mb
        );
    }
    println!("\nthreads that used CPU while idle:");
    for m in [&headless, &with_panel, &xembed] {
        for (name, ms) in &m.busy {
            println!("  {:<28} {name}: {ms:.0} ms", m.label);
        }
    }
}

struct Measure {
    label: String,
    cpu_ms: f64,
    rss_mb: f64,
    /// Threads that used CPU while idle: `(name, ms)`.
    busy: Vec<(String, f64)>,
}

fn write_manifests(dir: &Path) {
    std::fs::create_dir_all(dir).expect("backends dir");
    // Valid manifests whose backends are never started: berth stays idle.
    for (id, name) in [("alpha", "Alpha"), ("beta", "Beta & Co")] {
        std::fs::write(
            dir.join(format!("{id}.yaml")),
            format!(
                "id: {id}\nname: {name}\nversion: 1.0.0\nexecutable:\n  linux:\n    path: /bin/sleep\n    sha256: \"{}\"\nargs: [\"60\"]\n",
                "0".repeat(64)
            ),
        )
        .expect("write manifest");
    }
}

fn measure(
    desktop: &Desktop,
    tmp: &Path,
    case: &str,
    extra: &[&str],
    panel: Option<&Panel>,
    idle: Duration,
) -> Measure {
    let home = tmp.join(case);
    std::fs::create_dir_all(&home).expect("case dir");
    // The socket's folder must be ours and 0700.
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod 700");
    let mut cmd = desktop.command(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("run")
        .arg("--backends")
        .arg(tmp.join("backends"))
        .arg("--socket")
        .arg(home.join("berth.sock"))
        .args(extra)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_RUNTIME_DIR", &home)
        .env_remove("GDK_GL")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = Guard(cmd.spawn().expect("spawn berth"));
    let socket = home.join("berth.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{case}: berth never served"
        );
        assert!(
            child.0.try_wait().expect("wait").is_none(),
            "{case}: berth exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(panel) = panel {
        panel
            .wait_item(Duration::from_secs(20))
            .expect("berth's tray registers with the panel");
    }
    // Let start-up settle (first scan, GTK, icon files) before measuring.
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.0.id();
    let before = cpu_ticks(&format!("/proc/{pid}/stat"));
    let threads_before = thread_ticks(pid);
    std::thread::sleep(idle);
    let after = cpu_ticks(&format!("/proc/{pid}/stat"));
    let threads_after = thread_ticks(pid);
    let rss_mb = rss_kb(pid) as f64 / 1024.0;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let busy = threads_after
        .iter()
        .filter_map(|(tid, (name, ticks))| {
            let was = threads_before.get(tid).map_or(0, |(_, t)| *t);
            (*ticks > was).then(|| (name.clone(), (ticks - was) as f64 * 1000.0 / hz))
        })
        .collect();
    let label = match case {
        "headless" => "headless (reference)",
        "panel" => "tray, StatusNotifier host",
        _ => "tray, XEmbed fallback",
    };
    let m = Measure {
        label: label.to_owned(),
        cpu_ms: (after - before) as f64 * 1000.0 / hz,
        rss_mb,
        busy,
    };
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.0.wait();
    m
}

/// Per thread: name and utime + stime, in clock ticks.
fn thread_ticks(pid: u32) -> std::collections::HashMap<String, (String, u64)> {
    let mut out = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let ticks = cpu_ticks(&dir.join("stat").to_string_lossy());
        out.insert(
            task.file_name().to_string_lossy().into_owned(),
            (name.trim().to_owned(), ticks),
        );
    }
    out
}

/// utime + stime from a `/proc/.../stat` file (for a process: every thread).
fn cpu_ticks(path: &str) -> u64 {
    let stat = std::fs::read_to_string(path).expect("berth is running");
    // Fields after the command name (which may contain spaces) start at ")".
    let rest = &stat[stat.rfind(')').expect("stat has a comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("berth is running");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Kills berth if the bench panics half-way.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
