use crate::{Error, Result};
use cid::Version;

/// A named set of import options (IPIP-499 profiles, and kubo's `--cid-version=1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Plain `ipfs add` = IPIP-499 `unixfs-v0-2015`: CIDv0, dag-pb leaves, 256 KiB, 174 links.
    KuboV0,
    /// `ipfs add --cid-version=1`: CIDv1, raw leaves, 256 KiB, 174 links.
    KuboV1,
    /// IPIP-499 `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB, 1024 links, exact-size HAMT rule.
    V1_2025,
}

impl Profile {
    /// Parse a profile name as given on the command line.
    pub fn parse(s: &str) -> Result<Profile> {
        match s {
            "unixfs-v0-2015" | "v0" | "kubo-v0" => Ok(Profile::KuboV0),
            "unixfs-v1-2025" | "v1-2025" => Ok(Profile::V1_2025),
            "kubo-v1" => Ok(Profile::KuboV1),
            _ => Err(Error::Options(format!(
                "unknown profile {s:?} (expected unixfs-v0-2015 or unixfs-v1-2025)"
            ))),
        }
    }
}

/// How a directory decides to become a HAMT shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HamtRule {
    /// kubo: sum over links of name bytes + CID bytes, shard when strictly greater than the threshold.
    LinksBytes,
    /// IPIP-499 2025: the exact serialized size of the flat directory block, strictly greater.
    BlockBytes,
}

/// Import options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// CID version of dag-pb nodes (raw leaves are always CIDv1).
    pub cid_version: Version,
    /// Store file chunks as raw blocks.
    pub raw_leaves: bool,
    /// Fixed chunk size in bytes.
    pub chunk_size: usize,
    /// Maximum links per file node.
    pub max_links: usize,
    /// Directory size above which a HAMT shard is made.
    pub hamt_threshold: usize,
    /// How the directory size is measured.
    pub hamt_rule: HamtRule,
    /// Hashing threads for file chunks (0 = one per core).
    pub threads: usize,
}

/// kubo's upper bound on chunk size.
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;

impl ImportOptions {
    /// The options of a profile.
    pub fn from_profile(p: Profile) -> Self {
        let base = ImportOptions {
            cid_version: Version::V1,
            raw_leaves: true,
            chunk_size: 256 * 1024,
            max_links: 174,
            hamt_threshold: 256 * 1024,
            hamt_rule: HamtRule::LinksBytes,
            threads: 0,
        };
        match p {
            Profile::KuboV0 => ImportOptions {
                cid_version: Version::V0,
                raw_leaves: false,
                ..base
            },
            Profile::KuboV1 => base,
            Profile::V1_2025 => ImportOptions {
                chunk_size: 1024 * 1024,
                max_links: 1024,
                hamt_rule: HamtRule::BlockBytes,
                ..base
            },
        }
    }

    /// Options from kubo's add flags: the profile (or the one `cid_version` implies; the
    /// default is `unixfs-v1-2025`), then explicit overrides. `--cid-version 1` implies raw
    /// leaves unless `raw_leaves` says otherwise, as in kubo.
    pub fn from_flags(
        profile: Option<&str>,
        cid_version: Option<u8>,
        raw_leaves: Option<bool>,
        chunker: Option<&str>,
    ) -> Result<Self> {
        let base = match (profile, cid_version) {
            (Some(p), _) => Profile::parse(p)?,
            (None, Some(0)) => Profile::KuboV0,
            (None, Some(1)) => Profile::KuboV1,
            (None, Some(v)) => return Err(Error::Options(format!("unsupported CID version {v}"))),
            (None, None) => Profile::V1_2025,
        };
        let mut o = ImportOptions::from_profile(base);
        match cid_version {
            Some(0) => (o.cid_version, o.raw_leaves) = (Version::V0, false),
            Some(1) => (o.cid_version, o.raw_leaves) = (Version::V1, true),
            Some(v) => return Err(Error::Options(format!("unsupported CID version {v}"))),
            None => {}
        }
        if let Some(r) = raw_leaves {
            o.raw_leaves = r;
        }
        if let Some(c) = chunker {
            o.set_chunker(c)?;
        }
        Ok(o)
    }

    /// Parse kubo's `--chunker` value (`size-N`; `default` = the profile's size).
    pub fn set_chunker(&mut self, spec: &str) -> Result<()> {
        if spec == "default" {
            return Ok(());
        }
        let n = spec.strip_prefix("size-").ok_or_else(|| {
            Error::Options(format!(
                "unsupported chunker {spec:?} (only size-N is supported)"
            ))
        })?;
        let n: usize = n
            .parse()
            .map_err(|_| Error::Options(format!("invalid chunker size in {spec:?}")))?;
        if n == 0 || n > MAX_CHUNK_SIZE {
            return Err(Error::Options(format!(
                "chunker size must be between 1 and {MAX_CHUNK_SIZE} bytes, got {n}"
            )));
        }
        self.chunk_size = n;
        Ok(())
    }

    pub(crate) fn hash_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}
