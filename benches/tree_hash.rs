//! The tree digest of a real PyInstaller onedir build (`berth hash DIR` on
//! `python/dist/onedir/backend/_internal`, built by `python/build.sh
//! --onedir`) beside `sha256sum` of the same files, in the same run: best of
//! 5, interleaved so a change of load on a shared machine hits both alike.
//! The ratio sha256sum/berth says what pinning a whole folder costs over
//! hashing its files with the standard tool (target >= 0.9: the walk, the
//! sort and the modes cost next to nothing).
//!
//! Run with `cargo bench --bench tree_hash`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn main() {
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/dist/onedir/backend/_internal");
    assert!(
        dir.is_dir(),
        "{} is missing: run python/build.sh --onedir first",
        dir.display()
    );
    let berth = env!("CARGO_BIN_EXE_berth");
    let files = regular_files(&dir);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    // Once each first, so both read from the page cache.
    berth_hash(berth, &dir);
    sha256sum(&files);
    let mut berth_time = Duration::MAX;
    let mut sum_time = Duration::MAX;
    for _ in 0..RUNS {
        berth_time = berth_time.min(timed(|| berth_hash(berth, &dir)));
        sum_time = sum_time.min(timed(|| sha256sum(&files)));
    }
    let ratio = sum_time.as_secs_f64() / berth_time.as_secs_f64();
    println!(
        "tree digest of the onedir build's _internal ({} files, {:.1} MB), best of {RUNS}:",
        files.len(),
        bytes as f64 / 1e6
    );
    println!(
        "  berth hash DIR        {:>8.3} s",
        berth_time.as_secs_f64()
    );
    println!("  sha256sum FILES...    {:>8.3} s", sum_time.as_secs_f64());
    println!(
        "  ratio sha256sum/berth {ratio:>8.2} (target >= 0.9: {})",
        if ratio >= 0.9 { "met" } else { "NOT met" }
    );
}

fn regular_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let entry = entry.expect("entry");
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

fn berth_hash(berth: &str, dir: &Path) {
    let out = Command::new(berth)
        .arg("hash")
        .arg(dir)
        .output()
        .expect("berth hash");
    assert!(out.status.success() && out.stdout.len() == 65, "{out:?}");
}

fn sha256sum(files: &[std::path::PathBuf]) {
    let status = Command::new("sha256sum")
        .args(files)
        .stdout(Stdio::null())
        .status()
        .expect("sha256sum");
    assert!(status.success());
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}
