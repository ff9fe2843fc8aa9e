use crate::Cid;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in kiln-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A string that is not a CID.
    #[error("invalid CID {input:?}: {reason}")]
    InvalidCid {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A path under a CID that is not valid (empty segments are allowed, `..` is not).
    #[error("invalid path {0:?}")]
    InvalidPath(String),
    /// Bytes that do not decode as the codec says.
    #[error("malformed {codec} block{}: {reason}", cid.map(|c| format!(" {c}")).unwrap_or_default())]
    Malformed {
        /// The codec name.
        codec: &'static str,
        /// The block, when known.
        cid: Option<Cid>,
        /// What is wrong.
        reason: String,
    },
    /// A codec or hash function kiln does not handle.
    #[error("unsupported {what}: 0x{code:x}")]
    Unsupported {
        /// "codec" or "hash function".
        what: &'static str,
        /// The multicodec code.
        code: u64,
    },
    /// A directory entry name kiln does not make (see [`crate::names`]).
    #[error("entry name {name} {reason}")]
    BadName {
        /// The name as shown (cut when long).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A block larger than kiln makes or takes (see [`crate::names::MAX_BLOCK_BYTES`]).
    #[error("{what} would be a block of {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// What the block holds.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A block whose bytes do not hash to its CID.
    #[error("block {0} does not match its hash")]
    HashMismatch(Cid),
    /// A block needed to finish the operation is not available.
    #[error("block {0} not found")]
    NotFound(Cid),
    /// A name that is not in a directory.
    #[error("no link named {name:?} under {cid}")]
    NoSuchLink {
        /// The directory.
        cid: Cid,
        /// The missing name.
        name: String,
    },
    /// An operation applied to the wrong kind of node, e.g. `cat` on a directory.
    #[error("{cid} is a {actual}, not a {expected}")]
    WrongType {
        /// The node.
        cid: Cid,
        /// What was needed.
        expected: &'static str,
        /// What it is.
        actual: &'static str,
    },
    /// A malformed or truncated CAR file.
    #[error("invalid CAR: {0}")]
    Car(String),
    /// Invalid import options, e.g. a bad chunker string.
    #[error("{0}")]
    Options(String),
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An error from a block sink or source (the store).
    #[error(transparent)]
    Storage(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wrap an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn malformed(
        codec: &'static str,
        cid: Option<Cid>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Malformed {
            codec,
            cid,
            reason: reason.into(),
        }
    }
}
