//! The one timer primitive the async tasks share: an optional deadline.
//!
//! Tasks `select!` on "the next thing that could happen", and most of the
//! time nothing is scheduled. Passing `None` sets no timer at all, so an idle
//! berth has nothing that wakes it up.

use tokio::time::Instant;

/// Sleeps until `at`; with `None`, never returns (no timer is armed).
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
