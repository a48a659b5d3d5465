//! Unit tests of the pure menu model: the layout of DESIGN.md's "Tray".

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;
use crate::manifest::Digest;
use crate::status::Detail;

fn backend(id: &str, name: &str, state: State) -> BackendStatus {
    BackendStatus {
        id: Some(id.to_owned()),
        name: Some(name.to_owned()),
        version: Some("1.0.0".to_owned()),
        path: Some(format!("/opt/{id}/dist/backend")),
        detail: Detail {
            log: Some(PathBuf::from(format!("/logs/{id}.log"))),
            ..Detail::default()
        },
        ..BackendStatus::new(format!("/home/me/backends/{id}.yaml"), state)
    }
}

fn invalid(file: &str, error: &str) -> BackendStatus {
    BackendStatus {
        error: Some(error.to_owned()),
        ..BackendStatus::new(file, State::Invalid)
    }
}

fn item<'a>(m: &'a MenuModel, path: &[&str]) -> &'a Item {
    match Node::find(&m.items, path) {
        Some(Node::Item(item)) => item,
        other => panic!("{path:?} is not an item: {other:?}"),
    }
}

fn submenu<'a>(m: &'a MenuModel, key: &str) -> &'a Submenu {
    match Node::find(&m.items, &[key]) {
        Some(Node::Submenu(sub)) => sub,
        other => panic!("{key} is not a submenu: {other:?}"),
    }
}

fn labels(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| match n {
            Node::Item(i) => i.label.clone(),
            Node::Separator { .. } => "---".to_owned(),
            Node::Submenu(s) => format!("{} ▸", s.label),
        })
        .collect()
}

#[test]
fn the_layout_follows_the_design() {
    let now = Instant::now();
    let mut python = backend("python", "Python Backend", State::Running);
    python.pid = Some(4242);
    python.detail.started_at = Some(now - Duration::from_secs(192));
    python.rss_bytes = Some(41 << 20);
    python.ready = true;
    python.detail.sha256 = Some(Digest::from_hex(&format!("3f7c{}9a01", "0".repeat(56))).unwrap());
    python.detail.verified = Some(true);
    let go = backend("go", "Go Backend", State::Stopped);
    let snapshot = Snapshot {
        backends: vec![
            python,
            go,
            invalid(
                "/home/me/backends/broken.yaml",
                "line 4: unknown field `argz`",
            ),
        ],
    };
    let m = model(&snapshot, now, false);
    assert_eq!(
        labels(&m.items),
        [
            "berth: 1 of 2 running",
            "---",
            "Go Backend ▸",
            "Python Backend ▸",
            "⚠ broken.yaml: line 4: unknown field `argz`",
            "---",
            "Open backends folder",
            "Start all",
            "Stop all",
            "Start at login",
            "Quit",
        ]
    );
    assert_eq!(
        labels(&submenu(&m, "python").children),
        [
            "🟢 Running · ready",
            "PID 4242 · up 3m 12s · 41 MB",
            "---",
            "Start",
            "Stop",
            "Restart",
            "---",
            "Open log",
            "/opt/python/dist/backend",
            "v1.0.0 · sha256 3f7c…9a01 ✓",
        ]
    );
    // Informational entries are disabled; actions only when they can act.
    assert!(!item(&m, &["@header"]).enabled);
    assert!(!item(&m, &["python", "status"]).enabled);
    assert!(!item(&m, &["python", "path"]).enabled);
    assert!(!item(&m, &["python", "start"]).enabled);
    assert!(item(&m, &["python", "stop"]).enabled);
    assert!(item(&m, &["python", "restart"]).enabled);
    assert!(item(&m, &["go", "start"]).enabled);
    assert!(!item(&m, &["go", "stop"]).enabled);
    assert!(item(&m, &["@start-all"]).enabled);
    assert!(item(&m, &["@stop-all"]).enabled);
    // A stopped backend has no process line.
    assert!(Node::find(&m.items, &["go", "process"]).is_none());
    assert_eq!(
        item(&m, &["python", "restart"]).id.to_action(),
        Some("python:restart".parse().unwrap())
    );
    assert_eq!(m.icon, IconState::Failing, "a broken manifest turns it red");
}

