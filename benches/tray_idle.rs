//! What an idle berth with its tray costs: CPU time over 30 idle seconds and
//! resident memory, with a StatusNotifier host on the bus (a panel: the test
//! watcher) and without one (libayatana's XEmbed fallback), each against
//! `berth run --headless` measured in the same run as the reference.
//!
//! In each tray case a bare tray-icon + tao program (`examples/bare_tray.rs`,
//! see `bare`) with berth's menu, as the panel reads it, runs beside berth
//! and is measured in the same window: VmRSS and RssAnon of both.
//!
//! Targets: under 50 ms of CPU in 30 s idle; with the tray shown, in both
//! cases, RssAnon <= 1.25x the bare program's and VmRSS < 35 MB, with
//! nothing paged out or trimmed before the sample.
//!
//! Run: `dbus-run-session -- xvfb-run -a cargo bench --bench tray_idle`
//! (`BERTH_BENCH_IDLE_S=10` shortens the idle window).

#[path = "bare/mod.rs"]
mod bare;
#[path = "../tests/it/desktop.rs"]
#[allow(dead_code)]
mod desktop;
#[path = "../tests/it/panel.rs"]
#[allow(dead_code)]
mod panel;
#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use bare::Memory;
use desktop::Desktop;
use panel::Panel;

const CPU_TARGET_MS: f64 = 50.0;

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
        None,
        idle,
    );

    let bare_exe = bare::build();
    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let with_panel = measure(
        &desktop,
        dir.path(),
        "panel",
        &[],
        Some(&panel),
        Some(&bare_exe),
        idle,
    );
    drop(panel);

    // berth's menu is the one the panel case read: the same backends.
    let xembed = measure(
        &desktop,
        dir.path(),
        "xembed",
        &[],
        None,
        Some(&bare_exe),
        idle,
    );

    println!(
        "\n{:<28} {:>10} {:>10} {:>11} {:>12}",
        "case", "cpu ms", "VmRSS MB", "RssAnon MB", "vs headless"
    );
    for m in [&headless, &with_panel, &xembed] {
        println!(
            "{:<28} {:>10.0} {:>10.1} {:>11.1} {:>11.2}x",
            m.label,
            m.cpu_ms,
            m.mem.rss_mb,
            m.mem.anon_mb,
            m.mem.rss_mb / headless.mem.rss_mb
        );
        if let Some(bare) = m.bare {
            println!(
                "{:<28} {:>10} {:>10.1} {:>11.1}",
                "  bare tray-icon + tao", "", bare.rss_mb, bare.anon_mb
            );
        }
    }
    println!(
        "\ntarget: cpu < {CPU_TARGET_MS} ms per {}s idle",
        idle.as_secs()
    );
    for m in [&with_panel, &xembed] {
        println!(
            "{}: cpu {}; the tray's own cost: {:+.0} ms cpu, {:+.1} MB",
            m.label,
            support::verdict(m.cpu_ms < CPU_TARGET_MS),
            m.cpu_ms - headless.cpu_ms,
            m.mem.rss_mb - headless.mem.rss_mb
        );
        if let Some(bare) = m.bare {
            bare::report(&m.label, m.mem, bare);
        }
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
    mem: Memory,
    /// The bare tray-icon + tao program measured in the same window.
    bare: Option<Memory>,
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
    bare_exe: Option<&Path>,
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
        .env("XDG_DATA_HOME", home.join("data"))
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
    let menu_file = tmp.join("bare-menu.txt");
    let mut bare_tray = bare_exe.map(|exe| match panel {
        Some(panel) => start_bare_beside(desktop, panel, exe, &menu_file),
        None => bare::start(desktop, exe, &menu_file),
    });
    // Let start-up settle (first scan, GTK, icon files) before measuring.
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.0.id();
    let before = cpu_ticks(&format!("/proc/{pid}/stat"));
    let threads_before = thread_ticks(pid);
    std::thread::sleep(idle);
    let after = cpu_ticks(&format!("/proc/{pid}/stat"));
    let threads_after = thread_ticks(pid);
    let mem = Memory::of(pid);
    let bare = bare_tray.as_ref().map(|b| Memory::of(b.0.id()));
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
        mem,
        bare,
        busy,
    };
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.0.wait();
    if let Some(bare_tray) = bare_tray.as_mut() {
        bare_tray.stop();
    }
    m
}

/// Writes berth's menu, as `panel` reads it, to `menu_file`, and starts the
/// bare program with it once berth's item is the panel's first.
fn start_bare_beside(
    desktop: &Desktop,
    panel: &Panel,
    exe: &Path,
    menu_file: &Path,
) -> support::Guard {
    let items = panel.items();
    let berth_menu = panel.layout(&items[0]).expect("berth's menu");
    bare::write_menu(&berth_menu, menu_file);
    let bare_tray = bare::start(desktop, exe, menu_file);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while panel.items().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the bare tray never registered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let bare_menu = panel
        .layout(&panel.items()[1])
        .expect("the bare tray's menu");
    assert_eq!(
        bare::size(&bare_menu),
        bare::size(&berth_menu),
        "the bare tray's menu has another size than berth's"
    );
    bare_tray
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

/// Kills berth if the bench panics half-way.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
