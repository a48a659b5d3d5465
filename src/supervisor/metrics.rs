//! CPU and memory of each running backend, summed over its process group.
//!
//! About once a second while something runs, one pass over /proc finds the
//! members of every live group, sysinfo refreshes only those processes, and
//! the sums replace the board's usage overlay (the jobs' statuses stay the
//! jobs'; the publish also refreshes uptimes). With
//! nothing running the task waits on a `Notify`: an idle berth never wakes.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::sync::Notify;

use super::Shared;

pub const INTERVAL: Duration = Duration::from_secs(1);

/// Runs until the supervisor is dropped.
pub async fn run(shared: Weak<Shared>, wake: Arc<Notify>) {
    let mut system = match System::new() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no process metrics");
            None
        }
    };
    loop {
        let groups = match shared.upgrade() {
            Some(s) => s.groups.all(),
            None => return,
        };
        if groups.is_empty() {
            wake.notified().await;
            continue;
        }
        let sums = system
            .as_mut()
            .map(|sys| measure(sys, &groups))
            .unwrap_or_default();
        match shared.upgrade() {
            Some(s) => {
                let mut board = s.lock_board();
                board.usage = sums
                    .into_iter()
                    .map(|(pgid, (cpu, rss))| (pgid, (f64::from(cpu), rss)))
                    .collect();
                s.publish(&board);
            }
            None => return,
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// `(cpu %, rss bytes)` per group.
fn measure(sys: &mut System, groups: &[i32]) -> HashMap<i32, (f32, u64)> {
    let members = group_members(groups);
    let pids: Vec<Pid> = members.keys().map(|&p| Pid::from_u32(p as u32)).collect();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&pids),
        true,
        ProcessRefreshKind::nothing().with_cpu().with_memory(),
    );
    let mut sums: HashMap<i32, (f32, u64)> = groups.iter().map(|&g| (g, (0.0, 0))).collect();
    for (pid, pgid) in members {
        if let (Some(p), Some(sum)) = (sys.process(Pid::from_u32(pid as u32)), sums.get_mut(&pgid))
        {
            sum.0 += p.cpu_usage();
            sum.1 += p.memory();
        }
    }
    sums
}

/// pid -> pgid of every live process in one of `groups`.
#[cfg(target_os = "linux")]
fn group_members(groups: &[i32]) -> HashMap<i32, i32> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some((state, pgid)) = super::group::stat_of(pid)
            && state != 'Z'
            && groups.contains(&pgid)
        {
            out.insert(pid, pgid);
        }
    }
    out
}

#[cfg(not(target_os = "linux"))]
fn group_members(groups: &[i32]) -> HashMap<i32, i32> {
    groups.iter().map(|&g| (g, g)).collect()
}
