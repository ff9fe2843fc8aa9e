//! The JSON bodies of kiln's own API (`/api/kiln/v1/`), shared by the daemon (which
//! serialises them) and the command line (which reads them when it talks to a daemon).

use serde::{Deserialize, Serialize};

/// Where kiln's own API lives on the API listener.
pub const PREFIX: &str = "/api/kiln/v1";

/// `GET /api/kiln/v1/node`: who this node is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeView {
    /// libp2p peer ID.
    pub peer_id: String,
    /// `did:key:z6Mk…`.
    pub did: String,
    /// `kiln/<version>`.
    pub agent_version: String,
    /// Listen addresses as multiaddrs.
    pub addresses: Vec<String>,
    /// The repository directory.
    pub repo_path: String,
}

/// `GET /api/kiln/v1/stat`: repository statistics.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatView {
    /// Stored blocks.
    pub blocks: u64,
    /// Sum of the stored blocks' sizes.
    pub block_bytes: u64,
    /// Pins.
    pub pins: u64,
    /// Pack files.
    pub packs: u64,
    /// Pack files' size on disk.
    pub pack_bytes: u64,
    /// Database size on disk (with its WAL).
    pub db_bytes: u64,
    /// The repository directory.
    pub repo_path: String,
}

impl StatView {
    /// From the store's statistics.
    pub fn new(s: &kiln_store::RepoStat, repo_path: &std::path::Path) -> StatView {
        StatView {
            blocks: s.blocks,
            block_bytes: s.block_bytes,
            pins: s.pins,
            packs: s.packs,
            pack_bytes: s.pack_bytes,
            db_bytes: s.db_bytes,
            repo_path: repo_path.display().to_string(),
        }
    }
}

/// One pin in `GET /api/kiln/v1/pins`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinView {
    /// The pinned root.
    pub cid: String,
    /// `recursive` or `direct`.
    pub mode: String,
    /// The pin's name, if it has one.
    pub name: Option<String>,
    /// When it was pinned, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

impl PinView {
    /// From a stored pin.
    pub fn new(p: &kiln_store::Pin) -> PinView {
        PinView {
            cid: p.cid.to_string(),
            mode: p.mode.to_string(),
            name: p.name.clone(),
            created_ms: p
                .created
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }
}

/// `GET /api/kiln/v1/pins`: every pin, oldest first; with `?indirect=true` also every
/// block protected only through a recursive pin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinList {
    /// The pins.
    pub pins: Vec<PinView>,
    /// Indirectly pinned blocks (empty unless asked for).
    #[serde(default)]
    pub indirect: Vec<String>,
}

/// `POST /api/kiln/v1/gc`: what garbage collection did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GcView {
    /// Blocks removed.
    pub blocks_removed: u64,
    /// Sum of their sizes.
    pub bytes_freed: u64,
    /// Pack files deleted.
    pub packs_deleted: u64,
    /// Pack files compacted.
    pub packs_rewritten: u64,
    /// Disk space given back.
    pub disk_bytes_reclaimed: u64,
}

impl From<&kiln_store::GcReport> for GcView {
    fn from(r: &kiln_store::GcReport) -> GcView {
        GcView {
            blocks_removed: r.blocks_removed,
            bytes_freed: r.bytes_freed,
            packs_deleted: r.packs_deleted,
            packs_rewritten: r.packs_rewritten,
            disk_bytes_reclaimed: r.disk_bytes_reclaimed,
        }
    }
}

/// A pinned block that is absent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MissingView {
    /// The absent block.
    pub cid: String,
    /// The pin that needs it.
    pub pin: String,
}

/// `POST /api/kiln/v1/verify`: what re-hashing every block and walking every pin found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerifyView {
    /// Blocks that re-hashed to their CID.
    pub blocks_ok: u64,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Blocks whose bytes do not match their CID.
    pub corrupt: Vec<String>,
    /// Blocks with a hash function kiln cannot check.
    pub unsupported: Vec<String>,
    /// Blocks pins need that are absent.
    pub missing: Vec<MissingView>,
}

impl From<&kiln_store::VerifyReport> for VerifyView {
    fn from(r: &kiln_store::VerifyReport) -> VerifyView {
        VerifyView {
            blocks_ok: r.blocks_ok,
            bytes_checked: r.bytes_checked,
            corrupt: r.corrupt.iter().map(|c| c.to_string()).collect(),
            unsupported: r.unsupported.iter().map(|c| c.to_string()).collect(),
            missing: r
                .missing
                .iter()
                .map(|m| MissingView {
                    cid: m.cid.to_string(),
                    pin: m.pin.to_string(),
                })
                .collect(),
        }
    }
}

impl VerifyView {
    /// True when nothing is corrupt or missing.
    pub fn is_ok(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }
}

/// The body of every error from kiln's own API (the same shape as Kubo's RPC errors).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorView {
    /// What went wrong, one line.
    #[serde(rename = "Message")]
    pub message: String,
    /// Always 0.
    #[serde(rename = "Code")]
    pub code: i64,
    /// `error`.
    #[serde(rename = "Type")]
    pub kind: String,
}
