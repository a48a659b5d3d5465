//! The child's side of verified exec: it execs itself, so that only the
//! hashed file runs and the kernel's verdict on it stands.
//!
//! std's `Command` ends with `execvp`, which glibc retries through `/bin/sh`
//! when the kernel answers ENOEXEC: a file that is not a program would run as
//! a shell script. So the last pre-exec hook calls `execveat`/`execve` itself
//! with the argv and environment std would have used (computed before the
//! fork: nothing is allocated in the child), and returns the kernel's error.
//!
//! Before that exec the child compares the file with what was hashed (device,
//! inode, size, mtime, ctime): an ELF binary through the hashed descriptor
//! (an in-place write after the hash changes its times), a `#!` script at its
//! path (a rename over it changes the inode). From the exec on, the kernel
//! refuses writers to a running program (ETXTBSY) and refuses to exec a file
//! open for writing. What is left is written in the README's Limits.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::Verified;

/// The errno a child reports when the file changed after it was hashed
/// (execve never returns it).
pub const CHANGED: i32 = libc::ECANCELED;

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Ident {
    pub fn of(file: &File) -> io::Result<Self> {
        Ok(Self::from(&nix::sys::stat::fstat(file)?))
    }

    fn from(st: &libc::stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

/// A NUL-terminated pointer array and the strings it points into.
struct CArray {
    _strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `_strings`, owned alongside and never
// mutated; the array is only read (in the forked child).
unsafe impl Send for CArray {}
// SAFETY: as above: shared reads only.
unsafe impl Sync for CArray {}

impl CArray {
    fn new(items: impl IntoIterator<Item = Vec<u8>>) -> io::Result<Self> {
        let strings = items
            .into_iter()
            .map(CString::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(Self {
            _strings: strings,
            ptrs,
        })
    }
}

/// The environment std would give the child: berth's, with the command's
/// changes (berth never clears the environment).
fn environment(cmd: &std::process::Command) -> Vec<Vec<u8>> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (key, value) in cmd.get_envs() {
        env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            env.push((key.to_owned(), v.to_owned()));
        }
    }
    env.into_iter()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            kv
        })
        .collect()
}

pub fn spawn(v: &Verified, cmd: &mut tokio::process::Command) -> io::Result<tokio::process::Child> {
    let std_cmd = cmd.as_std();
    let argv = CArray::new(
        std::iter::once(v.path.as_os_str())
            .chain(std_cmd.get_args())
            .map(|a: &OsStr| a.as_bytes().to_vec()),
    )?;
    let envp = CArray::new(environment(std_cmd))?;
    let path = CString::new(v.path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let fd = v.file.as_raw_fd();
    let script = v.script;
    let ident = v.ident;
    // SAFETY: the closure makes only async-signal-safe system calls
    // (close_range, fcntl, fstat, stat, execve, execveat) on memory
    // allocated before the fork, and touches no heap.
    unsafe {
        cmd.pre_exec(move || {
            // Whole arrays, not their fields: those carry the Send promise.
            let (argv, envp) = (&argv, &envp);
            cloexec_from(3);
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            let r = if script {
                libc::stat(path.as_ptr(), st.as_mut_ptr())
            } else {
                libc::fstat(fd, st.as_mut_ptr())
            };
            if r != 0 || Ident::from(&st.assume_init()) != ident {
                return Err(io::Error::from_raw_os_error(CHANGED));
            }
            if script {
                libc::execve(path.as_ptr(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr());
            } else {
                libc::syscall(
                    libc::SYS_execveat,
                    fd,
                    c"".as_ptr(),
                    argv.ptrs.as_ptr(),
                    envp.ptrs.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
            }
            Err(io::Error::last_os_error())
        });
    }
    cmd.spawn()
}

/// Marks every descriptor from `first` up as close-on-exec. Runs in a forked
/// child before exec: system calls only, no allocation.
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
