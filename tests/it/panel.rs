//! A minimal desktop panel for tests: a StatusNotifierWatcher on the session
//! bus that records registered tray items, and a dbusmenu client that reads
//! an item's menu and clicks its entries the way a panel does.
//!
//! This is a stand-in for a real panel (KDE, GNOME's AppIndicator extension,
//! waybar), which cannot run here; it speaks the same D-Bus protocol, so the
//! tray under test runs unchanged. libayatana registers by object path, so
//! an item is `<sender><path>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::blocking::{Connection, Proxy, connection};
use zbus::message::Header;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// Every item that registered, in order.
type Registry = Arc<Mutex<Vec<String>>>;

struct Watcher {
    items: Registry,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str, #[zbus(header)] header: Header<'_>) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let item = if service.starts_with('/') {
            format!("{sender}{service}")
        } else {
            format!("{service}/StatusNotifierItem")
        };
        self.items.lock().unwrap().push(item);
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// The watcher, on its own connection to the session bus.
pub struct Panel {
    conn: Connection,
    items: Registry,
}

/// One dbusmenu entry, its label without mnemonic markers.
#[derive(Debug, Clone)]
pub struct MenuNode {
    pub id: i32,
    pub label: String,
    pub enabled: bool,
    pub separator: bool,
    /// A check item's state (`toggle-type` checkmark), else `None`.
    pub checked: Option<bool>,
    pub children: Vec<MenuNode>,
}

impl Panel {
    /// Owns `org.kde.StatusNotifierWatcher` on the bus at `address`.
    pub fn start(address: &str) -> zbus::Result<Self> {
        let items = Registry::default();
        let conn = connection::Builder::address(address)?
            .name("org.kde.StatusNotifierWatcher")?
            .serve_at(
                "/StatusNotifierWatcher",
                Watcher {
                    items: items.clone(),
                },
            )?
            .build()?;
        Ok(Self { conn, items })
    }

