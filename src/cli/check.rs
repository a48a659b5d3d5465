//! `berth check [DIR]...`: validate every manifest of the backends folders
//! and verify the winning backends' checksums (executable and `files` tree)
//! and every signature, as the launcher would, without running anything:
//! the folders are read by the launcher's own [`FolderState`], so an id
//! competes across folders exactly as it does in `berth run`.
//!
//! The table goes to stdout; every problem is also printed to stderr, one line
//! each, naming the file. Exit 1 only for what would stop a backend from
//! running: invalid or duplicated files (a dependency cycle makes each file
//! in it invalid), winners not found, mismatched or untrusted (an untrusted
//! file beside a trusted winner is listed, exit 0), winners that depend on
//! an id no manifest defines or on `healthy` without `health`, and folders
//! that cannot be read (one line each; the others are checked).
//! Unusable trusted keys or key folders are one stderr line each.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::Exit;
use crate::folders::{Folders, Source};
use crate::manifest::{Backend, Executable};
use crate::registry::{Catalog, Entry, Standing};
use crate::trust::{Policy, Trust};
use crate::watch::{FolderProblem, FolderState, Scope};

/// One row of the table.
struct Row {
    file: String,
    id: String,
    version: String,
    state: &'static str,
    path: String,
    checksum: &'static str,
    signature: String,
    note: String,
    /// The one-line problem to print on stderr, if any.
    problem: Option<String>,
}

pub fn run(
    folders: &Folders,
    require_signatures: bool,
    app: &crate::paths::AppName,
) -> anyhow::Result<ExitCode> {
    let resources = crate::manifest::Places::new(crate::paths::resources_dir(), app.clone());
    let trust = Trust::load(Policy::new(require_signatures, app));
    for problem in trust.problems() {
        eprintln!("berth: warning: {problem}");
    }
    for duplicate in &folders.duplicates {
        eprintln!("berth: warning: {duplicate}");
    }
    let mut state = FolderState::new(folders.dirs.clone(), resources)
        .with_trust(Arc::new(trust))
        .with_updates(Some(crate::paths::updates_dir(app)));
    state.reload(&Scope::Full { force: false });
    // The user folder is made by the first `berth run`: not there yet is
    // not a problem of the default list.
    let problems: Vec<FolderProblem> = state
        .problems()
        .into_iter()
        .filter(|p| folders.source != Source::Default || !p.is_absent())
        .collect();
    if folders.source.is_explicit() && problems.len() == folders.dirs.len() {
        let lines: Vec<String> = problems.iter().map(unread).collect();
        return Err(Exit::usage(lines.join("; ")));
    }
    let catalog = state.catalog();
    let failed_folders = !problems.is_empty();
    for problem in &problems {
        eprintln!("berth: {}", unread(problem));
    }
    if catalog.entries.is_empty() {
        let dirs: Vec<String> = folders
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        println!("no manifests in {}", dirs.join(", "));
        return Ok(exit(failed_folders));
    }
    let by_name = crate::human::one_folder(catalog.entries.iter().map(|e| e.file.as_path()));
    let rows: Vec<Row> = catalog
        .entries
        .iter()
        .map(|e| row(e, catalog, by_name))
        .collect();
    print_table(&rows);
    let mut failed = failed_folders;
    for problem in rows.iter().filter_map(|r| r.problem.as_ref()) {
        eprintln!("{problem}");
        failed = true;
    }
    Ok(exit(failed))
}

/// A folder that cannot be read, in one line (as `check` and `pin` say it).
pub(super) fn unread(problem: &FolderProblem) -> String {
    match problem {
        FolderProblem::Missing { dir } => format!("{}: no such folder", dir.display()),
        FolderProblem::NotAFolder { dir } => format!("{}: not a folder", dir.display()),
        other => other.to_string(),
    }
}

