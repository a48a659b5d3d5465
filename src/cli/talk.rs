//! `berth send` and `berth action`: talking to a backend through the launcher.
//!
//! Exit codes as DESIGN.md says: 2 for an argument that is not JSON (or a bad
//! `--wait` / `--timeout`) and for no launcher; 1 when the launcher refuses
//! (not running, queue full, line too long, unknown id or label) or `--wait`
//! times out.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::Exit;
use super::client::{connect, refused};
use crate::control::Request;
use crate::control::protocol::{Acted, ActionReply, SendReply, SendRequest, Wait};

/// Slack beyond `--timeout` before the client gives up on the launcher itself.
const CLIENT_SLACK: Duration = Duration::from_secs(10);

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
    let mut client = connect(socket)?;
    let request = Request::Send(SendRequest {
        id: id.to_owned(),
        line,
        wait: wait.clone(),
        timeout_ms: Some(timeout.as_millis().try_into().unwrap_or(u64::MAX)),
    });
    // The launcher answers at once, or with `--wait` within the timeout.
    let reply: SendReply = client.request(&request, timeout + CLIENT_SLACK)?;
    if !reply.ok {
        return Err(refused(&reply));
    }
    if wait.is_some()
        && let Some(obj) = reply.data.flatten()
    {
        println!("{}", serde_json::Value::Object(obj));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn action(socket: &Path, id: &str, label: &str) -> anyhow::Result<ExitCode> {
    crate::manifest::BackendId::new(id).map_err(Exit::usage)?;
    let mut client = connect(socket)?;
    // A restart action answers once the backend settles, like `berth restart`.
    let reply: ActionReply = client.request_while_alive(&Request::Action {
        id: id.to_owned(),
        label: label.to_owned(),
    })?;
    if !reply.ok {
        return Err(refused(&reply));
    }
    match reply.data {
        Some(Acted::Opened { opened }) => println!("{id}: opened {opened}"),
        Some(Acted::Sent { .. }) => println!("{id}: sent"),
        Some(Acted::Restarted(Some(status))) => println!("{id}: {}", status.state),
        Some(Acted::Restarted(None)) | None => {}
    }
    Ok(ExitCode::SUCCESS)
}
