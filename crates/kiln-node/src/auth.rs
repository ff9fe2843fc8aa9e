//! Who a request comes from, proved, and the one check every use case makes.
//!
//! A request names its caller in one of three ways: the local administrator (the command
//! line on the repository, or a client on the repository's Unix socket whose peer
//! credentials are the repository owner's), an identity proved by a capability token
//! ([`Auth::authenticate`]), or nobody ([`Who::Anonymous`]). Every use case then calls
//! [`authorize`] with the operation it performs and the namespace it acts in:
//!
//! | operation | role needed | use cases |
//! |---|---|---|
//! | `read` | reader | private reads: listings, stats, builds, the journal of one's own |
//! | `add` | writer | add, import, block put |
//! | `pin` | writer | pin, unpin (one's own pins) |
//! | `build` | maintainer | build, cancel, schedules (they run code on the node) |
//! | `publish` | maintainer | names and packages |
//! | `admin` | admin | users, tokens of others, GC, removing blocks, pruning, the whole journal |
//!
//! An identity's role is read from the node's users at each request (a grant revoked or a
//! user removed takes effect at once); a token carries roles too, and narrows (never widens)
//! them; its attenuations narrow further.

use crate::users::{self, ALL, Role};
use crate::{Caller, Error, ErrorKind, Result, Via, Who};
use kiln_id::token::{self, Verified};
use kiln_store::Store;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The namespace of a request that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What a use case does, as authorization sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read what is not public (listings, stats, builds, the journal).
    Read,
    /// Write content (add, import, block put).
    Add,
    /// Pin and unpin.
    Pin,
    /// Build (runs code on the node, even sandboxed), cancel, register schedules.
    Build,
    /// Publish names and packages.
    Publish,
    /// Manage the node: users, others' tokens, GC, removing blocks, pruning.
    Admin,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 6] = [
        Op::Read,
        Op::Add,
        Op::Pin,
        Op::Build,
        Op::Publish,
        Op::Admin,
    ];

    /// Its name in tokens (`--only`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Add => "add",
            Op::Pin => "pin",
            Op::Build => "build",
            Op::Publish => "publish",
            Op::Admin => "admin",
        }
    }

    /// The least role that may do it.
    pub fn role(self) -> Role {
        match self {
            Op::Read => Role::Reader,
            Op::Add | Op::Pin => Role::Writer,
            Op::Build | Op::Publish => Role::Maintainer,
            Op::Admin => Role::Admin,
        }
    }
}

/// Stable reason codes of refusals (beside the error's kind), for machines.
pub mod reason {
    /// The request needs a token and carries none.
    pub const TOKEN_MISSING: &str = "token_missing";
    /// The token is malformed, altered, or another node's.
    pub const TOKEN_INVALID: &str = "token_invalid";
    /// The token (or one of its attenuations) has expired.
    pub const TOKEN_EXPIRED: &str = "token_expired";
    /// The token was revoked.
    pub const TOKEN_REVOKED: &str = "token_revoked";
    /// The token's identity is not (or no longer) a user of the node.
    pub const UNKNOWN_USER: &str = "unknown_user";
    /// The identity's role in the namespace is below what the operation needs.
    pub const ROLE: &str = "role_insufficient";
    /// The token, or an attenuation of it, does not allow this operation or namespace.
    pub const SCOPE: &str = "token_scope";
    /// Only the owner of a resource (or an admin) may act on it.
    pub const NOT_OWNER: &str = "not_owner";
    /// A challenge that is unknown, used, expired, or answered with a wrong signature.
    pub const CHALLENGE: &str = "challenge_failed";
    /// Too many requests from this identity or address for now (429, `Retry-After`).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The identity runs as many builds as its quota allows (429, `Retry-After`).
    pub const QUOTA_BUILDS: &str = "quota_builds";
    /// The pin would take the identity's pinned bytes over its quota (403).
    pub const QUOTA_PINNED: &str = "quota_pinned_bytes";
    /// A web UI sign-in link or session that is unknown, used or expired (401).
    pub const SESSION: &str = "session_invalid";
}

/// An identity proved by a token: who, the roles the node gives it now, and the token.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The `did:key`.
    pub did: String,
    /// Its roles as the node's users say at the time of the request: (namespace, role).
    pub grants: Vec<(String, String)>,
    token: std::sync::Arc<Verified>,
}

