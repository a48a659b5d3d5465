//! The rate limit and the wording of notifications, as pure functions of
//! events and time (unit-tested without a bus).
//!
//! At most one notification per backend per [`WINDOW`]: the first event of
//! a quiet backend is shown at once and opens a window; whatever follows in
//! that window is held and, when the window closes, shown as one
//! notification ("Python Backend crashed 4 times in 30 s"), which opens the
//! next window. A backend that stays quiet for a whole window starts over.
//!
//! Updates (v3) are news, not trouble, and rare by construction: a version
//! found is told once (a later check that finds it again says nothing), an
//! update applied or rolled back once per update. So they neither wait for
//! nor open a window: a rollback, which a user must hear of, is never held
//! behind a burst of crashes of the version that failed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::status::State;
use crate::supervisor::{EventKind, JobEvent};

/// One notification per backend per this long.
pub const WINDOW: Duration = Duration::from_secs(30);
/// The stderr line in a body is cut to this many characters.
const STDERR_CHARS: usize = 200;

/// A notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The backend it is about (for the Restart action).
    pub id: String,
    pub summary: String,
    /// Plain text; the sender escapes it for servers that read markup.
    pub body: String,
    /// The backend's log (for the Open log action).
    pub log: Option<PathBuf>,
    /// Something went wrong: shown as critical, with Restart and Open log;
    /// `false` for news (an update found or applied).
    pub urgent: bool,
}

/// Per-backend windows.
#[derive(Debug, Default)]
pub struct Limiter {
    windows: HashMap<String, Window>,
    /// `(backend, version)` of every update found and told.
    found: HashSet<(String, String)>,
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    /// Crashes seen since the window opened, the shown one included.
    crashes: u32,
    /// The latest held event, if any was held.
    held: Option<JobEvent>,
}

impl Limiter {
    /// An event arrives at `now`: the note to show at once, if any.
    pub fn push(&mut self, event: JobEvent, now: Instant) -> Option<Note> {
        match &event.kind {
            EventKind::UpdateFound { version } => {
                let new = self.found.insert((event.id.clone(), version.clone()));
                return new.then(|| single(&event));
            }
            EventKind::UpdateApplied { .. } | EventKind::RolledBack { .. } => {
                return Some(single(&event));
            }
            _ => {}
        }
        let crash = u32::from(is_crash(&event.kind));
        match self.windows.get_mut(&event.id) {
            Some(w) if now < w.opened + WINDOW || w.held.is_some() => {
                w.crashes += crash;
                w.held = Some(event);
                None
            }
            _ => {
                let note = single(&event);
                self.windows.insert(
                    event.id.clone(),
                    Window {
                        opened: now,
                        crashes: crash,
                        held: None,
                    },
                );
                Some(note)
            }
        }
    }

    /// The notes of windows that have closed by `now`; each one shown opens
    /// the next window, a window with nothing held is forgotten.
    pub fn due(&mut self, now: Instant) -> Vec<Note> {
        let mut notes = Vec::new();
        self.windows.retain(|_, w| {
            if now < w.opened + WINDOW {
                return true;
            }
            match w.held.take() {
                Some(last) => {
                    notes.push(merged(&last, w.crashes));
                    w.opened = now;
                    w.crashes = 0;
                    true
                }
                None => false,
            }
        });
        notes.sort_by(|a, b| a.id.cmp(&b.id));
        notes
    }

    /// When [`Limiter::due`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.windows
            .values()
            .filter(|w| w.held.is_some())
            .map(|w| w.opened + WINDOW)
            .min()
    }
}

fn is_crash(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Exited { .. })
}

