//! The server side of the control socket: one task per connection, one reply
//! per request line, and the waiting that turns "spawned" into "running".
//!
//! The server is generic over [`Backends`], what it needs from the
//! supervisor, so its protocol handling is tested in-process against a
//! scripted fake and runs against [`SupervisorHandle`] in the launcher.
//!
//! Waiting for an outcome happens here, not in the client: the server sees
//! every snapshot as it is published and knows when a backend has settled,
//! so the client just blocks on one reply line with no timeout of its own.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};

pub use super::backends::Backends;
use super::idle::IdleClients;
use super::protocol::{MAX_LINE, Reply, Request};
use crate::status::{ActionError, BackendStatus, Outcome, Snapshot, State};
use crate::supervisor::Ran;
use crate::verb::Verb;

/// Asks whoever owns the backends folders to read them again; the answer
/// says whether it could (`None` to [`serve`]: rescan is not supported).
pub type Rescans = tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<(), String>>>;

/// Who the server serves: the backends, and the folder rescans.
#[derive(Clone)]
struct Served<B> {
    backends: B,
    rescans: Option<Rescans>,
}

impl<B> Served<B> {
    async fn rescan(&self) -> Result<(), String> {
        let Some(rescans) = &self.rescans else {
            return Err("rescan is not supported here".to_owned());
        };
        let quitting = || "the launcher is quitting".to_owned();
        let (tx, rx) = tokio::sync::oneshot::channel();
        rescans.send(tx).await.map_err(|_| quitting())?;
        rx.await.unwrap_or_else(|_| Err(quitting()))
    }
}

/// Limits of one server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A client that sends no complete request for this long is closed.
    pub idle: Duration,
    /// Connections served at once; more are told so and closed.
    pub max_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(10),
            max_clients: 512,
        }
    }
}

/// Accepts connections forever. Per-connection failures are logged and never
/// end the loop; only dropping the future (the launcher quitting) does.
///
/// When every slot is taken, or the process is out of descriptors, the
/// longest-idle connection is closed to make room (see [`IdleClients`]);
/// only when every connection is busy with a request is a newcomer told
/// "too many clients".
pub async fn serve<B: Backends>(
    listener: &UnixListener,
    backends: B,
    rescans: Option<Rescans>,
    limits: Limits,
) {
    let control = Served { backends, rescans };
    let slots = Arc::new(Semaphore::new(limits.max_clients));
    let idle_clients = IdleClients::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: free a descriptor by closing the
                // longest-idle client, else back off instead of spinning.
                tracing::warn!(error = %e, "control socket: accept failed");
                if !idle_clients.evict_oldest() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                } else {
                    tokio::task::yield_now().await;
                }
                continue;
            }
        };
        let control = control.clone();
        let idle = limits.idle;
        let slots = slots.clone();
        let idle_clients = idle_clients.clone();
        tokio::spawn(async move {
            let permit = match slots.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    let evicted = idle_clients.evict_oldest();
                    let wait = tokio::time::timeout(EVICTION_WAIT, slots.acquire_owned());
                    match (evicted, wait.await) {
                        (true, Ok(Ok(permit))) => permit,
                        _ => {
                            let mut stream = stream;
                            let reply = Reply::error("too many clients; try again");
                            let _ = stream.write_all(reply.to_line().as_bytes()).await;
                            return;
                        }
                    }
                }
            };
            connection(stream, control, idle, &idle_clients).await;
            drop(permit);
        });
    }
}

/// How long a newcomer waits for the connection it pushed out to close.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// Serves one client until it hangs up, goes silent, is pushed out by a
/// newcomer while idle, or breaks the protocol in a way that leaves no
/// reliable line boundary.
async fn connection<B: Backends>(
    stream: UnixStream,
    control: Served<B>,
    idle: Duration,
    idle_clients: &IdleClients,
) {
    // Decided now, by who connected, not by who writes later.
    let admitted = super::admit::admit(&stream, control.backends.subscribe()).await;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        // One byte more than allowed tells an over-long line from a full one.
        let limit = (MAX_LINE + 2) as u64;
        let mut ticket = idle_clients.enter();
        let mut taken = (&mut reader).take(limit);
        let read = tokio::select! {
            read = tokio::time::timeout(idle, taken.read_until(b'\n', &mut line)) => read,
            _ = &mut ticket.evicted => {
                tracing::debug!("control socket: closing the longest-idle client for a new one");
                let reply = Reply::error("too many clients; closing this idle connection");
                let _ = write.write_all(reply.to_line().as_bytes()).await;
                return;
            }
        };
        drop(ticket);
        let n = match read {
            Err(_) => {
                tracing::debug!("control socket: client silent, closing");
                let reply = Reply::error(format!("no request for {}s; closing", idle.as_secs()));
                let _ = write.write_all(reply.to_line().as_bytes()).await;
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "control socket: read failed");
                return;
            }
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return;
        }
        let complete = line.last() == Some(&b'\n');
        if complete {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if line.len() > MAX_LINE {
            let reply = Reply::error("request line over 68 KiB");
            let _ = write.write_all(reply.to_line().as_bytes()).await;
            let _ = write.shutdown().await;
            return;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if !complete {
                return;
            }
            continue;
        }
        // A client that gave up (the CLI exits 1 when the launcher did not
        // answer in time, a SIGSTOPped launcher) has closed its side: what
        // it asked is withdrawn, never carried out later behind its back.
        if client_gone(&reader) {
            tracing::info!("control socket: the client left before its request was read; dropped");
            return;
        }
        if let Err(refusal) = &admitted {
            let reply = Reply::error(refusal.clone());
            let _ = write.write_all(reply.to_line().as_bytes()).await;
            let _ = write.shutdown().await;
            return;
        }
        let reply = match Request::parse(&line) {
            Ok(request) => {
                tracing::debug!(?request, "control socket: request");
                handle(&control, request).await
            }
            Err(reason) => Reply::error(reason),
        };
        if write.write_all(reply.to_line().as_bytes()).await.is_err() {
            return;
        }
        if !complete {
            // The client ended its last line with end of file: nothing follows.
            return;
        }
    }
}

