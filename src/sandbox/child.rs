//! What the forked child does before exec, as raw system calls on values
//! copied in: it may not allocate (another thread of berth may have held
//! the allocator's lock at the fork), so nothing here builds a `Vec`, a
//! `String` or an error with a message.

use std::io;

use super::SandboxError;
use crate::manifest::sandbox::Limits;

use nix::sys::resource::Resource;

/// Up to four rlimits, `no_new_privs` and the ruleset descriptor.
#[derive(Debug, Clone, Copy)]
pub struct ChildSetup {
    limits: [(Resource, libc::rlimit); 4],
    count: usize,
    /// The Landlock ruleset's descriptor, -1 for none. Filled in by
    /// `Prepared::configure` from the descriptor it keeps open.
    pub ruleset: libc::c_int,
}

impl ChildSetup {
    /// Checks each limit against the current hard limit (an unprivileged
    /// process cannot raise it: better a clear error here than EPERM from the
    /// child).
    pub fn from_limits(l: &Limits) -> Result<Self, SandboxError> {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let mut plan = ChildSetup {
            limits: [(Resource::RLIMIT_AS, zero); 4],
            count: 0,
            ruleset: -1,
        };
        let mut push = |resource: Resource, what, cur: u64, max: u64| {
            let hard = hard_limit(resource);
            if max > hard {
                return Err(SandboxError::OverHardLimit {
                    what,
                    value: cur,
                    hard,
                });
            }
            plan.limits[plan.count] = (
                resource,
                libc::rlimit {
                    rlim_cur: cur,
                    rlim_max: max,
                },
            );
            plan.count += 1;
            Ok(())
        };
        if let Some(bytes) = l.memory {
            push(Resource::RLIMIT_AS, "memory", bytes, bytes)?;
        }
        if let Some(n) = l.open_files {
            push(Resource::RLIMIT_NOFILE, "open_files", n, n)?;
        }
        if let Some(secs) = l.cpu_time {
            // SIGXCPU at the soft limit, SIGKILL one second later.
            let hard = hard_limit(Resource::RLIMIT_CPU);
            push(
                Resource::RLIMIT_CPU,
                "cpu_time",
                secs,
                secs.saturating_add(1).min(hard),
            )?;
        }
        match l.core_dumps {
            Some(false) => push(Resource::RLIMIT_CORE, "core_dumps", 0, 0)?,
            Some(true) => {
                let hard = hard_limit(Resource::RLIMIT_CORE);
                push(Resource::RLIMIT_CORE, "core_dumps", hard, hard)?;
            }
            None => {}
        }
        Ok(plan)
    }

    /// In the child, between fork and exec: the limits, `no_new_privs`, then
    /// Landlock. Async-signal-safe: three kinds of system call, no heap.
    pub fn enter(&self) -> io::Result<()> {
        for (resource, limit) in &self.limits[..self.count] {
            // SAFETY: setrlimit reads the struct we own. Raw, as everything
            // between fork and exec is here.
            if unsafe { libc::setrlimit(*resource as libc::__rlimit_resource_t, limit) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if self.ruleset >= 0 {
            // SAFETY: a ruleset descriptor that berth keeps open until the
            // spawn returned; flags 0.
            let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, self.ruleset, 0u32) };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// The current hard limit of `resource` (infinity when unknown). In berth,
/// before the fork.
fn hard_limit(resource: Resource) -> u64 {
    nix::sys::resource::getrlimit(resource).map_or(libc::RLIM_INFINITY, |(_, hard)| hard)
}