#[test]
fn every_state_uses_the_words_of_the_states_table() {
    let now = Instant::now();
    let line = |b: BackendStatus| status_line(&b, now);
    let with = |state, f: &dyn Fn(&mut BackendStatus)| {
        let mut b = backend("a", "A", state);
        f(&mut b);
        line(b)
    };
    assert_eq!(with(State::Stopped, &|_| {}), "🔴 Stopped");
    assert_eq!(with(State::Starting, &|_| {}), "🟡 Starting");
    assert_eq!(with(State::Running, &|_| {}), "🟢 Running");
    assert_eq!(with(State::Stopping, &|_| {}), "🟡 Stopping");
    assert_eq!(
        with(State::Exited, &|b| b.exit_code = Some(1)),
        "🔴 Exited (code 1)"
    );
    assert_eq!(
        with(State::Exited, &|b| b.signal = Some("SIGSEGV".into())),
        "🔴 Exited (SIGSEGV)"
    );
    assert_eq!(
        with(State::Backoff, &|b| b.detail.retry_at =
            Some(now + Duration::from_millis(1500))),
        "🟡 Restarting in 2s"
    );
    assert_eq!(with(State::Failed, &|_| {}), "❌ Failed");
    assert_eq!(with(State::NotFound, &|_| {}), "⚠️ Not Found");
    assert_eq!(
        with(State::IntegrityFailed, &|_| {}),
        "⛔ Checksum mismatch"
    );
    assert_eq!(
        with(State::Incompatible, &|b| b.error =
            Some("requires berth >=2.0, this is 0.1.0".into())),
        "⚠️ requires berth >=2.0, this is 0.1.0"
    );
    assert_eq!(
        with(State::Unsupported, &|_| {}),
        "⚠️ Unsupported on this platform"
    );
}

#[test]
fn extras_follow_the_indicator() {
    let now = Instant::now();
    let mut b = backend("a", "A", State::Running);
    b.status_line = Some("warming up".into());
    b.pending_restart = true;
    assert_eq!(
        status_line(&b, now),
        "🟢 Running · warming up · restart to apply"
    );
    b.status_line = Some("ready".into());
    b.ready = true;
    b.pending_restart = false;
    assert_eq!(status_line(&b, now), "🟢 Running · ready", "not twice");
    let mut b = backend("a", "A", State::Starting);
    b.error = Some("not ready after 15s".into());
    assert_eq!(status_line(&b, now), "🟡 Starting · not ready after 15s");
}

#[test]
fn a_start_waiting_for_its_dependencies_names_them() {
    let now = Instant::now();
    let mut b = backend("api", "API", State::Starting);
    b.waiting_for = vec!["db".into()];
    assert_eq!(status_line(&b, now), "🟡 Starting · waiting for db");
    b.waiting_for = vec!["db".into(), "models".into()];
    assert_eq!(status_line(&b, now), "🟡 Starting · waiting for db, models");
}

#[test]
fn superseded_files_are_not_shown_and_names_sort_the_submenus() {
    let mut old = backend("python", "Python Backend", State::Superseded);
    old.file = "/b/python-old.yaml".into();
    let snapshot = Snapshot {
        backends: vec![
            backend("zeta", "Alpha", State::Stopped),
            old,
            backend("alpha", "Zulu", State::Stopped),
            backend("python", "Python Backend", State::Stopped),
        ],
    };
    let m = model(&snapshot, Instant::now(), false);
    assert_eq!(
        labels(&m.items)[2..5],
        ["Alpha ▸", "Python Backend ▸", "Zulu ▸"]
    );
    assert_eq!(m.items.iter().filter(|n| n.key() == "python").count(), 1);
    assert_eq!(m.icon, IconState::Idle);
    assert_eq!(item(&m, &["@header"]).label, "berth: 0 of 3 running");
    assert!(!item(&m, &["@stop-all"]).enabled);
}

#[test]
fn ampersands_are_doubled_for_muda() {
    let b = backend("rd", "R&D Server", State::Stopped);
    let m = model(&Snapshot { backends: vec![b] }, Instant::now(), false);
    assert_eq!(submenu(&m, "rd").label, "R&&D Server");
    assert_eq!(muda_text("a\nb"), "a b");
    assert_eq!(muda_text(&"x".repeat(500)).chars().count(), MAX_LABEL_CHARS);
}

