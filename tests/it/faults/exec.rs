//! What runs: `#!` scripts by their real path (so `dirname "$0"` works), a
//! file the kernel cannot execute fails instead of running through a shell,
//! and an executable overwritten in place while it is hashed never runs the
//! other bytes.

use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::util::wait_file;

/// A manifest for the executable `rel` (relative to the backends folder),
/// with its current digest and `args`.
fn manifest(home: &Home, id: &str, rel: &str, args: &[&str]) {
    let digest = berth::integrity::hash_file(&home.backends().join(rel)).unwrap();
    let args = serde_json::to_string(args).unwrap();
    std::fs::write(
        home.backends().join(format!("{id}.yaml")),
        format!(
            "id: {id}\nname: Backend {id}\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {rel}\n    sha256: {digest}\nargs: {args}\nstop: {{ timeout: 2s }}\n"
        ),
    )
    .unwrap();
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn scripts_run_by_their_real_path_and_find_files_beside_them() {
    let home = Home::new();
    let tools = home.backends().join("tools");
    std::fs::create_dir(&tools).unwrap();
    // The common wrapper: cd beside yourself, source a library from there.
    executable(
        &tools.join("lib.sh"),
        "echo \"lib from $(pwd)\" > sourced\n",
    );
    executable(
        &tools.join("wrapper.sh"),
        "#!/bin/sh\ncd \"$(dirname \"$0\")\" || exit 1\n. ./lib.sh\necho \"$0\" > zero\nexec sleep 600\n",
    );
    manifest(&home, "wrapper", "tools/wrapper.sh", &[]);
    // A Python program reading a data file beside itself.
    std::fs::write(tools.join("data.txt"), "beside\n").unwrap();
    executable(
        &tools.join("tool.py"),
        "#!/usr/bin/python3\nimport os, sys, time\nhere = os.path.dirname(os.path.abspath(__file__))\nprint(open(os.path.join(here, 'data.txt')).read().strip(), flush=True)\nsys.stdin.read()\n",
    );
    manifest(&home, "py", "tools/tool.py", &[]);
    let _l = home.launch();
    for id in ["wrapper", "py"] {
        let out = run_within(&home, &["start", id]);
        assert_eq!(out.code(), 0, "{id}: {out:?}");
    }
    assert_eq!(
        wait_file(&tools.join("zero"), T),
        tools.join("wrapper.sh").display().to_string()
    );
    assert_eq!(
        wait_file(&tools.join("sourced"), T),
        format!("lib from {}", tools.display())
    );
    let logged = crate::control::home::wait_until(T, || {
        std::fs::read_to_string(home.log("py"))
            .unwrap_or_default()
            .contains(" stdout beside\n")
    });
    assert!(logged, "{:?}", std::fs::read_to_string(home.log("py")));
}

#[test]
fn a_file_the_kernel_cannot_execute_fails_with_exec_format_error() {
    let home = Home::new();
    // No `#!`, no ELF header: execvp would have run it through /bin/sh.
    executable(
        &home.backends().join("notaprogram"),
        "echo ran > ran\nsleep 600\n",
    );
    manifest(&home, "bad", "notaprogram", &[]);
    let _l = home.launch();
    let out = run_within(&home, &["start", "bad"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr().to_lowercase().contains("exec format error"),
        "{out:?}"
    );
    let status = home.status_of("bad");
    assert_eq!(status["state"], "failed", "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("exec format error"),
        "{status}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!home.backends().join("ran").exists(), "a shell ran it");
}

/// Size of the executable overwritten in place, and of the head rewritten.
const BIG: u64 = 300 << 20;
const HEAD: usize = 2 << 20;

/// `elf` padded with zeros to `HEAD` bytes.
fn head_of(elf: &str) -> Vec<u8> {
    let mut b = std::fs::read(elf).unwrap();
    assert!(b.len() < HEAD);
    b.resize(HEAD, 0);
    b
}

#[test]
fn an_in_place_overwrite_while_hashing_never_runs_other_bytes() {
    let home = Home::new();
    let exe = home.backends().join("big");
    // The hashed program is bash padded to 300 MB; the writer puts dash's
    // bytes in its place and back, in place (same inode), over and over.
    let good = head_of("/bin/bash");
    let evil = head_of("/bin/dash");
    {
        let f = std::fs::File::create(&exe).unwrap();
        f.write_all_at(&good, 0).unwrap();
        f.set_len(BIG).unwrap();
    }
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    manifest(
        &home,
        "big",
        "big",
        &[
            "-c",
            "if [ -n \"$BASH_VERSION\" ]; then echo bash; else echo other; fi >> ran; exec sleep 600",
        ],
    );
    let _l = home.launch();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (exe, stop) = (exe.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seed = std::process::id() as u64;
            let mut pause = |max: u64| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                std::thread::sleep(Duration::from_millis((seed >> 33) % max));
            };
            let mut swaps = 0;
            while !stop.load(Ordering::Relaxed) {
                for head in [&evil, &good] {
                    pause(1200);
                    // ETXTBSY while the backend runs: try again later.
                    while let Err(e) = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&exe)
                        .and_then(|f| f.write_all_at(head, 0))
                    {
                        assert_eq!(e.raw_os_error(), Some(libc::ETXTBSY), "{e}");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                swaps += 1;
            }
            swaps
        })
    };
    let ran = home.backends().join("ran");
    let (mut started, mut refused) = (0, 0);
    for _ in 0..8 {
        let out = run_within(&home, &["start", "big"]);
        if out.code() == 0 {
            started += 1;
            wait_for_runs(&ran, started);
            assert_eq!(run_within(&home, &["stop", "big"]).code(), 0);
        } else {
            refused += 1;
            let err = out.stderr();
            eprintln!("refused: {}", err.trim());
            assert!(
                err.contains("changed")
                    || err.contains("checksum mismatch")
                    || err.contains("text file busy"),
                "{err}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = writer.join().unwrap();
    // Unchallenged, the file (restored) runs.
    assert_eq!(run_within(&home, &["start", "big"]).code(), 0);
    started += 1;
    wait_for_runs(&ran, started);
    let runs = std::fs::read_to_string(&ran).unwrap();
    eprintln!("{started} runs, {refused} refused, {swaps} swaps: {runs:?}");
    assert!(
        runs.lines().all(|l| l == "bash"),
        "other bytes ran: {runs:?}"
    );
}

/// Waits until the backend has written `runs` lines into `ran` (one per run).
fn wait_for_runs(ran: &std::path::Path, runs: usize) {
    let deadline = Instant::now() + T;
    while std::fs::read_to_string(ran)
        .unwrap_or_default()
        .lines()
        .count()
        < runs
    {
        assert!(Instant::now() < deadline, "the backend never wrote");
        std::thread::sleep(Duration::from_millis(20));
    }
}
