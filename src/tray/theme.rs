//! The tray's GTK theme: an empty one while a StatusNotifier host draws the
//! menu, the desktop's own whenever berth draws the menu itself.
//!
//! With a host on the bus berth's GTK widgets are never drawn: the panel
//! renders the menu from its dbusmenu description. GTK still parses the
//! desktop's theme for them, and that was the largest single item in the
//! tray's heap (benches/tray_running.rs, 20 backends): Adwaita parsed is
//! 1.4 to 1.7 MB of heap (heaptrack: `gtk_css_provider_load_from_resource`
//! under `app_indicator_new`), plus 0.6 MB of libgtk's resource pages; 2 to
//! 2.8 MB resident in all, measured with and without `GTK_THEME=`. So [`super::prepare_env`] sets `GTK_THEME=Berth` (unless the
//! user set `GTK_THEME`), [`register`] makes `Berth` a built-in theme (the
//! resource `theme/berth.css`, empty), and [`Theme::follow`] adds the
//! desktop's theme (named by GtkSettings, which still follows XSETTINGS) at
//! theme priority while nobody owns `org.kde.StatusNotifierWatcher`: that
//! is when libayatana falls back to an XEmbed icon whose popup menu berth
//! draws, and it must look as it always did.
//!
//! `theme/berth.gresource` is `theme/berth.css` compiled by
//! `glib-compile-resources` (the command is in `theme/berth.gresource.xml`);
//! a test checks that the two agree.

use std::cell::RefCell;

use gtk::prelude::*;
use gtk::{gdk, gio, glib};

// The theme `GTK_THEME` names; GTK finds it among the registered resources
// under `/org/gtk/libgtk/theme/<name>/gtk.css` before looking on disk.
use super::env::THEME as NAME;

const RESOURCE: &[u8] = include_bytes!("theme/berth.gresource");

/// The name a StatusNotifier host owns.
const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// Registers the `Berth` theme. Must run before GTK creates its settings
/// (the first widget or icon theme does): a `GTK_THEME` it cannot find
/// makes GTK load Adwaita instead, which works, only without the saving.
pub fn register() {
    match gio::Resource::from_data(&glib::Bytes::from_static(RESOURCE)) {
        Ok(resource) => gio::resources_register(&resource),
        Err(e) => tracing::warn!("berth's GTK theme: {e}"),
    }
}

thread_local! {
    /// The desktop's theme, while it is added to the screen.
    static DESKTOP: RefCell<Option<gtk::CssProvider>> = const { RefCell::new(None) };
}

/// Keeps the desktop's theme loaded exactly while no StatusNotifier host is
/// on the bus. Lives on the GTK thread, as long as the tray.
/// (It holds the call that ends the watch: gio exports two types named
/// `WatcherId`, and the one `bus_watch_name` returns cannot be named.)
pub struct Theme(Option<Box<dyn FnOnce()>>);

impl Theme {
    pub fn follow() -> Self {
        // A theme the user chose with GTK_THEME is loaded by GTK already.
        if !super::env::env_overrides().contains(&"GTK_THEME") {
            return Self(None);
        }
        if let Some(settings) = gtk::Settings::default() {
            // The desktop's theme changed while berth draws with it.
            settings.connect_gtk_theme_name_notify(|_| reload());
            settings.connect_gtk_application_prefer_dark_theme_notify(|_| reload());
        }
        // Both callbacks run on this thread's main context (the tao loop);
        // one of them runs soon after the watch starts.
        let id = gio::bus_watch_name(
            gio::BusType::Session,
            WATCHER,
            gio::BusNameWatcherFlags::NONE,
            |_, _, _| set_desktop(false),
            |_, _| set_desktop(true),
        );
        Self(Some(Box::new(move || gio::bus_unwatch_name(id))))
    }
}

impl Drop for Theme {
    fn drop(&mut self) {
        if let Some(unwatch) = self.0.take() {
            unwatch();
        }
    }
}

/// Adds (`true`) or removes the desktop's theme.
fn set_desktop(wanted: bool) {
    let Some(screen) = gdk::Screen::default() else {
        return;
    };
    DESKTOP.with(|slot| {
        let mut slot = slot.borrow_mut();
        match (wanted, slot.as_ref()) {
            (true, None) => {
                if let Some(provider) = desktop_theme() {
                    gtk::StyleContext::add_provider_for_screen(
                        &screen,
                        &provider,
                        gtk::STYLE_PROVIDER_PRIORITY_THEME,
                    );
                    tracing::debug!("no StatusNotifier host: the desktop's GTK theme is loaded");
                    *slot = Some(provider);
                }
            }
            (false, Some(provider)) => {
                gtk::StyleContext::remove_provider_for_screen(&screen, provider);
                tracing::debug!("a StatusNotifier host draws the menu: GTK theme unloaded");
                *slot = None;
            }
            _ => {}
        }
    });
}

fn reload() {
    if DESKTOP.with(|slot| slot.borrow().is_some()) {
        set_desktop(false);
        set_desktop(true);
    }
}

/// The theme GTK would have loaded itself (gtksettings.c, `get_theme_name`):
/// `gtk-theme-name`, in its dark variant when the desktop prefers dark.
/// GTK looks it up in its resources and theme folders, and falls back to
/// Adwaita, as it does for its own theme.
fn desktop_theme() -> Option<gtk::CssProvider> {
    let settings = gtk::Settings::default()?;
    let name = settings
        .gtk_theme_name()
        .map(|name| name.to_string())
        .filter(|name| !name.is_empty() && name != NAME)
        .unwrap_or_else(|| "Adwaita".to_owned());
    let variant = settings
        .is_gtk_application_prefer_dark_theme()
        .then_some("dark");
    gtk::CssProvider::named(&name, variant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_resource_holds_berth_css() {
        let resource = gio::Resource::from_data(&glib::Bytes::from_static(RESOURCE))
            .expect("a valid gresource");
        let css = resource
            .lookup_data(
                &format!("/org/gtk/libgtk/theme/{NAME}/gtk.css"),
                gio::ResourceLookupFlags::NONE,
            )
            .expect("gtk.css in the resource");
        assert_eq!(
            &*css,
            include_bytes!("theme/berth.css"),
            "recompile theme/berth.gresource (see theme/berth.gresource.xml)"
        );
    }
}
