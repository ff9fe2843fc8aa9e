//! Store content as file trees on disk, and file trees as store content, for builds: a
//! step's root file system and inputs are written out with [`materialize`] (then made
//! read-only with [`seal`]); source trees and outputs go in with [`import_tree`].
//!
//! # File modes
//!
//! Content is UnixFS, and a file tree keeps exactly one bit of metadata per file: whether it
//! is executable. Like Nix's NAR format, nothing else — owner, group, other permission bits,
//! umask, times — can change a CID:
//!
//! - a regular file with any execute bit (`0o111`) set is imported with the UnixFS mode
//!   `0o755` (see [`kiln_core::import::import_chunks_with_mode`]); any other file records no
//!   mode, and reads back as `0o644`;
//! - directories and symlinks record no mode (directories are written `0o755`, symlinks have
//!   none of their own).
//!
//! Reading back, a file whose recorded mode has an execute bit is written `0o755`, every
//! other file `0o644`, whatever the process umask. Symlink targets are kept byte for byte and
//! never followed, on the way in or out.

use crate::error::{Error, Result};
use crate::tree;
use kiln_core::export::{self, Node};
use kiln_core::import::Imported;
use kiln_core::{BlockSink, BlockSource, Cid};
use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The UnixFS mode an executable file is recorded with.
pub const EXECUTABLE: u32 = 0o755;
/// The mode a file without an execute bit is written with.
pub const PLAIN: u32 = 0o644;
/// The mode directories are written with.
pub const DIRECTORY: u32 = 0o755;
/// How many directories deep a tree may go, for [`materialize`] and [`seal`].
pub use kiln_core::names::MAX_DEPTH;
/// A directory entry name that can be created on disk without leaving the directory.
pub use kiln_core::names::is_safe as safe_name;
/// The mode to record for a file whose permission bits are `perm`: [`EXECUTABLE`] if any
/// execute bit is set, else none.
pub fn recorded_mode(perm: u32) -> Option<u32> {
    (perm & 0o111 != 0).then_some(EXECUTABLE)
}

/// The mode to write a file with, given the mode its root node records.
pub fn written_mode(recorded: Option<u32>) -> u32 {
    match recorded {
        Some(m) if m & 0o111 != 0 => EXECUTABLE,
        _ => PLAIN,
    }
}

/// Import the file, directory or symlink tree at `path` into `sink` with the convention
/// above and the default import options ([`tree::options`]); hidden entries are included,
/// symlinks are stored as symlinks. Other file types (devices, fifos, sockets) are refused.
pub fn import_tree(sink: &mut dyn BlockSink, path: &Path) -> Result<Imported> {
    tree::import_path(sink, path, &tree::options())
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn content_err(cid: Cid) -> impl FnOnce(kiln_core::Error) -> Error {
    move |source| Error::Content { cid, source }
}

/// Write the file, directory or symlink tree at `cid` to `dest`, which must not exist (its
/// parent must). Files are written `0o644`, or `0o755` when their recorded mode is
/// executable; directories `0o755`; symlinks verbatim. Every entry is created new (never
/// through an existing file or symlink); entry names that could leave their directory (`""`,
/// `.`, `..`, or containing `/` or NUL) are refused, and so is a tree more than
/// [`MAX_DEPTH`] directories deep. On error, what was written so far is left in place.
pub fn materialize(src: &dyn BlockSource, cid: &Cid, dest: &Path) -> Result<()> {
    let mut todo: Vec<(Cid, PathBuf, usize)> = vec![(*cid, dest.to_path_buf(), 0)];
    while let Some((cid, path, depth)) = todo.pop() {
        match export::stat(src, &cid).map_err(content_err(cid))? {
            Node::File { .. } => {
                let mode = written_mode(export::file_mode(src, &cid).map_err(content_err(cid))?);
                write_file(src, &cid, &path, mode)?;
            }
            Node::Symlink { target } => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
                    .map_err(write_err(&path))?;
            }
            Node::Directory { .. } => {
                if depth >= MAX_DEPTH {
                    return Err(Error::TooDeep {
                        cid,
                        limit: MAX_DEPTH,
                    });
                }
                let entries = export::list(src, &cid).map_err(content_err(cid))?;
                if let Some(bad) = entries.iter().find(|e| !safe_name(&e.name)) {
                    return Err(Error::UnsafeName {
                        dir: cid,
                        name: bad.name.clone(),
                    });
                }
                fs::DirBuilder::new()
                    .mode(DIRECTORY)
                    .create(&path)
                    .map_err(write_err(&path))?;
                // The umask may have taken bits away: set them exactly, on the directory
                // just made (opened without following a symlink).
                let dir = open_nofollow(&path, libc::O_DIRECTORY).map_err(write_err(&path))?;
                dir.set_permissions(fs::Permissions::from_mode(DIRECTORY))
                    .map_err(write_err(&path))?;
                // Reversed so entries are written in name order.
                for e in entries.into_iter().rev() {
                    todo.push((e.cid, path.join(&e.name), depth + 1));
                }
            }
        }
    }
    Ok(())
}

fn write_file(src: &dyn BlockSource, cid: &Cid, path: &Path, mode: u32) -> Result<()> {
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(write_err(path))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(write_err(path))?;
    let mut w = Recording {
        inner: BufWriter::with_capacity(256 << 10, f),
        failed: None,
    };
    if let Err(e) = export::read_file(src, cid, 0, None, &mut w) {
        return Err(match w.failed.take() {
            Some(source) => write_err(path)(source),
            None => content_err(*cid)(e),
        });
    }
    w.inner.flush().map_err(write_err(path))?;
    Ok(())
}

