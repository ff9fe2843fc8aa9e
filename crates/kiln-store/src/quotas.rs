//! Quotas per identity: the bytes its pins may hold and the builds it may run at once. A
//! row per identity, and the row `*` for every identity without one of its own; a field
//! left unset in an identity's row follows `*`. What is counted, and who may set them, is
//! here and in the node layer: the store only keeps the numbers and counts pinned bytes.
//!
//! Pinned bytes are counted once per identity: the blocks reachable from all of its pins,
//! each once however many of its pins share it (a block two identities both pin counts for
//! both).

use crate::dag::{self, IdSet, OnMissing};
use crate::journal::{self, Entry};
use crate::{PinMode, PinOwner, Result, Store, db};
use rusqlite::{Connection, OptionalExtension, params};

/// The identity whose quota applies to every identity without one of its own.
pub const DEFAULT: &str = "*";

/// One limit of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limit {
    /// Not set here: the default row's (or, there, none).
    #[default]
    Inherit,
    /// No limit.
    Unlimited,
    /// At most this much.
    Max(u64),
}

impl Limit {
    fn from_column(v: Option<i64>) -> Limit {
        match v {
            None => Limit::Inherit,
            Some(n) if n < 0 => Limit::Unlimited,
            Some(n) => Limit::Max(n as u64),
        }
    }

    fn to_column(self) -> Option<i64> {
        match self {
            Limit::Inherit => None,
            Limit::Unlimited => Some(-1),
            Limit::Max(n) => Some(i64::try_from(n).unwrap_or(i64::MAX)),
        }
    }

    /// This limit, or `fallback` where it inherits.
    pub fn or(self, fallback: Limit) -> Limit {
        match self {
            Limit::Inherit => fallback,
            l => l,
        }
    }

    /// The most allowed, `None` for no limit.
    pub fn max(self) -> Option<u64> {
        match self {
            Limit::Max(n) => Some(n),
            Limit::Inherit | Limit::Unlimited => None,
        }
    }
}

/// A quota as set for one identity (or the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    /// Bytes its pins may hold, counted once.
    pub pinned_bytes: Limit,
    /// Builds it may run at once.
    pub builds: Limit,
}

impl Quota {
    /// This quota with the fields it inherits taken from `fallback`.
    pub fn or(self, fallback: Quota) -> Quota {
        Quota {
            pinned_bytes: self.pinned_bytes.or(fallback.pinned_bytes),
            builds: self.builds.or(fallback.builds),
        }
    }
}

fn row(conn: &Connection, did: &str) -> Result<Quota> {
    Ok(conn
        .prepare_cached("SELECT pinned_bytes, builds FROM quotas WHERE did = ?1")?
        .query_row(params![did], |r| {
            Ok(Quota {
                pinned_bytes: Limit::from_column(r.get(0)?),
                builds: Limit::from_column(r.get(1)?),
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// The bytes `owner`'s pins hold, each block once (blocks absent from the store count
/// nothing).
pub(crate) fn pinned_bytes(conn: &Connection, owner: &PinOwner) -> Result<u64> {
    let pins: Vec<(Vec<u8>, i64)> = conn
        .prepare_cached("SELECT cid, mode FROM pins WHERE owner = ?1")?
        .query_map(params![owner.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut seen = IdSet::default();
    let mut len = conn.prepare_cached("SELECT len FROM blocks WHERE id = ?1")?;
    let mut total = 0u64;
    for (key, mode) in pins {
        let cid = db::cid_from_bytes(&key)?;
        let recursive = crate::pins::mode_from_int(mode)? == PinMode::Recursive;
        let mut failed = None;
        dag::walk(conn, &cid, recursive, &mut seen, OnMissing::Skip, |id| {
            match len.query_row(params![id], |r| r.get::<_, i64>(0)) {
                Ok(n) => total += n.max(0) as u64,
                Err(e) => failed = Some(e),
            }
            failed.is_some()
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
    }
    Ok(total)
}

impl Store {
    /// The quota that applies to `did`: its own, with what it leaves unset taken from the
    /// default ([`DEFAULT`]).
    pub fn quota(&self, did: &str) -> Result<Quota> {
        let conn = self.inner.conn()?;
        let own = row(&conn, did)?;
        Ok(own.or(row(&conn, DEFAULT)?))
    }

    /// Every quota set: `(did or *, quota as set)`, by did.
    pub fn quotas(&self) -> Result<Vec<(String, Quota)>> {
        let conn = self.inner.conn()?;
        let rows = conn
            .prepare_cached("SELECT did, pinned_bytes, builds FROM quotas ORDER BY did")?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    Quota {
                        pinned_bytes: Limit::from_column(r.get(1)?),
                        builds: Limit::from_column(r.get(2)?),
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Set `did`'s quota (or the default's, [`DEFAULT`]) to `quota`, recording `entry`; a
    /// quota that inherits everything removes the row.
    pub fn quota_set(&self, did: &str, quota: Quota, entry: &Entry) -> Result<()> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        if quota == Quota::default() {
            tx.execute("DELETE FROM quotas WHERE did = ?1", params![did])?;
        } else {
            tx.execute(
                "INSERT INTO quotas(did, pinned_bytes, builds) VALUES (?1, ?2, ?3)
                 ON CONFLICT(did) DO UPDATE SET pinned_bytes = ?2, builds = ?3",
                params![
                    did,
                    quota.pinned_bytes.to_column(),
                    quota.builds.to_column()
                ],
            )?;
        }
        journal::insert(&tx, entry)?;
        tx.commit()?;
        Ok(())
    }

    /// The bytes `owner`'s pins hold, each block counted once.
    pub fn pinned_bytes(&self, owner: &PinOwner) -> Result<u64> {
        let conn = self.inner.conn()?;
        pinned_bytes(&conn, owner)
    }
}
