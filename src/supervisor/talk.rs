//! Talking to a running backend: its stdin queue and its stdout JSON replies.
//!
//! A backend that never reads its stdin must not block anyone: the job, the
//! control socket, the tray and the other backends. So a send never waits
//! for the pipe: when nothing is queued it writes what the pipe takes at
//! once (a non-blocking write: the common case costs no task switch), and
//! the rest goes to a bounded queue (1 MiB) that one writer task per run
//! drains into the pipe; when the queue is full the send fails at once. The same link fans stdout JSON objects out to whoever
//! waits for a reply (`berth send --wait`): the log pump hands them to a
//! broadcast channel, which drops the oldest lines for a slow listener instead
//! of holding up the pump.
//!
//! A [`Link`] belongs to one `job::state::Run` and ends with it: dropping it
//! ends the writer task (also one stuck on a pipe nobody reads), which closes
//! berth's end of the pipe. The job hands the control socket a [`Talker`]
//! while the run accepts lines, so `berth send` writes without waiting for
//! the job.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use nix::errno::Errno;

use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::logs::JsonLine;
use crate::status::StdinError;

/// Bytes a backend's outgoing queue may hold before sends are refused.
pub const STDIN_QUEUE_BYTES: usize = 1024 * 1024;

/// Stdout JSON lines a waiting client may fall behind by.
const STDOUT_FANOUT: usize = 256;

/// Stdout JSON objects of one run, for the clients waiting for a reply.
pub type Replies = broadcast::Receiver<Arc<JsonLine>>;

/// One run's stdin queue and stdout fan-out.
pub struct Link {
    pipe: Arc<Pipe>,
    writer: Option<JoinHandle<()>>,
}

/// What a sender needs of a link, shared between the link and its
/// [`Talker`]s.
struct Pipe {
    id: String,
    queue: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    replies: broadcast::Sender<Arc<JsonLine>>,
    /// A second descriptor of the pipe for the direct write, closed with the
    /// link (never a number the writer task may have closed and the kernel
    /// reused). Non-blocking, like tokio's own.
    direct: Option<OwnedFd>,
    /// Held for one send: the direct write and the queue must not
    /// interleave two senders' lines. Never held across an await.
    order: Mutex<()>,
}

/// A handle on a running backend's link for the control socket's `send`,
/// so a line goes into the pipe without a round trip through the job task
/// (two task switches, often across threads: they were most of what
/// `berth send --wait` added to the backend's own reply time). It does not
/// keep the link alive: once the run ends, berth's end of the pipe closes
/// as before and the talker answers `None`.
#[derive(Clone, Default)]
pub struct Talker(Weak<Pipe>);

impl Talker {
    /// Writes or queues `line` like [`Link::send`], subscribing first when
    /// `wait`. `None`: the run is over (ask the job why).
    pub fn send(&self, line: &str, wait: bool) -> Option<Result<Option<Replies>, StdinError>> {
        let pipe = self.0.upgrade()?;
        let replies = wait.then(|| pipe.replies.subscribe());
        Some(pipe.send(line).map(|()| replies))
    }
}

impl Link {
    /// Starts the writer task that owns `stdin` until the run ends.
    pub fn start(id: &str, stdin: Option<ChildStdin>) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let (replies, _) = broadcast::channel(STDOUT_FANOUT);
        let direct = stdin
            .as_ref()
            .and_then(|s| s.as_fd().try_clone_to_owned().ok())
            .filter(nonblocking);
        let writer =
            stdin.map(|stdin| tokio::spawn(write_loop(id.to_owned(), stdin, rx, queued.clone())));
        Self {
            pipe: Arc::new(Pipe {
                id: id.to_owned(),
                queue,
                queued,
                replies,
                direct,
                order: Mutex::new(()),
            }),
            writer,
        }
    }

    /// Writes or queues `line` (a newline is appended) without ever
    /// waiting.
    pub fn send(&self, line: &str) -> Result<(), StdinError> {
        self.pipe.send(line)
    }

    /// Stdout JSON objects from now on.
    pub fn subscribe(&self) -> Replies {
        self.pipe.replies.subscribe()
    }

    /// The sending side, for the log pump.
    pub fn replies(&self) -> broadcast::Sender<Arc<JsonLine>> {
        self.pipe.replies.clone()
    }

    /// A handle for senders outside the job (see [`Talker`]).
    pub fn talker(&self) -> Talker {
        Talker(Arc::downgrade(&self.pipe))
    }
}

impl Pipe {
    fn send(&self, line: &str) -> Result<(), StdinError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let _order = self
            .order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Nothing queued means nothing in flight either (the writer counts
        // a line down only once it is in the pipe): writing now keeps the
        // order of the lines.
        if let Some(fd) = self.direct.as_ref()
            && self.queued.load(Ordering::Acquire) == 0
        {
            match nix::unistd::write(fd, &bytes) {
                Ok(n) if n == bytes.len() => return Ok(()),
                Ok(n) => drop(bytes.drain(..n)),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => return Err(StdinError::Closed(self.id.clone())),
            }
        }
        let len = bytes.len();
        let reserved = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + len <= STDIN_QUEUE_BYTES).then_some(q + len)
            });
        if reserved.is_err() {
            return Err(StdinError::Full(self.id.clone()));
        }
        self.queue.send(bytes).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            StdinError::Closed(self.id.clone())
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
    }
}

