//! The tokens a node has issued (never the tokens themselves: their ids, who holds them and
//! until when) and the deny-list of revoked token blocks (schema version 5). Every change is
//! written with its journal entry in one transaction.

use crate::journal::{self, Entry};
use crate::{Result, Store, db};
use rusqlite::{OptionalExtension, params};

/// A token the node issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// Its id: the revocation id of its first block (hex).
    pub id: String,
    /// The identity it was issued to.
    pub did: String,
    /// When (milliseconds since the Unix epoch).
    pub issued_ms: i64,
    /// When it expires (seconds since the Unix epoch).
    pub expires: i64,
    /// Who asked for it (the journal's `who`).
    pub issued_by: String,
    /// What it is for, as its requester said.
    pub note: String,
    /// When it was revoked (milliseconds), if it was.
    pub revoked_ms: Option<i64>,
}

impl Store {
    /// Record that token `t` was issued (its `revoked_ms` is ignored).
    pub fn token_issued(&self, t: &IssuedToken, entry: &Entry) -> Result<()> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        tx.execute(
            "INSERT OR REPLACE INTO tokens(id, did, issued, expires, issued_by, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![t.id, t.did, t.issued_ms, t.expires, t.issued_by, t.note],
        )?;
        journal::insert(&tx, entry)?;
        tx.commit()?;
        Ok(())
    }

    /// The tokens issued (to `did` only, if given), newest first.
    pub fn tokens(&self, did: Option<&str>) -> Result<Vec<IssuedToken>> {
        let conn = self.inner.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT t.id, t.did, t.issued, t.expires, t.issued_by, t.note, r.at
             FROM tokens t LEFT JOIN revoked r ON r.id = t.id
             WHERE ?1 IS NULL OR t.did = ?1
             ORDER BY t.issued DESC, t.id",
        )?;
        let rows = stmt.query_map(params![did], |r| {
            Ok(IssuedToken {
                id: r.get(0)?,
                did: r.get(1)?,
                issued_ms: r.get(2)?,
                expires: r.get(3)?,
                issued_by: r.get(4)?,
                note: r.get(5)?,
                revoked_ms: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The token issued with id `id`, if any.
    pub fn token(&self, id: &str) -> Result<Option<IssuedToken>> {
        Ok(self.tokens(None)?.into_iter().find(|t| t.id == id))
    }

    /// Put the block id `id` on the deny-list; false (and nothing recorded) if it was there.
    pub fn token_revoke(&self, id: &str, by: &str, entry: &Entry) -> Result<bool> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let _changing = self.inner.changing_access();
        let n = tx.execute(
            "INSERT OR IGNORE INTO revoked(id, at, by) VALUES (?1, ?2, ?3)",
            params![id, db::now_millis(), by],
        )?;
        if n == 1 {
            journal::insert(&tx, entry)?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// Every block id on the deny-list.
    pub fn revoked_ids(&self) -> Result<std::collections::HashSet<String>> {
        let conn = self.inner.conn()?;
        let mut stmt = conn.prepare_cached("SELECT id FROM revoked")?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    }

    /// The first of `ids` on the deny-list, if any.
    pub fn revoked_of(&self, ids: &[String]) -> Result<Option<String>> {
        let conn = self.inner.conn()?;
        let mut stmt = conn.prepare_cached("SELECT 1 FROM revoked WHERE id = ?1")?;
        for id in ids {
            if stmt
                .query_row(params![id], |r| r.get::<_, i64>(0))
                .optional()?
                .is_some()
            {
                return Ok(Some(id.clone()));
            }
        }
        Ok(None)
    }

    /// Forget tokens that expired before `before` (seconds) and their deny-list rows: an
    /// expired token is refused anyway. The number forgotten.
    pub fn tokens_prune(&self, before: i64) -> Result<usize> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let _changing = self.inner.changing_access();
        tx.execute(
            "DELETE FROM revoked WHERE id IN (SELECT id FROM tokens WHERE expires < ?1)",
            params![before],
        )?;
        let n = tx.execute("DELETE FROM tokens WHERE expires < ?1", params![before])?;
        tx.commit()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::journal::Entry;
    use crate::{Store, StoreOptions};

    #[test]
    fn issued_revoked_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let entry = Entry::ok("local", "cli", "token create", "did:key:zA");
        let t = super::IssuedToken {
            id: "aa".into(),
            did: "did:key:zA".into(),
            issued_ms: 1,
            expires: 100,
            issued_by: "local".into(),
            note: "ci".into(),
            revoked_ms: None,
        };
        store.token_issued(&t, &entry).unwrap();
        store
            .token_issued(
                &super::IssuedToken {
                    id: "bb".into(),
                    did: "did:key:zB".into(),
                    expires: 10_000,
                    ..t.clone()
                },
                &entry,
            )
            .unwrap();
        assert_eq!(store.tokens(None).unwrap().len(), 2);
        assert_eq!(store.tokens(Some("did:key:zA")).unwrap(), vec![t.clone()]);
        let ids = vec!["xx".to_string(), "aa".to_string()];
        assert_eq!(store.revoked_of(&ids).unwrap(), None);
        assert!(store.token_revoke("aa", "local", &entry).unwrap());
        assert!(!store.token_revoke("aa", "local", &entry).unwrap());
        assert_eq!(store.revoked_of(&ids).unwrap(), Some("aa".into()));
        assert!(store.token("aa").unwrap().unwrap().revoked_ms.is_some());
        assert_eq!(store.tokens_prune(1000).unwrap(), 1);
        assert_eq!(store.revoked_of(&ids).unwrap(), None);
        assert_eq!(store.tokens(None).unwrap().len(), 1);
    }
}