impl Identity {
    /// The id of the token it came with (not a secret).
    pub fn token_id(&self) -> &str {
        self.token.id()
    }

    /// The revocation id of the token's last block: revoking it revokes exactly this token
    /// (and any narrowed from it).
    pub fn token_block(&self) -> &str {
        self.token
            .revocation_ids()
            .last()
            .map_or("", String::as_str)
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.did == other.did && self.token.revocation_ids() == other.token.revocation_ids()
    }
}

impl Eq for Identity {}

fn highest(grants: &[(String, String)], namespace: &str) -> Option<Role> {
    grants
        .iter()
        .filter(|(ns, _)| ns == namespace || ns == ALL)
        .filter_map(|(_, r)| Role::parse(r).ok())
        .max()
}

/// May `caller` do `op` in `namespace`? Every use case asks, first.
pub fn authorize(caller: &Caller, op: Op, namespace: &str) -> Result<()> {
    match &caller.who {
        Who::Local => Ok(()),
        // kiln acting on its own: builds and their pins, never the node's administration.
        Who::Schedule(_) if op != Op::Admin => Ok(()),
        Who::Schedule(id) => Err(Error::new(
            ErrorKind::Forbidden,
            format!("schedule {id} may not {}", op.as_str()),
        )
        .because(reason::ROLE)),
        // Content is public on the gateway: anyone who names a CID may read it there.
        Who::Anonymous if op == Op::Read && caller.via == Via::Gateway => Ok(()),
        Who::Anonymous => Err(Error::new(
            ErrorKind::Unauthenticated,
            format!(
                "this request ({} in {}) needs a token: ask an administrator for one (kiln token create) and send it as \"Authorization: Bearer TOKEN\"",
                op.as_str(),
                users::shown(namespace)
            ),
        )
        .because(reason::TOKEN_MISSING)),
        Who::User(id) => {
            let need = op.role();
            let held = highest(&id.grants, namespace);
            if held < Some(need) {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    format!(
                        "{} may not {} in {}: that needs the role {need}, and it holds {}",
                        id.did,
                        op.as_str(),
                        users::shown(namespace),
                        held.map_or("none".to_string(), |r| r.to_string())
                    ),
                )
                .because(reason::ROLE));
            }
            let carried = highest(id.token.roles(), namespace);
            if carried < Some(need) {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    format!(
                        "the token does not allow {} in {}: it carries {} there",
                        op.as_str(),
                        users::shown(namespace),
                        carried.map_or("no role".to_string(), |r| format!("the role {r}"))
                    ),
                )
                .because(reason::SCOPE));
            }
            id.token
                .allows(&token::Request {
                    operation: op.as_str(),
                    namespace,
                    now: token::now(),
                })
                .map_err(token_error)
        }
    }
}

/// Has `caller` proved who it is (the local administrator, kiln itself, or an identity)?
/// Use cases open to every known caller ask this first, so a caller nobody proved learns
/// nothing from their errors.
pub fn known(caller: &Caller) -> Result<()> {
    match caller.who {
        Who::Anonymous => Err(Error::new(
            ErrorKind::Unauthenticated,
            "this request needs a token: send it as \"Authorization: Bearer TOKEN\"",
        )
        .because(reason::TOKEN_MISSING)),
        _ => Ok(()),
    }
}

/// Is `caller` an administrator of every namespace (the local administrator, or an
/// identity holding admin in `*` with a token that allows it)?
pub fn is_admin(caller: &Caller) -> bool {
    authorize(caller, Op::Admin, ALL).is_ok()
}

/// The node's error for a token error.
fn token_error(e: kiln_id::Error) -> Error {
    match e {
        kiln_id::Error::TokenExpired { .. } => {
            Error::new(ErrorKind::Unauthenticated, e.to_string()).because(reason::TOKEN_EXPIRED)
        }
        kiln_id::Error::TokenScope(_) => {
            Error::new(ErrorKind::Forbidden, e.to_string()).because(reason::SCOPE)
        }
        other => {
            Error::new(ErrorKind::Unauthenticated, other.to_string()).because(reason::TOKEN_INVALID)
        }
    }
}

