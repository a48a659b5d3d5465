//! The server side of the control socket: one task per connection, one reply
//! per request line, and the waiting that turns "spawned" into "running".
//!
//! The server is generic over [`Backends`], what it needs from the
//! supervisor, so its protocol handling is tested in-process against a
//! scripted fake and runs against [`SupervisorHandle`](crate::supervisor::SupervisorHandle) in the launcher.
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
use super::log_stream::After;
use super::protocol::{
    Acted, ActionReply, CommandReply, MAX_LINE, NullReply, Request, StatusReply, Version,
    VersionReply, error_line,
};
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
        match &self.rescans {
            Some(rescans) => ask_rescan(rescans).await,
            None => Err("rescan is not supported here".to_owned()),
        }
    }
}

/// Asks for a rescan and waits for its answer.
pub(crate) async fn ask_rescan(rescans: &Rescans) -> Result<(), String> {
    let quitting = || "the launcher is quitting".to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rescans.send(tx).await.map_err(|_| quitting())?;
    rx.await.unwrap_or_else(|_| Err(quitting()))
}

/// Limits on one server's clients.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// A client that sends no complete request for this long is closed.
    pub idle: Duration,
    /// Connections served at once; more are told so and closed.
    pub max_clients: usize,
}

impl Default for ClientLimits {
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
    limits: ClientLimits,
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
                            let _ = stream
                                .write_all(error_line("too many clients; try again").as_bytes())
                                .await;
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
                let _ = write.write_all(error_line("too many clients; closing this idle connection").as_bytes()).await;
                return;
            }
        };
        drop(ticket);
        let n = match read {
            Err(_) => {
                tracing::debug!("control socket: client silent, closing");
                let _ = write
                    .write_all(
                        error_line(format!("no request for {}s; closing", idle.as_secs()))
                            .as_bytes(),
                    )
                    .await;
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
            let _ = write
                .write_all(error_line("request line over 68 KiB").as_bytes())
                .await;
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
            let _ = write
                .write_all(error_line(refusal.clone()).as_bytes())
                .await;
            let _ = write.shutdown().await;
            return;
        }
        let request = match Request::parse(&line) {
            // The connection is the stream from now on.
            Ok(Request::Watch) => {
                super::watch_stream::watch(&control.backends, reader, write).await;
                return;
            }
            Ok(Request::Logs(logs)) => {
                let after =
                    super::log_stream::logs(&control.backends, logs, &mut reader, &mut write).await;
                match after {
                    After::Next if complete => continue,
                    _ => return,
                }
            }
            other => other,
        };
        let reply = match request {
            Ok(request) => {
                tracing::debug!(?request, "control socket: request");
                handle(&control, request).await
            }
            Err(reason) => error_line(reason),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
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

/// Carries out one request and builds its reply line.
async fn handle<B: Backends>(served: &Served<B>, request: Request) -> String {
    let control = &served.backends;
    match request {
        Request::Status => {
            control.look().await;
            StatusReply::ok(control.snapshot().backends.clone()).to_line()
        }
        Request::Command { id, verb } => {
            let goal = match verb {
                Verb::Start { .. } | Verb::Restart { .. } => Goal::Running,
                Verb::Stop => Goal::Stopped,
                // The job answers once the update is over, however long
                // the download takes (the client probes meanwhile).
                Verb::CheckUpdate | Verb::Update => Goal::Answered,
                // The job answers once the kept version is in force and,
                // if the backend was running, launched again: then it is
                // answered like a start.
                Verb::Rollback => Goal::Restored,
            };
            let rx = control.subscribe();
            let outcome = control.command(&id, verb).await;
            settle(control, &id, outcome, rx, goal).await.to_line()
        }
        Request::Send(send) => super::talk::reply(control, send).await.to_line(),
        Request::Action { id, label } => {
            let rx = control.subscribe();
            let reply = match control.action(&id, &label).await {
                Ok(Ran::Opened(opened)) => ActionReply::ok(Acted::Opened { opened }),
                Ok(Ran::Sent) => ActionReply::ok(Acted::Sent { sent: true }),
                // Answered like `berth restart`: once it runs or settles.
                Ok(Ran::Restarted(outcome)) => {
                    let mut settled = settle(control, &id, Ok(outcome), rx, Goal::Running).await;
                    let data = settled
                        .data
                        .take()
                        .map(|s| Acted::Restarted(s.map(Box::new)));
                    ActionReply {
                        data,
                        ..settled.without_data()
                    }
                }
                Err(e) => ActionReply::error(e.to_string()),
            };
            reply.to_line()
        }
        Request::StartAll => {
            control.start_all().await;
            NullReply::ok(()).to_line()
        }
        Request::StopAll => {
            control.stop_all().await;
            NullReply::ok(()).to_line()
        }
        Request::Rescan => match served.rescan().await {
            Ok(()) => NullReply::ok(()).to_line(),
            Err(e) => error_line(e),
        },
        Request::Version => VersionReply::ok(Version::current()).to_line(),
        // Streams: served by the connection itself (`connection`).
        Request::Watch | Request::Logs(_) => error_line("a stream is served by its connection"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Running,
    Stopped,
    /// The job's answer is the outcome (the update verbs).
    Answered,
    /// The job's answer, then, if it started the backend again, running
    /// or settled elsewhere (`rollback`).
    Restored,
}

/// After a start/stop/restart was accepted, waits until the backend reaches
/// the goal or settles elsewhere, and says which in the reply.
async fn settle<B: Backends>(
    control: &B,
    id: &str,
    outcome: Result<Outcome, ActionError>,
    rx: watch::Receiver<Arc<Snapshot>>,
    goal: Goal,
) -> CommandReply {
    let note = match outcome {
        Err(e) => return CommandReply::error(e.to_string()),
        Ok(Outcome::Reached(status)) => return status_reply(&status),
        Ok(Outcome::Noop(reason)) => Some(reason),
        Ok(Outcome::Done) => None,
        Ok(Outcome::DoneWith(note)) => {
            // A stop says what it stopped first, a rollback what it
            // returned to: the current snapshot is the outcome, unless the
            // rollback launched the kept version again.
            let snapshot = control.snapshot();
            if goal == Goal::Restored
                && snapshot.get(id).is_some_and(|s| s.state == State::Starting)
            {
                return wait_running(id, rx, true).await.with_note(Some(note));
            }
            return match snapshot.get(id) {
                Some(status) => status_reply(status).with_note(Some(note)),
                None => CommandReply::ok(None).with_note(Some(note)),
            };
        }
    };
    // The supervisor's stop returns once the group is gone, the update
    // verbs once they are over, and a no-op changes nothing: the current
    // snapshot is the outcome.
    if goal != Goal::Running || note.is_some() {
        let snapshot = control.snapshot();
        return match snapshot.get(id) {
            Some(status) => status_reply(status).with_note(note),
            None => CommandReply::ok(None).with_note(note),
        };
    }
    wait_running(id, rx, false).await
}

/// Waits until `id` is running or has settled elsewhere. A freshly
/// accepted start may not be published yet: unless `seen` says the start
/// is already in a snapshot, the supervisor gets a moment to publish before
/// a process-less state is read as the outcome. A snapshot published since
/// the caller subscribed (before the command) reflects it.
async fn wait_running(
    id: &str,
    mut rx: watch::Receiver<Arc<Snapshot>>,
    seen: bool,
) -> CommandReply {
    let mut seen_change = seen || rx.has_changed().unwrap_or(true);
    loop {
        let verdict = {
            let snapshot = rx.borrow_and_update();
            match snapshot.get(id) {
                None => return CommandReply::error(format!("{id}: removed while starting")),
                Some(status) => judge(status),
            }
        };
        match verdict {
            StartProgress::Reached(status) => return status_reply(&status),
            StartProgress::Failed(_) if !seen_change => {
                match tokio::time::timeout(Duration::from_secs(1), rx.changed()).await {
                    Ok(Ok(())) => seen_change = true,
                    Ok(Err(_)) => return CommandReply::error(ActionError::ShutDown.to_string()),
                    Err(_) => seen_change = true,
                }
            }
            StartProgress::Failed(reason) => return CommandReply::error(reason),
            StartProgress::Pending => {
                if rx.changed().await.is_err() {
                    return CommandReply::error(ActionError::ShutDown.to_string());
                }
                seen_change = true;
            }
        }
    }
}

enum StartProgress {
    Reached(Box<BackendStatus>),
    Pending,
    Failed(String),
}

fn judge(status: &BackendStatus) -> StartProgress {
    match status.state {
        State::Running => StartProgress::Reached(Box::new(status.clone())),
        // Past its readiness timeout a backend stays starting with an error.
        State::Starting if status.error.is_some() => StartProgress::Failed(describe(status)),
        State::Starting => StartProgress::Pending,
        _ => StartProgress::Failed(describe(status)),
    }
}

fn status_reply(status: &BackendStatus) -> CommandReply {
    CommandReply::ok(Some(status.clone()))
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
