//! berth's integration tests: one binary, one module per area.

mod apps;
mod autostart;
mod control;
mod desktop;
mod embed;
mod faults;
mod fetch;
mod folders;
mod graph;
mod install;
mod layering;
mod manifest;
mod notify;
mod panel;
mod protocol;
mod sandbox;
mod supervisor;
mod tray;
mod trust;
mod update;
mod util;
mod watch;
