//! One backend's log file: whole stamped lines, rotated by size, and kept
//! going through what happens to the file.
//!
//! - Opened without following a symlink (O_NOFOLLOW), so a link planted at
//!   `<id>.log` cannot make berth write elsewhere.
//! - Before each write-out the path is checked (one `lstat`, at most every
//!   flush): a log deleted or renamed away (logrotate without
//!   `copytruncate`) is recreated, and the lines go to the new file.
//! - A write error (a full disk) does not end logging: what could not be
//!   written is dropped and counted, the rest of a line already begun is
//!   kept and written first when writing works again, so no line is left
//!   without its end; the pump retries every second and reports the
//!   failure and the recovery once each ([`Writing`]).
//!
//! berth buffers whole lines itself (not through `BufWriter`) to know
//! exactly which bytes reached the file when a write fails half-way.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// How much is buffered before it is written out.
const BUF: usize = 64 * 1024;

/// A change in whether the log can be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writing {
    /// Writing fails; the one-line reason.
    Failing(String),
    /// Writing works again; how many lines were lost meanwhile.
    Resumed { lost: u64 },
}

/// A size-rotated log file.
pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    /// `(device, inode)` of the open file, to notice it was replaced.
    ident: (u64, u64),
    /// Whole lines not written yet.
    buf: Vec<u8>,
    /// The rest of a line whose beginning is already in the file.
    tail: Vec<u8>,
    size: u64,
    max_size: u64,
    backups: u32,
    stamp: Stamp,
    failing: Option<String>,
    lost: u64,
    change: Option<Writing>,
}

/// Opens `path` for appending, never through a symlink; the file is
/// readable by this user only (also one an earlier berth made 0644).
pub fn open_append(path: &Path, truncate: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW);
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    let file = o.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io::Error::new(
                e.kind(),
                "it is a symbolic link (berth does not follow links)",
            )
        } else {
            e
        }
    })?;
    private(&file)?;
    Ok(file)
}

