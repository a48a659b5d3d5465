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
use super::protocol::{SendReply, SendRequest, Wait};
use crate::status::ActionError;
use crate::supervisor::talk;

/// How long `--wait` waits when the request names no timeout.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// Why a `send` that waits for its reply has none, in one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// The line was not queued (not running, queue full, unknown id...).
    #[error(transparent)]
    Refused(#[from] ActionError),
    /// The run ended before a matching object came.
    #[error("{id} ended before a reply with {}={}", wait.key, wait.value)]
    Ended {
        /// The backend.
        id: String,
        /// What was waited for.
        wait: Wait,
    },
    /// No matching object came within `timeout`.
    #[error("no stdout JSON object with {}={} from {id} within {}", wait.key, wait.value, crate::human::as_written(*timeout))]
    TimedOut {
        /// The backend.
        id: String,
        /// What was waited for.
        wait: Wait,
        /// How long it was waited for.
        timeout: Duration,
    },
}

/// Queues `line` (compact JSON) for `id`'s stdin; with `wait`, returns the
/// first stdout JSON object from then on whose `key` renders as `value`,
/// waiting at most `timeout`. Without `wait`, `Ok(None)` once queued.
pub async fn send<B: Backends>(
    control: &B,
    id: &str,
    line: &serde_json::Value,
    wait: Option<&Wait>,
    timeout: Duration,
) -> Result<Option<JsonObject>, SendError> {
    let replies = control.send(id, line.to_string(), wait.is_some()).await?;
    let (Some(wait), Some(mut rx)) = (wait, replies) else {
        return Ok(None);
    };
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
        Ok(Some(obj)) => Ok(Some(obj)),
        Ok(None) => Err(SendError::Ended {
            id: id.to_owned(),
            wait: wait.clone(),
        }),
        Err(_) => Err(SendError::TimedOut {
            id: id.to_owned(),
            wait: wait.clone(),
            timeout,
        }),
    }
}

/// A stdout JSON object of a backend.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Carries out one `send` request of the socket.
pub(super) async fn reply<B: Backends>(control: &B, request: SendRequest) -> SendReply {
    let timeout = request
        .timeout_ms
        .map_or(DEFAULT_WAIT, Duration::from_millis);
    match send(
        control,
        &request.id,
        &request.line,
        request.wait.as_ref(),
        timeout,
    )
    .await
    {
        Ok(found) => SendReply::ok(found),
        Err(e) => SendReply::error(e.to_string()),
    }
}