/// The client closed its end of the connection (a hang-up, not a half-close:
/// a client may shut down its writing side and still wait for the reply).
fn client_gone(reader: &BufReader<tokio::net::unix::OwnedReadHalf>) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stream: &UnixStream = reader.get_ref().as_ref();
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        Err(_) => false,
    }
}

/// Carries out one request and builds its reply.
async fn handle<B: Backends>(served: &Served<B>, request: Request) -> Reply {
    let control = &served.backends;
    match request {
        Request::Status => {
            control.look().await;
            let snapshot = control.snapshot();
            match serde_json::to_value(&snapshot.backends) {
                Ok(data) => Reply::ok(data),
                Err(e) => Reply::error(format!("status could not be encoded: {e}")),
            }
        }
        Request::Command { id, verb } => {
            let goal = match verb {
                Verb::Start { .. } | Verb::Restart { .. } => Goal::Running,
                Verb::Stop => Goal::Stopped,
            };
            let rx = control.subscribe();
            let outcome = control.command(&id, verb).await;
            settle(control, &id, outcome, rx, goal).await
        }
        Request::Send(send) => super::talk::send(control, send).await,
        Request::Action { id, label } => {
            let rx = control.subscribe();
            match control.action(&id, &label).await {
                Ok(Ran::Opened(target)) => Reply::ok(serde_json::json!({ "opened": target })),
                Ok(Ran::Sent) => Reply::ok(serde_json::json!({ "sent": true })),
                // Answered like `berth restart`: once it runs or settles.
                Ok(Ran::Restarted(outcome)) => {
                    settle(control, &id, Ok(outcome), rx, Goal::Running).await
                }
                Err(e) => Reply::error(e.to_string()),
            }
        }
        Request::StartAll => {
            control.start_all().await;
            Reply::ok(serde_json::Value::Null)
        }
        Request::StopAll => {
            control.stop_all().await;
            Reply::ok(serde_json::Value::Null)
        }
        Request::Rescan => match served.rescan().await {
            Ok(()) => Reply::ok(serde_json::Value::Null),
            Err(e) => Reply::error(e),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Running,
    Stopped,
}

/// After a start/stop/restart was accepted, waits until the backend reaches
/// the goal or settles elsewhere, and says which in the reply.
async fn settle<B: Backends>(
    control: &B,
    id: &str,
    outcome: Result<Outcome, ActionError>,
    mut rx: watch::Receiver<Arc<Snapshot>>,
    goal: Goal,
) -> Reply {
    let note = match outcome {
        Err(e) => return Reply::error(e.to_string()),
        Ok(Outcome::Noop(reason)) => Some(reason),
        Ok(Outcome::Done) => None,
    };
    // The supervisor's stop returns once the group is gone, and a no-op
    // changes nothing: the current snapshot is the outcome.
    if goal == Goal::Stopped || note.is_some() {
        let snapshot = control.snapshot();
        return match snapshot.get(id) {
            Some(status) => status_reply(status).with_note(note),
            None => Reply::ok(serde_json::Value::Null).with_note(note),
        };
    }
    // A freshly accepted start may not be published yet; give the supervisor
    // a moment to publish before reading a process-less state as the outcome.
    // A snapshot published since we subscribed (before the command) reflects it.
    let mut seen_change = rx.has_changed().unwrap_or(true);
    loop {
        let verdict = {
            let snapshot = rx.borrow_and_update();
            match snapshot.get(id) {
                None => return Reply::error(format!("{id}: removed while starting")),
                Some(status) => judge(status),
            }
        };
        match verdict {
            Verdict::Reached(status) => return status_reply(&status),
            Verdict::Failed(_) if !seen_change => {
                match tokio::time::timeout(Duration::from_secs(1), rx.changed()).await {
                    Ok(Ok(())) => seen_change = true,
                    Ok(Err(_)) => return Reply::error(ActionError::ShutDown.to_string()),
                    Err(_) => seen_change = true,
                }
            }
            Verdict::Failed(reason) => return Reply::error(reason),
            Verdict::Pending => {
                if rx.changed().await.is_err() {
                    return Reply::error(ActionError::ShutDown.to_string());
                }
                seen_change = true;
            }
        }
    }
}

enum Verdict {
    Reached(Box<BackendStatus>),
    Pending,
    Failed(String),
}

fn judge(status: &BackendStatus) -> Verdict {
    match status.state {
        State::Running => Verdict::Reached(Box::new(status.clone())),
        // Past its readiness timeout a backend stays starting with an error.
        State::Starting if status.error.is_some() => Verdict::Failed(describe(status)),
        State::Starting => Verdict::Pending,
        _ => Verdict::Failed(describe(status)),
    }
}

fn status_reply(status: &BackendStatus) -> Reply {
    match serde_json::to_value(status) {
        Ok(data) => Reply::ok(data),
        Err(e) => Reply::error(format!("status could not be encoded: {e}")),
    }
}

/// "python: exited (code 1)", "python: integrity-failed: checksum mismatch ...".
pub fn describe(status: &BackendStatus) -> String {
    let id = status.id.as_deref().unwrap_or("?");
    let state = status.state.as_str();
    let mut text = format!(
        "{id}: {}",
        crate::human::with_exit(state, status.exit_code, status.signal.as_deref())
    );
    if let Some(err) = &status.error {
        text.push_str(": ");
        text.push_str(err);
    }
    text
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
