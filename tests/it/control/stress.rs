//! The control socket under hostile load (issue #12): idle floods, a frozen
//! launcher, duplicated keys; and the CLI's one clean line in each case.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::home::*;

// 513 idle connections locked every client out for 10 s, and the CLI then
// printed "Broken pipe (os error 32): Broken pipe (os error 32)".
#[test]
fn six_hundred_idle_clients_do_not_lock_status_out() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    let _l = home.launch();
    let idle: Vec<UnixStream> = (0..600)
        .map(|_| UnixStream::connect(home.socket()).unwrap())
        .collect();
    let t0 = Instant::now();
    let out = home.run(&["status"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout().contains("alpha"), "{out:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "status took {:?}",
        t0.elapsed()
    );
    // The oldest idle one was closed for it, with a reason (on a very loaded
    // machine its 10 s idle limit may come first: also a reasoned close).
    let mut first = idle.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = String::new();
    first.read_to_string(&mut text).unwrap();
    crate::protocol::check::lines(b"", &text);
    assert!(
        text.contains("closing this idle connection") || text.contains("no request for"),
        "{text}"
    );
}

// `berth status` hung forever on a frozen launcher.
#[test]
fn a_stopped_launcher_makes_every_client_exit_1_with_one_clear_line() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "");
    let launcher = home.launch();
    launcher.signal(Signal::SIGSTOP);
    let results: Vec<(Vec<&str>, Out, Duration)> = std::thread::scope(|s| {
        let tasks: Vec<_> = [vec!["status"], vec!["start", "alpha"]]
            .into_iter()
            .map(|args| {
                let home = &home;
                s.spawn(move || {
                    let t0 = Instant::now();
                    let out = home.run(&args);
                    (args, out, t0.elapsed())
                })
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    launcher.signal(Signal::SIGCONT);
    for (args, out, took) in results {
        assert_eq!(out.code(), 1, "{args:?}: {out:?}");
        assert!(one_line(&out.stderr()), "{args:?}: {out:?}");
        assert!(
            out.stderr().contains("did not answer within")
                && out.stderr().contains("stopped or frozen"),
            "{args:?}: {out:?}"
        );
        // 10 s for status, 5 s + a 5 s probe for start; 3x for a loaded machine.
        assert!(took < Duration::from_secs(45), "{args:?} took {took:?}");
    }
    // Thawed, it answers again.
    assert_eq!(home.run(&["status"]).code(), 0);
}

// `{"cmd": "status", "cmd": "stop-all"}` ran the last one.
#[test]
fn a_duplicated_key_is_an_error_reply_and_runs_nothing() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "autostart: true\n");
    let _l = home.launch();
    assert!(wait_until(Duration::from_secs(15), || {
        home.status_of("alpha")["state"] == "running"
    }));
    let reply = raw(
        &home.socket(),
        br#"{"cmd": "status", "cmd": "stop-all"}
"#,
    );
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(reply["error"], r#"duplicate key "cmd""#, "{reply}");
    assert_eq!(home.status_of("alpha")["state"], "running");
}

// Issue #23, point 6: `berth stop` against a SIGSTOPped launcher exited 1
// ("did not answer"), and the stop happened anyway once it was continued.
#[test]
fn a_request_whose_client_gave_up_is_not_carried_out_later() {
    let home = Home::new();
    home.backend("alpha", "exec sleep 600", "autostart: true\n");
    let launcher = home.launch();
    assert!(wait_until(Duration::from_secs(15), || {
        home.status_of("alpha")["state"] == "running"
    }));
    let pid = home.status_of("alpha")["pid"].as_u64().unwrap();
    launcher.signal(Signal::SIGSTOP);
    let out = home.run(&["stop", "alpha"]);
    launcher.signal(Signal::SIGCONT);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("did not answer within"), "{out:?}");
    // Thawed, it answers, and what the CLI gave up on stays undone.
    assert_eq!(home.run(&["status"]).code(), 0);
    std::thread::sleep(Duration::from_secs(2));
    let status = home.status_of("alpha");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["pid"].as_u64(), Some(pid), "{status}");
}
