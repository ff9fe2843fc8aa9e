//! The node's one error: a kind each protocol renders in its own shape (Kubo's error JSON,
//! the gateway's pages, the web UI, kiln's API), and a message for people.

use std::fmt;

/// What went wrong, as every protocol needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// What the request names is not there (content, a pin, a build, a schedule).
    NotFound,
    /// What the request would create exists already, in a way that conflicts with it.
    AlreadyExists,
    /// The request cannot be carried out as the node stands (an incomplete DAG to pin, a
    /// pinned block to remove).
    Conflict,
    /// The request is malformed (a bad CID, path, name or argument).
    InvalidInput,
    /// The caller is known but may not do this.
    Forbidden,
    /// The caller has not proved who it is.
    Unauthenticated,
    /// The caller is over a quota or a rate limit.
    Quota,
    /// The node cannot take it on now (stopping, busy, a full disk).
    Unavailable,
    /// The node failed (a corrupt store, an I/O error): not the caller's fault.
    Internal,
}

impl ErrorKind {
    /// A stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Quota => "quota",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// `wait` in whole seconds, rounded up, at least 1: what `Retry-After` can say.
pub(crate) fn whole_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Result alias of the node layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of a use case: its kind and a message that says what happened.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    reason: Option<&'static str>,
    retry_after: Option<u64>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            reason: None,
            retry_after: None,
            message: message.into(),
            source: None,
        }
    }

    /// The request is malformed: `message` says how.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// What the request names is not there.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    /// The node cannot take the request on now.
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// The node failed.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The same error with a stable reason code (see [`crate::auth::reason`]).
    pub fn because(mut self, reason: &'static str) -> Error {
        self.reason = Some(reason);
        self
    }

    /// The same error, saying when to try again (a rate limit, a busy quota): the
    /// `Retry-After` of its 429, in whole seconds rounded up.
    pub fn retry_after(mut self, wait: std::time::Duration) -> Error {
        self.retry_after = Some(whole_secs(wait));
        self
    }

    /// When to try again, in seconds, if the error says.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
    }

    /// Its stable reason code: the one given, else its kind's code.
    pub fn reason(&self) -> &'static str {
        self.reason.unwrap_or(self.kind.code())
    }

    /// Its message.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn with_source(
        kind: ErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error {
            kind,
            reason: None,
            retry_after: None,
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    // The message is the wrapped error's own, so the chain goes on from *its* cause (an
    // error printed with its causes does not say the same thing twice).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().and_then(|e| e.source())
    }
}

impl From<kiln_store::Error> for Error {
    fn from(e: kiln_store::Error) -> Self {
        use kiln_store::Error as E;
        let kind = match &e {
            E::NotFound(_) | E::NotPinned(_) | E::NotPinnedBy { .. } => ErrorKind::NotFound,
            E::AlreadyPinnedRecursively(_) => ErrorKind::AlreadyExists,
            // The root itself absent: nothing of it is here. A block below it: an incomplete DAG.
            E::MissingBlock { missing, root } if missing == root => ErrorKind::NotFound,
            E::MissingBlock { .. } | E::Pinned { .. } | E::PinnedElsewhere { .. } => {
                ErrorKind::Conflict
            }
            E::HashMismatch(_)
            | E::UnsupportedHash { .. }
            | E::BlockTooLarge { .. }
            | E::InvalidOwner(_) => ErrorKind::InvalidInput,
            E::DiskFull { .. } => ErrorKind::Unavailable,
            E::QuotaExceeded { .. } => {
                return Error::with_source(ErrorKind::Forbidden, e)
                    .because(crate::auth::reason::QUOTA_PINNED);
            }
            _ => ErrorKind::Internal,
        };
        Error::with_source(kind, e)
    }
}

impl From<kiln_core::Error> for Error {
    fn from(e: kiln_core::Error) -> Self {
        use kiln_core::Error as E;
        let kind = match &e {
            E::InvalidCid { .. }
            | E::InvalidPath(_)
            | E::Options(_)
            | E::BadName { .. }
            | E::TooLarge { .. } => ErrorKind::InvalidInput,
            E::NotFound(_) | E::NoSuchLink { .. } | E::WrongType { .. } => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        };
        Error::with_source(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_core_errors_have_the_kinds_protocols_need() {
        let cid = kiln_core::cids::parse_cid("bafkqaaa").unwrap();
        let other = kiln_core::cids::parse_cid(
            "bafkreie7kvqbuaxrf4h6s2oqbklhrmjet6oddgc7bfsnfzajp4rp4g7uvq",
        )
        .unwrap();
        let k = |e: kiln_store::Error| Error::from(e).kind();
        assert_eq!(k(kiln_store::Error::NotPinned(cid)), ErrorKind::NotFound);
        assert_eq!(
            k(kiln_store::Error::AlreadyPinnedRecursively(cid)),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            k(kiln_store::Error::MissingBlock {
                missing: other,
                root: cid
            }),
            ErrorKind::Conflict
        );
        assert_eq!(
            k(kiln_store::Error::MissingBlock {
                missing: cid,
                root: cid
            }),
            ErrorKind::NotFound
        );
        assert_eq!(
            k(kiln_store::Error::Corrupt("x".into())),
            ErrorKind::Internal
        );
        let bad = kiln_core::cids::parse_cid("not-a-cid").unwrap_err();
        assert_eq!(Error::from(bad).kind(), ErrorKind::InvalidInput);
    }
}
