//! Capability tokens as use cases: `kiln token create|ls|revoke`, and signing in by
//! answering a challenge. The node keeps each token's id, holder and expiry (never the
//! token) and a deny-list of revoked ids; the journal records each issue and revocation.

use crate::auth::{self, Auth, DEFAULT_TTL, MAX_TTL, Op, reason};
use crate::journal::{self, action};
use crate::users::{self, ALL, Role};
use crate::{Caller, Error, ErrorKind, Result, Via, Who};
use kiln_id::token::Minted;
use kiln_store::Store;
use kiln_store::tokens::IssuedToken;
use std::time::Duration;

/// What a new token is to be.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Whose: an identity that is a user of the node (none: the caller's own).
    pub did: Option<String>,
    /// The roles it carries, each no more than its holder has (none: all the holder's).
    pub roles: Option<Vec<(String, String)>>,
    /// How long it lives (none: [`DEFAULT_TTL`]).
    pub ttl: Option<Duration>,
    /// What it is for.
    pub note: String,
}

fn check_ttl(ttl: Option<Duration>) -> Result<Duration> {
    let ttl = ttl.unwrap_or(DEFAULT_TTL);
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(Error::invalid(format!(
            "a token lives from 1 second to {} days",
            MAX_TTL.as_secs() / 86_400
        )));
    }
    Ok(ttl)
}

fn check_note(note: &str) -> Result<()> {
    if note.len() > 200 || note.chars().any(char::is_control) {
        return Err(Error::invalid(
            "a token's note is at most 200 characters, none of them control characters",
        ));
    }
    Ok(())
}

/// The roles a token for `user` is to carry: `asked` (each checked against what the user
/// holds), or all the user holds.
fn carried(
    user: &kiln_store::users::User,
    asked: Option<Vec<(String, String)>>,
) -> Result<Vec<(String, String)>> {
    let Some(asked) = asked else {
        return Ok(user.grants.clone());
    };
    for (ns, role) in &asked {
        users::check_namespace(ns)?;
        let role = Role::parse(role)?;
        let held = users::role_in(user, ns);
        // A role in every namespace needs that role in every namespace.
        let held = if ns == ALL {
            user.grants
                .iter()
                .filter(|(n, _)| n == ALL)
                .filter_map(|(_, r)| Role::parse(r).ok())
                .max()
        } else {
            held
        };
        if held < Some(role) {
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!(
                    "{} holds {} in {}: a token cannot carry {role} there",
                    user.did,
                    held.map_or("no role".to_string(), |r| r.to_string()),
                    users::shown(ns)
                ),
            )
            .because(reason::ROLE));
        }
    }
    Ok(asked)
}

fn own_did(caller: &Caller) -> Option<&str> {
    match &caller.who {
        Who::User(id) => Some(&id.did),
        _ => None,
    }
}

/// Issue a token (an administrator's work: a user gets its own by signing in, and narrows
/// it offline; a token that could mint a wider one would undo its attenuations). It carries
/// no more than its holder has.
pub fn create(store: &Store, auth: &Auth, caller: &Caller, req: Request) -> Result<Minted> {
    auth::authorize(caller, Op::Admin, ALL)?;
    let did = match (&req.did, own_did(caller)) {
        (Some(d), _) => d.clone(),
        (None, Some(me)) => me.to_string(),
        (None, None) => {
            return Err(Error::invalid(
                "say whose token this is (the DID of a user of the node)",
            ));
        }
    };
    users::check_did(&did)?;
    check_note(&req.note)?;
    let ttl = check_ttl(req.ttl)?;
    let user = store.user(&did)?.ok_or_else(|| {
        Error::not_found(format!(
            "{did} is not a user of this node: add it first (kiln user add {did} --role ROLE)"
        ))
    })?;
    let roles = carried(&user, req.roles)?;
    let minted = auth.mint(&did, &roles, ttl)?;
    let entry =
        journal::entry(caller, action::TOKEN_CREATE, &did).detail(detail(&minted, &req.note));
    store.token_issued(
        &row(&minted, &did, caller.owner().as_str(), &req.note),
        &entry,
    )?;
    Ok(minted)
}

fn detail(m: &Minted, note: &str) -> String {
    if note.is_empty() {
        format!("token {}", m.id)
    } else {
        format!("token {} ({note})", m.id)
    }
}

