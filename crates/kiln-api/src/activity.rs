//! Recent activity of this daemon, for the web UI's dashboard: an in-memory ring of the
//! last events (adds, imports, pins added and removed, GC runs) made through its HTTP
//! handlers. Nothing is persisted: a restart starts an empty ring, and work done by the CLI
//! directly on the repository is not seen.

use kiln_core::Cid;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// How many events the daemon keeps.
pub const DEFAULT_CAPACITY: usize = 50;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Content added (a root of `add`).
    Add,
    /// A root imported from a CAR (`dag/import`).
    Import,
    /// A pin added.
    Pin,
    /// A pin removed.
    Unpin,
    /// Garbage collection ran.
    Gc,
}

impl Kind {
    /// Short lower-case label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Add => "add",
            Kind::Import => "import",
            Kind::Pin => "pin",
            Kind::Unpin => "unpin",
            Kind::Gc => "gc",
        }
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it was recorded.
    pub at: SystemTime,
    /// What happened.
    pub kind: Kind,
    /// The content it was about, if any.
    pub cid: Option<Cid>,
    /// A short human-readable detail (a pin name, a GC summary), possibly empty.
    pub detail: String,
}

/// The ring buffer: a cheap `Clone` handle shared by every handler.
#[derive(Debug, Clone)]
pub struct Activity {
    inner: Arc<Mutex<VecDeque<Event>>>,
    capacity: usize,
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new(DEFAULT_CAPACITY)
    }
}

impl Activity {
    /// An empty ring keeping the last `capacity` events (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Activity {
            inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))),
            capacity,
        }
    }

    /// Record an event now, dropping the oldest if the ring is full.
    pub fn record(&self, kind: Kind, cid: Option<Cid>, detail: impl Into<String>) {
        let event = Event {
            at: SystemTime::now(),
            kind,
            cid,
            detail: detail.into(),
        };
        // A poisoned lock only means another thread panicked mid-push; the ring is still valid.
        let mut ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// The recorded events, newest first.
    pub fn recent(&self) -> Vec<Event> {
        let ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_first_and_drops_the_oldest() {
        let a = Activity::new(3);
        for i in 0..5 {
            a.record(Kind::Gc, None, format!("run {i}"));
        }
        let details: Vec<String> = a.recent().into_iter().map(|e| e.detail).collect();
        assert_eq!(details, ["run 4", "run 3", "run 2"]);
        let b = a.clone();
        b.record(Kind::Pin, None, "shared");
        assert_eq!(a.recent()[0].detail, "shared");
        assert_eq!(a.recent().len(), 3);
    }
}