#[test]
fn the_version_line_marks_verification() {
    let mut b = backend("a", "A", State::IntegrityFailed);
    b.detail.sha256 = Some(Digest([0xab; 32]));
    assert_eq!(version_line(&b).unwrap(), "v1.0.0 · sha256 abab…abab");
    b.detail.verified = Some(false);
    assert_eq!(version_line(&b).unwrap(), "v1.0.0 · sha256 abab…abab ✗");
    let m = model(&Snapshot { backends: vec![b] }, Instant::now(), false);
    assert_eq!(m.icon, IconState::Failing);
    assert!(item(&m, &["a", "start"]).enabled, "start re-verifies");
}

#[test]
fn the_version_line_names_the_signer() {
    let mut b = backend("a", "A", State::Running);
    b.detail.sha256 = Some(Digest([0xab; 32]));
    b.detail.verified = Some(true);
    b.signed_by = Some("acme".to_owned());
    assert_eq!(
        version_line(&b).unwrap(),
        "v1.0.0 · sha256 abab…abab ✓ · signed by acme"
    );
}

#[test]
fn an_untrusted_copy_beside_the_winner_is_a_warning_not_a_second_submenu() {
    let mut copy = backend("a", "A", State::Untrusted);
    copy.file = "/home/me/backends/z-copy.yaml".to_owned();
    copy.error = Some("/home/me/backends/z-copy.yaml.minisig: bad".to_owned());
    let lone = BackendStatus {
        error: Some("/b/lone.yaml: not signed".to_owned()),
        ..backend("lone", "Lone", State::Untrusted)
    };
    let snapshot = Snapshot {
        backends: vec![backend("a", "A", State::Running), lone, copy],
    };
    let m = model(&snapshot, Instant::now(), false);
    let submenus = m
        .items
        .iter()
        .filter(|n| matches!(n, Node::Submenu(_)))
        .count();
    assert_eq!(submenus, 2, "{:#?}", m.items);
    // The lone untrusted file stands in for its id, with its reason.
    assert_eq!(
        item(&m, &["lone", "status"]).label,
        "⛔ Untrusted: /b/lone.yaml: not signed"
    );
    assert!(!item(&m, &["lone", "start"]).enabled);
    let warning = m.items.iter().find_map(|n| match n {
        Node::Item(i) if i.label.starts_with("⚠ z-copy.yaml") => Some(i),
        _ => None,
    });
    assert!(warning.is_some(), "{:#?}", m.items);
}

#[test]
fn warnings_name_the_file_once_and_open_it() {
    let snapshot = Snapshot {
        backends: vec![
            invalid("/b/zz.yaml", "/b/zz.yaml: line 1: missing field `id`"),
            invalid(
                "/b/broken.yaml",
                "broken.yaml: line 4: unknown field `argz`",
            ),
        ],
    };
    let m = model(&snapshot, Instant::now(), false);
    assert_eq!(
        labels(&m.items)[2..4],
        [
            "⚠ broken.yaml: line 4: unknown field `argz`",
            "⚠ zz.yaml: line 1: missing field `id`"
        ]
    );
    let warning = item(&m, &["warning:/b/broken.yaml"]);
    assert!(warning.enabled);
    assert_eq!(
        warning.id.to_action(),
        Some(Click::OpenFile("/b/broken.yaml".into()))
    );
    assert_eq!(item(&m, &["@header"]).label, "berth: no backends");
}

#[test]
fn warnings_of_several_folders_name_the_full_path() {
    let snapshot = Snapshot {
        backends: vec![
            invalid(
                "/usr/lib/berth/backends/broken.yaml",
                "/usr/lib/berth/backends/broken.yaml: line 1: missing field `id`",
            ),
            invalid(
                "/home/me/.config/berth/backends/broken.yaml",
                "/home/me/.config/berth/backends/broken.yaml: line 4: unknown field `argz`",
            ),
        ],
    };
    let m = model(&snapshot, Instant::now(), false);
    let mut warnings: Vec<String> = labels(&m.items)
        .into_iter()
        .filter(|l| l.starts_with('⚠'))
        .collect();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "⚠ /home/me/.config/berth/backends/broken.yaml: line 4: unknown field `argz`",
            "⚠ /usr/lib/berth/backends/broken.yaml: line 1: missing field `id`",
        ]
    );
}

