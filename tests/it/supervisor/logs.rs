//! The per-backend log file: stamped lines from both pipes, written
//! promptly, a partial last line kept, and rotation by size.

use berth::verb::Verb;
use std::time::Instant;

use super::*;

/// The number `i` at the end of a logged `line i`.
fn line_number(line: &str) -> u32 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_are_stamped_and_flushed_promptly() {
    let e = env();
    let b = scripted(
        &e,
        "talk",
        "echo hello\necho oops >&2\nprintf 'partial'\nsleep 60",
    );
    apply_and_start(&e, b).await.unwrap();
    // Within 3x the ~100 ms target, while the backend is quiet.
    let deadline = Instant::now() + Duration::from_millis(300);
    let mut log = String::new();
    while Instant::now() < deadline {
        log = e.log("talk");
        if log.lines().count() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log:?}");
    // Two pipes: their relative order is not defined.
    lines.sort_by_key(|l| l.split_once(' ').map(|x| x.1));
    assert!(lines[0].ends_with(" stderr oops"), "{}", lines[0]);
    let (stamp, rest) = lines[1].split_once(' ').unwrap();
    assert_eq!(rest, "stdout hello");
    assert_eq!(stamp.len(), 24, "{stamp}");
    assert!(stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T' && stamp.as_bytes()[19] == b'.');
    assert!(stamp.starts_with("20"), "{stamp}");
    e.sup.command("talk", Verb::Stop).await.unwrap();
    // The partial last line is written when the stream ends.
    assert!(
        e.log("talk")
            .lines()
            .last()
            .unwrap()
            .ends_with(" stdout partial")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_rotate_by_size_through_the_supervisor() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let sup = berth::supervisor::spawn_with_guardian(
        berth::status::Config {
            log_dir: logs.clone(),
            log_max_size: 2000,
            log_backups: 2,
            notify_dir: dir.path().join("notify"),
            env_remove: Vec::new(),
            updates_dir: None,
        },
        None,
    );
    let exe = script(
        dir.path(),
        "chatty.sh",
        "i=0; while [ $i -lt 200 ]; do echo \"line $i\"; i=$((i+1)); done",
    );
    sup.apply(catalog([backend(dir.path(), "chatty", &exe)]))
        .await;
    sup.command("chatty", Verb::start()).await.unwrap();
    wait_for(&sup, "chatty", T, |s| s.state == State::Exited).await;
    let read = |name: &str| std::fs::read_to_string(logs.join(name)).unwrap();
    let (cur, one, two) = (
        read("chatty.log"),
        read("chatty.log.1"),
        read("chatty.log.2"),
    );
    assert!(!logs.join("chatty.log.3").exists());
    assert!(cur.ends_with(" stdout line 199\n"), "{cur}");
    for f in [&cur, &one, &two] {
        assert!(f.len() <= 2000, "{} bytes", f.len());
        assert!(f.lines().all(|l| l.contains(" stdout line ")), "{f}");
    }
    // Backups hold the lines just before the current file, in order.
    let first_cur = line_number(cur.lines().next().unwrap());
    let last_one = line_number(one.lines().last().unwrap());
    assert_eq!(last_one + 1, first_cur);
}
