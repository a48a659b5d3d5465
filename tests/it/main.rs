//! berth's integration tests: one binary, one module per area.

mod supervisor;
mod util;
mod watch;
