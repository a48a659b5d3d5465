//! Least privilege for a backend: Landlock (filesystem, TCP ports, signal
//! scoping), `no_new_privs` and rlimits, from the manifest's `sandbox`.
//!
//! ## Who does what, and why
//!
//! - **In berth, before the fork** ([`prepare`]): the kernel's Landlock ABI
//!   is read (`abi`), the ruleset is built with the `landlock` crate
//!   (`ruleset`: every path opened as an `O_PATH` descriptor, every rule
//!   added), the `${tmp}` and `${data}` folders are created 0700, and each
//!   limit is checked against the current hard limit. Everything that can
//!   fail with a message fails here, in berth, where it can be reported.
//! - **In the child, between fork and exec** (`child`): only
//!   `setrlimit`, `prctl(PR_SET_NO_NEW_PRIVS)` and
//!   `landlock_restrict_self(fd, 0)`, as raw system calls on values copied
//!   into the closure. The crate's `RulesetCreated::restrict_self` is not
//!   used there: it builds a `RestrictionStatus` and io errors and does not
//!   promise to be async-signal-safe, and a forked child of a multi-threaded
//!   berth may not allocate (another thread may have held the allocator's
//!   lock at the fork). The crate hands its descriptor over
//!   (`Option<OwnedFd>::from(RulesetCreated)`), which is all the child needs.
//! - **The ABI probe** is one raw `landlock_create_ruleset(NULL, 0, VERSION)`
//!   call: the crate keeps its own probe private, and berth must know the
//!   ABI to say *what* is not enforced.
//!
//! ## Honesty
//!
//! The crate's best-effort mode silently enforces less on an older kernel.
//! berth never uses it: it asks the crate only for rights the kernel's ABI
//! has, with `CompatLevel::HardRequirement`, and computes itself what is
//! missing ([`gaps`]). With `best_effort: false` a gap means the backend is
//! not launched; with `true` it runs and `status --json` says
//! `partial: <what>`. [`abi::TEST_ABI_VAR`] lowers the ABI berth uses, so
//! tests can play an older kernel for real.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub mod abi;
mod child;
pub mod hidden;
pub mod peer;
mod ruleset;

use crate::manifest::sandbox::Sandbox;
pub use abi::Kernel;

/// Why a sandboxed backend is not launched.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox cannot be enforced: {0}")]
    NotEnforceable(String),
    #[error("sandbox: cannot create {}: {source}", path.display())]
    Folder { path: PathBuf, source: io::Error },
    #[error("sandbox: {}: {source}", path.display())]
    Path { path: PathBuf, source: io::Error },
    #[error("sandbox: {what} {value} is over the hard limit {hard}")]
    OverHardLimit {
        what: &'static str,
        value: u64,
        hard: u64,
    },
    #[error("sandbox: Landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
}

/// A ruleset and limits ready for one spawn. Keep it alive until the spawn
/// returned (the child restricts itself with its descriptor), then drop it.
#[derive(Debug)]
pub struct Prepared {
    ruleset: Option<OwnedFd>,
    plan: child::ChildSetup,
    tmpdir: Option<PathBuf>,
    status: String,
}

impl Prepared {
    /// `"enforced"` or `"partial: <what is not>"`, for `status --json`.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// Sets `TMPDIR` (unless the manifest's `env` has one) and adds the
    /// pre-exec step that restricts the child. Call it after every other
    /// `pre_exec`: the restriction comes last.
    pub fn configure(&self, cmd: &mut tokio::process::Command, env_has_tmpdir: bool) {
        if let Some(tmp) = self.tmpdir.as_ref().filter(|_| !env_has_tmpdir) {
            cmd.env("TMPDIR", tmp);
        }
        let mut plan = self.plan;
        plan.ruleset = self.ruleset.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        // SAFETY: `ChildSetup::enter` makes only async-signal-safe system calls
        // (setrlimit, prctl, landlock_restrict_self) on plain copied values.
        unsafe {
            cmd.pre_exec(move || plan.enter());
        }
    }
}

/// One thing the sandbox asks for that the kernel cannot enforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub what: &'static str,
    /// The Landlock ABI it needs.
    pub abi: u32,
}

/// What `spec` asks for that Landlock ABI `abi` lacks (0: no Landlock).
/// Signal scoping is asked for by every sandbox.
pub fn gaps(spec: &Sandbox, abi: u32) -> Vec<Gap> {
    let mut out = Vec::new();
    let mut need = |asked: bool, what, needs| {
        if asked && abi < needs {
            out.push(Gap { what, abi: needs });
        }
    };
    need(spec.filesystem.is_some(), "filesystem rules", 1);
    need(
        spec.filesystem.is_some() && abi >= 1,
        "file truncation rules",
        3,
    );
    need(spec.network.is_some(), "network rules", 4);
    need(true, "signal scoping", 6);
    out
}

