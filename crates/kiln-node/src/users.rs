//! The node's users and their roles: `kiln user add|rm|ls|grant|revoke`. A user is an
//! identity (`did:key`); a role is held in a namespace (which scopes pins, schedules, names
//! and packages) or in every namespace (`*`). Roles, from most to least: admin (everything,
//! including users), maintainer (builds — which run code on the node, even sandboxed — and
//! publishing), writer (add, pin), reader. Only the local administrator changes users
//! today; an identity holding admin will too, once requests carry identities.

use crate::journal::{self, action};
use crate::{Caller, Error, ErrorKind, Result};
use kiln_store::Store;
use kiln_store::users::{Granted, User};
use std::fmt;

/// Every namespace: a role held there holds in each.
pub const ALL: &str = "*";

/// What a user may do in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read content and listings.
    Reader,
    /// And add and pin.
    Writer,
    /// And build and publish.
    Maintainer,
    /// And manage users, tokens and the node.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Writer, Role::Maintainer, Role::Admin];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Maintainer => "maintainer",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown role {s:?} (roles: admin, maintainer, writer, reader)"
                ))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Check a namespace name: `*`, or 1 to 63 of `a-z 0-9 - _ .`, starting with a letter or a
/// digit.
pub fn check_namespace(ns: &str) -> Result<()> {
    let ok = ns == ALL
        || (!ns.is_empty()
            && ns.len() <= 63
            && ns.as_bytes()[0].is_ascii_alphanumeric()
            && ns
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid namespace {ns:?}: 1 to 63 of a-z, 0-9, '-', '_', '.', starting with a letter or digit (or * for every namespace)"
        )))
    }
}

/// Check a DID: an ed25519 `did:key` (the only identities kiln has).
pub fn check_did(did: &str) -> Result<()> {
    kiln_id::parse_did_key(did)
        .map(drop)
        .map_err(|e| Error::invalid(e.to_string()))
}

/// Only an administrator (of every namespace) manages users.
fn authorize(caller: &Caller, what: &str) -> Result<()> {
    crate::auth::authorize(caller, crate::auth::Op::Admin, ALL).map_err(|e| {
        if e.kind() == ErrorKind::Forbidden {
            Error::new(
                ErrorKind::Forbidden,
                format!(
                    "{} may not {what}: only an administrator manages users",
                    caller.who
                ),
            )
            .because(e.reason())
        } else {
            e
        }
    })
}

/// Every user, with their roles (an administrator's view).
pub fn list(store: &Store, caller: &Caller) -> Result<Vec<User>> {
    authorize(caller, "list users")?;
    Ok(store.users()?)
}

/// Add user `did` (named `name`), optionally with `role` in `namespace`; an error if the
/// node knows it already.
pub fn add(
    store: &Store,
    caller: &Caller,
    did: &str,
    name: Option<&str>,
    role: Option<(Role, &str)>,
) -> Result<User> {
    authorize(caller, "add users")?;
    check_did(did)?;
    if let Some(n) = name
        && (n.trim().is_empty() || n.len() > 200 || n.chars().any(char::is_control))
    {
        return Err(Error::invalid(
            "a user's name is 1 to 200 characters, none of them control characters",
        ));
    }
    if let Some((_, ns)) = role {
        check_namespace(ns)?;
    }
    let by = caller.owner();
    let entry = journal::entry(caller, action::USER_ADD, did).detail(name.unwrap_or_default());
    if !store.user_add(did, name, by.as_str(), &entry)? {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{did} is already a user of this node (kiln user ls)"),
        ));
    }
    if let Some((r, ns)) = role {
        grant(store, caller, did, r, ns)?;
    }
    known(store, did)
}

/// Remove user `did` and every role it holds.
pub fn remove(store: &Store, caller: &Caller, did: &str) -> Result<()> {
    authorize(caller, "remove users")?;
    let entry = journal::entry(caller, action::USER_RM, did);
    if store.user_rm(did, &entry)? {
        Ok(())
    } else {
        Err(no_such_user(did))
    }
}

/// Give user `did` the role `role` in `namespace` (in place of what it had there); the
/// role it had.
pub fn grant(
    store: &Store,
    caller: &Caller,
    did: &str,
    role: Role,
    namespace: &str,
) -> Result<Option<String>> {
    authorize(caller, "grant roles")?;
    check_namespace(namespace)?;
    let entry = journal::entry(caller, action::ROLE_GRANT, did)
        .detail(format!("{role} in {}", shown(namespace)));
    match store.grant(did, namespace, role.as_str(), &entry)? {
        Granted::NoSuchUser => Err(no_such_user(did)),
        Granted::Set { previous } => Ok(previous),
    }
}

