//! `depends_on` through the real binary (issue #26): `berth start` of a
//! dependent exits 1 with its dependency's line, `berth stop` names the
//! dependents it stopped first, and Quit stops dependents first, read from
//! the processes' own timestamps.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::home::*;

/// Stamps `<id>.term` at SIGTERM and `<id>.exit` 200 ms later as it exits;
/// `<id>.start` once its trap is set.
fn stamping(id: &str) -> String {
    format!(
        "cd \"$(dirname \"$0\")\"\ntrap 'date +%s%N > {id}.term; sleep 0.2; date +%s%N > {id}.exit; exit 0' TERM\ndate +%s%N > {id}.start\nsleep 600 &\nwait"
    )
}

fn stamp(home: &Home, name: &str) -> u128 {
    let path = home.backends().join(name);
    assert!(
        wait_until(Duration::from_secs(15), || std::fs::read_to_string(&path)
            .is_ok_and(|t| t.ends_with('\n'))),
        "{name} never written"
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn start_of_a_dependent_exits_1_with_its_dependencys_line() {
    let home = Home::new();
    home.backend("db", "exec sleep 600", "");
    std::fs::remove_file(home.backends().join("db.sh")).unwrap();
    home.backend("api", "exec sleep 600", "depends_on:\n  db: running\n");
    home.backend("web", "exec sleep 600", "depends_on:\n  nosuch: started\n");
    let _l = home.launch();
    let out = home.run(&["start", "api"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .contains("api: failed: dependency db: not-found: executable not found"),
        "{out:?}"
    );
    assert_eq!(home.status_of("api")["state"], "failed");
    let out = home.run(&["start", "web"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .contains("dependency nosuch: no manifest defines this id"),
        "{out:?}"
    );
}

#[test]
fn start_waits_for_the_dependency_and_status_says_so() {
    let home = Home::new();
    home.backend(
        "db",
        "sleep 1\necho '{\"status\": \"ready\"}'\nexec sleep 600",
        "ready: { stdout_json: { status: ready }, timeout: 15s }\n",
    );
    home.backend("api", "exec sleep 600", "depends_on:\n  db: running\n");
    let _l = home.launch();
    let mut start = home.berth(&["start", "api"]);
    let started = std::thread::spawn(move || start.output());
    let waiting = wait_until(Duration::from_secs(15), || {
        home.status_of("api")["waiting_for"] == serde_json::json!(["db"])
    });
    let out = Out(started.join().unwrap().unwrap());
    assert!(waiting, "api never showed waiting_for [db]");
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(home.status_of("db")["state"], "running");
    assert_eq!(home.status_of("api")["waiting_for"], serde_json::json!([]));
}

#[test]
fn stop_names_the_dependents_it_stops_first_and_quit_stops_them_first() {
    let home = Home::new();
    home.backend("db", &stamping("db"), "");
    home.backend("api", &stamping("api"), "depends_on:\n  db: running\n");
    home.backend(
        "worker",
        &stamping("worker"),
        "depends_on:\n  db: started\n",
    );
    let mut l = home.launch();
    for id in ["api", "worker"] {
        assert_eq!(home.run(&["start", id]).code(), 0);
    }
    for id in ["db", "api", "worker"] {
        stamp(&home, &format!("{id}.start"));
    }
    let out = home.run(&["stop", "db"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr().contains(
            "berth: stopping api, which depends on db; stopping worker, which depends on db"
        ),
        "{out:?}"
    );
    assert!(stamp(&home, "api.exit") <= stamp(&home, "db.term"));
    for id in ["db", "api", "worker"] {
        for end in ["start", "term", "exit"] {
            std::fs::remove_file(home.backends().join(format!("{id}.{end}"))).unwrap();
        }
    }
    // Quit: the same order from the processes' own clocks, api and worker
    // in parallel.
    for id in ["api", "worker"] {
        assert_eq!(home.run(&["start", id]).code(), 0);
    }
    for id in ["db", "api", "worker"] {
        stamp(&home, &format!("{id}.start"));
    }
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait(Duration::from_secs(15)), Some(0), "{}", l.stderr());
    let db_term = stamp(&home, "db.term");
    for id in ["api", "worker"] {
        assert!(
            stamp(&home, &format!("{id}.exit")) <= db_term,
            "{id} after db"
        );
    }
    assert!(
        stamp(&home, "api.term") < stamp(&home, "worker.exit")
            && stamp(&home, "worker.term") < stamp(&home, "api.exit"),
        "api and worker stopped one after the other"
    );
}
