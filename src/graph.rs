//! The dependency graph between backends (v3, DESIGN.md "Dependencies
//! between backends"): a pure function of the winning definitions.
//!
//! [`Graph::new`] takes the definitions in force (one per id, the catalog's
//! winners) and answers every question about their `depends_on` edges
//! without touching a process: what X needs (directly, transitively), who
//! needs Y, in which layers to start X, in which order to stop a set, which
//! ids form a cycle, and what is wrong with X's edges (an id no manifest
//! defines, `healthy` on a dependency without `health`). The registry uses
//! it to mark cycles invalid and to show X's errors; the supervisor uses it
//! to order starts and stops. Nothing here waits or spawns: it is
//! unit-tested on definitions alone.
//!
//! Words used below: X *depends on* D when X's `depends_on` names D; X is
//! then a *dependent* of D. Edges to an id that no definition carries are
//! kept (they are X's [`GraphError::Unknown`]) but lead nowhere.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::manifest::depends::{Condition, Dependency};
use crate::manifest::{Backend, BackendId};

/// What the graph holds of one definition.
#[derive(Debug, Clone)]
struct Node {
    depends_on: BTreeMap<BackendId, Dependency>,
    /// Direct dependents (the reverse edges).
    dependents: BTreeSet<BackendId>,
    has_health: bool,
}

/// The `depends_on` edges between a set of definitions (one per id).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: BTreeMap<BackendId, Node>,
}

/// A problem of the graph, in one line as users see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The ids of a cycle in order, the first repeated at the end:
    /// `[a, b, a]` is "dependency cycle: a -> b -> a"; `[a, a]` is a
    /// self-dependency.
    #[error("dependency cycle: {}", join(.0))]
    Cycle(Vec<BackendId>),
    /// The id asked about is not one of the definitions.
    #[error("no manifest defines {0}")]
    NotDefined(String),
    /// `backend` depends on an id that no definition carries.
    #[error("dependency {dependency}: no manifest defines this id")]
    Unknown {
        backend: BackendId,
        dependency: BackendId,
    },
    /// `backend` waits for `dependency` to be `healthy`, but it has no
    /// `health` check, so it never would be.
    #[error("dependency {dependency}: condition healthy, but {dependency} has no `health` check")]
    NoHealth {
        backend: BackendId,
        dependency: BackendId,
    },
}

fn join(ids: &[BackendId]) -> String {
    let words: Vec<&str> = ids.iter().map(BackendId::as_str).collect();
    words.join(" -> ")
}

