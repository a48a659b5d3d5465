//! `{"cmd": "logs", "id", "follow", "lines"}`: a backend's last log lines,
//! then (with follow) each new one as it is written, as `log` events.
//!
//! The history comes from the files, read on a blocking thread up to where
//! the supervisor's live feed takes over, so no line comes twice or is
//! missed between the two (see `supervisor::logs::feed`). The live lines
//! come from the feed of the id, which every run of the backend writes to:
//! a restart (a new `run` pid) or a rotation does not end the stream.
//! Back-pressure as for `watch`: each follower has its own outbox, closed
//! past 1 MiB pending.

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::broadcast::error::RecvError;

use super::backends::Backends;
use super::outbox::{Outbox, overflowed};
use super::protocol::{Event, LogLine, LogsEnd, LogsRequest, Stream, error_line};

/// History lines queued before they are written out.
const HISTORY_CHUNK: usize = 64 * 1024;

/// What the connection does after a `logs` request.
pub enum After {
    /// Read the next request (the request was answered, or refused).
    Next,
    /// Close it (the follower hung up or fell behind).
    Closed,
}

pub async fn logs<B: Backends>(
    backends: &B,
    request: LogsRequest,
    read: &mut (impl AsyncRead + Unpin),
    write: &mut OwnedWriteHalf,
) -> After {
    let LogsRequest { id, follow, lines } = request;
    let mut outbox = Outbox::default();
    let source = match backends.follow_log(&id) {
        Ok(source) => source,
        Err(e) => return refuse(&mut outbox, write, e.to_string()).await,
    };
    let read_history = tokio::task::spawn_blocking(move || {
        let history = source.history(lines);
        (source, history)
    });
    let (source, history) = match read_history.await {
        Ok((source, Ok(history))) => (source, history),
        Ok((source, Err(e))) => {
            let msg = format!("{id}: cannot read {}: {e}", source.log.display());
            return refuse(&mut outbox, write, msg).await;
        }
        Err(e) => return refuse(&mut outbox, write, format!("{id}: {e}")).await,
    };
    for line in history {
        let event = Event::Log(LogLine {
            id: id.clone(),
            stream: stream(line.stderr),
            line: line.text,
            run: line.run,
        });
        // Below the limit by construction: written out every 64 KiB.
        let _ = outbox.push(&event.to_line());
        if outbox.pending() > HISTORY_CHUNK && outbox.write_all(write).await.is_err() {
            return After::Closed;
        }
    }
    let _ = outbox.push(&LogsEnd::ok(()).to_line());
    if outbox.write_all(write).await.is_err() {
        return After::Closed;
    }
    if !follow {
        return After::Next;
    }
    let mut rx = source.follow.rx;
    let mut reading = true;
    let mut scratch = [0u8; 512];
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(RecvError::Lagged(_)) => {
                        overflowed(write, "logs");
                        return After::Closed;
                    }
                    Err(RecvError::Closed) => return After::Closed,
                };
                for (stderr, text) in batch.lines() {
                    let event = Event::Log(LogLine {
                        id: id.clone(),
                        stream: stream(stderr),
                        line: String::from_utf8_lossy(text).into_owned(),
                        run: Some(batch.run),
                    });
                    if outbox.push(&event.to_line()).is_err() {
                        overflowed(write, "logs");
                        return After::Closed;
                    }
                }
            }
            written = outbox.write_some(write), if !outbox.is_empty() => {
                if written.is_err() {
                    return After::Closed;
                }
            }
            // As for `watch`: later input is ignored, end of file is no
            // hang-up; a follower that is gone is found by the next write.
            n = read.read(&mut scratch), if reading => {
                if matches!(n, Ok(0) | Err(_)) {
                    reading = false;
                }
            }
        }
    }
}

fn stream(stderr: bool) -> Stream {
    if stderr {
        Stream::Stderr
    } else {
        Stream::Stdout
    }
}

async fn refuse(outbox: &mut Outbox, write: &mut OwnedWriteHalf, message: String) -> After {
    let _ = outbox.push(&error_line(message));
    match outbox.write_all(write).await {
        Ok(()) => After::Next,
        Err(_) => After::Closed,
    }
}
