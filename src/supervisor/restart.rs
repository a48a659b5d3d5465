//! What the end of a run means under a restart policy: a pure function, so
//! every policy x exit kind x retry count is unit-tested without a process.
//!
//! DESIGN.md: `on-failure` restarts after a non-zero exit, a death by a
//! signal berth did not send, or an exit berth could not observe (a failed
//! `wait()`); `always` also after exit 0. The delay doubles from `backoff`
//! up to [`MAX_BACKOFF`]; `max_retries` automatic restarts are allowed, then
//! the backend is `failed`.
//!
//! Health (v2) adds two endings decided by the same rule: a run found
//! unhealthy is a failure (berth stopped it, as for a crash: `on-failure`
//! and `always` restart it, and `never` leaves it `failed`, not `exited`),
//! and an exit the backend announced with sd_notify `STOPPING=1` is not one
//! (only `always` restarts it).

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::manifest::{RestartPolicy, RestartSpec};

/// The longest backoff between automatic restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a backend's leader ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderExit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it (the raw number, named by [`LeaderExit::signal_name`]).
    Signal(i32),
    /// `wait()` failed: the outcome is unknown, which counts as a failure.
    Unknown(String),
}

impl LeaderExit {
    /// From an `ExitStatus` (or the error `wait()` returned).
    pub fn from_wait(status: std::io::Result<std::process::ExitStatus>) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => Self::Code(code),
                (None, Some(sig)) => Self::Signal(sig),
                _ => Self::Unknown(format!("unrecognised exit status {s}")),
            },
            Err(e) => Self::Unknown(e.to_string()),
        }
    }

    /// Anything but exit 0.
    pub fn is_failure(&self) -> bool {
        *self != Self::Code(0)
    }

    /// The exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            Self::Code(c) => Some(*c),
            _ => None,
        }
    }

    /// `"SIGKILL"` (or `"signal 64"` for a number nix does not name).
    pub fn signal_name(&self) -> Option<String> {
        match self {
            Self::Signal(sig) => Some(
                Signal::try_from(*sig)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| format!("signal {sig}")),
            ),
            _ => None,
        }
    }
}

/// Why a run ended, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The leader ended by itself (not by a stop berth sent).
    Exited(LeaderExit),
    /// The leader ended after announcing it (sd_notify `STOPPING=1`): the
    /// backend's own decision, whatever its code.
    Announced(LeaderExit),
    /// Its health checks failed (or a heartbeat was missed) and berth
    /// stopped its group; the error says why.
    Unhealthy(String),
}

impl Ending {
    fn is_failure(&self) -> bool {
        match self {
            Self::Exited(exit) => exit.is_failure(),
            Self::Announced(_) => false,
            Self::Unhealthy(_) => true,
        }
    }
}

/// What to do after a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Restart after `delay`; this is automatic restart number `attempt`.
    Restart { attempt: u32, delay: Duration },
    /// The policy wanted a restart but the retries are used up: `failed`.
    GiveUp,
    /// The policy does not restart: `exited`.
    Settle,
    /// The policy does not restart a failure that is not an exit (an
    /// unhealthy run under `never`): `failed`, with the run's error.
    Fail,
}

