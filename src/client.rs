//! A client for a running launcher (`berth run`, or an embedded one that
//! serves its control socket): what `berth status`, `start`, `send` ...
//! use, typed, for programs (a Tauri app that runs berth as a sidecar, a
//! test, a script written in Rust).
//!
//! [`Client`] names a launcher by its app name ([`Client::for_app`], the
//! socket `berth --app NAME` finds) or its socket path ([`Client::at`]).
//! Each call opens a connection, sends one request of
//! [`crate::control::protocol`] and reads its typed reply; a refusal is
//! [`ClientError::Refused`] with the launcher's one-line message.
//! Calls block: from async code, run them on a blocking thread
//! (`tokio::task::spawn_blocking`).
//!
//! ```no_run
//! # fn demo() -> Result<(), berth::ClientError> {
//! use berth::{AppName, Client};
//!
//! let app: AppName = "my-app".parse().expect("a valid name");
//! let client = Client::for_app(&app);
//! let started = client.start("python", &[])?;
//! println!("{:?}", started.data.map(|s| s.state));
//! for backend in client.status()? {
//!     println!("{} {}", backend.file, backend.state);
//! }
//! # Ok(()) }
//! ```
//!
//! Every step has a bound, so a frozen launcher (SIGSTOPped, deadlocked)
//! never hangs the caller: connecting and sending take at most
//! [`SEND_TIMEOUT`], a `status` reply comes within [`STATUS_TIMEOUT`].
//! Replies to start/stop/restart may rightly take as long as a backend's
//! readiness or stop timeout, which the client does not know; so they are
//! waited for as long as the launcher keeps answering: after every
//! [`PROBE_EVERY`] of silence the client asks for `status` on a second
//! connection, and gives up when that goes unanswered too.

// The API apps use: every public item says what it is for.
#![warn(missing_docs)]

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
use nix::sys::time::TimeVal;
use serde::de::DeserializeOwned;

use crate::control::protocol::{Acted, Event, Reply, Request, SendRequest, Version, Wait};
use crate::control::socket;
use crate::control::talk::JsonObject;
use crate::paths::AppName;
use crate::status::BackendStatus;
use crate::verb::Verb;

/// Connecting (a full backlog blocks) and writing a request.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// A status reply: the launcher answers it at once from its snapshot.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence after which a waiting start/stop/restart checks the launcher.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Why a request got no answer it asked for, in one line. Every variant
/// but [`ClientError::Refused`] names the socket.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens on the socket (no file, or a stale one).
    #[error("no launcher running on {} (start one with `berth run`)", path.display())]
    NoLauncher {
        /// The socket.
        path: PathBuf,
    },
    /// The socket path cannot be used (too long, a folder that is not ours).
    #[error(transparent)]
    BadPath(#[from] socket::SocketError),
    /// Connecting failed for another reason than "no launcher".
    #[error("cannot connect to {}: {source}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("talking to the launcher on {}: {source}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The launcher accepted the connection but does not answer.
    #[error("the launcher on {} did not answer within {}s (is it stopped or frozen?)", path.display(), waited.as_secs())]
    NotAnswering {
        /// The socket.
        path: PathBuf,
        /// How long the client waited.
        waited: Duration,
    },
    /// The launcher hung up before its reply.
    #[error("the launcher on {} closed the connection without replying", path.display())]
    NoReply {
        /// The socket.
        path: PathBuf,
    },
    /// A line that is not the request's reply (quoted in `reason`).
    #[error("the launcher on {} sent a reply berth cannot read: {reason}", path.display())]
    BadReply {
        /// The socket.
        path: PathBuf,
        /// The parse error and the line.
        reason: String,
    },
    /// The launcher refused the request or the backend did not reach the
    /// goal: its one-line message (`no backend with id "x"`, `python:
    /// exited (code 1)`).
    #[error("{0}")]
    Refused(String),
}