/// How long a challenge may be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(120);
/// At most this many challenges wait for an answer (older ones go first).
const MAX_PENDING: usize = 10_000;
/// The longest a token may live.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);
/// How long a token lives when its requester does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A challenge: sign [`challenge_message`] of it with the identity's key.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The single-use nonce (hex).
    pub nonce: String,
    /// The node's `did:key`: what the signature is bound to.
    pub node: String,
    /// Until when it may be answered (seconds since the epoch).
    pub expires: u64,
}

/// The bytes an identity signs to answer a challenge: bound to the node, the identity and
/// the nonce, so an answer is good for nothing else.
pub fn challenge_message(node: &str, did: &str, nonce: &str) -> Vec<u8> {
    format!("kiln-auth-v1\nnode {node}\nidentity {did}\nnonce {nonce}\n").into_bytes()
}

struct Pending {
    did: String,
    expires: u64,
}

/// The node's authenticator: it verifies tokens with the node's key, issues them, and keeps
/// the challenges waiting for an answer (in memory: a restart forgets them).
pub struct Auth {
    key: kiln_id::NodeKey,
    did: String,
    pending: Mutex<HashMap<String, Pending>>,
    per_identity: Option<crate::rate::Limiter<String>>,
    /// Tokens whose signatures were checked, by their SHA-256 (a token is the same token
    /// for as long as it lives; its expiry, revocation and user are checked every time).
    verified: Mutex<HashMap<[u8; 32], std::sync::Arc<Verified>>>,
    /// The users and the deny-list as read under a generation of the store's (see
    /// [`kiln_store::Store::access_generation`]).
    access: Mutex<Option<(u64, std::sync::Arc<Access>)>>,
    /// The identity each token (by its SHA-256) proved, under the generation it was proved.
    proved: Mutex<HashMap<[u8; 32], Proved>>,
    sessions: crate::sessions::Sessions,
}

/// An identity a token proved, and the store's access generation it was proved under.
type Proved = (u64, std::sync::Arc<Identity>);

/// Who may do what, as read from the store at one generation.
#[derive(Debug, Default)]
struct Access {
    users: HashMap<String, kiln_store::users::User>,
    revoked: std::collections::HashSet<String>,
}