fn exit(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn row(entry: &Entry, catalog: &Catalog, by_name: bool) -> Row {
    let shown = &entry.file;
    let file_name = |f: &Path| crate::human::file_label(f, by_name);
    let backend = entry.backend.as_deref();
    let mut row = Row {
        file: file_name(&entry.file),
        id: backend.map_or("-".into(), |b| b.id.to_string()),
        version: backend.map_or("-".into(), |b| b.version.to_string()),
        state: "invalid",
        path: "-".into(),
        checksum: "-",
        signature: match backend.and_then(|b| b.signed_by.as_deref()) {
            Some(name) => format!("signed by {name}"),
            None if backend.is_some() => "unsigned".into(),
            None => "-".into(),
        },
        note: String::new(),
        // A file's own errors already name it; a duplicate error is about
        // the pair, so it is prefixed here.
        problem: match (&entry.error, backend) {
            (Some(e), Some(_)) => Some(format!("{}: {e}", shown.display())),
            (e, _) => e.clone(),
        },
    };
    match (&entry.standing, backend) {
        (Standing::Winner, Some(b)) => verify(&mut row, shown, b),
        (Standing::Superseded { by }, _) => {
            row.state = "superseded";
            row.note = format!("by {}", file_name(by));
        }
        (Standing::Incompatible { reason }, _) => {
            row.state = "incompatible";
            row.note.clone_from(reason);
        }
        (Standing::Untrusted { .. }, _) => {
            row.state = "untrusted";
            row.signature = "untrusted".into();
            let id = backend.map(|b| &b.id);
            if let Some((winner, _)) = catalog.winners().find(|(_, b)| Some(&b.id) == id) {
                // Another file runs this id: listed, but nothing is stopped by it.
                row.note = format!("{} wins", file_name(&winner.file));
                row.problem = None;
            }
        }
        (Standing::Invalid, Some(_)) => row.state = "duplicate",
        (Standing::Invalid, None) | (Standing::Winner, None) => row.state = "invalid",
    }
    if entry.error.is_some() && !matches!(row.state, "invalid" | "duplicate" | "untrusted") {
        row.note = "duplicate".into();
    }
    // An id no manifest defines, or `healthy` on one without `health`: the
    // file is valid, but the backend could not start.
    if let Some(deps) = &entry.dependency_error {
        let line = format!("{}: {deps}", shown.display());
        row.problem = Some(match row.problem.take() {
            Some(other) => format!("{other}; {deps}"),
            None => line,
        });
        row.note = if row.note.is_empty() {
            deps.clone()
        } else {
            format!("{}; {deps}", row.note)
        };
    }
    row
}

/// Resolves the winner's path and hashes it now.
fn verify(row: &mut Row, shown: &Path, backend: &Backend) {
    let Some(exe) = &backend.executable else {
        let platform = crate::manifest::platform::Platform::current();
        row.state = "unsupported";
        row.note = format!("no entry for {}", platform.keys()[0]);
        return;
    };
    let field = format!("executable.{}", exe.platform_key);
    let Some(path) = exe.resolve() else {
        row.state = "not-found";
        row.checksum = "not found";
        let folder = exe.candidates.iter().find(|p| p.is_dir());
        row.problem = Some(match folder {
            Some(dir) => format!(
                "{}: {field}.path: {} is a folder, not a file",
                shown.display(),
                dir.display()
            ),
            None => format!(
                "{}: {field}.path: not found: tried {}",
                shown.display(),
                tried(exe)
            ),
        });
        return;
    };
    // Not a failure of the file (the folder may be created later), but the
    // launch would fail: say so beside the row.
    if let Some(problem) = backend.workdir_problem() {
        row.note = problem;
    }
    // Likewise a script that cannot start as it is (issue #23, point 12).
    if let Some(problem) = crate::integrity::launch_problem(path) {
        row.note = if row.note.is_empty() {
            problem
        } else {
            format!("{}; {problem}", row.note)
        };
    }
    row.path = crate::paths::shown(path);
    match crate::integrity::hash_file(path) {
        Ok(actual) if actual == exe.sha256 && !actual.is_zero() => {
            row.state = "ok";
            row.checksum = "ok";
            if let Some(files) = &exe.files
                && let Err(e) = crate::tree::check(path, files)
            {
                row.state = "integrity-failed";
                row.checksum = "files mismatch";
                row.problem = Some(format!(
                    "{}: {field}.files: {e}; run `berth pin {}` if this build is trusted",
                    shown.display(),
                    backend.id
                ));
            }
        }
        Ok(actual) => {
            row.state = "integrity-failed";
            row.checksum = "mismatch";
            let said = if exe.sha256.is_zero() {
                "the placeholder digest (64 zeros)".to_owned()
            } else {
                exe.sha256.to_string()
            };
            row.problem = Some(format!(
                "{}: {field}.sha256: mismatch: {} has {actual}, the manifest says {said}; run `berth pin {}` if this file is trusted",
                shown.display(),
                path.display(),
                backend.id
            ));
        }
        Err(e) => {
            row.state = "not-found";
            row.checksum = "not found";
            row.problem = Some(format!(
                "{}: {field}.path: cannot read {}: {e}",
                shown.display(),
                path.display()
            ));
        }
    }
}

fn tried(exe: &Executable) -> String {
    exe.candidates
        .iter()
        .map(|c| c.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_table(rows: &[Row]) {
    let header = [
        "FILE",
        "ID",
        "VERSION",
        "STATE",
        "PATH",
        "CHECKSUM",
        "SIGNATURE",
        "NOTE",
    ];
    let cells = rows.iter().map(|r| {
        vec![
            r.file.as_str(),
            r.id.as_str(),
            r.version.as_str(),
            r.state,
            r.path.as_str(),
            r.checksum,
            r.signature.as_str(),
            r.note.as_str(),
        ]
    });
    print!("{}", crate::human::table(&header, cells));
}
