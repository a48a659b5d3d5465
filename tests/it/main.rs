//! berth's integration tests: one binary, one module per area.

mod control;
mod manifest;
mod supervisor;
mod util;
mod watch;
