//! The Pinning Service API's JSON (the spec's `Pin`, `PinStatus`, `PinResults` and
//! `Failure`), as kiln's server writes it and its client (`kiln pin remote`) reads it from
//! any service.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What to pin.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pin {
    /// The CID.
    pub cid: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the content may be had (multiaddrs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
    /// The client's metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

/// A pin request as it stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinStatus {
    /// Its id.
    pub requestid: String,
    /// `queued`, `pinning`, `pinned` or `failed`.
    pub status: String,
    /// When it was made (RFC 3339, milliseconds, UTC).
    pub created: String,
    /// What it pins.
    pub pin: Pin,
    /// The service's own addresses (multiaddrs ending `/p2p/PEER`).
    #[serde(default)]
    pub delegates: Vec<String>,
    /// The service's notes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub info: BTreeMap<String, String>,
}

/// A listing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinResults {
    /// Every match.
    pub count: u64,
    /// The newest matches, at most the limit asked.
    pub results: Vec<PinStatus>,
}

/// An error's body: `{"error": {"reason", "details"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Failure {
    /// The error.
    pub error: FailureInfo,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailureInfo {
    /// A machine-readable code (`NOT_FOUND`, `BAD_REQUEST`, `TOKEN_MISSING`, …).
    pub reason: String,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}
