//! `berth send` and `berth action`: talking to a backend through the launcher.
//!
//! Exit codes as DESIGN.md says: 2 for an argument that is not JSON (or a bad
//! `--wait` / `--timeout`) and for no launcher; 1 when the launcher refuses
//! (not running, queue full, line too long, unknown id or label) or `--wait`
//! times out.

use std::path::Path;
use std::process::ExitCode;

use super::Exit;
use super::client::failed;
use crate::client::Client;
use crate::control::protocol::{Acted, Wait};

pub fn send(
    socket: &Path,
    id: &str,
    json: &str,
    wait: Option<&str>,
    timeout: &str,
) -> anyhow::Result<ExitCode> {
    crate::manifest::BackendId::new(id).map_err(Exit::usage)?;
    let line: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        let shown: String = json.chars().take(60).collect();
        let more = if shown.len() < json.len() { "..." } else { "" };
        Exit::usage(format!("{shown:?}{more} is not JSON: {e}"))
    })?;
    // Checked here too: a request carrying a line this long would be over
    // the control socket's own 64 KiB limit, and refused less clearly.
    let len = line.to_string().len();
    if len > crate::manifest::actions::MAX_SEND_LINE {
        let e = crate::status::ActionError::LineTooLong {
            id: id.to_owned(),
            len,
        };
        return Err(anyhow::anyhow!(e));
    }
    let wait = wait
        .map(|w| match w.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok(Wait {
                key: key.to_owned(),
                value: value.to_owned(),
            }),
            _ => Err(Exit::usage(format!(
                "invalid --wait {w:?}: expected KEY=VALUE, like id=7"
            ))),
        })
        .transpose()?;
    let timeout = crate::manifest::scalar::parse_duration(timeout)
        .map_err(|e| Exit::usage(format!("invalid --timeout: {e}")))?;
    let found = Client::at(socket)
        .send(id, &line, wait.as_ref(), timeout)
        .map_err(failed)?;
    if let Some(obj) = found {
        println!("{}", serde_json::Value::Object(obj));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn action(socket: &Path, id: &str, label: &str) -> anyhow::Result<ExitCode> {
    crate::manifest::BackendId::new(id).map_err(Exit::usage)?;
    // A restart action answers once the backend settles, like `berth restart`.
    let answer = Client::at(socket).action(id, label).map_err(failed)?;
    match answer.data {
        Acted::Opened { opened } => println!("{id}: opened {opened}"),
        Acted::Sent { .. } => println!("{id}: sent"),
        Acted::Restarted(Some(status)) => println!("{id}: {}", status.state),
        Acted::Restarted(None) => {}
    }
    Ok(ExitCode::SUCCESS)
}
