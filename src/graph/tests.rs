//! The graph on definitions alone: no folder, no process.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::*;

const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A definition of `id` with `depends_on` as written (`{ db: healthy }`)
/// and, with `health`, a tcp health check.
fn def(id: &str, depends_on: &str, health: bool) -> Backend {
    let health = if health {
        "health: { tcp: \"127.0.0.1:1\" }\n"
    } else {
        ""
    };
    let text = format!(
        "id: {id}\nname: N\nversion: 1.0.0\nexecutable: {{ linux: {{ path: x, sha256: {ZEROS} }} }}\ndepends_on: {depends_on}\n{health}"
    );
    crate::manifest::parse(
        Path::new(&format!("/b/{id}.yaml")),
        text.as_bytes(),
        &PathBuf::from("/r").into(),
    )
    .unwrap()
}

fn graph(defs: &[Backend]) -> Graph {
    Graph::new(defs)
}

fn ids(words: &[&str]) -> BTreeSet<BackendId> {
    words.iter().map(|w| BackendId::new(w).unwrap()).collect()
}

fn words(layers: &[Vec<BackendId>]) -> Vec<Vec<&str>> {
    layers
        .iter()
        .map(|l| l.iter().map(BackendId::as_str).collect())
        .collect()
}

/// api -> db, api -> models, models -> db, worker -> db, web -> api.
fn app() -> Vec<Backend> {
    vec![
        def("db", "{}", true),
        def("models", "{ db: running }", false),
        def(
            "api",
            "{ db: healthy, models: { condition: running, restart: true } }",
            false,
        ),
        def("worker", "{ db: started }", false),
        def("web", "{ api: running }", false),
        def("lone", "{}", false),
    ]
}

#[test]
fn direct_and_transitive_edges_both_ways() {
    let g = graph(&app());
    let direct: Vec<(&str, Condition, bool)> = g
        .dependencies("api")
        .map(|(id, d)| (id.as_str(), d.condition, d.restart))
        .collect();
    assert_eq!(
        direct,
        [
            ("db", Condition::Healthy, false),
            ("models", Condition::Running, true)
        ]
    );
    let dependents: Vec<&str> = g.dependents("db").map(BackendId::as_str).collect();
    assert_eq!(dependents, ["api", "models", "worker"]);
    assert_eq!(g.all_dependencies("web"), ids(&["api", "db", "models"]));
    assert_eq!(
        g.all_dependents("db"),
        ids(&["api", "models", "web", "worker"])
    );
    assert!(g.all_dependencies("lone").is_empty() && g.all_dependents("lone").is_empty());
    assert!(g.all_dependencies("nobody").is_empty());
    assert_eq!(g.dependencies("nobody").count(), 0);
    assert!(g.contains("db") && !g.contains("nobody"));
}

#[test]
fn start_plan_is_layers_with_independent_ones_together() {
    let g = graph(&app());
    assert_eq!(
        words(&g.start_plan("web").unwrap()),
        [vec!["db"], vec!["models"], vec!["api"], vec!["web"]]
    );
    assert_eq!(words(&g.start_plan("lone").unwrap()), [vec!["lone"]]);
    // Two independent dependencies start together.
    let defs = [
        def("a", "{}", false),
        def("b", "{}", false),
        def("x", "{ a: started, b: running }", false),
    ];
    assert_eq!(
        words(&graph(&defs).start_plan("x").unwrap()),
        [vec!["a", "b"], vec!["x"]]
    );
    assert_eq!(
        g.start_plan("nobody").unwrap_err().to_string(),
        "no manifest defines nobody"
    );
}

#[test]
fn stop_order_puts_dependents_first_through_ids_outside_the_set() {
    let g = graph(&app());
    assert_eq!(
        words(&g.stop_order(&ids(&["db", "models", "api", "worker", "web", "lone"]))),
        [
            vec!["lone", "web", "worker"],
            vec!["api"],
            vec!["models"],
            vec!["db"]
        ]
    );
    // web needs db through api and models, which are not running.
    assert_eq!(
        words(&g.stop_order(&ids(&["db", "web"]))),
        [vec!["web"], vec!["db"]]
    );
    assert_eq!(
        words(&g.stop_order(&ids(&["db", "unknown"]))),
        [vec!["db", "unknown"]]
    );
    assert!(g.stop_order(&BTreeSet::new()).is_empty());
}

#[test]
fn cycles_are_spelled_out_in_order() {
    let defs = [
        def("b", "{ a: started }", false),
        def("a", "{ b: running }", false),
        def("self", "{ self: started }", false),
        def("x", "{ y: started }", false),
        def("y", "{ z: started }", false),
        def("z", "{ x: started }", false),
        def("outside", "{ a: started }", false),
    ];
    let g = graph(&defs);
    let cycles: Vec<(String, String)> = g
        .cycles()
        .into_iter()
        .map(|(id, e)| (id.to_string(), e.to_string()))
        .collect();
    let expect = |id: &str, c: &str| (id.to_owned(), format!("dependency cycle: {c}"));
    assert_eq!(
        cycles,
        [
            expect("a", "a -> b -> a"),
            expect("b", "a -> b -> a"),
            expect("self", "self -> self"),
            expect("x", "x -> y -> z -> x"),
            expect("y", "x -> y -> z -> x"),
            expect("z", "x -> y -> z -> x"),
        ]
    );
    // Starting something that needs a cycle is refused with it.
    assert_eq!(
        g.start_plan("outside").unwrap_err().to_string(),
        "dependency cycle: a -> b -> a"
    );
    assert!(graph(&app()).cycles().is_empty());
}

#[test]
fn unknown_ids_and_healthy_without_health_are_the_dependents_problems() {
    let defs = [
        def("db", "{}", false),
        def("api", "{ db: healthy, cache: started }", false),
        def("web", "{ api: running }", false),
    ];
    let g = graph(&defs);
    let problems: Vec<String> = g.problems("api").iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "dependency cache: no manifest defines this id",
            "dependency db: condition healthy, but db has no `health` check",
        ]
    );
    assert!(g.problems("db").is_empty() && g.problems("web").is_empty());
    // web itself is fine, but what it needs is not.
    assert_eq!(
        g.start_plan("web").unwrap_err(),
        GraphError::Unknown {
            backend: BackendId::new("api").unwrap(),
            dependency: BackendId::new("cache").unwrap(),
        }
    );
    // The missing manifest appears: api becomes startable.
    let mut fixed = defs.to_vec();
    fixed[0] = def("db", "{}", true);
    fixed.push(def("cache", "{}", false));
    assert_eq!(
        words(&graph(&fixed).start_plan("web").unwrap()),
        [vec!["cache", "db"], vec!["api"], vec!["web"]]
    );
}
