//! The Rust API for apps (issue #24, point 8): `examples/embed.rs` embeds
//! the launcher in its own process, `examples/client.rs` talks to a
//! running `berth run`; both run here as built, against real processes,
//! folders and sockets.

use crate::control::home::{Home, Out, alive};
use crate::util::example;

// The embedded launcher starts its backend, sees it running on the watch
// receiver, stops it and shuts down: nothing of the backend is left.
#[test]
fn the_embed_example_runs_its_backend_to_running_stops_it_and_shuts_down() {
    let home = Home::new();
    let out = Out(home.berth_at(&example("embed")).output().unwrap());
    assert_eq!(out.code(), 0, "{out:?}");
    let stdout = out.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    let pid: u64 = lines[0]
        .strip_prefix("running ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a running pid first: {out:?}"));
    assert!(pid > 0, "{out:?}");
    assert_eq!(&lines[1..], ["stopped", "shut down"], "{out:?}");
    assert!(!alive(pid), "the backend {pid} outlived the launcher");
    // The instance's own folders, under its name.
    let log = home.path().join("state/embed-example/logs/demo.log");
    assert!(log.is_file(), "{} is missing", log.display());
}

/// `client ARGS` with the home's environment.
fn client(home: &Home, args: &[&str]) -> Out {
    Out(home
        .berth_at(&example("client"))
        .args(args)
        .output()
        .unwrap())
}

// The typed client reads the version and the statuses of a real `berth
// run`, found by its app name or its socket, and starts and stops a
// backend, waiting for each outcome; a refusal and no launcher keep
// berth's exit codes.
#[test]
fn the_client_example_reads_a_running_launcher_and_starts_and_stops_a_backend() {
    let home = Home::new();
    home.backend("demo", "exec sleep 600", "");
    let _launcher = home.launch();
    let socket = home.socket();
    let socket = socket.to_str().unwrap();

    let out = client(&home, &["--socket", socket]);
    assert_eq!(out.code(), 0, "{out:?}");
    let version = format!("berth {}, protocol 1", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        out.stdout(),
        format!("{version}\ndemo stopped\n"),
        "{out:?}"
    );

    // The default instance's socket is this home's: found by the name.
    let out = client(&home, &["--app", "berth", "start", "demo"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout().ends_with("demo: running\n"), "{out:?}");
    assert_eq!(home.status_of("demo")["state"], "running");
    let pid = home.status_of("demo")["pid"].as_u64().unwrap();

    let out = client(&home, &["--socket", socket, "stop", "demo"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout().ends_with("demo: stopped\n"), "{out:?}");
    assert!(!alive(pid), "stopped means the process is gone");

    let out = client(&home, &["--socket", socket, "start", "nope"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr().contains("no backend with id \"nope\""),
        "{out:?}"
    );
    let out = client(&home, &["--app", "nobody"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("no launcher running"), "{out:?}");
}
