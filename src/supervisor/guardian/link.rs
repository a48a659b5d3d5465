//! berth's end of the guardians: their pipes, what is registered, and a
//! keeper thread that replaces a guardian that dies or stops reading.
//!
//! Nothing here may block the runtime, whatever a guardian does (a SIGSTOP
//! makes it stop reading): the pipes are non-blocking, so a backend's child
//! writing its registration never waits, and berth's own messages that do
//! not fit wait in a queue that the keeper flushes. The keeper sleeps in
//! `poll` on each guardian's pidfd (its death, noticed at once), on the pipes
//! that have a queue, and on an eventfd that wakes it; it arms a timer only
//! while a queue waits.
//!
//! A replacement gets a new pipe, `dup3`'d onto the old pipe's descriptor
//! number, so a child forking at that moment writes to one guardian or the
//! other, and berth then registers every live group with the new one. A
//! child that wrote to the dead pipe is registered again by berth once its
//! spawn returned ([`Guardians::add`]).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::stat::Mode;

use super::LOCK_FD;
use crate::manifest::StopSignal;

/// How many guardians run: one may die with berth, the other still acts.
const PAIR: usize = 2;
/// A guardian that takes nothing from its full pipe for this long is killed
/// and replaced (stopped, or wedged).
pub const HUNG: Duration = Duration::from_secs(5);
/// How soon a guardian that could not be started is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// How soon a queue is flushed again when its pipe cannot be polled (no
/// descriptor left to duplicate it).
const RETRY_FLUSH: Duration = Duration::from_millis(10);

/// berth's end of the guardians.
pub struct Guardians {
    inner: Arc<Inner>,
    keeper: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    exe: PathBuf,
    /// A memfd: each guardian gets its own open file description of it, so
    /// their `flock`s exclude each other.
    lock: OwnedFd,
    /// Wakes the keeper (a queue grew, or the link closed).
    wake: EventFd,
    state: Mutex<Roster>,
}

struct Roster {
    guards: Vec<Guard>,
    /// What every guardian must know: `pgid -> "add ..." line`.
    groups: HashMap<i32, Vec<u8>>,
    closed: bool,
}

struct Guard {
    /// The pipe's write end, non-blocking; its descriptor number never
    /// changes (children write to it by number).
    pipe: OwnedFd,
    proc: Option<Proc>,
    /// Whole messages the pipe had no room for, in order.
    queue: VecDeque<Vec<u8>>,
    /// Since when the queue made no progress.
    stalled_since: Option<Instant>,
    /// When to try starting a guardian again after a failure.
    retry_at: Option<Instant>,
}

struct Proc {
    child: Child,
    /// Shared with the keeper's poll, which holds it outside the lock.
    pidfd: Arc<OwnedFd>,
}

