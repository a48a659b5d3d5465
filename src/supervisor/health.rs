//! Health after ready: the `http`/`tcp` check runner, the watchdog clock,
//! and the [`Monitor`] a run holds from `running` on.
//!
//! Readiness says a backend came up; these say it still works. A
//! [`Checker`] task runs one check every `interval` (each within `timeout`)
//! and reports a [`Finding`]; `failures` consecutive failures make the
//! backend unhealthy. A [`Watchdog`] is only a deadline the job sleeps on,
//! moved by each sd_notify `WATCHDOG=1`. A monitor exists only in a running
//! run whose definition has `health`: without one nothing here runs, and
//! with one the only timers are the checks' own.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::ready;
use crate::manifest::health::{HealthCheck, HealthSpec};
use crate::vars::{NotKnown, Values};

/// What one check found, as the job acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The check passed (and the failure count is back to 0).
    Healthy,
    /// The check failed `count` times in a row, fewer than `of`.
    Failing { count: u32, of: u32, reason: String },
    /// `of` failures in a row: stop the group, apply the restart policy.
    Unhealthy { error: String },
}

/// Consecutive failures: the pure part of the checker.
#[derive(Debug, Clone)]
pub struct Tally {
    failures: u32,
    limit: u32,
}

impl Tally {
    pub fn new(limit: u32) -> Self {
        Self {
            failures: 0,
            limit: limit.max(1),
        }
    }

    /// Counts one check's result.
    pub fn record(&mut self, result: Result<(), String>) -> Finding {
        match result {
            Ok(()) => {
                self.failures = 0;
                Finding::Healthy
            }
            Err(reason) => {
                self.failures += 1;
                if self.failures >= self.limit {
                    Finding::Unhealthy {
                        error: format!("health check failed {} times: {reason}", self.failures),
                    }
                } else {
                    Finding::Failing {
                        count: self.failures,
                        of: self.limit,
                        reason,
                    }
                }
            }
        }
    }
}

/// What to check, variables already expanded for this run.
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A GET of the URL with these headers (a header may hold the token).
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
    Tcp(String),
}

/// Without the headers' values: one may be the run's token.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", url)
                .field(
                    "headers",
                    &headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                )
                .finish(),
            Self::Tcp(addr) => f.debug_tuple("Tcp").field(addr).finish(),
        }
    }
}

impl Endpoint {
    async fn check(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Self::Http { url, headers } => ready::http_ok(url, headers, timeout).await,
            Self::Tcp(addr) => ready::tcp_ok(addr, timeout).await,
        }
    }
}

/// The running check task of one run; dropping it stops the checks.
#[derive(Debug)]
pub struct Checker {
    rx: mpsc::Receiver<Finding>,
    task: JoinHandle<()>,
}

impl Checker {
    /// Checks `target` every `interval` (the first one `interval` after now).
    /// Needs a tokio runtime.
    pub fn start(target: Endpoint, interval: Duration, timeout: Duration, failures: u32) -> Self {
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(async move {
            let mut tally = Tally::new(failures);
            let mut next = Instant::now() + interval;
            loop {
                tokio::time::sleep_until(next).await;
                let verdict = tally.record(target.check(timeout).await);
                let last = matches!(verdict, Finding::Unhealthy { .. });
                if tx.send(verdict).await.is_err() || last {
                    return;
                }
                // A check slower than the interval delays the next one
                // instead of letting them pile up.
                next = (next + interval).max(Instant::now());
            }
        });
        Self { rx, task }
    }

