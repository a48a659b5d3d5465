//! The adapter: a tao event loop on the main thread that keeps a tray-icon
//! and its muda menu equal to the latest [`MenuModel`].
//!
//! A tray menu, once set, cannot be replaced (tray-icon #176), so each model
//! is applied as a keyed diff against the one applied before: labels and
//! enabled flags change in place, entries that appear are inserted at their
//! place, entries that vanish are removed. muda objects are `Rc` and never
//! leave this thread; everything else talks to the loop through an
//! `EventLoopProxy` user event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder, EventLoopProxy};
use tao::platform::run_return::EventLoopExtRunReturn;
use tray_icon::menu::{
    CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuId, MenuItem, PredefinedMenuItem,
    Submenu as MudaSubmenu,
};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use super::app_icon::AppIcon;
use super::icon::{IconState, SIZE};
use super::menu::{self, Item, MenuModel, Node};
use super::{Click, TrayError, TrayInputs};
use crate::status::Snapshot;

/// What reaches the event loop from other threads.
#[derive(Debug)]
enum UserEvent {
    Snapshot(Arc<Snapshot>),
    Menu(MenuId),
    /// The autostart entry's folder changed: the item is read again.
    LoginChanged,
    /// The launcher has begun quitting (a signal, or this tray's Quit).
    Quitting,
    Exit,
}

pub(super) fn run(inputs: TrayInputs) -> Result<(), TrayError> {
    let TrayInputs {
        snapshots,
        actions,
        quitting: quitting_rx,
        exit,
        face,
        icon_dir,
        login_dirs,
        runtime,
        shown,
    } = inputs;
    #[cfg(target_os = "linux")]
    let shown = super::shown::Shown::new(shown);
    #[cfg(target_os = "linux")]
    let _theme = super::theme::Theme::follow();
    #[cfg(not(target_os = "linux"))]
    let _ = shown;
    let mut event_loop = EventLoopBuilder::<UserEvent>::with_user_event().build();
    forward(
        &event_loop.create_proxy(),
        snapshots.clone(),
        quitting_rx,
        exit,
        &runtime,
    );

    // Kept for the loop's life: the autostart entry changed outside the
    // tray (`berth autostart`, a desktop's settings) re-renders the item.
    let _login_watch = watch_login(&face.app, event_loop.create_proxy());
    let mut latest = snapshots.borrow().clone();
    // What the "Start at login" item showed at the last render: a click
    // sets the opposite, what the user sees the item becoming.
    let mut login_shown = false;
    let mut tray: Option<Tray> = None;
    let mut quitting = false;
    let mut failure: Option<TrayError> = None;

    event_loop.run_return(|event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        let mut render = false;
        match event {
            // tray-icon #90: create the tray once the loop runs.
            Event::NewEvents(StartCause::Init) => match Tray::new(&icon_dir, &face) {
                Ok(created) => {
                    tray = Some(created);
                    render = true;
                }
                Err(e) => failure = Some(e),
            },
            Event::NewEvents(StartCause::ResumeTimeReached { .. }) => render = true,
            Event::UserEvent(UserEvent::Snapshot(snapshot)) => {
                latest = snapshot;
                render = true;
            }
            Event::UserEvent(UserEvent::Menu(id)) => {
                let Some(live) = &tray else { return };
                let Some(action) = live.clickable(&id) else {
                    tracing::debug!(id = %id.0, "click on an inactive tray item ignored");
                    return;
                };
                tracing::info!(%action, "tray click");
                match &action {
                    Click::OpenLog(id) => match latest.get(id.as_str()) {
                        Some(status) => match &status.detail.log {
                            Some(log) => super::open_with_desktop(log, super::env_overrides()),
                            None => tracing::warn!(backend = %id, "no log file yet"),
                        },
                        None => tracing::warn!(backend = %id, "no such backend"),
                    },
                    Click::OpenFile(path) => super::open_with_desktop(path, super::env_overrides()),
                    Click::OpenFolder => {
                        super::open_with_desktop(&face.backends_dir, super::env_overrides())
                    }
                    Click::ToggleStartAtLogin => {
                        // A small file written on this thread: no bus, no wait.
                        let result = if login_shown {
                            crate::autostart::disable(&face.app).map(|_| ())
                        } else {
                            crate::autostart::enable(&face.app, &login_dirs).map(|_| ())
                        };
                        if let Err(e) = result {
                            tracing::warn!("start at login: {e}");
                        }
                        render = true;
                    }
                    Click::Quit => {
                        quitting = true;
                        render = true;
                    }
                    _ => {}
                }
                if action == Click::ToggleStartAtLogin
                    && let Some(tray) = tray.as_mut()
                {
                    // The toolkit flipped the check on the click; if the file
                    // could not change, the next render must flip it back.
                    tray.model = None;
                }
                if actions.send(action.clone()).is_err() && action == Click::Quit {
                    // Nobody is left to stop the backends and signal `exit`.
                    tracing::warn!("the launcher is gone; closing the tray");
                    *control_flow = ControlFlow::Exit;
                }
            }
            Event::UserEvent(UserEvent::LoginChanged) => render = true,
            Event::UserEvent(UserEvent::Quitting) => {
                quitting = true;
                render = true;
            }
            Event::UserEvent(UserEvent::Exit) => *control_flow = ControlFlow::Exit,
            _ => {}
        }
        if failure.is_some() {
            *control_flow = ControlFlow::Exit;
            return;
        }
        if render && let Some(tray) = &mut tray {
            login_shown = crate::autostart::is_enabled(&face.app);
            let mut model = menu::model(&latest, Instant::now(), login_shown);
            if quitting {
                model = model.stopping();
            }
            model = model.titled(&face.title);
            if let Err(e) = tray.apply(model) {
                failure = Some(e);
                *control_flow = ControlFlow::Exit;
                return;
            }
            #[cfg(target_os = "linux")]
            shown.follow(&tray.menu);
        }
        // Only a backoff countdown changes without a snapshot; otherwise
        // sleep until the next event.
        if *control_flow == ControlFlow::Wait && tray.as_ref().is_some_and(|t| t.ticking) {
            *control_flow = ControlFlow::WaitUntil(Instant::now() + Duration::from_secs(1));
        }
    });
    // Dropping the tray icon withdraws it from the panel.
    drop(tray);
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Watches the autostart entry's folder (created if missing: it is the
/// desktop's standard folder) with inotify, so the "Start at login" item
/// follows every change, whoever made it, with no timer. `None` (logged)
/// when it cannot: the item is then read at each render only.
fn watch_login(
    app: &crate::paths::AppName,
    proxy: EventLoopProxy<UserEvent>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let file = crate::paths::autostart_file(app);
    let dir = file.parent()?.to_path_buf();
    let watched = std::fs::create_dir_all(&dir)
        .map_err(notify::Error::io)
        .and_then(|()| {
            let mut watcher =
                notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                    if event.is_ok_and(|e| e.paths.iter().any(|p| p == &file)) {
                        let _ = proxy.send_event(UserEvent::LoginChanged);
                    }
                })?;
            watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
            Ok(watcher)
        });
    watched
        .map_err(|e| tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the autostart folder"))
        .ok()
}