impl Guardians {
    /// Starts two `exe __guardian` processes and their keeper.
    pub fn start(exe: &Path) -> io::Result<Self> {
        let lock = memfd_create(c"berth-guardian-lock", MFdFlags::MFD_CLOEXEC)?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let mut guards = Vec::with_capacity(PAIR);
        for _ in 0..PAIR {
            let (proc, pipe) = spawn_guardian(exe, &lock)?;
            guards.push(Guard {
                pipe,
                proc: Some(proc),
                queue: VecDeque::new(),
                stalled_since: None,
                retry_at: None,
            });
        }
        let inner = Arc::new(Inner {
            exe: exe.to_path_buf(),
            lock,
            wake,
            state: Mutex::new(Roster {
                guards,
                groups: HashMap::new(),
                closed: false,
            }),
        });
        let keeper = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("berth-guardian-keeper".into())
                .spawn(move || keep(&inner))?
        };
        Ok(Self {
            inner,
            keeper: Mutex::new(Some(keeper)),
        })
    }

    /// A registration the backend's child writes before exec (see
    /// [`Registration::write_in_child`]).
    pub fn registration(&self, stop: StopSignal, timeout: Duration) -> Registration {
        let tail = tail(stop, timeout);
        let mut buf = [0u8; 32];
        let n = tail.len().min(buf.len());
        buf[..n].copy_from_slice(&tail.as_bytes()[..n]);
        let state = self.inner.lock();
        let mut fds = [-1; PAIR];
        for (fd, g) in fds.iter_mut().zip(&state.guards) {
            *fd = g.pipe.as_raw_fd();
        }
        Registration {
            fds,
            tail: buf,
            tail_len: n,
        }
    }

    /// Registers a group whose spawn returned (its child registered it too,
    /// unless a guardian was being replaced at that moment).
    pub fn add(&self, pgid: i32, stop: StopSignal, timeout: Duration) {
        let line = format!("add {pgid}{}", tail(stop, timeout)).into_bytes();
        let mut state = self.inner.lock();
        state.groups.insert(pgid, line.clone());
        self.send(&mut state, &line);
    }

    /// Unregisters a group that is gone.
    pub fn del(&self, pgid: i32) {
        let mut state = self.inner.lock();
        if state.groups.remove(&pgid).is_some() {
            self.send(&mut state, format!("del {pgid}\n").as_bytes());
        }
    }

    fn send(&self, state: &mut Roster, line: &[u8]) {
        let mut wake = false;
        for g in &mut state.guards {
            wake |= g.send(line);
        }
        if wake {
            self.inner.wake();
        }
    }

    /// Closes the pipes (nothing is registered any more): the guardians read
    /// end of file and exit; the keeper reaps them and ends.
    pub fn close(&self) {
        {
            let mut state = self.inner.lock();
            if state.closed {
                return;
            }
            state.closed = true;
            for g in &mut state.guards {
                g.flush();
                g.queue.clear();
                // /dev/null over the pipe's number: the guardian sees end of
                // file, and a stray write by number lands nowhere.
                if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                    let _ = nix::unistd::dup3(&null, &mut g.pipe, OFlag::O_CLOEXEC);
                }
            }
        }
        self.inner.wake();
        let keeper = self
            .keeper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(k) = keeper {
            // The keeper only reaps children that exit at once; do not wait
            // for it on the caller's thread.
            drop(k);
        }
    }
}

impl Drop for Guardians {
    fn drop(&mut self) {
        self.close();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Roster> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        // Only fails when the counter is full: the keeper is awake then.
        let _ = self.wake.write(1);
    }
}

impl Guard {
    /// Writes `line` now if nothing waits before it and the pipe has room,
    /// else queues it; true when the keeper must start watching the queue.
    fn send(&mut self, line: &[u8]) -> bool {
        if self.queue.is_empty() {
            match write(&self.pipe, line) {
                Ok(()) => return false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // No reader: the guardian is dead; its replacement gets
                // every live group anyway.
                Err(_) => return false,
            }
        }
        self.queue.push_back(line.to_vec());
        self.stalled_since.get_or_insert_with(Instant::now);
        self.queue.len() == 1
    }

    /// Writes queued messages until the pipe is full again.
    fn flush(&mut self) {
        let mut progressed = false;
        while let Some(line) = self.queue.front() {
            match write(&self.pipe, line) {
                Ok(()) => {
                    self.queue.pop_front();
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.queue.clear();
                    break;
                }
            }
        }
        if self.queue.is_empty() {
            self.stalled_since = None;
        } else if progressed {
            self.stalled_since = Some(Instant::now());
        }
    }
}

/// One message, whole (it is shorter than PIPE_BUF, so the kernel writes
/// all of it or nothing).
fn write(fd: &OwnedFd, line: &[u8]) -> io::Result<()> {
    nix::unistd::write(fd, line)?;
    Ok(())
}

/// ` <signal> <ms>\n`, what follows the pgid in an `add`.
fn tail(stop: StopSignal, timeout: Duration) -> String {
    format!(" {} {}\n", stop.to_nix() as i32, timeout.as_millis())
}

