//! Backend logs: every stdout/stderr line of a backend, time-stamped, in
//! `<log_dir>/<id>.log`, rotated by size.
//!
//! One pump task per running backend owns the file: it reads both pipes with
//! large reads (a fast backend is never slowed down by a line-per-message
//! channel), writes whole lines through a `BufWriter`, and flushes at most
//! [`FLUSH_DELAY`] after the last write so `berth logs -f` sees a line
//! promptly even when the backend goes quiet. An idle pump sleeps: no timer is
//! armed while nothing is buffered. stdout lines that look like JSON objects
//! are parsed and handed to the job (status line, readiness).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, ChildStdout};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A line longer than this is cut into pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a written line may sit in the buffer.
pub const FLUSH_DELAY: Duration = Duration::from_millis(50);
const READ_BUF: usize = 64 * 1024;

/// A size-rotated log file.
pub struct LogFile {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max_size: u64,
    backups: u32,
    stamp: Stamp,
}

impl LogFile {
    /// Opens (appends to) `path`, creating its folder.
    pub fn open(path: &Path, max_size: u64, backups: u32) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
            size,
            max_size,
            backups,
            stamp: Stamp::default(),
        })
    }

    /// Writes `<time> <stream> <text>\n`, rotating first if the line would
    /// push the file past its maximum size.
    pub fn write_line(&mut self, stream: &str, text: &[u8]) -> io::Result<()> {
        let len = (24 + 1 + stream.len() + 1 + text.len() + 1) as u64;
        if self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        let stamp = self.stamp.now();
        self.out.write_all(stamp)?;
        self.out.write_all(b" ")?;
        self.out.write_all(stream.as_bytes())?;
        self.out.write_all(b" ")?;
        self.out.write_all(text)?;
        self.out.write_all(b"\n")?;
        self.size += len;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// `<id>.log` becomes `.1`, `.1` becomes `.2` ... the oldest is dropped.
    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let name = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.backups > 0 {
            let _ = fs::remove_file(name(self.backups));
            for n in (1..self.backups).rev() {
                let from = name(n);
                if from.exists() {
                    fs::rename(&from, name(n + 1))?;
                }
            }
            fs::rename(&self.path, name(1))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.out = BufWriter::with_capacity(64 * 1024, file);
        self.size = 0;
        Ok(())
    }
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

/// Splits a byte stream into lines, keeping the unfinished tail.
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Calls `emit` for every complete line in `data` (and for each
    /// [`MAX_LINE`] piece of an over-long one).
    fn feed(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..i];
            if self.pending.is_empty() {
                emit(trim_cr(line));
            } else {
                self.pending.extend_from_slice(line);
                emit(trim_cr(&self.pending));
                self.pending.clear();
            }
            rest = &rest[i + 1..];
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= MAX_LINE {
            emit(&self.pending[..MAX_LINE]);
            self.pending.drain(..MAX_LINE);
        }
    }

    /// The partial last line, at end of stream.
    fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(trim_cr(&self.pending));
            self.pending.clear();
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// How many stdout JSON lines may wait for the job; beyond that (a job busy
/// stopping, a backend printing JSON in a loop) lines are still logged but
/// not parsed for status, so memory stays bounded.
pub const JSON_QUEUE: usize = 1024;

/// A stdout line that is a JSON object, for the job.
pub type JsonLine = serde_json::Map<String, serde_json::Value>;

/// The last non-blank stderr line of a run (v2 `last_stderr`): written by
/// the pump, read by the job when the run ends. A lock held for one string
/// swap, never across an await.
#[derive(Debug, Clone, Default)]
pub struct StderrTail(std::sync::Arc<std::sync::Mutex<Option<String>>>);

/// At most this many bytes of a stderr line are kept for `last_stderr` (the
/// whole line stays in the log).
pub const TAIL_MAX: usize = 4096;

impl StderrTail {
    fn set(&self, text: &[u8]) {
        let mut line = String::from_utf8_lossy(&text[..text.len().min(TAIL_MAX)]).into_owned();
        // A cut in the middle of a UTF-8 sequence leaves one U+FFFD: drop it.
        if text.len() > TAIL_MAX && line.ends_with('\u{fffd}') {
            line.pop();
        }
        let line = line.trim_end().to_owned();
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(line);
    }

    /// The last line so far.
    pub fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Where a pump sends what it writes.
struct Sink<'a> {
    log: &'a mut LogFile,
    id: &'a str,
    json: &'a mpsc::Sender<JsonLine>,
    tail: &'a StderrTail,
    /// The last non-blank stderr line, handed to `tail` only when the log
    /// is flushed: a backend that floods stderr costs a copy per line, not
    /// a lock and an allocation.
    last_err: Vec<u8>,
    err_dirty: bool,
    failed: bool,
}

impl Sink<'_> {
    fn flush(&mut self) {
        let _ = self.log.flush();
        if self.err_dirty {
            self.tail.set(&self.last_err);
            self.err_dirty = false;
        }
    }

    fn line(&mut self, stream: &'static str, text: &[u8]) {
        if !self.failed
            && let Err(e) = self.log.write_line(stream, text)
        {
            tracing::warn!(backend = %self.id, error = %e, "cannot write backend log");
            self.failed = true;
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(backend = %self.id, stream, "{}", String::from_utf8_lossy(text));
        }
        if stream == "stderr" && !text.iter().all(u8::is_ascii_whitespace) {
            self.last_err.clear();
            self.last_err
                .extend_from_slice(&text[..text.len().min(TAIL_MAX + 4)]);
            self.err_dirty = true;
        }
        if stream == "stdout"
            && text.first() == Some(&b'{')
            && let Ok(obj) = serde_json::from_slice::<JsonLine>(text)
        {
            let _ = self.json.try_send(obj);
        }
    }
}