/// Tokio tasks that turn snapshot changes, clicks and the exit request into
/// user events. They end when the loop has closed or their source is gone.
fn forward(
    proxy: &EventLoopProxy<UserEvent>,
    mut snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    mut quitting: tokio::sync::watch::Receiver<bool>,
    mut exit: tokio::sync::watch::Receiver<bool>,
    runtime: &tokio::runtime::Handle,
) {
    let clicks = proxy.clone();
    // The handler is process-global and set once; later calls are ignored.
    MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
        let _ = clicks.send_event(UserEvent::Menu(event.id));
    }));
    let updates = proxy.clone();
    runtime.spawn(async move {
        while snapshots.changed().await.is_ok() {
            let snapshot = snapshots.borrow_and_update().clone();
            if updates.send_event(UserEvent::Snapshot(snapshot)).is_err() {
                break;
            }
        }
    });
    let stopping = proxy.clone();
    runtime.spawn(async move {
        if quitting.wait_for(|q| *q).await.is_ok() {
            let _ = stopping.send_event(UserEvent::Quitting);
        }
    });
    let quit = proxy.clone();
    runtime.spawn(async move {
        // A dropped sender also ends the tray: nobody could ask any more.
        let _ = exit.wait_for(|exit| *exit).await;
        let _ = quit.send_event(UserEvent::Exit);
    });
}

/// The live tray: the icon, its menu, and what was applied to them.
struct Tray {
    icon: TrayIcon,
    menu: Menu,
    applied: Vec<(String, Applied)>,
    icon_state: IconState,
    /// `--icon`, decoded once; the state is drawn over it as a badge.
    app_icon: Option<AppIcon>,
    model: Option<MenuModel>,
    ticking: bool,
}

/// A muda entry and the values last written to it.
enum Applied {
    Item {
        item: MenuItem,
        label: String,
        enabled: bool,
    },
    /// A check item; its checked state is read back from the item itself,
    /// since the toolkit flips it on a click before berth decides.
    Check {
        item: CheckMenuItem,
        label: String,
        enabled: bool,
    },
    Separator(PredefinedMenuItem),
    Submenu {
        submenu: MudaSubmenu,
        label: String,
        children: Vec<(String, Applied)>,
    },
}

