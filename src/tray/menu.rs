//! The tray menu as a pure function of a supervisor snapshot.
//!
//! [`model`] decides every label, every enabled flag and the icon; the
//! adapter (`app`) only copies the result into muda. That keeps the layout of
//! DESIGN.md ("Tray") testable without a display, and makes the adapter's job
//! a keyed diff: each node has a [`Key`] unique among its siblings, so a
//! backend's submenu is found again by its id, and an item that appears
//! (the PID line once a process exists) is inserted at its place.
//!
//! Labels are muda text: a literal `&` is doubled, since muda reads `&` as a
//! mnemonic marker.

use std::time::{Duration, Instant};

use super::action::{Click, ItemId};
use super::icon::IconState;
use crate::human;
use crate::manifest::BackendId;
use crate::status::{BackendStatus, Snapshot, State};
use crate::verb::Verb;

/// Labels longer than this are cut with `…`: a menu is not a log viewer.
const MAX_LABEL_CHARS: usize = 120;

/// A node's identity among its siblings: a backend's submenu is keyed by its
/// id, so berth's own top-level entries start with `@`, which no id can.
pub type Key = String;

/// The whole tray: its icon and its menu.
#[derive(Debug, Clone, PartialEq)]
pub struct MenuModel {
    pub icon: IconState,
    pub items: Vec<Node>,
    /// The menu shows a countdown ("Restarting in 2s") that changes without a
    /// new snapshot: re-render once a second while this is true.
    pub ticking: bool,
}

/// One entry of a menu.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Item(Item),
    Separator { key: Key },
    Submenu(Submenu),
}

/// A clickable or informational entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub id: ItemId,
    /// muda text (`&` doubled).
    pub label: String,
    pub enabled: bool,
    /// `Some` for a check item (its state), `None` for a plain one.
    pub checked: Option<bool>,
}

/// A backend's submenu.
#[derive(Debug, Clone, PartialEq)]
pub struct Submenu {
    pub key: Key,
    pub label: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn key(&self) -> &str {
        match self {
            Self::Item(item) => &item.key,
            Self::Separator { key } => key,
            Self::Submenu(sub) => &sub.key,
        }
    }

    /// Finds an entry by key path, e.g. `["python", "start"]` (tests, tools).
    pub fn find<'a>(nodes: &'a [Node], path: &[&str]) -> Option<&'a Node> {
        let (first, rest) = path.split_first()?;
        let node = nodes.iter().find(|n| n.key() == *first)?;
        match (rest.is_empty(), node) {
            (true, _) => Some(node),
            (false, Self::Submenu(sub)) => Self::find(&sub.children, rest),
            (false, _) => None,
        }
    }
}

impl MenuModel {
    /// The model shown while Quit stops every backend: the header says so and
    /// nothing can be clicked any more.
    pub fn stopping(mut self) -> Self {
        fn disable(nodes: &mut [Node]) {
            for node in nodes {
                match node {
                    Node::Item(item) => {
                        if item.id.to_action().is_some() {
                            item.enabled = false;
                        }
                    }
                    Node::Submenu(sub) => disable(&mut sub.children),
                    Node::Separator { .. } => {}
                }
            }
        }
        disable(&mut self.items);
        if let Some(Node::Item(header)) = self.items.first_mut() {
            header.label = format!("{DEFAULT_TITLE}: stopping every backend…");
        }
        self
    }

    /// The model with the instance's `title` (`--title`, else the app's
    /// name) in place of "berth" on the first line.
    pub fn titled(mut self, title: &str) -> Self {
        if let Some(Node::Item(header)) = self.items.first_mut()
            && let Some(rest) = header.label.strip_prefix(DEFAULT_TITLE)
        {
            header.label = format!("{title}{rest}");
        }
        self
    }
}

/// The first line's name in [`model`]; [`MenuModel::titled`] replaces it.
const DEFAULT_TITLE: &str = "berth";

/// The "last error: ..." line is cut to this many characters (the whole
/// line is in `status --json` and the log).
const LAST_ERROR_CHARS: usize = 80;

