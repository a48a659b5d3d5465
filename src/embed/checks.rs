//! The `update.check` timer (v3, DESIGN.md "Updates"): while the launcher
//! runs, each backend whose `update` has `check` has its feed read every
//! so often, and with `auto: true` what is found is installed.
//!
//! One task for the whole launcher holds one deadline per such backend and
//! sleeps until the earliest; with no backend that has `check` it arms no
//! timer at all (an idle launcher costs what it did). It follows the
//! supervisor's [`UpdateChecks`], which change only when a catalog changes
//! them, and asks like any other asker: `check-update`, then `update`,
//! through the supervisor handle, so the job decides (one update at a time,
//! never a bad version) and its status, events and berth.log lines are the
//! same as for a user's `berth update`.
//!
//! The first check comes [`FIRST_CHECK`] after the backend appears (the
//! launcher's start, a new manifest), then one every `check`, as Sparkle
//! checks at launch and then on its interval: berth keeps no record of its
//! last check across runs, so a launcher that never ran `check` long would
//! otherwise never look. A check still under way when the next one is due
//! (a stalled feed, an update in probation) is left alone and the next
//! waits a whole interval.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::supervisor::{CheckPlan, SupervisorHandle, UpdateChecks};
use crate::verb::Verb;

/// How long after a backend appears its first check comes (or its
/// `check`, if shorter): the launcher's own start and the backends'
/// autostarts go first.
pub const FIRST_CHECK: Duration = Duration::from_secs(10);

/// When each backend's next check is due.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    next: BTreeMap<String, (Instant, CheckPlan)>,
}

impl Schedule {
    /// Follows `plans` at `now`: a new backend, or one whose plan changed,
    /// is due after [`FIRST_CHECK`]; an unchanged one keeps its deadline;
    /// a gone one is dropped.
    pub fn plan(&mut self, plans: &UpdateChecks, now: Instant) {
        self.next
            .retain(|id, (_, plan)| plans.get(id) == Some(plan));
        for (id, plan) in plans {
            self.next
                .entry(id.clone())
                .or_insert_with(|| (now + FIRST_CHECK.min(plan.every), *plan));
        }
    }

    /// The earliest deadline; `None`: nothing to time.
    pub fn deadline(&self) -> Option<Instant> {
        self.next.values().map(|(at, _)| *at).min()
    }

    /// The backends due at `now` (id, `auto`), each due again one `check`
    /// from now (not from its deadline: a launcher that slept through
    /// several does not catch up in a burst).
    pub fn due(&mut self, now: Instant) -> Vec<(String, bool)> {
        let mut due = Vec::new();
        for (id, (at, plan)) in &mut self.next {
            if *at <= now {
                *at = now + plan.every;
                due.push((id.clone(), plan.auto));
            }
        }
        due
    }
}

/// Starts the timer for `handle`'s backends; aborting the task stops it
/// (checks under way finish on their own).
pub(crate) fn spawn(handle: SupervisorHandle) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut plans = handle.update_checks();
        let mut schedule = Schedule::default();
        schedule.plan(&plans.borrow_and_update(), Instant::now());
        let mut asking: HashMap<String, JoinHandle<()>> = HashMap::new();
        loop {
            tokio::select! {
                changed = plans.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let plans = plans.borrow_and_update().clone();
                    schedule.plan(&plans, Instant::now());
                    asking.retain(|id, _| plans.contains_key(id));
                }
                () = crate::timer::sleep_until(schedule.deadline()) => {
                    for (id, auto) in schedule.due(Instant::now()) {
                        if asking.get(&id).is_some_and(|task| !task.is_finished()) {
                            tracing::debug!(backend = %id, "update check: the last one is still under way");
                            continue;
                        }
                        let task = tokio::spawn(check(handle.clone(), id.clone(), auto));
                        asking.insert(id, task);
                    }
                }
            }
        }
    })
}

