//! The generation of who may do what: the users, their roles and the revoked tokens. A
//! daemon checks a token on every request; reading users and the deny-list from SQLite each
//! time would cost more than the request itself, so it keeps them in memory and asks this
//! counter, one memory load, whether they changed — in any process that opened the
//! repository (the command line changes users while the daemon runs).
//!
//! Two counters in a small memory-mapped file (`locks/access`), shared by every process:
//! a writer bumps `begun` before it commits and `done` after (whether the transaction
//! committed or not). A reader may keep what it read only when the two were equal before
//! and after reading, and only for as long as `done` stays where it was: so a change is
//! seen by the next request after its commit. A writer bumps `begun` only once it holds
//! the database's write lock, so a writer killed between the two (`begun` ahead for good)
//! leaves readers reading the database every time — slower, never stale — until
//! [`crate::Store::settle_access`] (the daemon calls it at start) evens them out under the
//! write lock. Without the file (it cannot be mapped), there is no generation and readers
//! read every time.

use crate::counters::SharedCounters;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct AccessGeneration {
    shared: SharedCounters<2>,
}

impl std::fmt::Debug for AccessGeneration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessGeneration({:?})", self.current())
    }
}

/// Bumps `done` when dropped: the end of a change, committed or not.
pub(crate) struct Writing<'a>(&'a AccessGeneration);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.done().fetch_add(1, Ordering::AcqRel);
    }
}

impl AccessGeneration {
    pub(crate) fn open(file: &Path) -> Option<AccessGeneration> {
        Some(AccessGeneration {
            shared: SharedCounters::open(file)?,
        })
    }

    fn begun(&self) -> &AtomicU64 {
        self.shared.get(0)
    }

    fn done(&self) -> &AtomicU64 {
        self.shared.get(1)
    }

    /// A change starts (call before its transaction commits; the guard ends it).
    pub(crate) fn writing(&self) -> Writing<'_> {
        self.begun().fetch_add(1, Ordering::AcqRel);
        Writing(self)
    }

    /// Even the counters out (no writer can be between `begun` and its commit: the caller
    /// holds the write lock).
    pub(crate) fn settle(&self) {
        let begun = self.begun().load(Ordering::Acquire);
        self.done().store(begun, Ordering::Release);
    }

    /// The generation now, or `None` while a change is under way (or one never ended).
    pub(crate) fn current(&self) -> Option<u64> {
        let done = self.done().load(Ordering::Acquire);
        let begun = self.begun().load(Ordering::Acquire);
        (begun == done).then_some(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_in_flight_has_no_generation_and_one_that_ended_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access");
        let a = AccessGeneration::open(&path).unwrap();
        let b = AccessGeneration::open(&path).unwrap(); // another process's view
        let g0 = a.current().unwrap();
        {
            let _w = a.writing();
            assert_eq!(b.current(), None);
        }
        let g1 = b.current().unwrap();
        assert_ne!(g0, g1);
        // A writer that never ends: no generation from then on.
        std::mem::forget(a.writing());
        assert_eq!(b.current(), None);
    }
}
