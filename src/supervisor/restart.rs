//! What the end of a run means under a restart policy: a pure function, so
//! every policy x exit kind x retry count is unit-tested without a process.
//!
//! DESIGN.md: `on-failure` restarts after a non-zero exit, a death by a
//! signal berth did not send, or an exit berth could not observe (a failed
//! `wait()`); `always` also after exit 0. The delay doubles from `backoff`
//! up to [`MAX_BACKOFF`]; `max_retries` automatic restarts are allowed, then
//! the backend is `failed`.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::manifest::{RestartPolicy, RestartSpec};

/// The longest backoff between automatic restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a backend's leader ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it (the raw number, named by [`Exit::signal_name`]).
    Signal(i32),
    /// `wait()` failed: the outcome is unknown, which counts as a failure.
    Unknown(String),
}

impl Exit {
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

/// Why a run ended, as the policy sees it. The health checks add their
/// failure here as a second variant (`Unhealthy`), decided by the same rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The leader ended by itself (not by a stop berth sent).
    Exited(Exit),
}

impl Ending {
    fn is_failure(&self) -> bool {
        match self {
            Self::Exited(exit) => exit.is_failure(),
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
        return Decision::Settle;
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

    fn exits() -> [Exit; 4] {
        [
            Exit::Code(0),
            Exit::Code(3),
            Exit::Signal(libc::SIGSEGV),
            Exit::Unknown("ECHILD".into()),
        ]
    }

    #[test]
    fn every_policy_exit_kind_and_retry_count() {
        for policy in [
            RestartPolicy::Never,
            RestartPolicy::OnFailure,
            RestartPolicy::Always,
        ] {
            for exit in exits() {
                for max in [0, 1, 3] {
                    for retries in 0..=4 {
                        let s = spec(policy, max);
                        let got = decide(&s, &Ending::Exited(exit.clone()), retries);
                        let wants = match policy {
                            RestartPolicy::Never => false,
                            RestartPolicy::OnFailure => exit != Exit::Code(0),
                            RestartPolicy::Always => true,
                        };
                        let want = if !wants {
                            Decision::Settle
                        } else if retries >= max {
                            Decision::GiveUp
                        } else {
                            Decision::Restart {
                                attempt: retries + 1,
                                delay: Duration::from_secs(1 << retries),
                            }
                        };
                        assert_eq!(got, want, "{policy:?} {exit:?} max {max} retries {retries}");
                    }
                }
            }
        }
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let s = spec(RestartPolicy::Always, 100);
        let delays: Vec<u64> = (0..8)
            .map(|r| match decide(&s, &Ending::Exited(Exit::Code(1)), r) {
                Decision::Restart { delay, .. } => delay.as_secs(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        // A huge retry count neither overflows nor panics.
        assert!(matches!(
            decide(&s, &Ending::Exited(Exit::Code(1)), 99),
            Decision::Restart {
                delay: MAX_BACKOFF,
                ..
            }
        ));
    }

    #[test]
    fn failed_wait_is_a_failure_not_exit_zero() {
        let e = Exit::from_wait(Err(std::io::Error::from_raw_os_error(libc::ECHILD)));
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
        assert_eq!(Exit::Signal(9).signal_name().as_deref(), Some("SIGKILL"));
        assert_eq!(Exit::Code(0).signal_name(), None);
    }
}
