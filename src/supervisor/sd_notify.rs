//! sd_notify, systemd's readiness protocol, so existing client libraries
//! (Python `sdnotify`, Rust `sd-notify`, Go `go-systemd/daemon`) work under
//! berth unchanged.
//!
//! A backend that uses `ready.notify` or `health.watchdog` gets a datagram
//! socket of its own, `notify/<id>.sock` in a 0700 folder beside the control
//! socket, named by `NOTIFY_SOCKET`. It is bound before the spawn (so it
//! exists when the program looks) and read after it by a small task that
//! knows the backend's process group. Each datagram is newline-separated
//! `KEY=VALUE`; the ones berth honours become typed [`Notice`]s.
//!
//! Anyone who can reach the file could write to it, so the socket has
//! SO_PASSCRED set and every datagram carries the sender's pid
//! (SCM_CREDENTIALS, filled in by the kernel): a sender whose process group
//! is not the backend's is dropped and logged at debug. A PyInstaller
//! onefile's Python process is not the pid berth spawned but is in its group,
//! which is why the group is checked and `WATCHDOG_PID` is never set.

use std::io::IoSliceMut;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram as StdDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg, setsockopt, sockopt};
use nix::unistd::{Pid, getpgid};
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The largest datagram read; systemd reads at most this much too.
const MAX_DATAGRAM: usize = 4096;
/// Notices queued for the job; more are dropped rather than blocking the
/// backend's `sendto`.
const QUEUE: usize = 64;

/// One sd_notify assignment berth acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `READY=1`: the `notify` probe matched.
    Ready,
    /// `STATUS=text`: shown as the status line.
    Status(String),
    /// `WATCHDOG=1`: a heartbeat.
    Watchdog,
    /// `WATCHDOG=trigger`: the backend reports itself hung.
    WatchdogTrigger,
    /// `STOPPING=1`: an exit now is expected.
    Stopping,
    /// `EXTEND_TIMEOUT_USEC=n`: the ready timeout ends no sooner than n µs from now.
    ExtendTimeout(Duration),
}

/// The notices of one datagram, in order; unknown keys are ignored.
pub fn parse(datagram: &[u8]) -> Vec<Notice> {
    String::from_utf8_lossy(datagram)
        .split('\n')
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            match (key, value) {
                ("READY", "1") => Some(Notice::Ready),
                ("STATUS", text) => Some(Notice::Status(text.to_owned())),
                ("WATCHDOG", "1") => Some(Notice::Watchdog),
                ("WATCHDOG", "trigger") => Some(Notice::WatchdogTrigger),
                ("STOPPING", "1") => Some(Notice::Stopping),
                ("EXTEND_TIMEOUT_USEC", n) => n
                    .parse::<u64>()
                    .ok()
                    .map(|us| Notice::ExtendTimeout(Duration::from_micros(us))),
                _ => None,
            }
        })
        .collect()
}

/// Why a notify socket could not be made, in one line.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Folder(#[from] crate::socket_dir::DirError),
    #[error("notify socket {}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
}

/// Removes the socket file when the run ends.
#[derive(Debug)]
struct FileGuard(PathBuf);

impl Drop for FileGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A bound socket whose reader has not started yet.
#[derive(Debug)]
pub struct NotifySocket {
    sock: StdDatagram,
    guard: FileGuard,
}

impl NotifySocket {
    /// Binds `<dir>/<id>.sock` (replacing a stale file), with SO_PASSCRED.
    /// `dir` is created 0700 if missing and must be ours and 0700.
    pub fn bind(dir: &Path, id: &str) -> Result<Self, NotifyError> {
        let path = dir.join(format!("{id}.sock"));
        crate::socket_dir::check_length(&path)?;
        crate::socket_dir::prepare_folder(&path)?;
        let io = |what: &'static str| {
            let path = path.clone();
            move |source| NotifyError::Io { path, what, source }
        };
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("cannot remove the old socket")(e));
            }
            _ => {}
        }
        let sock = StdDatagram::bind(&path).map_err(io("cannot bind"))?;
        let guard = FileGuard(path.clone());
        setsockopt(&sock, sockopt::PassCred, &true)
            .map_err(|e| io("cannot set SO_PASSCRED")(e.into()))?;
        sock.set_nonblocking(true)
            .map_err(io("cannot set O_NONBLOCK"))?;
        Ok(Self { sock, guard })
    }

    /// The value of `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.guard.0
    }

    /// Starts reading: notices from processes of group `pgid` come out of
    /// the returned [`Listener`]. Needs a tokio runtime.
    pub fn listen(self, pgid: i32, id: String) -> Result<Listener, NotifyError> {
        let Self { sock, guard } = self;
        let sock = UnixDatagram::from_std(sock).map_err(|source| NotifyError::Io {
            path: guard.0.clone(),
            what: "cannot register with the runtime",
            source,
        })?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(read_loop(sock, pgid, id, tx));
        Ok(Listener {
            rx,
            task,
            _guard: guard,
        })
    }
}