/// The menu for `snapshot` at time `now` (uptimes and countdowns use it);
/// `start_at_login` is the state of the autostart entry.
pub fn model(snapshot: &Snapshot, now: Instant, start_at_login: bool) -> MenuModel {
    let listed: Vec<&BackendStatus> = snapshot
        .backends
        .iter()
        .filter(|b| b.id.is_some() && !matches!(b.state, State::Invalid | State::Superseded))
        .collect();
    // An untrusted or incompatible file beside the file that runs its id is
    // a warning, not a second submenu for the same id.
    let stands_aside =
        |s: &BackendStatus| matches!(s.state, State::Untrusted | State::Incompatible);
    let (mut backends, shadowed): (Vec<&BackendStatus>, Vec<&BackendStatus>) =
        listed.iter().partition(|b| {
            !stands_aside(b) || !listed.iter().any(|o| o.id == b.id && !stands_aside(o))
        });
    // The supervisor already sorts, but the tray's order is its own contract.
    backends.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let mut broken: Vec<&BackendStatus> = snapshot
        .backends
        .iter()
        .filter(|b| b.state == State::Invalid)
        .chain(shadowed)
        .collect();
    broken.sort_by(|a, b| human::file_name(&a.file).cmp(human::file_name(&b.file)));

    let running = backends
        .iter()
        .filter(|b| b.state == State::Running)
        .count();
    let header = if backends.is_empty() {
        format!("{DEFAULT_TITLE}: no backends")
    } else {
        format!("{DEFAULT_TITLE}: {running} of {} running", backends.len())
    };

    let mut items = vec![info("berth", "@header", &header)];
    items.push(separator("@sep-top"));
    items.extend(backends.iter().filter_map(|b| backend_submenu(b, now)));
    // Files of several backends folders are named by their full paths.
    let by_name = crate::human::one_folder(
        snapshot
            .backends
            .iter()
            .map(|b| std::path::Path::new(b.file.as_str())),
    );
    items.extend(broken.iter().map(|b| warning(b, by_name)));
    items.push(separator("@sep-bottom"));
    items.push(action_item(
        "@open-folder",
        Click::OpenFolder,
        "Open backends folder",
        true,
    ));
    items.push(action_item(
        "@start-all",
        Click::StartAll,
        "Start all",
        backends.iter().any(|b| b.state.can_start()),
    ));
    items.push(action_item(
        "@stop-all",
        Click::StopAll,
        "Stop all",
        backends.iter().any(|b| b.state.can_stop()),
    ));
    items.push(Node::Item(Item {
        key: "@start-at-login".to_owned(),
        id: ItemId::action(&Click::ToggleStartAtLogin),
        label: "Start at login".to_owned(),
        enabled: true,
        checked: Some(start_at_login),
    }));
    items.push(action_item("@quit", Click::Quit, "Quit", true));

    MenuModel {
        icon: icon_state(&backends, !broken.is_empty()),
        items,
        ticking: backends
            .iter()
            .any(|b| b.state == State::Backoff && b.detail.retry_at.is_some()),
    }
}

fn icon_state(backends: &[&BackendStatus], broken_files: bool) -> IconState {
    let failing = broken_files
        || backends.iter().any(|b| match b.state {
            State::Failed
            | State::IntegrityFailed
            | State::Untrusted
            | State::NotFound
            | State::Backoff => true,
            State::Exited => b.exit_code != Some(0),
            _ => false,
        });
    if failing {
        IconState::Failing
    } else if backends.iter().any(|b| b.state.has_process()) {
        IconState::Running
    } else {
        IconState::Idle
    }
}