    /// Waits for the first registered item.
    pub fn wait_item(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(item) = self.items().into_iter().next() {
                return Some(item);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Every item registered so far, in order.
    pub fn items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    fn menu_proxy(&self, item: &str) -> zbus::Result<Proxy<'static>> {
        menu_proxy(&self.conn, item)
    }

    /// The whole menu tree of `item` (GetLayout(0, -1, [])).
    pub fn layout(&self, item: &str) -> zbus::Result<MenuNode> {
        layout(&self.conn, item)
    }

    /// A property of the StatusNotifierItem `item` (`Title`, `IconName`, ...).
    pub fn item_property<T>(&self, item: &str, name: &str) -> zbus::Result<T>
    where
        T: TryFrom<zbus::zvariant::OwnedValue>,
        T::Error: Into<zbus::Error>,
    {
        let (service, path) = item.split_at(item.find('/').expect("item has a path"));
        let sni = Proxy::new(
            &self.conn,
            service.to_owned(),
            path.to_owned(),
            "org.kde.StatusNotifierItem",
        )?;
        sni.get_property(name)
    }

    /// Sends a click on the entry `id` (it must be enabled: a panel checks).
    pub fn click(&self, item: &str, id: i32) -> zbus::Result<()> {
        let proxy = self.menu_proxy(item)?;
        proxy.call_method("Event", &(id, "clicked", Value::I32(0), 0u32))?;
        Ok(())
    }

    /// Opens the submenu `id` as a panel does when the pointer reaches it:
    /// `AboutToShow`, then the "opened" event.
    pub fn open(&self, item: &str, id: i32) -> zbus::Result<()> {
        let proxy = self.menu_proxy(item)?;
        proxy.call_method("AboutToShow", &(id,))?;
        proxy.call_method("Event", &(id, "opened", Value::I32(0), 0u32))?;
        Ok(())
    }

    /// Closes the submenu `id` (the "closed" event).
    pub fn close(&self, item: &str, id: i32) -> zbus::Result<()> {
        let proxy = self.menu_proxy(item)?;
        proxy.call_method("Event", &(id, "closed", Value::I32(0), 0u32))?;
        Ok(())
    }

    /// Polls the layout until `check` accepts it; returns the last layout
    /// either way so a failing test can print it.
    pub fn wait_layout(
        &self,
        item: &str,
        timeout: Duration,
        check: impl Fn(&MenuNode) -> bool,
    ) -> Result<MenuNode, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.layout(item) {
                Ok(root) if check(&root) => return Ok(root),
                Ok(root) => root.render(),
                Err(e) => format!("GetLayout failed: {e}"),
            };
            if Instant::now() >= deadline {
                return Err(last);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The dbusmenu object of the tray item `item` (`<sender><path>`).
fn menu_proxy(conn: &Connection, item: &str) -> zbus::Result<Proxy<'static>> {
    let (service, path) = item.split_at(item.find('/').expect("item has a path"));
    let sni = Proxy::new(
        conn,
        service.to_owned(),
        path.to_owned(),
        "org.kde.StatusNotifierItem",
    )?;
    let menu: OwnedObjectPath = sni.get_property("Menu")?;
    Proxy::new(
        conn,
        service.to_owned(),
        menu.into_inner(),
        "com.canonical.dbusmenu",
    )
}

/// The whole menu tree of the tray item `item`, read over `conn` as any
/// panel reads it (GetLayout(0, -1, [])); benchmarks read berth's menu this
/// way while a real panel owns the watcher.
pub fn layout(conn: &Connection, item: &str) -> zbus::Result<MenuNode> {
    let proxy = menu_proxy(conn, item)?;
    let reply = proxy.call_method("GetLayout", &(0i32, -1i32, Vec::<String>::new()))?;
    let body = reply.body();
    type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
    let (_revision, (id, props, children)): (u32, Layout) = body.deserialize()?;
    let props = props.iter().map(|(k, v)| (k.clone(), &**v)).collect();
    let children = children.iter().map(|c| &**c).collect::<Vec<_>>();
    node(id, props, &children)
        .ok_or_else(|| zbus::Error::Failure("malformed dbusmenu layout".into()))
}

impl MenuNode {
    /// The direct child whose label starts with `prefix`.
    pub fn child(&self, prefix: &str) -> Option<&MenuNode> {
        self.children.iter().find(|c| c.label.starts_with(prefix))
    }

    pub fn labels(&self) -> Vec<&str> {
        self.children
            .iter()
            .map(|c| if c.separator { "---" } else { c.label.as_str() })
            .collect()
    }

    /// An indented dump for assertion messages.
    pub fn render(&self) -> String {
        fn walk(node: &MenuNode, depth: usize, out: &mut String) {
            for c in &node.children {
                let label = if c.separator { "---" } else { &c.label };
                let off = if c.enabled { "" } else { "  (disabled)" };
                out.push_str(&format!("{}{label}{off}\n", "  ".repeat(depth)));
                walk(c, depth + 1, out);
            }
        }
        let mut out = String::new();
        walk(self, 0, &mut out);
        out
    }
}

/// `(ia{sv}av)` into a [`MenuNode`].
fn parse(value: &Value<'_>) -> Option<MenuNode> {
    let value = match value {
        Value::Value(inner) => inner,
        other => other,
    };
    let Value::Structure(s) = value else {
        return None;
    };
    let [Value::I32(id), Value::Dict(props), Value::Array(children)] = s.fields() else {
        return None;
    };
    let mut map: HashMap<String, &Value<'_>> = HashMap::new();
    for (k, v) in props.iter() {
        if let Value::Str(k) = k {
            map.insert(k.to_string(), v);
        }
    }
    let children: Vec<&Value<'_>> = children.inner().iter().collect();
    node(*id, map, &children)
}

fn node(id: i32, props: HashMap<String, &Value<'_>>, children: &[&Value<'_>]) -> Option<MenuNode> {
    let map: HashMap<String, &Value<'_>> = props
        .into_iter()
        .map(|(k, v)| match v {
            Value::Value(inner) => (k, &**inner),
            other => (k, other),
        })
        .collect();
    let text = |key: &str| match map.get(key) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    };
    let enabled = !matches!(map.get("enabled"), Some(Value::Bool(false)));
    Some(MenuNode {
        id,
        label: unmnemonic(&text("label").unwrap_or_default()),
        enabled,
        separator: text("type").as_deref() == Some("separator"),
        checked: (text("toggle-type").as_deref() == Some("checkmark"))
            .then(|| matches!(map.get("toggle-state"), Some(Value::I32(1)))),
        children: children.iter().filter_map(|c| parse(c)).collect(),
    })
}

/// dbusmenu labels use `_` for a mnemonic and `__` for a literal `_`.
fn unmnemonic(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut chars = label.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '_' {
            if chars.peek() == Some(&'_') {
                chars.next();
                out.push('_');
            }
        } else {
            out.push(c);
        }
    }
    out
}
