//! The one seam between the control socket and whoever runs the backends:
//! the supervisor's handle in berth, a scripted fake in the protocol tests.
//! A verb goes through one call; the socket never looks inside it.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use crate::status::{ActionError, Outcome, Snapshot};
use crate::supervisor::logs::history::Source as LogSource;
use crate::supervisor::talk::Replies;
use crate::supervisor::{Ran, SupervisorHandle};
use crate::verb::Verb;

/// What the control socket needs from whoever runs the backends.
pub trait Backends: Clone + Send + Sync + 'static {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>>;
    fn snapshot(&self) -> Arc<Snapshot> {
        self.subscribe().borrow().clone()
    }
    fn command(
        &self,
        id: &str,
        verb: Verb,
    ) -> impl Future<Output = Result<Outcome, ActionError>> + Send;
    fn start_all(&self) -> impl Future<Output = ()> + Send;
    fn stop_all(&self) -> impl Future<Output = ()> + Send;
    /// Someone reads the statuses: look again for missing executables and
    /// sample CPU/RSS, so what the reply shows is current.
    fn look(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// Queues one line for `id`'s stdin; with `wait`, the stdout JSON
    /// objects from then on (v2).
    fn send(
        &self,
        id: &str,
        line: String,
        wait: bool,
    ) -> impl Future<Output = Result<Option<Replies>, ActionError>> + Send {
        let _ = (id, line, wait);
        async { Err(ActionError::Unsupported("send")) }
    }
    /// Follows `id`'s log: the live lines and the history before them (v3).
    fn follow_log(&self, id: &str) -> Result<LogSource, ActionError> {
        let _ = id;
        Err(ActionError::Unsupported("logs"))
    }
    /// Runs one of the manifest's actions (v2).
    fn action(
        &self,
        id: &str,
        label: &str,
    ) -> impl Future<Output = Result<Ran, ActionError>> + Send {
        let _ = (id, label);
        async { Err(ActionError::Unsupported("action")) }
    }
}

impl Backends for SupervisorHandle {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        SupervisorHandle::subscribe(self)
    }
    async fn command(&self, id: &str, verb: Verb) -> Result<Outcome, ActionError> {
        SupervisorHandle::command(self, id, verb).await
    }
    async fn start_all(&self) {
        SupervisorHandle::start_all(self).await
    }
    async fn stop_all(&self) {
        SupervisorHandle::stop_all(self).await
    }
    async fn look(&self) {
        SupervisorHandle::look(self).await
    }
    async fn send(
        &self,
        id: &str,
        line: String,
        wait: bool,
    ) -> Result<Option<Replies>, ActionError> {
        SupervisorHandle::send(self, id, line, wait).await
    }
    async fn action(&self, id: &str, label: &str) -> Result<Ran, ActionError> {
        SupervisorHandle::action(self, id, label).await
    }
    fn follow_log(&self, id: &str) -> Result<LogSource, ActionError> {
        SupervisorHandle::follow_log(self, id)
    }
}
