//! A memory cache of small blocks, so that hot content (small files, directory nodes,
//! the roots of big files) is served without touching SQLite or the pack files.
//!
//! Blocks are immutable, so a cached block can only go stale by being deleted (GC,
//! `remove_block`), possibly by another process. Every deletion bumps a generation counter
//! kept in a small memory-mapped file shared by all processes (`locks/generation`); a
//! lookup compares it with the generation the cache was filled under (one memory load) and
//! empties the cache when it moved. Without the shared file (it cannot be mapped), the
//! cache is off.
//!
//! Eviction is two-generational per shard: new entries go to `current`; when it holds half
//! the shard's budget it becomes `previous` and the old `previous` is dropped; a hit in
//! `previous` moves the entry back to `current`. That keeps recently used blocks at a
//! fraction of an LRU's bookkeeping.

use crate::counters::SharedCounters;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Blocks larger than this are not cached (big file chunks stream from the page cache).
pub(crate) const MAX_CACHED_BLOCK: usize = 64 << 10;
const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    current: HashMap<Vec<u8>, Arc<[u8]>>,
    previous: HashMap<Vec<u8>, Arc<[u8]>>,
    current_bytes: usize,
}

pub(crate) struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    /// Bytes per shard generation.
    budget: usize,
    shared: SharedCounters<1>,
    /// The shared generation the contents were filled under.
    seen: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("budget", &self.budget)
            .finish()
    }
}

impl BlockCache {
    /// A cache of about `capacity` bytes, sharing its generation through `generation_file`.
    pub(crate) fn open(generation_file: &Path, capacity: usize) -> Option<BlockCache> {
        if capacity == 0 {
            return None;
        }
        let shared = SharedCounters::open(generation_file)?;
        let cache = BlockCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            budget: (capacity / SHARDS / 2).max(MAX_CACHED_BLOCK),
            shared,
            seen: AtomicU64::new(0),
        };
        cache
            .seen
            .store(cache.counter().load(Ordering::Acquire), Ordering::Relaxed);
        Some(cache)
    }

    fn counter(&self) -> &AtomicU64 {
        self.shared.get(0)
    }

    fn shard(&self, mh: &[u8]) -> &Mutex<Shard> {
        // The digest's last byte is uniformly distributed.
        let i = mh.last().copied().unwrap_or(0) as usize % SHARDS;
        &self.shards[i]
    }

    /// Empty the cache if blocks were deleted since it was filled.
    fn check_generation(&self) {
        let now = self.counter().load(Ordering::Acquire);
        if self.seen.load(Ordering::Acquire) != now {
            self.clear();
            self.seen.store(now, Ordering::Release);
        }
    }

    fn clear(&self) {
        for s in &self.shards {
            let mut s = s.lock().unwrap_or_else(PoisonError::into_inner);
            *s = Shard::default();
        }
    }

    /// Record that blocks were deleted (after the deletion committed): every process's cache
    /// empties on its next lookup.
    pub(crate) fn deleted(&self) {
        self.counter().fetch_add(1, Ordering::AcqRel);
        self.check_generation();
    }

    pub(crate) fn get(&self, mh: &[u8]) -> Option<Arc<[u8]>> {
        self.check_generation();
        let mut s = self
            .shard(mh)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = s.current.get(mh) {
            return Some(d.clone());
        }
        let (k, d) = s.previous.remove_entry(mh)?;
        self.insert_locked(&mut s, k, d.clone());
        Some(d)
    }

    pub(crate) fn insert(&self, mh: &[u8], data: &[u8]) {
        if data.len() > MAX_CACHED_BLOCK {
            return;
        }
        let gen_before = self.seen.load(Ordering::Acquire);
        let mut s = self
            .shard(mh)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A deletion noticed since the read began: the block may be gone; don't cache it.
        if self.counter().load(Ordering::Acquire) != gen_before || s.current.contains_key(mh) {
            return;
        }
        self.insert_locked(&mut s, mh.to_vec(), Arc::from(data));
    }

    fn insert_locked(&self, s: &mut Shard, key: Vec<u8>, data: Arc<[u8]>) {
        if s.current_bytes + data.len() > self.budget {
            s.previous = std::mem::take(&mut s.current);
            s.current_bytes = 0;
        }
        s.current_bytes += data.len() + key.len();
        s.current.insert(key, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_evicts_and_empties_on_deletion_by_another_handle() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("generation");
        let a = BlockCache::open(&file, 16 * SHARDS * 2 * MAX_CACHED_BLOCK).unwrap();
        let b = BlockCache::open(&file, 1 << 20).unwrap();
        a.insert(b"k1", b"one");
        assert_eq!(&*a.get(b"k1").unwrap(), b"one");
        assert!(a.get(b"k2").is_none());
        a.insert(b"big", &vec![0u8; MAX_CACHED_BLOCK + 1]);
        assert!(a.get(b"big").is_none(), "large blocks are not cached");
        // Another process (here: another mapping) deletes something.
        b.deleted();
        assert!(
            a.get(b"k1").is_none(),
            "cache emptied after a deletion elsewhere"
        );
        a.insert(b"k1", b"one");
        assert!(a.get(b"k1").is_some());
    }

    #[test]
    fn stays_within_budget() {
        let dir = tempfile::tempdir().unwrap();
        let c = BlockCache::open(&dir.path().join("g"), SHARDS * 2 * MAX_CACHED_BLOCK).unwrap();
        let block = vec![7u8; 1000];
        for i in 0u32..10_000 {
            let mut k = i.to_be_bytes().to_vec();
            k.push(0); // all in one shard
            c.insert(&k, &block);
        }
        let s = c.shards[0].lock().unwrap();
        let held: usize = s
            .current
            .values()
            .chain(s.previous.values())
            .map(|v| v.len())
            .sum();
        assert!(held <= 2 * c.budget, "{held} > {}", 2 * c.budget);
        assert!(!s.current.is_empty());
    }
}
