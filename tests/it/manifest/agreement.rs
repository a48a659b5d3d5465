//! `berth check` and the shipped JSON Schema agree (issue #12): a
//! third-party validator (the jsonschema crate) and the real binary judge
//! every fixture, and their verdicts must match.
//!
//! A file that is not one YAML document of plain data (broken YAML, binary,
//! an alias bomb, two documents) never reaches a schema validator: editors
//! report those themselves. Only [`EXCEPTIONS`] may differ, each for a rule
//! JSON Schema cannot express.

use std::fs;
use std::path::{Path, PathBuf};

use super::{berth, fixtures, run};

/// Files the schema accepts and berth rejects, and why the schema cannot.
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "action-duplicate-label.yaml",
        "uniqueItems compares whole actions, not their labels",
    ),
    ("bad-requires.yaml", "semver requirement grammar"),
    (
        "duplicate-env.yaml",
        "a duplicated key is lost when YAML becomes JSON",
    ),
    (
        "duplicate-field.yaml",
        "a duplicated key is lost when YAML becomes JSON",
    ),
    (
        "unknown-variable.yaml",
        "${...} variables are expanded by berth",
    ),
    (
        "port-variable-without-auto.yaml",
        "a rule between two fields: ${port} needs port: auto",
    ),
    (
        "tcp-auto-without-port.yaml",
        "a rule between two fields: tcp: auto needs port: auto",
    ),
    (
        "token-without-true.yaml",
        "a rule between two fields: ${token} needs token: true",
    ),
];

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// berth's verdict: does `check` list the file as invalid?
fn berth_rejects(file: &Path) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let name = file.file_name().unwrap();
    fs::copy(file, dir.path().join(name)).unwrap();
    fs::create_dir(dir.path().join("bin")).unwrap();
    fs::copy(
        fixtures().join("valid/bin/tool"),
        dir.path().join("bin/tool"),
    )
    .unwrap();
    let out = run(berth()
        .arg("check")
        .arg(dir.path())
        .env("BERTH_RESOURCES", dir.path().join("bin")));
    let row = out.stdout.lines().nth(1).unwrap_or_default().to_owned();
    assert!(
        row.starts_with(&*name.to_string_lossy()),
        "{}: {}",
        file.display(),
        out.stdout
    );
    row.contains(" invalid ")
        || row.ends_with(" invalid")
        || row.split_whitespace().nth(3) == Some("invalid")
}

#[test]
fn the_schema_and_berth_check_agree_on_every_fixture() {
    let schema: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/backend.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut files = yaml_files(&fixtures().join("valid"));
    files.extend(yaml_files(&fixtures().join("invalid")));
    let mut disagree = Vec::new();
    let mut compared = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let rejects = berth_rejects(file);
        let Ok(text) = fs::read_to_string(file) else {
            assert!(rejects, "{name}: not text, yet accepted");
            continue;
        };
        let Ok(value) = serde_yaml::from_str::<serde_json::Value>(&text) else {
            assert!(rejects, "{name}: not one YAML document, yet accepted");
            continue;
        };
        compared += 1;
        let schema_rejects = !validator.is_valid(&value);
        let excepted = EXCEPTIONS.iter().any(|(n, _)| *n == name);
        if excepted {
            if !rejects || schema_rejects {
                disagree.push(format!("{name}: an exception, yet the verdicts agree"));
            }
        } else if rejects != schema_rejects {
            disagree.push(format!(
                "{name}: berth {}, schema {}",
                if rejects { "rejects" } else { "accepts" },
                if schema_rejects { "rejects" } else { "accepts" }
            ));
        }
    }
    assert!(compared >= 40, "only {compared} fixtures compared");
    assert!(disagree.is_empty(), "{disagree:#?}");
}
