//! Dependencies at run time (issue #26): a start waits for its dependencies
//! (started here if needed), fails when one cannot get there, and nobody
//! is spawned before what it needs.

use std::sync::Arc;

use berth::manifest::BackendId;
use berth::manifest::depends::{Condition, Dependency};
use berth::manifest::health::{HealthCheck, HealthSpec};
use berth::registry::{Entry, Standing};
use berth::verb::Verb;

use super::*;

/// `b` with `dep` at `condition`.
fn needs(mut b: Backend, dep: &str, condition: Condition) -> Backend {
    b.depends_on.insert(
        BackendId::new(dep).unwrap(),
        Dependency {
            condition,
            restart: false,
        },
    );
    b
}

/// A backend that writes `<id>.start` (nanoseconds) when it is spawned,
/// waits `delay`, writes `<id>.ready` and prints its ready line.
fn slow_ready(e: &Env, id: &str, delay: &str) -> Backend {
    let body = format!(
        "date +%s%N > {id}.start\nsleep {delay}\ndate +%s%N > {id}.ready\necho '{{\"status\": \"ready\"}}'\nexec sleep 600"
    );
    let mut b = scripted(e, id, &body);
    b.ready = ready_spec(status_ready(), T);
    b
}

/// A backend that only writes `<id>.start` when spawned.
fn plain(e: &Env, id: &str) -> Backend {
    scripted(e, id, &format!("date +%s%N > {id}.start\nexec sleep 600"))
}

