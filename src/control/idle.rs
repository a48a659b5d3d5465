//! Load shedding for the control socket: the connections that are waiting
//! for a request, oldest first, so a new client can push one out.
//!
//! A fixed cap on connections alone lets anyone lock every CLI out by
//! opening idle sockets (513 of them did, for the 10 s idle timeout). Idle
//! connections cost nothing to drop: they have no request in flight. So
//! when the server is full, or out of file descriptors, it closes the one
//! that has been idle longest and serves the newcomer, as nginx does with
//! keep-alive connections. A connection carrying out a request is never
//! pushed out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// The idle connections of one server, keyed by when they became idle.
#[derive(Debug, Clone, Default)]
pub struct IdleClients {
    inner: Arc<Mutex<Waiters>>,
}

#[derive(Debug, Default)]
struct Waiters {
    next: u64,
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
}

/// A connection's place in the idle list; leaving it (drop) takes it out.
#[derive(Debug)]
pub struct IdleTicket {
    clients: IdleClients,
    key: u64,
    /// Fires when the server wants this connection closed.
    pub evicted: oneshot::Receiver<()>,
}

impl IdleClients {
    /// Registers a connection that now waits for a request.
    pub fn enter(&self) -> IdleTicket {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let key = inner.next;
        inner.next += 1;
        inner.waiting.insert(key, tx);
        IdleTicket {
            clients: self.clone(),
            key,
            evicted: rx,
        }
    }

    /// Asks the longest-idle connection to close; false if none is idle.
    pub fn evict_oldest(&self) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((_, tx)) = inner.waiting.pop_first() {
            // A closed receiver is a connection already on its way out.
            if tx.send(()).is_ok() {
                return true;
            }
        }
        false
    }

    /// How many connections wait for a request (for tests and logs).
    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for IdleTicket {
    fn drop(&mut self) {
        let mut inner = self
            .clients
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        inner.waiting.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_goes_first() {
        let clients = IdleClients::default();
        let mut first = clients.enter();
        let mut second = clients.enter();
        assert_eq!(clients.len(), 2);
        assert!(clients.evict_oldest());
        assert!(first.evicted.try_recv().is_ok());
        assert!(second.evicted.try_recv().is_err());
        drop(second);
        assert!(clients.is_empty());
        assert!(!clients.evict_oldest());
    }
}