/// One line: `network rules (Landlock ABI 4); this kernel has Landlock ABI 3`.
pub fn describe_gaps(gaps: &[Gap], kernel: &Kernel) -> String {
    let items: Vec<String> = gaps
        .iter()
        .map(|g| format!("{} (Landlock ABI {})", g.what, g.abi))
        .collect();
    format!("{}; {kernel}", items.join(", "))
}

/// What `status --json` says of `spec` on this kernel: `"enforced"` or
/// `"partial: ..."`. With `best_effort: false` and a gap the backend is not
/// launched; the line still says what the kernel lacks.
pub fn status_of(spec: &Sandbox) -> String {
    let kernel = abi::effective();
    let gaps = gaps(spec, kernel.abi());
    if gaps.is_empty() {
        "enforced".to_owned()
    } else {
        format!("partial: {}", describe_gaps(&gaps, &kernel))
    }
}

/// Builds everything a sandboxed spawn of `exe` needs, in berth. `extra_read`
/// are folders the backend must read besides its executable's (a `files`
/// tree).
pub fn prepare(
    spec: &Sandbox,
    exe: &Path,
    extra_read: &[PathBuf],
) -> Result<Prepared, SandboxError> {
    let kernel = abi::effective();
    let gaps = gaps(spec, kernel.abi());
    let status = if gaps.is_empty() {
        "enforced".to_owned()
    } else if spec.best_effort {
        format!("partial: {}", describe_gaps(&gaps, &kernel))
    } else {
        return Err(SandboxError::NotEnforceable(describe_gaps(&gaps, &kernel)));
    };
    let plan = child::ChildSetup::from_limits(&spec.limits)?;
    let mut tmpdir = None;
    if spec.filesystem.is_some() {
        private_folder(&spec.tmp)?;
        private_folder(&spec.data)?;
        tmpdir = Some(spec.tmp.clone());
    }
    let exe_dir = exe.parent().unwrap_or(Path::new("/"));
    let mut read = vec![exe_dir.to_path_buf()];
    read.extend_from_slice(extra_read);
    let ruleset = ruleset::build(spec, kernel.abi(), &read)?;
    Ok(Prepared {
        ruleset,
        plan,
        tmpdir,
        status,
    })
}

/// Creates `path` (and missing parents) 0700 and makes sure it is a folder
/// of ours that nobody else can enter.
fn private_folder(path: &Path) -> Result<(), SandboxError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let err = |source| SandboxError::Folder {
        path: path.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(err)?;
    let meta = std::fs::symlink_metadata(path).map_err(err)?;
    if !meta.is_dir() || meta.uid() != nix::unistd::getuid().as_raw() {
        return Err(err(io::Error::other("not a folder owned by this user")));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::sandbox::{FsRules, Limits, NetRules};

    fn spec(fs: bool, net: bool) -> Sandbox {
        Sandbox {
            filesystem: fs.then(FsRules::default),
            network: net.then(NetRules::default),
            limits: Limits::default(),
            best_effort: false,
            tmp: PathBuf::from("/t"),
            data: PathBuf::from("/d"),
        }
    }

    #[test]
    fn gaps_by_abi() {
        let whats = |s: &Sandbox, abi| gaps(s, abi).iter().map(|g| g.what).collect::<Vec<_>>();
        assert!(whats(&spec(true, true), 7).is_empty());
        assert_eq!(whats(&spec(true, true), 6), Vec::<&str>::new());
        assert_eq!(whats(&spec(true, true), 5), ["signal scoping"]);
        assert_eq!(
            whats(&spec(true, true), 3),
            ["network rules", "signal scoping"]
        );
        assert_eq!(
            whats(&spec(false, true), 3),
            ["network rules", "signal scoping"]
        );
        assert_eq!(
            whats(&spec(true, false), 2),
            ["file truncation rules", "signal scoping"]
        );
        assert_eq!(
            whats(&spec(true, true), 0),
            ["filesystem rules", "network rules", "signal scoping"]
        );
        assert_eq!(whats(&spec(false, false), 6), Vec::<&str>::new());
    }

    #[test]
    fn gap_wording() {
        let g = gaps(&spec(false, true), 3);
        assert_eq!(
            describe_gaps(&g, &Kernel::Abi(3)),
            "network rules (Landlock ABI 4), signal scoping (Landlock ABI 6); this kernel has Landlock ABI 3"
        );
    }
}
