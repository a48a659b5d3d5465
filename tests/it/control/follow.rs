//! `berth logs -f` under fast rotation (issue #12): it polled every 200 ms
//! and skipped whole rotated files when rotation was faster (19% of lines
//! lost at 5 MB/s). Now woken by inotify, it follows every file in turn.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::home::*;

#[test]
fn logs_follow_loses_under_1_percent_at_5_mb_per_s_with_1_mb_logs() {
    let home = Home::new();
    // 100-byte lines, 500 every 10 ms: 5 MB/s for 4 s, then a marker.
    let lines: u64 = 200_000;
    home.backend(
        "fast",
        &format!(
            "perl -MTime::HiRes=time,sleep -e '$|=1; my $t=time; for my $b (0..{last_batch}) {{ for my $i (0..499) {{ printf \"seq %09d %s\\n\", $b*500+$i, \"x\" x 76; }} my $w=$t+($b+1)*0.01-time; sleep($w) if $w>0; }} print \"done\\n\";'; exec sleep 600",
            last_batch = lines / 500 - 1
        ),
        "",
    );
    let log = home.log("fast");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "").unwrap();
    let mut launcher = home
        .berth(&[
            "run",
            "--headless",
            "--log-max-size",
            "1MB",
            "--log-backups",
            "3",
            "--backends",
        ])
        .arg(home.backends())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(15), || home
        .run(&["status"])
        .code()
        == 0));
    let mut follower = home
        .berth(&["logs", "fast", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = HashSet::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.ends_with(" done") {
                break;
            }
            if let Some(n) = line
                .split_whitespace()
                .skip_while(|w| *w != "seq")
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
            {
                seen.insert(n);
            }
        }
        seen.len() as u64
    });
    let t0 = Instant::now();
    let out = home.run(&["start", "fast"]);
    assert_eq!(out.code(), 0, "{out:?}");
    // 4 s of output; 30 s for a loaded machine.
    while !reader.is_finished() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let seen = reader.join().unwrap();
    let _ = launcher.kill();
    let _ = launcher.wait();
    let lost = lines - seen;
    eprintln!(
        "logs -f at 5 MB/s, 1 MB logs x 3: {seen} of {lines} lines, {:.2}% lost",
        lost as f64 * 100.0 / lines as f64
    );
    assert!(
        lost * 100 < lines,
        "{lost} of {lines} lines lost ({seen} seen)"
    );
}
