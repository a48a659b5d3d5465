//! What a streaming client (`watch`, `logs` with follow) has not read yet.
//!
//! Each such client has its own outbox and its own task writing it out, so
//! a client that does not read costs only its own memory, bounded by
//! [`WATCH_BACKLOG`]: past that it is told so (best effort) and closed. Its
//! task never waits on the socket while something else waits on it; the
//! snapshot channel and the log broadcast never wait for a client.

use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;

use super::protocol::{WATCH_BACKLOG, error_line};

/// Bytes queued for one client, written out as the socket takes them.
#[derive(Default)]
pub struct Outbox {
    buf: Vec<u8>,
    /// How much of `buf` is already written.
    sent: usize,
}

/// The client fell behind by more than [`WATCH_BACKLOG`].
#[derive(Debug)]
pub struct Overflow;

impl Outbox {
    /// Queues one line; refuses once more than [`WATCH_BACKLOG`] is pending.
    pub fn push(&mut self, line: &str) -> Result<(), Overflow> {
        self.buf.extend_from_slice(line.as_bytes());
        if self.pending() > WATCH_BACKLOG {
            return Err(Overflow);
        }
        Ok(())
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Writes what the socket takes in one call (cancel safe: nothing is
    /// lost when the future is dropped before it completes).
    pub async fn write_some(&mut self, write: &mut OwnedWriteHalf) -> std::io::Result<()> {
        let n = write.write(&self.buf[self.sent..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.sent += n;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent > self.buf.len() / 2 {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// Writes everything queued.
    pub async fn write_all(&mut self, write: &mut OwnedWriteHalf) -> std::io::Result<()> {
        while !self.is_empty() {
            self.write_some(write).await?;
        }
        Ok(())
    }
}

/// Tells a client that fell behind why it is closed, if its socket has
/// room for the line right now (it is not read, so it often has none).
pub fn overflowed(write: &OwnedWriteHalf, what: &str) {
    tracing::info!("control socket: closing a {what} client that fell behind by over 1 MiB");
    let line = error_line(format!("{what} fell behind by over 1 MiB; closing"));
    let _ = write.try_write(line.as_bytes());
}
