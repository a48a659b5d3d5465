//! `berth logs ID [-f] [-n N]`: prints a backend's log straight from its file,
//! so it works with or without a launcher.
//!
//! Following survives rotation: the supervisor renames `<id>.log` to
//! `<id>.log.1` and creates a new `<id>.log`. The follower is woken by
//! inotify on the log folder, finishes the old file, and continues with the
//! file rotated in after it (see [`Follower`]), so a rotation faster than
//! the reader loses nothing. Only waiting for a log that does not exist yet
//! polls (every 200 ms).
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};

use super::Exit;

const POLL: Duration = Duration::from_millis(200);
const CHUNK: usize = 64 * 1024;

pub fn run(
    id: &str,
    follow: bool,
    lines: Option<usize>,
    app: &crate::paths::AppName,
) -> anyhow::Result<ExitCode> {
    let id = crate::manifest::BackendId::new(id).map_err(Exit::usage)?;
    let path = crate::paths::backend_log(&crate::paths::log_dir(app), id.as_str());
    let mut file = match File::open(&path) {
        Ok(f) => f,
        // Following a backend that has not written yet waits for its log,
        // as `tail -F` does.
        Err(e) if e.kind() == io::ErrorKind::NotFound && follow => {
            eprintln!("berth: waiting for {}", path.display());
            wait_for_file(&path)?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(anyhow!("no log for {id} at {}", path.display()));
        }
        Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
    };
    let result = print_then_follow(&path, &mut file, follow, lines);
    match result {
        // `berth logs x | head` closes our stdout: that is a normal end.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// Polls until `path` can be opened (only while someone follows a log).
fn wait_for_file(path: &Path) -> anyhow::Result<File> {
    loop {
        match File::open(path) {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::thread::sleep(POLL),
            Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn print_then_follow(
    path: &Path,
    file: &mut File,
    follow: bool,
    lines: Option<usize>,
) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if let Some(n) = lines {
        let start = tail_offset(file, n).with_context(|| format!("reading {}", path.display()))?;
        file.seek(SeekFrom::Start(start))?;
    }
    copy_available(file, &mut out).with_context(|| format!("reading {}", path.display()))?;
    out.flush()?;
    if follow {
        Follower::new(path.to_path_buf(), file)?.run(&mut out)?;
    }
    Ok(())
}

/// Copies from the current position to the end of the file as it is now.
fn copy_available(file: &mut File, out: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The offset where the last `n` lines start, read backwards in chunks so a
/// big log is not read whole.
pub fn tail_offset(file: &mut File, n: usize) -> io::Result<u64> {
    let len = file.metadata()?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0;
    let mut buf = vec![0u8; CHUNK];
    // A final newline ends the last line; it does not start another one.
    let mut skip_final = true;
    while pos > 0 {
        let size = CHUNK.min(pos as usize);
        pos -= size as u64;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut buf[..size])?;
        for i in (0..size).rev() {
            if buf[i] != b'\n' {
                skip_final = false;
                continue;
            }
            if skip_final {
                skip_final = false;
                continue;
            }
            newlines += 1;
            if newlines == n {
                return Ok(pos + i as u64 + 1);
            }
        }
    }
    Ok(0)
}

/// Follows a log across rotations, woken by inotify (the notify crate) on
/// the log folder rather than by a timer.
///
/// It never skips a rotated file, even when rotations come faster than it
/// reads: when the path no longer names the file being read, the next file
/// is not `<id>.log` (that may already be two rotations later) but the one
/// that was rotated right after it. The follower finds its own file among
/// the backups (`.k`), opens `.k-1` (or `<id>.log`), and checks that its
/// own file is still at `.k` afterwards: rotation renames the oldest first,
/// so the file opened was its successor.
struct Follower<'a> {
    path: PathBuf,
    file: &'a mut File,
    identity: (u64, u64),
    /// A file opened after a rotation: read it from its start.
    owned: Option<File>,
}

/// A safety net for a missed event (an inotify queue overflow): look again
/// this often even without one.
const NO_EVENT_RECHECK: Duration = Duration::from_secs(2);
/// Rotations kept that the follower looks through for its file.
const MAX_BACKUPS: u32 = crate::cli::MAX_LOG_BACKUPS;

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl<'a> Follower<'a> {
    fn new(path: PathBuf, file: &'a mut File) -> io::Result<Self> {
        let meta = file.metadata()?;
        Ok(Self {
            path,
            file,
            identity: identity(&meta),
            owned: None,
        })
    }

    fn current(&mut self) -> &mut File {
        match self.owned.as_mut() {
            Some(f) => f,
            None => self.file,
        }
    }

    /// `<id>.log` for 0, `<id>.log.k` otherwise.
    fn name(&self, k: u32) -> PathBuf {
        if k == 0 {
            return self.path.clone();
        }
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{k}"));
        PathBuf::from(p)
    }

    fn at(&self, k: u32) -> Option<(u64, u64)> {
        std::fs::metadata(self.name(k)).ok().map(|m| identity(&m))
    }

    /// The file rotated in right after the one being read, if the path no
    /// longer names it; `None` while it is still the current log (or
    /// while the successor cannot be told yet).
    fn successor(&self) -> Option<File> {
        if self.at(0) == Some(self.identity) {
            return None;
        }
        // Where is ours now? Not found: dropped past the last backup, and
        // its successor is the oldest backup left.
        let k = (1..=MAX_BACKUPS)
            .find(|&k| self.at(k) == Some(self.identity))
            .or_else(|| {
                (1..=MAX_BACKUPS)
                    .rev()
                    .find(|&k| self.at(k).is_some())
                    .map(|k| k + 1)
            })?;
        let next = File::open(self.name(k - 1)).ok()?;
        let ours_still_at_k = self.at(k) == Some(self.identity);
        let dropped = (1..=MAX_BACKUPS).all(|j| self.at(j) != Some(self.identity));
        (ours_still_at_k || dropped).then_some(next)
    }

    fn run(mut self, out: &mut impl Write) -> anyhow::Result<()> {
        use notify::{RecursiveMode, Watcher};
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            // The callback only forwards; a closed channel means we are done.
            let _ = tx.send(event);
        })?;
        let folder = self.path.parent().unwrap_or(Path::new("."));
        watcher.watch(folder, RecursiveMode::NonRecursive)?;
        loop {
            if copy_available(self.current(), out)? > 0 {
                out.flush()?;
            }
            // Truncated in place: start over from the top.
            let position = self.current().stream_position()?;
            let len = self.current().metadata()?.len();
            if len < position {
                self.current().seek(SeekFrom::Start(0))?;
                continue;
            }
            if let Some(next) = self.successor() {
                // Lines written to the old file before its rename come first.
                copy_available(self.current(), out)?;
                out.flush()?;
                self.identity = identity(&next.metadata()?);
                self.owned = Some(next);
                continue;
            }
            // Sleep until the folder changes; then take every queued event.
            match rx.recv_timeout(NO_EVENT_RECHECK) {
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
            while rx.try_recv().is_ok() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_of_last(text: &str, n: usize) -> String {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let off = tail_offset(&mut f, n).unwrap() as usize;
        text[off..].to_owned()
    }

    #[test]
    fn tail_counts_lines_from_the_end() {
        assert_eq!(offset_of_last("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(offset_of_last("a\nb\nc", 2), "b\nc");
        assert_eq!(offset_of_last("a\nb\n", 5), "a\nb\n");
        assert_eq!(offset_of_last("a\nb\n", 0), "");
        assert_eq!(offset_of_last("", 3), "");
    }

    #[test]
    fn tail_works_across_chunks() {
        let line = "x".repeat(1000);
        let text: String = (0..300).map(|i| format!("{i} {line}\n")).collect();
        let last = offset_of_last(&text, 100);
        assert_eq!(last.lines().count(), 100);
        assert!(last.starts_with("200 "));
    }
}
