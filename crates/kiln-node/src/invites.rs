//! Invite codes: `kiln invite create` and `kiln join`. An administrator makes an invite for
//! a role (in a namespace, or every one) that expires; the node seals a bootstrap bundle —
//! its DID, its addresses, the role, the expiry, signed with the node's key — under the code
//! and keeps only that, the code's id and the hash of the code's proof. A joiner fetches the
//! sealed bundle by the id, opens it with the code, checks the node's signature, and uses the
//! invite with the proof and a signature by its own identity: the node registers it with the
//! role, once. Wrong, used and expired codes are refused alike where telling them apart
//! would help a guesser (the bundle is not served for any of them).

use crate::journal::{self, action};
use crate::users::{ALL, Role, check_did, check_namespace};
use crate::{Caller, Error, ErrorKind, Result};
use kiln_id::NodeKey;
use kiln_id::invite::{InviteCode, join_message, proof_digest};
use kiln_store::Store;
use kiln_store::invites::{Invite, Redeemed};
use kiln_wire::{InviteBundle, InviteCreated, InviteView, JoinedView, SignedBundle};
use std::time::Duration;

/// The longest an invite may be good for.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes from hex, if it is hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn gone() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "no such invite: the code is wrong, or the invite was used or has expired",
    )
}

/// Make an invite granting `role` in `namespace` (`*`: every one) for `ttl`, sealed with a
/// bundle naming `addresses`, signed with the node's `key`.
pub fn create(
    store: &Store,
    caller: &Caller,
    key: &NodeKey,
    role: &str,
    namespace: Option<&str>,
    ttl: Duration,
    addresses: Vec<String>,
) -> Result<InviteCreated> {
    crate::auth::authorize(caller, crate::auth::Op::Admin, ALL)?;
    let role = Role::parse(role)?;
    let namespace = namespace.unwrap_or(ALL);
    check_namespace(namespace)?;
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(Error::invalid(format!(
            "an invite is good for at least a second and at most {} days",
            MAX_TTL.as_secs() / 86_400
        )));
    }
    let code = InviteCode::generate().map_err(|e| Error::internal(e.to_string()))?;
    let created_ms = now_ms();
    let expires_ms = created_ms + ttl.as_millis() as i64;
    let bundle = InviteBundle {
        node: key.did(),
        addresses,
        role: role.as_str().into(),
        namespace: namespace.into(),
        expires_ms,
        granted_by: caller.owner().to_string(),
    };
    let bundle = serde_json::to_string(&bundle).map_err(|e| Error::internal(e.to_string()))?;
    let signed = SignedBundle {
        signature: hex(&key.sign(bundle.as_bytes())),
        bundle,
    };
    let plain = serde_json::to_vec(&signed).map_err(|e| Error::internal(e.to_string()))?;
    let sealed = code
        .seal(&plain)
        .map_err(|e| Error::internal(e.to_string()))?;
    let invite = Invite {
        id: code.id(),
        sealed,
        proof_digest: proof_digest(&code.proof()),
        role: role.as_str().into(),
        namespace: namespace.into(),
        created_ms,
        expires_ms,
        created_by: caller.owner().to_string(),
        used_by: None,
    };
    let entry = journal::entry(caller, action::INVITE_CREATE, invite.id.clone()).detail(format!(
        "{} in {}, for {}",
        invite.role,
        crate::users::shown(namespace),
        kiln_wire::human_duration(ttl)
    ));
    store.invite_add(&invite, &entry)?;
    Ok(InviteCreated {
        code: code.display(),
        id: invite.id,
        role: invite.role,
        namespace: invite.namespace,
        expires_ms,
    })
}

/// Every invite (administrators), without codes.
pub fn list(store: &Store, caller: &Caller) -> Result<Vec<InviteView>> {
    crate::auth::authorize(caller, crate::auth::Op::Admin, ALL)?;
    Ok(store
        .invites()?
        .into_iter()
        .map(|i| InviteView {
            id: i.id,
            role: i.role,
            namespace: i.namespace,
            created_ms: i.created_ms,
            expires_ms: i.expires_ms,
            created_by: i.created_by,
            used_by: i.used_by,
        })
        .collect())
}

/// The sealed bundle of a live invite (anyone may ask: it opens only with the code).
pub fn sealed(store: &Store, id: &str) -> Result<Vec<u8>> {
    match store.invite(id)? {
        Some(i) if i.used_by.is_none() && now_ms() < i.expires_ms => Ok(i.sealed),
        _ => Err(gone()),
    }
}

/// Use invite `id`: `did` joins with the invite's role, having shown the code's `proof` and
/// its signature of the join message (`node` is this node's DID).
pub fn join(
    store: &Store,
    node: &str,
    id: &str,
    did: &str,
    proof: &str,
    signature: &[u8],
) -> Result<JoinedView> {
    check_did(did)?;
    let message = join_message(node, id, did);
    if !kiln_id::verify(did, &message, signature).unwrap_or(false) {
        return Err(Error::new(
            ErrorKind::Unauthenticated,
            format!("the join is not signed by {did}"),
        )
        .because(crate::auth::reason::TOKEN_INVALID));
    }
    let entry = kiln_store::journal::Entry::ok(did, "api", action::INVITE_USE, id).detail("joined");
    match store.invite_redeem(id, &proof_digest(proof), did, &entry)? {
        Redeemed::Joined(i) => Ok(JoinedView {
            did: did.into(),
            role: i.role,
            namespace: i.namespace,
        }),
        Redeemed::NotFound | Redeemed::Used | Redeemed::Expired => Err(gone()),
        Redeemed::AlreadyUser => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{did} is already a user of this node"),
        )),
    }
}
