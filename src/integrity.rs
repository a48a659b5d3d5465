//! Hashing and verified exec: berth runs exactly the bytes it hashed.
//!
//! Hashing streams the file through a 64 KiB buffer: constant memory, and
//! (measured, see FACTS.md) faster than a 1 MiB buffer, which loses to cache
//! misses. sha2 picks the CPU's SHA extensions at run time.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::manifest::Digest;

const BUF_SIZE: usize = 64 * 1024;

/// SHA-256 of everything `reader` yields.
pub fn hash_reader(mut reader: impl Read) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Digest(hasher.finalize().into()))
}

/// SHA-256 of the file at `path`.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    hash_reader(File::open(path)?)
}

/// Why an executable may not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("executable not found: tried {}", join_paths(.tried))]
    NotFound { tried: Vec<PathBuf> },
    /// The only candidate that exists is a folder ("not found" misled users).
    #[error("executable {} is a folder, not a file", path.display())]
    IsFolder { path: PathBuf },
    #[error("checksum mismatch: expected {expected}, found {found}")]
    Mismatch {
        path: PathBuf,
        expected: Digest,
        found: Digest,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An executable that was opened once and hashed from that descriptor; on
/// Linux it is executed from the same descriptor, so replacing the file at its
/// path afterwards cannot make berth run other bytes.
#[derive(Debug)]
pub struct Verified {
    path: PathBuf,
    file: File,
    /// Starts with `#!`: its interpreter re-opens `/dev/fd/N`, so the
    /// descriptor must survive the exec (an ELF binary needs no such leak).
    script: bool,
}

type Hook = Box<dyn Fn(&Path) + Send + Sync>;
static AFTER_VERIFY: Mutex<Option<Hook>> = Mutex::new(None);

/// Test support: runs `hook` with the path after each successful check and
/// before the spawn (the window a path swap would exploit). Not for
/// production use.
#[doc(hidden)]
pub fn set_after_verify_hook(hook: Option<Hook>) {
    if let Ok(mut slot) = AFTER_VERIFY.lock() {
        *slot = hook;
    }
}

/// Opens the first existing candidate, hashes it from the open descriptor and
/// compares with `expected`.
pub fn verify(candidates: &[PathBuf], expected: &Digest) -> Result<Verified, VerifyError> {
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        if let Some(dir) = candidates.iter().find(|p| p.is_dir()) {
            return Err(VerifyError::IsFolder { path: dir.clone() });
        }
        return Err(VerifyError::NotFound {
            tried: candidates.to_vec(),
        });
    };
    let io = |source| VerifyError::Io {
        path: path.clone(),
        source,
    };
    // std opens with O_CLOEXEC: the descriptor must not leak into other
    // children; the backend's own pre-exec hook clears the flag (a `#!`
    // script's interpreter re-opens /dev/fd/N after exec).
    let file = File::open(path).map_err(io)?;
    let found = hash_reader(&file).map_err(io)?;
    if found != *expected {
        return Err(VerifyError::Mismatch {
            path: path.clone(),
            expected: *expected,
            found,
        });
    }
    if let Ok(slot) = AFTER_VERIFY.lock()
        && let Some(hook) = slot.as_ref()
    {
        hook(path);
    }
    let script = starts_with_shebang(&file);
    Ok(Verified {
        path: path.clone(),
        file,
        script,
    })
}

/// Reads the first two bytes at offset 0 without moving the file position.
fn starts_with_shebang(file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let mut head = [0u8; 2];
        matches!(file.read_at(&mut head, 0), Ok(2)) && head == *b"#!"
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        false
    }
}

impl Verified {
    /// The path the executable was found at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command that runs exactly the verified bytes: on Linux through
    /// `/proc/self/fd/N` with `argv[0]` set to the real path. The caller must
    /// keep `self` alive until the spawn returned and drop it afterwards (that
    /// closes the descriptor in berth).
    ///
    /// The backend inherits stdin, stdout and stderr and nothing else: every
    /// other descriptor berth holds, or inherited from whoever started it
    /// (a terminal's pipes, a desktop session's sockets), is closed at exec,
    /// as supervisord and systemd do. The one exception is a `#!` script's own
    /// descriptor, which its interpreter re-opens as `/dev/fd/N`.
    #[cfg(target_os = "linux")]
    pub fn command(&self) -> tokio::process::Command {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let script = self.script;
        let mut cmd = tokio::process::Command::new(format!("/proc/self/fd/{fd}"));
        cmd.arg0(&self.path);
        // SAFETY: the closure only makes async-signal-safe system calls
        // (close_range, getrlimit, fcntl) and touches no heap.
        unsafe {
            cmd.pre_exec(move || {
                cloexec_from(3);
                if script {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd
    }

    /// Elsewhere: the path, right after the check.
    #[cfg(not(target_os = "linux"))]
    pub fn command(&self) -> tokio::process::Command {
        tokio::process::Command::new(&self.path)
    }
}

/// Marks every descriptor from `first` up as close-on-exec. Runs in a forked
/// child before exec: system calls only, no allocation.
#[cfg(target_os = "linux")]
fn cloexec_from(first: libc::c_int) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags (Linux 5.11+).
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    } == 0;
    if done {
        return;
    }
    // Older kernels: one fcntl per possible descriptor, up to the soft limit.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(1 << 16) as libc::c_int
    } else {
        1024
    };
    for fd in first..max {
        // SAFETY: fcntl on a descriptor that may not exist just fails with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            hash_reader(&b""[..]).unwrap().to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Longer than one buffer, so the loop runs more than once.
        let data = vec![b'a'; BUF_SIZE * 3 + 7];
        let expected = Sha256::digest(&data);
        assert_eq!(
            hash_reader(&data[..]).unwrap().0,
            <[u8; 32]>::from(expected)
        );
    }
}