impl Graph {
    /// The graph of `backends`: the definitions in force, one per id (the
    /// catalog's winners: `catalog.winners().map(|(_, b)| &**b)`). Should an
    /// id come twice, the last one counts.
    pub fn new<'a>(backends: impl IntoIterator<Item = &'a Backend>) -> Self {
        let mut nodes: BTreeMap<BackendId, Node> = backends
            .into_iter()
            .map(|b| {
                let node = Node {
                    depends_on: b.depends_on.clone(),
                    dependents: BTreeSet::new(),
                    has_health: b.health.is_some(),
                };
                (b.id.clone(), node)
            })
            .collect();
        let edges: Vec<(BackendId, BackendId)> = nodes
            .iter()
            .flat_map(|(id, n)| n.depends_on.keys().map(move |d| (id.clone(), d.clone())))
            .collect();
        for (dependent, dependency) in edges {
            if let Some(node) = nodes.get_mut(&dependency) {
                node.dependents.insert(dependent);
            }
        }
        Self { nodes }
    }

    /// Is `id` one of the definitions?
    pub fn contains(&self, id: &str) -> bool {
        self.nodes.contains_key(id)
    }

    /// `id`'s own `depends_on` (empty for an unknown id), sorted by id.
    pub fn dependencies(&self, id: &str) -> impl Iterator<Item = (&BackendId, &Dependency)> {
        self.nodes.get(id).into_iter().flat_map(|n| &n.depends_on)
    }

    /// The definitions whose `depends_on` names `id` directly, sorted.
    pub fn dependents(&self, id: &str) -> impl Iterator<Item = &BackendId> {
        self.nodes.get(id).into_iter().flat_map(|n| &n.dependents)
    }

    /// Every id `id` needs, directly or through others (known ids only; not
    /// `id` itself unless it is in a cycle).
    pub fn all_dependencies(&self, id: &str) -> BTreeSet<BackendId> {
        self.reach(id, |n| Box::new(n.depends_on.keys()))
    }

    /// Every id that needs `id`, directly or through others (not `id`
    /// itself unless it is in a cycle).
    pub fn all_dependents(&self, id: &str) -> BTreeSet<BackendId> {
        self.reach(id, |n| Box::new(n.dependents.iter()))
    }

    /// The known ids reachable from `id` by `next` (breadth first).
    fn reach<'a>(
        &'a self,
        id: &str,
        next: impl Fn(&'a Node) -> Box<dyn Iterator<Item = &'a BackendId> + 'a>,
    ) -> BTreeSet<BackendId> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<&BackendId> = VecDeque::new();
        if let Some(node) = self.nodes.get(id) {
            queue.extend(next(node));
        }
        while let Some(at) = queue.pop_front() {
            let Some(node) = self.nodes.get(at) else {
                continue;
            };
            if seen.insert(at.clone()) {
                queue.extend(next(node));
            }
        }
        seen
    }

    /// What is wrong with `id`'s own edges: each id it names that no
    /// definition carries, and each `healthy` edge to a definition without
    /// `health`, sorted by dependency id. Cycles are [`Graph::cycles`]'.
    pub fn problems(&self, id: &str) -> Vec<GraphError> {
        let Some((me, node)) = self.nodes.get_key_value(id) else {
            return Vec::new();
        };
        node.depends_on
            .iter()
            .filter_map(|(dep, edge)| match self.nodes.get(dep) {
                None => Some(GraphError::Unknown {
                    backend: me.clone(),
                    dependency: dep.clone(),
                }),
                Some(d) if edge.condition == Condition::Healthy && !d.has_health => {
                    Some(GraphError::NoHealth {
                        backend: me.clone(),
                        dependency: dep.clone(),
                    })
                }
                Some(_) => None,
            })
            .collect()
    }

    /// Every id that is in a cycle, with a cycle through it in order
    /// ([`GraphError::Cycle`]). The cycle shown is the shortest through that
    /// id, turned to start at its smallest id, so every member of a simple
    /// cycle gets the same one.
    pub fn cycles(&self) -> BTreeMap<BackendId, GraphError> {
        let mut out = BTreeMap::new();
        for id in self.nodes.keys() {
            if let Some(mut path) = self.shortest_cycle(id) {
                // `path` is [id, ..., id]: turn it to start at its smallest id.
                path.pop();
                let start = path
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, id)| *id)
                    .map_or(0, |(i, _)| i);
                path.rotate_left(start);
                path.push(path[0].clone());
                out.insert(id.clone(), GraphError::Cycle(path));
            }
        }
        out
    }

    /// The shortest path `id -> ... -> id` along `depends_on`, if any
    /// (breadth first, neighbours in id order, so the answer is stable).
    fn shortest_cycle(&self, id: &BackendId) -> Option<Vec<BackendId>> {
        let mut came_from: BTreeMap<&BackendId, &BackendId> = BTreeMap::new();
        let mut queue: VecDeque<&BackendId> = VecDeque::from([id]);
        while let Some(at) = queue.pop_front() {
            for next in self
                .nodes
                .get(at)
                .into_iter()
                .flat_map(|n| n.depends_on.keys())
            {
                if next == id {
                    let mut path = vec![id.clone()];
                    let mut back = at;
                    while back != id {
                        path.push(back.clone());
                        back = came_from[back];
                    }
                    path.push(id.clone());
                    path.reverse();
                    return Some(path);
                }
                if self.nodes.contains_key(next) && !came_from.contains_key(next) {
                    came_from.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// How to start `id`: its transitive dependencies and itself in layers.
    /// Every id's dependencies are in earlier layers; the ids of one layer
    /// do not depend on each other (they may start in parallel); the last
    /// layer is `[id]`. A runtime that wants the most parallelism can
    /// instead let each id wait only for its own [`Graph::dependencies`]:
    /// the layers are one valid order, not the only one.
    ///
    /// Errors: `id` is not defined ([`GraphError::NotDefined`]), one of
    /// the ids it needs is unknown (the first such edge, in id order), a
    /// `healthy` edge to a definition without `health`, or a
    /// cycle on the way.
    pub fn start_plan(&self, id: &str) -> Result<Vec<Vec<BackendId>>, GraphError> {
        let Some((me, _)) = self.nodes.get_key_value(id) else {
            return Err(GraphError::NotDefined(id.to_owned()));
        };
        let mut members = self.all_dependencies(id);
        members.insert(me.clone());
        let cycles = self.cycles();
        for member in &members {
            if let Some(cycle) = cycles.get(member) {
                return Err(cycle.clone());
            }
            if let Some(problem) = self.problems(member.as_str()).into_iter().next() {
                return Err(problem);
            }
        }
        // Layer = the longest chain of dependencies below an id.
        let below: BTreeMap<&BackendId, Vec<&BackendId>> = members
            .iter()
            .map(|m| (m, self.dependencies(m.as_str()).map(|(d, _)| d).collect()))
            .collect();
        let mut depth: BTreeMap<&BackendId, usize> = BTreeMap::new();
        for member in &members {
            longest(member, &below, &mut depth);
        }
        Ok(layers(depth))
    }

    /// How to stop `ids` (the ones running, say): in layers, every id after
    /// each of its dependents in the set, transitively (a dependent of a
    /// dependent counts even when the one between is not in the set). The
    /// ids of one layer do not depend on each other (they may stop in
    /// parallel). Ids the graph does not know stop in the first layer.
    /// Cycles are broken arbitrarily but stably (the registry keeps them
    /// out of the definitions in force).
    pub fn stop_order(&self, ids: &BTreeSet<BackendId>) -> Vec<Vec<BackendId>> {
        // Each id's dependents within the set, through ids outside it too.
        let above: BTreeMap<&BackendId, Vec<&BackendId>> = ids
            .iter()
            .map(|id| {
                let all = self.all_dependents(id.as_str());
                (
                    id,
                    ids.iter()
                        .filter(|x| *x != id && all.contains(*x))
                        .collect(),
                )
            })
            .collect();
        let mut rank: BTreeMap<&BackendId, usize> = BTreeMap::new();
        for id in ids {
            longest(id, &above, &mut rank);
        }
        layers(rank)
    }
}

/// The longest chain from `id` along `next` (memoised in `memo`); an id met
/// again while its own chain is being measured (a cycle) counts as 0 there.
fn longest<'a>(
    id: &'a BackendId,
    next: &BTreeMap<&'a BackendId, Vec<&'a BackendId>>,
    memo: &mut BTreeMap<&'a BackendId, usize>,
) -> usize {
    if let Some(&d) = memo.get(id) {
        return d;
    }
    memo.insert(id, 0);
    let d = next
        .get(id)
        .into_iter()
        .flatten()
        .map(|n| longest(n, next, memo) + 1)
        .max()
        .unwrap_or(0);
    memo.insert(id, d);
    d
}

/// Groups ids by their rank, lowest first.
fn layers(rank: BTreeMap<&BackendId, usize>) -> Vec<Vec<BackendId>> {
    let mut out: BTreeMap<usize, Vec<BackendId>> = BTreeMap::new();
    for (id, r) in rank {
        out.entry(r).or_default().push(id.clone());
    }
    out.into_values().collect()
}

impl fmt::Display for Graph {
    /// One line per edge, `api -> db (healthy)`: for logs and tests.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (id, node) in &self.nodes {
            for (dep, edge) in &node.depends_on {
                writeln!(f, "{id} -> {dep} ({})", edge.condition)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
