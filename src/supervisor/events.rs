//! What happened to a backend that a user may want to hear about, as it
//! happens: the source of desktop notifications (`crate::notify`).
//!
//! Snapshots are the wrong source for this: a watch channel keeps only the
//! latest one, so a crash followed by a quick automatic restart can vanish
//! between two reads. The job knows the moment an exit was not asked for,
//! so it says so here. A user's Stop, Quit or a removal never produces an
//! event: those paths never call [`Events::emit`].

use tokio::sync::broadcast;

use crate::status::{BackendStatus, State};

/// How many events a slow subscriber may lag behind before it loses the
/// oldest (a notifier that is behind has lost nothing a user would miss:
/// the rate limit would merge them anyway).
const CAPACITY: usize = 256;

/// One event about one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub id: String,
    /// The backend's name (the tray's label).
    pub name: String,
    /// `notify` of the manifest in force.
    pub notify: bool,
    pub kind: EventKind,
    /// The last stderr line of the run that ended, if any.
    pub last_stderr: Option<String>,
    pub log: Option<std::path::PathBuf>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The process ended by itself (berth did not ask). `then` is the state
    /// it led to: backoff (restarting), exited, or failed (gave up).
    Exited {
        code: Option<i32>,
        signal: Option<String>,
        then: State,
    },
    /// A launch was refused: the executable's digest (or its `files` tree)
    /// differs from the manifest, or it could not be spawned.
    LaunchFailed { state: State, reason: String },
    /// The manifest's signature is missing, bad or by no trusted key.
    Untrusted { reason: String },
    /// Health checks failed or a heartbeat was missed, and berth stopped
    /// the backend; `then` is the state that led to: backoff (restarting)
    /// or failed.
    Unhealthy { reason: String, then: State },
    /// Its feed offers `version` (v3): once per version per launcher.
    UpdateFound { version: String },
    /// `version` is installed and in force (running, if it was), `from`
    /// the version before it (v3).
    UpdateApplied { version: String, from: String },
    /// `version` failed its probation and `to` is back (v3).
    RolledBack {
        version: String,
        to: String,
        reason: String,
    },
}

/// The sending side, shared by every job.
#[derive(Debug, Clone)]
pub struct Events(broadcast::Sender<JobEvent>);

impl Default for Events {
    fn default() -> Self {
        Self(broadcast::channel(CAPACITY).0)
    }
}

impl Events {
    /// Sends to every subscriber; nobody listening is fine.
    pub fn emit(&self, event: JobEvent) {
        tracing::debug!(backend = %event.id, kind = ?event.kind, "job event");
        let _ = self.0.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.0.subscribe()
    }
}

/// An event for each file that is untrusted in `now` and was not before
/// (by file): a file that stays untrusted across rescans says it once.
pub(super) fn newly_untrusted(before: &[BackendStatus], now: &[BackendStatus]) -> Vec<JobEvent> {
    now.iter()
        .filter(|s| s.state == State::Untrusted)
        .filter(|s| {
            !before
                .iter()
                .any(|b| b.file == s.file && b.state == State::Untrusted)
        })
        .map(|s| JobEvent {
            id: s.id.clone().unwrap_or_else(|| s.file.clone()),
            name: s
                .name
                .clone()
                .or_else(|| s.id.clone())
                .unwrap_or_else(|| s.file.clone()),
            // `notify: false` in a file whose signature fails is not trusted either.
            notify: true,
            kind: EventKind::Untrusted {
                reason: s
                    .error
                    .clone()
                    .unwrap_or_else(|| "no valid signature".into()),
            },
            last_stderr: None,
            log: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untrusted_file_is_reported_once() {
        let mut bad = BackendStatus::new("/b/x.yaml", State::Untrusted);
        bad.id = Some("x".into());
        bad.error = Some("bad signature".into());
        let fine = BackendStatus::new("/b/y.yaml", State::Superseded);
        let first = newly_untrusted(&[], &[bad.clone(), fine.clone()]);
        assert_eq!(first.len(), 1);
        assert_eq!(
            first[0].kind,
            EventKind::Untrusted {
                reason: "bad signature".into()
            }
        );
        assert!(newly_untrusted(&[bad.clone()], &[bad]).is_empty());
    }
}