/// One connection to the launcher.
pub(crate) struct Connection {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// `connect(2)` bounded by [`SEND_TIMEOUT`]: on a Unix socket a blocking
/// connect waits for room in the listener's backlog as long as SO_SNDTIMEO
/// allows, and std's `UnixStream::connect` sets none.
fn connect_bounded(path: &Path) -> io::Result<UnixStream> {
    let fd: OwnedFd = sock::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let limit = TimeVal::new(SEND_TIMEOUT.as_secs() as _, 0);
    sock::setsockopt(&fd, sockopt::SendTimeout, &limit)?;
    let addr = UnixAddr::new(path)?;
    use std::os::fd::AsRawFd;
    sock::connect(fd.as_raw_fd(), &addr)?;
    Ok(UnixStream::from(fd))
}

impl Connection {
    /// Connects, telling "no launcher" apart from every other failure.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        socket::check_length(path).map_err(socket::SocketError::from)?;
        let stream = connect_bounded(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NoLauncher {
                path: path.to_path_buf(),
            },
            _ if timed_out(&source) => ClientError::NotAnswering {
                path: path.to_path_buf(),
                waited: SEND_TIMEOUT,
            },
            _ => ClientError::Connect {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let writer = stream.try_clone().map_err(|source| ClientError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    fn io(&self, source: io::Error, waited: Duration) -> ClientError {
        if timed_out(&source) {
            self.withdraw();
            return ClientError::NotAnswering {
                path: self.path.clone(),
                waited,
            };
        }
        ClientError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        self.writer
            .write_all(request.to_line().as_bytes())
            .map_err(|e| self.io(e, SEND_TIMEOUT))
    }

    /// Hangs up, so a launcher that reads the request later (it was
    /// stopped or frozen) sees that nobody waits for it and drops it.
    fn withdraw(&self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
    }

    fn set_read_timeout(&self, timeout: Duration) -> Result<(), ClientError> {
        self.writer
            .set_read_timeout(Some(timeout))
            .map_err(|e| self.io(e, timeout))
    }

    /// A line that is not the request's reply type is an error that
    /// quotes what came, never a success with nothing to show.
    fn parse<T: DeserializeOwned>(&self, line: &str) -> Result<Reply<T>, ClientError> {
        serde_json::from_str(line).map_err(|e| ClientError::BadReply {
            path: self.path.clone(),
            reason: format!("{e}: {}", line.trim_end()),
        })
    }

    fn no_reply(&self) -> ClientError {
        ClientError::NoReply {
            path: self.path.clone(),
        }
    }

    /// Sends one request and reads its reply, waiting at most `timeout`.
    pub fn request<T: DeserializeOwned>(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Reply<T>, ClientError> {
        self.send(request)?;
        self.set_read_timeout(timeout)?;
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| self.io(e, timeout))?;
        if n == 0 {
            return Err(self.no_reply());
        }
        self.parse(&line)
    }

    /// Sends a streaming request (`watch`, `logs` with follow) and hands
    /// back the connection's lines: [`Lines::next_line`] blocks until the
    /// launcher sends one, as long as it takes (a stream is quiet while
    /// nothing happens).
    pub fn stream(mut self, request: &Request) -> Result<Lines, ClientError> {
        self.send(request)?;
        self.writer
            .set_read_timeout(None)
            .map_err(|e| self.io(e, SEND_TIMEOUT))?;
        Ok(Lines { connection: self })
    }

    /// Sends one request and waits for its reply as long as the launcher
    /// answers a `status` on another connection after each [`PROBE_EVERY`]
    /// of silence.
    pub fn request_while_alive<T: DeserializeOwned>(
        &mut self,
        request: &Request,
    ) -> Result<Reply<T>, ClientError> {
        self.send(request)?;
        self.set_read_timeout(PROBE_EVERY)?;
        // Bytes read before a timeout stay in `line`: the next read goes on.
        let mut line = String::new();
        loop {
            match self.reader.read_line(&mut line) {
                Ok(0) => return Err(self.no_reply()),
                Ok(_) => return self.parse(&line),
                Err(e) if timed_out(&e) => {
                    let answered = Connection::connect(&self.path).and_then(|mut probe| {
                        probe.request::<serde::de::IgnoredAny>(&Request::Status, PROBE_EVERY)
                    });
                    if let Err(e) = answered {
                        self.withdraw();
                        return Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e, PROBE_EVERY)),
            }
        }
    }
}

/// The lines of a streaming request, as they come.
pub(crate) struct Lines {
    connection: Connection,
}

impl Lines {
    /// The next line without its newline, or `None` once the launcher has
    /// closed the connection.
    pub fn next_line(&mut self) -> Result<Option<String>, ClientError> {
        let mut line = String::new();
        loop {
            match self.connection.reader.read_line(&mut line) {
                Ok(0) if line.is_empty() => return Ok(None),
                Ok(_) => {
                    let end = line.trim_end_matches(['\n', '\r']).len();
                    line.truncate(end);
                    return Ok(Some(line));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.connection.io(e, SEND_TIMEOUT)),
            }
        }
    }

    /// Reads the next line as a reply of `T` (the stream's first line).
    pub fn reply<T: DeserializeOwned>(&mut self) -> Result<Reply<T>, ClientError> {
        match self.next_line()? {
            Some(line) => self.connection.parse(&line),
            None => Err(self.connection.no_reply()),
        }
    }
}

/// A reply's data and the note the launcher added to it (`python is
/// already running`; the CLI prints it on stderr).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    /// What the request answers.
    pub data: T,
    /// Worth telling the user although the request succeeded.
    pub note: Option<String>,
}

/// What start, stop and restart answer: the backend's status once it
/// reached the goal (`None` if it left the folders meanwhile).
pub type Settled = Answer<Option<BackendStatus>>;

/// How long a request's reply may take.
#[derive(Debug, Clone, Copy)]
enum Patience {
    /// At most this long.
    Within(Duration),
    /// As long as the launcher answers a `status` meanwhile.
    WhileAlive,
}

/// Slack beyond a `send`'s own timeout before the client gives up on the
/// launcher itself.
const SEND_SLACK: Duration = Duration::from_secs(10);

/// A running launcher, named by its control socket. Cheap: it holds the
/// path, and each call opens its own connection (the launcher closes one
/// that stays idle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    path: PathBuf,
}

impl Client {
    /// The launcher of the instance `app` (`berth --app NAME`): its default
    /// socket, `$XDG_RUNTIME_DIR/NAME/berth.sock`.
    pub fn for_app(app: &AppName) -> Self {
        Self::at(crate::paths::default_socket(app))
    }

