//! `berth autostart enable [--backends DIR]... | disable | status`.

use std::process::ExitCode;

use super::AutostartAction;
use crate::autostart::{self, AutostartError};

pub fn run(action: AutostartAction, app: &crate::paths::AppName) -> anyhow::Result<ExitCode> {
    let file = crate::paths::autostart_file(app);
    match action {
        AutostartAction::Enable { backends } => match autostart::enable(app, &backends) {
            Ok(file) => println!("start at login: enabled ({})", file.display()),
            // A folder that does not exist is a usage error, as for `run`.
            Err(e @ AutostartError::NoSuchDir(_)) => return Err(super::Exit::usage(e.to_string())),
            Err(e) => return Err(e.into()),
        },
        AutostartAction::Disable => {
            if autostart::disable(app)? {
                println!("start at login: disabled (removed {})", file.display());
            } else {
                eprintln!("note: start at login was not enabled");
                println!("start at login: disabled");
            }
        }
        AutostartAction::Status => {
            if autostart::is_enabled(app) {
                println!("start at login: enabled ({})", file.display());
            } else if file.exists() {
                println!("start at login: disabled ({} turns it off)", file.display());
            } else {
                println!("start at login: disabled");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
