//! Dependencies at run time: what a dependent asks of the backends it
//! depends on, and whether a dependency has reached the condition asked.
//!
//! A job about to start with `depends_on` sends one [`Reach`] per direct
//! dependency (through the handle, the only one that sends to jobs) and
//! waits in `starting`, `waiting_for` them, on the receiving end of one
//! channel. The dependency's job starts if it has no process, keeps the
//! request as a waiter and answers it from the status it publishes anyway
//! on each of its transitions ([`verdict`]): nobody polls, and each job
//! still only reads its own state. A dependency's own dependencies are its
//! job's to wait for, so a chain starts in order and independent branches
//! start in parallel without anyone computing layers.

use tokio::sync::mpsc;

use crate::manifest::depends::Condition;
use crate::status::{BackendStatus, State};

/// A dependent's request: start `id` if needed and tell `progress` once it
/// reached `condition`, or why it cannot.
pub struct Reach {
    pub id: String,
    pub condition: Condition,
    pub progress: Progress,
}

/// Where a dependent hears about its dependencies.
pub type Progress = mpsc::UnboundedSender<Arrival>;

/// One dependency's answer: reached, or why not (`"failed: gave up after 3
/// retries"`).
#[derive(Debug)]
pub struct Arrival {
    pub id: String,
    pub result: Result<(), String>,
}

/// A request a dependency's job keeps until its status answers it.
pub struct Waiter {
    pub condition: Condition,
    pub progress: Progress,
}

impl Waiter {
    /// Answers from `status` unless it is still pending; true when kept.
    /// A dependent that stopped waiting (its receiver is gone) is dropped.
    pub fn keep(&self, id: &str, status: &BackendStatus) -> bool {
        if self.progress.is_closed() {
            return false;
        }
        let result = match verdict(self.condition, status) {
            Verdict::Pending => return true,
            Verdict::Met => Ok(()),
            Verdict::Failed(why) => Err(why),
        };
        let _ = self.progress.send(Arrival {
            id: id.to_owned(),
            result,
        });
        false
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Pending,
    /// It cannot get there: its state and reason.
    Failed(String),
}

/// Has a dependency whose status is `s` reached `condition`? `started`: a
/// process exists; `running`: readiness matched; `healthy`: a health
/// check passed. A backoff or a stop under way may still lead there (the
/// restart policy); a state without a process, or a readiness timeout,
/// cannot.
pub fn verdict(condition: Condition, s: &BackendStatus) -> Verdict {
    match s.state {
        State::Running => match condition {
            Condition::Healthy if s.healthy != Some(true) => Verdict::Pending,
            _ => Verdict::Met,
        },
        State::Starting if condition == Condition::Started && s.pid.is_some() => Verdict::Met,
        // Past its readiness timeout a backend stays starting with an error.
        State::Starting if s.pid.is_some() && s.error.is_some() => Verdict::Failed(describe(s)),
        State::Starting | State::Backoff | State::Stopping => Verdict::Pending,
        _ => Verdict::Failed(describe(s)),
    }
}

/// `failed: gave up after 3 retries`, `exited (code 1)`, `starting: not
/// ready after 1s`: the state and its reason, without the id.
pub fn describe(s: &BackendStatus) -> String {
    let mut text = crate::human::with_exit(s.state.as_str(), s.exit_code, s.signal.as_deref());
    if let Some(error) = &s.error {
        text.push_str(": ");
        text.push_str(error);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State) -> BackendStatus {
        BackendStatus::new("/b/db.yaml", state)
    }

    #[test]
    fn started_is_met_once_a_process_exists() {
        let mut s = status(State::Starting);
        assert_eq!(verdict(Condition::Started, &s), Verdict::Pending);
        s.pid = Some(42);
        assert_eq!(verdict(Condition::Started, &s), Verdict::Met);
        assert_eq!(verdict(Condition::Running, &s), Verdict::Pending);
    }

    #[test]
    fn healthy_waits_for_a_passed_check() {
        let mut s = status(State::Running);
        s.pid = Some(42);
        assert_eq!(verdict(Condition::Running, &s), Verdict::Met);
        assert_eq!(verdict(Condition::Healthy, &s), Verdict::Pending);
        s.healthy = Some(false);
        assert_eq!(verdict(Condition::Healthy, &s), Verdict::Pending);
        s.healthy = Some(true);
        assert_eq!(verdict(Condition::Healthy, &s), Verdict::Met);
    }

    #[test]
    fn a_ready_timeout_fails_running_but_not_started() {
        let mut s = status(State::Starting);
        s.pid = Some(42);
        s.error = Some("not ready after 1s".into());
        assert_eq!(verdict(Condition::Started, &s), Verdict::Met);
        assert_eq!(
            verdict(Condition::Running, &s),
            Verdict::Failed("starting: not ready after 1s".into())
        );
    }

    #[test]
    fn a_backoff_or_a_stop_may_still_get_there() {
        for state in [State::Backoff, State::Stopping] {
            assert_eq!(
                verdict(Condition::Running, &status(state)),
                Verdict::Pending
            );
        }
    }

    #[test]
    fn states_without_a_process_fail_with_their_reason() {
        let mut s = status(State::Failed);
        s.exit_code = Some(1);
        s.error = Some("gave up after 0 retries".into());
        assert_eq!(
            verdict(Condition::Started, &s),
            Verdict::Failed("failed (code 1): gave up after 0 retries".into())
        );
        for state in [
            State::Stopped,
            State::Exited,
            State::NotFound,
            State::IntegrityFailed,
            State::Untrusted,
            State::Invalid,
        ] {
            assert!(matches!(
                verdict(Condition::Started, &status(state)),
                Verdict::Failed(_)
            ));
        }
    }
}
