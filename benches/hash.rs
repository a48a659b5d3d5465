//! `berth hash` against `openssl dgst -sha256` on the same 256 MB file, in the
//! same run: prints both times (best of 5) and the ratio openssl/berth
//! (target >= 1.0, i.e. berth at least as fast as OpenSSL).
//!
//! Run with `cargo bench --bench hash`. The file is hashed once by each tool
//! before timing so both read from the page cache.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SIZE: usize = 256 * 1024 * 1024;
const RUNS: usize = 5;

fn main() {
    // Under `cargo test --benches` a bench is only smoke-run.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let berth = env!("CARGO_BIN_EXE_berth");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("blob");
    write_blob(&file);

    let berth_digest = run(berth, &["hash"], &file);
    let openssl_digest = run("openssl", &["dgst", "-sha256", "-r"], &file);
    let berth_digest = berth_digest
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let openssl_digest = openssl_digest
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(berth_digest, openssl_digest, "the two tools disagree");

    let berth_time = best(|| {
        run(berth, &["hash"], &file);
    });
    let openssl_time = best(|| {
        run("openssl", &["dgst", "-sha256", "-r"], &file);
    });
    let ratio = openssl_time.as_secs_f64() / berth_time.as_secs_f64();
    println!("hash 256 MB, best of {RUNS}:");
    println!("  berth hash          {:>8.3} s", berth_time.as_secs_f64());
    println!(
        "  openssl dgst -sha256 {:>7.3} s",
        openssl_time.as_secs_f64()
    );
    println!(
        "  ratio openssl/berth {ratio:>8.2} (target >= 1.0: {})",
        if ratio >= 1.0 { "met" } else { "NOT met" }
    );
}

/// 256 MB of xorshift noise: incompressible, no zero pages.
fn write_blob(path: &Path) {
    let mut out = BufWriter::new(File::create(path).expect("create blob"));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..SIZE / chunk.len() {
        for word in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        out.write_all(&chunk).expect("write blob");
    }
    out.flush().expect("flush blob");
}

fn run(program: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn best(mut f: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}
