//! Capability tokens: biscuit tokens (ed25519) signed by a node's key.
//!
//! A token's first block, signed by the node, says who holds it and what they may do:
//!
//! ```text
//! user("did:key:z6Mk…");          // the identity it was issued to
//! node("did:key:z6Mk…");          // the node that issued it
//! role("ci", "writer");           // the roles it carries, per namespace ("*": all)
//! expires(2026-12-05T10:00:00Z);
//! check if time($t), $t <= 2026-12-05T10:00:00Z;
//! ```
//!
//! Its holder may narrow it offline by appending blocks of checks ([`attenuate`]): only some
//! operations, one namespace, an earlier expiry. The node verifies a token with its public
//! key alone ([`verify`]); a request is then run against the checks of every block
//! ([`Verified::allows`]) with the facts `time(now)`, `operation(op)` and `namespace(ns)`.
//! Revocation is by the ids of a token's blocks ([`Verified::revocation_ids`]), which the
//! node keeps in a deny-list: revoking a token's first block revokes every token made from it.
//!
//! Tokens are written `kiln1_` then the biscuit in URL-safe base64, so a secret scanner (and
//! kiln's own tests) can find one wherever it leaks.

use crate::{Error, NodeKey, Result};
use biscuit_auth::builder::{AuthorizerBuilder, BlockBuilder, Term};
use biscuit_auth::{Biscuit, UnverifiedBiscuit};
use ed25519_dalek::VerifyingKey;
use std::collections::HashMap;
use std::time::Duration;

/// What every kiln token starts with.
pub const PREFIX: &str = "kiln1_";

/// The longest token accepted, in bytes: a few blocks are a few hundred bytes each.
pub const MAX_LEN: usize = 16 * 1024;

/// At most this many blocks (the first and its attenuations).
pub const MAX_BLOCKS: usize = 16;

/// The operations a token may be narrowed to (`--only`).
pub const OPERATIONS: [&str; 6] = ["read", "add", "pin", "build", "publish", "admin"];

/// A token just issued.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The token itself (a secret).
    pub token: String,
    /// Its id: the revocation id of its first block, in hex (not a secret).
    pub id: String,
    /// When it expires, in seconds since the epoch.
    pub expires: u64,
}

/// How an attenuation narrows a token.
#[derive(Debug, Clone, Default)]
pub struct Narrowing {
    /// Only these operations (of [`OPERATIONS`]); empty: any the token allowed.
    pub only: Vec<String>,
    /// Only in this namespace.
    pub namespace: Option<String>,
    /// Not after this time (seconds since the epoch).
    pub expires: Option<u64>,
}

/// A request, as a token's checks see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// One of [`OPERATIONS`].
    pub operation: &'a str,
    /// The namespace it acts in.
    pub namespace: &'a str,
    /// Now, in seconds since the epoch.
    pub now: u64,
}

/// A token whose signatures hold, issued by the node that verified it.
pub struct Verified {
    biscuit: Biscuit,
    did: String,
    id: String,
    expires: u64,
    roles: Vec<(String, String)>,
    revocation_ids: Vec<String>,
    /// The requests its checks allowed in the second `.0` (a token's checks see time in
    /// whole seconds, so within one second the same request gets the same answer).
    allowed: std::sync::Mutex<(u64, Vec<(String, String)>)>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        write!(f, "Verified({}, token {})", self.did, self.id)
    }
}

fn refused(why: impl Into<String>) -> Error {
    Error::TokenInvalid(why.into())
}

fn params(pairs: &[(&str, Term)]) -> HashMap<String, Term> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn biscuit_keypair(key: &NodeKey) -> Result<biscuit_auth::KeyPair> {
    let seed = key.key.to_bytes();
    biscuit_auth::KeyPair::from_bytes(
        &seed,
        biscuit_auth::format::schema::public_key::Algorithm::Ed25519,
    )
    .map_err(|e| Error::TokenInvalid(format!("node key: {e}")))
}

fn biscuit_public(key: &VerifyingKey) -> Result<biscuit_auth::PublicKey> {
    biscuit_auth::PublicKey::from_bytes(key.as_bytes(), biscuit_auth::Algorithm::Ed25519)
        .map_err(|e| Error::TokenInvalid(format!("node key: {e}")))
}

fn encode(b64: String) -> String {
    format!("{PREFIX}{b64}")
}

