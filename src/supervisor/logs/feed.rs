//! The live side of backend logs: every line a backend writes, handed to
//! the clients following it (`{"cmd": "logs", "follow": true}`), with
//! where its history in the file ends, so a follower gets each line once.
//!
//! ## How a follower gets every line exactly once
//!
//! The pump copies each line into a batch as it writes it to the log (a
//! copy into one growing buffer, no allocation per line, nothing to send
//! while nobody follows) and hands the batch out when it flushes the log,
//! together with the new end of the file ([`Position`]), under the feed's
//! lock. A follower subscribes and reads that end under the same lock:
//! the file up to it holds every line written before, the batches after
//! it every line written since. Rotation does not matter: the position
//! names the file by inode, wherever it was renamed to.
//!
//! ## Which run wrote a line of history
//!
//! The log file marks each line's time and stream, not its process. Each
//! run's start stamp is kept here ([`Runs`]); a line of history belongs to
//! the last run that started at or before its stamp (a line is stamped
//! after its run started). Lines older than the first run this launcher
//! started have no known run.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::file::stamp_now;
use crate::supervisor::lock::lock;

/// Batches a follower may fall behind by before it is closed (it reads
/// them into its own bounded outbox at once, so only a starved follower
/// lags).
const CAPACITY: usize = 1024;
/// Runs remembered per backend, for the history's `run`.
const RUNS: usize = 256;

/// The end of what a log file holds: its `(device, inode)` and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

/// Where `log` ends now; `None` when there is no log.
fn current_end(log: &std::path::Path) -> Option<Position> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(log).ok()?;
    Some(Position {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
    })
}

/// Lines of one run written between two flushes.
#[derive(Debug, Default)]
pub struct Batch {
    /// The run's pid.
    pub run: u32,
    text: Vec<u8>,
    /// `(is stderr, end of the line in text)`.
    ends: Vec<(bool, usize)>,
}

impl Batch {
    /// Each line: `(is stderr, text)`.
    pub fn lines(&self) -> impl Iterator<Item = (bool, &[u8])> {
        let mut start = 0;
        self.ends.iter().map(move |&(stderr, end)| {
            let line = &self.text[start..end];
            start = end;
            (stderr, line)
        })
    }
}

/// Run start stamps, oldest first: `(stamp, pid)`.
#[derive(Debug, Clone, Default)]
pub struct Runs(VecDeque<([u8; 24], u32)>);

impl Runs {
    /// The pid of the run that wrote a line stamped `stamp`.
    pub fn of(&self, stamp: &[u8]) -> Option<u32> {
        self.0
            .iter()
            .rev()
            .find(|(start, _)| start.as_slice() <= stamp)
            .map(|&(_, pid)| pid)
    }
}

#[derive(Default)]
struct Ends {
    /// Where the file ended at the last flush; `None` before this
    /// launcher's first run of the backend.
    position: Option<Position>,
    runs: Runs,
}

/// One backend's feed, for every run.
pub struct Feed {
    tx: broadcast::Sender<Arc<Batch>>,
    ends: Mutex<Ends>,
}

/// What a new follower starts from.
pub struct Follow {
    pub rx: broadcast::Receiver<Arc<Batch>>,
    /// The end of the history in the file (`None`: there is no log).
    pub position: Option<Position>,
    pub runs: Runs,
}

impl Feed {
    fn new() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
            ends: Mutex::new(Ends::default()),
        }
    }

    /// Subscribes, with where the history it does not get ends: where the
    /// last flush left `log`, else (no run of this launcher has written
    /// it) where it ends now.
    pub fn follow(&self, log: &std::path::Path) -> Follow {
        let ends = lock(&self.ends);
        Follow {
            rx: self.tx.subscribe(),
            position: ends.position.or_else(|| current_end(log)),
            runs: ends.runs.clone(),
        }
    }
}

/// Every backend's feed, by id (kept across runs, removals and reloads: a
/// follower of an id follows whatever runs under it).
#[derive(Default)]
pub struct Feeds(Mutex<HashMap<String, Arc<Feed>>>);

impl Feeds {
    pub fn get(&self, id: &str) -> Arc<Feed> {
        lock(&self.0)
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Feed::new()))
            .clone()
    }

    /// A new run of `id` as pid `run`, writing the log that ends at
    /// `position` now: its lines go out through the returned writer.
    pub fn writer(&self, id: &str, run: u32, position: Position) -> FeedWriter {
        let feed = self.get(id);
        {
            let mut ends = lock(&feed.ends);
            ends.position = Some(position);
            if ends.runs.0.len() == RUNS {
                ends.runs.0.pop_front();
            }
            ends.runs.0.push_back((stamp_now(), run));
        }
        FeedWriter {
            feed,
            batch: Batch {
                run,
                ..Batch::default()
            },
        }
    }
}

/// A pump's side of the feed.
pub struct FeedWriter {
    feed: Arc<Feed>,
    batch: Batch,
}

impl FeedWriter {
    /// A line just written to the log.
    pub fn line(&mut self, stderr: bool, text: &[u8]) {
        self.batch.text.extend_from_slice(text);
        self.batch.ends.push((stderr, self.batch.text.len()));
    }

    /// The log was flushed and now ends at `position`: the lines since the
    /// last flush go out (to nobody, cheaply, when nobody follows).
    pub fn flushed(&mut self, position: Position) {
        let mut ends = lock(&self.feed.ends);
        ends.position = Some(position);
        if self.batch.ends.is_empty() {
            return;
        }
        if self.feed.tx.receiver_count() == 0 {
            self.batch.text.clear();
            self.batch.ends.clear();
            return;
        }
        let run = self.batch.run;
        let batch = std::mem::replace(
            &mut self.batch,
            Batch {
                run,
                ..Batch::default()
            },
        );
        let _ = self.feed.tx.send(Arc::new(batch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_line_belongs_to_the_last_run_started_before_it() {
        let mut runs = Runs::default();
        runs.0.push_back((*b"2026-12-07T10:00:00.000Z", 10));
        runs.0.push_back((*b"2026-12-07T11:00:00.000Z", 11));
        assert_eq!(runs.of(b"2026-12-07T09:59:59.999Z"), None);
        assert_eq!(runs.of(b"2026-12-07T10:00:00.000Z"), Some(10));
        assert_eq!(runs.of(b"2026-12-07T10:59:00.000Z"), Some(10));
        assert_eq!(runs.of(b"2026-12-07T12:00:00.000Z"), Some(11));
    }

    #[test]
    fn a_follower_gets_the_lines_flushed_after_it_subscribed_once() {
        let feeds = Feeds::default();
        let at = |size| Position {
            dev: 1,
            ino: 2,
            size,
        };
        let mut w = feeds.writer("a", 7, at(0));
        w.line(false, b"before");
        w.flushed(at(10));
        let mut f = feeds.get("a").follow(std::path::Path::new("/nonexistent"));
        assert_eq!(f.position, Some(at(10)));
        w.line(true, b"after");
        w.line(false, b"too");
        w.flushed(at(30));
        let batch = f.rx.try_recv().unwrap();
        assert_eq!(batch.run, 7);
        let lines: Vec<_> = batch.lines().collect();
        assert_eq!(lines, vec![(true, &b"after"[..]), (false, &b"too"[..])]);
        assert!(f.rx.try_recv().is_err());
    }
}
