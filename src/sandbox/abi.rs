//! Which Landlock ABI berth can count on: the kernel's, read with one raw
//! `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)` (the
//! `landlock` crate keeps its probe private), lowered by the test-only
//! [`TEST_ABI_VAR`].

use std::fmt;

/// Test support: `BERTH_TEST_LANDLOCK_ABI=N` makes berth use at most Landlock
/// ABI N (0: none), so a test can play an older kernel for real (the rules
/// of newer ABIs are then not asked for, and not enforced). It can only
/// lower what berth enforces, and the status says so. Not for production.
pub const TEST_ABI_VAR: &str = "BERTH_TEST_LANDLOCK_ABI";

/// What berth may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kernel {
    /// Landlock with this ABI (1 or more).
    Abi(u32),
    /// Capped by [`TEST_ABI_VAR`] below what the kernel has.
    Simulated { abi: u32, kernel: u32 },
    /// No Landlock, with the reason.
    Unavailable(&'static str),
}

impl Kernel {
    /// The ABI to build for; 0 without Landlock.
    pub fn abi(&self) -> u32 {
        match self {
            Self::Abi(n) | Self::Simulated { abi: n, .. } => *n,
            Self::Unavailable(_) => 0,
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Abi(n) => write!(f, "this kernel has Landlock ABI {n}"),
            Self::Simulated { abi, kernel } => write!(
                f,
                "{TEST_ABI_VAR}={abi} simulates Landlock ABI {abi} (the kernel has {kernel})"
            ),
            Self::Unavailable(why) => f.write_str(why),
        }
    }
}

/// The kernel's own Landlock support.
pub fn kernel() -> Kernel {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call
    // only returns the ABI number (or fails); it touches no memory.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v > 0 {
        return Kernel::Abi(v as u32);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EOPNOTSUPP) => {
            Kernel::Unavailable("Landlock is not enabled in this kernel (see its lsm= setting)")
        }
        _ => Kernel::Unavailable("this kernel has no Landlock"),
    }
}

/// [`kernel`], capped by [`TEST_ABI_VAR`] when it is set.
pub fn effective() -> Kernel {
    let real = kernel();
    let cap = std::env::var(TEST_ABI_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok());
    match (cap, &real) {
        (Some(0), _) => Kernel::Unavailable("Landlock disabled by BERTH_TEST_LANDLOCK_ABI=0"),
        (Some(cap), Kernel::Abi(n)) if cap < *n => Kernel::Simulated {
            abi: cap,
            kernel: *n,
        },
        _ => real,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording() {
        assert_eq!(Kernel::Abi(3).to_string(), "this kernel has Landlock ABI 3");
        assert_eq!(
            Kernel::Simulated { abi: 3, kernel: 7 }.to_string(),
            "BERTH_TEST_LANDLOCK_ABI=3 simulates Landlock ABI 3 (the kernel has 7)"
        );
        assert_eq!(Kernel::Unavailable("x").abi(), 0);
    }
}
