//! The round trip of `berth send --wait` to the Python backend's ping,
//! beside the same ping written straight into a backend's stdin pipe and its
//! pong read from its stdout, measured in the same run on the same build.
//!
//! Goal (issue #13): `berth send --wait` at most 3x the direct pipe. What
//! the launcher adds is measured by one `send` request with `wait` on the
//! control socket against the direct pipe. The `berth send --wait` command
//! also pays for starting a process and connecting, which the pipe does
//! not; it is printed against the pipe and against the same cost without
//! the backend, a `berth status` command, measured in the same run.
//! On an idle machine of two cores most of each round trip is threads
//! waking on another core; `taskset -c 0` on the bench binary shows the
//! floor of what the socket adds, with no wake-up crossing cores.
//! `BERTH_SEND_ROUNDS` changes the number of rounds (default 1000; the
//! commands run at most 100 times).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("BERTH_SEND_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/dist/backend");
    assert!(exe.is_file(), "run python/build.sh first");

    // Reference: the backend's stdin and stdout pipes, held directly.
    let mut direct = Guard(
        Command::new(&exe)
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the backend"),
    );
    let mut stdin = direct.0.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(direct.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("\"ready\"") {
        line.clear();
        stdout.read_line(&mut line).expect("ready line");
    }

    // berth: a headless launcher hosting the same build.
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let backends = dir.join("b");
    std::fs::create_dir(&backends).expect("backends dir");
    let digest = berth::integrity::hash_file(&exe).expect("hash");
    std::fs::write(
        backends.join("python.yaml"),
        format!(
            "id: python\nname: Python\nversion: 1.0.0\nexecutable:\n  linux:\n    path: {}\n    sha256: \"{digest}\"\nargs: [\"--port\", \"0\"]\nready: {{ stdout_json: {{ status: ready }} }}\n",
            exe.display()
        ),
    )
    .expect("manifest");
    let socket = dir.join("run/berth.sock");
    let berth = |args: &[&str]| {
        let mut cmd = Command::new(BERTH);
        cmd.arg("--socket")
            .arg(&socket)
            .args(args)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    };
    let _launcher = Guard(
        berth(&[
            "run",
            "--headless",
            "--backends",
            backends.to_str().expect("utf-8"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the launcher never served");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = berth(&["start", "python"]).output().expect("start");
    assert!(out.status.success(), "start: {out:?}");

    let stream = UnixStream::connect(&socket).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    // One request line `rounds` times on the same connection: the median.
    let mut probe = |line_text: &str| {
        let mut v = Vec::new();
        let mut line = String::new();
        for _ in 0..rounds {
            let t = Instant::now();
            writeln!(writer, "{line_text}").expect("request");
            line.clear();
            reader.read_line(&mut line).expect("reply");
            v.push(t.elapsed());
        }
        median(v)
    };
    let unknown = probe(r#"{"cmd":"send","id":"nope","line":1}"#);
    let nowait = probe(r#"{"cmd":"send","id":"python","line":{"action":"noop"}}"#);
    // The reference and berth alternate round by round, so both meet the
    // same machine (a shared, noisy one: measured one after the other, the
    // ratio swung from 1.3x to 14x between runs).
    let mut pipe = Vec::new();
    let mut request = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        writeln!(stdin, "{{\"action\": \"ping\", \"id\": {i}}}").expect("write");
        loop {
            line.clear();
            stdout.read_line(&mut line).expect("reply");
            if line.contains(&format!("\"id\": {i}}}")) {
                break;
            }
        }
        pipe.push(t.elapsed());

        let t = Instant::now();
        writeln!(
            writer,
            "{{\"cmd\":\"send\",\"id\":\"python\",\"line\":{{\"action\":\"ping\",\"id\":{i}}},\"wait\":{{\"key\":\"id\",\"value\":\"{i}\"}}}}"
        )
        .expect("request");
        line.clear();
        reader.read_line(&mut line).expect("reply");
        assert!(line.contains("pong"), "{line}");
        request.push(t.elapsed());
    }
    drop(stdin);

    let mut status = Vec::new();
    for _ in 0..rounds.min(100) {
        let t = Instant::now();
        let out = berth(&["status"]).output().expect("status");
        status.push(t.elapsed());
        assert!(out.status.success(), "{out:?}");
    }

    let mut cli = Vec::new();
    for i in 0..rounds.min(100) {
        let json = format!("{{\"action\": \"ping\", \"id\": {i}}}");
        let wait = format!("id={i}");
        let t = Instant::now();
        let out = berth(&["send", "python", &json, "--wait", &wait])
            .output()
            .expect("send");
        cli.push(t.elapsed());
        assert!(out.status.success(), "{out:?}");
    }

    // Each round's two figures met the same moment of the machine: the
    // median of their ratios moves less between runs than the ratio of the
    // medians.
    let mut paired: Vec<f64> = pipe
        .iter()
        .zip(&request)
        .map(|(p, r)| r.as_secs_f64() / p.as_secs_f64())
        .collect();
    paired.sort_by(f64::total_cmp);
    let paired = paired[paired.len() / 2];
    let (pipe, request, status, cli) = (median(pipe), median(request), median(status), median(cli));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "direct stdin pipe round trip:       {:.3} ms (median of {rounds})",
        ms(pipe)
    );
    println!(
        "control socket send --wait request: {:.3} ms ({:.2}x the pipe, round by round {paired:.2}x; goal <= 3x)",
        ms(request),
        ms(request) / ms(pipe)
    );
    // Where the time goes: the socket alone (a refusal the handle answers),
    // and a send the job queues without waiting for a reply.
    println!(
        "  of which: socket round trip {:.3} ms, send without --wait {:.3} ms",
        ms(unknown),
        ms(nowait)
    );
    println!(
        "berth status command:               {:.3} ms (a process start and one request)",
        ms(status)
    );
    println!(
        "berth send --wait command:          {:.3} ms ({:.2}x berth status, {:.1}x the pipe)",
        ms(cli),
        ms(cli) / ms(status),
        ms(cli) / ms(pipe)
    );
}
