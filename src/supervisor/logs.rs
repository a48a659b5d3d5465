//! Backend logs: every stdout/stderr line of a backend, time-stamped, in
//! `<log_dir>/<id>.log`, rotated by size.
//!
//! One pump task per running backend owns the file: it reads both pipes with
//! large reads (a fast backend is never slowed down by a line-per-message
//! channel), writes whole lines through a `BufWriter`, and flushes at most
//! [`FLUSH_DELAY`] after the last write so `berth logs -f` sees a line
//! promptly even when the backend goes quiet. An idle pump sleeps: no timer is
//! armed while nothing is buffered. stdout lines that look like JSON objects
//! are parsed and handed to the job (status line, readiness) and to the
//! clients waiting for a reply (`berth send --wait`), each after the line is
//! flushed to the file: whoever hears of a line finds it in the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, ChildStdout};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub mod feed;
mod file;
pub mod history;

pub use file::{LogFile, Writing, format_utc, open_append, shift_backups};

/// Rotates a plain log file berth writes itself (`berth.log`) the way the
/// backend logs rotate, and opens a fresh one.
pub fn rotate_files(path: &std::path::Path, backups: u32) -> std::io::Result<std::fs::File> {
    shift_backups(path, backups)?;
    open_append(path, true)
}

/// A line longer than this is cut into pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a written line may sit in the buffer.
pub const FLUSH_DELAY: Duration = Duration::from_millis(50);
/// How often a log that cannot be written is tried again.
const RETRY: Duration = Duration::from_secs(1);
const READ_BUF: usize = 64 * 1024;

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

/// Where the stdout JSON objects of a run go.
pub struct JsonOut {
    /// The job: status line, readiness (bounded, see [`JSON_QUEUE`]).
    pub job: mpsc::Sender<JsonLine>,
    /// Set while the job matches every line against its `stdout_json`
    /// ready probe; afterwards it is handed only lines with a `status`, so
    /// a backend answering commands does not wake its job for each reply.
    pub probing: Arc<AtomicBool>,
    /// Clients waiting for a reply (`berth send --wait`); dropped for a
    /// listener that falls behind, never waited for.
    pub replies: tokio::sync::broadcast::Sender<Arc<JsonLine>>,
}

/// The last non-blank stderr line of a run (v2 `last_stderr`): written by
/// the pump at flush time, read by the job when the run ends. A lock held
/// for one string swap, never across an await.
#[derive(Debug, Clone, Default)]
pub struct StderrTail(Arc<std::sync::Mutex<Option<String>>>);

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
    json: &'a JsonOut,
    report: &'a Report,
    tail: &'a StderrTail,
    /// The last non-blank stderr line, handed to `tail` only when the log
    /// is flushed: a backend that floods stderr costs a copy per line, not
    /// a lock and an allocation.
    last_err: Vec<u8>,
    err_dirty: bool,
    /// The followers' side (`logs` with follow).
    feed: &'a mut feed::FeedWriter,
}

/// Tells the job the log's current error (`None`: it writes again), for
/// `status`.
pub type Report = Box<dyn Fn(Option<String>) + Send + Sync>;

