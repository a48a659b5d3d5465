//! The reference of the tray benchmarks: `examples/bare_tray.rs`, a bare
//! tray-icon + tao program showing a menu of the same shape as berth's,
//! built and started by the benchmark so both are measured in the same run.
//! berth's menu is read from its dbusmenu object, as a panel reads it, and
//! written to the file `bare_tray` builds its own menu from.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::desktop::Desktop;
use crate::panel::MenuNode;
use crate::support::{Guard, status_field};

/// What the tray benchmarks hold berth-tray to, against the bare program.
pub const RSS_ANON_RATIO_TARGET: f64 = 1.25;
pub const VM_RSS_TARGET_MB: f64 = 35.0;

/// Builds `bare_tray` with the benchmark's own profile (the dependencies
/// are already built for berth) and returns its path.
pub fn build() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--profile",
            "bench",
            "--example",
            "bare_tray",
        ])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build --example bare_tray failed");
    // This benchmark runs from <target>/release/deps/.
    let exe = std::env::current_exe().expect("own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/release/deps");
    profile_dir.join("examples/bare_tray")
}

/// Writes `menu` (a dbusmenu root) in `bare_tray`'s format to `path`.
pub fn write_menu(menu: &MenuNode, path: &Path) {
    fn walk(nodes: &[MenuNode], out: &mut String) {
        let flag = |b: bool| if b { "1" } else { "0" };
        for node in nodes {
            if node.separator {
                out.push_str("separator\n");
            } else if !node.children.is_empty() {
                out.push_str(&format!("submenu\t{}\n", node.label));
                walk(&node.children, out);
                out.push_str("end\n");
            } else if let Some(checked) = node.checked {
                out.push_str(&format!(
                    "check\t{}\t{}\t{}\n",
                    node.label,
                    flag(node.enabled),
                    flag(checked)
                ));
            } else {
                out.push_str(&format!("item\t{}\t{}\n", node.label, flag(node.enabled)));
            }
        }
    }
    let mut out = String::new();
    walk(&menu.children, &mut out);
    std::fs::write(path, out).expect("write the bare tray's menu");
}

/// Entries (submenus included) and submenus of a menu, for the printout
/// that shows both menus have the same size.
pub fn size(menu: &MenuNode) -> (usize, usize) {
    menu.children.iter().fold((0, 0), |(entries, subs), node| {
        let (e, s) = size(node);
        (
            entries + 1 + e,
            subs + s + usize::from(!node.children.is_empty()),
        )
    })
}

/// Starts `bare_tray` in `desktop` with the menu in `menu_file`, in the
/// environment berth gives its own GTK (`tray::prepare_env`, less the empty
/// theme, which is berth's own).
pub fn start(desktop: &Desktop, exe: &Path, menu_file: &Path) -> Guard {
    Guard(
        desktop
            .command(exe)
            .arg(menu_file)
            .env("GDK_GL", "disable")
            .env_remove("GTK_THEME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start bare_tray"),
    )
}

/// VmRSS and RssAnon of a process, in MB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_mb: f64,
    pub anon_mb: f64,
}

impl Memory {
    pub fn of(pid: u32) -> Self {
        let mb = |field| status_field(pid, field) as f64 / 1024.0;
        Self {
            rss_mb: mb("VmRSS:"),
            anon_mb: mb("RssAnon:"),
        }
    }
}

/// Prints berth-tray's memory against the bare program's, with the targets.
pub fn report(case: &str, berth: Memory, bare: Memory) {
    let ratio = berth.anon_mb / bare.anon_mb;
    println!(
        "{case}: berth-tray VmRSS {:.1} MB, RssAnon {:.1} MB; bare tray-icon + tao VmRSS {:.1} MB, RssAnon {:.1} MB",
        berth.rss_mb, berth.anon_mb, bare.rss_mb, bare.anon_mb
    );
    println!(
        "{case}: RssAnon {ratio:.2}x the bare program's (target <= {RSS_ANON_RATIO_TARGET}x): {}; VmRSS {:.2}x, {:.1} MB (target < {VM_RSS_TARGET_MB} MB): {}",
        crate::support::verdict(ratio <= RSS_ANON_RATIO_TARGET),
        berth.rss_mb / bare.rss_mb,
        berth.rss_mb,
        crate::support::verdict(berth.rss_mb < VM_RSS_TARGET_MB)
    );
}
