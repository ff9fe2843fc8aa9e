//! CID helpers: multicodec constants, hashing, parsing user input, content paths.

use crate::{Cid, Error, Result};
use cid::Version;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multicodec: raw bytes.
pub const RAW: u64 = 0x55;
/// Multicodec: dag-pb.
pub const DAG_PB: u64 = 0x70;
/// Multicodec: dag-cbor.
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec: dag-json.
pub const DAG_JSON: u64 = 0x0129;
/// Multicodec: libp2p-key.
pub const LIBP2P_KEY: u64 = 0x72;
/// Multihash: sha2-256.
pub const SHA2_256: u64 = 0x12;
/// Multihash: identity.
pub const IDENTITY: u64 = 0x00;

/// The multicodec named by a `--cid-codec` value: raw, dag-pb, dag-cbor (and their old names).
pub fn codec_from_name(name: &str) -> Result<u64> {
    match name {
        "raw" => Ok(RAW),
        "dag-pb" | "protobuf" | "v0" => Ok(DAG_PB),
        "dag-cbor" | "cbor" => Ok(DAG_CBOR),
        other => Err(Error::Options(format!(
            "unsupported codec {other:?} (expected raw, dag-pb or dag-cbor)"
        ))),
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The sha2-256 multihash of `data`.
pub fn sha256_multihash(data: &[u8]) -> Multihash<64> {
    sha256_digest_multihash(&sha256(data))
}

/// A sha2-256 multihash from a digest already computed.
pub fn sha256_digest_multihash(digest: &[u8; 32]) -> Multihash<64> {
    // 32 bytes always fit in a 64-byte multihash.
    Multihash::wrap(SHA2_256, digest).unwrap_or_default()
}

/// The CID of `data` under `codec` with sha2-256. CIDv0 only exists for dag-pb;
/// any other codec is given a CIDv1.
pub fn cid_of(version: Version, codec: u64, data: &[u8]) -> Cid {
    cid_from_digest(version, codec, &sha256(data))
}

/// Like [`cid_of`] from a digest already computed.
pub fn cid_from_digest(version: Version, codec: u64, digest: &[u8; 32]) -> Cid {
    let mh = sha256_digest_multihash(digest);
    if version == Version::V0 && codec == DAG_PB {
        Cid::new_v0(mh).unwrap_or_else(|_| Cid::new_v1(codec, mh))
    } else {
        Cid::new_v1(codec, mh)
    }
}

/// The inline bytes of an identity-multihash CID.
pub fn identity_data(cid: &Cid) -> Option<&[u8]> {
    (cid.hash().code() == IDENTITY).then(|| cid.hash().digest())
}

/// Check that `data` hashes to `cid` (sha2-256 or identity).
pub fn verify(cid: &Cid, data: &[u8]) -> Result<()> {
    let ok = match cid.hash().code() {
        SHA2_256 => cid.hash().digest() == sha256(data),
        IDENTITY => cid.hash().digest() == data,
        code => {
            return Err(Error::Unsupported {
                what: "hash function",
                code,
            });
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::HashMismatch(*cid))
    }
}

/// Parse a CID given by a user, with an error that names the input.
pub fn parse_cid(s: &str) -> Result<Cid> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::InvalidCid {
            input: s.into(),
            reason: "empty".into(),
        });
    }
    t.parse::<Cid>().map_err(|e| Error::InvalidCid {
        input: s.into(),
        reason: e.to_string(),
    })
}

/// A CID with an optional path below it: `CID`, `CID/a/b`, `/ipfs/CID/a/b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentPath {
    /// The root CID.
    pub root: Cid,
    /// Path segments below the root (no empty, `.` or `..` segments).
    pub segments: Vec<String>,
}

impl ContentPath {
    /// Parse user input.
    pub fn parse(s: &str) -> Result<ContentPath> {
        let t = s.strip_prefix("/ipfs/").unwrap_or(s);
        let t = t.strip_prefix("ipfs://").unwrap_or(t);
        let mut parts = t.split('/');
        let root = parse_cid(parts.next().unwrap_or_default())?;
        let mut segments = Vec::new();
        for p in parts {
            match p {
                "" | "." => continue,
                ".." => return Err(Error::InvalidPath(s.into())),
                seg => segments.push(seg.to_string()),
            }
        }
        Ok(ContentPath { root, segments })
    }
}

impl std::fmt::Display for ContentPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.root)?;
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known() {
        assert_eq!(
            cid_of(Version::V1, RAW, b"").to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        let id = parse_cid("bafkqaaa").unwrap();
        assert_eq!(identity_data(&id), Some(&b""[..]));
        verify(&id, b"").unwrap();
    }

    #[test]
    fn paths() {
        let p = ContentPath::parse("/ipfs/bafkqaaa/a//b/").unwrap();
        assert_eq!(p.segments, vec!["a", "b"]);
        assert!(ContentPath::parse("bafkqaaa/../x").is_err());
        assert!(ContentPath::parse("notacid").is_err());
        assert!(ContentPath::parse("").is_err());
    }
}
