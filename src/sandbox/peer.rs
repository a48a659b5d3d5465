//! Is a control-socket peer part of a sandboxed backend?
//!
//! Landlock (up to ABI 7) does not govern connecting to a named Unix socket,
//! so a sandboxed backend can reach berth's control socket by path and
//! would otherwise be able to start, stop or reconfigure anything. The
//! socket asks the kernel who is calling (SO_PEERCRED: the peer's pid) and
//! refuses a process in a sandboxed backend's process group, or descended
//! from one: the parent chain is walked too, so a child that moved itself
//! into a new group (`setpgid`, `setsid`) is still caught while its parent
//! lives. A process that double-forks into a new session and whose parents
//! all exited is re-parented away and is out of reach of this check; that
//! limit is written in the README.

/// Longest parent chain followed (a loop guard; real chains are short).
const MAX_DEPTH: usize = 64;

/// The id of the sandboxed backend that `pid` belongs to, if any.
/// `sandboxed` holds each running sandboxed backend's process group (its
/// leader's pid) and id.
pub fn sandboxed_owner<'a>(pid: i32, sandboxed: &[(i32, &'a str)]) -> Option<&'a str> {
    if sandboxed.is_empty() {
        return None;
    }
    let owner = |pgid: i32| {
        sandboxed
            .iter()
            .find(|(g, _)| *g == pgid)
            .map(|(_, id)| *id)
    };
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        if current <= 1 {
            return None;
        }
        let (ppid, pgrp) = stat(current)?;
        if let Some(id) = owner(pgrp).or_else(|| owner(current)) {
            return Some(id);
        }
        current = ppid;
    }
    None
}

/// `(ppid, pgrp)` from `/proc/<pid>/stat` (the fields after the command
/// name, which may itself hold spaces and parentheses).
fn stat(pid: i32) -> Option<(i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((ppid, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_group_and_ancestors() {
        let me = std::process::id() as i32;
        let (parent, group) = stat(me).unwrap();
        assert_eq!(sandboxed_owner(me, &[]), None);
        assert_eq!(sandboxed_owner(me, &[(group, "g")]), Some("g"));
        assert_eq!(sandboxed_owner(me, &[(parent, "p")]), Some("p"));
        assert_eq!(sandboxed_owner(me, &[(-5, "x")]), None);
    }
}
