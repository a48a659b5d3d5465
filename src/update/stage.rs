//! Filling a staging folder with one release from a feed, verified before
//! anything is installed (DESIGN.md, "Updates": "Only trusted updates").
//!
//! Order: the version must be higher than the installed one; the manifest
//! is read only through its signature by a trusted key, and must be the
//! bytes the signed index names (size, SHA-256), for this id and version,
//! with an executable entry for this platform that names a file beside it
//! and pins the digest the index names; the executable (and the `files`
//! archive) are downloaded with their size and digest checked by the
//! download side; the archive is unpacked and its tree digest checked. Any
//! failure is one line and the staging folder goes when dropped.

use std::fs;
use std::path::Path;

use url::Url;

use super::check::{Get, join, read_signed};
use super::feed::{FILES_TAR, Release};
use super::install::{InstallError, Staging, Updates};
use crate::manifest::{BackendId, Digest, MAX_MANIFEST_BYTES, Places};
use crate::trust::Trust;

/// How artifacts are downloaded: the download side (`fetch::download`) in berth.
pub trait Download {
    /// Streams `url` into `dest`: exactly `size` bytes with SHA-256
    /// `sha256`, else an error (one line) and no `dest`.
    fn download(
        &self,
        url: &Url,
        size: u64,
        sha256: &Digest,
        dest: &Path,
    ) -> impl Future<Output = Result<(), String>>;
}

/// Why a release was not staged: one line.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{id} {offered} is not higher than the installed {installed}: not installed")]
    NotHigher {
        id: String,
        offered: semver::Version,
        installed: semver::Version,
    },
    #[error(transparent)]
    Check(#[from] super::check::CheckError),
    #[error("{url}: {problem}: not installed")]
    Release { url: String, problem: String },
    #[error("{0}")]
    Download(String),
    #[error(transparent)]
    Install(#[from] InstallError),
}

/// What is to be installed: `release` of `id`, from the feed at `feed`,
/// over the `installed` version.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub id: &'a BackendId,
    pub installed: &'a semver::Version,
    pub feed: &'a Url,
    pub release: &'a Release,
}

/// Downloads and verifies the wanted release into a new staging folder of
/// `updates`, ready for [`Updates::publish`].
pub async fn stage(
    updates: &Updates,
    wanted: Wanted<'_>,
    trust: &Trust,
    places: &Places,
    net: &(impl Get + Download),
) -> Result<Staging, StageError> {
    let Wanted {
        id,
        installed,
        feed,
        release,
    } = wanted;
    if release.version <= *installed {
        return Err(StageError::NotHigher {
            id: id.to_string(),
            offered: release.version.clone(),
            installed: installed.clone(),
        });
    }
    let url = join(feed, &release.manifest.path)?;
    let problem = |problem: String| StageError::Release {
        url: url.to_string(),
        problem,
    };
    let limit = release.manifest.size.min(MAX_MANIFEST_BYTES);
    let (bytes, sig) = read_signed(&url, limit, trust, net).await?;
    let digest = crate::integrity::hash_reader(&bytes[..]).map_err(|e| problem(e.to_string()))?;
    let named = release.manifest.digest().map_err(&problem)?;
    if bytes.len() as u64 != release.manifest.size || digest != named {
        return Err(problem(format!(
            "{} bytes with SHA-256 {digest}, the signed index names {} bytes with {named}",
            bytes.len(),
            release.manifest.size
        )));
    }
    let staging = updates.stage(id)?;
    let name = format!("{id}.yaml");
    let file = staging.path().join(&name);
    let backend = crate::manifest::parse(&file, &bytes, places)
        .map_err(|e| problem(format!("the manifest does not validate: {e}")))?;
    if backend.id != *id {
        return Err(problem(format!("a manifest for {}, not {id}", backend.id)));
    }
    if backend.version != release.version {
        return Err(problem(format!(
            "the manifest says version {}, the index {}",
            backend.version, release.version
        )));
    }
    let exe_name = release
        .executable
        .path
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let exe_path = staging.path().join(exe_name);
    let exe = backend
        .executable
        .as_ref()
        .filter(|e| e.candidates == [exe_path.clone()])
        .ok_or_else(|| {
            problem(format!(
                "the manifest's executable for this platform is not {exe_name} beside it"
            ))
        })?;
    let exe_digest = release.executable.digest().map_err(&problem)?;
    if exe.sha256 != exe_digest {
        return Err(problem(format!(
            "the manifest pins {}, the index names {exe_digest} for {exe_name}",
            exe.sha256
        )));
    }
    let packed = match (&exe.files, &release.files) {
        (Some(files), Some(archive)) => Some((files, archive)),
        (None, None) => None,
        _ => {
            return Err(problem(
                "the manifest and the index disagree on a files folder".to_owned(),
            ));
        }
    };
    // The bytes are signed: write them and their signature where the
    // registry will read them.
    fs::write(&file, &bytes)
        .map_err(|e| StageError::Download(format!("{}: {e}", file.display())))?;
    let sig_file = crate::trust::signature_path(&file);
    fs::write(&sig_file, sig)
        .map_err(|e| StageError::Download(format!("{}: {e}", sig_file.display())))?;

    let exe_url = join(feed, &release.executable.path)?;
    net.download(&exe_url, release.executable.size, &exe_digest, &exe_path)
        .await
        .map_err(StageError::Download)?;
    set_executable(&exe_path)
        .map_err(|e| StageError::Download(format!("{}: {e}", exe_path.display())))?;
    if let Some((files, archive)) = packed {
        let tar = staging.path().join(format!(".{FILES_TAR}"));
        let tar_url = join(feed, &archive.path)?;
        let tar_digest = archive.digest().map_err(&problem)?;
        net.download(&tar_url, archive.size, &tar_digest, &tar)
            .await
            .map_err(StageError::Download)?;
        let dir = crate::tree::folder(&exe_path, files);
        unpack(&tar, &dir).map_err(|e| problem(format!("{FILES_TAR}: {e}")))?;
        let _ = fs::remove_file(&tar);
        crate::tree::check(&exe_path, files).map_err(|e| problem(e.to_string()))?;
    }
    super::pause::at("staged");
    Ok(staging)
}

fn set_executable(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Unpacks the archive into `dir` with its modes; the tar crate refuses
/// entries that would land outside `dir`.
fn unpack(tar: &Path, dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut archive = tar::Archive::new(fs::File::open(tar)?);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(false);
    archive.unpack(dir)
}

#[cfg(test)]
mod tests;
