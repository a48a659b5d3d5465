//! Tree digests: one SHA-256 for a whole folder, so a PyInstaller onedir
//! build (an executable plus the `_internal/` folder it loads after start)
//! can be pinned as a whole, not just its executable.
//!
//! The digest is exactly DESIGN.md's ("Trust"): SHA-256 over one line per
//! entry below the folder, sorted by path bytes,
//!
//! ```text
//! f <mode> <sha256 hex> <path>\n     a regular file (mode: permission bits in octal, no leading zeros)
//! l <target> <path>\n                a symbolic link (never followed)
//! ```
//!
//! where `<path>` is relative to the folder, `/`-separated, without `./`.
//! Folders give no line of their own (an empty folder changes nothing). Any
//! other file type, and a name or link target containing a newline, is an
//! error. The walk never follows a link, and every file is opened with
//! `O_NOFOLLOW` and judged by the descriptor it is hashed from, so a file
//! swapped for a link or a FIFO between listing and reading is an error, not
//! a hang or a read outside the folder.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::manifest::{Digest, Files};

/// Why a folder has no tree digest, or not the one expected.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{}: no such folder (files.dir)", dir.display())]
    Missing { dir: PathBuf },
    #[error("{}: not a folder (files.dir)", dir.display())]
    NotAFolder { dir: PathBuf },
    #[error("{}: is a symbolic link; files.dir must name the folder itself", dir.display())]
    Symlink { dir: PathBuf },
    #[error("{}: a {kind} cannot be pinned (only files, folders and symbolic links)", path.display())]
    Unsupported { path: PathBuf, kind: &'static str },
    #[error("{}: a name or link target containing a newline cannot be pinned", path.display())]
    Newline { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{}: tree digest mismatch (a file changed, added or removed, or a mode or link changed): expected {expected}, found {found}",
        dir.display()
    )]
    Mismatch {
        dir: PathBuf,
        expected: Digest,
        found: Digest,
    },
}

/// The folder `files` names for the executable at `exe`.
pub fn folder(exe: &Path, files: &Files) -> PathBuf {
    exe.parent().unwrap_or(Path::new("/")).join(&files.dir)
}

/// Checks the tree of `files` beside the (already verified) executable at
/// `exe`: the check berth makes before every launch, after the executable's.
pub fn check(exe: &Path, files: &Files) -> Result<(), TreeError> {
    let dir = folder(exe, files);
    let found = digest(&dir)?;
    if found != files.sha256 {
        return Err(TreeError::Mismatch {
            dir: PathBuf::from(crate::paths::shown(&dir)),
            expected: files.sha256,
            found,
        });
    }
    Ok(())
}

/// The tree digest of `dir`.
pub fn digest(dir: &Path) -> Result<Digest, TreeError> {
    let mut hasher = Sha256::new();
    for line in listing(dir)? {
        hasher.update(&line);
    }
    Ok(Digest(hasher.finalize().into()))
}

/// The lines the digest is computed over, in order (each ends with `\n`).
pub fn listing(dir: &Path) -> Result<Vec<Vec<u8>>, TreeError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TreeError::Io { path, source }
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TreeError::Missing {
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err(dir)(e)),
        Ok(m) if m.file_type().is_symlink() => {
            return Err(TreeError::Symlink {
                dir: dir.to_path_buf(),
            });
        }
        Ok(m) if !m.is_dir() => {
            return Err(TreeError::NotAFolder {
                dir: dir.to_path_buf(),
            });
        }
        Ok(_) => {}
    }
    let mut lines: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            TreeError::Io {
                path,
                source: e.into(),
            }
        })?;
        let path = entry.path();
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let rel = relative_bytes(dir, path)?;
        let line = if kind.is_symlink() {
            let target = std::fs::read_link(path).map_err(io_err(path))?;
            let target = os_bytes(target.as_os_str());
            if target.contains(&b'\n') {
                return Err(TreeError::Newline {
                    path: path.to_path_buf(),
                });
            }
            [b"l ", &target[..], b" ", &rel[..], b"\n"].concat()
        } else if kind.is_file() {
            let (mode, sha) = hash_regular(path)?;
            [format!("f {mode:o} {sha} ").as_bytes(), &rel[..], b"\n"].concat()
        } else {
            return Err(TreeError::Unsupported {
                path: path.to_path_buf(),
                kind: kind_name(&kind),
            });
        };
        lines.push((rel, line));
    }
    lines.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(lines.into_iter().map(|(_, line)| line).collect())
}

/// `path` relative to `dir`, `/`-separated, as bytes; a newline is an error.
fn relative_bytes(dir: &Path, path: &Path) -> Result<Vec<u8>, TreeError> {
    let rel = path.strip_prefix(dir).map_err(|_| TreeError::Io {
        path: path.to_path_buf(),
        source: io::Error::other("outside the folder being hashed"),
    })?;
    let mut out = Vec::new();
    for (i, part) in rel.components().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(&os_bytes(part.as_os_str()));
    }
    if out.contains(&b'\n') {
        return Err(TreeError::Newline {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

#[cfg(unix)]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    s.to_string_lossy().replace('\\', "/").into_bytes()
}

/// Opens without following a link (and without blocking on a FIFO), then
/// takes the mode from the descriptor it hashes.
fn hash_regular(path: &Path) -> Result<(u32, Digest), TreeError> {
    let io_err = |source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file: File = options.open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(TreeError::Unsupported {
            path: path.to_path_buf(),
            kind: kind_name(&meta.file_type()),
        });
    }
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    };
    #[cfg(not(unix))]
    let mode = if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    };
    let sha = crate::integrity::hash_reader(&file).map_err(io_err)?;
    Ok((mode, sha))
}

fn kind_name(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "named pipe (FIFO)";
        }
        if kind.is_socket() {
            return "socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "device";
        }
    }
    if kind.is_symlink() {
        "symbolic link"
    } else if kind.is_dir() {
        "folder"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests;