impl Access {
    fn read(store: &Store) -> Result<Access> {
        Ok(Access {
            users: store
                .users()?
                .into_iter()
                .map(|u| (u.did.clone(), u))
                .collect(),
            revoked: store.revoked_ids()?,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The most verified tokens [`Auth`] remembers (then it starts again).
const VERIFIED_KEPT: usize = 4096;

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth({})", self.did)
    }
}

impl Auth {
    /// The authenticator of the node whose key is `key`.
    pub fn new(key: kiln_id::NodeKey) -> Auth {
        Auth {
            did: key.did(),
            key,
            pending: Mutex::new(HashMap::new()),
            per_identity: None,
            verified: Mutex::new(HashMap::new()),
            access: Mutex::new(None),
            proved: Mutex::new(HashMap::new()),
            sessions: crate::sessions::Sessions::default(),
        }
    }

    /// The same authenticator, letting each identity make requests at `rate` at most (over
    /// it: a quota error, 429, with when to try again).
    pub fn with_rate(mut self, rate: Option<crate::rate::Rate>) -> Auth {
        self.per_identity = rate.map(crate::rate::Limiter::new);
        self
    }

    /// The node's key (it signs what the node vouches for, such as invites).
    pub fn node_key(&self) -> &kiln_id::NodeKey {
        &self.key
    }

    /// The web UI's sign-in links and sessions.
    pub fn sessions(&self) -> &crate::sessions::Sessions {
        &self.sessions
    }

    /// The node's `did:key`.
    pub fn node_did(&self) -> &str {
        &self.did
    }

    /// Who `token` proves: an identity that is a user of the node now, with the roles the
    /// node gives it now; an error (unauthenticated) for a token that is malformed, altered,
    /// another node's, expired or revoked, or whose user was removed.
    pub fn authenticate(&self, store: &Store, token: &str) -> Result<Who> {
        let verified = self.verify(token)?;
        let access = self.access(store)?;
        self.admit(verified, &access)
    }

    /// [`Auth::authenticate`] when it needs neither the store nor a signature check — a
    /// token seen before, users and revocations unchanged since they were read — so it can
    /// run on the async runtime; `None` when it does (run `authenticate` off the runtime).
    pub fn authenticate_in_memory(&self, store: &Store, token: &str) -> Option<Result<Who>> {
        let key = kiln_core::cids::sha256(token.as_bytes());
        let generation = store.access_generation()?;
        // The identity this token proved under this generation, if it proved one.
        let known = lock(&self.proved)
            .get(&key)
            .filter(|(g, _)| *g == generation)
            .map(|(_, id)| id.clone());
        if let Some(id) = known {
            return Some(self.check_expiry(&id.token).and_then(|()| {
                self.take_rate(&id.did)?;
                Ok(Who::User(id))
            }));
        }
        let verified = lock(&self.verified).get(&key).cloned()?;
        let access = self.kept_access(store)?;
        let who = self
            .check_expiry(&verified)
            .and_then(|()| self.admit(verified, &access));
        if let Ok(Who::User(id)) = &who {
            let mut proved = lock(&self.proved);
            if proved.len() >= VERIFIED_KEPT {
                proved.clear();
            }
            proved.insert(key, (generation, id.clone()));
        }
        Some(who)
    }

    fn take_rate(&self, did: &str) -> Result<()> {
        match &self.per_identity {
            Some(limit) => limit.take_str(did),
            None => Ok(()),
        }
    }

    fn check_expiry(&self, v: &Verified) -> Result<()> {
        if v.expires() < token::now() {
            return Err(token_error(kiln_id::Error::TokenExpired {
                at: v.expires(),
            }));
        }
        Ok(())
    }

    /// The identity a verified token proves, given who may do what now.
    fn admit(&self, verified: std::sync::Arc<Verified>, access: &Access) -> Result<Who> {
        if verified
            .revocation_ids()
            .iter()
            .any(|id| access.revoked.contains(id))
        {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                format!("token {} was revoked", verified.id()),
            )
            .because(reason::TOKEN_REVOKED));
        }
        let Some(user) = access.users.get(verified.did()).cloned() else {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                format!("{} is not a user of this node", verified.did()),
            )
            .because(reason::UNKNOWN_USER));
        };
        self.take_rate(&user.did)?;
        Ok(Who::User(std::sync::Arc::new(Identity {
            did: user.did,
            grants: user.grants,
            token: verified,
        })))
    }

    /// The users and the deny-list now: as last read while the store's generation has not
    /// moved, else read again (and kept when no change was under way while reading).
    fn access(&self, store: &Store) -> Result<std::sync::Arc<Access>> {
        if let Some(kept) = self.kept_access(store) {
            return Ok(kept);
        }
        let before = store.access_generation();
        let access = std::sync::Arc::new(Access::read(store)?);
        if let Some(g) = before
            && store.access_generation() == Some(g)
        {
            *lock(&self.access) = Some((g, access.clone()));
        }
        Ok(access)
    }

    /// The users and the deny-list as kept, if the store's generation has not moved since.
    fn kept_access(&self, store: &Store) -> Option<std::sync::Arc<Access>> {
        let now = store.access_generation()?;
        match &*lock(&self.access) {
            Some((kept, access)) if *kept == now => Some(access.clone()),
            _ => None,
        }
    }

    /// `token`'s signatures checked (once per token: remembered), and its expiry (every
    /// time).
    fn verify(&self, token: &str) -> Result<std::sync::Arc<Verified>> {
        let now = token::now();
        let key = kiln_core::cids::sha256(token.as_bytes());
        let known = lock(&self.verified).get(&key).cloned();
        if let Some(v) = known {
            self.check_expiry(&v)?;
            return Ok(v);
        }
        let v = std::sync::Arc::new(
            token::verify(token, &self.key.public_key(), now).map_err(token_error)?,
        );
        let mut kept = lock(&self.verified);
        if kept.len() >= VERIFIED_KEPT {
            kept.clear();
        }
        kept.insert(key, v.clone());
        Ok(v)
    }

    /// A new challenge for `did` to answer.
    pub fn challenge(&self, did: &str) -> Result<Challenge> {
        users::check_did(did)?;
        let mut raw = [0u8; 24];
        getrandom(&mut raw)?;
        let nonce: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let now = token::now();
        let expires = now + CHALLENGE_TTL.as_secs();
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| Error::internal("the challenge table is poisoned"))?;
        pending.retain(|_, p| p.expires >= now);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.expires)
                .map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(
            nonce.clone(),
            Pending {
                did: did.to_string(),
                expires,
            },
        );
        Ok(Challenge {
            nonce,
            node: self.did.clone(),
            expires,
        })
    }

    /// Take the challenge `nonce` for `did` (it is used up whatever happens next) and check
    /// `signature` over its [`challenge_message`].
    pub fn answer(&self, did: &str, nonce: &str, signature: &[u8]) -> Result<()> {
        let failed = |why: &str| {
            Error::new(
                ErrorKind::Unauthenticated,
                format!("challenge refused: {why}"),
            )
            .because(reason::CHALLENGE)
        };
        let p = self
            .pending
            .lock()
            .map_err(|_| Error::internal("the challenge table is poisoned"))?
            .remove(nonce);
        let Some(p) = p else {
            return Err(failed("unknown or already used (ask for a new one)"));
        };
        if p.expires < token::now() {
            return Err(failed("expired (ask for a new one)"));
        }
        if p.did != did {
            return Err(failed("it was issued to another identity"));
        }
        let msg = challenge_message(&self.did, did, nonce);
        match kiln_id::verify(did, &msg, signature) {
            Ok(true) => Ok(()),
            _ => Err(failed("the signature does not match the identity")),
        }
    }

    /// Sign a token for `did` carrying `roles`, valid for `ttl`.
    pub(crate) fn mint(
        &self,
        did: &str,
        roles: &[(String, String)],
        ttl: Duration,
    ) -> Result<token::Minted> {
        self.key
            .mint_token(did, roles, token::now() + ttl.as_secs())
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// Check `token` (an issued token, to be revoked) against the node's key, whatever its
    /// expiry: its identity and the revocation id of its last block.
    pub(crate) fn inspect(&self, token: &str) -> Result<(String, String)> {
        let v = token::verify(token, &self.key.public_key(), 0).map_err(token_error)?;
        let last = v.revocation_ids().last().cloned().unwrap_or_default();
        Ok((v.did().to_string(), last))
    }
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    kiln_id::random(buf).map_err(|e| Error::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Via;
    use kiln_store::StoreOptions;

    #[test]
    fn tokens_roles_and_challenges() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let node = kiln_id::NodeKey::generate().unwrap();
        let auth =
            Auth::new(kiln_id::NodeKey::from_pkcs8_pem(&node.to_pkcs8_pem().unwrap()).unwrap());
        let alice = kiln_id::NodeKey::generate().unwrap();
        let admin = Caller::local(Via::Cli);
        users::add(
            &store,
            &admin,
            &alice.did(),
            None,
            Some((Role::Writer, "ci")),
        )
        .unwrap();

        let m = auth
            .mint(
                &alice.did(),
                &[("*".into(), "admin".into())],
                Duration::from_secs(60),
            )
            .unwrap();
        let who = auth.authenticate(&store, &m.token).unwrap();
        let caller = Caller { who, via: Via::Rpc };
        // The token says admin everywhere; the node says writer in ci: writer in ci it is.
        authorize(&caller, Op::Pin, "ci").unwrap();
        authorize(&caller, Op::Add, "ci").unwrap();
        for (op, ns) in [(Op::Pin, "docs"), (Op::Build, "ci"), (Op::Admin, "ci")] {
            let e = authorize(&caller, op, ns).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Forbidden);
            assert_eq!(e.reason(), reason::ROLE);
        }
        // A narrower token: pin only.
        let narrow = kiln_id::token::attenuate(
            &m.token,
            &kiln_id::token::Narrowing {
                only: vec!["pin".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let c2 = Caller {
            who: auth.authenticate(&store, &narrow).unwrap(),
            via: Via::Rpc,
        };
        authorize(&c2, Op::Pin, "ci").unwrap();
        let e = authorize(&c2, Op::Add, "ci").unwrap_err();
        assert_eq!(e.reason(), reason::SCOPE);

        // A build record names the verified identity and its token, then what it says.
        let by = crate::builds::requested_by(&caller, Some("ci job 7")).unwrap();
        assert_eq!(
            by,
            format!(
                "{} (verified, token {}) via kiln API: ci job 7",
                alice.did(),
                m.id
            )
        );
        assert_eq!(
            crate::builds::requested_by(&admin, None).unwrap(),
            "kiln API"
        );

        // Per identity, at most its rate: the burst, then a quota error saying when.
        let limited =
            Auth::new(kiln_id::NodeKey::from_pkcs8_pem(&node.to_pkcs8_pem().unwrap()).unwrap())
                .with_rate(crate::rate::Rate::new(0.001, 2.0));
        limited.authenticate(&store, &m.token).unwrap();
        limited.authenticate(&store, &narrow).unwrap();
        let e = limited.authenticate(&store, &m.token).unwrap_err();
        assert_eq!(
            (e.kind(), e.reason()),
            (ErrorKind::Quota, reason::RATE_LIMITED)
        );
        assert!(e.retry_after_secs().unwrap() > 100);
        assert!(e.message().contains(&alice.did()) && !e.message().contains("kiln1_"));

        // Checked once, then in memory until users or revocations change.
        let fresh =
            Auth::new(kiln_id::NodeKey::from_pkcs8_pem(&node.to_pkcs8_pem().unwrap()).unwrap());
        assert!(fresh.authenticate_in_memory(&store, &m.token).is_none());
        fresh.authenticate(&store, &m.token).unwrap();
        for _ in 0..2 {
            let who = fresh
                .authenticate_in_memory(&store, &m.token)
                .unwrap()
                .unwrap();
            assert!(matches!(who, Who::User(id) if id.did == alice.did()));
        }

        // Revoking the first block revokes both; removing the user refuses its tokens.
        let entry = crate::journal::entry(&admin, "token revoke", &m.id);
        store.token_revoke(&m.id, "local", &entry).unwrap();
        for t in [&m.token, &narrow] {
            let e = auth.authenticate(&store, t).unwrap_err();
            assert_eq!(e.reason(), reason::TOKEN_REVOKED);
        }
        // The revocation moved the store's generation: what was in memory is not used.
        assert!(!matches!(
            fresh.authenticate_in_memory(&store, &m.token),
            Some(Ok(_))
        ));
        assert_eq!(
            fresh.authenticate(&store, &m.token).unwrap_err().reason(),
            reason::TOKEN_REVOKED
        );
        assert_eq!(
            fresh
                .authenticate_in_memory(&store, &m.token)
                .unwrap()
                .unwrap_err()
                .reason(),
            reason::TOKEN_REVOKED
        );
        let m2 = auth
            .mint(
                &alice.did(),
                &[("ci".into(), "writer".into())],
                Duration::from_secs(60),
            )
            .unwrap();
        auth.authenticate(&store, &m2.token).unwrap();
        users::remove(&store, &admin, &alice.did()).unwrap();
        let e = auth.authenticate(&store, &m2.token).unwrap_err();
        assert_eq!(e.reason(), reason::UNKNOWN_USER);

        // Anonymous: public gateway reads only.
        let anon = |via| Caller {
            who: Who::Anonymous,
            via,
        };
        authorize(&anon(Via::Gateway), Op::Read, DEFAULT_NAMESPACE).unwrap();
        let e = authorize(&anon(Via::Rpc), Op::Read, DEFAULT_NAMESPACE).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(e.reason(), reason::TOKEN_MISSING);

        // Challenges: single use, bound to the identity, signed by it.
        let bob = kiln_id::NodeKey::generate().unwrap();
        let c = auth.challenge(&bob.did()).unwrap();
        let sig = bob.sign(&challenge_message(&c.node, &bob.did(), &c.nonce));
        assert_eq!(
            auth.answer(&alice.did(), &c.nonce, &sig)
                .unwrap_err()
                .reason(),
            reason::CHALLENGE,
            "another identity"
        );
        let c = auth.challenge(&bob.did()).unwrap();
        let sig = bob.sign(&challenge_message(&c.node, &bob.did(), &c.nonce));
        let wrong = alice.sign(&challenge_message(&c.node, &bob.did(), &c.nonce));
        assert!(auth.answer(&bob.did(), &c.nonce, &wrong).is_err());
        assert!(
            auth.answer(&bob.did(), &c.nonce, &sig).is_err(),
            "a failed answer uses the challenge up"
        );
        let c = auth.challenge(&bob.did()).unwrap();
        let sig = bob.sign(&challenge_message(&c.node, &bob.did(), &c.nonce));
        auth.answer(&bob.did(), &c.nonce, &sig).unwrap();
        assert!(
            auth.answer(&bob.did(), &c.nonce, &sig).is_err(),
            "a replayed answer is refused"
        );
    }
}