/// Sets `O_NONBLOCK` on the pipe (shared with tokio's descriptor, which has
/// it already); false when that fails, and then nothing writes directly.
fn nonblocking(fd: &OwnedFd) -> bool {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) else {
        return false;
    };
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).is_ok()
}

/// Writes queued lines into the pipe. A backend that closed its stdin (or
/// died) ends the loop; later sends are refused as closed.
async fn write_loop(
    id: String,
    mut stdin: ChildStdin,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(bytes) = rx.recv().await {
        let result = stdin.write_all(&bytes).await;
        queued.fetch_sub(bytes.len(), Ordering::AcqRel);
        if let Err(e) = result {
            tracing::debug!(backend = %id, error = %e, "stdin closed by the backend");
            return;
        }
    }
}

/// `KEY=VALUE` of `--wait`: VALUE is compared with the JSON value rendered as
/// text (strings without quotes; `7`, `true`, `null`, `{"a":1}` otherwise).
pub fn matches(line: &JsonLine, key: &str, value: &str) -> bool {
    match line.get(key) {
        Some(serde_json::Value::String(s)) => s == value,
        Some(other) => {
            // As rendered text; `Value == str` would compare as a JSON string.
            let text = other.to_string();
            text == value
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_values_compare_as_text() {
        let line: JsonLine =
            serde_json::from_str(r#"{"id": 7, "reply": "pong", "ok": true, "o": {"a": 1}}"#)
                .unwrap();
        assert!(matches(&line, "id", "7"));
        assert!(matches(&line, "reply", "pong"));
        assert!(matches(&line, "ok", "true"));
        assert!(matches(&line, "o", r#"{"a":1}"#));
        assert!(!matches(&line, "reply", "\"pong\""));
        assert!(!matches(&line, "id", "8"));
        assert!(!matches(&line, "nope", "7"));
    }

    #[test]
    fn ready_port_of_tcp_and_http_probes() {
        use crate::manifest::Probe;
        assert_eq!(Probe::Tcp("127.0.0.1:5000".into()).port(), Some(5000));
        assert_eq!(
            Probe::Http("http://127.0.0.1:8080/api/status".into()).port(),
            Some(8080)
        );
        assert_eq!(Probe::Http("http://localhost/x".into()).port(), Some(80));
        assert_eq!(Probe::StdoutJson(JsonLine::new()).port(), None);
    }

    /// A real pipe to a real process that never reads its stdin: sends are
    /// accepted until the queue and the pipe are full, then refused, and no
    /// send ever waits (the test runs on one thread: a send that waited for
    /// the pipe would hang it).
    #[tokio::test]
    async fn a_backend_that_never_reads_fills_the_queue_then_sends_are_refused() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let link = Link::start("sleepy", child.stdin.take());
        let line = "x".repeat(1023);
        let mut sent = 0usize;
        let err = loop {
            match link.send(&line) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            // Lets the writer task move lines into the pipe.
            tokio::task::yield_now().await;
            assert!(sent < 10_000, "never refused");
        };
        assert_eq!(err.to_string(), "stdin of sleepy is full (not reading)");
        // The pipe holds 64 KiB, the queue 1 MiB: about 1088 lines of 1 KiB.
        assert!((1024..1200).contains(&sent), "{sent}");
        let _ = child.kill().await;
    }

    /// Lines written directly and lines that waited in the queue reach the
    /// backend in the order they were sent (a real `cat`, slower than the
    /// sender, so the pipe fills and drains many times).
    #[tokio::test]
    async fn direct_and_queued_lines_keep_their_order() {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let link = Link::start("cat", child.stdin.take());
        let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let pad = "p".repeat(700);
        let total = 3000;
        let (mut sent, mut read) = (0, 0);
        while read < total {
            if sent < total && link.send(&format!("{sent} {pad}")).is_ok() {
                sent += 1;
                continue;
            }
            let line = out.next_line().await.unwrap().unwrap();
            assert_eq!(line, format!("{read} {pad}"));
            read += 1;
        }
        let _ = child.kill().await;
    }

    /// A backend that closed its stdin: the writer ends and later sends say so.
    #[tokio::test]
    async fn sends_to_a_closed_stdin_are_refused_as_closed() {
        let mut child = tokio::process::Command::new("true")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        child.wait().await.unwrap();
        let link = Link::start("gone", stdin);
        let mut last = Ok(());
        for _ in 0..100 {
            last = link.send("{}");
            if last.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(last, Err(StdinError::Closed("gone".into())));
    }
}