/// `retries` automatic restarts have happened since the count was last
/// reset (a user start, 10 s up, or ready).
pub fn decide(spec: &RestartSpec, ending: &Ending, retries: u32) -> Decision {
    let wants = match spec.policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => ending.is_failure(),
        RestartPolicy::Always => true,
    };
    if !wants {
        return match ending {
            Ending::Unhealthy(_) => Decision::Fail,
            Ending::Exited(_) | Ending::Announced(_) => Decision::Settle,
        };
    }
    if retries >= spec.max_retries {
        return Decision::GiveUp;
    }
    let attempt = retries + 1;
    let factor = 1u32 << (attempt - 1).min(16);
    Decision::Restart {
        attempt,
        delay: spec.backoff.saturating_mul(factor).min(MAX_BACKOFF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: RestartPolicy, max_retries: u32) -> RestartSpec {
        RestartSpec {
            policy,
            max_retries,
            backoff: Duration::from_secs(1),
        }
    }

    fn exits() -> [LeaderExit; 4] {
        [
            LeaderExit::Code(0),
            LeaderExit::Code(3),
            LeaderExit::Signal(libc::SIGSEGV),
            LeaderExit::Unknown("ECHILD".into()),
        ]
    }

    fn endings() -> Vec<Ending> {
        let mut all: Vec<Ending> = exits().into_iter().map(Ending::Exited).collect();
        all.extend(exits().into_iter().map(Ending::Announced));
        all.push(Ending::Unhealthy("health check failed 3 times: x".into()));
        all
    }

    #[test]
    fn every_policy_ending_and_retry_count() {
        for policy in [
            RestartPolicy::Never,
            RestartPolicy::OnFailure,
            RestartPolicy::Always,
        ] {
            for ending in endings() {
                for max in [0, 1, 3] {
                    for retries in 0..=4 {
                        let s = spec(policy, max);
                        let got = decide(&s, &ending, retries);
                        let failure = match &ending {
                            Ending::Exited(exit) => *exit != LeaderExit::Code(0),
                            Ending::Announced(_) => false,
                            Ending::Unhealthy(_) => true,
                        };
                        let wants = match policy {
                            RestartPolicy::Never => false,
                            RestartPolicy::OnFailure => failure,
                            RestartPolicy::Always => true,
                        };
                        let want = if !wants {
                            match ending {
                                Ending::Unhealthy(_) => Decision::Fail,
                                _ => Decision::Settle,
                            }
                        } else if retries >= max {
                            Decision::GiveUp
                        } else {
                            Decision::Restart {
                                attempt: retries + 1,
                                delay: Duration::from_secs(1 << retries),
                            }
                        };
                        assert_eq!(
                            got, want,
                            "{policy:?} {ending:?} max {max} retries {retries}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_unhealthy_run_is_restarted_like_a_crash_and_never_settles() {
        let sick = Ending::Unhealthy("watchdog: no heartbeat for 2s".into());
        let crash = Ending::Exited(LeaderExit::Signal(libc::SIGSEGV));
        for policy in [RestartPolicy::OnFailure, RestartPolicy::Always] {
            for retries in 0..=4 {
                let s = spec(policy, 3);
                assert_eq!(decide(&s, &sick, retries), decide(&s, &crash, retries));
            }
        }
        // Under `never` a crash is only `exited`; an unhealthy run is `failed`.
        let never = spec(RestartPolicy::Never, 3);
        assert_eq!(decide(&never, &crash, 0), Decision::Settle);
        assert_eq!(decide(&never, &sick, 0), Decision::Fail);
        // Announced: `on-failure` lets even a non-zero code rest.
        let on_failure = spec(RestartPolicy::OnFailure, 3);
        assert_eq!(
            decide(&on_failure, &Ending::Announced(LeaderExit::Code(1)), 0),
            Decision::Settle
        );
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let s = spec(RestartPolicy::Always, 100);
        let delays: Vec<u64> = (0..8)
            .map(
                |r| match decide(&s, &Ending::Exited(LeaderExit::Code(1)), r) {
                    Decision::Restart { delay, .. } => delay.as_secs(),
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        // A huge retry count neither overflows nor panics.
        assert!(matches!(
            decide(&s, &Ending::Exited(LeaderExit::Code(1)), 99),
            Decision::Restart {
                delay: MAX_BACKOFF,
                ..
            }
        ));
    }

    #[test]
    fn failed_wait_is_a_failure_not_exit_zero() {
        let e = LeaderExit::from_wait(Err(std::io::Error::from_raw_os_error(libc::ECHILD)));
        assert!(e.is_failure());
        assert_eq!(e.code(), None);
        let s = spec(RestartPolicy::OnFailure, 3);
        assert!(matches!(
            decide(&s, &Ending::Exited(e), 0),
            Decision::Restart { attempt: 1, .. }
        ));
    }

    #[test]
    fn signal_names() {
        assert_eq!(
            LeaderExit::Signal(9).signal_name().as_deref(),
            Some("SIGKILL")
        );
        assert_eq!(LeaderExit::Code(0).signal_name(), None);
    }
}
