//! The `watch` stream (issue #24, point 9), two figures in one run:
//!
//! 1. Latency: a backend prints `{"status": "<wall clock ns>"}` for each
//!    line sent to its stdin (perl, stamped right before the write); the
//!    status line is a change, so a watcher
//!    gets a `status` event carrying it. The latency is the watcher's clock
//!    at the event minus the stamp (backend write -> pump -> job -> snapshot
//!    -> watcher -> socket), beside the same client's `status` round trip
//!    on a kept connection. Goal: median <= 5 ms and <= 1x the round trip.
//! 2. Idle cost: the launcher's CPU time (/proc) over 30 s with three
//!    stopped backends, without and then with 100 connected watchers.
//!    Goal: the watchers add 0 ms. (Each watcher's first line samples the
//!    figures like `status`, which keeps sampling for 10 s: the window
//!    starts after that.)
//!
//! `BERTH_WATCH_SECS` shortens the idle windows; `BERTH_BIN` measures
//! another build.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{cpu_ms, verdict};

const SAMPLES: usize = 200;
const WATCHERS: usize = 100;
const TARGET_MS: f64 = 5.0;

fn main() {
    let secs = support::secs("WATCH", 30);
    let (median, p90, rtt) = latency();
    println!("watch latency: median {median:.3} ms, p90 {p90:.3} ms over {SAMPLES} changes");
    println!("status round trip: median {rtt:.3} ms");
    println!(
        "ratio watch latency / status round trip: {:.2}x (target <= 1x): {}",
        median / rtt,
        verdict(median <= rtt)
    );
    println!(
        "watch latency median {median:.3} ms (target <= {TARGET_MS} ms): {}",
        verdict(median <= TARGET_MS)
    );
    let (alone, watched) = idle_cost(secs);
    println!();
    println!(
        "idle launcher cpu in {secs} s: {alone:.0} ms alone, {watched:.0} ms with {WATCHERS} watchers"
    );
    println!(
        "{WATCHERS} idle watchers add {:.0} ms cpu per {secs} s (target 0 ms, /proc resolution 10 ms): {}",
        watched - alone,
        verdict(watched - alone < 10.0)
    );
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

fn median_and_p90(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() * 9 / 10])
}

/// Median and p90 of the watch latency, and the median `status` round trip.
fn latency() -> (f64, f64, f64) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let backends = dir.join("b");
    support::write_backends(
        &backends,
        &["stamp".to_owned()],
        // Stamped just before the write, without a fork in between.
        "exec perl -MTime::HiRes=time -e '$|=1; while (<STDIN>) { printf qq({\"status\": \"%.0f\"}\\n), time() * 1e9 }'",
        "",
    );
    let home = dir.join("home");
    let mut berth = support::berth_headless(&backends, &home);
    let socket = home.join("run/berth.sock");
    support::wait_status(&socket, "one backend", |l| l.len() == 1);
    let started = support::request(&socket, r#"{"cmd":"start","id":"stamp"}"#);
    assert_eq!(started["ok"], true, "{started}");

    let mut watch = UnixStream::connect(&socket).expect("connect");
    watch.write_all(b"{\"cmd\":\"watch\"}\n").expect("watch");
    let mut events = BufReader::new(watch);
    let mut line = String::new();
    events.read_line(&mut line).expect("first line");

    let mut asker = UnixStream::connect(&socket).expect("connect");
    let mut replies = BufReader::new(asker.try_clone().expect("clone"));
    let mut ask = |request: &str| -> serde_json::Value {
        asker.write_all(request.as_bytes()).expect("send");
        let mut reply = String::new();
        replies.read_line(&mut reply).expect("reply");
        serde_json::from_str(&reply).expect("json")
    };
    let mut lat = Vec::new();
    let mut rtt = Vec::new();
    for i in 0..SAMPLES {
        let t = Instant::now();
        let reply = ask("{\"cmd\":\"status\"}\n");
        rtt.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(reply["ok"], true);
        ask(&format!(
            "{{\"cmd\":\"send\",\"id\":\"stamp\",\"line\":{{\"n\":{i}}}}}\n"
        ));
        let stamp: u128 = loop {
            line.clear();
            events.read_line(&mut line).expect("event");
            let v: serde_json::Value = serde_json::from_str(&line).expect("event json");
            if let Some(s) = v["backend"]["status_line"].as_str()
                && let Ok(stamp) = s.parse()
            {
                break stamp;
            }
        };
        lat.push((now_ns().saturating_sub(stamp)) as f64 / 1e6);
        std::thread::sleep(Duration::from_millis(20));
    }
    berth.stop();
    let (median, p90) = median_and_p90(lat);
    (median, p90, median_and_p90(rtt).0)
}

/// The launcher's CPU over `secs` alone, then with [`WATCHERS`] watchers.
fn idle_cost(secs: u64) -> (f64, f64) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let backends = dir.join("b");
    support::write_backends(&backends, &support::ids(3), "exec sleep 600", "");
    let home = dir.join("home");
    let mut berth = support::berth_headless(&backends, &home);
    let socket = home.join("run/berth.sock");
    support::wait_status(&socket, "three backends", |l| l.len() == 3);
    let pid = berth.0.id();
    // Past start-up and the figures the status above keeps sampling.
    std::thread::sleep(Duration::from_secs(12));
    let alone = cpu_over(pid, secs);
    let watchers: Vec<BufReader<UnixStream>> = (0..WATCHERS)
        .map(|_| {
            let mut s = UnixStream::connect(&socket).expect("connect");
            s.write_all(b"{\"cmd\":\"watch\"}\n").expect("watch");
            let mut r = BufReader::new(s);
            let mut first = String::new();
            r.read_line(&mut first).expect("first line");
            assert!(first.starts_with("{\"ok\":true"), "{first}");
            r
        })
        .collect();
    std::thread::sleep(Duration::from_secs(12));
    let watched = cpu_over(pid, secs);
    drop(watchers);
    berth.stop();
    (alone, watched)
}

fn cpu_over(pid: u32, secs: u64) -> f64 {
    println!("watch: measuring the launcher's cpu for {secs} s ...");
    let before = cpu_ms(pid);
    std::thread::sleep(Duration::from_secs(secs));
    cpu_ms(pid) - before
}