#[test]
fn the_process_line_and_icon_follow_the_process() {
    let now = Instant::now();
    let mut b = backend("a", "A", State::Starting);
    b.pid = Some(7);
    b.uptime_s = Some(3 * 3600 + 125);
    b.rss_bytes = Some(8_912_896);
    assert_eq!(process_line(&b, now).unwrap(), "PID 7 · up 3h 2m · 8.5 MB");
    let m = model(&Snapshot { backends: vec![b] }, now, false);
    assert_eq!(m.icon, IconState::Running);
    assert!(!m.ticking);
    let mut b = backend("a", "A", State::Exited);
    b.exit_code = Some(0);
    let m = model(&Snapshot { backends: vec![b] }, now, false);
    assert_eq!(m.icon, IconState::Idle, "a clean exit is not a failure");
}

#[test]
fn backoff_ticks_and_stopping_disables_everything() {
    let now = Instant::now();
    let mut b = backend("a", "A", State::Backoff);
    b.detail.retry_at = Some(now + Duration::from_secs(2));
    let m = model(&Snapshot { backends: vec![b] }, now, false);
    assert!(m.ticking);
    // Start in backoff starts at once (DESIGN.md: refused only in four states).
    assert!(item(&m, &["a", "start"]).enabled);
    assert!(item(&m, &["a", "stop"]).enabled);
    let m = m.stopping();
    assert_eq!(
        item(&m, &["@header"]).label,
        "berth: stopping every backend…"
    );
    assert!(!item(&m, &["a", "stop"]).enabled);
    assert!(!item(&m, &["@quit"]).enabled);
}

#[test]
fn backends_named_like_berths_own_entries_keep_unique_keys() {
    let snapshot = Snapshot {
        backends: vec![
            backend("header", "Header", State::Stopped),
            backend("quit", "Quit", State::Stopped),
        ],
    };
    let m = model(&snapshot, Instant::now(), false);
    let mut keys: Vec<&str> = m.items.iter().map(Node::key).collect();
    let count = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), count, "duplicate keys in {keys:?}");
    assert!(matches!(
        Node::find(&m.items, &["quit"]),
        Some(Node::Submenu(_))
    ));
}

#[test]
fn the_version_line_shows_the_sandbox() {
    let mut b = backend("a", "A", State::Running);
    b.detail.sha256 = Some(Digest([0xab; 32]));
    b.detail.verified = Some(true);
    assert_eq!(version_line(&b).unwrap(), "v1.0.0 · sha256 abab…abab ✓");
    b.sandbox = Some("enforced".into());
    assert_eq!(
        version_line(&b).unwrap(),
        "v1.0.0 · sha256 abab…abab ✓ · 🔒 sandboxed"
    );
    b.sandbox = Some("partial: network rules (Landlock ABI 4)".into());
    assert_eq!(
        version_line(&b).unwrap(),
        "v1.0.0 · sha256 abab…abab ✓ · 🔒 sandboxed (partial)"
    );
}

#[test]
fn a_crashed_backend_shows_its_last_stderr_line_cut_to_a_readable_length() {
    let mut b = backend("python", "Python Backend", State::Exited);
    b.exit_code = Some(1);
    b.last_stderr = Some(format!("ValueError: {}", "x".repeat(200)));
    let m = model(
        &Snapshot {
            backends: vec![b.clone()],
        },
        Instant::now(),
        false,
    );
    let line = &item(&m, &["python", "last-error"]).label;
    assert!(line.starts_with("last error: ValueError: xxx"), "{line}");
    assert_eq!(
        line.chars().count(),
        "last error: ".len() + LAST_ERROR_CHARS
    );
    assert!(!item(&m, &["python", "last-error"]).enabled);
    // Not while it runs, nor after a user's Stop.
    for state in [State::Running, State::Stopped] {
        b.state = state;
        let m = model(
            &Snapshot {
                backends: vec![b.clone()],
            },
            Instant::now(),
            false,
        );
        assert!(
            Node::find(&m.items, &["python", "last-error"]).is_none(),
            "{state:?}"
        );
    }
}

