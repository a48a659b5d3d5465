//! `berth release MANIFEST --key KEY --out DIR`: the publisher's side of
//! updates (DESIGN.md "Updates"; the folder's format is [`crate::update::feed`]).
//!
//! The release is built from what the manifest pins, never from what happens
//! to be on disk: the executable (and its `files` folder) must match the
//! manifest's digests, so a stale pin is an error, not a silently different
//! release. The release's own manifest is the publisher's with its
//! `executable` reduced to this platform's entry, its path the executable's
//! name beside it (the publisher's development paths and `${resources}`
//! never ship), and `workdir` dropped (a release runs in its own folder).
//! YAML comments are not kept: the file is generated.
//!
//! The release's folder is built in a hidden temporary folder of DIR and
//! renamed into place; the index and its signature are each replaced by a
//! rename. Between those two renames a client can see a new index with the
//! old signature and refuse it; the next check reads both.

use std::fs;
use std::io;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};

use super::Exit;
use super::sign::{read_secret_key, signature, write_replacing};
use crate::manifest::platform::Platform;
use crate::manifest::{Backend, Digest};
use crate::update::feed::{Artifact, FILES_TAR, INDEX, Index, Release};

pub fn run(manifest: &Path, key: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    for (what, file) in [("manifest", manifest), ("key", key)] {
        if !file.is_file() {
            return Err(Exit::usage(format!(
                "{}: no such {what} file",
                file.display()
            )));
        }
    }
    if out.exists() && !out.is_dir() {
        return Err(Exit::usage(format!("{}: not a folder", out.display())));
    }
    let bytes = crate::manifest::validate::read_bounded(manifest)?;
    let backend = crate::manifest::parse(manifest, &bytes, &crate::paths::resources_dir().into())
        .map_err(|e| anyhow!("{e}; not released"))?;
    let platform = Platform::current().keys()[0].clone();
    let pinned = Pinned::check(&backend, &platform)?;
    let secret = read_secret_key(key)?;
    fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let index_path = out.join(INDEX);
    let mut index = read_index(&index_path)?;

    let id = backend.id.as_str();
    let rel = format!("{id}/{}/{platform}", backend.version);
    let stage = out.join(format!(".berth-release.{}", std::process::id()));
    let _ = fs::remove_dir_all(&stage);
    let built = build(&backend, &bytes, &pinned, &platform, &stage, |b, name| {
        signature(b, name, &secret, key)
    });
    let dest = out.join(&rel);
    let placed = built.and_then(|()| {
        if dest.exists() {
            fs::remove_dir_all(&dest)
                .with_context(|| format!("{}: cannot replace", dest.display()))?;
        }
        fs::create_dir_all(dest.parent().unwrap_or(out))?;
        fs::rename(&stage, &dest).with_context(|| format!("{}: cannot write", dest.display()))
    });
    if let Err(e) = placed {
        let _ = fs::remove_dir_all(&stage);
        return Err(e);
    }

    let artifact = |name: &str| -> anyhow::Result<Artifact> {
        let file = dest.join(name);
        let size = fs::metadata(&file)
            .with_context(|| format!("{}: cannot read", file.display()))?
            .len();
        let digest = crate::integrity::hash_file(&file)
            .with_context(|| format!("{}: cannot read", file.display()))?;
        Ok(Artifact {
            path: format!("{rel}/{name}"),
            size,
            sha256: digest.to_string(),
        })
    };
    index.add(Release {
        id: id.to_owned(),
        version: backend.version.clone(),
        platform: platform.clone(),
        manifest: artifact(&format!("{id}.yaml"))?,
        executable: artifact(&pinned.exe_name)?,
        files: pinned
            .files
            .is_some()
            .then(|| artifact(FILES_TAR))
            .transpose()?,
    });
    let index_bytes = index.to_bytes();
    let index_sig = signature(&index_bytes, INDEX, &secret, key)?;
    write_replacing(&index_path, &index_bytes)?;
    write_replacing(
        &crate::trust::signature_path(&index_path),
        index_sig.as_bytes(),
    )?;
    println!(
        "{}: {id} {} for {platform}; {}: {} release(s), signed ({})",
        dest.display(),
        backend.version,
        index_path.display(),
        index.releases.len(),
        key.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What this platform's entry pins, checked against the files.
struct Pinned {
    exe: std::path::PathBuf,
    exe_name: String,
    sha256: Digest,
    /// The `files` folder, its `dir` as written and its tree digest.
    files: Option<(std::path::PathBuf, String, Digest)>,
}

impl Pinned {
    fn check(backend: &Backend, platform: &str) -> anyhow::Result<Self> {
        let file = backend.file.display();
        let id = &backend.id;
        let exe = backend.executable.as_ref().ok_or_else(|| {
            anyhow!(
                "{file}: no executable entry for this platform ({platform}): nothing to release"
            )
        })?;
        let path = exe.resolve().ok_or_else(|| {
            let tried: Vec<String> = exe
                .candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            anyhow!(
                "{file}: executable not found: tried {}; not released",
                tried.join(", ")
            )
        })?;
        let found = crate::integrity::hash_file(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if found != exe.sha256 {
            bail!(
                "{file}: {} has SHA-256 {found}, the manifest pins {}: run `berth pin {id}` first; not released",
                path.display(),
                exe.sha256
            );
        }
        let exe_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let reserved = [format!("{id}.yaml"), FILES_TAR.to_owned()];
        if reserved.contains(&exe_name) || exe_name.ends_with(crate::trust::SIGNATURE_SUFFIX) {
            bail!(
                "{file}: the executable's name {exe_name:?} is one a release uses for its own files; rename it"
            );
        }
        let files = match &exe.files {
            None => None,
            Some(files) => {
                crate::tree::check(path, files).map_err(|e| {
                    anyhow!("{file}: {e}; run `berth pin {id}` first; not released")
                })?;
                let dir = files.dir.to_string_lossy().into_owned();
                Some((crate::tree::folder(path, files), dir, files.sha256))
            }
        };
        Ok(Self {
            exe: path.to_path_buf(),
            exe_name,
            sha256: exe.sha256,
            files,
        })
    }
}

/// Reads DIR's index, or starts one.
fn read_index(path: &Path) -> anyhow::Result<Index> {
    match fs::read(path) {
        Ok(bytes) => Index::parse(&bytes).map_err(|e| {
            anyhow!(
                "{}: {e}; not released (move it away to start a new index)",
                path.display()
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::new()),
        Err(e) => Err(anyhow!("{}: cannot read: {e}", path.display())),
    }
}

/// Writes the release's files into `stage`: the executable, the packed
/// `files` folder, the manifest and its signature (made by `sign`).
fn build(
    backend: &Backend,
    bytes: &[u8],
    pinned: &Pinned,
    platform: &str,
    stage: &Path,
    sign: impl Fn(&[u8], &str) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    fs::create_dir_all(stage).with_context(|| format!("{}: cannot create", stage.display()))?;
    let exe_out = stage.join(&pinned.exe_name);
    fs::copy(&pinned.exe, &exe_out)
        .with_context(|| format!("{}: cannot copy", pinned.exe.display()))?;
    if let Some((dir, _, _)) = &pinned.files {
        pack(dir, &stage.join(FILES_TAR))
            .with_context(|| format!("{}: cannot pack", dir.display()))?;
    }
    let name = format!("{}.yaml", backend.id);
    let text = release_manifest(backend, bytes, pinned, platform)?;
    let file = stage.join(&name);
    // The release's manifest must be one berth reads as the same backend.
    let again = crate::manifest::parse(&file, &text, &crate::paths::resources_dir().into())
        .map_err(|e| anyhow!("the release's manifest does not validate: {e}"))?;
    debug_assert_eq!((&again.id, &again.version), (&backend.id, &backend.version));
    fs::write(&file, &text).with_context(|| format!("{}: cannot write", file.display()))?;
    let sig = sign(&text, &name)?;
    let sig_file = crate::trust::signature_path(&file);
    fs::write(&sig_file, sig).with_context(|| format!("{}: cannot write", sig_file.display()))
}

/// The publisher's manifest with `executable` reduced to this platform's
/// entry beside it, and no `workdir`.
fn release_manifest(
    backend: &Backend,
    bytes: &[u8],
    pinned: &Pinned,
    platform: &str,
) -> anyhow::Result<Vec<u8>> {
    use serde_yaml::{Mapping, Value};
    let file = backend.file.display();
    let mut doc: Mapping =
        serde_yaml::from_slice(bytes).map_err(|e| anyhow!("{file}: cannot rewrite: {e}"))?;
    let mut entry = Mapping::new();
    entry.insert("path".into(), pinned.exe_name.clone().into());
    entry.insert("sha256".into(), pinned.sha256.to_string().into());
    if let Some((_, dir, digest)) = &pinned.files {
        let mut files = Mapping::new();
        files.insert("dir".into(), dir.clone().into());
        files.insert("sha256".into(), digest.to_string().into());
        entry.insert("files".into(), Value::Mapping(files));
    }
    let mut table = Mapping::new();
    table.insert(platform.into(), Value::Mapping(entry));
    doc.insert("executable".into(), Value::Mapping(table));
    doc.remove("workdir");
    let body = serde_yaml::to_string(&doc).map_err(|e| anyhow!("{file}: cannot rewrite: {e}"))?;
    let header = format!(
        "# {} {} for {platform}, written by `berth release`: the executable is beside this file.\n",
        backend.id, backend.version
    );
    Ok(format!("{header}{body}").into_bytes())
}

/// Packs `dir`'s content (modes and symbolic links as they are: the tree
/// digest covers both) into the tar file `out`.
fn pack(dir: &Path, out: &Path) -> io::Result<()> {
    let file = fs::File::create(out)?;
    let mut tar = tar::Builder::new(io::BufWriter::new(file));
    tar.follow_symlinks(false);
    tar.append_dir_all("", dir)?;
    let mut writer = tar.into_inner()?;
    io::Write::flush(&mut writer)?;
    writer.get_ref().sync_all()
}
