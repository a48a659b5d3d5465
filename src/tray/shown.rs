//! Tells whether the panel shows one of the backend submenus, the only
//! place the tray shows CPU-dependent figures (`PID · up · MB`): the
//! supervisor samples usage only while one is open (see
//! `supervisor::metrics` for why).
//!
//! A panel opens a submenu over dbusmenu with `AboutToShow(id)` and
//! `Event(id, "opened")`, and ends it with `Event(id, "closed")`.
//! libdbusmenu-gtk, which exports libayatana's menu, turns "opened" into
//! `gtk_widget_show` on the submenu's `GtkMenu` and "closed" into
//! `gtk_widget_hide` (parser.c, `item_handle_event`); a local GTK popup
//! maps it the same way. So each submenu's `visible` property is watched.
//! muda hands out the very `GtkMenu` the indicator exports
//! (`gtk_context_menu` is created once and cached), so its children can be
//! walked after each change of the menu. A panel that never sends "closed"
//! costs a sample a second, not a wrong figure.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gtk::prelude::*;
use tray_icon::menu::{ContextMenu, Menu};

/// The submenus watched so far, and what was last said about them.
pub struct Shown {
    hooked: Rc<RefCell<Vec<gtk::Menu>>>,
    open: Rc<Cell<bool>>,
    tx: tokio::sync::watch::Sender<bool>,
}

impl Shown {
    pub fn new(tx: tokio::sync::watch::Sender<bool>) -> Self {
        Self {
            hooked: Rc::default(),
            open: Rc::default(),
            tx,
        }
    }

    /// Watches every submenu of `menu` not watched yet and forgets the ones
    /// that left it (a removed backend's submenu, open or not).
    pub fn follow(&self, menu: &Menu) {
        let root = menu.gtk_context_menu();
        let current: Vec<gtk::Menu> = root
            .children()
            .into_iter()
            .filter_map(|w| w.downcast::<gtk::MenuItem>().ok())
            .filter_map(|item| item.submenu())
            .filter_map(|w| w.downcast::<gtk::Menu>().ok())
            .collect();
        {
            let mut hooked = self.hooked.borrow_mut();
            hooked.retain(|m| current.contains(m));
            for sub in current {
                if hooked.contains(&sub) {
                    continue;
                }
                let (hooked_rc, open, tx) =
                    (self.hooked.clone(), self.open.clone(), self.tx.clone());
                sub.connect_visible_notify(move |_| update(&hooked_rc, &open, &tx));
                hooked.push(sub);
            }
        }
        update(&self.hooked, &self.open, &self.tx);
    }
}

fn update(
    hooked: &RefCell<Vec<gtk::Menu>>,
    open: &Cell<bool>,
    tx: &tokio::sync::watch::Sender<bool>,
) {
    // Never borrowed across a GTK call that could re-enter this handler.
    let Ok(menus) = hooked.try_borrow() else {
        return;
    };
    // Its own flag: `is_visible` also asks the (never mapped) popup window.
    let now = menus.iter().any(|m| m.get_visible());
    drop(menus);
    if now != open.get() {
        open.set(now);
        tracing::debug!(open = now, "tray submenu shown");
        let _ = tx.send(now);
    }
}
