//! berth's own tracing output: stderr for whoever started it, and
//! `<state>/berth.log` for after the fact. `RUST_LOG` filters both (default
//! `info`); backend output reaches it only at `debug`.
//!
//! Colour on stderr only for a person at a terminal: never into a pipe, a
//! file or a journal, and never when `NO_COLOR` is set (no-color.org).

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. A log file that cannot be opened is
/// reported on stderr and skipped: the launcher still runs. Installing twice
/// (tests running the launcher in-process) keeps the first subscriber.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_target(false);
    let path = crate::paths::berth_log();
    let file = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
    // A plain mutex-guarded file, not tracing-appender's non-blocking writer:
    // that one keeps a thread alive, and the launcher logs little when idle.
    let file_layer = match file {
        Ok(f) => Some(
            fmt::layer()
                .with_writer(Mutex::new(f))
                .with_ansi(false)
                .with_target(false),
        ),
        Err(e) => {
            eprintln!(
                "berth: cannot open {}: {e}; logging to stderr only",
                path.display()
            );
            None
        }
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file_layer)
        .try_init();
}

/// Whether stderr gets ANSI colour: a terminal, and `NO_COLOR` unset or empty
/// (the convention says an empty value does not count).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
