//! Dependencies cost nothing but the order (issue #26, point 8).
//!
//! A chain of 10 backends, each ready at once (`c1` depends on `c0`, ...,
//! `c9` on `c8`, `running` edges), started from the last one: the time until
//! `c9` runs, against 10 independent backends started one after the other
//! in the same run (each start waits for `running`). Goal: chain / singles
//! <= 1.2.
//!
//! Then Quit (`shutdown`) of the running chain, each backend taking 100 ms
//! to exit after SIGTERM: the chain must stop one after the other, so the
//! floor is the sum along the chain; against the longest of 10 single
//! stops, measured in the same run. Goal: Quit <= 10 x longest + 50 ms.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use berth::manifest::depends::{Condition, Dependency};
use berth::manifest::{Backend, BackendId};
use berth::status::State;
use berth::supervisor::SupervisorHandle;
use berth::verb::Verb;

const CHAIN: usize = 10;
const ROUNDS: usize = 5;

/// Exits 100 ms after SIGTERM (`sleep & wait` so the trap runs at once).
const SCRIPT: &str =
    "#!/bin/sh\ntrap 'sleep 0.1; exit 0' TERM\nwhile true; do sleep 60 & wait $!; done\n";

fn backends(dir: &Path, prefix: &str, chained: bool) -> Vec<Backend> {
    let exe = dir.join("b.sh");
    (0..CHAIN)
        .map(|i| {
            let mut b = common::backend(dir, &format!("{prefix}{i}"), &exe);
            if chained && i > 0 {
                b.depends_on.insert(
                    BackendId::new(&format!("{prefix}{}", i - 1)).expect("id"),
                    Dependency {
                        condition: Condition::Running,
                        restart: false,
                    },
                );
            }
            b
        })
        .collect()
}

async fn wait_running(sup: &SupervisorHandle, id: &str) {
    let mut rx = sup.subscribe();
    while rx.borrow_and_update().get(id).map(|s| s.state) != Some(State::Running) {
        rx.changed().await.expect("supervisor alive");
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = dir.path().join("b.sh");
    std::fs::write(&exe, SCRIPT).expect("script");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut all = backends(dir.path(), "c", true);
        all.extend(backends(dir.path(), "s", false));
        let sup = common::supervise(dir.path(), all).await;
        let last = format!("c{}", CHAIN - 1);
        let (mut chain, mut singles, mut stops) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t0 = Instant::now();
            sup.command(&last, Verb::start()).await.expect("start");
            wait_running(&sup, &last).await;
            chain.push(t0.elapsed());
            let t0 = Instant::now();
            for i in 0..CHAIN {
                let id = format!("s{i}");
                sup.command(&id, Verb::start()).await.expect("start");
                wait_running(&sup, &id).await;
            }
            singles.push(t0.elapsed());
            // Let every shell install its trap.
            tokio::time::sleep(Duration::from_millis(200)).await;
            for i in 0..CHAIN {
                let t0 = Instant::now();
                sup.command(&format!("s{i}"), Verb::Stop).await.expect("stop");
                stops.push(t0.elapsed());
            }
            sup.command("c0", Verb::Stop).await.expect("stop the chain");
        }
        let (chain, singles) = (median(chain), median(singles));
        println!(
            "depends: a chain of {CHAIN} ready at once, started from the last: {:.1} ms; {CHAIN} single starts: {:.1} ms; ratio {:.2} (goal <= 1.2); medians of {ROUNDS}",
            chain.as_secs_f64() * 1e3,
            singles.as_secs_f64() * 1e3,
            chain.as_secs_f64() / singles.as_secs_f64()
        );
        sup.command(&last, Verb::start()).await.expect("start");
        wait_running(&sup, &last).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let longest = stops.into_iter().max().expect("stops");
        let t0 = Instant::now();
        sup.shutdown().await;
        let quit = t0.elapsed();
        let goal = longest * CHAIN as u32 + Duration::from_millis(50);
        println!(
            "depends: Quit of the running chain: {:.0} ms; longest single stop {:.0} ms, goal <= {CHAIN} x that + 50 ms = {:.0} ms",
            quit.as_secs_f64() * 1e3,
            longest.as_secs_f64() * 1e3,
            goal.as_secs_f64() * 1e3
        );
    });
}
