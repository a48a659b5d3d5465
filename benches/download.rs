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
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use berth::manifest::Digest;
use berth::update::fetch;
use sha2::{Digest as _, Sha256};

use server::{Reply, Server};

const GOAL: f64 = 1.5;

fn main() {
    let rounds: usize = env_number("BERTH_DOWNLOAD_ROUNDS", 15);
    let mb: usize = env_number("BERTH_DOWNLOAD_MB", 16);
    let curl = support::which("curl");
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
        reference.push(support::curl_and_sha256sum(
            &curl,
            url.as_str(),
            &dest,
            &digest,
        ));
        for name in ["berth", "curl"] {
            let _ = std::fs::remove_file(tmp.path().join(format!("{name}-{round}")));
        }
    }
    let (b, r) = (
        support::median_ms(&mut berth),
        support::median_ms(&mut reference),
    );
    let ratio = b / r;
    println!(
        "download: {mb} MB from 127.0.0.1, medians of {rounds} rounds ({})",
        support::load()
    );
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