/// Take away user `did`'s role in `namespace`: the role it had.
pub fn revoke(store: &Store, caller: &Caller, did: &str, namespace: &str) -> Result<String> {
    authorize(caller, "revoke roles")?;
    check_namespace(namespace)?;
    let entry =
        journal::entry(caller, action::ROLE_REVOKE, did).detail(format!("in {}", shown(namespace)));
    match store.revoke(did, namespace, &entry)? {
        Some(role) => Ok(role),
        None if store.user(did)?.is_none() => Err(no_such_user(did)),
        None => Err(Error::not_found(format!(
            "{did} has no role in {}",
            shown(namespace)
        ))),
    }
}

/// The role `user` holds in `namespace`: the highest of its role there and its role in
/// every namespace.
pub fn role_in(user: &User, namespace: &str) -> Option<Role> {
    user.grants
        .iter()
        .filter(|(ns, _)| ns == namespace || ns == ALL)
        .filter_map(|(_, r)| Role::parse(r).ok())
        .max()
}

fn known(store: &Store, did: &str) -> Result<User> {
    store.user(did)?.ok_or_else(|| no_such_user(did))
}

fn no_such_user(did: &str) -> Error {
    Error::not_found(format!("{did} is not a user of this node (kiln user ls)"))
}

/// A namespace as messages name it.
pub fn shown(ns: &str) -> String {
    if ns == ALL {
        "every namespace".into()
    } else {
        format!("namespace {ns}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_store::StoreOptions;

    fn did() -> String {
        kiln_id::NodeKey::generate().unwrap().did()
    }

    #[test]
    fn users_roles_and_who_may_change_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let admin = Caller::local(crate::Via::Cli);
        let alice = did();
        let u = add(
            &store,
            &admin,
            &alice,
            Some("alice"),
            Some((Role::Writer, "ci")),
        )
        .unwrap();
        assert_eq!(role_in(&u, "ci"), Some(Role::Writer));
        assert_eq!(role_in(&u, "docs"), None);
        grant(&store, &admin, &alice, Role::Reader, ALL).unwrap();
        let u = list(&store, &admin).unwrap().remove(0);
        assert_eq!(role_in(&u, "docs"), Some(Role::Reader));
        assert_eq!(
            role_in(&u, "ci"),
            Some(Role::Writer),
            "the higher role holds"
        );

        let e = add(&store, &admin, &alice, None, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        for (bad_did, bad_ns) in [("did:key:nope", "ci"), (alice.as_str(), "Bad NS")] {
            let e = grant(&store, &admin, bad_did, Role::Admin, bad_ns).unwrap_err();
            let expect = if bad_did == alice {
                ErrorKind::InvalidInput
            } else {
                ErrorKind::NotFound
            };
            assert_eq!(e.kind(), expect, "{e}");
        }
        assert_eq!(
            Role::parse("root").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            add(&store, &admin, "did:web:x", None, None)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );

        // A schedule may not manage users; nothing changes.
        let before = store.users().unwrap();
        let schedule = Caller::schedule(1);
        assert_eq!(
            add(&store, &schedule, &did(), None, None)
                .unwrap_err()
                .kind(),
            ErrorKind::Forbidden
        );
        assert_eq!(
            grant(&store, &schedule, &alice, Role::Admin, ALL)
                .unwrap_err()
                .kind(),
            ErrorKind::Forbidden
        );
        assert_eq!(
            remove(&store, &schedule, &alice).unwrap_err().kind(),
            ErrorKind::Forbidden
        );
        assert_eq!(store.users().unwrap(), before);

        assert_eq!(revoke(&store, &admin, &alice, "ci").unwrap(), "writer");
        assert_eq!(
            revoke(&store, &admin, &alice, "ci").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        remove(&store, &admin, &alice).unwrap();
        assert_eq!(
            remove(&store, &admin, &alice).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        // Each change is in the journal, with who made it.
        let q = kiln_store::journal::Query::default();
        let actions: Vec<String> = store
            .events(&q)
            .unwrap()
            .into_iter()
            .map(|e| e.entry.action)
            .collect();
        for a in [
            action::USER_ADD,
            action::ROLE_GRANT,
            action::ROLE_REVOKE,
            action::USER_RM,
        ] {
            assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
        }
    }
}
