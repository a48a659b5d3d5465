//! `berth status --watch [--json]`: the launcher's event stream, printed as
//! it comes. First every backend (the table, or the status array as one
//! JSON line), then a table row (or the event's JSON line) per change.
//!
//! Exit codes: 2 when no launcher runs; 0 when the launcher ends the stream
//! (it quit: a note on stderr says so) or stdout is closed (`| head`); 1
//! when the launcher refuses or closes the watcher with an error line (it
//! fell behind by over 1 MiB).
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use super::client::{failed, table};
use crate::client::Client;
use crate::control::protocol::Event;
use crate::status::BackendStatus;

pub fn run(socket: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let watch = Client::at(socket).watch().map_err(failed)?;
    let mut shown = Shown {
        list: watch.backends().to_vec(),
        json,
    };
    let mut out = io::stdout().lock();
    if let Err(e) = shown.all(&mut out) {
        return closed_stdout(e);
    }
    for event in watch {
        let event = event.map_err(failed)?;
        let printed = if json {
            // The line as the launcher wrote it: the same type, serialized.
            out.write_all(event.to_line().as_bytes())
                .and_then(|()| out.flush())
        } else {
            shown.change(event, &mut out)
        };
        if let Err(e) = printed {
            return closed_stdout(e);
        }
    }
    eprintln!("berth: the launcher closed the stream (it quit)");
    Ok(ExitCode::SUCCESS)
}

/// `berth status --watch | head`: a normal end.
fn closed_stdout(e: io::Error) -> anyhow::Result<ExitCode> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return Ok(ExitCode::SUCCESS);
    }
    Err(e.into())
}

/// What the table shows, to keep a changed row's columns where the first
/// table put them.
struct Shown {
    list: Vec<BackendStatus>,
    json: bool,
}

impl Shown {
    fn all(&self, out: &mut impl Write) -> io::Result<()> {
        if self.json {
            let line = serde_json::to_string(&self.list).map_err(io::Error::other)?;
            writeln!(out, "{line}")?;
        } else {
            write!(out, "{}", table(&self.list))?;
        }
        out.flush()
    }

    /// One row: the changed file's line of the whole table (so it lines up
    /// with the rows above), or `<file> removed`.
    fn change(&mut self, event: Event, out: &mut impl Write) -> io::Result<()> {
        match event {
            Event::Status { backend } => {
                let at = match self.list.iter().position(|b| b.file == backend.file) {
                    Some(i) => {
                        self.list[i] = *backend;
                        i
                    }
                    None => {
                        self.list.push(*backend);
                        self.list.len() - 1
                    }
                };
                let text = table(&self.list);
                // Line 0 is the header.
                if let Some(row) = text.lines().nth(at + 1) {
                    writeln!(out, "{row}")?;
                }
            }
            Event::Removed { file } => {
                self.list.retain(|b| b.file != file);
                writeln!(out, "{file} removed")?;
            }
            Event::Log(_) => {}
        }
        out.flush()
    }
}
