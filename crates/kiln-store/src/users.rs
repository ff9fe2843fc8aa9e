//! The node's users: the identities (`did:key`) it knows, and the role each holds in each
//! namespace. Roles and namespaces are strings here; what they mean (and who may change
//! them) is the node layer's. Every change is written with its journal entry in one
//! transaction.

use crate::journal::{self, Entry};
use crate::{Result, Store, db};
use rusqlite::{OptionalExtension, params};

/// A user of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The identity, a `did:key`.
    pub did: String,
    /// A name for people to read.
    pub name: Option<String>,
    /// When the user was added (milliseconds since the Unix epoch).
    pub added_ms: i64,
    /// Who added it (the journal's `who`).
    pub added_by: String,
    /// `(namespace, role)`, by namespace.
    pub grants: Vec<(String, String)>,
}

/// What [`Store::grant`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    /// There is no such user: nothing changed.
    NoSuchUser,
    /// The role is set; the one it replaced, if any.
    Set {
        /// The user's role in the namespace before.
        previous: Option<String>,
    },
}

impl Store {
    /// Every user, by DID, with their roles.
    pub fn users(&self) -> Result<Vec<User>> {
        let conn = self.inner.conn()?;
        let mut users: Vec<User> = conn
            .prepare_cached("SELECT did, name, added, added_by FROM users ORDER BY did")?
            .query_map([], |r| {
                Ok(User {
                    did: r.get(0)?,
                    name: r.get(1)?,
                    added_ms: r.get(2)?,
                    added_by: r.get(3)?,
                    grants: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt =
            conn.prepare_cached("SELECT did, namespace, role FROM grants ORDER BY did, namespace")?;
        let grants = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for g in grants {
            let (did, ns, role) = g?;
            if let Ok(i) = users.binary_search_by(|u| u.did.as_str().cmp(&did)) {
                users[i].grants.push((ns, role));
            }
        }
        Ok(users)
    }

    /// The user `did`, if the node knows it (read by its key, not from the whole registry).
    pub fn user(&self, did: &str) -> Result<Option<User>> {
        let conn = self.inner.conn()?;
        let Some(mut user) = conn
            .prepare_cached("SELECT did, name, added, added_by FROM users WHERE did = ?1")?
            .query_row(params![did], |r| {
                Ok(User {
                    did: r.get(0)?,
                    name: r.get(1)?,
                    added_ms: r.get(2)?,
                    added_by: r.get(3)?,
                    grants: Vec::new(),
                })
            })
            .optional()?
        else {
            return Ok(None);
        };
        user.grants = conn
            .prepare_cached("SELECT namespace, role FROM grants WHERE did = ?1 ORDER BY namespace")?
            .query_map(params![did], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(user))
    }

    /// Add user `did`; false (and nothing recorded) if the node knows it already.
    pub fn user_add(
        &self,
        did: &str,
        name: Option<&str>,
        added_by: &str,
        entry: &Entry,
    ) -> Result<bool> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let _changing = self.inner.changing_access();
        let n = tx.execute(
            "INSERT OR IGNORE INTO users(did, name, added, added_by) VALUES (?1, ?2, ?3, ?4)",
            params![did, name, db::now_millis(), added_by],
        )?;
        if n == 1 {
            journal::insert(&tx, entry)?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// Remove user `did` and its roles; false (and nothing recorded) if there is none.
    pub fn user_rm(&self, did: &str, entry: &Entry) -> Result<bool> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let _changing = self.inner.changing_access();
        tx.execute("DELETE FROM grants WHERE did = ?1", params![did])?;
        let n = tx.execute("DELETE FROM users WHERE did = ?1", params![did])?;
        if n == 1 {
            journal::insert(&tx, entry)?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// Give user `did` the role `role` in `namespace` (in place of the one it had there).
    pub fn grant(&self, did: &str, namespace: &str, role: &str, entry: &Entry) -> Result<Granted> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let _changing = self.inner.changing_access();
        let known: Option<i64> = tx
            .query_row("SELECT 1 FROM users WHERE did = ?1", params![did], |r| {
                r.get(0)
            })
            .optional()?;
        if known.is_none() {
            return Ok(Granted::NoSuchUser);
        }
        let previous: Option<String> = tx
            .query_row(
                "SELECT role FROM grants WHERE did = ?1 AND namespace = ?2",
                params![did, namespace],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "INSERT INTO grants(did, namespace, role) VALUES (?1, ?2, ?3)
             ON CONFLICT(did, namespace) DO UPDATE SET role = excluded.role",
            params![did, namespace, role],
        )?;
        journal::insert(&tx, entry)?;
        tx.commit()?;
        Ok(Granted::Set { previous })
    }

    /// Take away user `did`'s role in `namespace`: the role it had (and nothing recorded if
    /// none).
    pub fn revoke(&self, did: &str, namespace: &str, entry: &Entry) -> Result<Option<String>> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let _changing = self.inner.changing_access();
        let role: Option<String> = tx
            .query_row(
                "DELETE FROM grants WHERE did = ?1 AND namespace = ?2 RETURNING role",
                params![did, namespace],
                |r| r.get(0),
            )
            .optional()?;
        if role.is_some() {
            journal::insert(&tx, entry)?;
        }
        tx.commit()?;
        Ok(role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn entry(action: &str) -> Entry {
        Entry::ok("local", "cli", action, "did:key:z6MkA")
    }

    #[test]
    fn users_and_their_roles_change_with_their_journal_entries() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let events = || s.last_event().unwrap();
        let (a, b) = ("did:key:z6MkA", "did:key:z6MkB");
        assert!(
            s.user_add(a, Some("alice"), "local", &entry("user add"))
                .unwrap()
        );
        let n = events();
        assert!(!s.user_add(a, None, "local", &entry("user add")).unwrap());
        assert_eq!(events(), n, "a refused change is not recorded");
        assert_eq!(
            s.grant(b, "ci", "writer", &entry("grant")).unwrap(),
            Granted::NoSuchUser
        );
        assert_eq!(events(), n);
        assert_eq!(
            s.grant(a, "ci", "writer", &entry("grant")).unwrap(),
            Granted::Set { previous: None }
        );
        assert_eq!(
            s.grant(a, "ci", "maintainer", &entry("grant")).unwrap(),
            Granted::Set {
                previous: Some("writer".into())
            }
        );
        s.grant(a, "*", "reader", &entry("grant")).unwrap();
        let u = s.user(a).unwrap().unwrap();
        assert_eq!(u.name.as_deref(), Some("alice"));
        assert_eq!(
            u.grants,
            vec![
                ("*".to_string(), "reader".to_string()),
                ("ci".to_string(), "maintainer".to_string())
            ]
        );
        assert_eq!(
            s.revoke(a, "ci", &entry("revoke")).unwrap().as_deref(),
            Some("maintainer")
        );
        let n = events();
        assert_eq!(s.revoke(a, "ci", &entry("revoke")).unwrap(), None);
        assert_eq!(events(), n);
        assert!(s.user_rm(a, &entry("user rm")).unwrap());
        assert!(s.users().unwrap().is_empty());
        assert!(!s.user_rm(a, &entry("user rm")).unwrap());
        // Its roles went with it: added again, it has none.
        s.user_add(a, None, "local", &entry("user add")).unwrap();
        assert!(s.user(a).unwrap().unwrap().grants.is_empty());
    }
}