/// A writer that keeps its first error, so a failed copy can be blamed on the file being
/// written rather than on the content being read.
struct Recording<W> {
    inner: W,
    failed: Option<io::Error>,
}

impl<W: Write> Write for Recording<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| {
            self.failed
                .get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Open `path` read-only without following a symlink there (`ELOOP` if it is one) and
/// without blocking on a fifo.
fn open_nofollow(path: &Path, extra: libc::c_int) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | extra)
        .open(path)
}

/// File times for trees written out for an incremental build (a step with cache
/// directories), chosen so that tools that compare modification times (make, cargo, ninja)
/// see exactly what changed since the cache was saved: an input file unchanged since then is
/// [`UNCHANGED`], every restored cache file is [`CACHED`] (newer), and an input file that
/// changed is the time of the build (newer still).
pub const UNCHANGED: std::time::Duration = std::time::Duration::from_secs(1_000_000_000);
/// See [`UNCHANGED`]: one day later.
pub const CACHED: std::time::Duration = std::time::Duration::from_secs(1_000_086_400);

/// Set the times of every file and directory under `dest` (never following a symlink) to
/// `at` after the epoch. Goes at most [`MAX_DEPTH`] directories deep.
pub fn set_times(dest: &Path, at: std::time::Duration) -> Result<()> {
    let t = std::time::UNIX_EPOCH + at;
    let times = fs::FileTimes::new().set_modified(t).set_accessed(t);
    let mut todo: Vec<(PathBuf, usize)> = vec![(dest.to_path_buf(), 0)];
    while let Some((path, depth)) = todo.pop() {
        let f = match open_nofollow(&path, 0) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => continue,
            Err(e) => return Err(write_err(&path)(e)),
        };
        if f.metadata().map_err(write_err(&path))?.is_dir() && depth < MAX_DEPTH {
            for entry in fs::read_dir(&path).map_err(write_err(&path))? {
                todo.push((entry.map_err(write_err(&path))?.path(), depth + 1));
            }
        }
        f.set_times(times).map_err(write_err(&path))?;
    }
    Ok(())
}

/// Give the tree at `dest` (just written out from `cid`) the times of an incremental build:
/// what is the same as at the same path in `before` (the input the caches were saved with)
/// gets [`UNCHANGED`]; what differs or is new keeps the time it was written (now).
pub fn stamp_unchanged(
    src: &dyn BlockSource,
    cid: &Cid,
    before: Option<&Cid>,
    dest: &Path,
) -> Result<()> {
    let mut todo: Vec<(Cid, Option<Cid>, PathBuf, usize)> =
        vec![(*cid, before.copied(), dest.to_path_buf(), 0)];
    while let Some((now, then, path, depth)) = todo.pop() {
        if then == Some(now) {
            set_times(&path, UNCHANGED)?;
            continue;
        }
        let (Some(then), Node::Directory { .. }) =
            (then, export::stat(src, &now).map_err(content_err(now))?)
        else {
            continue;
        };
        if depth >= MAX_DEPTH {
            continue;
        }
        // Only a directory then and now is compared entry by entry.
        let old: std::collections::HashMap<String, Cid> = match export::stat(src, &then) {
            Ok(Node::Directory { .. }) => export::list(src, &then)
                .map_err(content_err(then))?
                .into_iter()
                .map(|e| (e.name, e.cid))
                .collect(),
            _ => continue,
        };
        for e in export::list(src, &now).map_err(content_err(now))? {
            let was = old.get(&e.name).copied();
            todo.push((e.cid, was, path.join(&e.name), depth + 1));
        }
    }
    Ok(())
}

/// Make the tree at `dest` read-only: files `0o444`, or `0o555` if they have an execute bit;
/// directories `0o555`. Symlinks are never followed (and keep their own mode); other file
/// types are left alone. Goes at most [`MAX_DEPTH`] directories deep.
pub fn seal(dest: &Path) -> Result<()> {
    let mut todo: Vec<(PathBuf, usize)> = vec![(dest.to_path_buf(), 0)];
    while let Some((path, depth)) = todo.pop() {
        let f = match open_nofollow(&path, 0) {
            Ok(f) => f,
            // A symlink.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => continue,
            Err(e) => return Err(write_err(&path)(e)),
        };
        let meta = f.metadata().map_err(write_err(&path))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            if depth >= MAX_DEPTH {
                return Err(Error::Write {
                    path,
                    source: io::Error::other(format!("more than {MAX_DEPTH} directories deep")),
                });
            }
            f.set_permissions(fs::Permissions::from_mode(0o555))
                .map_err(write_err(&path))?;
            for entry in fs::read_dir(&path).map_err(write_err(&path))? {
                let entry = entry.map_err(write_err(&path))?;
                todo.push((entry.path(), depth + 1));
            }
        } else if ft.is_file() {
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o555
            } else {
                0o444
            };
            f.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(write_err(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(recorded_mode(0o644), None);
        assert_eq!(recorded_mode(0o600), None);
        assert_eq!(recorded_mode(0o700), Some(0o755));
        assert_eq!(recorded_mode(0o744), Some(0o755));
        assert_eq!(recorded_mode(0o001), Some(0o755));
        assert_eq!(written_mode(None), 0o644);
        assert_eq!(written_mode(Some(0o600)), 0o644);
        assert_eq!(written_mode(Some(0o100755)), 0o755);
        assert_eq!(written_mode(Some(0o700)), 0o755);
    }
}
