//! Who asks, and through what.

use kiln_store::PinOwner;
use std::fmt;

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// The local administrator: the operating-system user who owns the repository (the
    /// command line on it, or a client of a daemon that listens on loopback only).
    Local,
    /// Schedule `N`, acting on its own (its checks and builds).
    Schedule(i64),
    /// An identity, proved by a capability token.
    User(std::sync::Arc<crate::auth::Identity>),
    /// Nobody proved who it is: only what is public (content on the gateway).
    Anonymous,
}

/// Through what a request came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The command line, on the repository directly.
    Cli,
    /// The Kubo RPC (`/api/v0`).
    Rpc,
    /// kiln's own API (`/api/kiln/v1`).
    Api,
    /// The web UI.
    Ui,
    /// The gateway.
    Gateway,
    /// The Pinning Service API (`/psa`).
    Psa,
    /// kiln itself (a schedule, the daemon's start-up).
    Kiln,
}

impl Via {
    /// The name used in messages and the event journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Cli => "cli",
            Via::Rpc => "rpc",
            Via::Api => "api",
            Via::Ui => "ui",
            Via::Gateway => "gateway",
            Via::Psa => "psa",
            Via::Kiln => "kiln",
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller of a use case: who, and through what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who asks.
    pub who: Who,
    /// Through what.
    pub via: Via,
}

impl Caller {
    /// The local administrator, through `via`.
    pub fn local(via: Via) -> Caller {
        Caller {
            who: Who::Local,
            via,
        }
    }

    /// Schedule `id`, acting on its own.
    pub fn schedule(id: i64) -> Caller {
        Caller {
            who: Who::Schedule(id),
            via: Via::Kiln,
        }
    }

    /// The owner of the pins this caller makes.
    pub fn owner(&self) -> PinOwner {
        match &self.who {
            Who::Local => local_owner(),
            Who::Schedule(id) => kiln_build::owners::schedule(*id),
            // A did:key is a valid owner (no spaces, well under the length limit).
            Who::User(id) => PinOwner::new(id.did.as_str()).unwrap_or_else(|_| anonymous_owner()),
            Who::Anonymous => anonymous_owner(),
        }
    }
}

/// The pin owner of the local administrator.
pub const LOCAL: &str = "local";

/// The pin owner of a caller nobody proved (it may pin nothing; named for messages).
pub const ANONYMOUS: &str = "anonymous";

fn anonymous_owner() -> PinOwner {
    PinOwner::new(ANONYMOUS).unwrap_or_else(|e| unreachable!("{e}"))
}

fn local_owner() -> PinOwner {
    // A short word: always a valid owner.
    PinOwner::new(LOCAL).unwrap_or_else(|e| unreachable!("{e}"))
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Local => f.write_str("the local administrator"),
            Who::Schedule(id) => write!(f, "schedule {id}"),
            Who::User(id) => f.write_str(&id.did),
            Who::Anonymous => f.write_str("an anonymous caller"),
        }
    }
}
