//! "Update to X" in a backend's submenu (issue #27, point 3), as a panel
//! sees it: shown once a check found a version, not clickable again while
//! the update it started is under way (here a download that stalls), and
//! gone once the version is installed.

use super::{BERTH, WAIT, click, registered, spawn_berth_with};
use crate::control::home::Home;
use crate::desktop::Desktop;
use crate::panel::{MenuNode, Panel};
use crate::update::feed::{Mode, demo_1_1_0_served};

/// The entry of the submenu `sub` whose label starts with `prefix`.
fn entry<'a>(root: &'a MenuNode, sub: &str, prefix: &str) -> Option<&'a MenuNode> {
    root.child(sub)?.child(prefix)
}

#[test]
fn the_tray_offers_an_update_found_and_not_twice_while_it_is_under_way() {
    let Some(desktop) = Desktop::start("the_tray_offers_an_update_found") else {
        return;
    };
    let home = Home::new();
    let server = demo_1_1_0_served(&home);
    home.backend(
        "demo",
        "exec sleep 300",
        &format!("update:\n  feed: {}\n", server.url()),
    );
    let folder = home.backends();
    std::fs::create_dir(home.path().join("backends")).unwrap();
    let mut cmd = desktop.command(BERTH);
    // A stalled download fails after 2 s here, not the contract's 30 s.
    cmd.env("BERTH_TEST_FETCH_STALL", "2");
    let panel = Panel::start(&desktop.bus).expect("own the StatusNotifierWatcher name");
    let berth = spawn_berth_with(cmd, home.dir, &[&folder]);
    let item = registered(&panel, &berth);
    let sub = "Backend demo";
    let root = panel
        .wait_layout(&item, WAIT, |r| r.child(sub).is_some())
        .unwrap_or_else(|last| panic!("no demo in the tray:\n{last}"));
    assert!(entry(&root, sub, "Update").is_none(), "\n{}", root.render());

    let out = desktop
        .command(BERTH)
        .arg("--socket")
        .arg(berth.dir.path().join("run/berth.sock"))
        .args(["update", "demo", "--check"])
        .env("XDG_CONFIG_HOME", berth.dir.path().join("config"))
        .env("XDG_STATE_HOME", berth.dir.path().join("state"))
        .env("XDG_DATA_HOME", berth.dir.path().join("data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let root = panel
        .wait_layout(&item, WAIT, |r| entry(r, sub, "Update to 1.1.0").is_some())
        .unwrap_or_else(|last| panic!("no Update to 1.1.0:\n{last}\n{}", berth.stderr()));

    // Clicked while the download stalls: shown as under way, disabled.
    server.set_mode(Mode::Stall);
    click(&panel, &item, &root, &[sub, "Update to 1.1.0"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            entry(r, sub, "Updating to 1.1.0…").is_some_and(|e| !e.enabled)
        })
        .unwrap_or_else(|last| panic!("no disabled Updating to 1.1.0…:\n{last}"));
    assert!(
        entry(&root, sub, "Update to").is_none(),
        "\n{}",
        root.render()
    );
    // The stalled download fails; the version is offered again.
    let root = panel
        .wait_layout(&item, WAIT, |r| {
            entry(r, sub, "Update to 1.1.0").is_some_and(|e| e.enabled)
        })
        .unwrap_or_else(|last| panic!("the update was never offered again:\n{last}"));

    // Clicked with the feed well: installed (the backend was stopped), and
    // nothing left to offer.
    server.set_mode(Mode::Normal);
    click(&panel, &item, &root, &[sub, "Update to 1.1.0"]);
    let root = panel
        .wait_layout(&item, WAIT, |r| entry(r, sub, "v1.1.0").is_some())
        .unwrap_or_else(|last| panic!("1.1.0 never installed:\n{last}\n{}", berth.stderr()));
    assert!(entry(&root, sub, "Updat").is_none(), "\n{}", root.render());
}
