//! Log capture must not slow a fast backend down. A producer writes 200 MB
//! in 80-byte lines, flushing every line; it times itself. It runs once
//! redirected to a file by itself (the reference), once under berth's
//! supervisor (pipes, time stamps, rotation at the default 10 MB x 3), and,
//! for comparison, under supervisord. Prints the ratio (target >= 0.7).

mod common;

use berth::verb::Verb;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth::status::State;

const BYTES: u64 = 200 * 1000 * 1000;
const LINE: u64 = 80;

/// A script that writes the lines with perl (one write(2) per line) and
/// writes its own elapsed seconds to `$1`.
fn producer(dir: &Path) -> PathBuf {
    let lines = BYTES / LINE;
    let exe = dir.join("producer.sh");
    std::fs::write(
        &exe,
        format!(
            "#!/bin/sh\nexec perl -MTime::HiRes=time -e '$|=1; my $t=time; my $l=(\"x\" x {}).\"\\n\"; print $l for 1..{lines}; open(my $f, \">\", $ARGV[0]); printf $f \"%.6f\\n\", time-$t;' \"$1\"\n",
            LINE - 1
        ),
    )
    .expect("write producer");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    exe
}

fn read_secs(path: &Path, timeout: Duration) -> Option<f64> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reference(dir: &Path, exe: &Path) -> f64 {
    let out = std::fs::File::create(dir.join("ref.out")).expect("ref file");
    let timing = dir.join("ref.time");
    let status = Command::new(exe)
        .arg(&timing)
        .stdout(out)
        .status()
        .expect("run producer");
    assert!(status.success());
    let _ = std::fs::remove_file(dir.join("ref.out"));
    read_secs(&timing, Duration::from_secs(1)).expect("reference timing")
}

fn berth(dir: &Path, exe: &Path) -> (f64, f64) {
    let timing = dir.join("berth.time");
    let mut backend = common::backend(dir, "producer", exe);
    backend.args = vec![timing.display().to_string()];
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sup = common::supervise(dir, vec![backend]).await;
        let t0 = Instant::now();
        sup.command("producer", Verb::start()).await.expect("start");
        let mut rx = sup.subscribe();
        while rx
            .borrow_and_update()
            .get("producer")
            .is_some_and(|b| b.state != State::Exited)
        {
            rx.changed().await.expect("supervisor alive");
        }
        let total = t0.elapsed().as_secs_f64();
        (
            read_secs(&timing, Duration::from_secs(1)).expect("berth timing"),
            total,
        )
    })
}

fn supervisord(dir: &Path, exe: &Path) -> Option<f64> {
    let bin = Path::new("/usr/bin/supervisord");
    if !bin.exists() {
        return None;
    }
    let timing = dir.join("supervisord.time");
    let conf = dir.join("supervisord.conf");
    std::fs::write(
        &conf,
        format!(
            "[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n\n[program:producer]\ncommand={exe} {timing}\nautostart=true\nautorestart=false\nstartsecs=0\nstdout_logfile={d}/producer.log\nstdout_logfile_maxbytes=10MB\nstdout_logfile_backups=3\n",
            d = dir.display(),
            exe = exe.display(),
            timing = timing.display()
        ),
    )
    .ok()?;
    let mut child = Command::new(bin)
        .args(["-n", "-c"])
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let secs = read_secs(&timing, Duration::from_secs(600));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    secs
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = producer(dir.path());
    let reference = reference(dir.path(), &exe);
    let (berth, total) = berth(dir.path(), &exe);
    println!(
        "logs: producer of {} MB in {LINE}-byte lines, flushed per line",
        BYTES / 1_000_000
    );
    println!("  redirected to a file : {reference:.3} s");
    println!("  under berth          : {berth:.3} s (all lines logged after {total:.3} s)");
    println!(
        "  ratio reference/berth: {:.2} (target >= 0.7)",
        reference / berth
    );
    match supervisord(dir.path(), &exe) {
        Some(s) => println!(
            "  under supervisord    : {s:.3} s, ratio {:.2} (for reference)",
            reference / s
        ),
        None => println!("  supervisord          : not available"),
    }
}