impl Sink<'_> {
    /// Says once when writing starts failing and once when it resumes.
    fn health(&mut self) {
        match self.log.take_change() {
            Some(Writing::Failing(msg)) => {
                tracing::warn!(backend = %self.id, "{msg}; its lines are dropped until it can be written");
                (self.report)(Some(msg));
            }
            Some(Writing::Resumed { lost }) => {
                tracing::info!(backend = %self.id, lost, "backend log writable again");
                (self.report)(None);
            }
            None => {}
        }
    }

    fn flush(&mut self) {
        self.log.flush();
        self.health();
        let (dev, ino, size) = self.log.written_end();
        self.feed.flushed(feed::Position { dev, ino, size });
        if self.err_dirty {
            self.tail.set(&self.last_err);
            self.err_dirty = false;
        }
    }

    fn line(&mut self, stream: &'static str, text: &[u8]) {
        self.log.write_line(stream, text);
        self.feed.line(stream == "stderr", text);
        self.health();
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
            && let Ok(mut obj) = serde_json::from_slice::<JsonLine>(text)
        {
            // The line is in the file before anyone hears of it: when
            // `berth start` reports running, the ready line is in the log.
            // (A failing log is retried on its own clock, not per line.)
            if !self.log.failing() {
                self.flush();
            }
            let listened = self.json.replies.receiver_count() > 0;
            let for_job = self.json.probing.load(Ordering::Acquire) || obj.contains_key("status");
            // The job hears first: of two tasks woken in a row, tokio runs
            // the last one next on this thread and leaves the first to
            // another, and the client waiting for a reply is the one in a
            // hurry.
            if for_job {
                let line = if listened {
                    obj.clone()
                } else {
                    std::mem::take(&mut obj)
                };
                let _ = self.json.job.try_send(line);
            }
            if listened {
                let _ = self.json.replies.send(Arc::new(obj));
            }
        }
    }
}

/// A run's log pump. It ends with its run: [`Pump::end`] once the group is
/// gone, so an escaped process (setsid) that still holds the pipes writes
/// into nothing, instead of keeping an old pump writing into (and rotating)
/// the log of a later run and berth's descriptors growing at each restart.
pub struct Pump {
    task: tokio::task::JoinHandle<()>,
    finish: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Pump {
    /// Starts copying both pipes into `log` (and to the run's followers).
    #[expect(
        clippy::too_many_arguments,
        reason = "the pump's inputs, each owned by the task; a struct would only rename them"
    )]
    pub fn spawn(
        id: String,
        stdout: ChildStdout,
        stderr: ChildStderr,
        log: LogFile,
        json: JsonOut,
        report: Report,
        tail: StderrTail,
        feed: feed::FeedWriter,
    ) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel();
        Self {
            task: tokio::spawn(pump(id, stdout, stderr, log, json, report, tail, feed, rx)),
            finish: Some(tx),
        }
    }

    /// A pump for a run without pipes.
    pub fn none() -> Self {
        Self {
            task: tokio::spawn(async {}),
            finish: None,
        }
    }

    /// Called once the run's group is gone: everything the group wrote is in
    /// the pipes; the pump writes it, drops the pipes and ends. Waits at most
    /// `limit` for that, then aborts it.
    pub async fn end(mut self, limit: Duration) {
        if let Some(tx) = self.finish.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(limit, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// Reads what `fd` holds right now, without waiting (tokio made it
/// non-blocking), into `lines`.
fn drain_now(fd: impl std::os::fd::AsFd, buf: &mut [u8], mut feed: impl FnMut(&[u8])) {
    let fd = fd.as_fd();
    while let Ok(n @ 1..) = nix::unistd::read(fd, buf) {
        feed(&buf[..n]);
    }
}

/// Copies both pipes into `log` until both reach end of file, or until told
/// to finish (then it takes what the pipes hold and stops).
#[expect(
    clippy::too_many_arguments,
    reason = "the pump's inputs, each owned by the task; a struct would only rename them"
)]
async fn pump(
    id: String,
    mut stdout: ChildStdout,
    mut stderr: ChildStderr,
    mut log: LogFile,
    json: JsonOut,
    report: Report,
    tail: StderrTail,
    mut feed: feed::FeedWriter,
    mut finish: tokio::sync::oneshot::Receiver<()>,
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
        report: &report,
        tail: &tail,
        last_err: Vec::new(),
        err_dirty: false,
        feed: &mut feed,
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
                // While writing fails, try again every second.
                flush_at = sink.log.failing().then(|| Instant::now() + RETRY);
                continue;
            }
            _ = &mut finish => {
                if !odone {
                    drain_now(&stdout, &mut obuf, |d| olines.feed(d, |l| sink.line("stdout", l)));
                    olines.finish(|l| sink.line("stdout", l));
                }
                if !edone {
                    drain_now(&stderr, &mut ebuf, |d| elines.feed(d, |l| sink.line("stderr", l)));
                    elines.finish(|l| sink.line("stderr", l));
                }
                break;
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
}