fn row(m: &Minted, did: &str, by: &str, note: &str) -> IssuedToken {
    IssuedToken {
        id: m.id.clone(),
        did: did.to_string(),
        issued_ms: now_ms(),
        expires: m.expires as i64,
        issued_by: by.to_string(),
        note: note.to_string(),
        revoked_ms: None,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Sign in: `did` answers the challenge `nonce` with `signature` and receives a token
/// carrying the roles it holds, valid for `ttl`.
#[allow(clippy::too_many_arguments)]
pub fn login(
    store: &Store,
    auth: &Auth,
    via: Via,
    did: &str,
    nonce: &str,
    signature: &[u8],
    ttl: Option<Duration>,
    note: &str,
) -> Result<Minted> {
    users::check_did(did)?;
    check_note(note)?;
    let ttl = check_ttl(ttl)?;
    auth.answer(did, nonce, signature)?;
    let user = store.user(did)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Unauthenticated,
            format!("{did} is not a user of this node: ask an administrator to add it (kiln user add) or use an invite"),
        )
        .because(reason::UNKNOWN_USER)
    })?;
    let minted = auth.mint(did, &user.grants, ttl)?;
    let entry =
        kiln_store::journal::Entry::ok(did, via.as_str(), action::TOKEN_CREATE, did).detail(
            detail(&minted, if note.is_empty() { "signed in" } else { note }),
        );
    store.token_issued(&row(&minted, did, did, note), &entry)?;
    Ok(minted)
}

