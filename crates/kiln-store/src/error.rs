//! The crate's single error type.

use std::io;
use std::path::PathBuf;

use cid::Cid;

use crate::PinStatus;

/// Result alias used throughout `kiln-store`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the block store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The disk (or quota) is full; the operation was rolled back.
    #[error("no space left on device while writing {}", path.display())]
    DiskFull {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The metadata database (SQLite) reported an error. (A full disk is reported as
    /// [`Error::DiskFull`] instead.)
    #[error("metadata database error: {0}")]
    Db(#[source] rusqlite::Error),
    /// A block needed to complete a pinned DAG is not in the store.
    #[error("block {missing} is missing from the DAG of {root}")]
    MissingBlock {
        /// The block that is absent.
        missing: Cid,
        /// The root whose DAG is incomplete.
        root: Cid,
    },
    /// The requested block is not in the store.
    #[error("block {0} not found")]
    NotFound(Cid),
    /// `put_verified` was given bytes that do not hash to the CID.
    #[error("block data does not match its CID {0}")]
    HashMismatch(Cid),
    /// The CID uses a hash function kiln cannot compute.
    #[error("unsupported hash function 0x{code:x} in {cid}")]
    UnsupportedHash {
        /// The CID in question.
        cid: Cid,
        /// Its multihash code.
        code: u64,
    },
    /// A block larger than the pack format allows (4 GiB - 1).
    #[error("block {cid} is too large ({size} bytes)")]
    BlockTooLarge {
        /// The block's CID.
        cid: Cid,
        /// Its size in bytes.
        size: u64,
    },
    /// The block cannot be removed because it is pinned.
    #[error("{cid} is pinned ({status})")]
    Pinned {
        /// The block.
        cid: Cid,
        /// How it is pinned.
        status: PinStatus,
    },
    /// `pin_rm` on a CID that has no pin of its own.
    #[error("{0} is not pinned")]
    NotPinned(Cid),
    /// `pin_rm` by an owner who holds no pin of a CID that others do.
    #[error("{cid} has no pin of {owner}; it is pinned by {}", holders.join(", "))]
    NotPinnedBy {
        /// The CID.
        cid: Cid,
        /// The owner who asked.
        owner: String,
        /// The owners of its pins.
        holders: Vec<String>,
    },
    /// Pinning a CID in one namespace when its owner pins it in another already.
    #[error("{owner} already pins {cid} in namespace {namespace}: unpin it there first")]
    PinnedElsewhere {
        /// The CID.
        cid: Cid,
        /// The owner.
        owner: String,
        /// Where its pin lives.
        namespace: String,
    },
    /// A pin owner that is empty, too long, or holds whitespace or control characters.
    #[error("invalid pin owner {0:?}")]
    InvalidOwner(String),
    /// A direct pin was requested for a CID that is already pinned recursively.
    #[error("{0} is already pinned recursively")]
    AlreadyPinnedRecursively(Cid),
    /// A pin would take its owner's pinned bytes over its quota; nothing was pinned.
    #[error("{owner}'s pins would hold {used} bytes, over its quota of {max} bytes")]
    QuotaExceeded {
        /// The owner.
        owner: String,
        /// What its pins would hold, bytes.
        used: u64,
        /// Its quota, bytes.
        max: u64,
    },
    /// A previous error left this session unusable; drop it and start a new one.
    #[error("write session is unusable after an earlier error")]
    SessionPoisoned,
    /// The database was written by a newer kiln: its schema version is one this kiln does
    /// not know. Nothing was changed.
    #[error(
        "{} has schema version {found}, newer than this kiln knows ({supported}): it was written by a newer kiln; use that one (or a newer one) with this repository",
        path.display()
    )]
    NewerSchema {
        /// The database.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest version this kiln knows.
        supported: i64,
    },
    /// A schema migration failed; it was rolled back (the database keeps its old version).
    #[error("{}: migrating to schema version {to} ({what}) failed: {source}", path.display())]
    Migration {
        /// The database.
        path: PathBuf,
        /// The version it was migrating to.
        to: i64,
        /// What that version changes.
        what: &'static str,
        /// The database's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The on-disk data is inconsistent (bad CID bytes in the index, a truncated pack, ...).
    #[error("store is corrupt: {0}")]
    Corrupt(String),
}

impl Error {
    /// Wrap an I/O error with the path it concerns, recognising a full disk.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if is_disk_full(&source) {
            Error::DiskFull { path, source }
        } else {
            Error::Io { path, source }
        }
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == io::ErrorKind::StorageFull
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            Error::DiskFull {
                path: PathBuf::from("store.db"),
                source: io::Error::new(io::ErrorKind::StorageFull, e),
            }
        } else {
            Error::Db(e)
        }
    }
}