/// One timed check of `id`, then, with `auto`, the update it found. The
/// job records each outcome in the status's `update` and in berth.log, and
/// refuses what it cannot do now; here it is only a debug line.
async fn check(handle: SupervisorHandle, id: String, auto: bool) {
    tracing::debug!(backend = %id, "update check (check: timer)");
    if let Err(e) = handle.command(&id, Verb::CheckUpdate).await {
        tracing::debug!(backend = %id, "timed update check: {e}");
        return;
    }
    if !auto {
        return;
    }
    let found = handle
        .snapshot()
        .get(&id)
        .and_then(|b| b.update.as_ref()?.available.clone());
    let Some(version) = found else {
        return;
    };
    tracing::info!(backend = %id, %version, "update found; installing it (auto: true)");
    if let Err(e) = handle.command(&id, Verb::Update).await {
        tracing::debug!(backend = %id, "automatic update: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(list: &[(&str, u64, bool)]) -> UpdateChecks {
        list.iter()
            .map(|(id, secs, auto)| {
                let plan = CheckPlan {
                    every: Duration::from_secs(*secs),
                    auto: *auto,
                };
                ((*id).to_owned(), plan)
            })
            .collect()
    }

    #[test]
    fn no_backend_with_check_arms_no_timer() {
        let mut s = Schedule::default();
        s.plan(&UpdateChecks::new(), Instant::now());
        assert_eq!(s.deadline(), None);
        assert!(
            s.due(Instant::now() + Duration::from_secs(86_400))
                .is_empty()
        );
    }

    #[test]
    fn the_first_check_comes_soon_then_one_per_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.plan(&plans(&[("a", 3600, false), ("b", 2, true)]), t0);
        // `b`'s interval is shorter than FIRST_CHECK: it comes first.
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(s.due(t0 + Duration::from_secs(2)), [("b".to_owned(), true)]);
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(4)));
        let t1 = t0 + FIRST_CHECK;
        let due = s.due(t1);
        assert_eq!(due, [("a".to_owned(), false), ("b".to_owned(), true)]);
        assert_eq!(s.deadline(), Some(t1 + Duration::from_secs(2)));
        // `a` is next due a whole hour later (`b` meanwhile every 2 s).
        let b = [("b".to_owned(), true)];
        assert_eq!(s.due(t1 + Duration::from_secs(3599)), b);
        assert_eq!(
            s.due(t1 + Duration::from_secs(3600)),
            [("a".to_owned(), false)]
        );
    }

    #[test]
    fn a_late_wake_up_checks_once_not_once_per_missed_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.plan(&plans(&[("a", 60, false)]), t0);
        let late = t0 + Duration::from_secs(3600);
        assert_eq!(s.due(late).len(), 1);
        assert!(s.due(late).is_empty());
        assert_eq!(s.deadline(), Some(late + Duration::from_secs(60)));
    }

    #[test]
    fn definitions_that_come_change_and_go_move_the_deadlines() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.plan(&plans(&[("a", 3600, false), ("b", 3600, false)]), t0);
        s.due(t0 + FIRST_CHECK);
        let t1 = t0 + Duration::from_secs(100);
        // `a` unchanged keeps its deadline; `b` now automatic starts over;
        // `c` is new; and once `a` is gone, only `b` and `c` remain.
        s.plan(
            &plans(&[("a", 3600, false), ("b", 3600, true), ("c", 60, false)]),
            t1,
        );
        assert_eq!(s.deadline(), Some(t1 + FIRST_CHECK));
        assert_eq!(
            s.due(t1 + FIRST_CHECK),
            [("b".to_owned(), true), ("c".to_owned(), false)]
        );
        s.plan(&plans(&[("b", 3600, true), ("c", 60, false)]), t1);
        assert!(s.next.keys().eq(["b", "c"]));
        s.plan(&UpdateChecks::new(), t1);
        assert_eq!(s.deadline(), None);
    }
}
