//! `status` and the log pumps while a 300 MB executable is hashed (issue
//! #12: hashing used to run on the async runtime, stalling `status` 190 to
//! 675 ms and every log pump with it).
//!
//! One backend logs its own clock (ms) every 5 ms; `status` is asked back
//! to back. The
//! reference phase measures both while nothing hashes; then the 300 MB
//! backend is started three times, its file dropped from the page cache
//! before each (a cold hash), while the same measurements run. Printed:
//! the slowest and median `status`, and the longest lag of the logging
//! backend's pump (the stamp berth gives a line as it reads it, minus the
//! time the backend wrote into it), in each phase.
//!
//! Targets: `status` < 100 ms and no pump lag beyond the reference's.

#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

const BIG_MB: usize = 300;
const STATUS_TARGET_MS: f64 = 100.0;

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let backends = dir.join("b");
    write_backends(
        &backends,
        &["logger".to_owned()],
        "while :; do date +%s%3N; sleep 0.005; done",
        "autostart: true\n",
    );
    // `sleep` with 300 MB appended: still a valid ELF, and all of it hashed.
    let big = backends.join("big.bin");
    {
        let mut f = std::fs::File::create(&big).expect("big");
        f.write_all(&std::fs::read("/bin/sleep").expect("/bin/sleep"))
            .expect("write");
        let chunk = vec![0x5au8; 1 << 20];
        for _ in 0..BIG_MB {
            f.write_all(&chunk).expect("write");
        }
        f.sync_all().expect("sync");
    }
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let digest = berth::integrity::hash_file(&big).expect("hash");
    std::fs::write(
        backends.join("big.yaml"),
        format!(
            "id: big\nname: big\nversion: 1.0.0\nexecutable:\n  linux:\n    path: big.bin\n    sha256: {digest}\nargs: [\"3600\"]\n"
        ),
    )
    .expect("manifest");

    let home = dir.join("berth");
    let _berth = berth_headless(&backends, &home);
    let socket = home.join("run/berth.sock");
    wait_status(&socket, "the logger running", |l| {
        l.iter()
            .any(|b| b["id"] == "logger" && b["state"] == "running")
    });
    std::thread::sleep(Duration::from_secs(1));
    let log = home.join("state/berth/logs/logger.log");

    let t0 = Instant::now();
    let ref_start = wall_ms();
    let mut reference = Vec::new();
    while t0.elapsed() < Duration::from_secs(3) {
        reference.push(timed_status(&socket));
    }
    let ref_window = (ref_start, wall_ms());

    let mut hashing = Vec::new();
    let mut windows = Vec::new();
    let mut hash_ms = Vec::new();
    for _ in 0..3 {
        drop_cache(&big);
        let start = wall_ms();
        let sock = socket.clone();
        let starter = std::thread::spawn(move || {
            let t = Instant::now();
            let reply = request(&sock, r#"{"cmd":"start","id":"big"}"#);
            (t.elapsed(), reply)
        });
        while !starter.is_finished() {
            hashing.push(timed_status(&socket));
        }
        let (took, reply) = starter.join().expect("start thread");
        assert_eq!(reply["ok"], true, "start big: {reply}");
        hash_ms.push(took.as_secs_f64() * 1000.0);
        windows.push((start, wall_ms()));
        let reply = request(&socket, r#"{"cmd":"stop","id":"big"}"#);
        assert_eq!(reply["ok"], true, "stop big: {reply}");
    }
    // The pump flushes within 50 ms.
    std::thread::sleep(Duration::from_millis(200));
    let stamps = log_stamps(&log);
    let ref_gap = max_lag(&stamps, &[ref_window]);
    let hash_gap = max_lag(&stamps, &windows);

    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() - 1], v.len())
    };
    let (ref_med, ref_max, ref_n) = stats(&mut reference);
    let (h_med, h_max, h_n) = stats(&mut hashing);
    println!(
        "status_hash: start of a {BIG_MB} MB backend (cold page cache), {:.0} to {:.0} ms each\n",
        hash_ms.iter().copied().fold(f64::MAX, f64::min),
        hash_ms.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "{:<24} {:>9} {:>13} {:>10} {:>20}",
        "phase", "statuses", "median ms", "max ms", "max pump lag ms"
    );
    println!(
        "{:<24} {ref_n:>9} {ref_med:>13.1} {ref_max:>10.1} {ref_gap:>20.0}",
        "nothing hashing (ref)"
    );
    println!(
        "{:<24} {h_n:>9} {h_med:>13.1} {h_max:>10.1} {hash_gap:>20.0}",
        "hashing 300 MB"
    );
    println!(
        "\nratio hashing / reference: status max {:.2}x, pump lag {:.2}x",
        h_max / ref_max.max(0.1),
        hash_gap / ref_gap.max(1.0)
    );
    println!(
        "target status < {STATUS_TARGET_MS} ms while hashing: {}; no pump stall (lag <= max(3x reference, 50 ms)): {}",
        verdict(h_max < STATUS_TARGET_MS),
        verdict(hash_gap <= (3.0 * ref_gap).max(50.0))
    );
}

/// One `status` round trip, in ms.
fn timed_status(socket: &Path) -> f64 {
    let t = Instant::now();
    let reply = request(socket, r#"{"cmd":"status"}"#);
    assert_eq!(reply["ok"], true, "status: {reply}");
    t.elapsed().as_secs_f64() * 1000.0
}

/// Now, in ms since the epoch (the log's clock).
fn wall_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
        * 1000.0
}

/// Drops the file's pages from the page cache, so the next hash reads disk.
fn drop_cache(path: &Path) {
    let f = std::fs::File::open(path).expect("open big");
    let _ = nix::fcntl::posix_fadvise(
        &f,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

/// Per line: berth's stamp and the backend's own clock, ms since the epoch
/// (`2026-12-02T01:02:03.456Z stdout 1796173323456`).
fn log_stamps(log: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(log).expect("logger's log");
    text.lines()
        .filter_map(|l| {
            let berth = parse_stamp(l.get(..24)?)?;
            let own = l.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((berth, own))
        })
        .collect()
}

fn parse_stamp(s: &str) -> Option<f64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, ms) = time.split_once('.')?;
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (h, min, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + min * 60 + sec;
    Some(secs as f64 * 1000.0 + ms.parse::<f64>().ok()?)
}

/// The longest pump lag of a line written inside one of the windows.
fn max_lag(stamps: &[(f64, f64)], windows: &[(f64, f64)]) -> f64 {
    stamps
        .iter()
        .filter(|(_, own)| windows.iter().any(|(a, b)| own >= a && own <= b))
        .map(|(berth, own)| berth - own)
        .fold(0.0, f64::max)
}
