//! What berth gives each run (v3, issue #25): `port: auto` and `token: true`
//! through the real launcher and CLI, against a real HTTP server that
//! answers 401 without the token.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::home::{Home, wait_until};

/// A stdlib HTTP server on 127.0.0.1: `--port N` must equal `PORT`;
/// `/health` answers 200 only with `Authorization: Bearer $BERTH_TOKEN`
/// when a token is given, 401 otherwise.
const SERVER: &str = r#"
import hmac, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else int(os.environ["PORT"])
assert port == int(os.environ["PORT"]), "argument and PORT differ"
token = os.environ.get("BERTH_TOKEN")

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        given = self.headers.get("Authorization", "")
        ok = token is None or hmac.compare_digest(given, "Bearer " + token)
        self.send_response(200 if ok else 401)
        self.end_headers()

print("listening", flush=True)
HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

fn server_backend(home: &Home, id: &str, extra: &str) {
    let script = home.backends().join("server.py");
    std::fs::write(&script, SERVER).unwrap();
    home.backend(
        id,
        &format!("exec /usr/bin/python3 -I '{}' \"$@\"", script.display()),
        extra,
    );
}

/// The status code of a GET of `path` on `port`, with `auth` if given.
pub(super) fn get(port: u16, path: &str, auth: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n{auth}\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read(e.path())
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(|e| e.path().display().to_string())
        .collect()
}

const GIVEN: &str = r#"args: ["--port", "${port}"]
port: auto
token: true
ready: { tcp: auto }
health:
  http: "http://127.0.0.1:${port}/health"
  headers: { Authorization: "Bearer ${token}" }
  interval: 200ms
actions:
  - label: Open web UI
    open: "http://127.0.0.1:${port}/?token=${token}"
"#;

#[test]
fn port_and_token_reach_the_backend_the_health_check_and_the_action_never_a_log_or_argv() {
    let home = Home::new();
    server_backend(&home, "web", GIVEN);
    let (path, record) = crate::util::recording_opener(home.path());
    let _l = home.launch_with_cmd(&[], |c| {
        // As much of berth's own logging as there is.
        c.env("PATH", &path).env("RUST_LOG", "debug");
    });
    let out = home.run(&["start", "web"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let status = home.status_of("web");
    let port = status["port"].as_u64().unwrap() as u16;
    let token = status["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "{status}");
    assert_eq!(
        status["args"],
        serde_json::json!(["--port", port.to_string()])
    );
    // The check sends the token: the server answers 401 without it.
    assert!(
        wait_until(Duration::from_secs(10), || home.status_of("web")["healthy"]
            == true),
        "{}",
        home.status_of("web")
    );
    assert_eq!(get(port, "/api", None), 401);
    assert_eq!(get(port, "/api", Some("Bearer wrong")), 401);
    assert_eq!(get(port, "/api", Some(&format!("Bearer {token}"))), 200);
    // The action opens the URL with the token.
    let out = home.run(&["action", "web", "Open web UI"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let opened = crate::util::wait_file(&record, Duration::from_secs(10));
    assert_eq!(
        opened.trim(),
        format!("http://127.0.0.1:{port}/?token={token}")
    );
    // Never in argv (which `ps` shows to every user).
    let pid = status["pid"].as_u64().unwrap() as u32;
    for p in crate::util::group_pids(pid) {
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&token),
            "token in the argv of {p}"
        );
    }
    assert_eq!(home.run(&["stop", "web"]).code(), 0);
    // Never in a file berth wrote: its log, the backend's log, anything
    // else under its state and runtime folders, its stderr. The fake
    // opener's record is the test's own.
    let leaks: Vec<String> = files_containing(home.path(), &token)
        .into_iter()
        .filter(|f| !f.ends_with("opened.txt"))
        .collect();
    assert!(leaks.is_empty(), "the token is in {leaks:?}");
    assert!(home.path().join("state/berth/logs/web.log").exists());
}

#[test]
fn each_run_gets_a_fresh_token_and_a_restart_a_new_port_when_the_old_one_is_taken() {
    let home = Home::new();
    server_backend(
        &home,
        "web",
        "port: auto\ntoken: true\nready: { tcp: auto }\n",
    );
    let _l = home.launch();
    assert_eq!(home.run(&["start", "web"]).code(), 0);
    let first = home.status_of("web");
    let port = first["port"].as_u64().unwrap() as u16;
    assert_eq!(home.run(&["restart", "web"]).code(), 0);
    let second = home.status_of("web");
    // A free port is kept (a bookmarked URL still works); the token never.
    assert_eq!(second["port"], port, "{second}");
    assert_ne!(second["token"], first["token"]);
    assert_eq!(home.run(&["stop", "web"]).code(), 0);
    assert_eq!(home.status_of("web")["token"], serde_json::Value::Null);
    // Somebody else takes the port meanwhile: the next run gets another,
    // and is ready on it (`tcp: auto` follows).
    let _taken = TcpListener::bind(("127.0.0.1", port)).unwrap();
    assert_eq!(home.run(&["start", "web"]).code(), 0);
    let third = home.status_of("web");
    assert_eq!(third["state"], "running", "{third}");
    assert_ne!(third["port"], port, "{third}");
}

#[test]
fn without_port_auto_and_token_nothing_is_given_and_an_inherited_token_is_dropped() {
    let home = Home::new();
    home.backend(
        "plain",
        "echo \"token=${BERTH_TOKEN:-none}\"; exec sleep 600",
        "ready: { uptime: 0s }\n",
    );
    let _l = home.launch_with_cmd(&[], |c| {
        c.env("BERTH_TOKEN", "inherited-secret");
    });
    assert_eq!(home.run(&["start", "plain"]).code(), 0);
    let status = home.status_of("plain");
    assert_eq!(status["port"], serde_json::Value::Null);
    assert_eq!(status["token"], serde_json::Value::Null);
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(home.log("plain")).is_ok_and(|l| l.contains("token=none"))
    }));
}
