//! Pack segments: append-only files of self-describing block records.
//!
//! ```text
//! pack   = header record*
//! header = "KILNPAK1" u64le(pack id)                                  (16 bytes)
//! record = u32le(0x4b424c4b "KLBK") u32le(data len) u16le(cid len) cid data
//! ```
//! The index stores the offset of `data`. Bytes after the last indexed record (a crash during
//! an append) are never referenced and are harmless.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Error, Result};

const PACK_MAGIC: &[u8; 8] = b"KILNPAK1";
/// Size of the pack file header.
pub(crate) const HEADER_LEN: u64 = 16;
const RECORD_MAGIC: u32 = 0x4b42_4c4b;
/// Size of a record header (before the CID bytes).
pub(crate) const RECORD_HEADER: u64 = 10;
/// Start early write-back (sync_file_range) every this many bytes.
/// Blocks at least this large are written straight to the file, bypassing the buffer.
const DIRECT_WRITE: usize = 64 * 1024;
const WRITEBACK_CHUNK: u64 = 8 << 20;

/// The file name of pack `id` inside `packs/`.
pub(crate) fn pack_path(dir: &Path, id: i64) -> PathBuf {
    dir.join(format!("{id:08}.pack"))
}

/// Is this the name of a pack file being created (left over if its creator crashed)?
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.ends_with(".pack.tmp")
}

/// Parse a pack file name back into its id.
pub(crate) fn pack_id_from_name(name: &str) -> Option<i64> {
    name.strip_suffix(".pack")?.parse().ok()
}

/// fsync a directory so that file creations/removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Appends records to one exclusively locked pack file.
#[derive(Debug)]
pub(crate) struct PackWriter {
    id: i64,
    dir: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    /// Logical end of the file, including bytes still in the buffer.
    pos: u64,
    /// Everything before this offset has been handed to sync_file_range.
    hinted: u64,
    /// Has the directory entry been made durable?
    dir_synced: bool,
    /// Does the file hold bytes not yet fdatasync'ed?
    dirty: bool,
}

impl PackWriter {
    /// Create pack `id` (which must not exist yet) and lock it.
    pub fn create(dir: &Path, id: i64) -> Result<PackWriter> {
        // Created under a temporary name and renamed once locked: a file named `*.pack` that
        // can be locked is never being written, which is what GC relies on.
        let path = pack_path(dir, id);
        let tmp = path.with_extension("pack.tmp");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => Error::io(&tmp, e),
            TryLockError::WouldBlock => Error::io(&tmp, io::Error::other("new pack is locked")),
        })?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER_LEN as usize];
        header[..8].copy_from_slice(PACK_MAGIC);
        header[8..].copy_from_slice(&(id as u64).to_le_bytes());
        out.write_all(&header).map_err(|e| Error::io(&path, e))?;
        Ok(PackWriter {
            id,
            dir: dir.to_owned(),
            path,
            out,
            pos: HEADER_LEN,
            hinted: 0,
            dir_synced: false,
            dirty: true,
        })
    }

    /// The pack's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Current size of the pack in bytes (including buffered bytes).
    pub fn len(&self) -> u64 {
        self.pos
    }

    /// Append one record; returns the offset of its data.
    pub fn append(&mut self, cid: &[u8], data: &[u8]) -> Result<u64> {
        let mut head = [0u8; RECORD_HEADER as usize];
        head[..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        head[4..8].copy_from_slice(&(data.len() as u32).to_le_bytes());
        head[8..10].copy_from_slice(&(cid.len() as u16).to_le_bytes());
        let res = self
            .out
            .write_all(&head)
            .and_then(|()| self.out.write_all(cid))
            .and_then(|()| {
                if data.len() >= DIRECT_WRITE {
                    // Large blocks skip the buffer: one copy (into the page cache), not two.
                    self.out.flush()?;
                    self.out.get_mut().write_all(data)
                } else {
                    self.out.write_all(data)
                }
            });
        if let Err(e) = res {
            return Err(Error::io(&self.path, e));
        }
        let data_offset = self.pos + RECORD_HEADER + cid.len() as u64;
        self.pos = data_offset + data.len() as u64;
        self.dirty = true;
        self.writeback_hint();
        Ok(data_offset)
    }

    /// Ask the kernel to start writing back full chunks now, so that the final fdatasync of a
    /// large batch has little left to do (Linux only; a hint, errors ignored).
    fn writeback_hint(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let written = self.pos - self.out.buffer().len() as u64;
            if written >= self.hinted + WRITEBACK_CHUNK {
                let fd = self.out.get_ref().as_raw_fd();
                // SAFETY: plain syscall on a file descriptor we own; no memory is passed.
                unsafe {
                    libc::sync_file_range(
                        fd,
                        self.hinted as libc::off64_t,
                        (written - self.hinted) as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
                self.hinted = written;
            }
        }
    }

    /// Make every appended record durable: flush the buffer, fdatasync the file, and on first
    /// use fsync the directory so the file itself survives a power loss.
    pub fn sync(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| Error::io(&self.path, e))?;
        if !self.dir_synced {
            sync_dir(&self.dir)?;
            self.dir_synced = true;
        }
        self.dirty = false;
        Ok(())
    }
}

