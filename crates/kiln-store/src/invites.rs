//! Invites: a bootstrap bundle sealed under an invite code (the store never sees the code),
//! the hash of the proof that uses it, the role and namespace it grants and when it
//! expires. Using one registers the joiner and grants the role in one transaction, once.

use crate::journal::{self, Entry};
use crate::{Result, Store, db};
use rusqlite::{OptionalExtension, params};

/// An invite as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Its id (derived from the code).
    pub id: String,
    /// The bundle, sealed under the code.
    pub sealed: Vec<u8>,
    /// The SHA-256 (hex) of the proof that uses it.
    pub proof_digest: String,
    /// The role it grants.
    pub role: String,
    /// Where (a namespace, or `*`).
    pub namespace: String,
    /// Made, ms since the epoch.
    pub created_ms: i64,
    /// Expires, ms since the epoch.
    pub expires_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// Who used it, if anyone has.
    pub used_by: Option<String>,
}

/// What using an invite did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The joiner is a user now, with the invite's role.
    Joined(Invite),
    /// No invite has that id, or the proof is not its own.
    NotFound,
    /// It was used already.
    Used,
    /// It expired.
    Expired,
    /// The joiner is a user of this node already.
    AlreadyUser,
}

const COLUMNS: &str = "id, sealed, proof, role, namespace, created, expires, created_by, used_by";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Invite> {
    Ok(Invite {
        id: r.get(0)?,
        sealed: r.get(1)?,
        proof_digest: r.get(2)?,
        role: r.get(3)?,
        namespace: r.get(4)?,
        created_ms: r.get(5)?,
        expires_ms: r.get(6)?,
        created_by: r.get(7)?,
        used_by: r.get(8)?,
    })
}

impl Store {
    /// Store a new invite, recording `entry`.
    pub fn invite_add(&self, invite: &Invite, entry: &Entry) -> Result<()> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        tx.execute(
            &format!(
                "INSERT INTO invites({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)"
            ),
            params![
                invite.id,
                invite.sealed,
                invite.proof_digest,
                invite.role,
                invite.namespace,
                invite.created_ms,
                invite.expires_ms,
                invite.created_by
            ],
        )?;
        journal::insert(&tx, entry)?;
        tx.commit()?;
        Ok(())
    }

    /// The invite `id`.
    pub fn invite(&self, id: &str) -> Result<Option<Invite>> {
        let conn = self.inner.conn()?;
        Ok(conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM invites WHERE id = ?1"))?
            .query_row(params![id], read)
            .optional()?)
    }

    /// Every invite, newest first.
    pub fn invites(&self) -> Result<Vec<Invite>> {
        let conn = self.inner.conn()?;
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM invites ORDER BY created DESC"
            ))?
            .query_map([], read)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Use invite `id` with a proof whose SHA-256 is `proof_digest`: register `did` (added
    /// by the invite's maker) with its role, mark it used, and record `entry`, all at once.
    pub fn invite_redeem(
        &self,
        id: &str,
        proof_digest: &str,
        did: &str,
        entry: &Entry,
    ) -> Result<Redeemed> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let Some(inv) = tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM invites WHERE id = ?1"))?
            .query_row(params![id], read)
            .optional()?
        else {
            return Ok(Redeemed::NotFound);
        };
        if inv.proof_digest != proof_digest {
            return Ok(Redeemed::NotFound);
        }
        if inv.used_by.is_some() {
            return Ok(Redeemed::Used);
        }
        let now = db::now_millis();
        if now >= inv.expires_ms {
            return Ok(Redeemed::Expired);
        }
        let _changing = self.inner.changing_access();
        let added = tx.execute(
            "INSERT OR IGNORE INTO users(did, name, added, added_by) VALUES (?1, NULL, ?2, ?3)",
            params![did, now, inv.created_by],
        )?;
        if added == 0 {
            return Ok(Redeemed::AlreadyUser);
        }
        tx.execute(
            "INSERT INTO grants(did, namespace, role) VALUES (?1, ?2, ?3)",
            params![did, inv.namespace, inv.role],
        )?;
        tx.execute(
            "UPDATE invites SET used_by = ?2, used_at = ?3 WHERE id = ?1",
            params![id, did, now],
        )?;
        journal::insert(&tx, entry)?;
        tx.commit()?;
        Ok(Redeemed::Joined(Invite {
            used_by: Some(did.to_string()),
            ..inv
        }))
    }
}
