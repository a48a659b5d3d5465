//! The `send` request: one line into a backend's stdin, and waiting for the
//! stdout JSON object that answers it.
//!
//! The supervisor subscribes to the backend's stdout objects before it
//! queues the line, so a reply that comes back at once is not missed; only
//! objects that arrive after the write count. The queue never blocks (see
//! [`crate::supervisor::talk`]), so a backend that does not read gets its
//! refusal at once.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use super::backends::Backends;
use super::protocol::{SendReply, SendRequest};
use crate::supervisor::talk;

/// How long `--wait` waits when the request names no timeout.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// Carries out one `send` request.
pub async fn send<B: Backends>(control: &B, request: SendRequest) -> SendReply {
    let SendRequest {
        id,
        line,
        wait,
        timeout_ms,
    } = request;
    let id = id.as_str();
    let replies = match control.send(id, line.to_string(), wait.is_some()).await {
        Ok(replies) => replies,
        Err(e) => return SendReply::error(e.to_string()),
    };
    let (Some(wait), Some(mut rx)) = (wait, replies) else {
        return SendReply::ok(None);
    };
    let timeout = timeout_ms.map_or(DEFAULT_WAIT, Duration::from_millis);
    let found = tokio::time::timeout(timeout, async {
        loop {
            match rx.recv().await {
                Ok(obj) if talk::matches(&obj, &wait.key, &wait.value) => {
                    return Some((*obj).clone());
                }
                // A lagging listener lost some lines; the reply may follow.
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .await;
    match found {
        Ok(Some(obj)) => SendReply::ok(Some(obj)),
        Ok(None) => SendReply::error(format!(
            "{id} ended before a reply with {}={}",
            wait.key, wait.value
        )),
        Err(_) => SendReply::error(format!(
            "no stdout JSON object with {}={} from {id} within {}",
            wait.key,
            wait.value,
            crate::human::as_written(timeout)
        )),
    }
}
