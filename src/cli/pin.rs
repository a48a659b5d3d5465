//! `berth pin ID`: write the current digest of ID's executable (and the tree
//! digest of its `files` folder) into its winning manifest.
//!
//! Only the bytes of the current platform's `sha256` value (and its
//! `files.sha256`) change: comments,
//! order, quoting and every other byte stay, and the new text is re-parsed to
//! prove it before it replaces the file by an atomic rename that keeps the
//! file's permissions. A file whose only fault is that digest (64 zeros
//! before the first build, a truncated paste) is accepted.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use super::Exit;
use crate::manifest::Digest;
use crate::manifest::locate::{self, DigestSpan};
use crate::manifest::platform::Platform;
use crate::manifest::validate;
use crate::registry::{self, Catalog, FileRead, Standing};

pub fn run(id: &str, dir: &Path) -> anyhow::Result<ExitCode> {
    if !dir.is_dir() {
        return Err(Exit::usage(format!(
            "{}: no such folder (backends folder)",
            dir.display()
        )));
    }
    let resources = crate::paths::resources_dir();
    let platform = Platform::current();
    let mut spans = Vec::new();
    let reads: Vec<FileRead> = registry::list(dir)?
        .into_iter()
        .map(|file| {
            let shown = file
                .file_name()
                .map_or_else(|| file.clone(), |n| dir.join(n));
            let current = validate::read_bounded(&shown)
                .and_then(|bytes| locate::parse_pinnable(&shown, &bytes, &resources, platform));
            let current = current.map(|p| {
                spans.push((file.clone(), p.span, p.files_span));
                Arc::new(p.backend)
            });
            FileRead {
                file,
                current,
                untrusted: None,
                last_good: None,
            }
        })
        .collect();
    let catalog = registry::resolve(&reads, &Catalog::default(), &crate::berth_version());
    let Some((entry, backend)) = catalog.winners().find(|(_, b)| b.id.as_str() == id) else {
        bail!("{}", no_winner(id, dir, &catalog));
    };
    let shown = dir.join(entry.file.file_name().unwrap_or_default());
    let Some(exe) = &backend.executable else {
        bail!(
            "{}: {id} has no executable entry for {}",
            shown.display(),
            platform.keys()[0]
        );
    };
    let Some((span, files_span)) = spans
        .into_iter()
        .find(|(f, _, _)| *f == entry.file)
        .and_then(|(_, s, fs)| s.map(|s| (s, fs)))
    else {
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
fn no_winner(id: &str, dir: &Path, catalog: &Catalog) -> String {
    let reasons: Vec<String> = catalog
        .entries
        .iter()
        .filter(|e| e.id().is_some_and(|i| i.as_str() == id))
        .map(|e| {
            let name = e.file.file_name().unwrap_or_default().to_string_lossy();
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
        let mut msg = format!("unknown backend id `{id}` in {}", dir.display());
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
