//! A folder for Unix sockets that only this user can enter, and socket
//! paths that fit in `sun_path`: the control socket's folder and the
//! sd_notify sockets' `notify/` beside it are both checked here.
//!
//! Access control is the folder: it must be ours and 0700, so no other user
//! can even reach a socket in it. A missing folder is created 0700.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `sun_path` holds 108 bytes on Linux, the terminating NUL included.
pub const MAX_PATH_BYTES: usize = 107;

/// Why a socket path or its folder cannot be used, in one line.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error(
        "socket path {} is {len} bytes long; a Unix socket path must be at most {MAX_PATH_BYTES} bytes (use --socket with a shorter path)",
        path.display()
    )]
    PathTooLong { path: PathBuf, len: usize },
    #[error("socket path {} has no parent folder", path.display())]
    NoFolder { path: PathBuf },
    #[error("socket folder {}: {reason}", dir.display())]
    UnsafeFolder { dir: PathBuf, reason: String },
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

fn io_err(path: &Path, what: &'static str) -> impl FnOnce(io::Error) -> DirError {
    let path = path.to_path_buf();
    move |source| DirError::Io { path, what, source }
}

/// Refuses a path that does not fit in `sun_path` (the kernel would truncate
/// or reject it with a less helpful message).
pub fn check_length(path: &Path) -> Result<(), DirError> {
    let len = path.as_os_str().len();
    if len > MAX_PATH_BYTES {
        return Err(DirError::PathTooLong {
            path: path.to_path_buf(),
            len,
        });
    }
    Ok(())
}

/// Makes sure the socket's folder exists, is a real folder owned by us and
/// has mode 0700. A missing folder is created 0700 (with its parents).
pub fn prepare_folder(socket: &Path) -> Result<PathBuf, DirError> {
    let dir = match socket.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => {
            return Err(DirError::NoFolder {
                path: socket.to_path_buf(),
            });
        }
    };
    match std::fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_err(&dir, "cannot create the socket folder"))?;
            // The umask may have removed bits we asked for; it never adds any,
            // so 0700 or less is what we got. Make it exactly 0700.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(&dir, "cannot set the socket folder's mode"))?;
        }
        Err(e) => return Err(io_err(&dir, "cannot inspect the socket folder")(e)),
        Ok(meta) => check_folder(&dir, &meta)?,
    }
    Ok(dir)
}

fn check_folder(dir: &Path, meta: &std::fs::Metadata) -> Result<(), DirError> {
    let unsafe_folder = |reason: String| DirError::UnsafeFolder {
        dir: dir.to_path_buf(),
        reason,
    };
    if !meta.file_type().is_dir() {
        return Err(unsafe_folder("is not a folder".into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(unsafe_folder(format!(
            "is owned by uid {}, not by you (uid {me}); refusing to use it",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode != 0o700 {
        return Err(unsafe_folder(format!(
            "has mode {mode:04o}; it must be 0700 so no other user can reach the socket (chmod 700 it)"
        )));
    }
    Ok(())
}