/// Read-only pack handles shared by all readers of a [`crate::Store`].
///
/// A cached handle keeps working after GC unlinks the file (the bytes of an indexed record never
/// change), so only opening can fail with "not found"; callers then re-read the index.
#[derive(Debug)]
pub(crate) struct PackFiles {
    dir: PathBuf,
    open: Mutex<HashMap<i64, Arc<File>>>,
    reads: AtomicU64,
}

const MAX_OPEN: usize = 256;

impl PackFiles {
    pub fn new(dir: PathBuf) -> Self {
        PackFiles {
            dir,
            open: Mutex::new(HashMap::new()),
            reads: AtomicU64::new(0),
        }
    }

    fn handle(&self, id: i64) -> Result<Option<Arc<File>>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = open.get(&id) {
            return Ok(Some(f.clone()));
        }
        let path = pack_path(&self.dir, id);
        let file = match File::open(&path) {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        open.insert(id, file.clone());
        Ok(Some(file))
    }

    /// Drop cached handles of packs that GC has unlinked, so their space is freed.
    fn prune_unlinked(&self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, f| f.metadata().map(|m| m.nlink() > 0).unwrap_or(false));
    }

    /// Forget the handle of pack `id` (after this process deleted it).
    pub fn forget(&self, id: i64) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(&id);
    }

    /// Read `len` bytes at `offset` of pack `id`. `Ok(None)` if the pack file does not exist.
    pub fn read(&self, id: i64, offset: u64, len: u64) -> Result<Option<Vec<u8>>> {
        if self.reads.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.prune_unlinked();
        }
        let Some(file) = self.handle(id)? else {
            return Ok(None);
        };
        read_exact_at_uninit(&file, len as usize, offset)
            .map_err(|e| {
                let path = pack_path(&self.dir, id);
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    Error::Corrupt(format!(
                        "{} is truncated: record at {offset} (+{len}) is past its end",
                        path.display()
                    ))
                } else {
                    Error::io(path, e)
                }
            })
            .map(Some)
    }
}

/// Read exactly `len` bytes at `offset` into a fresh buffer without zero-filling it first
/// (block reads are the hot path of `cat` and the gateway).
fn read_exact_at_uninit(file: &File, len: usize, offset: u64) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    let mut done = 0usize;
    while done < len {
        let at = libc::off_t::try_from(offset + done as u64)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        // SAFETY: the destination is the vector's own allocation, `len - done` bytes past the
        // `done` bytes already written; pread writes at most that many bytes and no reference
        // to uninitialised memory is created.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(done).cast(),
                len - done,
                at,
            )
        };
        match n {
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            n => done += n as usize,
        }
    }
    // SAFETY: the loop above initialised all `len` bytes.
    unsafe { buf.set_len(len) };
    Ok(buf)
}
