//! kiln's embedded, content-addressed block store.
//!
//! Blocks live in append-only *pack* files under `<root>/packs/`; a SQLite database
//! (`<root>/store.db`, WAL mode) maps each block's multihash to its pack, offset and length and
//! records the links of each block, the pins, and the bookkeeping that lets garbage collection
//! run while other threads or processes keep adding. See `DESIGN.md` next to this crate for the
//! on-disk layout and the crash-safety and GC arguments.
//!
//! The API is synchronous; async callers use `spawn_blocking`. [`Store`] is a cheap `Clone`
//! handle; writes go through a [`Session`], which batches blocks and makes them durable (and
//! its staged pins visible) atomically at [`Session::commit`].
//!
//! ```
//! use kiln_store::{Cid, NewPin, PinMode, PinOwner, Store, StoreOptions};
//! use sha2::{Digest, Sha256};
//!
//! # fn main() -> Result<(), kiln_store::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), StoreOptions::default())?;
//!
//! let data = b"hello kiln";
//! let digest = Sha256::digest(data);
//! let mh = multihash::Multihash::<64>::wrap(0x12, &digest).unwrap();
//! let cid = Cid::new_v1(0x55, mh); // raw codec
//!
//! let mut session = store.session()?;
//! session.put(&cid, data, &[])?;
//! let me = PinOwner::new("local")?;
//! session.pin(&cid, NewPin::new(me, PinMode::Recursive).named(Some("greeting")));
//! session.commit()?;
//!
//! assert_eq!(store.get(&cid)?.as_deref(), Some(&data[..]));
//! assert_eq!(store.gc()?.blocks_removed, 0); // pinned: kept
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
// Errors carry whole `Cid`s (about 90 bytes each) so callers can match on them; errors are rare,
// so the larger `Result` is not worth boxing.
#![allow(clippy::result_large_err)]

mod access;
mod blocks;
mod cache;
mod counters;
mod dag;
mod db;
mod error;
mod gc;
pub mod invites;
pub mod journal;
mod lock;
mod pack;
mod pins;
pub mod quotas;
pub mod requests;
pub mod schema;
mod session;
mod store;
pub mod tokens;
pub mod users;
mod verify;

use std::fmt;
use std::time::{Duration, SystemTime};

pub use cid::Cid;
pub use error::{Error, Result};
pub use pins::NewPin;
pub use session::Session;
pub use store::Store;

/// Tuning knobs for [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// A writer starts a new pack file once its current one reaches this size (default 1 GiB).
    pub max_pack_size: u64,
    /// A session flushes (fdatasync + one index transaction) after this many buffered bytes
    /// (default 64 MiB).
    pub batch_bytes: u64,
    /// ... or after this many buffered blocks (default 100,000).
    pub batch_blocks: usize,
    /// How long a database operation waits for another process's write lock (default 30 s).
    pub busy_timeout: Duration,
    /// Size of the `reserve` file kept in the repository so that GC can still run when the
    /// disk is full (it deletes the file, collects, then recreates it). Default 8 MiB; 0
    /// disables it.
    pub reserve_bytes: u64,
    /// Memory for the cache of small blocks (≤ 64 KiB) shared by the handles of one
    /// `Store::open` (default 32 MiB; 0 turns it off).
    pub cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_pack_size: 1 << 30,
            batch_bytes: 64 << 20,
            batch_blocks: 100_000,
            busy_timeout: Duration::from_secs(30),
            reserve_bytes: 8 << 20,
            cache_bytes: 32 << 20,
        }
    }
}

/// How a pin protects its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinMode {
    /// The root and every block reachable through recorded links.
    Recursive,
    /// Only the root block.
    Direct,
}

impl fmt::Display for PinMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinMode::Recursive => "recursive",
            PinMode::Direct => "direct",
        })
    }
}

