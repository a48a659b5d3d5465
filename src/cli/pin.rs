//! `berth pin ID`: write the current digest of ID's executable (and the tree
//! digest of its `files` folder) into its winning manifest.
//!
//! Only the bytes of the current platform's `sha256` value (and its
//! `files.sha256`) change: comments,
//! order, quoting and every other byte stay, and the new text is re-parsed to
//! prove it before it replaces the file by an atomic rename that keeps the
//! file's permissions. A file whose only fault is that digest (64 zeros
//! before the first build, a truncated paste) is accepted.
//!
//! The folders are the ones `berth run` reads, read by the launcher's own
//! [`FolderState`] (only the parse of each file is pin's own), so the file
//! pinned is the one that wins the id across folders.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use super::Exit;
use crate::folders::{Folders, Source};
use crate::manifest::Digest;
use crate::manifest::locate::{self, DigestSpan};
use crate::manifest::platform::Platform;
use crate::manifest::validate;
use crate::registry::{Catalog, FileRead, Standing};
use crate::trust::{Policy, Trust};
use crate::watch::{FolderState, Scope};

/// pin's read of one manifest: a digest that does not parse is accepted.
fn load_pinnable(path: &Path, resources: &crate::manifest::Places, _: &Trust) -> FileRead {
    let current = validate::read_bounded(path)
        .and_then(|bytes| locate::parse_pinnable(path, &bytes, resources, Platform::current()))
        .map(|p| Arc::new(p.backend));
    FileRead {
        file: path.to_path_buf(),
        current,
        untrusted: None,
        last_good: None,
        installed: false,
    }
}