/// Where entries are inserted: the root menu or a backend's submenu.
#[derive(Clone, Copy)]
enum MenuParent<'a> {
    Root(&'a Menu),
    Sub(&'a MudaSubmenu),
}

fn menu_error(e: tray_icon::menu::Error) -> TrayError {
    TrayError::Menu(e.to_string())
}

/// The icon of `state`: the app's with a badge, else berth's disc.
fn icon(app_icon: Option<&AppIcon>, state: IconState) -> Result<Icon, TrayError> {
    let rgba = match app_icon {
        Some(app_icon) => app_icon.badged(state),
        None => state.rgba(),
    };
    Icon::from_rgba(rgba, SIZE, SIZE).map_err(|e| TrayError::Icon(e.to_string()))
}

/// The app's icon, or `None` after saying in one line why it cannot be
/// shown (berth's own icon is shown instead).
fn load_app_icon(path: Option<&std::path::Path>) -> Option<AppIcon> {
    match AppIcon::load(path?) {
        Ok(icon) => Some(icon),
        Err(e) => {
            // On stderr and in berth.log, like every warning of the launcher.
            tracing::warn!("{e}; showing berth's icon");
            None
        }
    }
}

impl Tray {
    fn new(icon_dir: &std::path::Path, face: &super::Face) -> Result<Self, TrayError> {
        let menu = Menu::new();
        let icon_state = IconState::Idle;
        let app_icon = load_app_icon(face.icon.as_deref());
        let icon = TrayIconBuilder::new()
            .with_temp_dir_path(icon_dir)
            .with_id(face.app.as_str())
            .with_tooltip(&face.title)
            .with_menu(Box::new(menu.clone()))
            .with_icon(icon(app_icon.as_ref(), icon_state)?)
            .build()
            .map_err(|e| TrayError::Icon(e.to_string()))?;
        #[cfg(target_os = "linux")]
        set_sni_title(&icon, &face.title);
        Ok(Self {
            app_icon,
            icon,
            menu,
            applied: Vec::new(),
            icon_state,
            model: None,
            ticking: false,
        })
    }

    /// The action of a clicked id, if the item is currently enabled:
    /// dbusmenu delivers clicks on disabled items too.
    fn clickable(&self, id: &MenuId) -> Option<Click> {
        fn enabled(nodes: &[Node], id: &str) -> bool {
            nodes.iter().any(|node| match node {
                Node::Item(item) => item.id.as_str() == id && item.enabled,
                Node::Submenu(sub) => enabled(&sub.children, id),
                Node::Separator { .. } => false,
            })
        }
        let model = self.model.as_ref()?;
        enabled(&model.items, &id.0)
            .then(|| id.0.parse().ok())
            .flatten()
    }

    fn apply(&mut self, model: MenuModel) -> Result<(), TrayError> {
        if self.model.as_ref() == Some(&model) {
            return Ok(());
        }
        if model.icon != self.icon_state {
            self.icon
                .set_icon(Some(icon(self.app_icon.as_ref(), model.icon)?))
                .map_err(|e| TrayError::Icon(e.to_string()))?;
            self.icon_state = model.icon;
        }
        reconcile(
            MenuParent::Root(&self.menu),
            &mut self.applied,
            &model.items,
        )
        .map_err(menu_error)?;
        self.ticking = model.ticking;
        self.model = Some(model);
        Ok(())
    }
}

impl MenuParent<'_> {
    fn insert(self, item: &dyn IsMenuItem, position: usize) -> tray_icon::menu::Result<()> {
        match self {
            Self::Root(menu) => menu.insert(item, position),
            Self::Sub(sub) => sub.insert(item, position),
        }
    }

    fn remove(self, item: &dyn IsMenuItem) -> tray_icon::menu::Result<()> {
        match self {
            Self::Root(menu) => menu.remove(item),
            Self::Sub(sub) => sub.remove(item),
        }
    }
}

impl Applied {
    fn as_item(&self) -> &dyn IsMenuItem {
        match self {
            Self::Item { item, .. } => item,
            Self::Check { item, .. } => item,
            Self::Separator(sep) => sep,
            Self::Submenu { submenu, .. } => submenu,
        }
    }

    fn same_kind(&self, node: &Node) -> bool {
        matches!(
            (self, node),
            (Self::Item { .. }, Node::Item(Item { checked: None, .. }))
                | (
                    Self::Check { .. },
                    Node::Item(Item {
                        checked: Some(_),
                        ..
                    })
                )
                | (Self::Separator(_), Node::Separator { .. })
                | (Self::Submenu { .. }, Node::Submenu(_))
        )
    }

