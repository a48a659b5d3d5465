//! The Landlock ruleset, built with the `landlock` crate in berth before the
//! fork: handled rights chosen for the ABI berth counts on (never more, so
//! `HardRequirement` turns any surprise into an error instead of a silent
//! downgrade), one `PathBeneath` per allowed path, one `NetPort` per port.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope,
};

use super::SandboxError;
use crate::manifest::sandbox::Sandbox;

/// The system's runtime, readable by every backend with filesystem rules.
pub const BASE_READ: [&str; 10] = [
    "/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/opt", "/proc", "/sys", "/dev",
];
/// Files every backend with filesystem rules may write.
pub const BASE_WRITE: [&str; 2] = ["/dev/null", "/dev/tty"];

/// The ruleset's descriptor, or `None` when nothing is left to ask of
/// Landlock at this ABI (no Landlock, or only signal scoping on an old ABI).
pub fn build(
    spec: &Sandbox,
    abi_number: u32,
    extra_read: &[PathBuf],
) -> Result<Option<OwnedFd>, SandboxError> {
    let abi = ABI::from(abi_number as i32);
    let fs = spec.filesystem.as_ref().filter(|_| abi_number >= 1);
    let net = spec.network.as_ref().filter(|_| abi_number >= 4);
    let scope = abi_number >= 6;
    if fs.is_none() && net.is_none() && !scope {
        return Ok(None);
    }
    let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::HardRequirement);
    if fs.is_some() {
        ruleset = ruleset.handle_access(AccessFs::from_all(abi))?;
    }
    if net.is_some() {
        // TCP only: UDP rights (a newer ABI) would deny all UDP, which the
        // manifest has no way to allow.
        ruleset = ruleset.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?;
    }
    if scope {
        // Not AbstractUnixSocket: it breaks X11 and D-Bus clients (FACTS.md).
        ruleset = ruleset.scope(Scope::Signal)?;
    }
    let mut created = ruleset.create()?;
    if let Some(fs) = fs {
        let read = AccessFs::from_read(abi);
        let all = AccessFs::from_all(abi);
        let base_read = BASE_READ.iter().map(PathBuf::from);
        let reads = base_read
            .chain(extra_read.iter().cloned())
            .chain(fs.read.iter().cloned());
        for path in reads {
            created = add_path(created, &path, read, abi)?;
        }
        let base_write = BASE_WRITE.iter().map(PathBuf::from);
        let writes = base_write
            .chain([spec.tmp.clone(), spec.data.clone()])
            .chain(fs.write.iter().cloned());
        for path in writes {
            created = add_path(created, &path, all, abi)?;
        }
    }
    if let Some(net) = net {
        for port in &net.bind {
            created = created.add_rule(NetPort::new(*port, AccessNet::BindTcp))?;
        }
        for port in &net.connect {
            created = created.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
        }
    }
    Ok(created.into())
}

/// Allows `access` beneath `path`; a path that does not exist grants nothing
/// and is skipped (a manifest lists `${resources}` for the packaged app,
/// absent in a development tree).
fn add_path(
    created: landlock::RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
    abi: ABI,
) -> Result<landlock::RulesetCreated, SandboxError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "sandbox: path absent, not allowed");
            return Ok(created);
        }
        Err(source) => {
            return Err(SandboxError::Path {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    // A file takes only the rights that apply to files.
    let access = if meta.is_dir() {
        access
    } else {
        access & AccessFs::from_file(abi)
    };
    let fd = PathFd::new(path).map_err(|e| SandboxError::Path {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(created.add_rule(PathBeneath::new(fd, access))?)
}