#[test]
fn start_at_login_is_a_check_item_showing_the_entry() {
    let snapshot = Snapshot::default();
    for on in [false, true] {
        let m = model(&snapshot, Instant::now(), on);
        let login = item(&m, &["@start-at-login"]);
        assert_eq!(login.checked, Some(on));
        assert!(login.enabled);
        assert_eq!(login.id.to_action(), Some(Click::ToggleStartAtLogin));
    }
}

#[test]
fn manifest_actions_follow_restart_in_order_and_enabled_when_available() {
    let now = Instant::now();
    let mut b = backend("web", "Web", State::Stopped);
    b.actions = vec![
        crate::status::ActionStatus {
            label: "Open web UI".into(),
            available: false,
        },
        crate::status::ActionStatus {
            label: "Debug & trace".into(),
            available: true,
        },
    ];
    let m = model(&Snapshot { backends: vec![b] }, now, false);
    assert_eq!(
        labels(&submenu(&m, "web").children)[..9],
        [
            "🔴 Stopped",
            "---",
            "Start",
            "Stop",
            "Restart",
            "---",
            "Open web UI",
            "Debug && trace",
            "---",
        ]
    );
    assert!(!item(&m, &["web", "action:0"]).enabled);
    assert!(item(&m, &["web", "action:1"]).enabled);
    assert_eq!(
        item(&m, &["web", "action:1"]).id.to_action(),
        Some(Click::Run(BackendId::new("web").unwrap(), 1))
    );
    // No actions: no second separator.
    let plain = model(
        &Snapshot {
            backends: vec![backend("go", "Go", State::Stopped)],
        },
        now,
        false,
    );
    assert_eq!(labels(&submenu(&plain, "go").children)[6], "Open log");
}

#[test]
fn the_health_line_says_ok_or_how_many_checks_failed() {
    let now = Instant::now();
    let mut b = backend("web", "Web", State::Running);
    b.pid = Some(7);
    let health = |b: &BackendStatus| {
        let m = model(
            &Snapshot {
                backends: vec![b.clone()],
            },
            now,
            false,
        );
        Node::find(&m.items, &["web", "health"]).map(|n| match n {
            Node::Item(i) => i.label.clone(),
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(health(&b), None, "no health set: no line");
    b.healthy = Some(true);
    assert_eq!(health(&b).as_deref(), Some("health: ok"));
    b.healthy = Some(false);
    b.detail.health_failing = Some((2, 3));
    assert_eq!(health(&b).as_deref(), Some("health: failing 2 of 3"));
}

#[test]
fn the_version_line_says_what_it_needs() {
    use crate::manifest::depends::Condition;
    let mut b = backend("api", "API", State::Stopped);
    assert_eq!(version_line(&b).unwrap(), "v1.0.0");
    b.depends_on = [
        ("models".to_owned(), Condition::Running),
        ("db".to_owned(), Condition::Healthy),
    ]
    .into();
    assert_eq!(version_line(&b).unwrap(), "v1.0.0 · needs db, models");
}

#[test]
fn an_update_found_is_offered_in_the_submenu_and_not_twice_while_under_way() {
    let now = Instant::now();
    let mut python = backend("python", "Python", State::Running);
    python.update = Some(crate::status::UpdateStatus::default());
    let m = model(
        &Snapshot {
            backends: vec![python.clone()],
        },
        now,
        false,
    );
    assert!(
        Node::find(&m.items, &["python", "update"]).is_none(),
        "nothing found, nothing offered"
    );
    python.update.as_mut().unwrap().available = Some("1.2.0".into());
    let m = model(
        &Snapshot {
            backends: vec![python.clone()],
        },
        now,
        false,
    );
    let update = item(&m, &["python", "update"]);
    assert_eq!(update.label, "Update to 1.2.0");
    assert!(update.enabled);
    assert_eq!(
        update.id.to_action(),
        Some(Click::Command(
            BackendId::new("python").unwrap(),
            Verb::Update
        ))
    );
    // Right after Restart, before the manifest's actions.
    let children = labels(&submenu(&m, "python").children);
    let at = children.iter().position(|l| l == "Restart").unwrap();
    assert_eq!(children[at + 1], "Update to 1.2.0");
    python.detail.updating = true;
    let m = model(
        &Snapshot {
            backends: vec![python],
        },
        now,
        false,
    );
    let update = item(&m, &["python", "update"]);
    assert_eq!(update.label, "Updating to 1.2.0…");
    assert!(!update.enabled);
}
