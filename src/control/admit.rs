//! Who may command berth: a connection to the control socket is judged
//! once, when it is accepted, by who connected (see
//! [`crate::sandbox::peer`]), never by who writes on it later.
//!
//! A caller in a sandboxed backend is refused, and so is one that cannot be
//! identified: it exited before berth could look (a child that connected
//! and left its descriptor to a sandboxed parent), or it belongs to a
//! backend spawned so recently that the board does not show it yet and
//! still does not after [`BOARD_WAIT`].

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::sync::watch;

use crate::status::Snapshot;

/// How long a caller from a backend the board does not show yet waits for
/// it to appear (it is published right after its spawn returns).
pub const BOARD_WAIT: Duration = Duration::from_secs(1);

/// `Ok` when the peer of `stream` may send requests; else the one-line
/// refusal it is told at its first request.
pub async fn admit(
    stream: &UnixStream,
    board: watch::Receiver<Arc<Snapshot>>,
) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        linux::admit(stream, board).await
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (stream, board);
        Ok(())
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use crate::sandbox::peer::Peer;

    enum Admission {
        Allowed,
        Sandboxed(String),
        /// In the session of a backend the board does not show.
        Unknown(i32),
    }

    pub async fn admit(
        stream: &UnixStream,
        mut board: watch::Receiver<Arc<Snapshot>>,
    ) -> Result<(), String> {
        let peer = Peer::identify(stream).map_err(|e| {
            tracing::warn!(reason = %e, "control socket: refused a caller that cannot be identified");
            format!("refused: the caller cannot be identified ({e})")
        })?;
        let deadline = tokio::time::Instant::now() + BOARD_WAIT;
        loop {
            let verdict = judge(&peer, &board.borrow_and_update());
            match verdict {
                Admission::Allowed => return Ok(()),
                Admission::Sandboxed(id) => {
                    tracing::warn!(backend = %id, "control socket: refused a sandboxed backend");
                    return Err(format!(
                        "refused: the caller belongs to the sandboxed backend {id}, which may not control berth"
                    ));
                }
                Admission::Unknown(session) => {
                    let changed = tokio::time::timeout_at(deadline, board.changed()).await;
                    if !matches!(changed, Ok(Ok(()))) {
                        tracing::warn!(
                            session,
                            "control socket: refused a caller from a backend the board does not show"
                        );
                        return Err(format!(
                            "refused: the caller cannot be identified (session {session} is a backend's, but none is known by it)"
                        ));
                    }
                }
            }
        }
    }

    fn judge(peer: &Peer, snapshot: &Snapshot) -> Admission {
        let running: Vec<(i32, &str, bool)> = snapshot
            .backends
            .iter()
            .filter(|b| b.state.has_process())
            .filter_map(|b| Some((b.pid? as i32, b.id.as_deref()?, b.sandbox.is_some())))
            .collect();
        let sandboxed: Vec<(i32, &str)> = running
            .iter()
            .filter(|(_, _, boxed)| *boxed)
            .map(|&(pid, id, _)| (pid, id))
            .collect();
        if let Some(id) = peer.owner(&sandboxed) {
            return Admission::Sandboxed(id.to_owned());
        }
        match peer.backend_session() {
            Some(s) if !running.iter().any(|(pid, _, _)| *pid == s) => Admission::Unknown(s),
            _ => Admission::Allowed,
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::time::Instant;

    use tokio::net::UnixListener;

    use super::*;
    use crate::status::{BackendStatus, State};

    /// A child of this test process that leads its own session and
    /// connects to `path`, then stays (or exits at once with `stay` false):
    /// to this process it is what a backend's process is to berth.
    fn backend_like(path: &std::path::Path, stay: bool) -> Child {
        let code = format!(
            "import socket, sys, time\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ntime.sleep({})",
            if stay { 30 } else { 0 }
        );
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-c", &code]).arg(path);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }

    fn listen() -> (tempfile::TempDir, std::path::PathBuf, UnixListener) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        (dir, path, listener)
    }

    fn board(pid: u32, sandbox: Option<&str>) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            backends: vec![BackendStatus {
                id: Some("b".into()),
                pid: Some(pid),
                sandbox: sandbox.map(str::to_owned),
                ..BackendStatus::new("/b/b.yaml", State::Running)
            }],
        })
    }

    #[tokio::test]
    async fn a_backend_caller_is_judged_by_the_board_and_waited_for_once() {
        let (_dir, path, listener) = listen();
        let mut child = backend_like(&path, true);
        let (stream, _) = listener.accept().await.unwrap();
        let pid = child.id();

        // Not on the board, and it never shows up: refused after the wait.
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let t0 = Instant::now();
        let refusal = admit(&stream, rx).await.unwrap_err();
        assert!(refusal.contains("cannot be identified"), "{refusal}");
        assert!(t0.elapsed() >= BOARD_WAIT);

        // Published during the wait, unsandboxed: let in.
        let rx = tx.subscribe();
        let later = board(pid, None);
        let publish = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.send_replace(later);
            tx
        });
        assert_eq!(admit(&stream, rx).await, Ok(()));
        let tx = publish.await.unwrap();

        // Sandboxed: refused at once.
        tx.send_replace(board(pid, Some("enforced")));
        let refusal = admit(&stream, tx.subscribe()).await.unwrap_err();
        assert!(refusal.contains("sandboxed backend b"), "{refusal}");
        let _ = child.kill();
        let _ = child.wait();
    }

    #[tokio::test]
    async fn a_caller_gone_before_it_is_accepted_is_refused() {
        let (_dir, path, listener) = listen();
        let mut child = backend_like(&path, false);
        assert!(child.wait().unwrap().success());
        let (stream, _) = listener.accept().await.unwrap();
        let (_tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let refusal = admit(&stream, rx).await.unwrap_err();
        assert!(refusal.contains("is gone"), "{refusal}");
    }
}