    /// The launcher serving the control socket at `path` (`--socket`).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The socket this client talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `request` on a new connection and reads its typed reply; a
    /// refusal is [`ClientError::Refused`].
    fn ask<T: DeserializeOwned>(
        &self,
        request: &Request,
        patience: Patience,
    ) -> Result<Answer<Option<T>>, ClientError> {
        let mut connection = Connection::connect(&self.path)?;
        let reply: Reply<T> = match patience {
            Patience::Within(timeout) => connection.request(request, timeout)?,
            Patience::WhileAlive => connection.request_while_alive(request)?,
        };
        if !reply.ok {
            return Err(refusal(reply.error));
        }
        Ok(Answer {
            data: reply.data,
            note: reply.note,
        })
    }

    /// Every manifest file, each as `berth status --json` shows it.
    pub fn status(&self) -> Result<Vec<BackendStatus>, ClientError> {
        let answer =
            self.ask::<Vec<BackendStatus>>(&Request::Status, Patience::Within(STATUS_TIMEOUT))?;
        Ok(answer.data.unwrap_or_default())
    }

    /// Carries out `verb` on `id` and waits for the outcome, as `berth
    /// start/stop/restart` do: a start or restart answers once the backend
    /// is `running`, a stop once its process group is gone. `data` is its
    /// status then (`None` if it left the folders meanwhile); a backend
    /// that settled in another state, or whose readiness timed out, is
    /// [`ClientError::Refused`] with what happened.
    pub fn command(&self, id: &str, verb: Verb) -> Result<Settled, ClientError> {
        let request = Request::Command {
            id: id.to_owned(),
            verb,
        };
        let answer = self.ask::<Option<BackendStatus>>(&request, Patience::WhileAlive)?;
        Ok(Answer {
            data: answer.data.flatten(),
            note: answer.note,
        })
    }

    /// [`Client::command`] with [`Verb::Start`]: `args` are appended to the
    /// manifest's for this run (none: the manifest's alone).
    pub fn start(&self, id: &str, args: &[String]) -> Result<Settled, ClientError> {
        let args = args.to_vec();
        self.command(id, Verb::Start { args })
    }

    /// [`Client::command`] with [`Verb::Stop`].
    pub fn stop(&self, id: &str) -> Result<Settled, ClientError> {
        self.command(id, Verb::Stop)
    }

    /// [`Client::command`] with [`Verb::Restart`].
    pub fn restart(&self, id: &str, args: &[String]) -> Result<Settled, ClientError> {
        let args = args.to_vec();
        self.command(id, Verb::Restart { args })
    }

    /// [`Client::command`] with [`Verb::CheckUpdate`]: reads `id`'s feed;
    /// `data`'s `update` shows what it offers, the note says it in words.
    pub fn check_update(&self, id: &str) -> Result<Settled, ClientError> {
        self.command(id, Verb::CheckUpdate)
    }

    /// [`Client::command`] with [`Verb::Update`]: installs the version
    /// `id`'s feed offers; answered once it runs on it (it was running) or
    /// is installed (it was not), the note saying `id: updated A -> B`.
    pub fn update(&self, id: &str) -> Result<Settled, ClientError> {
        self.command(id, Verb::Update)
    }

    /// [`Client::command`] with [`Verb::Rollback`]: back to the version
    /// kept before the installed one.
    pub fn rollback(&self, id: &str) -> Result<Settled, ClientError> {
        self.command(id, Verb::Rollback)
    }

