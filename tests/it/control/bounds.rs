//! Settings bounds (issue #12): out-of-range values are one-line errors
//! naming the setting, berth.log rotates, and a crash loop at the smallest
//! backoff stays cheap.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::home::*;

// `--log-max-size 1` and `--log-backups 1000000` were accepted and turned
// berth into a hot loop.
#[test]
fn out_of_bounds_log_settings_are_one_line_errors_naming_the_option() {
    let home = Home::new();
    let b = home.backends();
    let b = b.to_str().unwrap();
    for (args, option, says) in [
        (
            ["--log-max-size", "1"],
            "--log-max-size",
            "the smallest log size is 64KiB",
        ),
        (
            ["--log-backups", "1000000"],
            "--log-backups",
            "keep at most 100 backups",
        ),
        // A title with a line break was cut at it, and its reason lost.
        (
            ["--title", "Acme\nStudio"],
            "--title",
            "has a control character (a title is one line)",
        ),
        (["--title", " "], "--title", "the title is empty"),
    ] {
        let out = home.run(&[&["run", "--headless", "--backends", b][..], &args[..]].concat());
        assert_eq!(out.code(), 2, "{out:?}");
        assert!(one_line(&out.stderr()), "{out:?}");
        assert!(
            out.stderr().contains(option) && out.stderr().contains(says),
            "{out:?}"
        );
    }
    assert!(!home.socket().exists(), "refused before binding");
}

// `restart: { backoff: 0ms }` was accepted: a crash loop used 21% to 100%
// of a core.
#[test]
fn a_backoff_under_100ms_is_refused_and_a_crash_loop_at_100ms_is_cheap() {
    let home = Home::new();
    home.backend(
        "fast",
        "exit 1",
        "restart: { policy: always, max_retries: 1000, backoff: 50ms }\n",
    );
    let out = home.run(&["check", home.backends().to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .contains("restart.backoff: backoff \"50ms\" is too short"),
        "{out:?}"
    );
    home.backend(
        "fast",
        "exit 1",
        "autostart: true\nrestart: { policy: always, max_retries: 1000, backoff: 100ms }\n",
    );
    let launcher = home.launch();
    assert!(wait_until(Duration::from_secs(15), || {
        home.status_of("fast")["restarts"].as_u64() >= Some(2)
    }));
    // CPU of the launcher itself and of the children it reaped (the crashes).
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", launcher.pid())).unwrap();
        let f: Vec<u64> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|x| x.parse().unwrap())
            .collect();
        f.iter().sum::<u64>()
    };
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap() as f64;
    let (c0, t0) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(6));
    let share = (cpu() - c0) as f64 / ticks / t0.elapsed().as_secs_f64();
    eprintln!(
        "crash loop at 100ms backoff: {:.1}% of a core",
        share * 100.0
    );
    assert!(share < 0.15, "{:.1}% of a core", share * 100.0);
}

// berth.log grew without limit in a crash loop.
#[test]
fn berth_log_is_rotated_like_the_backend_logs() {
    let home = Home::new();
    // At debug, backend output reaches berth.log: 300 KB of it at once.
    home.backend(
        "chatty",
        "yes 'a line of backend output for berth.log' | head -c 300000; exec sleep 600",
        "autostart: true\n",
    );
    let mut child = home
        .berth(&[
            "run",
            "--headless",
            "--log-max-size",
            "64KiB",
            "--log-backups",
            "2",
            "--backends",
        ])
        .arg(home.backends())
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = home.path().join("state/berth");
    let rotated = wait_until(Duration::from_secs(30), || {
        state.join("berth.log.2").exists()
    });
    let size = |name: &str| std::fs::metadata(state.join(name)).map_or(0, |m| m.len());
    let _ = child.kill();
    let _ = child.wait();
    assert!(rotated, "berth.log never rotated twice");
    for name in ["berth.log", "berth.log.1", "berth.log.2"] {
        assert!(size(name) <= 64 << 10, "{name}: {} bytes", size(name));
    }
    assert!(!state.join("berth.log.3").exists(), "only 2 backups kept");
}
