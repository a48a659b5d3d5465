//! `berth schema`: the manifest's JSON Schema, generated from the Rust types
//! (the checked-in `schemas/backend.schema.json` is this output).

use std::process::ExitCode;

pub fn run() -> anyhow::Result<ExitCode> {
    let schema = crate::manifest::raw::json_schema();
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
