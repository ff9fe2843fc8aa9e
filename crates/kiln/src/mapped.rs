//! Large regular files are read through memory-mapped windows: chunks are hashed and
//! stored straight from the page cache, with no copy into a read buffer.
//!
//! Caveat: a file truncated by another process while it is being added makes the kernel
//! kill `kiln add` with SIGBUS (as for any mmap reader). The store stays consistent: nothing
//! of an unfinished add is committed.

use kiln_core::import::{Chunk, ChunkSource};
use memmap2::{Advice, Mmap, MmapOptions};
use std::fs::File;
use std::io;
use std::sync::Arc;

/// Files smaller than this are read with `read`.
pub const MIN_MAPPED: u64 = 8 << 20;
/// Target size of one mapped window.
const WINDOW: u64 = 16 << 20;
const PAGE: u64 = 4096;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Chunks of a regular file from mapped windows. Each window holds whole chunks and starts
/// on a page boundary; it is unmapped when the last chunk referring to it is dropped.
pub struct MappedFile {
    file: File,
    len: u64,
    pos: u64,
    window_len: u64,
    window: Option<(Arc<MapBytes>, u64)>,
}

struct MapBytes(Mmap);

impl AsRef<[u8]> for MapBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MappedFile {
    /// A mapped reader for `file` of `len` bytes with `chunk_size` chunks, or `None` when
    /// mapping would not pay (small files, chunk sizes with no small page-aligned multiple).
    pub fn new(file: File, len: u64, chunk_size: usize) -> Option<MappedFile> {
        let chunk = chunk_size as u64;
        let unit = chunk / gcd(chunk, PAGE) * PAGE; // lcm(chunk, page)
        if len < MIN_MAPPED || unit > 4 * WINDOW {
            return None;
        }
        let window_len = unit * WINDOW.div_ceil(unit);
        Some(MappedFile {
            file,
            len,
            pos: 0,
            window_len,
            window: None,
        })
    }
}

impl ChunkSource for MappedFile {
    fn next_chunk(&mut self, size: usize, _spare: Option<Vec<u8>>) -> io::Result<Chunk> {
        if self.pos >= self.len {
            return Ok(Chunk::Owned(Vec::new()));
        }
        let start = self.pos / self.window_len * self.window_len;
        let map = match &self.window {
            Some((m, s)) if *s == start => Arc::clone(m),
            _ => {
                let wlen = (self.len - start).min(self.window_len);
                // SAFETY: the mapping is read-only and private to this process; the file is
                // only read. If another process truncates it meanwhile, access raises SIGBUS
                // (documented above) rather than undefined behaviour in safe code.
                let m = unsafe {
                    MmapOptions::new()
                        .offset(start)
                        .len(wlen as usize)
                        .map(&self.file)?
                };
                let _ = m.advise(Advice::Sequential);
                let m = Arc::new(MapBytes(m));
                self.window = Some((Arc::clone(&m), start));
                m
            }
        };
        let from = (self.pos - start) as usize;
        let to = ((self.pos + size as u64).min(self.len) - start) as usize;
        let to = to.min(map.as_ref().as_ref().len());
        self.pos = start + to as u64;
        Ok(Chunk::Shared {
            buf: map,
            start: from,
            end: to,
        })
    }
}