/// Why a block is pinned, as reported by [`Store::pin_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// It is the root of a recursive pin.
    Recursive,
    /// It has a direct pin.
    Direct,
    /// It is reachable from the recursive pin `via`.
    Indirect {
        /// The recursive pin's root.
        via: Cid,
    },
}

impl fmt::Display for PinStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinStatus::Recursive => f.write_str("recursive"),
            PinStatus::Direct => f.write_str("direct"),
            PinStatus::Indirect { via } => write!(f, "indirect through {via}"),
        }
    }
}

/// Who holds a pin: an opaque, non-empty string of at most [`PinOwner::MAX_LEN`] bytes
/// without whitespace or control characters. The store gives owners no meaning; the node
/// layer does (`local` for the local administrator, `did:key:…` for an identity, and kiln
/// itself as `build`, `schedule:N`, `rootfs`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PinOwner(String);

impl PinOwner {
    /// The longest owner, in bytes.
    pub const MAX_LEN: usize = 256;

    /// The owner `s`, or [`Error::InvalidOwner`].
    pub fn new(s: impl Into<String>) -> Result<PinOwner> {
        let s = s.into();
        if s.is_empty()
            || s.len() > Self::MAX_LEN
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::InvalidOwner(s));
        }
        Ok(PinOwner(s))
    }

    /// The owner as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PinOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pin as listed by [`Store::pins`]. A CID may have several, each with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The pin's number, unique in this store and never reused.
    pub id: i64,
    /// The pinned root.
    pub cid: Cid,
    /// Recursive or direct.
    pub mode: PinMode,
    /// Who holds it.
    pub owner: PinOwner,
    /// Optional name, given by its owner.
    pub name: Option<String>,
    /// The namespace it lives in (whose roles may change it).
    pub namespace: String,
    /// When the pin was created.
    pub created: SystemTime,
    /// String metadata, given by its owner.
    pub meta: std::collections::BTreeMap<String, String>,
}

/// What [`Store::pin_rm`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpinned {
    /// The pins removed.
    pub removed: Vec<Pin>,
    /// The pins of the same CID that remain (other owners').
    pub remaining: Vec<Pin>,
}

/// What [`Store::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Index entries (blocks) removed.
    pub blocks_removed: u64,
    /// Sum of the removed blocks' sizes.
    pub bytes_freed: u64,
    /// Pack files deleted because nothing in them was live.
    pub packs_deleted: u64,
    /// Pack files whose live blocks were copied elsewhere before deletion.
    pub packs_rewritten: u64,
    /// Pack file bytes given back to the file system (deleted minus newly written).
    pub disk_bytes_reclaimed: u64,
    /// Packs worth compacting that were left as they are because copying their live blocks
    /// would not fit in the free space (beside the reserve); a later GC compacts them.
    pub packs_skipped: u64,
}

/// Repository statistics from [`Store::stat`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoStat {
    /// Number of stored blocks (identity CIDs excluded).
    pub blocks: u64,
    /// Sum of the stored blocks' sizes.
    pub block_bytes: u64,
    /// Number of pins.
    pub pins: u64,
    /// Number of pack files.
    pub packs: u64,
    /// Size on disk of all pack files.
    pub pack_bytes: u64,
    /// Size on disk of the database (including its WAL).
    pub db_bytes: u64,
}

/// A pinned block that is absent, found by [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingBlock {
    /// The absent block.
    pub cid: Cid,
    /// The pin whose DAG needs it.
    pub pin: Cid,
}

/// What [`Store::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blocks whose bytes were re-hashed and matched.
    pub blocks_ok: u64,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Blocks whose bytes do not match their CID (or could not be read).
    pub corrupt: Vec<Cid>,
    /// Blocks using a hash function verify cannot compute (not checked).
    pub unsupported: Vec<Cid>,
    /// Blocks needed by pins but absent.
    pub missing: Vec<MissingBlock>,
}

impl VerifyReport {
    /// True when nothing is corrupt or missing.
    pub fn is_ok(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }
}