/// The keeper: replaces dead and hung guardians, flushes queues.
fn keep(inner: &Inner) {
    loop {
        let (fds, deadline) = {
            let state = inner.lock();
            if state.closed {
                break;
            }
            watch_list(&state)
        };
        let timeout = deadline.map_or(PollTimeout::NONE, |at| {
            let left = at.saturating_duration_since(Instant::now());
            PollTimeout::try_from(left.as_millis() + 1).unwrap_or(PollTimeout::MAX)
        });
        let mut polled: Vec<PollFd<'_>> = std::iter::once((inner.wake.as_fd(), PollFlags::POLLIN))
            .chain(fds.iter().map(|(fd, events)| (fd.as_fd(), *events)))
            .map(|(fd, events)| PollFd::new(fd, events))
            .collect();
        match poll(&mut polled, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::error!(error = %e, "guardian keeper cannot poll: stops");
                break;
            }
        }
        // Non-blocking: EAGAIN when nobody woke the keeper.
        let _ = inner.wake.read();
        let mut state = inner.lock();
        if state.closed {
            break;
        }
        tend(inner, &mut state);
    }
    let mut state = inner.lock();
    for g in &mut state.guards {
        if let Some(mut p) = g.proc.take() {
            // It read end of file and exits at once, having nothing to stop.
            let _ = p.child.wait();
        }
    }
}

/// What the keeper polls, and when it must wake up anyway.
fn watch_list(state: &Roster) -> (Vec<(Arc<OwnedFd>, PollFlags)>, Option<Instant>) {
    let mut fds = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut sooner = |at: Instant| deadline = Some(deadline.map_or(at, |d| d.min(at)));
    for g in &state.guards {
        if let Some(p) = &g.proc {
            fds.push((p.pidfd.clone(), PollFlags::POLLIN));
        }
        if !g.queue.is_empty() {
            // A duplicate of the write end (the same pipe under a number of
            // its own): the poll holds it after the state lock is released,
            // while a replacement may `dup3` onto the pipe's number.
            match g.pipe.try_clone() {
                Ok(pipe) => fds.push((Arc::new(pipe), PollFlags::POLLOUT)),
                Err(_) => sooner(Instant::now() + RETRY_FLUSH),
            }
        }
        if let Some(since) = g.stalled_since {
            sooner(since + HUNG);
        }
        if let Some(at) = g.retry_at {
            sooner(at);
        }
    }
    (fds, deadline)
}

/// One round of the keeper's work, under the state lock.
fn tend(inner: &Inner, state: &mut Roster) {
    let now = Instant::now();
    for i in 0..state.guards.len() {
        let g = &mut state.guards[i];
        if let Some(p) = g.proc.as_mut()
            && let Ok(Some(status)) = p.child.try_wait()
        {
            let pid = p.child.id();
            tracing::error!(
                pid,
                %status,
                "a guardian died: starting another, which takes over every running backend"
            );
            g.proc = None;
            g.retry_at = Some(now);
        }
        g.flush();
        if let (Some(since), Some(p)) = (g.stalled_since, g.proc.as_ref())
            && now >= since + HUNG
        {
            tracing::warn!(
                pid = p.child.id(),
                "a guardian has read nothing for {}s: replacing it",
                HUNG.as_secs()
            );
            // Raw syscall (nix has no pidfd_send_signal).
            // SAFETY: pidfd_send_signal on a pidfd we own (no pid reuse).
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    p.pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            }
            g.stalled_since = None;
        }
        if g.proc.is_none() && g.retry_at.is_some_and(|at| now >= at) {
            replace(inner, state, i);
        }
    }
}

