//! Starting a backend: verify, spawn into its own process group (registered
//! with the guardian before exec), wire the log pump and the readiness probe;
//! then readiness itself (`starting` -> `running`).

use std::process::Stdio;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::logs::{self, JsonLine, LogFile};
use super::super::{State, ready};
use super::{EventKind, Job, Live, RESET_AFTER};
use crate::integrity::{self, VerifyError};
use crate::manifest::Probe;
use crate::paths;

impl Job {
    /// Verifies and spawns the current definition. On failure the state says
    /// why (not-found, integrity-failed, failed) and the reason is returned.
    pub(super) fn launch(&mut self) -> Result<(), String> {
        let def = self.def.clone();
        let Some(exe) = def.executable.as_ref() else {
            return Err("no executable entry for this platform".into());
        };
        let verified = match integrity::verify(&exe.candidates, &exe.sha256) {
            Ok(v) => v,
            Err(e) => {
                let reason = e.to_string();
                let (state, path, verified) = match &e {
                    VerifyError::NotFound { .. } => (State::NotFound, None, None),
                    VerifyError::Mismatch { path, .. } | VerifyError::Io { path, .. } => {
                        (State::IntegrityFailed, Some(path.clone()), Some(false))
                    }
                };
                tracing::warn!(backend = %self.id, %reason, "not launched");
                self.update(|s| {
                    s.status.state = state;
                    s.status.path = path.map(|p| paths::shown(&p));
                    s.status.detail.verified = verified;
                    s.run_error = Some(reason.clone());
                });
                if state == State::IntegrityFailed {
                    self.emit(EventKind::LaunchFailed {
                        state,
                        reason: reason.clone(),
                    });
                }
                return Err(reason);
            }
        };
        // v2: the folder a onedir build loads later, checked after the executable.
        if let Some(files) = &exe.files
            && let Err(e) = crate::tree::check(verified.path(), files)
        {
            let reason = e.to_string();
            tracing::warn!(backend = %self.id, %reason, "not launched");
            let path = paths::shown(verified.path());
            self.update(|s| {
                s.status.state = State::IntegrityFailed;
                s.status.path = Some(path);
                s.status.detail.verified = Some(false);
                s.run_error = Some(reason.clone());
            });
            return Err(reason);
        }
        let log_path = paths::backend_log(&self.shared.config.log_dir, &self.id);
        let spawned = LogFile::open(
            &log_path,
            self.shared.config.log_max_size,
            self.shared.config.log_backups,
        )
        .map_err(|e| format!("cannot open log {}: {e}", log_path.display()))
        .and_then(|log| {
            let mut cmd = verified.command();
            // berth's own GTK settings (GDK_GL=disable...) are not the
            // backend's; the manifest's env can still set them.
            for key in crate::tray::env_overrides() {
                cmd.env_remove(key);
            }
            cmd.args(&def.args)
                .envs(&def.env)
                .current_dir(&def.workdir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(false);
            if let Some(link) = self.shared.guardian.as_ref() {
                let reg = link.registration(def.stop.signal, def.stop.timeout);
                // SAFETY: setpgid and the registration write are
                // async-signal-safe and allocate nothing.
                unsafe {
                    cmd.pre_exec(move || {
                        libc::setpgid(0, 0);
                        reg.write_in_child();
                        Ok(())
                    });
                }
            }
            cmd.spawn()
                .map(|child| (child, log))
                .map_err(|e| format!("cannot start {}: {e}", verified.path().display()))
        });
        let path = paths::shown(verified.path());
        drop(verified);
        let (mut child, log) = match spawned {
            Ok(x) => x,
            Err(reason) => {
                tracing::warn!(backend = %self.id, %reason, "spawn failed");
                self.update(|s| {
                    s.status.state = State::Failed;
                    s.run_error = Some(reason.clone());
                });
                self.emit(EventKind::LaunchFailed {
                    state: State::Failed,
                    reason: reason.clone(),
                });
                return Err(reason);
            }
        };
        let pid = child.id().unwrap_or(0);
        let pgid = pid as i32;
        self.shared.groups.insert(pgid, &self.id);
        let (json_tx, json_rx) = mpsc::channel(logs::JSON_QUEUE);
        let stderr = logs::StderrTail::default();
        let pump = match (child.stdout.take(), child.stderr.take()) {
            (Some(out), Some(err)) => tokio::spawn(logs::pump(
                self.id.clone(),
                out,
                err,
                log,
                json_tx,
                stderr.clone(),
            )),
            _ => tokio::spawn(async {}),
        };
        let now = Instant::now();
        let probe = match def.ready.as_ref().map(|r| &r.probe) {
            Some(Probe::Tcp(addr)) => Some(tokio::spawn(ready::poll_tcp(addr.clone()))),
            Some(Probe::Http(url)) => Some(tokio::spawn(ready::poll_http(url.clone()))),
            _ => None,
        };
        let state = if def.ready.is_some() {
            State::Starting
        } else {
            State::Running
        };
        self.live = Some(Live {
            _stdin: child.stdin.take(),
            child,
            reaped: None,
            pgid,
            def: def.clone(),
            json: Some(json_rx),
            pump,
            stderr,
            probe,
            ready_deadline: def.ready.as_ref().map(|r| now + r.timeout),
            reset_at: Some(now + RESET_AFTER),
        });
        tracing::info!(backend = %self.id, pid, path = %path, "started");
        let restarts = self.restarts;
        self.update(|s| {
            s.running_def = Some(def.clone());
            s.run_error = None;
            let st = &mut s.status;
            st.state = state;
            st.pid = Some(pid);
            st.path = Some(path);
            st.exit_code = None;
            st.signal = None;
            st.status_line = None;
            st.last_stderr = None;
            st.cpu_percent = None;
            st.rss_bytes = None;
            st.pending_restart = false;
            st.restarts = restarts;
            st.detail.verified = Some(true);
            st.detail.retry_at = None;
            st.detail.started_at = Some(now.into_std());
        });
        self.shared.metrics_wake.notify_one();
        Ok(())
    }

    pub(super) fn on_json(&mut self, line: JsonLine) {
        if let Some(serde_json::Value::String(status)) = line.get("status") {
            let status = status.clone();
            self.update(|s| s.status.status_line = Some(status));
        }
        let Some(live) = self.live.as_ref() else {
            return;
        };
        if let Some(Probe::StdoutJson(want)) = live.def.ready.as_ref().map(|r| &r.probe)
            && self.state() == State::Starting
            && ready::subset_match(&line, want)
        {
            self.mark_ready();
        }
    }

    pub(super) fn mark_ready(&mut self) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.ready_deadline = None;
        if let Some(p) = live.probe.take() {
            p.abort();
        }
        self.retries = 0;
        tracing::info!(backend = %self.id, "ready");
        self.update(|s| {
            if s.status.state == State::Starting {
                s.status.state = State::Running;
            }
            s.run_error = None;
        });
    }

    pub(super) fn on_ready_timeout(&mut self) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.ready_deadline = None;
        let timeout = live
            .def
            .ready
            .as_ref()
            .map(|r| r.timeout)
            .unwrap_or_default();
        let msg = format!("not ready after {}", ready::format_duration(timeout));
        tracing::warn!(backend = %self.id, "{msg}");
        self.update(|s| s.run_error = Some(msg));
    }
}