pub fn run(id: &str, folders: &Folders, app: &crate::paths::AppName) -> anyhow::Result<ExitCode> {
    for duplicate in &folders.duplicates {
        eprintln!("berth: warning: {duplicate}");
    }
    let resources = crate::manifest::Places::new(crate::paths::resources_dir(), app.clone());
    let platform = Platform::current();
    let mut state = FolderState::new(folders.dirs.clone(), resources.clone())
        .with_loader(load_pinnable)
        // Judges the installed updates only: `load_pinnable` reads the
        // backends folders' files whatever their signatures.
        .with_trust(Arc::new(Trust::load(Policy::new(false, app))))
        .with_updates(Some(crate::paths::updates_dir(app)));
    state.reload(&Scope::Full { force: false });
    let problems: Vec<_> = state
        .problems()
        .into_iter()
        .filter(|p| folders.source != Source::Default || !p.is_absent())
        .collect();
    if folders.source.is_explicit() && problems.len() == folders.dirs.len() {
        let lines: Vec<String> = problems.iter().map(super::check::unread).collect();
        return Err(Exit::usage(lines.join("; ")));
    }
    for problem in &problems {
        eprintln!("berth: warning: {}", super::check::unread(problem));
    }
    let catalog = state.catalog();
    let Some((entry, backend)) = catalog.winners().find(|(_, b)| b.id.as_str() == id) else {
        bail!("{}", no_winner(id, &folders.dirs, catalog));
    };
    let shown = entry.file.clone();
    if backend.update.as_ref().is_some_and(|u| u.shipped.is_some()) {
        bail!(
            "{}: {id} {} in force is an installed update, verified by its signature: pin edits only manifests of the backends folders",
            shown.display(),
            backend.version
        );
    }
    let bytes = validate::read_bounded(&shown)?;
    let pinnable = locate::parse_pinnable(&shown, &bytes, &resources, platform)?;
    let Some(exe) = &backend.executable else {
        bail!(
            "{}: {id} has no executable entry for {}",
            shown.display(),
            platform.keys()[0]
        );
    };
    let Some((span, files_span)) = pinnable.span.map(|s| (s, pinnable.files_span)) else {
        bail!(
            "{}: cannot locate the sha256 of {}",
            shown.display(),
            exe.platform_key
        );
    };
    let Some(path) = exe.resolve() else {
        let tried: Vec<String> = exe
            .candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect();
        bail!(
            "{}: executable.{}.path: not found: tried {}",
            shown.display(),
            exe.platform_key,
            tried.join(", ")
        );
    };
    let digest = crate::integrity::hash_file(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut edits = vec![(span, digest)];
    let mut tree = None;
    if let Some(files) = &exe.files {
        let folder = crate::tree::folder(path, files);
        let found = crate::tree::digest(&folder).with_context(|| {
            format!("{}: executable.{}.files", shown.display(), exe.platform_key)
        })?;
        let Some(files_span) = files_span else {
            bail!(
                "{}: cannot locate executable.{}.files.sha256",
                shown.display(),
                exe.platform_key
            );
        };
        if found != files.sha256 {
            edits.push((files_span, found));
        }
        tree = Some((folder, found));
    }
    if exe.sha256 == digest {
        edits.remove(0);
    }
    if edits.is_empty() {
        println!("{}: {id} already pinned to {digest}", shown.display());
        return Ok(ExitCode::SUCCESS);
    }
    rewrite(&entry.file, &edits).with_context(|| format!("{}: cannot pin", shown.display()))?;
    println!(
        "{}: {id} {} pinned to {digest} ({})",
        shown.display(),
        exe.platform_key,
        path.display()
    );
    if let Some((folder, found)) = tree {
        println!(
            "{}: {id} {} files pinned to {found} ({})",
            shown.display(),
            exe.platform_key,
            crate::paths::shown(&folder)
        );
    }
    let signature = crate::trust::signature_path(&shown);
    if signature.exists() {
        eprintln!(
            "berth: note: {} no longer matches the manifest; sign it again (berth sign {} --key KEY)",
            signature.display(),
            shown.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Why `id` has no winning file, in one line.
fn no_winner(id: &str, dirs: &[PathBuf], catalog: &Catalog) -> String {
    let by_name = crate::human::one_folder(catalog.entries.iter().map(|e| e.file.as_path()));
    let reasons: Vec<String> = catalog
        .entries
        .iter()
        .filter(|e| e.id().is_some_and(|i| i.as_str() == id))
        .map(|e| {
            let name = crate::human::file_label(&e.file, by_name);
            match (&e.standing, &e.error) {
                (_, Some(err)) => format!("{name}: {err}"),
                (Standing::Incompatible { reason }, None) => {
                    format!("{name}: incompatible: {reason}")
                }
                (Standing::Superseded { .. }, None) => format!("{name}: superseded"),
                (Standing::Untrusted { reason }, None) => format!("{name}: untrusted: {reason}"),
                (Standing::Winner | Standing::Invalid, None) => format!("{name}: invalid"),
            }
        })
        .collect();
    if reasons.is_empty() {
        // The id may be in a file that does not parse: say so.
        let invalid: Vec<&str> = catalog
            .entries
            .iter()
            .filter(|e| e.backend.is_none())
            .filter_map(|e| e.error.as_deref())
            .collect();
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let mut msg = format!("unknown backend id `{id}` in {}", dirs.join(", "));
        if !invalid.is_empty() {
            msg.push_str(&format!("; invalid files: {}", invalid.join("; ")));
        }
        msg
    } else {
        format!("{id}: no usable manifest: {}", reasons.join("; "))
    }
}

/// Replaces the digests at the spans (later ones first, so earlier offsets
/// hold) and swaps the file in atomically.
fn rewrite(file: &Path, edits: &[(DigestSpan, Digest)]) -> anyhow::Result<()> {
    // Write beside the link's target, so a symlinked manifest stays a link.
    let target = fs::canonicalize(file)?;
    let bytes = validate::read_bounded(&target)?;
    let text = String::from_utf8(bytes)?;
    let mut sorted: Vec<&(DigestSpan, Digest)> = edits.iter().collect();
    sorted.sort_by_key(|(s, _)| std::cmp::Reverse(s.range.start));
    let mut new_text = text.clone();
    for (span, digest) in sorted {
        new_text = locate::with_digest(&new_text, span, &digest.to_string());
    }
    check_rewrite(&target, &text, &new_text, edits)?;

    let meta = fs::metadata(&target)?;
    let folder = target.parent().unwrap_or(Path::new("/"));
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let tmp = folder.join(format!(".{name}.berth-pin.{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        out.write_all(new_text.as_bytes())?;
        out.set_permissions(meta.permissions())?;
        out.sync_all()?;
        fs::rename(&tmp, &target)?;
        // Make the rename itself durable.
        fs::File::open(folder)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Proves the new text is valid, carries the new digests for the entry, and
/// differs from the old one in nothing else the manifest says.
fn check_rewrite(
    file: &Path,
    old: &str,
    new: &str,
    edits: &[(DigestSpan, Digest)],
) -> anyhow::Result<()> {
    let platform = Platform::current();
    let Some((first, _)) = edits.first() else {
        return Ok(());
    };
    let key = first.key.clone();
    let new_raw = validate::parse_raw(file, new.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let entry = new_raw.executable.0.get(&key);
    let digests = [
        entry.map(|e| e.sha256.0),
        entry.and_then(|e| e.files.as_ref()).map(|f| f.sha256.0),
    ];
    // Each new digest is where one of the two digests of the entry is.
    let pinned = edits.iter().all(|(_, d)| digests.contains(&Some(*d)));
    let fresh = locate::digest_span(new, platform).ok().flatten();
    let zeros = locate::with_digests(old, edits.iter().map(|(s, _)| Some(s)), &"0".repeat(64));
    let old_raw =
        validate::parse_raw(file, zeros.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let same_rest = locate::without_digest(old_raw, &key) == locate::without_digest(new_raw, &key);
    if !pinned || fresh.map(|s| s.key) != Some(key.clone()) || !same_rest {
        bail!("the rewritten text would not say what it should; file left unchanged");
    }
    Ok(())
}
