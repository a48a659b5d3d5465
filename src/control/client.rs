//! The client side of the control socket, blocking: the CLI has nothing else
//! to do while it waits.
//!
//! Replies to start/stop/restart may take as long as a backend's readiness
//! timeout, so [`Client::request`] has no read timeout of its own: the server
//! always answers once the backend settles.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{Reply, Request};
use super::socket;

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

impl Client {
    /// Connects, telling "no launcher" apart from every other failure.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        socket::check_length(path)?;
        let stream = UnixStream::connect(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NoLauncher {
                path: path.to_path_buf(),
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

    /// Bounds the wait for each reply (`None`: wait as long as it takes).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.writer
            .set_read_timeout(timeout)
            .map_err(|source| self.io(source))
    }

    fn io(&self, source: io::Error) -> ClientError {
        ClientError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Sends one request and reads its reply.
    pub fn request(&mut self, request: &Request) -> Result<Reply, ClientError> {
        self.writer
            .write_all(request.to_line().as_bytes())
            .map_err(|e| self.io(e))?;
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).map_err(|e| self.io(e))?;
        if n == 0 {
            return Err(ClientError::NoReply {
                path: self.path.clone(),
            });
        }
        serde_json::from_str(&line).map_err(|e| ClientError::BadReply {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }
}
