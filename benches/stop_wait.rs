//! What waiting out a stop timeout costs (issue #12: rereading all of /proc
//! every 10 ms cost 25 % of a core for a 200-process group).
//!
//! Three backends whose processes ignore SIGTERM, `stop.timeout: 10s`, so
//! berth waits the whole timeout before SIGKILL: a group of 200 whose
//! leader ignores it too (berth probes `kill(-pgid, 0)` with backoff), a
//! group of 200 whose leader exits at once while 199 linger (berth also
//! rescans /proc to tell zombies from live members, backing off to 1 s),
//! and a single process as the reference. Printed: berth's CPU during each
//! stop, as a share of one core.
//!
//! Target: < 10 % of a core while waiting out the 200-process stop.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::*;

const TARGET_PERCENT: f64 = 10.0;

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let backends = dir.join("b");
    let extra = "stop: { signal: TERM, timeout: 10s }\n";
    let spawn_199 = "i=0; while [ $i -lt 199 ]; do sleep 3600 & i=$((i+1)); done";
    let cases = [
        (
            "group200",
            "200 processes, the leader ignores TERM",
            format!("trap '' TERM; {spawn_199}; exec sleep 3600"),
        ),
        (
            "orphans199",
            "200 processes, the leader exits, 199 linger",
            format!("trap '' TERM; {spawn_199}; trap - TERM; exec sleep 3600"),
        ),
        (
            "single",
            "1 process ignoring TERM (reference)",
            "trap '' TERM; exec sleep 3600".to_owned(),
        ),
    ];
    for (id, _, script) in &cases {
        write_backends(&backends, &[id.to_string()], script, extra);
    }
    let home = dir.join("berth");
    let berth = berth_headless(&backends, &home);
    let socket = home.join("run/berth.sock");
    wait_status(&socket, "three backends", |l| l.len() == 3);
    let pid = berth.0.id();

    let mut rows = Vec::new();
    for (id, what, _) in &cases {
        let reply = request(&socket, &format!(r#"{{"cmd":"start","id":"{id}"}}"#));
        assert_eq!(reply["ok"], true, "start {id}: {reply}");
        // Every child spawned, and no status-driven sampling left running
        // (a `status` keeps figures live for 10 s).
        std::thread::sleep(Duration::from_secs(12));
        let cpu0 = cpu_ms(pid);
        let t0 = Instant::now();
        let reply = request(&socket, &format!(r#"{{"cmd":"stop","id":"{id}"}}"#));
        let wall = t0.elapsed();
        let cpu = cpu_ms(pid) - cpu0;
        assert_eq!(reply["ok"], true, "stop {id}: {reply}");
        rows.push((*what, wall, cpu));
    }
    drop(berth);

    println!(
        "\n{:<44} {:>10} {:>10} {:>12}",
        "stop of", "wall s", "cpu ms", "% of a core"
    );
    let share = |wall: Duration, cpu: f64| cpu / (wall.as_secs_f64() * 1000.0) * 100.0;
    for (what, wall, cpu) in &rows {
        println!(
            "{what:<44} {:>10.1} {cpu:>10.0} {:>11.2}%",
            wall.as_secs_f64(),
            share(*wall, *cpu)
        );
    }
    let worst = rows[..2]
        .iter()
        .map(|(_, wall, cpu)| share(*wall, *cpu))
        .fold(0.0, f64::max);
    let reference = share(rows[2].1, rows[2].2);
    println!(
        "\nratio 200-process / 1-process: {:.2}x",
        worst / reference.max(0.01)
    );
    println!(
        "target < {TARGET_PERCENT} % of a core while waiting out a 200-process stop: {}",
        verdict(worst < TARGET_PERCENT)
    );
}
