//! Desktop notifications: a backend that crashes, gives up, fails its
//! checksum or signature (or, with `health`, its health checks) says so on
//! the desktop, through org.freedesktop.Notifications; so does an update
//! found, applied or rolled back (v3), once each.
//!
//! A tray launcher that fails silently is worse than none. The supervisor's
//! job events ([`crate::supervisor::JobEvent`]) come in; `notify: false`
//! manifests are dropped; [`limit`] allows one notification per backend per
//! 30 s (a burst becomes one "crashed 4 times in 30 s"); [`server`] shows
//! them. A user's Stop, Quit and removals produce no event, so they never
//! notify.
//!
//! Nothing here may get in the way: this task and the server's run on the
//! runtime, off the tray's thread and off every job's path (a job's
//! `emit` is a non-blocking broadcast); the hand-over to the server is a
//! bounded queue that drops when full (a hung server), and every bus call
//! has a timeout.

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub mod limit;
pub mod server;

use crate::supervisor::SupervisorHandle;

/// Notes waiting for the server; past this (a server that hangs) they are
/// dropped rather than queued without end.
const QUEUE: usize = 16;

/// Starts the notifier for `handle`'s events, shown under the application
/// name `app` (the instance's `--app`). Aborting the task stops it.
pub fn spawn(handle: SupervisorHandle, app: crate::paths::AppName) -> JoinHandle<()> {
    let events = handle.events();
    let (tx, rx) = mpsc::channel(QUEUE);
    let server = tokio::spawn(server::run(rx, handle, app));
    tokio::spawn(async move {
        limit_and_forward(events, tx).await;
        server.abort();
    })
}

async fn limit_and_forward(
    mut events: broadcast::Receiver<crate::supervisor::JobEvent>,
    tx: mpsc::Sender<limit::Note>,
) {
    let mut limiter = limit::Limiter::default();
    let forward = |note: limit::Note| {
        if tx.try_send(note).is_err() {
            tracing::debug!("notification dropped: the notification server is behind");
        }
    };
    loop {
        let deadline = limiter.next_deadline().map(Instant::from_std);
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) if event.notify => {
                    if let Some(note) = limiter.push(event, std::time::Instant::now()) {
                        forward(note);
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(lost = n, "notifier fell behind the job events");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = crate::timer::sleep_until(deadline) => {
                for note in limiter.due(std::time::Instant::now()) {
                    forward(note);
                }
            }
        }
    }
}
