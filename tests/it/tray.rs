//! The tray as a desktop panel sees it: the real binary, a private session
//! bus with a StatusNotifierWatcher played by the test, and the X display.

use std::time::Duration;

use crate::desktop::Desktop;
use crate::panel::Panel;

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn scratch_demo() {
    let Some(desktop) = Desktop::start("scratch_demo") else { return };
    let panel = Panel::start(&desktop.bus).unwrap();
    let mut child = desktop
        .command(std::env::var("TRAY_DEMO").unwrap())
        .env("TRAY_DEMO_STATIC", "1")
        .spawn()
        .unwrap();
    let item = panel.wait_item(WAIT).expect("tray registered");
    let root = panel
        .wait_layout(&item, WAIT, |r| r.find("Quit").is_some())
        .unwrap();
    eprintln!("{item}\n{}", root.render());
    let start = root.find("Python Backend").unwrap().child("Start").unwrap().id;
    panel.click(&item, start).unwrap();
    let root = panel
        .wait_layout(&item, WAIT, |r| r.find("🟢").is_some())
        .unwrap();
    eprintln!("{}", root.render());
    let quit = root.find("Quit").unwrap().id;
    panel.click(&item, quit).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
}
