//! CPU and memory of each running backend, summed over its process group,
//! sampled only while someone looks.
//!
//! ## Why on demand
//!
//! The figures are read by two faces only: a `status` request and a tray
//! submenu being shown (its `PID · up · MB` line). Sampling once a second
//! while anything ran cost 230 ms of CPU per 30 s for 100 backends (a /proc
//! pass, a snapshot for every subscriber, a tray relabel each second) for
//! figures nobody read. So nothing samples unless asked:
//!
//! - [`Metrics::look`] (every `status` request) samples at once and answers
//!   when the board shows the result, then keeps sampling once a second for
//!   [`LINGER`], so `watch berth status` reads live figures;
//! - [`Metrics::watch`] (the tray, while a backend submenu is open) samples
//!   at once and then once a second until it is closed, so the open menu's
//!   uptime and memory move.
//!
//! A sample is one pass over /proc on a blocking thread (it reads every
//! process's stat file: milliseconds with many processes, never on a
//! runtime worker). Looks closer than [`MIN_GAP`] to the last sample share
//! it: a 10 ms clock tick over a shorter window would make CPU figures noise.
//!
//! ## What the CPU figure means
//!
//! The CPU time the group used since the previous sample over the wall time
//! since then; for a group never sampled before, since its leader started
//! (as `ps` does). While someone keeps looking that is the last second; a
//! single `status` after a quiet hour reads the hour's average. RSS is
//! always current. Everything comes from the one stat file per process
//! (pgrp, state, utime, stime, starttime, rss): sysinfo, used before, needs
//! two refreshes of a process for a CPU figure (the first reads 0 %) and
//! reads two more files per process than the pgrp scan already does.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::board::Usage;
use super::shared::Shared;

/// How often figures are refreshed while someone watches.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long a `status` keeps the figures live after it.
pub const LINGER: Duration = Duration::from_secs(10);
/// Looks within this of the last sample are answered from it.
pub const MIN_GAP: Duration = Duration::from_millis(250);

enum Ask {
    Look(oneshot::Sender<()>),
    Watch(bool),
}

/// The way to the metrics task; cheap to clone.
#[derive(Clone)]
pub struct Metrics(mpsc::UnboundedSender<Ask>);

