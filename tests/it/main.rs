//! berth's integration tests: one binary, one module per area.

mod manifest;
mod supervisor;
mod util;
mod watch;
