//! The socket file itself: where it may live, who may reach it, and what to do
//! with one that is already there.
//!
//! Access control is the folder (checked by `crate::socket_dir`): it must be
//! ours and 0700, so no other user can even reach the socket (which is 0600
//! as well). A socket file left by a
//! killed launcher is recognised because connecting to it is refused, and is
//! replaced; one that answers belongs to a live launcher, and we refuse to
//! start rather than steal it. Before any of that, the launcher takes an
//! exclusive `flock` on `<socket>.lock` and holds it for its lifetime: two
//! launchers started at the same instant cannot both decide the socket is
//! stale, and the kernel drops the lock when its holder dies, even by SIGKILL.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

pub use crate::socket_dir::{MAX_PATH_BYTES, check_length, prepare_folder};

/// Why the launcher cannot serve on a socket path, in one line.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Too long, or a folder that is not ours and 0700.
    #[error(transparent)]
    Folder(#[from] crate::socket_dir::DirError),
    #[error("a launcher is already running on {}", path.display())]
    AlreadyRunning { path: PathBuf },
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

fn io_err(path: &Path, what: &'static str) -> impl FnOnce(io::Error) -> SocketError {
    let path = path.to_path_buf();
    move |source| SocketError::Io { path, what, source }
}

/// The bound socket: the listener, and the guard that removes the file.
#[derive(Debug)]
pub struct Bound {
    pub listener: UnixListener,
    pub file: SocketFile,
}

/// The socket file. Dropping it removes the file, if it is still ours.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    /// (device, inode) of the file we created, so we never delete a socket
    /// another launcher put there after us.
    identity: (u64, u64),
    /// The open lock file: holding it is what makes this launcher the one.
    /// (The lock file itself stays: removing it would race with the next.)
    _lock: std::fs::File,
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the control socket: checks the path and its folder, replaces a stale
/// socket, refuses when a live launcher answers, and makes the socket 0600.
/// Must be called within a tokio runtime.
pub fn bind(path: &Path) -> Result<Bound, SocketError> {
    check_length(path)?;
    prepare_folder(path)?;
    let lock = lock(path)?;
    let listener = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            replace_stale(path)?;
            UnixListener::bind(path).map_err(io_err(path, "cannot bind the control socket"))?
        }
        Err(e) => return Err(io_err(path, "cannot bind the control socket")(e)),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(path, "cannot set the socket's mode"))?;
    let meta =
        std::fs::symlink_metadata(path).map_err(io_err(path, "cannot inspect the socket"))?;
    Ok(Bound {
        listener,
        file: SocketFile {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
            _lock: lock,
        },
    })
}

/// Holds the launcher lock of `path` without serving it: no launcher can
/// start meanwhile (`berth update` without a launcher installs under it).
pub fn hold_lock(path: &Path) -> Result<std::fs::File, SocketError> {
    check_length(path)?;
    prepare_folder(path)?;
    lock(path)
}

/// Takes the launcher lock beside the socket, or says a launcher runs.
fn lock(path: &Path) -> Result<std::fs::File, SocketError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    // std opens with O_CLOEXEC: neither backends nor the guardian inherit it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io_err(&lock_path, "cannot open the launcher lock"))?;
    // std's lock is `flock` (LOCK_EX | LOCK_NB), released when berth dies.
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(SocketError::AlreadyRunning {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(err)) => Err(io_err(&lock_path, "cannot lock")(err)),
    }
}

/// Something is at `path`. If it is a socket nobody listens on, remove it.
fn replace_stale(path: &Path) -> Result<(), SocketError> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path, "cannot inspect"))?;
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketError::AlreadyRunning {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %path.display(), "replacing a stale socket left by a launcher that is gone");
            std::fs::remove_file(path).map_err(io_err(path, "cannot remove the stale socket"))
        }
        Err(e) => Err(io_err(path, "cannot tell whether a launcher is listening")(
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_refused_in_one_line() {
        let long = PathBuf::from(format!("/tmp/{}/berth.sock", "x".repeat(120)));
        let err = check_length(&long).unwrap_err().to_string();
        assert!(err.contains("at most 107 bytes"), "{err}");
        assert!(!err.contains('\n'));
        assert!(check_length(Path::new("/tmp/berth-0/berth.sock")).is_ok());
    }

    #[test]
    fn missing_folder_is_created_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("a/b/berth.sock");
        let dir = prepare_folder(&sock).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn open_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = prepare_folder(&dir.join("berth.sock"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("has mode 0755"), "{err}");
    }

    #[test]
    fn symlinked_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = prepare_folder(&link.join("berth.sock"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a folder"), "{err}");
    }

    #[tokio::test]
    async fn stale_socket_is_replaced_and_live_one_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("run/berth.sock");
        prepare_folder(&sock).unwrap();
        // A socket file nobody listens on: what a SIGKILLed launcher leaves.
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        assert!(sock.exists());
        let first = bind(&sock).unwrap();
        let mode = std::fs::metadata(&sock).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = bind(&sock).unwrap_err();
        assert!(matches!(err, SocketError::AlreadyRunning { .. }), "{err}");
        drop(first);
        assert!(!sock.exists(), "dropping the bound socket removes the file");
    }

    #[tokio::test]
    async fn regular_file_is_never_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("run/berth.sock");
        prepare_folder(&sock).unwrap();
        std::fs::write(&sock, "precious").unwrap();
        let err = bind(&sock).unwrap_err();
        assert!(matches!(err, SocketError::NotASocket { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&sock).unwrap(), "precious");
    }

    // Two launchers racing: the second finds no socket file (the first's was
    // removed, or not created yet) and would bind its own. The lock refuses it.
    #[tokio::test]
    async fn the_lock_refuses_a_second_launcher_even_without_a_socket_file() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("run").join("berth.sock");
        let first = bind(&sock).unwrap();
        std::fs::remove_file(&sock).unwrap();
        assert!(matches!(
            bind(&sock),
            Err(SocketError::AlreadyRunning { .. })
        ));
        drop(first);
        // The lock goes with its holder.
        assert!(bind(&sock).is_ok());
    }
}
