//! A private desktop session for tray tests: the X display of the
//! environment (run the tests under `xvfb-run -a`) and a session bus of our
//! own (`dbus-daemon --session`), so every test has its own
//! StatusNotifierWatcher and tests can run in parallel.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running private session bus; killed on drop.
pub struct Desktop {
    daemon: Child,
    pub bus: String,
    pub display: String,
}

impl Desktop {
    /// `None` (after a loud message) when there is no display or no
    /// dbus-daemon here; under `CI=true` that is a failure instead.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, &["--session"])
    }

    /// A session bus that activates nothing: its configuration lists no
    /// service folders, so a name is owned only by what the test starts
    /// (with dunst installed, a default session bus would start one itself).
    pub fn start_bare(test: &str, dir: &std::path::Path) -> Option<Self> {
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        )
        .unwrap();
        let flag = format!("--config-file={}", config.display());
        Self::start_with(test, &[flag.as_str()])
    }

    fn start_with(test: &str, bus_args: &[&str]) -> Option<Self> {
        let skip = |why: &str| {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "{test}: cannot run on CI: {why}");
            eprintln!(
                "\n*** SKIPPED {test}: {why}.\n*** Run: dbus-run-session -- xvfb-run -a cargo test --test it tray\n"
            );
            None
        };
        let Some(display) = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()) else {
            return skip("no DISPLAY (run under xvfb-run -a)");
        };
        let mut daemon = match Command::new("dbus-daemon")
            .args(bus_args)
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => return skip(&format!("cannot run dbus-daemon: {e}")),
        };
        let mut bus = String::new();
        let stdout = daemon.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut bus)
            .expect("dbus-daemon prints its address");
        let bus = bus.trim().to_owned();
        assert!(!bus.is_empty(), "dbus-daemon printed no address");
        Some(Self {
            daemon,
            bus,
            display,
        })
    }

    /// A command that runs inside this desktop session.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("NO_AT_BRIDGE", "1")
            .env_remove("WAYLAND_DISPLAY");
        cmd
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
