//! The manifest's `actions` at run time: when each one can act, and what
//! running one does.
//!
//! Availability is a pure function of the job's state and the values its
//! phase knows (`job::state::values`), used both for the `actions` of the
//! status (the tray's enabled flags, `status --json`) and by the job when an
//! action is asked for, so the tray and `berth action` always agree.

use crate::manifest::actions::{Action, ActionKind};
use crate::status::{ActionStatus, Outcome, State};
use crate::vars::Values;

/// What running an action did.
#[derive(Debug, Clone, PartialEq)]
pub enum Ran {
    /// The desktop's opener (`xdg-open`) was started with this URL or path.
    Opened(String),
    /// The line was queued for the backend's stdin.
    Sent,
    /// A restart with the action's arguments was accepted.
    Restarted(Outcome),
}

/// Why `action` cannot act now, in one line; `None` when it can.
pub fn unavailable(action: &Action, state: State, values: &Values<'_>) -> Option<String> {
    match &action.kind {
        ActionKind::Open(target) => target.resolve(values).err().map(|e| e.to_string()),
        ActionKind::Send(_) => (!accepts_lines(state))
            .then(|| format!("it needs a running backend, and it is {state}")),
        ActionKind::Restart(_) => {
            (!state.can_restart()).then(|| format!("Restart cannot act while {state}"))
        }
    }
}

/// A backend in this state has a process that may read its stdin.
pub fn accepts_lines(state: State) -> bool {
    matches!(state, State::Starting | State::Running)
}

/// `actions` of the status: each label and whether it can act now.
pub fn statuses(actions: &[Action], state: State, values: &Values<'_>) -> Vec<ActionStatus> {
    actions
        .iter()
        .map(|a| ActionStatus {
            label: a.label.clone(),
            available: unavailable(a, state, values).is_none(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::actions::OpenTarget;
    use crate::manifest::scalar::Scalar;

    fn action(kind: ActionKind) -> Action {
        Action {
            label: "A".into(),
            kind,
        }
    }

    fn values(pid: Option<u32>, port: Option<u16>) -> Values<'static> {
        Values {
            id: "web",
            pid,
            ready_json: None,
            ready_port: port,
            port: None,
            token: None,
        }
    }

    #[test]
    fn open_needs_its_variables() {
        let by_id = action(ActionKind::Open(OpenTarget::parse("/doc/${id}").unwrap()));
        let by_port = action(ActionKind::Open(
            OpenTarget::parse("http://127.0.0.1:${ready.port}/").unwrap(),
        ));
        let stopped = values(None, None);
        assert_eq!(unavailable(&by_id, State::Stopped, &stopped), None);
        assert_eq!(
            unavailable(&by_port, State::Stopped, &stopped).as_deref(),
            Some("${ready.port} is not known: the backend is not running")
        );
        let running = values(Some(9), Some(80));
        assert_eq!(unavailable(&by_port, State::Running, &running), None);
    }

    #[test]
    fn send_needs_a_process_and_restart_follows_restart() {
        let send = action(ActionKind::Send("{}".into()));
        let restart = action(ActionKind::Restart(vec!["--debug".into()]));
        let v = values(Some(1), None);
        assert_eq!(unavailable(&send, State::Running, &v), None);
        assert_eq!(unavailable(&send, State::Starting, &v), None);
        assert_eq!(
            unavailable(&send, State::Stopping, &v).as_deref(),
            Some("it needs a running backend, and it is stopping")
        );
        assert_eq!(unavailable(&restart, State::Stopped, &v), None);
        assert_eq!(unavailable(&restart, State::Running, &v), None);
        assert!(unavailable(&restart, State::Stopping, &v).is_some());
        let listed = statuses(&[send, restart], State::Exited, &values(None, None));
        assert_eq!(
            listed.iter().map(|a| a.available).collect::<Vec<_>>(),
            [false, true]
        );
    }
}
