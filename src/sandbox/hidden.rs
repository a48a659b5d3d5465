//! berth's own memory and environment, out of its backends' reach.
//!
//! Reading `/proc/<pid>/environ`, `maps` or `auxv` of another process is a
//! ptrace-mode access check. Under Landlock a sandboxed process passes it
//! only for processes of its own domain (Landlock's ptrace restriction), so
//! an enforced sandbox already keeps berth and the user's other processes
//! out of reach. Without Landlock (`best_effort: true` on a kernel without
//! it) the rule is ptrace's: a process of the same user is readable unless
//! it is not dumpable (`PR_SET_DUMPABLE` 0) and the reader lacks
//! CAP_SYS_PTRACE. So the launcher and the guardians (which hold the list
//! of every backend's group) make themselves non-dumpable first thing.
//!
//! What it costs: no core dump of berth itself, and attaching a debugger to
//! it (gdb, strace -p) needs CAP_SYS_PTRACE. berth reads its own
//! `/proc/self` still. An exec resets the flag, so every backend stays an
//! ordinary, dumpable process. What stays open is written in the README's
//! limits.

use std::io;

/// Makes the calling process non-dumpable.
pub fn hide_self() -> io::Result<()> {
    nix::sys::prctl::set_dumpable(false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_forked_child_is_not_dumpable_and_still_reads_its_own_proc() {
        // In a child, so the test process itself stays dumpable.
        // SAFETY: the child only makes system calls and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = super::hide_self().is_ok()
                && nix::sys::prctl::get_dumpable() == Ok(false)
                && std::fs::read("/proc/self/environ").is_ok();
            // SAFETY: _exit ends the child without running the test harness.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        assert_eq!(
            status,
            Ok(nix::sys::wait::WaitStatus::Exited(
                nix::unistd::Pid::from_raw(pid),
                0
            ))
        );
    }
}
