//! Starting a backend: verify (hashing runs on a blocking thread, never on
//! the runtime's workers), spawn into its own session (its own process
//! group too, registered with the guardians before exec), wire the log pump,
//! the sd_notify socket and the readiness probe; then readiness itself
//! (`starting` -> `running`).

use std::io;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::events::EventKind;
use super::super::given::{self, Token};
use super::super::logs::{self, JsonLine, LogFile};
use super::super::ready;
use super::super::sd_notify::NotifySocket;
use super::super::talk::Link;
use super::launch_error::LaunchError;
use super::state::{Failure, Phase, Rest, Run};
use super::{Job, RESET_AFTER};
use crate::integrity::{self, Verified, VerifyError};
use crate::manifest::health::HealthCheck;
use crate::manifest::{Probe, expand_port};
use crate::paths;
use crate::status::State;

impl Job {
    /// Verifies and spawns the current definition, with `extra` appended to
    /// its `args`. The phase becomes starting or running, or says why not
    /// (not-found, integrity-failed, failed); either way one status is
    /// published.
    pub(super) async fn launch(&mut self, extra: Vec<String>) -> Result<(), Arc<LaunchError>> {
        let result = self.try_launch(extra).await.map_err(Arc::new);
        if let Err(e) = &result {
            tracing::warn!(backend = %self.id, reason = %e, "not launched");
            // What the desktop is told, when not the error itself.
            let mut told = None;
            let rest = match &**e {
                LaunchError::NoExecutable => Rest::Unsupported,
                LaunchError::Verify(
                    VerifyError::NotFound { .. } | VerifyError::IsFolder { .. },
                ) => Rest::NotFound(e.clone()),
                LaunchError::Tree(_) => {
                    self.verified = Some(false);
                    Rest::IntegrityFailed(None, e.clone())
                }
                LaunchError::Unpinned {
                    source: VerifyError::Mismatch { path, .. },
                    ..
                } => {
                    // The desktop is told which file, in words, not two
                    // 64-digit hashes.
                    told = Some(format!(
                        "{} changed since it was pinned; run `berth pin {}` if this file is trusted",
                        paths::shown(path),
                        self.id
                    ));
                    self.verified = Some(false);
                    Rest::IntegrityFailed(Some(paths::shown(path)), e.clone())
                }
                LaunchError::Verify(
                    VerifyError::Mismatch { path, .. }
                    | VerifyError::Io { path, .. }
                    | VerifyError::Changed { path },
                ) => {
                    self.verified = Some(false);
                    Rest::IntegrityFailed(Some(paths::shown(path)), e.clone())
                }
                _ => Rest::Failed(Failure::Launch(e.clone())),
            };
            if matches!(rest, Rest::NotFound(_)) {
                self.verified = None;
            }
            // A refused launch berth was asked for still tells the desktop
            // when the bytes are wrong or the program cannot start at all.
            let notify = match &rest {
                Rest::IntegrityFailed(..) => Some(State::IntegrityFailed),
                Rest::Failed(_) => Some(State::Failed),
                _ => None,
            };
            let last_exit = self.phase.last_exit().cloned();
            self.phase = Phase::Idle { rest, last_exit };
            self.publish();
            if let Some(state) = notify {
                self.emit(EventKind::LaunchFailed {
                    state,
                    reason: told.unwrap_or_else(|| e.to_string()),
                });
            }
        }
        result
    }

