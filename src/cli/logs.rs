//! `berth logs ID [-f] [-n N]`: prints a backend's log straight from its file,
//! so it works with or without a launcher.
//!
//! Following survives rotation: the supervisor renames `<id>.log` to
//! `<id>.log.1` and creates a new `<id>.log`. The follower notices the path
//! now names another inode (or that the file shrank), finishes the old file,
//! and continues with the new one from its start. It polls every 200 ms while
//! following: this is the client, not the launcher, and it only runs while
//! someone watches.
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

pub fn run(id: &str, follow: bool, lines: Option<usize>) -> anyhow::Result<ExitCode> {
    let id = crate::manifest::BackendId::new(id).map_err(Exit::usage)?;
    let path = crate::paths::backend_log(&crate::paths::log_dir(), id.as_str());
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

struct Follower<'a> {
    path: PathBuf,
    file: &'a mut File,
    identity: (u64, u64),
    /// A file opened after a rotation: read it from its start.
    owned: Option<File>,
}

impl<'a> Follower<'a> {
    fn new(path: PathBuf, file: &'a mut File) -> io::Result<Self> {
        let meta = file.metadata()?;
        Ok(Self {
            path,
            file,
            identity: (meta.dev(), meta.ino()),
            owned: None,
        })
    }

    fn current(&mut self) -> &mut File {
        match self.owned.as_mut() {
            Some(f) => f,
            None => self.file,
        }
    }

    fn run(mut self, out: &mut impl Write) -> anyhow::Result<()> {
        loop {
            if copy_available(self.current(), out)? > 0 {
                out.flush()?;
            }
            std::thread::sleep(POLL);
            // Truncated in place: start over from the top.
            let position = self.current().stream_position()?;
            let len = self.current().metadata()?.len();
            if len < position {
                self.current().seek(SeekFrom::Start(0))?;
                continue;
            }
            // Rotated: the path names another file (or none, for a moment).
            let Ok(meta) = std::fs::metadata(&self.path) else {
                continue;
            };
            if (meta.dev(), meta.ino()) == self.identity {
                continue;
            }
            let Ok(next) = File::open(&self.path) else {
                continue;
            };
            // Lines written to the old file between our last read and the
            // rename come first.
            copy_available(self.current(), out)?;
            out.flush()?;
            let meta = next.metadata()?;
            self.identity = (meta.dev(), meta.ino());
            self.owned = Some(next);
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
