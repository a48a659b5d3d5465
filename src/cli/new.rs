//! `berth new ID --exe PATH [--dir DIR]`: registers a backend in one command
//! by writing a minimal, valid manifest (its digest pinned) into the user's
//! backends folder. Dropping a manifest is the main way to add a backend;
//! this writes the first one without a round trip through `hash` and an
//! editor.
//!
//! The file is never overwritten, never half-written where the watcher looks
//! (it is written under a hidden name and linked into place, which fails if
//! the name exists), and its `yaml-language-server` modeline points at a
//! schema file that exists: the installed one, else a copy berth writes into
//! its config folder.

use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use super::Exit;
use crate::manifest::BackendId;
use crate::manifest::platform::Platform;
use crate::paths;

pub struct NewArgs {
    pub id: String,
    pub exe: PathBuf,
    pub dir: Option<PathBuf>,
    pub name: Option<String>,
}

pub fn run(args: NewArgs, app: &paths::AppName) -> anyhow::Result<ExitCode> {
    let places = crate::manifest::Places::new(paths::resources_dir(), app.clone());
    let id = BackendId::new(&args.id).map_err(|e| Exit::usage(format!("ID: {e}")))?;
    let exe = paths::absolute(&args.exe);
    match fs::metadata(&exe) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Exit::usage(format!(
                "{}: no such file (--exe)",
                exe.display()
            )));
        }
        Err(e) => bail!("{}: cannot read (--exe): {e}", exe.display()),
        Ok(m) if m.is_dir() => bail!("{}: is a folder, not a file (--exe)", exe.display()),
        Ok(_) => {}
    }
    let name = args.name.unwrap_or_else(|| args.id.clone());
    if name.trim().is_empty() || name.contains('\n') {
        return Err(Exit::usage("--name: must be one non-empty line"));
    }
    let dir = match args.dir {
        Some(dir) => paths::absolute(&dir),
        None => paths::absolute(&paths::config_backends_dir(app)),
    };
    fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create folder", dir.display()))?;
    if let Some(other) = defined_in(&dir, &id, &places) {
        bail!("{id} is already defined in {}", other.display());
    }
    let digest = crate::integrity::hash_file(&exe)
        .with_context(|| format!("{}: cannot read (--exe)", exe.display()))?;
    let schema = schema_file(app)?;
    let file = dir.join(format!("{id}.yaml"));
    let text = manifest_text(
        &id,
        &name,
        &exe,
        &digest.to_string(),
        &relative(&dir, &schema),
    );
    // Prove the text before it lands: an odd path or name must not produce a
    // file that berth then rejects.
    crate::manifest::validate::parse(&file, text.as_bytes(), &places)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    write_new(&file, &text)?;
    // Written all the same (the file may be fixed later), but said now
    // rather than at the first start.
    if let Some(problem) = crate::integrity::launch_problem(&exe) {
        eprintln!("berth: warning: {id} cannot start as it is: {problem}");
    }
    println!("{}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// A manifest file in `dir` that already declares `id`, if any.
fn defined_in(dir: &Path, id: &BackendId, places: &crate::manifest::Places) -> Option<PathBuf> {
    crate::registry::list(dir)
        .ok()?
        .into_iter()
        .find(|file| crate::manifest::validate::load(file, places).is_ok_and(|b| b.id == *id))
}

fn manifest_text(id: &BackendId, name: &str, exe: &Path, digest: &str, schema: &str) -> String {
    let key = Platform::current().keys()[0].clone();
    format!(
        "# yaml-language-server: $schema={schema}\n\
         # Written by `berth new`. After rebuilding the executable, run `berth pin {id}`.\n\
         id: {id}\n\
         name: {name}\n\
         version: 0.1.0\n\
         executable:\n  \
           {key}:\n    \
             path: {path}\n    \
             sha256: \"{digest}\"\n",
        name = yaml_string(name),
        path = yaml_string(&exe.display().to_string()),
    )
}

/// A double-quoted YAML scalar: JSON's escaping is valid YAML.
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The schema the modeline names: the installed one when berth is
/// installed, else a copy in berth's config folder, (re)written from this
/// binary so it matches the berth that will read the manifest.
fn schema_file(app: &paths::AppName) -> anyhow::Result<PathBuf> {
    if let Some(installed) = paths::installed_schema() {
        return Ok(installed);
    }
    let path = paths::config_dir(app).join("backend.schema.json");
    let text = serde_json::to_string_pretty(&crate::manifest::raw::json_schema())? + "\n";
    if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        write_atomic(&path, text.as_bytes())
            .with_context(|| format!("{}: cannot write the schema", path.display()))?;
    }
    Ok(path)
}

/// Replaces `path` by rename, so an editor never reads half a schema.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Writes `file` whole or not at all, refusing an existing name: the bytes
/// go to a hidden sibling (ignored by the watcher), then a hard link makes
/// them appear at once, and fails with EEXIST instead of replacing.
fn write_new(file: &Path, text: &str) -> anyhow::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create_new(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::hard_link(&tmp, file)
    })();
    let _ = fs::remove_file(&tmp);
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{}: already exists (not overwritten)", file.display())
        }
        Err(e) => bail!("{}: cannot write: {e}", file.display()),
    }
}

/// `to` relative to the folder `from` (both absolute), as the modeline
/// resolves it against the manifest's folder.
fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<Component> = from.components().collect();
    let to_parts: Vec<Component> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common <= 1 {
        return to.display().to_string();
    }
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part);
    }
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        assert_eq!(
            relative(
                Path::new("/home/u/.config/berth/backends"),
                Path::new("/home/u/.config/berth/backend.schema.json")
            ),
            "../backend.schema.json"
        );
        assert_eq!(
            relative(
                Path::new("/usr/lib/berth/backends"),
                Path::new("/usr/share/berth/backend.schema.json")
            ),
            "../../../share/berth/backend.schema.json"
        );
        assert_eq!(relative(Path::new("/a"), Path::new("/b/c")), "/b/c");
    }

    #[test]
    fn names_and_paths_are_quoted() {
        assert_eq!(yaml_string("a: b # c"), "\"a: b # c\"");
        assert_eq!(yaml_string("/x/\"y\""), "\"/x/\\\"y\\\"\"");
    }
}
