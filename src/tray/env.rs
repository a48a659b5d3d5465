//! The environment berth sets for its own GTK before any thread starts, and
//! remembers, so that no backend inherits it.
//!
//! A leaf: `probe` and `theme` both read it, and it names neither.

/// The theme `GTK_THEME` names while a panel draws the menu (see `theme`,
/// which registers it).
#[cfg(target_os = "linux")]
pub const THEME: &str = "Berth";

/// Sets, unless the user already did, `GDK_GL=disable` (a tray never draws
/// with OpenGL; without it the XEmbed fallback maps Mesa and LLVM: 84 MB
/// resident instead of 28 MB) and `NO_AT_BRIDGE=1` (no accessibility bus
/// connection for a menu-only program). On Linux also `GTK_THEME=Berth`:
/// an empty theme while a panel draws the menu (see `theme`; about 2 MB
/// less resident with 20 backends).
///
/// Call it first thing in `main`, before any thread is started. Backends
/// must not inherit these: the supervisor removes [`env_overrides`] from
/// their environment.
pub fn prepare_env() {
    let mut set = Vec::new();
    for (key, value) in OWN_ENV {
        if std::env::var_os(key).is_none() {
            // SAFETY: `set_var` is unsound only when another thread reads or
            // writes the environment at the same time. The contract of this
            // function is that it runs in `main` before any thread exists
            // (before the tokio runtime, the log writer, GTK), so no
            // concurrent access is possible.
            unsafe { std::env::set_var(key, value) };
            set.push(key);
        }
    }
    let _ = OVERRIDES.set(set);
}

/// The variables [`prepare_env`] added (not those the user set): they are
/// meant for berth's own GTK, not for the backends it launches.
pub fn env_overrides() -> &'static [&'static str] {
    OVERRIDES.get().map_or(&[], Vec::as_slice)
}

/// What [`prepare_env`] sets (each only if the user has not).
#[cfg(target_os = "linux")]
const OWN_ENV: [(&str, &str); 3] = [
    ("GDK_GL", "disable"),
    ("NO_AT_BRIDGE", "1"),
    ("GTK_THEME", THEME),
];
#[cfg(not(target_os = "linux"))]
const OWN_ENV: [(&str, &str); 2] = [("GDK_GL", "disable"), ("NO_AT_BRIDGE", "1")];

static OVERRIDES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
