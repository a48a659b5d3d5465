//! Is a control-socket peer part of a sandboxed backend?
//!
//! Landlock (up to ABI 7) does not govern connecting to a named Unix socket,
//! so a sandboxed backend can reach berth's control socket by path and
//! would otherwise be able to start, stop or reconfigure anything.
//!
//! The peer is identified once, when the connection is accepted
//! ([`Peer::identify`]): SO_PEERCRED names the process that called
//! `connect()`, but any process holding the descriptor can then write on
//! it (a parent after its child connected and exited), so what counts is
//! that process as it was, read from `/proc` while a pidfd (SO_PEERPIDFD)
//! proves it still exists; a peer already gone cannot be identified and is
//! refused. What is kept: the session, process group and pid of the peer
//! and of each of its ancestors up to berth.
//!
//! A peer is a sandboxed backend's ([`Peer::owner`]) when one of them is in
//! that backend's session or group: each backend leads its own session
//! (`setsid` before exec), which a process can leave only by making a new
//! one, so a child that moved itself into a new group or session is still
//! caught through its parents while they live. A process that double-forks
//! into a new session and whose parents all exited is re-parented away and
//! is out of reach of this check; that limit is written in the README.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::sys::socket::{getsockopt, sockopt};

/// Longest parent chain followed (a loop guard; real chains are short).
const MAX_DEPTH: usize = 64;

/// One process of the peer's chain, as `/proc/<pid>/stat` showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    session: i32,
}

/// The peer of one connection, read when it was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer first, then its parent, and so on up to (not including)
    /// berth or init. Never empty.
    chain: Vec<ProcStat>,
    /// A session led by a child of berth, that is a backend's, found in the
    /// chain: a backend spawned so recently that the board may not show it
    /// yet.
    backend_session: Option<i32>,
}

/// Why a peer could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the kernel does not name the process that connected")]
    NoPid,
    #[error("the process that connected is gone")]
    Gone,
    #[error("cannot ask the kernel about the process that connected: {0}")]
    Io(#[from] io::Error),
}

impl Peer {
    /// Identifies the process at the other end of `socket`, as it is now.
    pub fn identify(socket: &impl AsFd) -> Result<Self, PeerError> {
        let cred = getsockopt(socket, sockopt::PeerCredentials).map_err(io::Error::from)?;
        let pid = cred.pid();
        if pid <= 0 {
            return Err(PeerError::NoPid);
        }
        let pidfd = pidfd_of(socket, pid)?;
        let berth = std::process::id() as i32;
        let first = stat(pid).ok_or(PeerError::Gone)?;
        let mut chain = vec![first];
        let mut current = first.ppid;
        while chain.len() < MAX_DEPTH && current > 1 && current != berth {
            // An ancestor that exited meanwhile ends the chain.
            let Some(p) = stat(current) else { break };
            chain.push(p);
            current = p.ppid;
        }
        // The pid cannot have been reused while the pidfd's process exists
        // (a zombie too): what was read above was the peer's.
        if !alive(&pidfd)? {
            return Err(PeerError::Gone);
        }
        let backend_session = chain
            .iter()
            .map(|p| p.session)
            .find(|&s| stat(s).is_some_and(|l| l.session == s && l.ppid == berth));
        Ok(Self {
            chain,
            backend_session,
        })
    }

    /// The id of the sandboxed backend the peer belongs to, if any.
    /// `sandboxed` holds each running sandboxed backend's session (its
    /// leader's pid, also its process group) and id.
    pub fn owner<'a>(&self, sandboxed: &[(i32, &'a str)]) -> Option<&'a str> {
        let owner = |id: i32| {
            sandboxed
                .iter()
                .find(|(g, _)| *g == id)
                .map(|(_, name)| *name)
        };
        self.chain.iter().find_map(|p| {
            owner(p.session)
                .or_else(|| owner(p.pgrp))
                .or_else(|| owner(p.pid))
        })
    }

    /// The session of a backend the peer belongs to (sandboxed or not),
    /// when one of its ancestors leads a session berth spawned.
    pub fn backend_session(&self) -> Option<i32> {
        self.backend_session
    }
}

/// A pidfd of the peer: SO_PEERPIDFD (Linux 6.5) names the very process
/// that connected; on an older kernel, a pidfd opened from its pid now.
fn pidfd_of(socket: &impl AsFd, pid: i32) -> io::Result<OwnedFd> {
    match getsockopt(socket, sockopt::PeerPidfd) {
        Ok(fd) => return Ok(fd),
        Err(nix::errno::Errno::ENOPROTOOPT | nix::errno::Errno::EINVAL) => {}
        Err(nix::errno::Errno::ESRCH) => return Err(io::Error::from_raw_os_error(libc::ESRCH)),
        Err(e) => return Err(e.into()),
    }
    // Raw syscall: nix has no pidfd_open.
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned to us by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Does the pidfd's process still exist (a zombie counts: its pid is held)?
fn alive(pidfd: &OwnedFd) -> io::Result<bool> {
    // Raw syscall (nix has no pidfd_send_signal); signal 0 only checks.
    // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        _ => Err(e),
    }
}

/// One process's line of `/proc/<pid>/stat` (the fields after the command
/// name, which may itself hold spaces and parentheses).
fn stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        ppid,
        pgrp,
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn own_session_group_and_ancestors() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = Peer::identify(&a).unwrap();
        let me = stat(std::process::id() as i32).unwrap();
        assert_eq!(peer.chain[0], me);
        assert_eq!(peer.backend_session(), None);
        assert_eq!(peer.owner(&[]), None);
        assert_eq!(peer.owner(&[(me.session, "s")]), Some("s"));
        assert_eq!(peer.owner(&[(me.pgrp, "g")]), Some("g"));
        assert_eq!(peer.owner(&[(-5, "x")]), None);
    }
}
