//! Counters shared by every process that opens a store: a small file under `locks/`
//! mapped into memory and used only as aligned atomic `u64`s (the block cache's generation,
//! the access generation). A process that cannot map one does without what it serves.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::AtomicU64;

/// `N` atomic counters in a shared file.
pub(crate) struct SharedCounters<const N: usize> {
    map: memmap2::MmapMut,
}

impl<const N: usize> SharedCounters<N> {
    /// Map `file` (made, and grown to `N` counters, if need be); `None` when it cannot be.
    pub(crate) fn open(file: &Path) -> Option<SharedCounters<N>> {
        let len = 8 * N;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(file)
            .ok()?;
        if f.metadata().ok()?.len() < len as u64 {
            f.set_len(len as u64).ok()?;
        }
        // SAFETY: the file is only ever accessed as aligned atomic u64s (see `get`); it is
        // never truncated while mapped.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(&f) }.ok()?;
        Some(SharedCounters { map })
    }

    /// Counter `i` (below `N`).
    pub(crate) fn get(&self, i: usize) -> &AtomicU64 {
        assert!(i < N, "counter {i} of {N}");
        // SAFETY: the map holds N u64s, is page-aligned and lives as long as `self`;
        // AtomicU64 has the size and alignment of u64.
        unsafe { &*(self.map.as_ptr().add(8 * i) as *const AtomicU64) }
    }
}