/// Copies both pipes into `log` until both reach end of file.
pub async fn pump(
    id: String,
    mut stdout: ChildStdout,
    mut stderr: ChildStderr,
    mut log: LogFile,
    json: mpsc::Sender<JsonLine>,
    tail: StderrTail,
) {
    let mut obuf = vec![0u8; READ_BUF];
    let mut ebuf = vec![0u8; READ_BUF];
    let (mut olines, mut elines) = (Lines::default(), Lines::default());
    let (mut odone, mut edone) = (false, false);
    let mut flush_at: Option<Instant> = None;
    let mut sink = Sink {
        log: &mut log,
        id: &id,
        json: &json,
        tail: &tail,
        last_err: Vec::new(),
        err_dirty: false,
        failed: false,
    };
    while !(odone && edone) {
        tokio::select! {
            r = stdout.read(&mut obuf), if !odone => match r {
                Ok(n) if n > 0 => olines.feed(&obuf[..n], |l| sink.line("stdout", l)),
                _ => { odone = true; olines.finish(|l| sink.line("stdout", l)); }
            },
            r = stderr.read(&mut ebuf), if !edone => match r {
                Ok(n) if n > 0 => elines.feed(&ebuf[..n], |l| sink.line("stderr", l)),
                _ => { edone = true; elines.finish(|l| sink.line("stderr", l)); }
            },
            _ = crate::timer::sleep_until(flush_at), if flush_at.is_some() => {
                sink.flush();
                flush_at = None;
                continue;
            }
        }
        if flush_at.is_none() {
            flush_at = Some(Instant::now() + FLUSH_DELAY);
        }
    }
    sink.flush();
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
    fn lines_split_and_cap() {
        let mut l = Lines::default();
        let mut out: Vec<Vec<u8>> = Vec::new();
        l.feed(b"a\r\nb", |x| out.push(x.to_vec()));
        l.feed(b"c\nd", |x| out.push(x.to_vec()));
        l.finish(|x| out.push(x.to_vec()));
        assert_eq!(out, vec![b"a".to_vec(), b"bc".to_vec(), b"d".to_vec()]);
        out.clear();
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        l.feed(&long, |x| out.push(x.to_vec()));
        l.finish(|x| out.push(x.to_vec()));
        assert_eq!(
            out.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_LINE, MAX_LINE, 5]
        );
    }

    #[test]
    fn stderr_tail_keeps_the_line_cut_to_its_limit() {
        let tail = StderrTail::default();
        assert_eq!(tail.get(), None);
        tail.set(b"Traceback (most recent call last):");
        tail.set(b"ValueError: boom  ");
        assert_eq!(tail.get().as_deref(), Some("ValueError: boom"));
        let mut long = vec![b'a'; TAIL_MAX - 1];
        long.extend_from_slice("é and more".as_bytes());
        tail.set(&long);
        let kept = tail.get().unwrap();
        assert_eq!(kept.len(), TAIL_MAX - 1, "a cut character is dropped");
    }

    #[test]
    fn rotation_shifts_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut log = LogFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            log.write_line("stdout", format!("line {i} {}", "y".repeat(40)).as_bytes())
                .unwrap();
        }
        log.flush().unwrap();
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
}
