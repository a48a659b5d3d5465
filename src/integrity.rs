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

mod exec;

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
    /// Written to while it was hashed (an in-place overwrite).
    #[error("{} changed while or after it was hashed: not run", path.display())]
    Changed { path: PathBuf },
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
    /// Starts with `#!`: executed by its path (its interpreter must see the
    /// real `$0`), after the child checked the path still names this file.
    script: bool,
    /// The file as it was when hashing began and, checked, ended.
    ident: exec::Ident,
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
    let ident = exec::Ident::of(&file).map_err(io)?;
    let found = hash_reader(&file).map_err(io)?;
    // An in-place write during the hash changes the size, mtime or ctime:
    // then the digest may describe bytes that are no longer there.
    if exec::Ident::of(&file).map_err(io)? != ident {
        return Err(VerifyError::Changed { path: path.clone() });
    }
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
        ident,
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

    /// The command to configure; run it with [`Verified::spawn`], which
    /// executes exactly the verified bytes. `argv[0]` is the real path.
    pub fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.path);
        #[cfg(unix)]
        cmd.arg0(&self.path);
        cmd
    }

    /// Spawns `cmd` (from [`Verified::command`], fully configured: its
    /// arguments and environment are read now). On Linux the child execs
    /// itself as its last pre-exec step, after every other hook: an ELF
    /// binary through the hashed descriptor (`execveat`), a `#!` script by
    /// its path; either only if the file still has the identity, size and
    /// change times it had when hashed. The kernel's own error comes back
    /// (ENOEXEC for a file it cannot execute): nothing falls back to a shell
    /// as `execvp` would. See [`spawn_error`] for the wording.
    ///
    /// The backend inherits stdin, stdout and stderr and nothing else: every
    /// other descriptor berth holds, or inherited from whoever started it
    /// (a terminal's pipes, a desktop session's sockets), is closed at exec,
    /// as supervisord and systemd do.
    #[cfg(target_os = "linux")]
    pub fn spawn(&self, cmd: &mut tokio::process::Command) -> io::Result<tokio::process::Child> {
        exec::spawn(self, cmd)
    }

    /// Elsewhere: the path, right after the check.
    #[cfg(not(target_os = "linux"))]
    pub fn spawn(&self, cmd: &mut tokio::process::Command) -> io::Result<tokio::process::Child> {
        cmd.spawn()
    }
}

/// Why a spawn of a verified file failed, in one line that says what to do
/// (never a bare errno), and whether it is an integrity failure (the file
/// changed after it was hashed). The path is named once.
pub fn spawn_error(path: &Path, e: &io::Error) -> (bool, String) {
    let shown = path.display();
    match e.raw_os_error() {
        Some(exec::CHANGED) => (
            true,
            format!("{shown} changed while or after it was hashed: not run"),
        ),
        Some(libc::ENOEXEC) if !starts_like_a_program(path) => (
            false,
            format!(
                "exec format error: {shown} has no #! line: add one or name the interpreter as the executable"
            ),
        ),
        Some(libc::ENOEXEC) => (
            false,
            format!("{shown}: exec format error (built for another machine?)"),
        ),
        Some(libc::EACCES) if !has_exec_bit(path) => {
            (false, format!("not executable: chmod +x {shown}"))
        }
        Some(libc::ETXTBSY) => (
            false,
            format!("{shown} is open for writing (text file busy)"),
        ),
        _ => (false, format!("{shown}: {e}")),
    }
}

/// What will stop `path` from starting, found before any launch (`berth
/// check`, `berth new`): no exec bit, or neither a `#!` line nor an ELF
/// header. The same words as [`spawn_error`]'s; `None` when it looks fine.
pub fn launch_problem(path: &Path) -> Option<String> {
    if !has_exec_bit(path) {
        return Some(format!("not executable: chmod +x {}", path.display()));
    }
    (!starts_like_a_program(path))
        .then(|| "no #! line: add one or name the interpreter as the executable".to_owned())
}

/// The file begins with `#!` or is an ELF program.
fn starts_like_a_program(path: &Path) -> bool {
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    head[..n].starts_with(b"#!") || head[..n] == *b"\x7fELF"
}

/// Someone may execute the file (a script without it fails with EACCES).
fn has_exec_bit(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
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
