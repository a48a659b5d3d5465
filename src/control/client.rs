//! The client side of the control socket, blocking: the CLI has nothing else
//! to do while it waits.
//!
//! Every step has a bound, so a frozen launcher (SIGSTOPped, deadlocked)
//! never hangs the CLI: connecting and sending take at most
//! [`SEND_TIMEOUT`], a `status` reply comes within [`STATUS_TIMEOUT`].
//! Replies to start/stop/restart may rightly take as long as a backend's
//! readiness or stop timeout, which the client does not know; so
//! [`Client::request_while_alive`] waits as long as the launcher keeps
//! answering: after every [`PROBE_EVERY`] of silence it asks for `status` on
//! a second connection, and gives up when that goes unanswered too.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
use nix::sys::time::TimeVal;
use serde::de::DeserializeOwned;

use super::protocol::{Reply, Request};
use super::socket;

/// Connecting (a full backlog blocks) and writing a request.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// A status reply: the launcher answers it at once from its snapshot.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence after which a waiting start/stop/restart checks the launcher.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens on the socket (no file, or a stale one).
    #[error("no launcher running on {} (start one with `berth run`)", path.display())]
    NoLauncher { path: PathBuf },
    #[error(transparent)]
    BadPath(#[from] socket::SocketError),
    #[error("cannot connect to {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("talking to the launcher on {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The launcher accepted the connection but does not answer.
    #[error("the launcher on {} did not answer within {}s (is it stopped or frozen?)", path.display(), waited.as_secs())]
    NotAnswering { path: PathBuf, waited: Duration },
    #[error("the launcher on {} closed the connection without replying", path.display())]
    NoReply { path: PathBuf },
    #[error("the launcher on {} sent a reply berth cannot read: {reason}", path.display())]
    BadReply { path: PathBuf, reason: String },
}

/// One connection to the launcher.
pub struct Client {
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

impl Client {
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
        Ok(Lines { client: self })
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
                    let answered = Client::connect(&self.path).and_then(|mut probe| {
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
pub struct Lines {
    client: Client,
}

impl Lines {
    /// The next line without its newline, or `None` once the launcher has
    /// closed the connection.
    pub fn next_line(&mut self) -> Result<Option<String>, ClientError> {
        let mut line = String::new();
        loop {
            match self.client.reader.read_line(&mut line) {
                Ok(0) if line.is_empty() => return Ok(None),
                Ok(_) => {
                    let end = line.trim_end_matches(['\n', '\r']).len();
                    line.truncate(end);
                    return Ok(Some(line));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.client.io(e, SEND_TIMEOUT)),
            }
        }
    }

    /// Reads the next line as a reply of `T` (the stream's first line).
    pub fn reply<T: DeserializeOwned>(&mut self) -> Result<Reply<T>, ClientError> {
        match self.next_line()? {
            Some(line) => self.client.parse(&line),
            None => Err(self.client.no_reply()),
        }
    }
}