fn decode(token: &str) -> Result<&str> {
    let token = token.trim();
    if token.len() > MAX_LEN {
        return Err(refused(format!(
            "a token is at most {MAX_LEN} bytes; this one is {}",
            token.len()
        )));
    }
    token.strip_prefix(PREFIX).ok_or_else(|| {
        refused(format!(
            "not a kiln token (it does not start with {PREFIX})"
        ))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl NodeKey {
    /// Issue a token to `did`, carrying `roles` (namespace, role), valid until `expires`
    /// (seconds since the epoch).
    pub fn mint_token(
        &self,
        did: &str,
        roles: &[(String, String)],
        expires: u64,
    ) -> Result<Minted> {
        crate::parse_did_key(did)?;
        let exp = Term::Date(expires);
        let mut b = Biscuit::builder()
            .code_with_params(
                "user({did}); node({node}); expires({exp}); check if time($t), $t <= {exp};",
                params(&[
                    ("did", Term::Str(did.into())),
                    ("node", Term::Str(self.did())),
                    ("exp", exp),
                ]),
                HashMap::new(),
            )
            .map_err(|e| refused(format!("cannot make a token: {e}")))?;
        for (ns, role) in roles {
            b = b
                .code_with_params(
                    "role({ns}, {role});",
                    params(&[
                        ("ns", Term::Str(ns.clone())),
                        ("role", Term::Str(role.clone())),
                    ]),
                    HashMap::new(),
                )
                .map_err(|e| refused(format!("cannot make a token: {e}")))?;
        }
        let biscuit = b
            .build(&biscuit_keypair(self)?)
            .map_err(|e| refused(format!("cannot sign a token: {e}")))?;
        let id = biscuit
            .revocation_identifiers()
            .first()
            .map(|r| hex(r))
            .unwrap_or_default();
        let token = encode(
            biscuit
                .to_base64()
                .map_err(|e| refused(format!("cannot encode a token: {e}")))?,
        );
        Ok(Minted { token, id, expires })
    }
}

/// Narrow `token` offline: a new token that allows only what both it and `narrowing` allow.
/// Its signatures are not checked here (only its issuer can); a token that is not one
/// gives an error.
pub fn attenuate(token: &str, narrowing: &Narrowing) -> Result<String> {
    let b64 = decode(token)?;
    let unverified = UnverifiedBiscuit::from_base64(b64)
        .map_err(|e| refused(format!("not a valid token: {e}")))?;
    if unverified.block_count() >= MAX_BLOCKS {
        return Err(refused(format!(
            "a token has at most {MAX_BLOCKS} blocks; this one cannot be narrowed further"
        )));
    }
    let mut block = BlockBuilder::new();
    let bad = |e: biscuit_auth::error::Token| refused(format!("cannot narrow the token: {e}"));
    if !narrowing.only.is_empty() {
        for op in &narrowing.only {
            if !OPERATIONS.contains(&op.as_str()) {
                return Err(Error::TokenInvalid(format!(
                    "unknown operation {op:?} (operations: {})",
                    OPERATIONS.join(", ")
                )));
            }
        }
        let set: std::collections::BTreeSet<Term> = narrowing
            .only
            .iter()
            .map(|o| Term::Str(o.clone()))
            .collect();
        block = block
            .code_with_params(
                "check if operation($op), {ops}.contains($op);",
                params(&[("ops", Term::Set(set))]),
                HashMap::new(),
            )
            .map_err(bad)?;
    }
    if let Some(ns) = &narrowing.namespace {
        block = block
            .code_with_params(
                "check if namespace($ns), $ns == {ns};",
                params(&[("ns", Term::Str(ns.clone()))]),
                HashMap::new(),
            )
            .map_err(bad)?;
    }
    if let Some(exp) = narrowing.expires {
        block = block
            .code_with_params(
                "check if time($t), $t <= {exp};",
                params(&[("exp", Term::Date(exp))]),
                HashMap::new(),
            )
            .map_err(bad)?;
    }
    let narrowed = unverified.append(block).map_err(bad)?;
    Ok(encode(narrowed.to_base64().map_err(bad)?))
}

/// The blocks of `token` as text (its Datalog), without checking its signatures.
pub fn describe(token: &str) -> Result<Vec<String>> {
    let b64 = decode(token)?;
    let unverified = UnverifiedBiscuit::from_base64(b64)
        .map_err(|e| refused(format!("not a valid token: {e}")))?;
    (0..unverified.block_count())
        .map(|i| {
            unverified
                .print_block_source(i)
                .map_err(|e| refused(format!("not a valid token: {e}")))
        })
        .collect()
}

fn limits() -> biscuit_auth::AuthorizerLimits {
    biscuit_auth::AuthorizerLimits {
        max_facts: 1000,
        max_iterations: 100,
        // Generous: a shared machine may pause a thread for longer than the default 1 ms.
        max_time: Duration::from_millis(50),
    }
}

/// Check `token`'s signatures against the node key `node` and read what its first block
/// says. An expired token is [`Error::TokenExpired`]; one that is not a kiln token, whose
/// signatures fail or that another node issued is [`Error::TokenInvalid`].
pub fn verify(token: &str, node: &VerifyingKey, now: u64) -> Result<Verified> {
    let b64 = decode(token)?;
    let root = biscuit_public(node)?;
    let biscuit = Biscuit::from_base64(b64, root).map_err(|e| {
        refused(format!(
            "the token is not one this node issued, or it was altered ({e})"
        ))
    })?;
    if biscuit.block_count() > MAX_BLOCKS {
        return Err(refused(format!("a token has at most {MAX_BLOCKS} blocks")));
    }
    let mut authorizer = AuthorizerBuilder::new()
        .set_limits(limits())
        .build(&biscuit)
        .map_err(|e| refused(format!("cannot read the token: {e}")))?;
    let users: Vec<(String,)> = authorizer
        .query("data($u) <- user($u)")
        .map_err(|e| refused(format!("cannot read the token: {e}")))?;
    let nodes: Vec<(String,)> = authorizer
        .query("data($n) <- node($n)")
        .map_err(|e| refused(format!("cannot read the token: {e}")))?;
    let expiries: Vec<(std::time::SystemTime,)> = authorizer
        .query("data($e) <- expires($e)")
        .map_err(|e| refused(format!("cannot read the token: {e}")))?;
    let roles: Vec<(String, String)> = authorizer
        .query("data($ns, $r) <- role($ns, $r)")
        .map_err(|e| refused(format!("cannot read the token: {e}")))?;
    let ([(did,)], [(issuer,)], [(expires,)]) =
        (users.as_slice(), nodes.as_slice(), expiries.as_slice())
    else {
        return Err(refused(
            "the token does not name exactly one user, node and expiry",
        ));
    };
    if *issuer != crate::did_key(node) {
        return Err(refused("the token was issued by another node"));
    }
    let expires = expires
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if expires < now {
        return Err(Error::TokenExpired { at: expires });
    }
    let revocation_ids: Vec<String> = biscuit
        .revocation_identifiers()
        .iter()
        .map(|r| hex(r))
        .collect();
    Ok(Verified {
        did: did.clone(),
        id: revocation_ids.first().cloned().unwrap_or_default(),
        expires,
        roles: roles.clone(),
        revocation_ids,
        biscuit,
        allowed: std::sync::Mutex::new((0, Vec::new())),
    })
}

impl Verified {
    /// The identity the token was issued to.
    pub fn did(&self) -> &str {
        &self.did
    }

    /// Its id (the revocation id of its first block, hex).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When its first block expires (seconds since the epoch).
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// The roles it carries: (namespace, role).
    pub fn roles(&self) -> &[(String, String)] {
        &self.roles
    }

    /// The revocation ids of all its blocks (hex), first block first.
    pub fn revocation_ids(&self) -> &[String] {
        &self.revocation_ids
    }

    /// Whether the checks of every block allow `request`: [`Error::TokenExpired`] when a
    /// time check refuses it, [`Error::TokenScope`] for any other check.
    pub fn allows(&self, request: &Request<'_>) -> Result<()> {
        let seen = |(at, ok): &(u64, Vec<(String, String)>)| {
            *at == request.now
                && ok
                    .iter()
                    .any(|(op, ns)| op == request.operation && ns == request.namespace)
        };
        if seen(&self.allowed.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(());
        }
        self.check(request)?;
        let mut memo = self.allowed.lock().unwrap_or_else(|e| e.into_inner());
        if memo.0 != request.now {
            *memo = (request.now, Vec::new());
        }
        if memo.1.len() < 64 {
            memo.1
                .push((request.operation.to_string(), request.namespace.to_string()));
        }
        Ok(())
    }

    /// [`Verified::allows`], with the biscuit's checks run.
    fn check(&self, request: &Request<'_>) -> Result<()> {
        let build =
            || -> std::result::Result<biscuit_auth::Authorizer, biscuit_auth::error::Token> {
                AuthorizerBuilder::new()
                    .code_with_params(
                        "time({now}); operation({op}); namespace({ns}); allow if user($u);",
                        params(&[
                            ("now", Term::Date(request.now)),
                            ("op", Term::Str(request.operation.into())),
                            ("ns", Term::Str(request.namespace.into())),
                        ]),
                        HashMap::new(),
                    )?
                    .set_limits(limits())
                    .build(&self.biscuit)
            };
        let mut authorizer = build().map_err(|e| refused(format!("cannot read the token: {e}")))?;
        match authorizer.authorize() {
            Ok(_) => Ok(()),
            Err(biscuit_auth::error::Token::FailedLogic(
                biscuit_auth::error::Logic::Unauthorized { checks, .. }
                | biscuit_auth::error::Logic::NoMatchingPolicy { checks },
            )) => {
                let rules: Vec<String> = checks
                    .iter()
                    .map(|c| match c {
                        biscuit_auth::error::FailedCheck::Block(b) => b.rule.clone(),
                        biscuit_auth::error::FailedCheck::Authorizer(a) => a.rule.clone(),
                    })
                    .collect();
                if rules.iter().any(|r| r.contains("time(")) {
                    Err(Error::TokenExpired { at: request.now })
                } else {
                    Err(Error::TokenScope(rules.join("; ")))
                }
            }
            Err(e) => Err(refused(format!("the token's checks could not run: {e}"))),
        }
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(r: &[(&str, &str)]) -> Vec<(String, String)> {
        r.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn mint_verify_attenuate() {
        let node = NodeKey::generate().unwrap();
        let user = NodeKey::generate().unwrap();
        let now = now();
        let m = node
            .mint_token(&user.did(), &roles(&[("*", "writer")]), now + 3600)
            .unwrap();
        assert!(m.token.starts_with(PREFIX));
        let v = verify(&m.token, &node.public_key(), now).unwrap();
        assert_eq!(v.did(), user.did());
        assert_eq!(v.id(), m.id);
        assert_eq!(v.roles(), roles(&[("*", "writer")]).as_slice());
        let pin_ci = Request {
            operation: "pin",
            namespace: "ci",
            now,
        };
        v.allows(&pin_ci).unwrap();

        // Narrowed: pin in ci, for a minute.
        let narrow = attenuate(
            &m.token,
            &Narrowing {
                only: vec!["pin".into()],
                namespace: Some("ci".into()),
                expires: Some(now + 60),
            },
        )
        .unwrap();
        let n = verify(&narrow, &node.public_key(), now).unwrap();
        assert_eq!(n.did(), user.did(), "the identity carries over");
        assert_eq!(n.revocation_ids().len(), 2);
        assert_eq!(
            n.revocation_ids()[0],
            m.id,
            "revoking the first block revokes it"
        );
        n.allows(&pin_ci).unwrap();
        for (op, ns) in [("add", "ci"), ("pin", "docs"), ("admin", "ci")] {
            let e = n
                .allows(&Request {
                    operation: op,
                    namespace: ns,
                    now,
                })
                .unwrap_err();
            assert!(matches!(e, Error::TokenScope(_)), "{op} {ns}: {e}");
        }
        let e = n
            .allows(&Request {
                now: now + 120,
                ..pin_ci
            })
            .unwrap_err();
        assert!(matches!(e, Error::TokenExpired { .. }), "{e}");

        // Expired, another node's, altered, garbage.
        assert!(matches!(
            verify(&m.token, &node.public_key(), now + 7200).unwrap_err(),
            Error::TokenExpired { .. }
        ));
        let other = NodeKey::generate().unwrap();
        assert!(matches!(
            verify(&m.token, &other.public_key(), now).unwrap_err(),
            Error::TokenInvalid(_)
        ));
        let mut altered = m.token.clone().into_bytes();
        let i = altered.len() / 2;
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(verify(&altered, &node.public_key(), now).is_err());
        for junk in [
            "",
            "kiln1_",
            "kiln1_!!!",
            "Bearer x",
            &"kiln1_A".repeat(5000),
        ] {
            assert!(matches!(
                verify(junk, &node.public_key(), now).unwrap_err(),
                Error::TokenInvalid(_)
            ));
        }
        assert!(attenuate("nope", &Narrowing::default()).is_err());
        assert!(
            attenuate(
                &m.token,
                &Narrowing {
                    only: vec!["root".into()],
                    ..Narrowing::default()
                }
            )
            .is_err()
        );
        // A token minted by a user's own key for itself is not the node's.
        let selfmade = user
            .mint_token(&user.did(), &roles(&[("*", "admin")]), now + 60)
            .unwrap();
        assert!(verify(&selfmade.token, &node.public_key(), now).is_err());
        assert_eq!(describe(&narrow).unwrap().len(), 2);
    }
}
