//! `{"cmd": "watch"}`: the status array once, then a line per change.
//!
//! Built on the supervisor's snapshot channel, which never waits for a
//! reader: each watcher wakes on a new snapshot, compares it file by file
//! with what it last sent and queues one [`Event`] per file that changed
//! (or is gone). Nothing runs while nothing is published, so an idle
//! watcher costs no CPU; there is no timer.
//!
//! The sampled figures (`uptime_s`, `cpu_percent`, `rss_bytes`) are left out
//! of the comparison: they move while a backend merely runs (the metrics
//! task publishes them while someone reads `status`), and a still backend
//! must stay silent. A line that is sent carries their current values.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::OwnedWriteHalf;

use super::backends::Backends;
use super::outbox::{Outbox, overflowed};
use super::protocol::{Event, StatusReply};
use crate::status::{BackendStatus, Snapshot};

/// Streams changes to one client until it hangs up, falls behind by more
/// than 1 MiB, or the supervisor ends.
pub async fn watch<B: Backends>(
    backends: &B,
    mut read: impl AsyncRead + Unpin,
    mut write: OwnedWriteHalf,
) {
    let mut rx = backends.subscribe();
    // The first line is what `status` answers, figures fresh.
    backends.look().await;
    let mut sent: Arc<Snapshot> = rx.borrow_and_update().clone();
    let mut outbox = Outbox::default();
    let first = StatusReply::ok(sent.backends.clone()).to_line();
    if outbox.push(&first).is_err() {
        overflowed(&write, "watch");
        return;
    }
    let mut reading = true;
    let mut scratch = [0u8; 512];
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    // The supervisor is gone: say what is queued, then end.
                    let _ = outbox.write_all(&mut write).await;
                    return;
                }
                let now = rx.borrow_and_update().clone();
                for event in changes(&sent, &now) {
                    if outbox.push(&event.to_line()).is_err() {
                        overflowed(&write, "watch");
                        return;
                    }
                }
                sent = now;
            }
            written = outbox.write_some(&mut write), if !outbox.is_empty() => {
                if written.is_err() {
                    return;
                }
            }
            // Whatever the client sends now is ignored; its end of file is
            // not a hang-up (it may have shut down only its writing side):
            // a client that is gone is found by the next write.
            n = read.read(&mut scratch), if reading => {
                match n {
                    Ok(0) | Err(_) => reading = false,
                    Ok(_) => {}
                }
            }
        }
    }
}

/// What a watcher that last sent `before` sends for `after`: the files
/// whose status changed (sampled figures aside) or appeared, in the
/// snapshot's order, then the files that are gone.
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<Event> {
    let old: HashMap<&str, &BackendStatus> = before
        .backends
        .iter()
        .map(|b| (b.file.as_str(), b))
        .collect();
    let mut events: Vec<Event> = after
        .backends
        .iter()
        .filter(|b| old.get(b.file.as_str()).is_none_or(|o| !same(o, b)))
        .map(|b| Event::Status {
            backend: Box::new(b.clone()),
        })
        .collect();
    let now: std::collections::HashSet<&str> =
        after.backends.iter().map(|b| b.file.as_str()).collect();
    events.extend(
        before
            .backends
            .iter()
            .filter(|b| !now.contains(b.file.as_str()))
            .map(|b| Event::Removed {
                file: b.file.clone(),
            }),
    );
    events
}

/// Equal as a watcher sees them: everything but the sampled figures and
/// the tray's in-process extras (never on the wire).
fn same(a: &BackendStatus, b: &BackendStatus) -> bool {
    if a == b {
        return true;
    }
    let unsampled = |s: &BackendStatus| BackendStatus {
        uptime_s: None,
        cpu_percent: None,
        rss_bytes: None,
        detail: Default::default(),
        ..s.clone()
    };
    unsampled(a) == unsampled(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::State;

    fn snap(backends: Vec<BackendStatus>) -> Snapshot {
        Snapshot { backends }
    }

    #[test]
    fn sampled_figures_alone_are_no_change() {
        let mut a = BackendStatus::new("/b/a.yaml", State::Running);
        a.pid = Some(7);
        let mut moved = a.clone();
        moved.uptime_s = Some(30);
        moved.cpu_percent = Some(1.5);
        moved.rss_bytes = Some(1 << 20);
        moved.detail.started_at = Some(std::time::Instant::now());
        assert!(changes(&snap(vec![a.clone()]), &snap(vec![moved.clone()])).is_empty());
        let mut stopped = moved.clone();
        stopped.state = State::Stopped;
        assert_eq!(
            changes(&snap(vec![moved]), &snap(vec![stopped.clone()])),
            vec![Event::Status {
                backend: Box::new(stopped)
            }]
        );
    }

    #[test]
    fn new_files_are_status_and_gone_files_are_removed() {
        let a = BackendStatus::new("/b/a.yaml", State::Stopped);
        let b = BackendStatus::new("/b/b.yaml", State::Invalid);
        assert_eq!(
            changes(&snap(vec![a]), &snap(vec![b.clone()])),
            vec![
                Event::Status {
                    backend: Box::new(b)
                },
                Event::Removed {
                    file: "/b/a.yaml".into()
                }
            ]
        );
    }
}