    /// The next verdict; `None` after `Unhealthy`.
    pub async fn next(&mut self) -> Option<Finding> {
        self.rx.recv().await
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The sd_notify watchdog of one run: a heartbeat is due every `period`.
#[derive(Debug, Clone)]
pub struct Watchdog {
    period: Duration,
    due: Instant,
}

impl Watchdog {
    /// Armed at `now` (the moment the backend became running).
    pub fn new(period: Duration, now: Instant) -> Self {
        Self {
            period,
            due: now + period,
        }
    }

    /// A `WATCHDOG=1` arrived.
    pub fn beat(&mut self, now: Instant) {
        self.due = now + self.period;
    }

    /// When a missing heartbeat becomes a failure.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// The error recorded when the heartbeat is missed.
    pub fn error(&self) -> String {
        format!(
            "watchdog: no heartbeat for {}",
            crate::human::as_written(self.period)
        )
    }
}

/// The health of one running run: what watches it and what it found.
#[derive(Debug)]
pub struct Monitor {
    watch: Watch,
    /// `None` until the first check or heartbeat; then whether it passed.
    pub healthy: Option<bool>,
    /// `(count, of)` while checks fail but fewer than `of` times in a row.
    pub failing: Option<(u32, u32)>,
}

#[derive(Debug)]
enum Watch {
    Checks(Checker),
    Watchdog(Watchdog),
}

impl Monitor {
    /// Starts watching a run that has just become `running` at `now`;
    /// `values` expand the check's variables. Needs a tokio runtime.
    pub fn start(spec: &HealthSpec, values: &Values<'_>, now: Instant) -> Result<Self, NotKnown> {
        let watch = match &spec.check {
            HealthCheck::Watchdog(period) => Watch::Watchdog(Watchdog::new(*period, now)),
            HealthCheck::Http(t) => Watch::Checks(Checker::start(
                Endpoint::Http {
                    url: t.expand(values)?,
                    headers: spec
                        .headers
                        .iter()
                        .map(|(name, value)| Ok((name.clone(), value.expand(values)?)))
                        .collect::<Result<_, NotKnown>>()?,
                },
                spec.interval,
                spec.timeout,
                spec.failures,
            )),
            HealthCheck::Tcp(t) => Watch::Checks(Checker::start(
                Endpoint::Tcp(t.expand(values)?),
                spec.interval,
                spec.timeout,
                spec.failures,
            )),
        };
        Ok(Self {
            watch,
            healthy: None,
            failing: None,
        })
    }

    /// The next finding: a check's verdict, or a missed heartbeat (as
    /// [`Finding::Unhealthy`]). Never returns once the checks have ended.
    pub async fn next(&mut self) -> Finding {
        match &mut self.watch {
            Watch::Checks(c) => match c.next().await {
                Some(v) => v,
                None => std::future::pending().await,
            },
            Watch::Watchdog(w) => {
                tokio::time::sleep_until(w.due()).await;
                Finding::Unhealthy { error: w.error() }
            }
        }
    }

    /// Keeps what a verdict says for the status; true when that changed.
    pub fn record(&mut self, verdict: &Finding) -> bool {
        let (healthy, failing) = match verdict {
            Finding::Healthy => (Some(true), None),
            Finding::Failing { count, of, .. } => (Some(false), Some((*count, *of))),
            Finding::Unhealthy { .. } => (Some(false), None),
        };
        let changed = (healthy, failing) != (self.healthy, self.failing);
        (self.healthy, self.failing) = (healthy, failing);
        changed
    }

    /// A `WATCHDOG=1` arrived at `now`; true when the status changed (the
    /// first heartbeat). A backend with http/tcp checks ignores heartbeats.
    pub fn beat(&mut self, now: Instant) -> bool {
        let Watch::Watchdog(w) = &mut self.watch else {
            return false;
        };
        w.beat(now);
        self.record(&Finding::Healthy)
    }

    /// Does this monitor run the sd_notify watchdog?
    pub fn is_watchdog(&self) -> bool {
        matches!(self.watch, Watch::Watchdog(_))
    }
}

/// `health: ok` / `health: failing 2 of 3` for the tray.
pub fn describe(healthy: Option<bool>, failing: Option<(u32, u32)>) -> Option<String> {
    match (healthy, failing) {
        (_, Some((count, of))) => Some(format!("health: failing {count} of {of}")),
        (Some(true), None) => Some("health: ok".to_owned()),
        (Some(false), None) => Some("health: failing".to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_make_it_unhealthy() {
        let mut t = Tally::new(3);
        assert_eq!(t.record(Ok(())), Finding::Healthy);
        assert_eq!(
            t.record(Err("a".into())),
            Finding::Failing {
                count: 1,
                of: 3,
                reason: "a".into()
            }
        );
        assert!(matches!(
            t.record(Err("b".into())),
            Finding::Failing { count: 2, .. }
        ));
        // A pass in between starts the count again.
        assert_eq!(t.record(Ok(())), Finding::Healthy);
        t.record(Err("x".into()));
        t.record(Err("y".into()));
        assert_eq!(
            t.record(Err("GET http://x/: HTTP 503".into())),
            Finding::Unhealthy {
                error: "health check failed 3 times: GET http://x/: HTTP 503".into()
            }
        );
        let mut once = Tally::new(1);
        assert!(matches!(
            once.record(Err("z".into())),
            Finding::Unhealthy { .. }
        ));
    }

    #[test]
    fn watchdog_moves_with_each_heartbeat() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_secs(2), t0);
        assert_eq!(w.due(), t0 + Duration::from_secs(2));
        w.beat(t0 + Duration::from_secs(1));
        assert_eq!(w.due(), t0 + Duration::from_secs(3));
        assert_eq!(w.error(), "watchdog: no heartbeat for 2s");
    }

    #[test]
    fn tray_words() {
        assert_eq!(describe(Some(true), None).as_deref(), Some("health: ok"));
        assert_eq!(
            describe(Some(false), Some((2, 3))).as_deref(),
            Some("health: failing 2 of 3")
        );
        assert_eq!(describe(None, None), None);
    }

    async fn next(c: &mut Checker) -> Option<Finding> {
        tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn checker_reports_each_interval_and_stops_at_unhealthy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut c = Checker::start(
            Endpoint::Tcp(addr.clone()),
            Duration::from_millis(20),
            Duration::from_secs(1),
            2,
        );
        assert_eq!(next(&mut c).await, Some(Finding::Healthy));
        drop(listener);
        assert!(matches!(
            next(&mut c).await,
            Some(Finding::Failing {
                count: 1,
                of: 2,
                ..
            })
        ));
        let Some(Finding::Unhealthy { error }) = next(&mut c).await else {
            panic!("expected unhealthy");
        };
        assert!(
            error.starts_with(&format!("health check failed 2 times: tcp {addr}: ")),
            "{error}"
        );
        assert_eq!(next(&mut c).await, None);
    }
}