    fn create(node: &Node) -> tray_icon::menu::Result<Self> {
        Ok(match node {
            Node::Item(Item {
                id,
                label,
                enabled,
                checked: Some(checked),
                ..
            }) => Self::Check {
                item: CheckMenuItem::with_id(id.as_str(), label, *enabled, *checked, None),
                label: label.clone(),
                enabled: *enabled,
            },
            Node::Item(Item {
                id, label, enabled, ..
            }) => Self::Item {
                item: MenuItem::with_id(id.as_str(), label, *enabled, None),
                label: label.clone(),
                enabled: *enabled,
            },
            Node::Separator { .. } => Self::Separator(PredefinedMenuItem::separator()),
            Node::Submenu(sub) => {
                let submenu = MudaSubmenu::with_id(format!("#{}", sub.key), &sub.label, true);
                let mut children = Vec::new();
                reconcile(MenuParent::Sub(&submenu), &mut children, &sub.children)?;
                Self::Submenu {
                    submenu,
                    label: sub.label.clone(),
                    children,
                }
            }
        })
    }

    fn update(&mut self, node: &Node) -> tray_icon::menu::Result<()> {
        match (self, node) {
            (
                Self::Item {
                    item,
                    label,
                    enabled,
                },
                Node::Item(want),
            ) => sync(
                label,
                enabled,
                want,
                |t| item.set_text(t),
                |e| item.set_enabled(e),
            ),
            (
                Self::Check {
                    item,
                    label,
                    enabled,
                },
                Node::Item(want),
            ) => {
                sync(
                    label,
                    enabled,
                    want,
                    |t| item.set_text(t),
                    |e| item.set_enabled(e),
                );
                if let Some(checked) = want.checked
                    && item.is_checked() != checked
                {
                    item.set_checked(checked);
                }
            }
            (
                Self::Submenu {
                    submenu,
                    label,
                    children,
                },
                Node::Submenu(want),
            ) => {
                if *label != want.label {
                    submenu.set_text(&want.label);
                    label.clone_from(&want.label);
                }
                reconcile(MenuParent::Sub(submenu), children, &want.children)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Makes `applied` (the entries under `parent`) match `want`, by key.
fn reconcile(
    parent: MenuParent<'_>,
    applied: &mut Vec<(String, Applied)>,
    want: &[Node],
) -> tray_icon::menu::Result<()> {
    // Drop what is gone (or changed kind) first, so positions line up.
    let mut kept = Vec::with_capacity(applied.len());
    for (key, entry) in applied.drain(..) {
        if want.iter().any(|n| n.key() == key && entry.same_kind(n)) {
            kept.push((key, entry));
        } else {
            parent.remove(entry.as_item())?;
        }
    }
    *applied = kept;
    for (position, node) in want.iter().enumerate() {
        match applied.iter().position(|(key, _)| key == node.key()) {
            Some(found) if found == position => applied[position].1.update(node)?,
            Some(found) => {
                // Moved (a renamed backend sorts elsewhere): re-insert it.
                let (key, mut entry) = applied.remove(found);
                parent.remove(entry.as_item())?;
                entry.update(node)?;
                parent.insert(entry.as_item(), position)?;
                applied.insert(position, (key, entry));
            }
            None => {
                let entry = Applied::create(node)?;
                parent.insert(entry.as_item(), position)?;
                applied.insert(position, (node.key().to_owned(), entry));
            }
        }
    }
    Ok(())
}

/// Brings an item's label and enabled flag to `want`, touching muda only
/// for what changed (a set_text is a D-Bus layout update for the panel).
fn sync(
    label: &mut String,
    enabled: &mut bool,
    want: &Item,
    set_text: impl FnOnce(&str),
    set_enabled: impl FnOnce(bool),
) {
    if *label != want.label {
        set_text(&want.label);
        label.clone_from(&want.label);
    }
    if *enabled != want.enabled {
        set_enabled(want.enabled);
        *enabled = want.enabled;
    }
}

/// Sets the item's StatusNotifier `Title`, the name panels show on hover
/// (libayatana-appindicator has no tooltip; its `Title` stands in for one).
/// tray-icon 0.26 on Linux ignores `with_tooltip` and turns `with_title`
/// into a label beside the icon, so berth sets it on the AppIndicator under
/// the item (tray-icon issue #283).
#[cfg(target_os = "linux")]
fn set_sni_title(icon: &TrayIcon, title: &str) {
    // SAFETY: `app_indicator` points at the indicator `icon` owns, valid
    // while `icon` is (borrowed here). `AppIndicator` is a plain struct
    // holding the GObject's pointer, with no `Drop`: the bitwise copy is a
    // second handle to the same object, used once on this (the GTK) thread
    // and never dropped, so nothing is freed or aliased mutably.
    let mut indicator =
        std::mem::ManuallyDrop::new(unsafe { std::ptr::read(icon.app_indicator()) });
    indicator.set_title(title);
}
