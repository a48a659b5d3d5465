//! berth's own tracing output: stderr for whoever started it, and
//! `<state>/berth.log` for after the fact. `RUST_LOG` filters both (default
//! `info`); backend output reaches it only at `debug`.
//!
//! berth.log rotates like a backend's log (`--log-max-size`, `--log-backups`):
//! a crash loop logs a few lines per restart, and that must not fill the
//! disk over a week.
//!
//! Colour on stderr only for a person at a terminal: never into a pipe, a
//! file or a journal, and never when `NO_COLOR` is set (no-color.org).

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. A log file that cannot be opened is
/// reported on stderr and skipped: the launcher still runs. Installing twice
/// (tests running the launcher in-process) keeps the first subscriber.
/// `berth.log` is the instance `app`'s.
pub fn init(app: &crate::paths::AppName, max_size: u64, backups: u32) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_target(false);
    let path = crate::paths::berth_log(app);
    let file = path
        .parent()
        .map_or(Ok(()), crate::paths::create_private_dir)
        .and_then(|()| Rotating::open(path.clone(), max_size, backups));
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

/// berth.log: appended to, rotated before a write would take it past
/// `max_size`. The fmt layer writes each event with one `write_all`, so a
/// rotation never splits a line.
struct Rotating {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    backups: u32,
}

impl Rotating {
    fn open(path: PathBuf, max_size: u64, backups: u32) -> io::Result<Self> {
        let file = crate::supervisor::logs::open_append(&path, false)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            file,
            size,
            max_size,
            backups,
        })
    }
}

impl Write for Rotating {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max_size {
            self.file = crate::supervisor::logs::rotate_files(&self.path, self.backups)?;
            self.size = 0;
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Whether stderr gets ANSI colour: a terminal, and `NO_COLOR` unset or empty
/// (the convention says an empty value does not count).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn berth_log_rotates_at_its_size_and_keeps_its_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.log");
        let mut log = Rotating::open(path.clone(), 100, 2).unwrap();
        for i in 0..10 {
            log.write_all(format!("{i:039}\n").as_bytes()).unwrap();
        }
        let size = |p: &str| std::fs::metadata(dir.path().join(p)).map(|m| m.len());
        assert_eq!(size("berth.log").unwrap(), 80);
        assert_eq!(size("berth.log.1").unwrap(), 80);
        assert_eq!(size("berth.log.2").unwrap(), 80);
        assert!(size("berth.log.3").is_err());
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.ends_with(&format!("{:039}\n", 9)), "{last}");
    }

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
