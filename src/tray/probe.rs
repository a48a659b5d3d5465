//! Can a tray exist here? Checked before anything that panics instead of
//! failing: tao panics when GTK cannot start ("Failed to initialize gtk
//! backend") and libappindicator-sys panics when its library is missing.
//!
//! [`probe`] initialises GTK itself (exactly what tao does next, so the work
//! is not wasted), checks that a session bus answers, and dlopens the
//! appindicator library under the names libappindicator-sys tries.

/// Why berth runs headless; its `Display` is the one line printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrayUnavailable {
    #[error("no display: neither DISPLAY nor WAYLAND_DISPLAY is set")]
    NoDisplay,
    #[error("GTK cannot open the display {0}")]
    Gtk(String),
    #[error("no D-Bus session bus: {0}")]
    NoSessionBus(String),
    #[error(
        "the appindicator library cannot be loaded (libayatana-appindicator3.so.1 or libappindicator3.so.1): {0}"
    )]
    NoAppIndicator(String),
    #[error("the tray must be probed on the main thread")]
    NotMainThread,
    #[error("no tray support on this platform")]
    Unsupported,
}

/// Checks that the tray can be created, and initialises GTK for it.
///
/// Must be called on the thread that will call [`super::run`] (the main
/// thread): GTK binds itself to the thread that initialises it.
pub fn probe() -> Result<(), TrayUnavailable> {
    #[cfg(target_os = "linux")]
    {
        linux::probe()
    }
    #[cfg(any(target_os = "macos", target_os = "windows"))]
    {
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    {
        Err(TrayUnavailable::Unsupported)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CStr;

    use gtk::gio;

    use super::TrayUnavailable;

    /// The names libappindicator-sys loads, in its order.
    const APPINDICATOR: [&CStr; 2] = [c"libayatana-appindicator3.so.1", c"libappindicator3.so.1"];

    pub(super) fn probe() -> Result<(), TrayUnavailable> {
        if nix::unistd::getpid() != nix::unistd::gettid() {
            return Err(TrayUnavailable::NotMainThread);
        }
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return Err(TrayUnavailable::NoDisplay);
        }
        appindicator()?;
        session_bus()?;
        // Before GTK creates its settings, which load the theme.
        super::super::theme::register();
        gtk::init().map_err(|_| {
            let display = std::env::var("DISPLAY")
                .or_else(|_| std::env::var("WAYLAND_DISPLAY"))
                .unwrap_or_default();
            TrayUnavailable::Gtk(display)
        })
    }

    fn appindicator() -> Result<(), TrayUnavailable> {
        let mut last = String::new();
        for name in APPINDICATOR {
            // SAFETY: dlopen with a valid C string; loading the library runs
            // its constructors, which is what libappindicator-sys does next
            // anyway. The handle is kept open (never dlclose'd) on purpose.
            let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
            if !handle.is_null() {
                return Ok(());
            }
            // SAFETY: dlerror returns a thread-local C string or null.
            let error = unsafe { libc::dlerror() };
            if !error.is_null() {
                // SAFETY: non-null dlerror results are NUL-terminated strings.
                last = unsafe { CStr::from_ptr(error) }
                    .to_string_lossy()
                    .into_owned();
            }
        }
        Err(TrayUnavailable::NoAppIndicator(last))
    }

    /// A session bus berth can talk to. Without `DBUS_SESSION_BUS_ADDRESS`
    /// or `$XDG_RUNTIME_DIR/bus`, GLib would autolaunch a daemon that
    /// outlives berth: refuse instead of starting one.
    fn session_bus() -> Result<(), TrayUnavailable> {
        let has_address = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
            || std::env::var_os("XDG_RUNTIME_DIR")
                .is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists());
        if !has_address {
            return Err(TrayUnavailable::NoSessionBus(
                "DBUS_SESSION_BUS_ADDRESS is not set".to_owned(),
            ));
        }
        // The connection is GLib's shared singleton: libayatana uses it next.
        let bus = gio::bus_get_sync(gio::BusType::Session, gio::Cancellable::NONE)
            .map_err(|e| TrayUnavailable::NoSessionBus(e.to_string()))?;
        if !has_panel(&bus) {
            tracing::warn!(
                "no StatusNotifier host on the session bus yet: the icon is shown the old way \
                 (XEmbed) until a panel appears"
            );
        }
        Ok(())
    }

    /// Does a panel own `org.kde.StatusNotifierWatcher`? (Only a warning:
    /// libayatana registers by itself when one appears.)
    fn has_panel(bus: &gio::DBusConnection) -> bool {
        use gtk::glib::{ToVariant, VariantTy};
        let reply = bus.call_sync(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            Some(&("org.kde.StatusNotifierWatcher",).to_variant()),
            VariantTy::new("(b)").ok(),
            gio::DBusCallFlags::NONE,
            1000,
            gio::Cancellable::NONE,
        );
        reply
            .ok()
            .and_then(|v| v.get::<(bool,)>())
            .is_some_and(|(owned,)| owned)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn probing_off_the_main_thread_is_refused_before_gtk_is_touched() {
        // Test functions run on worker threads: GTK initialised here would
        // be bound to the wrong thread, so the probe must refuse first.
        assert_eq!(probe(), Err(TrayUnavailable::NotMainThread));
    }

    #[test]
    fn every_reason_is_one_line() {
        for reason in [
            TrayUnavailable::NoDisplay,
            TrayUnavailable::Gtk(":0".into()),
            TrayUnavailable::NoSessionBus("DBUS_SESSION_BUS_ADDRESS is not set".into()),
            TrayUnavailable::NoAppIndicator("file not found".into()),
            TrayUnavailable::NotMainThread,
        ] {
            assert!(!reason.to_string().contains('\n'), "{reason}");
        }
    }
}