impl Metrics {
    /// Starts the task; it ends when the supervisor is dropped.
    pub fn spawn(shared: Weak<Shared>) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), run(shared, rx))
    }

    /// Samples now (or reuses a sample younger than [`MIN_GAP`]) and returns
    /// once the board shows it; figures stay live for [`LINGER`].
    pub async fn look(&self) {
        let (tx, rx) = oneshot::channel();
        if self.0.send(Ask::Look(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// `true` while a face shows the figures (the tray's open submenu):
    /// sampled once a second until the matching `false`. Calls nest.
    pub fn watch(&self, on: bool) {
        let _ = self.0.send(Ask::Watch(on));
    }
}

async fn run(shared: Weak<Shared>, mut rx: mpsc::UnboundedReceiver<Ask>) {
    let mut sampler = Some(Sampler::default());
    let mut watchers: u32 = 0;
    let mut linger_until: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    loop {
        let live = watchers > 0 || linger_until.is_some_and(|t| t > Instant::now());
        let tick = last.map(|at| at + INTERVAL).filter(|_| live);
        let mut acks = Vec::new();
        let mut wanted = false;
        let first = tokio::select! {
            r = rx.recv() => match r {
                Some(r) => Some(r),
                None => return,
            },
            () = crate::timer::sleep_until(tick) => {
                wanted = true;
                None
            }
        };
        // Requests queued meanwhile share one sample.
        let mut next = first;
        while let Some(request) = next.take().or_else(|| rx.try_recv().ok()) {
            match request {
                Ask::Look(ack) => {
                    acks.push(ack);
                    linger_until = Some(Instant::now() + LINGER);
                }
                Ask::Watch(true) => {
                    watchers += 1;
                    wanted = true;
                }
                Ask::Watch(false) => watchers = watchers.saturating_sub(1),
            }
        }
        let fresh = last.is_some_and(|at| at.elapsed() < MIN_GAP);
        if (wanted || !acks.is_empty()) && !fresh {
            let Some(groups) = shared.upgrade().map(|s| s.groups.all()) else {
                return;
            };
            let mut s = sampler.take().unwrap_or_default();
            let (s, usage) = tokio::task::spawn_blocking(move || {
                let usage = s.sample(&groups);
                (s, usage)
            })
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "process metrics failed");
                (Sampler::default(), HashMap::new())
            });
            sampler = Some(s);
            last = Some(Instant::now());
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut board = shared.lock_board();
            board.usage = usage;
            shared.publish(&board);
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// What the previous sample saw of each group, for CPU deltas.
#[derive(Default)]
struct Sampler {
    groups: HashMap<i32, Seen>,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Seen {
    at: std::time::Instant,
    /// pid -> (starttime, utime + stime), both in clock ticks; the start
    /// time tells a reused pid from the process seen before.
    ticks: HashMap<i32, (u64, u64)>,
}

/// One process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Stat {
    state: char,
    pgrp: i32,
    /// utime + stime, clock ticks.
    cpu: u64,
    /// Clock ticks after boot.
    start: u64,
    /// Resident pages.
    rss: u64,
}

impl Sampler {
    /// `(cpu %, rss bytes)` of every group in `groups` that has a live
    /// member; forgets groups that are gone.
    #[cfg(target_os = "linux")]
    fn sample(&mut self, groups: &[i32]) -> HashMap<i32, Usage> {
        let hz = sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap_or(100) as f64;
        let page = sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap_or(4096);
        let members = scan(groups);
        let now = std::time::Instant::now();
        let boot_s = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok());
        let mut out = HashMap::new();
        let mut seen = HashMap::new();
        for &pgid in groups {
            let procs: Vec<&(i32, Stat)> = members.iter().filter(|(_, s)| s.pgrp == pgid).collect();
            if procs.is_empty() {
                continue;
            }
            let before = self.groups.get(&pgid);
            let mut used = 0u64;
            for (pid, stat) in &procs {
                let was = before
                    .and_then(|b| b.ticks.get(pid))
                    .filter(|(start, _)| *start == stat.start)
                    .map_or(0, |(_, cpu)| *cpu);
                used += stat.cpu.saturating_sub(was);
            }
            let window_s = match before {
                Some(b) => now.duration_since(b.at).as_secs_f64(),
                // Never sampled: since the oldest member started.
                None => {
                    let oldest = procs.iter().map(|(_, s)| s.start).min().unwrap_or(0);
                    boot_s.map_or(0.0, |b| b - oldest as f64 / hz)
                }
            };
            let cpu = if window_s > 0.0 {
                used as f64 / hz / window_s * 100.0
            } else {
                0.0
            };
            let rss = procs.iter().map(|(_, s)| s.rss * page).sum();
            out.insert(pgid, (cpu, rss));
            seen.insert(
                pgid,
                Seen {
                    at: now,
                    ticks: procs.iter().map(|(p, s)| (*p, (s.start, s.cpu))).collect(),
                },
            );
        }
        self.groups = seen;
        out
    }

    #[cfg(not(target_os = "linux"))]
    fn sample(&mut self, _groups: &[i32]) -> HashMap<i32, Usage> {
        HashMap::new()
    }
}

#[cfg(target_os = "linux")]
fn sysconf(var: nix::unistd::SysconfVar) -> Option<u64> {
    nix::unistd::sysconf(var)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|&v| v > 0)
}

/// Every live (not zombie) process of one of `groups`, with its stat.
#[cfg(target_os = "linux")]
fn scan(groups: &[i32]) -> Vec<(i32, Stat)> {
    let mut out = Vec::new();
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
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(stat) = parse_stat(&text)
            && stat.state != 'Z'
            && groups.contains(&stat.pgrp)
        {
            out.push((pid, stat));
        }
    }
    out
}

/// The fields of `/proc/<pid>/stat` that metrics use (proc(5)).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_stat(text: &str) -> Option<Stat> {
    // The command name is in parentheses and may contain anything: the
    // fields start after the last ')', at field 3 (state).
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
    Some(Stat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(5 - 3)?.parse().ok()?,
        cpu: num(14)? + num(15)?,
        start: num(22)?,
        rss: num(24)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces_and_parentheses() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 1 0 123456 9000000 2048 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                pgrp: 4242,
                cpu: 300,
                start: 123456,
                rss: 2048,
            })
        );
        assert_eq!(parse_stat("4242 (cut"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_group_is_sampled_with_its_memory() {
        let me = nix::unistd::getpgrp().as_raw();
        let mut sampler = Sampler::default();
        let usage = sampler.sample(&[me]);
        let (cpu, rss) = usage[&me];
        assert!(rss > 1_000_000, "rss {rss}");
        assert!(cpu >= 0.0);
        // A second sample measures from the first.
        let again = sampler.sample(&[me]);
        assert!(again.contains_key(&me));
        assert!(
            sampler.groups[&me]
                .ticks
                .contains_key(&(std::process::id() as i32))
        );
    }
}
