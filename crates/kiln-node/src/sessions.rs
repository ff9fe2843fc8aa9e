//! Web UI sessions: how a browser signs in to a node whose listeners require tokens. A
//! caller asks for a sign-in link (`kiln ui login`, or the daemon prints one at start); the
//! link's code works once, within [`LINK_TTL`], and opening it gives the browser a session
//! cookie (HttpOnly, SameSite=Strict) that acts, in the web UI only, as whoever asked for
//! the link, until it expires ([`SESSION_TTL`]), the browser signs out, or an administrator
//! ends every session (`kiln ui logout --all`).
//!
//! The local administrator's session is the local administrator's. An identity's session
//! holds the token that proved it ([`Holder::Token`]) and is proved by it again on every
//! request, so revoking the token, removing the user or changing its roles holds in the
//! browser at once, and the session ends when the token expires.
//!
//! Codes and session ids are 32 random bytes; the node keeps only their SHA-256, in
//! memory: a restart of the daemon ends every session.

use crate::auth::{Op, authorize, reason};
use crate::{Caller, Error, ErrorKind, Result};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a sign-in link works.
pub const LINK_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The most links and sessions kept at once (the oldest go first).
const MAX_KEPT: usize = 1024;

/// The name of the session cookie.
pub const COOKIE: &str = "kiln_session";

/// A sign-in link's code, to put in `/ui/login?code=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The one-time code (a secret until used).
    pub code: String,
    /// When it stops working (seconds since the epoch).
    pub expires: u64,
}

/// A session begun from a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begun {
    /// The session id, the cookie's value (a secret).
    pub id: String,
    /// How long it lasts.
    pub max_age: Duration,
}

/// Whom a link or a session acts as.
#[derive(Clone, PartialEq, Eq)]
pub enum Holder {
    /// The local administrator.
    Local,
    /// The identity this token proves (proved again on every request).
    Token(String),
}

impl std::fmt::Debug for Holder {
    // Never the token: a session's holder may reach a log through a `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Local => f.write_str("Local"),
            Holder::Token(_) => f.write_str("Token(…)"),
        }
    }
}

/// A link or session: until when, as whom.
type Kept = HashMap<[u8; 32], (u64, Holder)>;

/// The node's sign-in links and sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    links: Mutex<Kept>,
    live: Mutex<Kept>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn secret() -> Result<String> {
    let mut raw = [0u8; 32];
    kiln_id::random(&mut raw).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

fn key(secret: &str) -> [u8; 32] {
    kiln_core::cids::sha256(secret.as_bytes())
}

/// Keep `m` to what has not expired, and under [`MAX_KEPT`] (dropping the soonest to end).
fn tidy(m: &mut Kept, now: u64) {
    m.retain(|_, (exp, _)| *exp > now);
    while m.len() >= MAX_KEPT {
        let Some(soonest) = m.iter().min_by_key(|(_, (e, _))| *e).map(|(k, _)| *k) else {
            break;
        };
        m.remove(&soonest);
    }
}

fn refused(message: &str) -> Error {
    Error::new(ErrorKind::Unauthenticated, message).because(reason::SESSION)
}

impl Sessions {
    /// A new sign-in link for `caller`: the local administrator, or an identity, which
    /// must give the `token` that proved it (the session will act with that token).
    pub fn link(&self, caller: &Caller, token: Option<&str>) -> Result<Link> {
        crate::auth::known(caller)?;
        let holder = match (&caller.who, token) {
            (crate::Who::Local, _) => Holder::Local,
            (crate::Who::User(_), Some(t)) => Holder::Token(t.to_string()),
            _ => {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    format!("{} may not sign in to the web UI", caller.who),
                )
                .because(reason::ROLE));
            }
        };
        let code = secret()?;
        let expires = now() + LINK_TTL.as_secs();
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        tidy(&mut links, now());
        links.insert(key(&code), (expires, holder));
        Ok(Link { code, expires })
    }

    /// Trade a link's code for a session: once, before the link expires.
    pub fn begin(&self, code: &str) -> Result<Begun> {
        let t = now();
        let expires = self
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key(code));
        let holder = match expires {
            Some((exp, holder)) if exp > t => holder,
            _ => {
                return Err(refused(
                    "this sign-in link is not valid: it was used already, has expired, or is mistyped (kiln ui login prints a new one)",
                ));
            }
        };
        let id = secret()?;
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        tidy(&mut live, t);
        live.insert(key(&id), (t + SESSION_TTL.as_secs(), holder));
        Ok(Begun {
            id,
            max_age: SESSION_TTL,
        })
    }

    /// Whom live session `id` acts as (none: no such session, or it has expired).
    pub fn holder(&self, id: &str) -> Option<Holder> {
        let t = now();
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key(id))
            .filter(|(exp, _)| *exp > t)
            .map(|(_, h)| h.clone())
    }

    /// Whether `id` is a live session.
    pub fn is_live(&self, id: &str) -> bool {
        self.holder(id).is_some()
    }

    /// End session `id` (signing out); whether it was live.
    pub fn end(&self, id: &str) -> bool {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key(id))
            .is_some()
    }

    /// End every session and forget every link (admin only); how many sessions ended.
    pub fn end_all(&self, caller: &Caller) -> Result<usize> {
        authorize(caller, Op::Admin, crate::users::ALL)?;
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let n = live.len();
        live.clear();
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Via;

    #[test]
    fn a_link_works_once_and_its_session_until_it_ends() {
        let s = Sessions::default();
        let admin = Caller::local(Via::Cli);
        let link = s.link(&admin, None).unwrap();
        assert_eq!(link.code.len(), 64);
        let begun = s.begin(&link.code).unwrap();
        assert!(s.is_live(&begun.id));
        let again = s.begin(&link.code).unwrap_err();
        assert_eq!(again.reason(), reason::SESSION);
        assert!(s.begin("0000").is_err());
        assert!(!s.is_live(&link.code), "a code is not a session");
        assert!(s.end(&begun.id));
        assert!(!s.is_live(&begun.id));
        assert_eq!(s.holder(&begun.id), None);
        let b2 = s.begin(&s.link(&admin, None).unwrap().code).unwrap();
        assert_eq!(s.holder(&b2.id), Some(Holder::Local));
        assert_eq!(s.end_all(&admin).unwrap(), 1);
        assert!(!s.is_live(&b2.id));
        // Nobody else gets links.
        let anon = Caller {
            who: crate::Who::Anonymous,
            via: Via::Api,
        };
        assert!(s.link(&anon, None).is_err());
        assert!(s.link(&anon, Some("kiln1_x")).is_err());
        assert!(s.link(&Caller::schedule(1), None).is_err());
        assert!(s.end_all(&anon).is_err());
    }
}