fn stamp(e: &Env, name: &str) -> u128 {
    wait_file(&e.path().join(name), T).trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_waits_for_its_dependency_to_be_running_and_says_so() {
    let e = env();
    let db = slow_ready(&e, "db", "1");
    let api = needs(plain(&e, "api"), "db", Condition::Running);
    e.sup.apply(catalog([db, api])).await;
    assert!(accepted(e.sup.command("api", Verb::start()).await));
    let waiting = e.sup.snapshot().get("api").unwrap().clone();
    assert_eq!(waiting.state, State::Starting);
    assert_eq!(waiting.waiting_for, vec!["db".to_owned()]);
    assert_eq!(waiting.pid, None);
    let api = wait_running(&e, "api").await;
    assert!(api.waiting_for.is_empty());
    assert_eq!(e.sup.snapshot().get("db").unwrap().state, State::Running);
    assert!(
        stamp(&e, "api.start") >= stamp(&e, "db.ready"),
        "api spawned before db was ready"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn started_needs_only_a_process_and_a_chain_starts_in_order() {
    let e = env();
    let db = slow_ready(&e, "db", "2");
    // `started`: spawned once db's process exists, long before it is ready.
    let cache = needs(slow_ready(&e, "cache", "0"), "db", Condition::Started);
    let api = needs(plain(&e, "api"), "cache", Condition::Running);
    e.sup.apply(catalog([db, cache, api])).await;
    assert!(accepted(e.sup.command("api", Verb::start()).await));
    wait_running(&e, "api").await;
    assert!(
        stamp(&e, "cache.start") < stamp(&e, "db.ready"),
        "started waited for ready"
    );
    assert!(stamp(&e, "api.start") >= stamp(&e, "cache.ready"));
}

#[tokio::test(flavor = "multi_thread")]
async fn independent_dependencies_start_in_parallel() {
    let e = env();
    let a = slow_ready(&e, "a", "1");
    let b = slow_ready(&e, "b", "1");
    let top = needs(
        needs(plain(&e, "top"), "a", Condition::Running),
        "b",
        Condition::Running,
    );
    e.sup.apply(catalog([a, b, top])).await;
    assert!(accepted(e.sup.command("top", Verb::start()).await));
    wait_running(&e, "top").await;
    // Each was spawned before the other was ready: neither waited.
    assert!(stamp(&e, "a.start") < stamp(&e, "b.ready"));
    assert!(stamp(&e, "b.start") < stamp(&e, "a.ready"));
    assert!(stamp(&e, "top.start") >= stamp(&e, "a.ready").max(stamp(&e, "b.ready")));
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_waits_for_the_first_passed_check() {
    let e = env();
    // Running at once, healthy at its first heartbeat, 1 s later.
    let mut db = scripted(
        &e,
        "db",
        r#"exec python3 -c '
import os, socket, time
time.sleep(1)
open("ok", "w").write(str(time.time_ns()) + "\n")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"])
time.sleep(600)
'"#,
    );
    db.health = Some(HealthSpec {
        check: HealthCheck::Watchdog(Duration::from_secs(30)),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        failures: 3,
        headers: Vec::new(),
    });
    let api = needs(plain(&e, "api"), "db", Condition::Healthy);
    e.sup.apply(catalog([db, api])).await;
    assert!(accepted(e.sup.command("api", Verb::start()).await));
    wait_running(&e, "api").await;
    assert!(stamp(&e, "api.start") >= stamp(&e, "ok"));
}

/// Starts `api` (which needs `db` running) and returns api's error once
/// it is failed; api's process never existed.
async fn dependency_failure(e: &Env, catalog: berth::registry::Catalog) -> String {
    e.sup.apply(catalog).await;
    let _ = e.sup.command("api", Verb::start()).await;
    let s = wait_state(e, "api", State::Failed).await;
    assert!(!e.path().join("api.start").exists(), "api was spawned");
    assert!(s.waiting_for.is_empty());
    s.error.unwrap()
}

fn api(e: &Env) -> Backend {
    needs(plain(e, "api"), "db", Condition::Running)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_that_fails_fails_its_dependent() {
    let e = env();
    let mut db = scripted(&e, "db", "exit 3");
    db.ready = ready_spec(status_ready(), T);
    db.restart.max_retries = 0;
    db.restart.policy = berth::manifest::RestartPolicy::OnFailure;
    let error = dependency_failure(&e, catalog([db, api(&e)])).await;
    assert!(
        error.starts_with("dependency db: failed (code 3)"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_that_exits_fails_its_dependent() {
    let e = env();
    let mut db = scripted(&e, "db", "exit 0");
    db.ready = ready_spec(status_ready(), T);
    let error = dependency_failure(&e, catalog([db, api(&e)])).await;
    assert_eq!(error, "dependency db: exited (code 0)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_not_found_fails_its_dependent() {
    let e = env();
    let db = scripted(&e, "db", "exec sleep 600");
    std::fs::remove_file(e.path().join("db.sh")).unwrap();
    let error = dependency_failure(&e, catalog([db, api(&e)])).await;
    assert!(
        error.starts_with("dependency db: not-found: executable not found"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_with_a_wrong_digest_fails_its_dependent() {
    let e = env();
    let mut db = scripted(&e, "db", "touch db.ran\nexec sleep 600");
    db.executable.as_mut().unwrap().sha256 = berth::manifest::Digest([7; 32]);
    let error = dependency_failure(&e, catalog([db, api(&e)])).await;
    assert!(
        error.starts_with("dependency db: integrity-failed: checksum mismatch"),
        "{error}"
    );
    assert!(!e.path().join("db.ran").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_dependency_fails_its_dependent() {
    let e = env();
    let db = scripted(&e, "db", "touch db.ran\nexec sleep 600");
    let mut c = catalog([api(&e)]);
    c.entries.push(Entry {
        file: db.file.clone(),
        backend: Some(Arc::new(db)),
        error: None,
        dependency_error: None,
        standing: Standing::Untrusted {
            reason: "signed by no trusted key".into(),
        },
    });
    let error = dependency_failure(&e, c).await;
    assert_eq!(error, "dependency db: untrusted: signed by no trusted key");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_dependency_fails_its_dependent() {
    let e = env();
    let error = dependency_failure(&e, catalog([api(&e)])).await;
    assert_eq!(error, "dependency db: no manifest defines this id");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_past_its_ready_timeout_fails_its_dependent() {
    let e = env();
    let mut db = scripted(&e, "db", "exec sleep 600");
    db.ready = ready_spec(status_ready(), Duration::from_millis(300));
    let error = dependency_failure(&e, catalog([db, api(&e)])).await;
    assert_eq!(error, "dependency db: starting: not ready after 300ms");
    // Nothing is killed for it (DESIGN.md): db keeps starting.
    assert_eq!(e.sup.snapshot().get("db").unwrap().state, State::Starting);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_two_levels_down_is_passed_up() {
    let e = env();
    let base = scripted(&e, "base", "exec sleep 600");
    std::fs::remove_file(e.path().join("base.sh")).unwrap();
    let db = needs(plain(&e, "db"), "base", Condition::Running);
    let error = dependency_failure(&e, catalog([base, db, api(&e)])).await;
    assert!(
        error.starts_with("dependency db: failed: dependency base: not-found"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_while_waiting_cancels_the_start() {
    let e = env();
    let mut db = scripted(&e, "db", "exec sleep 600");
    db.ready = ready_spec(status_ready(), T);
    e.sup.apply(catalog([db, api(&e)])).await;
    e.sup.command("api", Verb::start()).await.unwrap();
    assert_eq!(e.sup.command("api", Verb::Stop).await, Ok(Outcome::Done));
    assert_eq!(e.sup.snapshot().get("api").unwrap().state, State::Stopped);
    // db goes on starting; api stays stopped when it is ready.
    assert!(!e.path().join("api.start").exists());
}

/// A backend that stamps `<id>.term` when it gets SIGTERM and `<id>.exit`
/// 200 ms later, as it exits (a loaded machine gets its whole deadline
/// before SIGKILL).
fn stamping(e: &Env, id: &str) -> Backend {
    let mut b = scripted(
        e,
        id,
        &format!(
            "trap 'date +%s%N > {id}.term; sleep 0.2; date +%s%N > {id}.exit; exit 0' TERM\ndate +%s%N > {id}.start\nsleep 600 &\nwait"
        ),
    );
    b.stop.timeout = T;
    b
}

/// db <- api <- web, db <- worker (`running` edges, `restart` as given
/// for api's).
fn tree(e: &Env, restart: bool) -> Vec<Backend> {
    let mut api = needs(stamping(e, "api"), "db", Condition::Running);
    api.depends_on.get_mut("db").unwrap().restart = restart;
    vec![
        stamping(e, "db"),
        api,
        needs(stamping(e, "web"), "api", Condition::Running),
        needs(stamping(e, "worker"), "db", Condition::Running),
    ]
}

/// Asserts `first` exited before `then` got SIGTERM.
fn before(e: &Env, first: &str, then: &str) {
    let (exit, term) = (
        stamp(e, &format!("{first}.exit")),
        stamp(e, &format!("{then}.term")),
    );
    assert!(
        exit <= term,
        "{then} was signalled before {first} had exited"
    );
}

/// Asserts `a` and `b` were being stopped at the same time.
fn overlapped(e: &Env, a: &str, b: &str) {
    let term = |x: &str| stamp(e, &format!("{x}.term"));
    let exit = |x: &str| stamp(e, &format!("{x}.exit"));
    assert!(
        term(a) < exit(b) && term(b) < exit(a),
        "{a} and {b} stopped one after the other"
    );
}

async fn start_tree(e: &Env, restart: bool) {
    e.sup.apply(catalog(tree(e, restart))).await;
    for id in ["web", "worker"] {
        e.sup.command(id, Verb::start()).await.unwrap();
    }
    for id in ["db", "api", "web", "worker"] {
        wait_running(e, id).await;
        // Running at spawn: its trap is set once it has stamped its start.
        stamp(e, &format!("{id}.start"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_a_dependency_stops_its_dependents_first_and_names_them() {
    let e = env();
    start_tree(&e, false).await;
    let outcome = e.sup.command("db", Verb::Stop).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::DoneWith(
            "stopping api, which depends on db; stopping web, which depends on api; stopping worker, which depends on db".into()
        )
    );
    for id in ["db", "api", "web", "worker"] {
        assert_eq!(
            e.sup.snapshot().get(id).unwrap().state,
            State::Stopped,
            "{id}"
        );
    }
    before(&e, "web", "api");
    before(&e, "api", "db");
    before(&e, "worker", "db");
    overlapped(&e, "web", "worker");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_a_dependent_leaves_its_dependency_running() {
    let e = env();
    start_tree(&e, false).await;
    assert_eq!(e.sup.command("web", Verb::Stop).await, Ok(Outcome::Done));
    assert_eq!(e.sup.snapshot().get("api").unwrap().state, State::Running);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_and_stop_all_stop_dependents_first_branches_in_parallel() {
    for quit in [false, true] {
        let e = env();
        start_tree(&e, false).await;
        if quit {
            e.sup.shutdown().await;
        } else {
            e.sup.stop_all().await;
        }
        before(&e, "web", "api");
        before(&e, "api", "db");
        before(&e, "worker", "db");
        overlapped(&e, "web", "worker");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_restart_stops_restart_dependents_first_and_starts_them_after() {
    let e = env();
    start_tree(&e, true).await;
    let api_pid = e.sup.snapshot().get("api").unwrap().pid;
    let worker_pid = e.sup.snapshot().get("worker").unwrap().pid;
    let web_pid = e.sup.snapshot().get("web").unwrap().pid;
    for old in ["db.start", "api.start"] {
        std::fs::remove_file(e.path().join(old)).unwrap();
    }
    assert!(accepted(e.sup.command("db", Verb::restart()).await));
    let api = wait_for(&e.sup, "api", T, |s| {
        s.state == State::Running && s.pid != api_pid
    })
    .await;
    assert!(api.pid.is_some());
    // worker's edge to db and web's to api have no `restart`: they kept
    // running through it.
    before(&e, "api", "db");
    let db = e.sup.snapshot().get("db").unwrap().clone();
    assert!(
        api.detail.started_at > db.detail.started_at,
        "api started before db was back"
    );
    assert_eq!(
        e.sup.snapshot().get("worker").unwrap().pid,
        worker_pid,
        "worker kept running"
    );
    assert_eq!(
        e.sup.snapshot().get("web").unwrap().pid,
        web_pid,
        "web kept running"
    );
}

/// db (restarted on failure after 300 ms) <- api (`restart: true`), db <-
/// worker (no `restart`), both `running` edges; all running.
async fn crashing_db(e: &Env, db: Backend) -> (Option<u32>, Option<u32>) {
    let mut db = db;
    db.restart.policy = berth::manifest::RestartPolicy::OnFailure;
    db.restart.backoff = Duration::from_millis(300);
    let mut api = needs(stamping(e, "api"), "db", Condition::Running);
    api.depends_on.get_mut("db").unwrap().restart = true;
    let worker = needs(stamping(e, "worker"), "db", Condition::Running);
    e.sup.apply(catalog([db, api, worker])).await;
    for id in ["api", "worker"] {
        e.sup.command(id, Verb::start()).await.unwrap();
    }
    let api = wait_running(e, "api").await.pid;
    let worker = wait_running(e, "worker").await.pid;
    // Their traps are set once they have stamped their start.
    stamp(e, "api.start");
    stamp(e, "worker.start");
    (api, worker)
}

/// api comes back with a new process, started after db's new run was
/// running; worker kept its process.
async fn restarted_after_db(e: &Env, api_pid: Option<u32>, worker_pid: Option<u32>) {
    let api = wait_for(&e.sup, "api", T, |s| {
        s.state == State::Running && s.pid.is_some() && s.pid != api_pid
    })
    .await;
    let db = e.sup.snapshot().get("db").unwrap().clone();
    assert!(
        api.detail.started_at > db.detail.started_at,
        "api started before db's new run: {db:?}"
    );
    assert!(
        e.path().join("api.term").exists(),
        "api was not stopped by SIGTERM"
    );
    assert_eq!(
        e.sup.snapshot().get("worker").unwrap().pid,
        worker_pid,
        "worker kept running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_of_the_dependency_restarts_restart_dependents_once_it_is_back() {
    let e = env();
    let db = scripted(&e, "db", "exec sleep 600");
    let (api, worker) = crashing_db(&e, db).await;
    let db_pid = e.sup.snapshot().get("db").unwrap().pid.unwrap();
    signal(db_pid, nix::sys::signal::Signal::SIGKILL);
    restarted_after_db(&e, api, worker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unhealthy_dependency_restarts_restart_dependents_once_it_is_back() {
    let e = env();
    // Healthy by its heartbeat until `sick` exists; then silent, so the
    // watchdog finds it unhealthy once (the next run sees `sick` gone).
    let mut db = scripted(
        &e,
        "db",
        r#"exec python3 -c '
import os, socket, time
first = not os.path.exists("sick")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
while True:
    if os.path.exists("sick"):
        os.rename("sick", "was-sick")
        time.sleep(600)
    s.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"])
    time.sleep(0.1)
'"#,
    );
    db.health = Some(HealthSpec {
        check: HealthCheck::Watchdog(Duration::from_millis(500)),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        failures: 3,
        headers: Vec::new(),
    });
    let (api, worker) = crashing_db(&e, db).await;
    std::fs::write(e.path().join("sick"), "").unwrap();
    wait_for(&e.sup, "db", T, |s| s.restarts == 1).await;
    restarted_after_db(&e, api, worker).await;
}
