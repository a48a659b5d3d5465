//! No launcher, socket folder and file safety, second and stale launchers.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::home::*;

// ---------------------------------------------------------------- no launcher

#[test]
fn without_a_launcher_every_client_command_says_so_and_exits_2() {
    let home = Home::new();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["start", "python"],
        &["stop", "python"],
        &["restart", "python"],
    ] {
        let out = home.run(args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(one_line(&out.stderr()), "{out:?}");
        assert!(
            out.stderr().starts_with("berth: no launcher running on ")
                && out.stderr().contains("start one with `berth run`"),
            "{out:?}"
        );
    }
}

#[test]
fn a_stale_socket_file_is_not_a_launcher() {
    let home = Home::new();
    let sock = home.socket();
    berth::control::socket::prepare_folder(&sock).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let out = home.run(&["status"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("no launcher running"), "{out:?}");
}

#[test]
fn a_malformed_id_is_a_usage_error() {
    let home = Home::new();
    let out = home.run(&["start", "Not/An-Id"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("invalid id"), "{out:?}");
}

// ------------------------------------------------------------ socket safety

#[test]
fn a_socket_path_too_long_is_a_one_line_error() {
    let home = Home::new();
    let long = home.path().join("x".repeat(120)).join("berth.sock");
    let long = long.to_str().unwrap();
    let b = home.backends();
    let bare = |args: &[&str]| Out(home.berth_bare().args(args).output().unwrap());
    let out = bare(&[
        "run",
        "--headless",
        "--socket",
        long,
        "--backends",
        b.to_str().unwrap(),
    ]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("at most 107 bytes"), "{out:?}");
    let out = bare(&["status", "--socket", long]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("at most 107 bytes"), "{out:?}");
}

#[test]
fn an_open_socket_folder_is_refused() {
    let home = Home::new();
    let folder = home.socket().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = home.backends();
    let out = home.run(&["run", "--headless", "--backends", b.to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("has mode 0755"), "{out:?}");
}

#[test]
fn a_missing_backends_folder_is_a_usage_error() {
    let home = Home::new();
    let out = home.run(&["run", "--headless", "--backends", "/nonexistent/berth"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("does not exist"), "{out:?}");
    assert!(!home.socket().exists(), "refused before binding");
}

#[test]
fn the_socket_is_private_and_another_user_cannot_connect() {
    let home = Home::new();
    let _l = home.launch();
    let sock = home.socket();
    assert_eq!(std::fs::metadata(&sock).unwrap().mode() & 0o777, 0o600);
    let folder = std::fs::metadata(sock.parent().unwrap()).unwrap();
    assert_eq!(folder.mode() & 0o777, 0o700);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to `nobody` needs root");
        return;
    }
    let as_nobody = |socket: &Path| {
        Out(Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                BERTH,
                "status",
            ])
            .arg("--socket")
            .arg(socket)
            .output()
            .unwrap())
    };
    // Control: berth runs fine as nobody and tells a missing launcher apart.
    let out = as_nobody(&home.path().join("nowhere.sock"));
    assert_eq!(out.code(), 2, "{out:?}");
    let out = as_nobody(&sock);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("Permission denied"), "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
}

#[test]
fn a_second_launcher_refuses_and_the_first_keeps_serving() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    let _first = home.launch();
    let b = home.backends();
    let out = home.run(&["run", "--headless", "--backends", b.to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(
        out.stderr().contains("a launcher is already running on"),
        "{out:?}"
    );
    assert_eq!(home.status_json().len(), 1);
}

#[test]
fn a_stale_socket_left_by_a_killed_launcher_is_replaced() {
    let home = Home::new();
    let mut first = home.launch();
    first.signal(Signal::SIGKILL);
    first.wait(Duration::from_secs(10));
    assert!(
        home.socket().exists(),
        "SIGKILL leaves the socket file behind"
    );
    let _second = home.launch();
    assert_eq!(home.run(&["status"]).code(), 0);
}
