//! The last lines of a backend's log, for `{"cmd": "logs"}`: read from the
//! files up to where the live feed takes over ([`Position`]), across
//! rotated files, each line with its stream and, when known, its run.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::feed::{Follow, Position, Runs};

/// One line of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub stderr: bool,
    pub text: String,
    /// The pid of the run that wrote it, when this launcher started it.
    pub run: Option<u32>,
}

const CHUNK: u64 = 64 * 1024;

/// A follower of one backend's log: its live feed, and its history in the
/// files up to where the feed takes over.
pub struct Source {
    pub follow: Follow,
    pub log: PathBuf,
    pub backups: u32,
}

impl Source {
    /// The last `n` lines before the feed's first (reads files: call it on
    /// a blocking thread).
    pub fn history(&self, n: usize) -> io::Result<Vec<Line>> {
        last_lines(
            &self.log,
            self.backups,
            self.follow.position,
            &self.follow.runs,
            n,
        )
    }
}

/// The last `n` lines of the log at `log` (rotated to `log.1` ...
/// `log.<backups>`) that end at `end`, oldest first.
pub fn last_lines(
    log: &Path,
    backups: u32,
    end: Option<Position>,
    runs: &Runs,
    n: usize,
) -> io::Result<Vec<Line>> {
    let Some(end) = end else {
        return Ok(Vec::new());
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let paths: Vec<PathBuf> = std::iter::once(log.to_path_buf())
        .chain((1..=backups).map(|i| PathBuf::from(format!("{}.{i}", log.display()))))
        .collect();
    // The file that ends the history, wherever rotation has moved it, then
    // the older ones.
    let mut files = paths.iter().filter_map(|p| File::open(p).ok());
    let mut first = None;
    for file in files.by_ref() {
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) == (end.dev, end.ino) {
            first = Some(file);
            break;
        }
    }
    let Some(first) = first else {
        // Rotated out of every kept file: no history to give.
        return Ok(Vec::new());
    };
    let mut raw = tail(&first, end.size, n)?;
    for older in files {
        if raw.len() >= n {
            break;
        }
        let len = older.metadata()?.len();
        let mut more = tail(&older, len, n - raw.len())?;
        more.append(&mut raw);
        raw = more;
    }
    Ok(raw.iter().map(|l| parse(l, runs)).collect())
}

/// The last `n` whole lines of `file` before byte `end`.
fn tail(file: &File, end: u64, n: usize) -> io::Result<Vec<Vec<u8>>> {
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = end;
    while pos > 0 && buf.iter().filter(|&&b| b == b'\n').count() <= n {
        let step = CHUNK.min(pos);
        pos -= step;
        let mut chunk = vec![0; step as usize];
        file.read_exact_at(&mut chunk, pos)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    let mut lines: Vec<Vec<u8>> = buf.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    // The piece after the last newline is a line not finished at `end`.
    lines.pop();
    if pos > 0 && !lines.is_empty() {
        // Cut in the middle by the chunk boundary.
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
}

/// `<stamp> <stream> <text>`, as the pump writes it; anything else is
/// shown whole, as stdout of no known run.
fn parse(raw: &[u8], runs: &Runs) -> Line {
    let fields = raw.get(..24).zip(raw.get(25..)).and_then(|(stamp, rest)| {
        let (stderr, text) = if let Some(text) = rest.strip_prefix(b"stdout ") {
            (false, text)
        } else {
            (true, rest.strip_prefix(b"stderr ")?)
        };
        Some((stamp, stderr, text))
    });
    match fields {
        Some((stamp, stderr, text)) => Line {
            stderr,
            text: String::from_utf8_lossy(text).into_owned(),
            run: runs.of(stamp),
        },
        None => Line {
            stderr: false,
            text: String::from_utf8_lossy(raw).into_owned(),
            run: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, lines: &[&str]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn history_ends_where_the_feed_begins_and_goes_on_in_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        write(
            &dir.path().join("a.log.1"),
            &[
                "2026-12-07T10:00:00.000Z stdout one",
                "2026-12-07T10:00:01.000Z stderr two",
            ],
        );
        write(
            &log,
            &[
                "2026-12-07T10:00:02.000Z stdout three",
                "not a stamped line",
            ],
        );
        let meta = std::fs::metadata(&log).unwrap();
        let mut end = Position {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
        };
        // A line written after the position is the feed's, not history's.
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut file, b"2026-12-07T10:00:03.000Z stdout four\n").unwrap();
        let got = last_lines(&log, 2, Some(end), &Runs::default(), 3).unwrap();
        let texts: Vec<_> = got.iter().map(|l| (l.stderr, l.text.as_str())).collect();
        assert_eq!(
            texts,
            [
                (true, "two"),
                (false, "three"),
                (false, "not a stamped line")
            ]
        );
        end.size = 0;
        assert!(
            last_lines(&log, 0, Some(end), &Runs::default(), 3)
                .unwrap()
                .is_empty()
        );
    }
}