/// The notices of one run. Dropping it stops the reader and removes the file.
#[derive(Debug)]
pub struct Listener {
    rx: mpsc::Receiver<Notice>,
    task: JoinHandle<()>,
    _guard: FileGuard,
}

impl Listener {
    /// The next notice; `None` once the reader ended (a socket error).
    pub async fn recv(&mut self) -> Option<Notice> {
        self.rx.recv().await
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_loop(sock: UnixDatagram, pgid: i32, id: String, tx: mpsc::Sender<Notice>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let got = match sock.readable().await {
            Ok(()) => sock.try_io(Interest::READABLE, || receive(&sock, &mut buf)),
            Err(e) => Err(e),
        };
        let (len, sender) = match got {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(backend = %id, error = %e, "notify socket failed; no more notices");
                return;
            }
        };
        let Some(sender) = sender.filter(|pid| in_group(*pid, pgid)) else {
            tracing::debug!(backend = %id, sender = ?sender, pgid, "notify datagram from outside the backend's group dropped");
            continue;
        };
        for notice in parse(&buf[..len]) {
            tracing::debug!(backend = %id, sender, ?notice, "notify");
            if tx.try_send(notice).is_err() {
                tracing::debug!(backend = %id, "notify queue full or closed: notice dropped");
            }
        }
    }
}

/// One datagram: its length (0 for a truncated one, which is dropped) and
/// the sender's pid from SCM_CREDENTIALS.
fn receive(sock: &UnixDatagram, buf: &mut [u8]) -> std::io::Result<(usize, Option<i32>)> {
    let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<UnixAddr>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
    let sender = msg.cmsgs().ok().and_then(|mut all| {
        all.find_map(|c| match c {
            ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
            _ => None,
        })
    });
    Ok((if truncated { 0 } else { msg.bytes }, sender))
}

/// Is `pid` a process of group `pgid` (still alive to be asked)?
fn in_group(pid: i32, pgid: i32) -> bool {
    pid > 0 && getpgid(Some(Pid::from_raw(pid))).is_ok_and(|g| g.as_raw() == pgid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_what_berth_honours() {
        let d = b"READY=1\nSTATUS=listening on 5000\nWATCHDOG=1\nMAINPID=7\nSTOPPING=1\nEXTEND_TIMEOUT_USEC=2500000\nWATCHDOG=trigger\nREADY=0\nEXTEND_TIMEOUT_USEC=x";
        assert_eq!(
            parse(d),
            [
                Notice::Ready,
                Notice::Status("listening on 5000".into()),
                Notice::Watchdog,
                Notice::Stopping,
                Notice::ExtendTimeout(Duration::from_millis(2500)),
                Notice::WatchdogTrigger,
            ]
        );
        assert_eq!(parse(b"STATUS=a=b"), [Notice::Status("a=b".into())]);
        assert!(parse(b"\xff\xfe").is_empty());
    }

    async fn next(l: &mut Listener) -> Option<Notice> {
        tokio::time::timeout(Duration::from_secs(5), l.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn accepts_its_group_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("notify");
        let mine = nix::unistd::getpgrp().as_raw();
        let ours = NotifySocket::bind(&dir, "ours").unwrap();
        let theirs = NotifySocket::bind(&dir, "theirs").unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let (ours_path, theirs_path) = (ours.path().to_owned(), theirs.path().to_owned());
        let mut ours = ours.listen(mine, "ours".into()).unwrap();
        // A group this test is not in: what a process outside the backend sees.
        let mut theirs = theirs.listen(mine + 1_000_000, "theirs".into()).unwrap();
        let client = StdDatagram::unbound().unwrap();
        client.send_to(b"READY=1\nSTATUS=up", &theirs_path).unwrap();
        client.send_to(b"READY=1\nSTATUS=up", &ours_path).unwrap();
        assert_eq!(next(&mut ours).await, Some(Notice::Ready));
        assert_eq!(next(&mut ours).await, Some(Notice::Status("up".into())));
        let nothing = tokio::time::timeout(Duration::from_millis(300), theirs.recv()).await;
        assert!(
            nothing.is_err(),
            "a datagram from outside the group got through"
        );
        drop(ours);
        assert!(!ours_path.exists(), "the socket file outlives its run");
    }

    #[test]
    fn refuses_a_folder_others_can_enter() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("notify");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = NotifySocket::bind(&dir, "x").unwrap_err().to_string();
        assert!(err.contains("has mode 0755"), "{err}");
    }
}
