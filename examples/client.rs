//! Talking to a running launcher (`berth run`, or an app's embedded one
//! that serves its control socket) from Rust: what a Tauri app that runs
//! berth as a sidecar writes.
//!
//! Usage: `client (--app NAME | --socket PATH) [start ID | stop ID]`.
//! Prints the launcher's version (`berth 0.1.0, protocol 1`), one line per
//! manifest file (`ID STATE`), then starts or stops ID and prints
//! `ID: STATE`. Exit status as berth's: 1 when the launcher refuses (its
//! message on stderr), 2 for a usage error or no launcher running.

use std::process::ExitCode;

use berth::{AppName, Client, ClientError};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (client, verb) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("client: {e}");
            eprintln!("usage: client (--app NAME | --socket PATH) [start ID | stop ID]");
            return ExitCode::from(2);
        }
    };
    match run(&client, verb) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client: {e}");
            match e {
                ClientError::NoLauncher { .. } | ClientError::BadPath(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// What to do (`start` or `stop`) to which id.
type Asked<'a> = Option<(&'a str, &'a str)>;

/// The launcher named on the command line, and what to do to which id.
fn parse(args: &[String]) -> Result<(Client, Asked<'_>), String> {
    let client = match args {
        [flag, name, ..] if flag == "--app" => Client::for_app(&name.parse::<AppName>()?),
        [flag, path, ..] if flag == "--socket" => Client::at(path),
        _ => return Err("name the launcher with --app NAME or --socket PATH".to_owned()),
    };
    let verb = match &args[2..] {
        [] => None,
        [verb, id] if verb == "start" || verb == "stop" => Some((verb.as_str(), id.as_str())),
        other => return Err(format!("unexpected arguments {other:?}")),
    };
    Ok((client, verb))
}

fn run(client: &Client, verb: Asked<'_>) -> Result<(), ClientError> {
    let version = client.version()?;
    println!("berth {}, protocol {}", version.berth, version.protocol);
    for backend in client.status()? {
        let id = backend.id.as_deref().unwrap_or("-");
        println!("{id} {}", backend.state);
    }
    let Some((verb, id)) = verb else {
        return Ok(());
    };
    // Both wait for the outcome: running (start), or the group gone (stop).
    let answer = match verb {
        "start" => client.start(id, &[])?,
        _ => client.stop(id)?,
    };
    if let Some(note) = answer.note {
        eprintln!("client: {note}");
    }
    match answer.data {
        Some(status) => println!("{id}: {}", status.state),
        None => println!("{id}: done"),
    }
    Ok(())
}
