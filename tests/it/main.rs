//! berth's integration tests: one binary, one module per area.

mod control;
mod desktop;
mod faults;
mod manifest;
mod panel;
mod supervisor;
mod tray;
mod util;
mod watch;