/// The notification for one event.
pub fn single(event: &JobEvent) -> Note {
    let name = &event.name;
    let (summary, reason) = match &event.kind {
        EventKind::Exited { code, signal, then } => {
            // The exit reads as in `berth status` and the tray.
            let how = crate::human::with_exit("exited", *code, signal.as_deref());
            let summary = match then {
                State::Failed => format!("{name} failed"),
                _ if *code == Some(0) => format!("{name} exited"),
                _ => format!("{name} crashed"),
            };
            let next = match then {
                State::Backoff => "; restarting",
                State::Failed => "; gave up restarting",
                _ => "",
            };
            (summary, format!("{how}{next}"))
        }
        EventKind::LaunchFailed { state, reason } => {
            let summary = match state {
                State::IntegrityFailed => format!("{name}: checksum mismatch"),
                _ => format!("{name} cannot start"),
            };
            (summary, reason.clone())
        }
        EventKind::Untrusted { reason } => (format!("{name}: untrusted"), reason.clone()),
        EventKind::Unhealthy { reason, then } => {
            let next = match then {
                State::Backoff => "; restarting",
                _ => "",
            };
            (format!("{name} is unhealthy"), format!("{reason}{next}"))
        }
        EventKind::UpdateFound { version } => {
            (format!("{name} {version} is available"), String::new())
        }
        EventKind::UpdateApplied { version, from } => (
            format!("{name} updated to {version}"),
            format!("from {from}"),
        ),
        EventKind::RolledBack {
            version,
            to,
            reason,
        } => (
            format!("{name} {version} rolled back to {to}"),
            reason.clone(),
        ),
    };
    let urgent = !matches!(
        event.kind,
        EventKind::UpdateFound { .. } | EventKind::UpdateApplied { .. }
    );
    let mut body = reason;
    if let Some(line) = &event.last_stderr {
        body.push('\n');
        body.push_str(&crate::human::one_line(line, STDERR_CHARS));
    }
    Note {
        id: event.id.clone(),
        summary,
        body,
        log: event.log.clone(),
        urgent,
    }
}

