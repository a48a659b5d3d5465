//! Recorded replies of protocol 1 (`tests/fixtures/protocol/`, never edited)
//! stay valid against the checked-in schema: within a protocol version
//! fields and requests are only ever added.

use std::path::{Path, PathBuf};

use super::check;

fn recordings() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protocol");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lines"))
        .collect();
    files.sort();
    files
}

#[test]
fn recorded_replies_of_protocol_1_stay_valid() {
    let files = recordings();
    assert!(files.len() >= 15, "{files:?}");
    let mut replies = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy();
        // The request a reply answers: none yet for a line berth sends on
        // its own (the idle timeout's refusal).
        let mut request: &[u8] = b"";
        for line in text.lines() {
            if let Some(sent) = line.strip_prefix("> ") {
                request = sent.as_bytes();
            } else if let Some(received) = line.strip_prefix("< ") {
                // A reply, or an event of a `watch` or `logs` stream.
                let reply = std::panic::catch_unwind(|| check::stream(request, received))
                    .unwrap_or_else(|_| panic!("{name}: a recorded line is no longer valid"));
                // A request berth carried out is a valid request.
                if reply["ok"] == true {
                    check::request(std::str::from_utf8(request).unwrap());
                }
                replies += 1;
            } else {
                panic!("{name}: {line:?} is neither `> ` nor `< `");
            }
        }
    }
    assert!(replies >= 30, "{replies} replies");
}

// The recordings cover what DESIGN.md and docs/PROTOCOL.md promise an app.
#[test]
fn the_recordings_cover_every_request_and_the_status_states() {
    let all: String = recordings()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for cmd in [
        "status",
        "start",
        "stop",
        "restart",
        "send",
        "action",
        "start-all",
        "stop-all",
        "rescan",
        "version",
        "watch",
        "logs",
    ] {
        assert!(all.contains(&format!("> {{\"cmd\":\"{cmd}\"")), "{cmd}");
    }
    for state in [
        "running",
        "failed",
        "invalid",
        "superseded",
        "incompatible",
        "stopped",
    ] {
        assert!(all.contains(&format!("\"state\":\"{state}\"")), "{state}");
    }
    for shape in [
        "\"note\":",
        "\"ok\":false",
        "\"wait\":",
        "\"sent\":true",
        "{\"event\":\"status\"",
        "{\"event\":\"removed\"",
        "{\"event\":\"log\"",
        "\"stream\":\"stderr\"",
    ] {
        assert!(all.contains(shape), "{shape}");
    }
}
