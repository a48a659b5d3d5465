//! The reference for the tray benchmarks (benches/tray_idle.rs,
//! benches/tray_running.rs): a bare tray-icon + tao program, the same crates
//! and versions berth links, showing a menu of the same shape as berth's and
//! doing nothing else. Its memory is what any program with that tray and
//! that menu costs; berth-tray's is compared against it in the same run.
//!
//! `bare_tray MENU_FILE`: the menu is read from a file the benchmark writes
//! from berth's own menu (read over D-Bus as a panel reads it), one entry a
//! line, tab-separated:
//!
//! ```text
//! item     LABEL  ENABLED(0|1)
//! check    LABEL  ENABLED  CHECKED(0|1)
//! separator
//! submenu  LABEL        (entries up to the matching `end` go inside)
//! end
//! ```
//!
//! Like berth: a tao event loop on the main thread in `ControlFlow::Wait`,
//! the tray created at `StartCause::Init` (tray-icon #90). It runs until
//! killed.

use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder};
use tray_icon::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

/// The icon's side in pixels (berth draws 32x32).
const SIZE: u32 = 32;

fn main() {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: bare_tray MENU_FILE");
        std::process::exit(2);
    };
    let spec = match std::fs::read_to_string(&path) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("bare_tray: {}: {e}", path.to_string_lossy());
            std::process::exit(2);
        }
    };
    let event_loop = EventLoopBuilder::<()>::with_user_event().build();
    // Owned by the loop's closure, so the icon lives as long as the loop.
    let mut _tray: Option<TrayIcon> = None;
    event_loop.run(move |event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        if let Event::NewEvents(StartCause::Init) = event {
            match build(&spec) {
                Ok(icon) => _tray = Some(icon),
                Err(e) => {
                    eprintln!("bare_tray: {e}");
                    std::process::exit(1);
                }
            }
        }
    });
}

/// The tray with the menu described by `spec` (see the module docs).
fn build(spec: &str) -> Result<TrayIcon, String> {
    let menu = Menu::new();
    let mut open: Vec<Submenu> = Vec::new();
    for (n, line) in spec.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let flag = |i: usize| fields.get(i) == Some(&"1");
        let label = fields.get(1).copied().unwrap_or_default();
        let entry: Box<dyn tray_icon::menu::IsMenuItem> = match fields[0] {
            "item" => Box::new(MenuItem::new(label, flag(2), None)),
            "check" => Box::new(CheckMenuItem::new(label, flag(2), flag(3), None)),
            "separator" => Box::new(PredefinedMenuItem::separator()),
            "submenu" => {
                open.push(Submenu::new(label, true));
                continue;
            }
            "end" => match open.pop() {
                Some(done) => Box::new(done),
                None => return Err(format!("line {}: `end` without `submenu`", n + 1)),
            },
            other => return Err(format!("line {}: unknown entry {other:?}", n + 1)),
        };
        let added = match open.last() {
            Some(parent) => parent.append(entry.as_ref()),
            None => menu.append(entry.as_ref()),
        };
        added.map_err(|e| format!("line {}: {e}", n + 1))?;
    }
    if !open.is_empty() {
        return Err("a `submenu` without its `end`".to_owned());
    }
    let rgba: Vec<u8> = [0x2e, 0x7d, 0x32, 0xff].repeat((SIZE * SIZE) as usize);
    let icon = Icon::from_rgba(rgba, SIZE, SIZE).map_err(|e| e.to_string())?;
    TrayIconBuilder::new()
        .with_tooltip("bare")
        .with_menu(Box::new(menu))
        .with_icon(icon)
        .build()
        .map_err(|e| e.to_string())
}
