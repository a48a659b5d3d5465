//! What starting the CLI costs: a `berth status` command (a process start,
//! one request to an idle headless launcher, a table printed), and
//! `berth --version` (a process start alone), median of many runs.
//!
//! Goal (issue #27, point 8): linking the HTTP client does not make the CLI
//! start measurably slower. `BERTH_BASE_BIN` names a build to compare with
//! (say the release build before a change): the two are run alternately,
//! round by round, in the same window, and the ratio of medians printed.
//! `BERTH_BIN` measures another berth binary; `BERTH_CLI_ROUNDS` changes the
//! number of rounds (default 300).

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let rounds: usize = std::env::var("BERTH_CLI_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let backends = dir.join("b");
    support::write_backends(&backends, &support::ids(3), "exec sleep 600", "");
    let home = dir.join("home");
    let _launcher = support::berth_headless(&backends, &home);
    let socket = home.join("run/berth.sock");
    support::wait_status(&socket, "three backends listed", |list| list.len() == 3);

    let mut bins = vec![("berth", support::berth_bin())];
    if let Some(base) = std::env::var_os("BERTH_BASE_BIN") {
        bins.push(("base", PathBuf::from(base)));
    }
    println!("cli_start: {}", support::load());
    let commands: [(&str, Vec<&str>); 2] =
        [("status", vec!["status"]), ("--version", vec!["--version"])];
    for (name, args) in &commands {
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); bins.len()];
        for _ in 0..rounds {
            for (i, (_, bin)) in bins.iter().enumerate() {
                times[i].push(run(bin, args, &socket, &home));
            }
        }
        let medians: Vec<f64> = times.iter_mut().map(|t| median_ms(t)).collect();
        for ((label, bin), ms) in bins.iter().zip(&medians) {
            println!(
                "cli_start: {label:5} `berth {name}` median of {rounds}: {ms:.3} ms ({})",
                bin.display()
            );
        }
        if let [now, base] = medians[..] {
            println!("cli_start: `berth {name}` ratio to base: {:.3}", now / base);
        }
    }
}

fn run(bin: &Path, args: &[&str], socket: &Path, home: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new(bin)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("berth");
    let took = started.elapsed();
    assert!(status.success(), "{} {args:?} failed", bin.display());
    took
}

fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}
