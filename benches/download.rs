//! Downloading and verifying an update's 16 MB executable from a loopback
//! feed through berth's fetch module (`update::fetch::download`: streamed
//! to a file, SHA-256 computed on the way, size and digest checked) beside
//! `curl -o` then `sha256sum` of the same file from the same server, in the
//! same run, alternating round by round; medians printed and their ratio.
//!
//! Goal (issue #27, point 9): at most 1.5x. berth's side runs in this
//! process (no process start); curl and sha256sum each start one.
//! `BERTH_DOWNLOAD_ROUNDS` changes the number of rounds (default 15);
//! `BERTH_DOWNLOAD_MB` the size.

#[path = "../tests/it/fetch/server.rs"]
#[allow(dead_code)]
mod server;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::manifest::Digest;
use berth::update::fetch;
use sha2::{Digest as _, Sha256};

use server::{Reply, Server};

const GOAL: f64 = 1.5;

fn main() {
    let rounds: usize = env_number("BERTH_DOWNLOAD_ROUNDS", 15);
    let mb: usize = env_number("BERTH_DOWNLOAD_MB", 16);
    let curl = which("curl");
    let data: Arc<Vec<u8>> = Arc::new(
        (0..mb << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    );
    let digest = Digest(Sha256::digest(&*data).into());
    let size = data.len() as u64;
    let served = data.clone();
    let server = Server::http(move |_| Reply::Body(served.to_vec()));
    let url = server.url("/1.1.0/backend");
    let tmp = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    let (mut berth, mut reference) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let dest = tmp.path().join(format!("berth-{round}"));
        let started = Instant::now();
        runtime
            .block_on(fetch::download(&url, size, &digest, &dest))
            .expect("berth download");
        berth.push(started.elapsed());

        let dest = tmp.path().join(format!("curl-{round}"));
        let started = Instant::now();
        let ok = Command::new(&curl)
            .args(["-s", "-f", "-o"])
            .arg(&dest)
            .arg(url.as_str())
            .status()
            .expect("curl")
            .success();
        let sum = Command::new("sha256sum")
            .arg(&dest)
            .output()
            .expect("sha256sum");
        reference.push(started.elapsed());
        assert!(ok && sum.status.success(), "curl or sha256sum failed");
        assert!(String::from_utf8_lossy(&sum.stdout).starts_with(&digest.to_string()));
        for name in ["berth", "curl"] {
            let _ = std::fs::remove_file(tmp.path().join(format!("{name}-{round}")));
        }
    }
    let (b, r) = (median_ms(&mut berth), median_ms(&mut reference));
    let ratio = b / r;
    println!("download: {mb} MB from 127.0.0.1, medians of {rounds} rounds");
    println!("download: berth fetch::download (stream + SHA-256 + checks): {b:.1} ms");
    println!("download: curl -o + sha256sum:                              {r:.1} ms");
    println!(
        "download: ratio {ratio:.2} (goal <= {GOAL}): {}",
        if ratio <= GOAL { "ok" } else { "MISSED" }
    );
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `name` on PATH; curl is installed when missing (Debian's package).
fn which(name: &str) -> String {
    let found = |n: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {n}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(path) = found(name) {
        return path;
    }
    let installed = Command::new("sh")
        .args([
            "-c",
            "apt-get install -y curl || sudo apt-get install -y curl",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(installed, "{name} is missing and could not be installed");
    found(name).unwrap_or_else(|| panic!("{name} not found after installing it"))
}

fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}
