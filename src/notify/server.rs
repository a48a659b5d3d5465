//! The notification server on the session bus (org.freedesktop.Notifications),
//! through zbus's typed proxy.
//!
//! Everything here runs in one tokio task that owns the connection, so a
//! server that hangs holds up only the next notification, never the tray,
//! the socket or a job: every call has [`TIMEOUT`], the connection is opened
//! lazily at the first notification (an idle berth never touches the bus),
//! and a missing server or bus costs one debug line per outage.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use futures_lite::StreamExt;
use zbus::zvariant::Value;

use super::limit::Note;
use crate::supervisor::SupervisorHandle;
use crate::verb::Verb;

/// The longest any bus call may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// How many shown notifications remember their actions.
const REMEMBERED: usize = 64;
/// Action keys (the labels are what the server draws).
const RESTART: &str = "restart";
const OPEN_LOG: &str = "open-log";

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
trait Notifications {
    fn get_capabilities(&self) -> zbus::Result<Vec<String>>;

    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, Value<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;

    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;
}

/// What the server said it can do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub actions: bool,
    pub markup: bool,
}

impl Capabilities {
    pub fn from_list(list: &[String]) -> Self {
        Self {
            actions: list.iter().any(|c| c == "actions"),
            markup: list.iter().any(|c| c == "body-markup"),
        }
    }

    /// The actions array of `Notify`: key, label, key, label.
    pub fn actions(&self) -> &'static [&'static str] {
        if self.actions {
            &[RESTART, "Restart", OPEN_LOG, "Open log"]
        } else {
            &[]
        }
    }
}

/// Body text as the server will read it: escaped when it parses markup.
pub fn body_text(body: &str, caps: &Capabilities) -> String {
    if !caps.markup {
        return body.to_owned();
    }
    body.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Shown notifications that carry actions: server id -> (backend, log).
type Clickable = std::sync::Arc<std::sync::Mutex<VecDeque<(u32, String, Option<PathBuf>)>>>;

struct Session {
    proxy: NotificationsProxy<'static>,
    caps: Option<Capabilities>,
    shown: Clickable,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(l) = self.listener.take() {
            l.abort();
        }
    }
}

/// Sends each note it receives, as the application `app`; ends when the
/// sender is dropped.
pub async fn run(
    mut notes: tokio::sync::mpsc::Receiver<Note>,
    handle: SupervisorHandle,
    app: crate::paths::AppName,
) {
    let mut session: Option<Session> = None;
    // One debug line per outage: set after a failure, cleared by a success.
    let mut down = false;
    while let Some(note) = notes.recv().await {
        let result = send(&mut session, &note, &handle, &app).await;
        match result {
            Ok(()) => down = false,
            Err(e) => {
                if !down {
                    tracing::debug!(error = %e, "no notification shown (no notification server?)");
                }
                down = true;
                // A broken connection is opened again next time.
                if matches!(e, SendError::Connect(_)) {
                    session = None;
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("cannot reach the session bus: {0}")]
    Connect(String),
    #[error("{0}")]
    Call(String),
    #[error("the notification server did not answer within {TIMEOUT:?}")]
    Timeout,
}

async fn timed<T>(
    call: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, SendError> {
    match tokio::time::timeout(TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SendError::Call(e.to_string())),
        Err(_) => Err(SendError::Timeout),
    }
}

async fn connect() -> Result<Session, SendError> {
    let connect = async {
        let conn = zbus::connection::Builder::session()?
            .method_timeout(TIMEOUT)
            .build()
            .await?;
        NotificationsProxy::builder(&conn)
            // No property cache: nothing here reads properties, and filling
            // it would be one more call to a server that may hang.
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
    };
    match tokio::time::timeout(TIMEOUT, connect).await {
        Ok(Ok(proxy)) => Ok(Session {
            proxy,
            caps: None,
            shown: Clickable::default(),
            listener: None,
        }),
        Ok(Err(e)) => Err(SendError::Connect(e.to_string())),
        Err(_) => Err(SendError::Connect(format!("no answer within {TIMEOUT:?}"))),
    }
}

async fn send(
    session: &mut Option<Session>,
    note: &Note,
    handle: &SupervisorHandle,
    app: &crate::paths::AppName,
) -> Result<(), SendError> {
    if session.is_none() {
        *session = Some(connect().await?);
    }
    let Some(s) = session.as_mut() else {
        return Ok(());
    };
    if s.caps.is_none() {
        let caps = Capabilities::from_list(&timed(s.proxy.get_capabilities()).await?);
        if caps.actions {
            s.listener = listen(&s.proxy, s.shown.clone(), handle.clone()).await;
        }
        s.caps = Some(caps);
    }
    let caps = s.caps.clone().unwrap_or_default();
    let mut hints = HashMap::new();
    // 2 = critical: a crash stays until the user has seen it; 1 = normal:
    // news (an update found or applied) goes away as the server decides.
    hints.insert("urgency", Value::U8(if note.urgent { 2 } else { 1 }));
    let (icon, actions) = if note.urgent {
        ("dialog-error", caps.actions())
    } else {
        // Restart and Open log answer trouble, not news.
        ("software-update-available", &[][..])
    };
    let id = timed(s.proxy.notify(
        app.as_str(),
        0,
        icon,
        &note.summary,
        &body_text(&note.body, &caps),
        actions,
        hints,
        -1,
    ))
    .await?;
    tracing::debug!(backend = %note.id, id, summary = %note.summary, "notification shown");
    if !actions.is_empty() {
        let mut shown = s
            .shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shown.len() == REMEMBERED {
            shown.pop_front();
        }
        shown.push_back((id, note.id.clone(), note.log.clone()));
    }
    Ok(())
}

/// Follows ActionInvoked and does what the tray's items of the same name do.
async fn listen(
    proxy: &NotificationsProxy<'static>,
    shown: Clickable,
    handle: SupervisorHandle,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut stream = match timed(proxy.receive_action_invoked()).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(error = %e, "cannot follow notification actions");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        while let Some(signal) = stream.next().await {
            let Ok(args) = signal.args() else { continue };
            let found = shown
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .find(|(id, ..)| *id == args.id)
                .map(|(_, backend, log)| (backend.clone(), log.clone()));
            let Some((backend, log)) = found else {
                continue;
            };
            tracing::info!(backend = %backend, action = %args.action_key, "notification action");
            match args.action_key.as_str() {
                RESTART => {
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle.command(&backend, Verb::restart()).await {
                            tracing::warn!(backend = %backend, "{e}");
                        }
                    });
                }
                OPEN_LOG => match log {
                    Some(log) => crate::opener::open_with_desktop(&log, handle.env_remove()),
                    None => tracing::warn!(backend = %backend, "no log file yet"),
                },
                _ => {}
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_only_when_the_server_advertises_them() {
        let none = Capabilities::from_list(&["body".into()]);
        assert!(none.actions().is_empty());
        let some = Capabilities::from_list(&["actions".into(), "body-markup".into()]);
        assert_eq!(
            some.actions(),
            &["restart", "Restart", "open-log", "Open log"]
        );
    }

    #[test]
    fn markup_is_escaped_only_for_servers_that_read_it() {
        let plain = Capabilities::default();
        assert_eq!(body_text("a <b> & c", &plain), "a <b> & c");
        let markup = Capabilities::from_list(&["body-markup".into()]);
        assert_eq!(body_text("a <b> & c", &markup), "a &lt;b&gt; &amp; c");
    }
}