    async fn try_launch(&mut self, extra: Vec<String>) -> Result<(), LaunchError> {
        let def = self.def.clone();
        let exe = def.executable.clone().ok_or(LaunchError::NoExecutable)?;
        let files = exe.files.clone();
        let verified: Verified =
            tokio::task::spawn_blocking(move || integrity::verify(&exe.candidates, &exe.sha256))
                .await
                .map_err(|e| LaunchError::Task(e.to_string()))?
                .map_err(|e| match e {
                    VerifyError::Mismatch { .. } => LaunchError::Unpinned {
                        id: self.id.to_string(),
                        source: e,
                    },
                    e => LaunchError::Verify(e),
                })?;
        // v2: the folder a onedir build loads later, checked after the
        // executable (off the runtime's workers too).
        if let Some(files) = files {
            let path = verified.path().to_path_buf();
            tokio::task::spawn_blocking(move || crate::tree::check(&path, &files))
                .await
                .map_err(|e| LaunchError::Task(e.to_string()))??;
        }
        self.verified = Some(true);
        // The sandbox's ruleset is built here, in berth, before the fork;
        // the child only restricts itself (see crate::sandbox).
        // Chosen for this run only (see `given`).
        let port = match def.port_auto {
            true => Some(given::free_port(self.last_port)?),
            false => None,
        };
        let token = match def.token {
            true => Some(Token::new()?),
            false => None,
        };
        // A sandbox with network rules lets the backend bind the port
        // chosen for it (`port: auto`), whatever else it lists.
        let sandbox = match def.sandbox.as_ref() {
            Some(spec) => {
                let mut spec = spec.clone();
                if let (Some(p), Some(net)) = (port, spec.network.as_mut()) {
                    net.bind.push(p);
                }
                Some(crate::sandbox::prepare(&spec, verified.path(), &[])?)
            }
            None => None,
        };
        let log_path = paths::backend_log(&self.shared.config.log_dir, &self.id);
        let log = LogFile::open(
            &log_path,
            self.shared.config.log_max_size,
            self.shared.config.log_backups,
        )
        .map_err(|source| LaunchError::Log {
            path: log_path.clone(),
            source,
        })?;
        // Spawning in a missing folder fails with ENOENT, which read as if
        // the executable were missing: name the folder instead.
        if let Some(problem) = def.workdir_problem() {
            return Err(LaunchError::Workdir(problem));
        }
        // Bound before the spawn, so it exists when the program looks.
        let notify = if def.uses_notify() {
            Some(NotifySocket::bind(
                &self.shared.config.notify_dir,
                &self.id,
            )?)
        } else {
            None
        };
        let mut cmd = verified.command();
        // berth's own GTK settings (GDK_GL=disable...) are not the
        // backend's; the manifest's env can still set them.
        for key in &self.shared.config.env_remove {
            cmd.env_remove(key);
        }
        // systemd's variables are berth's to give, never inherited (berth
        // itself may run under systemd). WATCHDOG_PID is never set: clients
        // would ignore the watchdog in a PyInstaller onefile's Python, which
        // is not the leader.
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(key);
        }
        if let Some(n) = notify.as_ref() {
            cmd.env("NOTIFY_SOCKET", n.path());
        }
        if let Some(HealthCheck::Watchdog(d)) = def.health.as_ref().map(|h| &h.check) {
            cmd.env("WATCHDOG_USEC", d.as_micros().to_string());
        }
        let with_port = |text: &String| port.map_or_else(|| text.clone(), |p| expand_port(text, p));
        let args: Vec<String> = def
            .args
            .iter()
            .map(with_port)
            .chain(extra.clone())
            .collect();
        cmd.args(&args)
            .envs(def.env.iter().map(|(k, v)| (k, with_port(v))))
            .current_dir(&def.workdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        // Its own session, not only its own group: a process can join any
        // group of its session (`setpgid`), so in berth's session a backend's
        // child could pass as another backend's group (the sd_notify sender
        // check, the control socket's peer check). The group id is then the
        // session id, the leader's pid. Then registered with the guardians.
        let reg = self
            .shared
            .guardian
            .as_ref()
            .map(|link| link.registration(def.stop.signal, def.stop.timeout));
        // SAFETY: setsid and the registration write are async-signal-safe
        // and allocate nothing (a raw OS error carries no message).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(reg) = &reg {
                    reg.write_in_child();
                }
                Ok(())
            });
        }
        // After the manifest's env: what berth chose for this run wins. A
        // token is never inherited (berth's own environment, another
        // launcher's) and never passed in argv, where `ps` shows it.
        cmd.env_remove("BERTH_TOKEN");
        if let Some(p) = port {
            cmd.env("PORT", p.to_string());
        }
        if let Some(t) = &token {
            cmd.env("BERTH_TOKEN", t.as_str());
        }
        // Before the exec hook `Verified::spawn` adds, which must stay last.
        if let Some(sandbox) = &sandbox {
            sandbox.configure(&mut cmd, def.env.contains_key("TMPDIR"));
        }
        let mut child = verified.spawn(&mut cmd).map_err(|source| {
            let (changed, _) = integrity::spawn_error(verified.path(), &source);
            if changed {
                LaunchError::Verify(VerifyError::Changed {
                    path: verified.path().to_owned(),
                })
            } else {
                LaunchError::Spawn {
                    path: verified.path().to_owned(),
                    source,
                }
            }
        })?;
        let path = paths::shown(verified.path());
        let Some(pid) = child.id() else {
            return Err(LaunchError::NoPid {
                path: verified.path().to_owned(),
            });
        };
        drop(verified);
        let pgid = pid as i32;
        self.shared.groups.insert(pgid, &self.id);
        if let Some(link) = self.shared.guardian.as_ref() {
            link.add(pgid, def.stop.signal, def.stop.timeout);
        }
        let talk = Link::start(&self.id, child.stdin.take());
        let (json_tx, json_rx) = mpsc::channel(logs::JSON_QUEUE);
        let probing = Arc::new(AtomicBool::new(matches!(
            def.ready.probe,
            Probe::StdoutJson(_)
        )));
        let json_out = logs::JsonOut {
            job: json_tx,
            probing: probing.clone(),
            replies: talk.replies(),
        };
        let (log_tx, log_error) = tokio::sync::watch::channel(None);
        let stderr = logs::StderrTail::default();
        let (dev, ino, size) = log.written_end();
        let feed = self
            .shared
            .feeds
            .writer(&self.id, pid, logs::feed::Position { dev, ino, size });
        let pump = match (child.stdout.take(), child.stderr.take()) {
            (Some(out), Some(err)) => {
                let report: logs::Report = Box::new(move |e| {
                    let _ = log_tx.send(e);
                });
                logs::Pump::spawn(
                    self.id.clone(),
                    out,
                    err,
                    log,
                    json_out,
                    report,
                    stderr.clone(),
                    feed,
                )
            }
            _ => logs::Pump::none(),
        };
        let now = Instant::now();
        let timeout = def.ready.timeout;
        let probe_for_run = def.ready.probe.for_run(port);
        let probe = match &probe_for_run {
            Probe::Tcp(addr) => Some(tokio::spawn(ready::poll_tcp(addr.clone(), timeout))),
            Probe::Http(url) => Some(tokio::spawn(ready::poll_http(url.clone(), timeout))),
            Probe::Uptime(d) if !d.is_zero() => Some(tokio::spawn(tokio::time::sleep(*d))),
            _ => None,
        };
        let at_once = def.ready.is_at_once();
        // The reader knows the group only now; a datagram sent before this
        // waits in the socket's queue.
        let notify = match notify.map(|n| n.listen(pgid, self.id.clone())) {
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                tracing::warn!(backend = %self.id, error = %e, "no sd_notify for this run");
                None
            }
            None => None,
        };
        let run = Run {
            talk,
            probing,
            extra,
            ready_json: None,
            port,
            token,
            ready_port: probe_for_run.port(),
            child,
            reaped: None,
            pid,
            pgid,
            def: def.clone(),
            path: path.clone(),
            started: now,
            json: Some(json_rx),
            pump,
            log_error,
            probe,
            ready_deadline: (!at_once).then_some(now + timeout),
            reset_at: Some(now + RESET_AFTER),
            error: None,
            sandbox: sandbox.map(|p| p.status().to_owned()),
            stderr,
            notify,
            health: None,
            announced_stop: false,
            earned_reset: false,
        };
        self.status_line = None;
        self.last_stderr = None;
        self.last_args = Some(args);
        self.last_port = port;
        self.phase = if at_once {
            Phase::Running(run)
        } else {
            Phase::Starting(run)
        };
        tracing::info!(backend = %self.id, pid, path = %path, "started");
        if at_once {
            self.start_health(None);
        }
        self.publish();
        Ok(())
    }

    pub(super) fn on_json(&mut self, line: JsonLine) {
        let mut changed = false;
        if let Some(serde_json::Value::String(status)) = line.get("status") {
            self.status_line = Some(status.clone());
            changed = true;
        }
        let matched = match &mut self.phase {
            Phase::Starting(run) => match &run.def.ready.probe {
                Probe::StdoutJson(want) if ready::subset_match(&line, want) => {
                    // Kept in the run and published with `running` in one
                    // status: whoever sees running sees the line.
                    run.ready_json = Some(line.clone());
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if matched {
            self.mark_ready(Some(&line));
        } else if changed {
            self.publish();
        }
    }

    /// `starting` -> `running` (also after the ready timeout: a late match
    /// still counts); the health checks start here. `line` is the stdout
    /// JSON object that matched, if that was the probe.
    pub(super) fn mark_ready(&mut self, line: Option<&JsonLine>) {
        let phase = std::mem::replace(&mut self.phase, Phase::stopped());
        let became = matches!(phase, Phase::Starting(_));
        self.phase = match phase {
            Phase::Starting(mut run) => {
                run.probing.store(false, Ordering::Release);
                run.ready_deadline = None;
                run.error = None;
                if let Some(p) = run.probe.take() {
                    p.abort();
                }
                run.earned_reset = true;
                tracing::info!(backend = %self.id, "ready");
                Phase::Running(run)
            }
            other => other,
        };
        if became {
            self.start_health(line);
        }
        self.publish();
    }

    pub(super) fn on_ready_timeout(&mut self) {
        let Phase::Starting(run) = &mut self.phase else {
            return;
        };
        run.ready_deadline = None;
        let timeout = run.def.ready.timeout;
        let msg = format!("not ready after {}", crate::human::as_written(timeout));
        tracing::warn!(backend = %self.id, "{msg}");
        run.error = Some(msg);
        self.publish();
    }
}