fn backend_submenu(b: &BackendStatus, now: Instant) -> Option<Node> {
    let raw_id = b.id.as_deref()?;
    let id = BackendId::new(raw_id).ok()?;
    let name = b.name.as_deref().unwrap_or(raw_id);
    let mut children = vec![info(raw_id, "status", &status_line(b, now))];
    if let Some(line) = process_line(b, now) {
        children.push(info(raw_id, "process", &line));
    }
    if b.state == State::Running
        && let Some(line) = crate::supervisor::health::describe(b.healthy, b.detail.health_failing)
    {
        children.push(info(raw_id, "health", &line));
    }
    children.push(separator("sep-actions"));
    children.push(action_item(
        "start",
        Click::Command(id.clone(), Verb::start()),
        "Start",
        b.state.can_start(),
    ));
    children.push(action_item(
        "stop",
        Click::Command(id.clone(), Verb::Stop),
        "Stop",
        b.state.can_stop(),
    ));
    children.push(action_item(
        "restart",
        Click::Command(id.clone(), Verb::restart()),
        "Restart",
        b.state.can_restart(),
    ));
    if let Some(node) = update_item(&id, b) {
        children.push(node);
    }
    if !b.actions.is_empty() {
        children.push(separator("sep-manifest-actions"));
    }
    for (n, a) in b.actions.iter().enumerate() {
        children.push(action_item(
            &format!("action:{n}"),
            Click::Run(id.clone(), n),
            &a.label,
            a.available,
        ));
    }
    children.push(separator("sep-info"));
    children.push(action_item(
        "log",
        Click::OpenLog(id),
        "Open log",
        b.detail.log.is_some(),
    ));
    if let Some(line) = last_error_line(b) {
        children.push(info(raw_id, "last-error", &line));
    }
    if let Some(path) = &b.path {
        children.push(info(raw_id, "path", path));
    }
    if let Some(line) = version_line(b) {
        children.push(info(raw_id, "version", &line));
    }
    Some(Node::Submenu(Submenu {
        key: raw_id.to_owned(),
        label: muda_text(name),
        children,
    }))
}

/// "Update to 1.2.0" (v3), once a check found a version: installs it (a
/// running backend restarts into it). While an update of the backend is
/// under way (`detail.updating`: downloading, switching, restarting) it
/// reads "Updating to 1.2.0…" and cannot be clicked again.
fn update_item(id: &BackendId, b: &BackendStatus) -> Option<Node> {
    let version = b.update.as_ref()?.available.as_deref()?;
    let click = Click::Command(id.clone(), Verb::Update);
    Some(if b.detail.updating {
        action_item("update", click, &format!("Updating to {version}…"), false)
    } else {
        action_item("update", click, &format!("Update to {version}"), true)
    })
}

/// `🟢 Running · ready · restart to apply`: the indicator of DESIGN.md's
/// states table, then what else the user should know.
pub fn status_line(b: &BackendStatus, now: Instant) -> String {
    let reason = || b.error.clone();
    let indicator = match b.state {
        State::Stopped => "🔴 Stopped".to_owned(),
        State::Starting => "🟡 Starting".to_owned(),
        State::Running => "🟢 Running".to_owned(),
        State::Stopping => "🟡 Stopping".to_owned(),
        State::Exited => format!(
            "🔴 {}",
            human::with_exit("Exited", b.exit_code, b.signal.as_deref())
        ),
        State::Backoff => match b.detail.retry_at {
            Some(at) => format!(
                "🟡 Restarting in {}",
                countdown(at.saturating_duration_since(now))
            ),
            None => "🟡 Restarting".to_owned(),
        },
        State::Failed => "❌ Failed".to_owned(),
        State::NotFound => "⚠️ Not Found".to_owned(),
        State::IntegrityFailed => "⛔ Checksum mismatch".to_owned(),
        State::Untrusted => {
            return format!(
                "⛔ Untrusted: {}",
                reason().unwrap_or_else(|| "no valid signature".to_owned())
            );
        }
        // These carry their reason in `error`; it replaces the word.
        State::Invalid | State::Incompatible | State::Unsupported | State::Superseded => {
            let word = match b.state {
                State::Incompatible => "Incompatible",
                State::Unsupported => "Unsupported on this platform",
                State::Superseded => "Superseded",
                _ => "Invalid",
            };
            return format!("⚠️ {}", reason().unwrap_or_else(|| word.to_owned()));
        }
    };
    let mut parts = vec![indicator];
    if !b.waiting_for.is_empty() {
        parts.push(format!("waiting for {}", b.waiting_for.join(", ")));
    }
    if b.ready && b.state == State::Running {
        parts.push("ready".to_owned());
    }
    if let Some(line) = &b.status_line
        && !(line == "ready" && parts.last().is_some_and(|p| p == "ready"))
    {
        parts.push(line.clone());
    }
    if b.pending_restart {
        parts.push("restart to apply".to_owned());
    }
    if let Some(error) = reason() {
        parts.push(error);
    }
    parts.join(" · ")
}

