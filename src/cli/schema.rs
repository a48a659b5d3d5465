//! `berth schema [--protocol | --status]`: a JSON Schema generated from the
//! Rust types (the checked-in files under `schemas/` are this output;
//! `scripts/schemas.sh` writes them).

use std::process::ExitCode;

/// Which schema to print.
pub enum Which {
    /// `schemas/backend.schema.json`: a manifest file.
    Manifest,
    /// `schemas/protocol.schema.json`: the control socket's lines.
    Protocol,
    /// `schemas/status.schema.json`: `berth status --json`.
    Status,
}

pub fn run(which: Which) -> anyhow::Result<ExitCode> {
    let schema = match which {
        Which::Manifest => crate::manifest::raw::json_schema(),
        Which::Protocol => crate::control::schema::protocol(),
        Which::Status => crate::control::schema::status(),
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