    /// Writes `line` as one compact JSON line to `id`'s stdin, as `berth
    /// send` does. Without `wait`, `Ok(None)` once queued; with it, the
    /// first stdout JSON object from then on whose `key` renders as
    /// `value`, waited for at most `timeout`.
    pub fn send(
        &self,
        id: &str,
        line: &serde_json::Value,
        wait: Option<&Wait>,
        timeout: Duration,
    ) -> Result<Option<JsonObject>, ClientError> {
        let request = Request::Send(SendRequest {
            id: id.to_owned(),
            line: line.clone(),
            wait: wait.cloned(),
            timeout_ms: Some(timeout.as_millis().try_into().unwrap_or(u64::MAX)),
        });
        // The launcher answers at once, or with `wait` within the timeout.
        let answer: Answer<Option<Option<JsonObject>>> =
            self.ask(&request, Patience::Within(timeout + SEND_SLACK))?;
        Ok(answer.data.flatten())
    }

    /// Runs `id`'s manifest action `label`, as the tray does; a `restart`
    /// action answers like [`Client::restart`].
    pub fn action(&self, id: &str, label: &str) -> Result<Answer<Acted>, ClientError> {
        let request = Request::Action {
            id: id.to_owned(),
            label: label.to_owned(),
        };
        let answer: Answer<Option<Acted>> = self.ask(&request, Patience::WhileAlive)?;
        match answer.data {
            Some(data) => Ok(Answer {
                data,
                note: answer.note,
            }),
            None => Err(ClientError::BadReply {
                path: self.path.clone(),
                reason: "an action's reply has no data".to_owned(),
            }),
        }
    }

    /// The launcher's version and its protocol's (`{"cmd": "version"}`).
    pub fn version(&self) -> Result<Version, ClientError> {
        let answer = self.ask::<Version>(&Request::Version, Patience::Within(STATUS_TIMEOUT))?;
        answer.data.ok_or_else(|| ClientError::BadReply {
            path: self.path.clone(),
            reason: "a version reply has no data".to_owned(),
        })
    }

    /// Starts every backend that can start (refusals are not reported).
    pub fn start_all(&self) -> Result<(), ClientError> {
        self.ask::<()>(&Request::StartAll, Patience::WhileAlive)
            .map(drop)
    }

    /// Stops every backend in parallel; returns once all are stopped.
    pub fn stop_all(&self) -> Result<(), ClientError> {
        self.ask::<()>(&Request::StopAll, Patience::WhileAlive)
            .map(drop)
    }

    /// Reads the backends folders again (like SIGHUP); a folder that could
    /// not be read is [`ClientError::Refused`] naming it.
    pub fn rescan(&self) -> Result<(), ClientError> {
        self.ask::<()>(&Request::Rescan, Patience::WhileAlive)
            .map(drop)
    }
}

impl Client {
    /// Follows the launcher's events (`{"cmd": "watch"}`): every manifest
    /// file's status at once ([`Watch::backends`]), then, iterating, one
    /// [`Event`] per change: a file's complete new status, or its removal.
    /// The iterator blocks while nothing changes and ends when the launcher
    /// quits; a launcher that closes a reader fallen behind by over 1 MiB
    /// ends it with [`ClientError::Refused`] saying so.
    pub fn watch(&self) -> Result<Watch, ClientError> {
        let mut lines = Connection::connect(&self.path)?.stream(&Request::Watch)?;
        let first: Reply<Vec<BackendStatus>> = lines.reply()?;
        if !first.ok {
            return Err(refusal(first.error));
        }
        Ok(Watch {
            backends: first.data.unwrap_or_default(),
            lines: Some(lines),
        })
    }
}

/// The launcher's refusal, in its words.
fn refusal(error: Option<String>) -> ClientError {
    ClientError::Refused(
        error.unwrap_or_else(|| "the launcher refused without a reason".to_owned()),
    )
}

/// A `watch` stream ([`Client::watch`]): the statuses when it began, and
/// an iterator of the changes since.
pub struct Watch {
    backends: Vec<BackendStatus>,
    /// `None` once the stream has ended.
    lines: Option<Lines>,
}

impl Watch {
    /// Every manifest file's status when the stream began, as
    /// [`Client::status`] answers.
    pub fn backends(&self) -> &[BackendStatus] {
        &self.backends
    }
}

impl Iterator for Watch {
    type Item = Result<Event, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        let lines = self.lines.as_mut()?;
        let item = match lines.next_line() {
            Ok(None) => None,
            Ok(Some(line)) => Some(match serde_json::from_str::<Event>(&line) {
                Ok(event) => return Some(Ok(event)),
                // An error line ends the stream (the launcher closes it next).
                Err(e) => match serde_json::from_str::<Reply<()>>(&line) {
                    Ok(reply) if !reply.ok => Err(refusal(reply.error)),
                    _ => Err(ClientError::BadReply {
                        path: lines.connection.path.clone(),
                        reason: format!("{e}: {line}"),
                    }),
                },
            }),
            Err(e) => Some(Err(e)),
        };
        self.lines = None;
        item
    }
}
