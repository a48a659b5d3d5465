//! `berth status / start / stop / restart`: clients of the control socket.
//!
//! Exit codes follow DESIGN.md: 0 ok (a no-op prints a note on stderr), 1 the
//! launcher refused or the backend did not reach the goal, 2 a malformed id or
//! no launcher running.
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::Exit;
use crate::client::{Client, ClientError};
use crate::human;
use crate::status::BackendStatus;
use crate::verb::Verb;

/// "No launcher" and a bad socket path are usage errors (exit 2); a
/// refusal and every other failure exit 1.
pub(super) fn failed(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::NoLauncher { .. } | ClientError::BadPath(_) => Exit::usage(e.to_string()),
        other => other.into(),
    }
}

pub fn status(socket: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let list = Client::at(socket).status().map_err(failed)?;
    let mut out = std::io::stdout().lock();
    if json {
        // The documented array, through a JSON value as before, so the
        // keys keep the order they always had.
        let data = serde_json::to_value(&list)?;
        writeln!(out, "{}", serde_json::to_string_pretty(&data)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    write!(out, "{}", table(&list))?;
    Ok(ExitCode::SUCCESS)
}

/// `berth start / stop / restart`: no ARGS means the manifest's args alone
/// (earlier ARGS are not kept).
pub fn command(socket: &Path, id: &str, verb: Verb) -> anyhow::Result<ExitCode> {
    crate::manifest::BackendId::new(id).map_err(Exit::usage)?;
    // The launcher answers once the backend settles, which can take as long
    // as its readiness or stop timeout: the client waits while it is alive.
    let answer = Client::at(socket).command(id, verb).map_err(failed)?;
    if let Some(note) = &answer.note {
        eprintln!("berth: {note}");
    }
    // `None`: the backend left the catalog meanwhile.
    match answer.data {
        Some(s) => match s.pid {
            Some(pid) => println!("{id}: {} (pid {pid})", s.state.as_str()),
            None => println!("{id}: {}", s.state.as_str()),
        },
        None => println!("{id}: done"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A `pm2 ls`-like table, one row per manifest file (named by its full path
/// when the files come from several backends folders).
pub fn table(list: &[BackendStatus]) -> String {
    let header = [
        "ID", "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "CPU", "MEMORY", "VERSION", "READY",
        "FILE", "ERROR",
    ];
    let by_name = crate::human::one_folder(list.iter().map(|b| Path::new(b.file.as_str())));
    let dash = || "-".to_owned();
    let rows = list.iter().map(|b| {
        let running = b.state.has_process();
        vec![
            b.id.clone().unwrap_or_else(dash),
            b.name.clone().unwrap_or_else(dash),
            state_text(b),
            b.pid.map_or_else(dash, |p| p.to_string()),
            b.uptime_s
                .map_or_else(dash, |s| human::elapsed(Duration::from_secs(s))),
            b.restarts.to_string(),
            b.cpu_percent.map_or_else(dash, |c| format!("{c:.1}%")),
            b.rss_bytes.map_or_else(dash, human::bytes),
            b.version.clone().unwrap_or_else(dash),
            if running {
                if b.ready { "yes" } else { "no" }.to_owned()
            } else {
                dash()
            },
            crate::human::file_label(Path::new(&b.file), by_name),
            b.error.clone().unwrap_or_default(),
        ]
    });
    human::table(&header, rows)
}

/// `exited (code 1)`, `exited (SIGKILL)`, `running*` (a restart pending).
fn state_text(b: &BackendStatus) -> String {
    let mut s = human::with_exit(b.state.as_str(), b.exit_code, b.signal.as_deref());
    if b.pending_restart {
        s.push('*');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::State;

    // The CLI printed "python: done" for a reply it could not read.
    #[test]
    fn an_unreadable_reply_is_an_error_quoting_it_not_done() {
        use std::io::{BufRead, BufReader};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let sent = r#"{"ok":true,"data":{"state":42}}"#;
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            (&stream).write_all(format!("{sent}\n").as_bytes()).unwrap();
            line
        });
        let err = command(&path, "python", Verb::Stop)
            .unwrap_err()
            .to_string();
        assert_eq!(
            server.join().unwrap(),
            "{\"cmd\":\"stop\",\"id\":\"python\"}\n"
        );
        assert!(err.contains("cannot read") && err.contains(sent), "{err}");
    }

    #[test]
    fn table_has_one_aligned_row_per_file() {
        let json = serde_json::json!([{
            "id": "python", "name": "Python Backend", "version": "1.0.0",
            "path": "/x/backend", "error": null, "status_line": "ready", "signal": null,
            "file": "/b/python.yaml", "state": "running", "pid": 4242, "uptime_s": 192,
            "rss_bytes": 42991616, "exit_code": null, "cpu_percent": 0.31,
            "ready": true, "pending_restart": false, "restarts": 0,
            "args": ["--port", "0"], "healthy": null, "last_stderr": null, "signed_by": null,
            "sandbox": null, "actions": [], "ready_json": {"status": "ready", "port": 5000}
        }, {
            "id": null, "name": null, "version": null, "path": null,
            "error": "broken.yaml: line 4: unknown field `argz`", "status_line": null,
            "signal": null, "file": "/b/broken.yaml", "state": "invalid", "pid": null,
            "uptime_s": null, "rss_bytes": null, "exit_code": null, "cpu_percent": null,
            "ready": false, "pending_restart": false, "restarts": 0,
            "args": null, "healthy": null, "last_stderr": null, "signed_by": null,
            "sandbox": null, "actions": [], "ready_json": null
        }]);
        let list: Vec<BackendStatus> = serde_json::from_value(json).unwrap();
        assert_eq!(list[1].state, State::Invalid);
        let text = table(&list);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("ID      NAME            STATE"),
            "{text}"
        );
        assert!(
            lines[1].contains("4242") && lines[1].contains("3m 12s"),
            "{text}"
        );
        assert!(
            lines[1].contains("41 MB") && lines[1].contains("0.3%"),
            "{text}"
        );
        assert!(lines[2].ends_with("unknown field `argz`"), "{text}");
        assert!(
            lines[1].ends_with(" python.yaml"),
            "one folder: names: {text}"
        );
        let mut two = list.clone();
        two[1].file = "/usr/lib/berth/backends/broken.yaml".into();
        let text = table(&two);
        assert!(
            text.lines().nth(1).unwrap().ends_with(" /b/python.yaml")
                && text.contains(" /usr/lib/berth/backends/broken.yaml "),
            "two folders: full paths: {text}"
        );
        let col = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[2][col..col + 7], "invalid");
    }
}
