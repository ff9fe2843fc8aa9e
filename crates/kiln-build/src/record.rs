//! Build records: what running an action gave, signed by the node that ran it.
//!
//! A record is one dag-cbor block: `{"record": {...}, "signature": bytes}`, where the
//! signature is the builder's ed25519 signature over the canonical dag-cbor encoding of the
//! `record` map. The record links the action, every output, the log and the cache
//! directories, so pinning the record keeps all of them, and a CAR of it carries everything a
//! node elsewhere needs to check it: [`SignedRecord::verify`] needs nothing but the block.

use crate::error::{Error, Result};
use kiln_core::Cid;
use kiln_core::cids::{DAG_CBOR, cid_of};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format tag written in every record.
pub const RECORD_FORMAT: &str = "kiln-build-record-1";

/// What running an action gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// [`RECORD_FORMAT`].
    pub format: String,
    /// The action (its CID is the action key).
    pub action: Cid,
    /// The step's name in the recipe it came from (informational only).
    pub step: String,
    /// `"ok"`, or why it failed: `"exit status 2"`, `"killed at its time limit"`, …
    pub status: String,
    /// The command's exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// Declared outputs and their content (empty when the step failed).
    pub outputs: BTreeMap<String, Cid>,
    /// The command's output (stdout and stderr, interleaved), as a UnixFS file.
    pub log: Cid,
    /// Cache directories kept after the run, and their content.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub caches: BTreeMap<String, Cid>,
    /// Start, Unix time in milliseconds.
    pub started_ms: u64,
    /// End, Unix time in milliseconds.
    pub ended_ms: u64,
    /// The node that ran it (`did:key`); its key made the signature.
    pub builder: String,
    /// Who asked for the build.
    pub requested_by: String,
    /// Ran with the impure host builder (the host's `/usr`).
    pub host: bool,
}

impl BuildRecord {
    /// Whether the action succeeded.
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.ended_ms.saturating_sub(self.started_ms)
    }

    /// Sign with the node's key.
    pub fn sign(self, key: &kiln_id::NodeKey) -> Result<SignedRecord> {
        let bytes = encode(&self)?;
        Ok(SignedRecord {
            signature: serde_bytes::ByteBuf::from(key.sign(&bytes).to_vec()),
            record: self,
        })
    }

    /// Every CID the record links to.
    pub fn links(&self) -> Vec<Cid> {
        let mut v = vec![self.action, self.log];
        v.extend(self.outputs.values().copied());
        v.extend(self.caches.values().copied());
        v
    }
}

/// A record with its builder's signature: the block that is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// The record.
    pub record: BuildRecord,
    /// ed25519 over the record's dag-cbor encoding.
    pub signature: serde_bytes::ByteBuf,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_ipld_dagcbor::to_vec(v).map_err(|source| Error::Encode { source })
}

impl SignedRecord {
    /// The block bytes and CID (CIDv1, dag-cbor, sha2-256).
    pub fn to_block(&self) -> Result<(Cid, Vec<u8>)> {
        let bytes = encode(self)?;
        Ok((cid_of(cid::Version::V1, DAG_CBOR, &bytes), bytes))
    }

    /// Decode a stored record block.
    pub fn decode(bytes: &[u8]) -> Result<SignedRecord> {
        let r: SignedRecord =
            serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::BadRecord {
                reason: e.to_string(),
            })?;
        if r.record.format != RECORD_FORMAT {
            return Err(Error::BadRecord {
                reason: format!("unknown record format {:?}", r.record.format),
            });
        }
        Ok(r)
    }

    /// Check the signature against the record's `builder`.
    pub fn verify(&self) -> Result<()> {
        let bytes = encode(&self.record)?;
        let good = kiln_id::verify(&self.record.builder, &bytes, &self.signature).map_err(|e| {
            Error::BadRecord {
                reason: e.to_string(),
            }
        })?;
        if good {
            Ok(())
        } else {
            Err(Error::BadRecord {
                reason: format!(
                    "the signature does not match the record and its builder {}",
                    self.record.builder
                ),
            })
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(builder: String) -> BuildRecord {
        let cid = |b: &[u8]| cid_of(cid::Version::V1, kiln_core::cids::RAW, b);
        BuildRecord {
            format: RECORD_FORMAT.into(),
            action: cid(b"action"),
            step: "hello".into(),
            status: "ok".into(),
            exit: Some(0),
            outputs: [("out/hello".to_string(), cid(b"binary"))].into(),
            log: cid(b"log"),
            caches: BTreeMap::new(),
            started_ms: 1,
            ended_ms: 5,
            builder,
            requested_by: "local:test".into(),
            host: true,
        }
    }

    #[test]
    fn signed_round_trip_and_tamper() {
        let key = kiln_id::NodeKey::generate().unwrap();
        let signed = sample(key.did()).sign(&key).unwrap();
        let (cid, bytes) = signed.to_block().unwrap();
        assert_eq!(cid.codec(), DAG_CBOR);
        let back = SignedRecord::decode(&bytes).unwrap();
        assert_eq!(back, signed);
        back.verify().unwrap();
        assert_eq!(back.record.links().len(), 3);

        let mut forged = back.clone();
        forged.record.status = "exit status 1".into();
        assert!(forged.verify().is_err());
        let mut stolen = back.clone();
        stolen.record.builder = kiln_id::NodeKey::generate().unwrap().did();
        assert!(stolen.verify().is_err());
        assert!(SignedRecord::decode(b"\xa0").is_err());
    }
}