/// The one notification for a window's held events: `last` is the latest,
/// `crashes` how many crashes the window saw in all.
pub fn merged(last: &JobEvent, crashes: u32) -> Note {
    let mut note = single(last);
    if crashes >= 2 {
        let secs = WINDOW.as_secs();
        note.summary = match &last.kind {
            EventKind::Exited {
                then: State::Failed,
                ..
            } => format!("{} failed: crashed {crashes} times in {secs} s", last.name),
            _ => format!("{} crashed {crashes} times in {secs} s", last.name),
        };
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(id: &str, then: State) -> JobEvent {
        JobEvent {
            id: id.into(),
            name: format!("Backend {id}"),
            notify: true,
            kind: EventKind::Exited {
                code: Some(1),
                signal: None,
                then,
            },
            last_stderr: Some("ValueError: boom".into()),
            log: None,
        }
    }

    #[test]
    fn the_first_event_is_shown_at_once_with_its_stderr_line() {
        let mut l = Limiter::default();
        let note = l.push(crash("a", State::Backoff), Instant::now()).unwrap();
        assert_eq!(note.summary, "Backend a crashed");
        assert_eq!(note.body, "exited (code 1); restarting\nValueError: boom");
    }

    #[test]
    fn a_burst_becomes_one_note_when_the_window_closes() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        assert!(l.push(crash("a", State::Backoff), t0).is_some());
        for i in 1..3 {
            let t = t0 + Duration::from_secs(i);
            assert_eq!(l.push(crash("a", State::Backoff), t), None);
        }
        assert_eq!(
            l.push(crash("a", State::Failed), t0 + Duration::from_secs(4)),
            None
        );
        assert_eq!(l.next_deadline(), Some(t0 + WINDOW));
        assert!(l.due(t0 + Duration::from_secs(29)).is_empty());
        let notes = l.due(t0 + WINDOW);
        assert_eq!(notes.len(), 1);
        assert_eq!(
            notes[0].summary,
            "Backend a failed: crashed 4 times in 30 s"
        );
        assert!(
            notes[0].body.starts_with("exited (code 1); gave up"),
            "{notes:?}"
        );
        // The merged note opened a new window: nothing is held, so the next
        // tick forgets it, and a later crash is shown at once again.
        assert_eq!(l.next_deadline(), None);
        assert!(l.due(t0 + WINDOW * 2).is_empty());
        assert!(
            l.push(crash("a", State::Backoff), t0 + WINDOW * 2)
                .is_some()
        );
    }

    #[test]
    fn an_event_during_the_merged_notes_window_waits_for_the_next() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        l.push(crash("a", State::Backoff), t0);
        l.push(crash("a", State::Backoff), t0 + Duration::from_secs(1));
        assert_eq!(l.due(t0 + WINDOW).len(), 1);
        let t1 = t0 + WINDOW + Duration::from_secs(5);
        assert_eq!(l.push(crash("a", State::Backoff), t1), None);
        assert_eq!(l.next_deadline(), Some(t0 + WINDOW * 2));
        let notes = l.due(t0 + WINDOW * 2);
        assert_eq!(
            notes[0].summary, "Backend a crashed",
            "one crash is not a burst"
        );
    }

    #[test]
    fn backends_are_limited_separately() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        assert!(l.push(crash("a", State::Backoff), t0).is_some());
        assert!(l.push(crash("b", State::Backoff), t0).is_some());
        assert!(l.push(crash("a", State::Backoff), t0).is_none());
    }

    #[test]
    fn wording_of_each_kind() {
        let mut e = crash("a", State::Exited);
        e.last_stderr = None;
        e.kind = EventKind::Exited {
            code: None,
            signal: Some("SIGSEGV".into()),
            then: State::Exited,
        };
        assert_eq!(single(&e).summary, "Backend a crashed");
        assert_eq!(single(&e).body, "exited (SIGSEGV)");
        e.kind = EventKind::Exited {
            code: Some(0),
            signal: None,
            then: State::Exited,
        };
        assert_eq!(single(&e).summary, "Backend a exited");
        e.kind = EventKind::LaunchFailed {
            state: State::IntegrityFailed,
            reason: "sha256 mismatch".into(),
        };
        assert_eq!(single(&e).summary, "Backend a: checksum mismatch");
        e.kind = EventKind::Untrusted {
            reason: "bad signature".into(),
        };
        assert_eq!(single(&e).summary, "Backend a: untrusted");
    }

    fn update(id: &str, kind: EventKind) -> JobEvent {
        JobEvent {
            kind,
            last_stderr: None,
            ..crash(id, State::Exited)
        }
    }

    fn found(version: &str) -> EventKind {
        EventKind::UpdateFound {
            version: version.into(),
        }
    }

    #[test]
    fn an_update_found_is_told_once_per_version() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        let note = l.push(update("a", found("1.2.0")), t0).unwrap();
        assert_eq!(note.summary, "Backend a 1.2.0 is available");
        assert_eq!(note.body, "");
        assert!(!note.urgent);
        let later = t0 + WINDOW * 3;
        assert_eq!(l.push(update("a", found("1.2.0")), later), None);
        assert!(l.push(update("b", found("1.2.0")), later).is_some());
        assert!(l.push(update("a", found("1.3.0")), later).is_some());
        assert!(l.due(later).is_empty(), "news leaves nothing held");
    }

    #[test]
    fn a_rollback_is_shown_at_once_even_after_a_burst_of_crashes() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        let applied = EventKind::UpdateApplied {
            version: "1.2.0".into(),
            from: "1.0.0".into(),
        };
        let note = l.push(update("a", applied), t0).unwrap();
        assert_eq!(
            (note.summary.as_str(), note.body.as_str()),
            ("Backend a updated to 1.2.0", "from 1.0.0")
        );
        assert!(l.push(crash("a", State::Backoff), t0).is_some());
        assert!(l.push(crash("a", State::Backoff), t0).is_none());
        let rolled = EventKind::RolledBack {
            version: "1.2.0".into(),
            to: "1.0.0".into(),
            reason: "exited (code 1) 10s into its probation".into(),
        };
        let note = l.push(update("a", rolled), t0).unwrap();
        assert_eq!(note.summary, "Backend a 1.2.0 rolled back to 1.0.0");
        assert_eq!(note.body, "exited (code 1) 10s into its probation");
        assert!(note.urgent);
        // The held crash is still told when its window closes.
        let notes = l.due(t0 + WINDOW);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].summary, "Backend a crashed 2 times in 30 s");
    }

    #[test]
    fn a_long_stderr_line_is_cut() {
        let mut e = crash("a", State::Exited);
        e.last_stderr = Some("x".repeat(500));
        let body = single(&e).body;
        let line = body.lines().nth(1).unwrap();
        assert_eq!(line.chars().count(), STDERR_CHARS);
        assert!(line.ends_with('…'));
    }
}