/// `PID 4242 · up 3m 12s · 41 MB`, while a process exists.
pub fn process_line(b: &BackendStatus, now: Instant) -> Option<String> {
    let pid = b.pid?;
    let mut parts = vec![format!("PID {pid}")];
    let uptime = match b.detail.started_at {
        Some(at) => Some(now.saturating_duration_since(at)),
        None => b.uptime_s.map(Duration::from_secs),
    };
    if let Some(up) = uptime {
        parts.push(format!("up {}", human::elapsed(up)));
    }
    if let Some(rss) = b.rss_bytes {
        parts.push(human::bytes(rss));
    }
    Some(parts.join(" · "))
}

/// `last error: Traceback ...`: the last stderr line of a backend that ended
/// by itself (exited, failed, backoff), cut to a readable length.
pub fn last_error_line(b: &BackendStatus) -> Option<String> {
    if !matches!(b.state, State::Exited | State::Failed | State::Backoff) {
        return None;
    }
    let line = b.last_stderr.as_deref()?;
    Some(format!(
        "last error: {}",
        human::one_line(line, LAST_ERROR_CHARS)
    ))
}

/// `v1.0.0 · sha256 3f7c…9a01 ✓ · signed by acme · 🔒 sandboxed · needs db`
/// (✓ verified at the last launch, ✗ mismatch, no mark before the first
/// launch; the trusted key that signed the manifest, if any; the lock when a
/// sandbox is asked for, "(partial)" when the kernel enforces only part;
/// the backends its `depends_on` names, v3).
pub fn version_line(b: &BackendStatus) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(version) = &b.version {
        parts.push(format!("v{version}"));
    }
    if let Some(digest) = &b.detail.sha256 {
        let mark = match b.detail.verified {
            Some(true) => " ✓",
            Some(false) => " ✗",
            None => "",
        };
        parts.push(format!("sha256 {}{mark}", digest.short()));
    }
    if let Some(key) = &b.signed_by {
        parts.push(format!("signed by {key}"));
    }
    match b.sandbox.as_deref() {
        Some("enforced") => parts.push("🔒 sandboxed".to_owned()),
        Some(_) => parts.push("🔒 sandboxed (partial)".to_owned()),
        None => {}
    }
    if !b.depends_on.is_empty() {
        let ids: Vec<&str> = b.depends_on.keys().map(String::as_str).collect();
        parts.push(format!("needs {}", ids.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// `⚠ broken.yaml: line 4: unknown field `argz``; clicking opens the file.
fn warning(b: &BackendStatus, by_name: bool) -> Node {
    let name = if by_name {
        human::file_name(&b.file)
    } else {
        b.file.as_str()
    };
    let error = b.error.as_deref().unwrap_or("invalid manifest");
    // Errors usually name their file already; show it once, by its short name.
    let error = error.strip_prefix(b.file.as_str()).unwrap_or(error);
    let error = error.strip_prefix(name).unwrap_or(error);
    let error = error.trim_start_matches([':', ' ']);
    let label = format!("⚠ {name}: {error}");
    Node::Item(Item {
        key: format!("warning:{}", b.file),
        id: ItemId::action(&Click::OpenFile(b.file.clone().into())),
        label: muda_text(&label),
        enabled: true,
        checked: None,
    })
}

fn info(scope: &str, key: &str, label: &str) -> Node {
    Node::Item(Item {
        key: key.to_owned(),
        id: ItemId::info(&format!("{scope}/{key}")),
        label: muda_text(label),
        enabled: false,
        checked: None,
    })
}

fn action_item(key: &str, action: Click, label: &str, enabled: bool) -> Node {
    Node::Item(Item {
        key: key.to_owned(),
        id: ItemId::action(&action),
        label: muda_text(label),
        enabled,
        checked: None,
    })
}

fn separator(key: &str) -> Node {
    Node::Separator {
        key: key.to_owned(),
    }
}

/// Doubles `&` (muda's mnemonic marker), flattens newlines and cuts long text.
pub fn muda_text(text: &str) -> String {
    human::one_line(text, MAX_LABEL_CHARS).replace('&', "&&")
}

/// Seconds rounded up, so "Restarting in 1s" is shown until the retry.
fn countdown(left: Duration) -> String {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    human::elapsed(Duration::from_secs(secs))
}

#[cfg(test)]
#[path = "menu_tests.rs"]
mod tests;