/// Takes away what group and others may do with an open file.
fn private(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Writes as much of `data` as the file takes: bytes written, and the error
/// that stopped it.
fn write_some(file: &mut File, data: &[u8]) -> (usize, Option<io::Error>) {
    let mut done = 0;
    while done < data.len() {
        match file.write(&data[done..]) {
            Ok(0) => return (done, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

fn count_lines(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

impl LogFile {
    /// Opens (appends to) `path`, creating its folder.
    pub fn open(path: &Path, max_size: u64, backups: u32) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            crate::paths::create_private_dir(dir)?;
        }
        let file = open_append(path, false)?;
        let meta = file.metadata()?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
            ident: (meta.dev(), meta.ino()),
            buf: Vec::with_capacity(BUF),
            tail: Vec::new(),
            size: meta.len(),
            max_size,
            backups,
            stamp: Stamp::default(),
            failing: None,
            lost: 0,
            change: None,
        })
    }

    /// Queues `<time> <stream> <text>\n`, rotating first if the line would
    /// push the file past its maximum size.
    pub fn write_line(&mut self, stream: &str, text: &[u8]) {
        let len = (24 + 1 + stream.len() + 1 + text.len() + 1) as u64;
        let pending = self.size + self.buf.len() as u64;
        if pending > 0 && pending + len > self.max_size {
            self.flush();
            if let Err(e) = self.rotate() {
                self.fail(&e);
            }
        }
        let stamp = *self.stamp.now();
        self.buf.extend_from_slice(&stamp);
        self.buf.push(b' ');
        self.buf.extend_from_slice(stream.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(text);
        self.buf.push(b'\n');
        if self.buf.len() >= BUF {
            self.flush();
        }
    }

    /// Where what is written so far ends: the open file's `(device,
    /// inode)` and its length (the live feed's [`super::feed::Position`]).
    pub fn written_end(&self) -> (u64, u64, u64) {
        (self.ident.0, self.ident.1, self.size)
    }

    /// Does writing fail at the moment?
    pub fn failing(&self) -> bool {
        self.failing.is_some()
    }

    /// The last change of [`Writing`], once.
    pub fn take_change(&mut self) -> Option<Writing> {
        self.change.take()
    }

    /// Writes out what is buffered (to a recreated file if the path no
    /// longer names the open one).
    pub fn flush(&mut self) {
        self.follow_path();
        let Some(file) = self.file.as_mut() else {
            self.lost += count_lines(&self.buf);
            self.buf.clear();
            return;
        };
        if !self.tail.is_empty() {
            let (n, err) = write_some(file, &self.tail);
            self.size += n as u64;
            self.tail.drain(..n);
            if let Some(e) = err {
                self.lost += count_lines(&self.buf);
                self.buf.clear();
                self.fail(&e);
                return;
            }
        }
        let (n, err) = write_some(file, &self.buf);
        self.size += n as u64;
        match err {
            Some(e) => {
                let rest = &self.buf[n..];
                let dropped = if n > 0 && self.buf[n - 1] != b'\n' {
                    let end = rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(rest.len(), |i| i + 1);
                    self.tail = rest[..end].to_vec();
                    &rest[end..]
                } else {
                    rest
                };
                self.lost += count_lines(dropped);
                self.buf.clear();
                self.fail(&e);
            }
            None => {
                self.buf.clear();
                if self.failing.take().is_some() {
                    self.change = Some(Writing::Resumed {
                        lost: std::mem::take(&mut self.lost),
                    });
                }
            }
        }
    }

    fn fail(&mut self, e: &io::Error) {
        if self.failing.is_none() {
            let msg = format!("cannot write log {}: {e}", self.path.display());
            self.change = Some(Writing::Failing(msg.clone()));
            self.failing = Some(msg);
        }
    }

    /// Reopens the path if it no longer names the open file (deleted,
    /// renamed away, replaced), finishing a begun line in the old one first.
    fn follow_path(&mut self) {
        let same = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.ident && self.file.is_some());
        if same {
            return;
        }
        if let Some(old) = self.file.as_mut()
            && !self.tail.is_empty()
        {
            let _ = write_some(old, &self.tail);
            self.tail.clear();
        }
        match open_append(&self.path, false).and_then(|f| Ok((f.metadata()?, f))) {
            Ok((meta, f)) => {
                self.ident = (meta.dev(), meta.ino());
                self.size = meta.len();
                self.file = Some(f);
            }
            Err(e) => {
                self.file = None;
                self.fail(&e);
            }
        }
    }

    /// `<id>.log` becomes `.1`, `.1` becomes `.2` ... the oldest is dropped.
    fn rotate(&mut self) -> io::Result<()> {
        shift_backups(&self.path, self.backups)?;
        self.tail.clear();
        self.file = None;
        let file = open_append(&self.path, true)?;
        let meta = file.metadata()?;
        self.ident = (meta.dev(), meta.ino());
        self.file = Some(file);
        self.size = 0;
        Ok(())
    }
}

/// Renames `path` to `path.1`, `.1` to `.2` ... dropping the oldest of
/// `backups` (with 0 backups the file stays and is truncated by its opener).
pub fn shift_backups(path: &Path, backups: u32) -> io::Result<()> {
    let name = |n: u32| {
        let mut p = path.to_path_buf().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    if backups > 0 {
        let _ = fs::remove_file(name(backups));
        for n in (1..backups).rev() {
            let from = name(n);
            if from.exists() {
                fs::rename(&from, name(n + 1))?;
            }
        }
        fs::rename(path, name(1))?;
    }
    Ok(())
}

/// Caches the `YYYY-MM-DDTHH:MM:SS` part for the current second.
#[derive(Default)]
struct Stamp {
    second: u64,
    text: [u8; 24],
}

impl Stamp {
    fn now(&mut self) -> &[u8; 24] {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        if secs != self.second || self.text[0] == 0 {
            self.second = secs;
            let head = format_utc(secs);
            self.text[..19].copy_from_slice(head.as_bytes());
            self.text[19] = b'.';
            self.text[23] = b'Z';
        }
        let ms = now.subsec_millis();
        self.text[20] = b'0' + (ms / 100) as u8;
        self.text[21] = b'0' + (ms / 10 % 10) as u8;
        self.text[22] = b'0' + (ms % 10) as u8;
        &self.text
    }
}

/// The stamp a line written now gets (`2026-12-07T21:49:32.123Z`): stamps
/// of one width sort as text in time order.
pub fn stamp_now() -> [u8; 24] {
    *Stamp::default().now()
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the epoch (UTC).
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_format() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_utc(1_795_516_434), "2026-11-24T10:33:54");
    }

    #[test]
    fn rotation_shifts_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut log = LogFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            log.write_line("stdout", format!("line {i} {}", "y".repeat(40)).as_bytes());
        }
        log.flush();
        let cur = fs::read_to_string(&path).unwrap();
        let one = fs::read_to_string(dir.path().join("x.log.1")).unwrap();
        let two = fs::read_to_string(dir.path().join("x.log.2")).unwrap();
        assert!(cur.contains("line 9"), "{cur}");
        assert!(one.contains("line 8") || one.contains("line 7"), "{one}");
        assert!(!two.is_empty());
        assert!(!dir.path().join("x.log.3").exists());
        for f in [&cur, &one, &two] {
            assert!(f.len() <= 100, "{f}");
        }
    }

    #[test]
    fn a_deleted_log_is_recreated_and_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut log = LogFile::open(&path, 1 << 20, 1).unwrap();
        log.write_line("stdout", b"one");
        log.flush();
        fs::remove_file(&path).unwrap();
        log.write_line("stdout", b"two");
        log.flush();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .ends_with(" stdout two\n")
        );
        assert_eq!(log.take_change(), None);
        let victim = dir.path().join("victim");
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        log.write_line("stdout", b"three");
        log.flush();
        assert!(!victim.exists());
        let Some(Writing::Failing(msg)) = log.take_change() else {
            panic!("no failure reported");
        };
        assert!(msg.contains("symbolic link"), "{msg}");
        let err = LogFile::open(&path, 1 << 20, 1).err().unwrap().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }
}
