//! What the jobs, the metrics task and the handle share: the settings, the
//! board and the channel its snapshots go out on, the live process groups,
//! the guardian link and the event broadcast.
//!
//! It sits below the jobs and the handle alike, so a job reaches the board
//! without importing the handle that created it. The handle's own table of
//! jobs is not here: only the handle sends to jobs.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::watch;

use super::board::Board;
use super::lock::lock;
use super::reach::Reach;
use super::{events, group, guardian};
use crate::status::{Config, Snapshot};

pub struct Shared {
    pub config: Config,
    board: Mutex<Board>,
    tx: watch::Sender<Arc<Snapshot>>,
    pub groups: group::LiveGroups,
    pub guardian: Option<guardian::Guardians>,
    pub events: events::Events,
    /// Dependents' requests to their dependencies, carried to those jobs by
    /// the handle (see `reach`).
    reaches: tokio::sync::mpsc::UnboundedSender<Reach>,
    /// Each backend's live log lines, for followers.
    pub feeds: super::logs::feed::Feeds,
    /// How the jobs read an update's files (v3); unset, updates are
    /// refused (see [`Readers`]).
    pub readers: OnceLock<Readers>,
    /// The winners' `update.check` plans, set by the handle at each
    /// catalog (see [`super::UpdateChecks`]).
    pub checks: watch::Sender<super::UpdateChecks>,
}

/// How a job reads an update's files: as the launcher reads the backends
/// folders (`${resources}`, the instance), judged by the launcher's trusted
/// key folders (loaded again for each update, as a SIGHUP would).
#[derive(Debug, Clone)]
pub struct Readers {
    pub places: crate::manifest::Places,
    pub keys: crate::trust::Policy,
}

impl Shared {
    /// The shared parts of a new supervisor, and the receiver of its
    /// snapshots.
    pub fn new(
        config: Config,
        guardian: Option<guardian::Guardians>,
        reaches: tokio::sync::mpsc::UnboundedSender<Reach>,
    ) -> (Self, watch::Receiver<Arc<Snapshot>>) {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let shared = Self {
            config,
            board: Mutex::new(Board::default()),
            tx,
            groups: group::LiveGroups::default(),
            guardian,
            events: events::Events::default(),
            reaches,
            feeds: Default::default(),
            readers: OnceLock::new(),
            checks: watch::Sender::new(super::UpdateChecks::new()),
        };
        (shared, rx)
    }

    pub fn lock_board(&self) -> MutexGuard<'_, Board> {
        lock(&self.board)
    }

    pub fn publish(&self, board: &Board) {
        self.tx.send_replace(Arc::new(board.snapshot()));
    }

    /// Asks the handle to carry a dependent's request to its dependency.
    pub fn reach(&self, reach: Reach) {
        // Closed only once the supervisor is gone, with the jobs.
        let _ = self.reaches.send(reach);
    }

    /// A removed job is done: it leaves the board (the handle drops it from
    /// its table once the job's task has ended).
    pub fn remove_job(&self, id: &str, generation: u64) {
        let mut board = self.lock_board();
        board.remove(id, generation);
        self.publish(&board);
    }
}