/// Starts a guardian in place of guard `i` and tells it every live group.
fn replace(inner: &Inner, state: &mut Roster, i: usize) {
    let g = &mut state.guards[i];
    match spawn_guardian(&inner.exe, &inner.lock) {
        Ok((proc, pipe)) => {
            if let Err(e) = nix::unistd::dup3(&pipe, &mut g.pipe, OFlag::O_CLOEXEC) {
                tracing::error!(error = %e, "cannot hand over to the new guardian");
                g.pipe = pipe;
            }
            let pid = proc.child.id();
            g.proc = Some(proc);
            g.queue.clear();
            g.stalled_since = None;
            g.retry_at = None;
            let lines: Vec<Vec<u8>> = state.groups.values().cloned().collect();
            let g = &mut state.guards[i];
            for line in &lines {
                g.send(line);
            }
            tracing::info!(pid, groups = lines.len(), "a new guardian took over");
        }
        Err(e) => {
            tracing::error!(exe = %inner.exe.display(), error = %e, "cannot start a guardian: trying again in 1s");
            g.retry_at = Some(Instant::now() + RETRY);
        }
    }
}

/// Starts `exe __guardian` with a new pipe as stdin and its own description
/// of the lock as fd 3; returns it and the pipe's non-blocking write end.
fn spawn_guardian(exe: &Path, lock: &OwnedFd) -> io::Result<(Proc, OwnedFd)> {
    // Only the write end is non-blocking: the guardian blocks reading.
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    // Reopened through /proc: a new open file description, so this
    // guardian's flock excludes the other's.
    let own_lock = nix::fcntl::open(
        format!("/proc/self/fd/{}", lock.as_raw_fd()).as_str(),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let lock_fd = own_lock.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.arg(super::ARG)
        .stdin(Stdio::from(read))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    // SAFETY: dup2, fcntl and close_range are raw syscalls, async-signal-safe.
    // The lock goes to fd 3 and every other descriptor above stderr is
    // closed, so the guardian holds nothing of berth's (a pipe of berth's
    // kept open would hide berth's death).
    unsafe {
        cmd.pre_exec(move || {
            if lock_fd == LOCK_FD {
                libc::fcntl(LOCK_FD, libc::F_SETFD, 0);
            } else if libc::dup2(lock_fd, LOCK_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(own_lock);
    // Raw syscall: nix has no pidfd_open.
    // SAFETY: pidfd_open of our own unreaped child: its pid cannot be reused.
    let pidfd = owned(unsafe { libc::syscall(libc::SYS_pidfd_open, child.id(), 0) } as i32);
    let pidfd = match pidfd {
        Ok(fd) => fd,
        Err(e) => {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    Ok((
        Proc {
            child,
            pidfd: Arc::new(pidfd),
        },
        write,
    ))
}

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned to us by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What a backend's child process writes to the guardians before exec.
#[derive(Clone, Copy)]
pub struct Registration {
    fds: [RawFd; PAIR],
    tail: [u8; 32],
    tail_len: usize,
}

impl Registration {
    /// Writes `add <own pid> <signal> <ms>\n` to each guardian with one
    /// `write` each. Runs between fork and exec: no allocation,
    /// async-signal-safe calls only; the pipes are non-blocking, so a
    /// guardian that does not read cannot hold the child up.
    pub fn write_in_child(&self) {
        let mut line = [0u8; 64];
        line[..4].copy_from_slice(b"add ");
        let mut n = 4;
        // SAFETY: getpid is async-signal-safe.
        let pid = unsafe { libc::getpid() };
        let mut digits = [0u8; 12];
        let mut d = 0;
        let mut v = pid.unsigned_abs();
        loop {
            digits[d] = b'0' + (v % 10) as u8;
            d += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        while d > 0 {
            d -= 1;
            line[n] = digits[d];
            n += 1;
        }
        line[n..n + self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        n += self.tail_len;
        // SAFETY: signal and write are async-signal-safe. SIGPIPE is ignored
        // around the writes so a dead guardian cannot kill the child.
        unsafe {
            let old = libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            for &fd in &self.fds {
                libc::write(fd, line.as_ptr().cast(), n);
            }
            libc::signal(libc::SIGPIPE, old);
        }
    }
}
