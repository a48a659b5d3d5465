//! `depends_on` between backends, the graph's half (issue #26, points 1, 6
//! and 7): `berth check` on cycles and unknown ids, the status fields, and
//! hot reload of a `depends_on` change, through the real binary. How starts
//! and stops are ordered is the supervisor's, tested with it.

use std::time::Duration;

use crate::control::home::{Home, wait_until};

/// Deadline for a reload to show: the 1 s an error waits, plus the debounce,
/// three times over on a loaded machine.
const T: Duration = Duration::from_secs(10);

fn error_of(home: &Home, id: &str) -> Option<String> {
    home.status_of(id)["error"].as_str().map(str::to_owned)
}

#[test]
fn check_reports_cycles_and_unknown_ids_one_line_each() {
    let home = Home::new();
    home.backend("a", "exec sleep 60", "depends_on: { b: started }\n");
    home.backend("b", "exec sleep 60", "depends_on: { a: running }\n");
    home.backend("me", "exec sleep 60", "depends_on: { me: started }\n");
    home.backend("db", "exec sleep 60", "");
    home.backend(
        "api",
        "exec sleep 60",
        "depends_on: { db: healthy, cache: started }\n",
    );
    let out = home.run(&["check", home.backends().to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{out:?}");
    let file = |id: &str| {
        home.backends()
            .join(format!("{id}.yaml"))
            .display()
            .to_string()
    };
    let lines: Vec<String> = out.stderr().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            format!("{}: dependency cycle: a -> b -> a", file("a")),
            format!(
                "{}: dependency cache: no manifest defines this id; dependency db: condition healthy, but db has no `health` check",
                file("api")
            ),
            format!("{}: dependency cycle: a -> b -> a", file("b")),
            format!("{}: dependency cycle: me -> me", file("me")),
        ]
    );
    let row = |id: &str| {
        out.stdout()
            .lines()
            .find(|l| l.starts_with(&format!("{id}.yaml")))
            .map(str::to_owned)
            .unwrap()
    };
    assert!(row("a").contains(" invalid "), "{}", out.stdout());
    assert!(row("api").contains("dependency cache"), "{}", out.stdout());
    assert!(row("db").contains(" ok "), "{}", out.stdout());

    // Every edge met: exit 0, nothing on stderr.
    for id in ["a", "b", "me", "api"] {
        std::fs::remove_file(home.backends().join(format!("{id}.yaml"))).unwrap();
    }
    home.backend("db", "exec sleep 60", "health: { tcp: \"127.0.0.1:1\" }\n");
    home.backend(
        "api",
        "exec sleep 60",
        "depends_on: { db: healthy, cache: { condition: running, restart: true } }\n",
    );
    home.backend("cache", "exec sleep 60", "");
    let out = home.run(&["check", home.backends().to_str().unwrap()]);
    assert_eq!((out.code(), out.stderr()), (0, String::new()), "{out:?}");
}

#[test]
fn status_json_has_depends_on_and_waiting_for() {
    let home = Home::new();
    home.backend("db", "exec sleep 60", "health: { tcp: \"127.0.0.1:1\" }\n");
    home.backend("models", "exec sleep 60", "");
    home.backend(
        "api",
        "exec sleep 60",
        "depends_on:\n  db: healthy\n  models: { condition: running, restart: true }\n",
    );
    let _l = home.launch();
    let api = home.status_of("api");
    assert_eq!(
        api["depends_on"],
        serde_json::json!({ "db": "healthy", "models": "running" })
    );
    assert_eq!(api["waiting_for"], serde_json::json!([]));
    assert_eq!(api["error"], serde_json::Value::Null);
    assert_eq!(home.status_of("db")["depends_on"], serde_json::json!({}));
}

/// Regression guard for DESIGN "Hot reload": an edit that closes a cycle is
/// an invalid edit; the definitions in force stay, nothing is stopped or
/// marked for restart, and the repair clears the error.
#[test]
fn an_edit_that_closes_a_cycle_keeps_the_last_good_definitions() {
    let home = Home::new();
    home.backend("a", "exec sleep 60", "depends_on: { b: started }\n");
    home.backend("b", "exec sleep 60", "");
    let _l = home.launch();
    assert_eq!(home.run(&["start", "b"]).code(), 0);
    assert_eq!(home.run(&["start", "a"]).code(), 0);
    let pid = |id: &str| home.status_of(id)["pid"].as_u64();
    let (pa, pb) = (pid("a"), pid("b"));
    assert!(pa.is_some() && pb.is_some());

    home.backend("b", "exec sleep 60", "depends_on: { a: running }\n");
    let cycle = "dependency cycle: a -> b -> a";
    assert!(
        wait_until(T, || error_of(&home, "b")
            .is_some_and(|e| e.ends_with(cycle))),
        "{:?}",
        home.status_of("b")
    );
    for id in ["a", "b"] {
        let s = home.status_of(id);
        assert!(s["error"].as_str().unwrap().ends_with(cycle), "{s}");
        assert_eq!(s["state"], "running", "{s}");
        assert_eq!(s["pending_restart"], false, "{s}");
    }
    assert_eq!((pid("a"), pid("b")), (pa, pb));
    // b's last good definition is in force: it needs nothing.
    assert_eq!(home.status_of("b")["depends_on"], serde_json::json!({}));

    home.backend("b", "exec sleep 60", "");
    assert!(
        wait_until(T, || error_of(&home, "a").is_none()
            && error_of(&home, "b").is_none()),
        "{:?}",
        home.status_json()
    );
    assert_eq!((pid("a"), pid("b")), (pa, pb));
}

#[test]
fn adding_the_missing_dependency_makes_it_startable_and_removing_an_edge_stops_nothing() {
    let home = Home::new();
    home.backend("api", "exec sleep 60", "depends_on: { db: started }\n");
    let _l = home.launch();
    assert_eq!(
        error_of(&home, "api").as_deref(),
        Some("dependency db: no manifest defines this id")
    );

    home.backend("db", "exec sleep 60", "");
    assert!(
        wait_until(T, || error_of(&home, "api").is_none()),
        "{:?}",
        home.status_of("api")
    );
    assert_eq!(home.run(&["start", "db"]).code(), 0);
    assert_eq!(home.run(&["start", "api"]).code(), 0);
    let pid = |id: &str| home.status_of(id)["pid"].as_u64();
    let (papi, pdb) = (pid("api"), pid("db"));

    // Removing the edge changes nothing in the process: no stop, no
    // "restart to apply".
    home.backend("api", "exec sleep 60", "");
    assert!(
        wait_until(T, || home.status_of("api")["depends_on"]
            == serde_json::json!({})),
        "{:?}",
        home.status_of("api")
    );
    std::thread::sleep(Duration::from_millis(500));
    let api = home.status_of("api");
    assert_eq!(
        (api["state"].as_str(), api["pending_restart"].as_bool()),
        (Some("running"), Some(false)),
        "{api}"
    );
    assert_eq!((pid("api"), pid("db")), (papi, pdb));
}