/// The tokens issued: every one for an administrator (or `did`'s), a user's own otherwise.
pub fn list(store: &Store, caller: &Caller, did: Option<&str>) -> Result<Vec<IssuedToken>> {
    auth::known(caller)?;
    match own_did(caller) {
        Some(me) if did.is_none_or(|d| d == me) => {
            auth::authorize(caller, Op::Read, auth::DEFAULT_NAMESPACE).or_else(|e| {
                // Any user may see its own tokens, whatever its role.
                if e.kind() == ErrorKind::Forbidden && e.reason() == reason::ROLE {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
            Ok(store.tokens(Some(me))?)
        }
        _ => {
            auth::authorize(caller, Op::Admin, ALL)?;
            Ok(store.tokens(did)?)
        }
    }
}

/// Revoke a token, named by its id or given whole (then that token and every token made
/// from it, not the token it was made from): an administrator any; a token itself. The
/// id revoked.
pub fn revoke(store: &Store, auth: &Auth, caller: &Caller, what: &str) -> Result<String> {
    auth::known(caller)?;
    let what = what.trim();
    let (did, id) = if what.starts_with(kiln_id::token::PREFIX) {
        auth.inspect(what)?
    } else {
        if what.is_empty() || what.len() > 256 || !what.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "{what:?} is neither a token id (kiln token ls) nor a token"
            )));
        }
        let t = store.token(what)?.ok_or_else(|| {
            Error::not_found(format!(
                "no token {what} was issued by this node (kiln token ls)"
            ))
        })?;
        (t.did, t.id)
    };
    // A token may always revoke itself (signing out); anything else is an administrator's.
    let itself = matches!(&caller.who, Who::User(me) if me.token_block() == id);
    if !itself {
        auth::authorize(caller, Op::Admin, ALL).map_err(|e| {
            if e.kind() == ErrorKind::Forbidden {
                Error::new(
                    ErrorKind::Forbidden,
                    "a token revokes only itself (kiln token revoke -, given that token); any other is an administrator's to revoke",
                )
                .because(reason::NOT_OWNER)
            } else {
                e
            }
        })?;
    }
    let entry = journal::entry(caller, action::TOKEN_REVOKE, &did).detail(format!("token {id}"));
    if !store.token_revoke(&id, caller.owner().as_str(), &entry)? {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("token {id} is revoked already"),
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_store::StoreOptions;

    #[test]
    fn create_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let auth = Auth::new(kiln_id::NodeKey::generate().unwrap());
        let admin = Caller::local(Via::Cli);
        let alice = kiln_id::NodeKey::generate().unwrap().did();
        let bob = kiln_id::NodeKey::generate().unwrap().did();
        users::add(&store, &admin, &alice, None, Some((Role::Writer, "ci"))).unwrap();
        users::add(&store, &admin, &bob, None, Some((Role::Reader, ALL))).unwrap();

        let req = |did: &str, roles: Option<Vec<(String, String)>>| Request {
            did: Some(did.to_string()),
            roles,
            ttl: Some(Duration::from_secs(600)),
            note: "test".into(),
        };
        let a = create(&store, &auth, &admin, req(&alice, None)).unwrap();
        // More than alice holds: refused.
        let e = create(
            &store,
            &auth,
            &admin,
            req(&alice, Some(vec![("ci".into(), "admin".into())])),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        let stranger = kiln_id::NodeKey::generate().unwrap().did();
        assert_eq!(
            create(&store, &auth, &admin, req(&stranger, None))
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        let as_alice = Caller {
            who: auth.authenticate(&store, &a.token).unwrap(),
            via: Via::Api,
        };
        // Alice (a writer) issues no tokens, not even her own: she signs in or narrows hers.
        assert_eq!(
            create(
                &store,
                &auth,
                &as_alice,
                Request {
                    did: None,
                    ..req(&alice, None)
                }
            )
            .unwrap_err()
            .kind(),
            ErrorKind::Forbidden
        );
        create(
            &store,
            &auth,
            &admin,
            req(&alice, Some(vec![("ci".into(), "reader".into())])),
        )
        .unwrap();
        assert_eq!(
            create(&store, &auth, &as_alice, req(&bob, None))
                .unwrap_err()
                .kind(),
            ErrorKind::Forbidden
        );
        let b = create(&store, &auth, &admin, req(&bob, None)).unwrap();
        assert_eq!(list(&store, &as_alice, None).unwrap().len(), 2);
        assert_eq!(list(&store, &admin, None).unwrap().len(), 3);
        assert_eq!(
            list(&store, &as_alice, Some(&bob)).unwrap_err().kind(),
            ErrorKind::Forbidden
        );
        // Alice cannot revoke bob's; she can revoke her own, by token or id.
        assert_eq!(
            revoke(&store, &auth, &as_alice, &b.id)
                .unwrap_err()
                .reason(),
            reason::NOT_OWNER
        );
        assert!(auth.authenticate(&store, &b.token).is_ok());
        revoke(&store, &auth, &admin, &b.token).unwrap();
        assert!(auth.authenticate(&store, &b.token).is_err());
        assert_eq!(
            revoke(&store, &auth, &admin, &b.id).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        revoke(&store, &auth, &as_alice, &a.id).unwrap();
        assert!(auth.authenticate(&store, &a.token).is_err());
        assert_eq!(
            revoke(&store, &auth, &admin, "zz").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );

        // Signing in by a challenge.
        let carol_key = kiln_id::NodeKey::generate().unwrap();
        let carol = carol_key.did();
        let c = auth.challenge(&carol).unwrap();
        let sig = carol_key.sign(&auth::challenge_message(&c.node, &carol, &c.nonce));
        let e = login(&store, &auth, Via::Api, &carol, &c.nonce, &sig, None, "").unwrap_err();
        assert_eq!(e.reason(), reason::UNKNOWN_USER, "not a user yet");
        users::add(&store, &admin, &carol, None, Some((Role::Reader, "docs"))).unwrap();
        let c = auth.challenge(&carol).unwrap();
        let sig = carol_key.sign(&auth::challenge_message(&c.node, &carol, &c.nonce));
        let t = login(&store, &auth, Via::Api, &carol, &c.nonce, &sig, None, "").unwrap();
        let who = auth.authenticate(&store, &t.token).unwrap();
        auth::authorize(&Caller { who, via: Via::Api }, Op::Read, "docs").unwrap();
        assert!(
            login(&store, &auth, Via::Api, &carol, &c.nonce, &sig, None, "").is_err(),
            "a challenge is good once"
        );
        // The journal names tokens by id, never the token.
        let events = store
            .events(&kiln_store::journal::Query::default())
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.entry.action == action::TOKEN_CREATE)
        );
        assert!(
            events
                .iter()
                .any(|e| e.entry.action == action::TOKEN_REVOKE)
        );
        for e in events {
            assert!(!format!("{:?}", e.entry).contains(kiln_id::token::PREFIX));
        }
    }
}
