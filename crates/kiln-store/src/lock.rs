//! Lock files under `locks/`: a held `flock` means "this writer is alive".
//!
//! `flock` locks belong to an open file description, so two handles in one process exclude each
//! other exactly as two processes do, and the kernel drops them when a process dies (kill -9).

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// An exclusively locked file; the lock is released (and the file removed if asked) on drop.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
    file: Option<File>,
    remove_on_drop: bool,
}

impl LockFile {
    /// Create a new, uniquely named session lock file and lock it. Returns it and its id.
    pub fn new_session(locks: &Path) -> Result<(LockFile, String)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let id = format!("{:x}-{:x}-{:x}", std::process::id(), nanos, n);
            let path = locks.join(format!("session-{id}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    file.try_lock().map_err(|e| match e {
                        TryLockError::Error(e) => Error::io(&path, e),
                        TryLockError::WouldBlock => {
                            Error::io(&path, io::Error::other("fresh lock file is already locked"))
                        }
                    })?;
                    return Ok((
                        LockFile {
                            path,
                            file: Some(file),
                            remove_on_drop: true,
                        },
                        id,
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }

    /// Open (creating if needed) and lock `path`, waiting for other holders.
    pub fn acquire(path: &Path) -> Result<LockFile> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.lock().map_err(|e| Error::io(path, e))?;
        Ok(LockFile {
            path: path.to_owned(),
            file: Some(file),
            remove_on_drop: false,
        })
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if self.remove_on_drop {
            // Remove while still holding the lock, so nobody mistakes the file for a dead writer's.
            let _ = std::fs::remove_file(&self.path);
        }
        drop(self.file.take());
    }
}

/// Is the session whose lock file is `locks/session-<id>` still alive? A dead session's lock
/// file is removed.
pub(crate) fn session_alive(locks: &Path, id: &str) -> Result<bool> {
    let path = locks.join(format!("session-{id}"));
    let file = match OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&path, e)),
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = std::fs::remove_file(&path);
            Ok(false)
        }
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Try to lock an existing file exclusively without waiting. `Ok(None)` if someone holds it or
/// the file does not exist.
pub(crate) fn try_lock_existing(path: &Path) -> Result<Option<File>> {
    let file = match OpenOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}
