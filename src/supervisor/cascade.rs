//! `restart: true` edges when the dependency's run ends by itself (a
//! crash, an unhealthy verdict) or for any reason berth did not order
//! through its dependents: which dependents are now running against a run
//! of their dependency that is over.
//!
//! A user Stop or Restart of the dependency stops its dependents first (the
//! handle does it), so they are never found here. Everything else is read
//! from the published snapshots: a dependent whose process started before
//! the dependency's current run, or whose dependency has no run, depends
//! on a run that is gone. The handle then stops it and starts it again once
//! the dependency is back at its condition (`reach::verdict`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::manifest::Backend;
use crate::manifest::depends::Condition;
use crate::status::{BackendStatus, Snapshot, State};

/// A `restart: true` edge: `dependent` depends on `dependency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub dependent: String,
    pub dependency: String,
    pub condition: Condition,
}

/// The `restart: true` edges among `defs`.
pub fn edges(defs: &BTreeMap<String, Arc<Backend>>) -> Vec<Edge> {
    defs.iter()
        .flat_map(|(id, def)| {
            def.depends_on
                .iter()
                .filter(|(_, d)| d.restart)
                .map(move |(on, d)| Edge {
                    dependent: id.clone(),
                    dependency: on.to_string(),
                    condition: d.condition,
                })
        })
        .collect()
}

/// The edges whose dependent runs against a run of its dependency that is
/// over (or ending). A dependent without a process, or a dependency no
/// longer listed, is none of this's business.
pub fn stale<'a>(edges: &'a [Edge], snapshot: &Snapshot) -> Vec<&'a Edge> {
    edges
        .iter()
        .filter(|e| {
            let (Some(x), Some(d)) = (snapshot.get(&e.dependent), snapshot.get(&e.dependency))
            else {
                return false;
            };
            let (Some(x_since), true) = (live_since(x), x.state != State::Stopping) else {
                return false;
            };
            match live_since(d).filter(|_| d.state != State::Stopping) {
                None => true,
                Some(d_since) => d_since > x_since,
            }
        })
        .collect()
}

/// When the current process of `s` started, if it has one.
fn live_since(s: &BackendStatus) -> Option<std::time::Instant> {
    s.detail.started_at.filter(|_| s.state.has_process())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn status(id: &str, state: State, since: Option<Instant>) -> BackendStatus {
        let mut s = BackendStatus::new(format!("/b/{id}.yaml"), state);
        s.id = Some(id.into());
        s.detail.started_at = since;
        s
    }

    fn edge() -> Vec<Edge> {
        vec![Edge {
            dependent: "api".into(),
            dependency: "db".into(),
            condition: Condition::Running,
        }]
    }

    fn found(api: BackendStatus, db: BackendStatus) -> bool {
        let snapshot = Snapshot {
            backends: vec![api, db],
        };
        !stale(&edge(), &snapshot).is_empty()
    }

    #[test]
    fn a_dependent_started_against_the_current_run_is_fine() {
        let t = Instant::now();
        let later = t + Duration::from_millis(5);
        assert!(!found(
            status("api", State::Running, Some(later)),
            status("db", State::Running, Some(t))
        ));
    }

    #[test]
    fn a_dependency_that_ended_or_is_ending_or_started_again_makes_it_stale() {
        let t = Instant::now();
        let later = t + Duration::from_millis(5);
        let api = || status("api", State::Running, Some(later));
        assert!(found(api(), status("db", State::Backoff, None)));
        assert!(found(api(), status("db", State::Stopping, Some(t))));
        assert!(found(api(), status("db", State::Exited, None)));
        let again = later + Duration::from_millis(5);
        assert!(found(api(), status("db", State::Starting, Some(again))));
    }

    #[test]
    fn a_dependent_without_a_process_is_left_alone() {
        assert!(!found(
            status("api", State::Stopped, None),
            status("db", State::Backoff, None)
        ));
        assert!(!found(
            status("api", State::Starting, None),
            status("db", State::Backoff, None)
        ));
    }
}
