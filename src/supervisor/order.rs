//! Stopping a set of backends in dependency order (DESIGN.md: a stop,
//! Stop all and Quit stop dependents before their dependencies).
//!
//! Each id is acted on once every one of its dependents in the set is done,
//! not layer by layer: independent branches go in parallel, and a slow stop
//! holds up only what it depends on. Each id's wait is on its dependents'
//! completion signals (a `watch` each), never a poll.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use tokio::sync::watch;

/// For each id of a set, the ids of the set that must be done before it:
/// its dependents, directly or through ids outside the set (`all_dependents`
/// gives them, `graph::Graph::all_dependents`). An edge inside a cycle is
/// dropped (the registry keeps cycles out; a wait on one would never end).
pub fn above(
    ids: &BTreeSet<String>,
    all_dependents: impl Fn(&str) -> BTreeSet<String>,
) -> BTreeMap<String, Vec<String>> {
    let reach: BTreeMap<&String, BTreeSet<String>> =
        ids.iter().map(|id| (id, all_dependents(id))).collect();
    ids.iter()
        .map(|id| {
            let first = ids
                .iter()
                .filter(|x| *x != id && reach[id].contains(*x) && !reach[x].contains(id))
                .cloned()
                .collect();
            (id.clone(), first)
        })
        .collect()
}

/// Runs `act` on every id of `above` (see [`above`]), each once all the
/// ids listed for it are done; returns each id's result.
pub async fn dependents_first<T, F, Fut>(
    above: BTreeMap<String, Vec<String>>,
    act: F,
) -> BTreeMap<String, T>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (mut senders, receivers): (BTreeMap<_, _>, BTreeMap<_, _>) = above
        .keys()
        .map(|id| {
            let (tx, rx) = watch::channel(false);
            ((id.clone(), tx), (id.clone(), rx))
        })
        .unzip();
    let mut set = tokio::task::JoinSet::new();
    for (id, first) in above {
        let waits: Vec<watch::Receiver<bool>> = first
            .iter()
            .filter_map(|x| receivers.get(x).cloned())
            .collect();
        let done = senders.remove(&id);
        let work = act(id.clone());
        set.spawn(async move {
            for mut w in waits {
                // A task that ended without saying so (a panic) holds
                // nothing up.
                let _ = w.wait_for(|done| *done).await;
            }
            let out = work.await;
            if let Some(done) = done {
                let _ = done.send(true);
            }
            (id, out)
        });
    }
    let mut results = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((id, out)) = joined {
            results.insert(id, out);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    /// web -> api -> db, worker -> db: who needs each, transitively.
    fn dependents(id: &str) -> BTreeSet<String> {
        match id {
            "db" => set(&["api", "web", "worker"]),
            "api" => set(&["web"]),
            _ => set(&[]),
        }
    }

    #[test]
    fn each_id_waits_for_its_dependents_in_the_set_even_through_others() {
        let a = above(&set(&["db", "web", "worker"]), dependents);
        assert_eq!(a["db"], vec!["web".to_owned(), "worker".to_owned()]);
        assert!(a["web"].is_empty() && a["worker"].is_empty());
    }

    #[test]
    fn an_edge_in_a_cycle_is_dropped() {
        let cyc = |_: &str| set(&["a", "b"]);
        let a = above(&set(&["a", "b"]), cyc);
        assert!(a["a"].is_empty() && a["b"].is_empty());
    }

    #[tokio::test]
    async fn dependents_finish_first_and_branches_go_in_parallel() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let a = above(&set(&["db", "api", "web", "worker"]), dependents);
        let l = log.clone();
        let t0 = tokio::time::Instant::now();
        dependents_first(a, move |id| {
            let l = l.clone();
            async move {
                // web is slow: worker must not wait for it.
                let ms = if id == "web" { 200 } else { 10 };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                l.lock().unwrap().push(id);
            }
        })
        .await;
        let order = log.lock().unwrap().clone();
        assert_eq!(order, ["worker", "web", "api", "db"]);
        assert!(t0.elapsed() < Duration::from_millis(1000));
    }
}
