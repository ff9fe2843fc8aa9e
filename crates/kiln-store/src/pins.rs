//! Pin bookkeeping shared by [`crate::Store`] and [`crate::Session`].

use cid::Cid;
use rusqlite::{Connection, OptionalExtension, params};

use crate::dag::{self, IdSet, OnMissing};
use crate::db::{self, IDENTITY};
use crate::{Error, Pin, PinMode, PinOwner, PinStatus, Result, Unpinned};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// The namespace of a pin made without one (and of every pin made before namespaces).
pub const DEFAULT_NAMESPACE: &str = "default";

pub(crate) fn mode_to_int(mode: PinMode) -> i64 {
    match mode {
        PinMode::Recursive => 1,
        PinMode::Direct => 2,
    }
}

pub(crate) fn mode_from_int(v: i64) -> Result<PinMode> {
    match v {
        1 => Ok(PinMode::Recursive),
        2 => Ok(PinMode::Direct),
        other => Err(Error::Corrupt(format!("unknown pin mode {other}"))),
    }
}

/// Check that `cid` can be pinned with `mode`: the root (direct) or whole DAG (recursive) is
/// present. `seen` may be shared between checks of several pins.
pub(crate) fn check_complete(
    conn: &Connection,
    cid: &Cid,
    mode: PinMode,
    seen: &mut IdSet,
) -> Result<()> {
    dag::walk(
        conn,
        cid,
        mode == PinMode::Recursive,
        seen,
        OnMissing::Fail,
        |_| false,
    )?;
    Ok(())
}

/// A pin to make: its owner, mode, name and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPin {
    /// Who holds it.
    pub owner: PinOwner,
    /// Recursive or direct.
    pub mode: PinMode,
    /// Its name (pinning again with no name keeps the name it had).
    pub name: Option<String>,
    /// String metadata (pinning again adds to it, replacing equal keys).
    pub meta: BTreeMap<String, String>,
    /// The most bytes the owner's pins may hold with this one made (counted once, see
    /// [`crate::quotas`]); over it, [`Error::QuotaExceeded`] and nothing is pinned.
    pub max_bytes: Option<u64>,
    /// The namespace it lives in. An owner's pin of a CID lives in one namespace: pinning
    /// it again in another is [`Error::PinnedElsewhere`].
    pub namespace: String,
}

impl NewPin {
    /// A pin of `owner`, with no name or metadata.
    pub fn new(owner: PinOwner, mode: PinMode) -> NewPin {
        NewPin {
            owner,
            mode,
            name: None,
            meta: BTreeMap::new(),
            max_bytes: None,
            namespace: DEFAULT_NAMESPACE.to_string(),
        }
    }

    /// The same, in `namespace`.
    pub fn in_namespace(mut self, namespace: &str) -> NewPin {
        self.namespace = namespace.to_string();
        self
    }

    /// The same, refused if the owner's pins would then hold more than `max` bytes.
    pub fn within(mut self, max: Option<u64>) -> NewPin {
        self.max_bytes = max;
        self
    }

    /// The same, named `name` (if any).
    pub fn named(mut self, name: Option<&str>) -> NewPin {
        self.name = name.map(str::to_owned);
        self
    }
}

/// Make `pin` on `cid` inside a write transaction; its number. An owner holds one pin of a
/// CID this way: pinning again updates it (a direct pin becomes recursive; a recursive one
/// asked to become direct is [`Error::AlreadyPinnedRecursively`], as in kubo), and other
/// owners' pins of the CID are left as they are. When `verified` is false the DAG is
/// checked here (in the transaction, so no GC can interleave).
pub(crate) fn apply_pin(conn: &Connection, cid: &Cid, pin: &NewPin, verified: bool) -> Result<i64> {
    let key = cid.to_bytes();
    let existing: Option<(i64, i64, String)> = conn
        .prepare_cached(
            "SELECT id, mode, namespace FROM pins WHERE cid = ?1 AND owner = ?2
             AND id NOT IN (SELECT pin FROM pin_requests WHERE pin IS NOT NULL)
             AND id NOT IN (SELECT replaces FROM pin_requests WHERE replaces IS NOT NULL)
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![key, pin.owner.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    if let Some((_, _, ns)) = &existing
        && *ns != pin.namespace
    {
        return Err(Error::PinnedElsewhere {
            cid: *cid,
            owner: pin.owner.to_string(),
            namespace: ns.clone(),
        });
    }
    let existing = existing
        .map(|(id, m, _)| (id, m))
        .map(|(id, m)| mode_from_int(m).map(|m| (id, m)))
        .transpose()?;
    let id = match (existing, pin.mode) {
        (Some((_, PinMode::Recursive)), PinMode::Direct) => {
            return Err(Error::AlreadyPinnedRecursively(*cid));
        }
        (Some((id, old)), new) if old == new => {
            if let Some(name) = &pin.name {
                conn.execute("UPDATE pins SET name = ?2 WHERE id = ?1", params![id, name])?;
            }
            id
        }
        (existing, mode) => {
            if !verified {
                check_complete(conn, cid, mode, &mut IdSet::default())?;
            }
            let seq = db::next_pin_seq(conn)?;
            match existing {
                Some((id, _)) => {
                    conn.execute(
                        "UPDATE pins SET mode = ?2, name = coalesce(?3, name), seq = ?4 WHERE id = ?1",
                        params![id, mode_to_int(mode), pin.name, seq],
                    )?;
                    id
                }
                None => {
                    conn.prepare_cached(
                        "INSERT INTO pins(cid, owner, name, mode, created, seq, namespace)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        key,
                        pin.owner.as_str(),
                        pin.name,
                        mode_to_int(mode),
                        db::now_millis(),
                        seq,
                        pin.namespace
                    ])?;
                    conn.last_insert_rowid()
                }
            }
        }
    };
    for (k, v) in &pin.meta {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO pin_meta(pin, key, value) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![id, k, v])?;
    }
    if let Some(max) = pin.max_bytes {
        let used = crate::quotas::pinned_bytes(conn, &pin.owner)?;
        if used > max {
            return Err(Error::QuotaExceeded {
                owner: pin.owner.to_string(),
                used,
                max,
            });
        }
    }
    Ok(id)
}

/// Remove `owner`'s pins of `cid` (all owners' when `owner` is `None`) inside a write
/// transaction: [`Error::NotPinned`] when the CID has no pin, [`Error::NotPinnedBy`] when
/// only others hold it.
pub(crate) fn remove(conn: &Connection, cid: &Cid, owner: Option<&PinOwner>) -> Result<Unpinned> {
    let all = pins_where(conn, "cid = ?1", params![cid.to_bytes()])?;
    if all.is_empty() {
        return Err(Error::NotPinned(*cid));
    }
    // An owner's pins held by its pin requests go only through those requests.
    let mut removed = Vec::new();
    let mut remaining = Vec::new();
    for p in all {
        let take = match owner {
            None => true,
            Some(o) => p.owner == *o && !crate::requests::held(conn, p.id)?,
        };
        if take {
            removed.push(p);
        } else {
            remaining.push(p);
        }
    }
    if removed.is_empty() {
        let mut holders: Vec<String> = remaining.iter().map(|p| p.owner.to_string()).collect();
        holders.dedup();
        return Err(Error::NotPinnedBy {
            cid: *cid,
            owner: owner.map(|o| o.to_string()).unwrap_or_default(),
            holders,
        });
    }
    for p in &removed {
        conn.execute("DELETE FROM pins WHERE id = ?1", params![p.id])?;
    }
    Ok(Unpinned { removed, remaining })
}

/// The pins matching the SQL condition `cond` over the `pins` table, oldest first.
pub(crate) fn pins_where(
    conn: &Connection,
    cond: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Pin>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, cid, mode, owner, name, created, namespace FROM pins WHERE {cond} ORDER BY seq"
    ))?;
    let rows = stmt.query_map(args, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, cid, mode, owner, name, created, namespace) = row?;
        out.push(Pin {
            id,
            cid: db::cid_from_bytes(&cid)?,
            mode: mode_from_int(mode)?,
            owner: PinOwner::new(owner).map_err(|e| Error::Corrupt(format!("pin {id}: {e}")))?,
            name,
            namespace,
            created: UNIX_EPOCH + Duration::from_millis(created.max(0) as u64),
            meta: BTreeMap::new(),
        });
    }
    let any_meta: bool = conn
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM pin_meta)")?
        .query_row([], |r| r.get(0))?;
    if any_meta && !out.is_empty() {
        let mut stmt = conn.prepare_cached("SELECT key, value FROM pin_meta WHERE pin = ?1")?;
        for p in &mut out {
            let kv = stmt.query_map(params![p.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            p.meta = kv.collect::<rusqlite::Result<_>>()?;
        }
    }
    Ok(out)
}

/// All pins as `(cid, mode)`.
pub(crate) fn all_pins(conn: &Connection) -> Result<Vec<(Cid, PinMode)>> {
    let mut stmt = conn.prepare_cached("SELECT cid, mode FROM pins ORDER BY seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (cid, mode) = row?;
        out.push((db::cid_from_bytes(&cid)?, mode_from_int(mode)?));
    }
    Ok(out)
}

/// Why is the block with multihash `mh` protected from removal, if it is? Looks at direct pins
/// of any CID with the same multihash, then at the DAGs of recursive pins.
pub(crate) fn protection(conn: &Connection, mh: &[u8]) -> Result<Option<(Cid, PinStatus)>> {
    let pins = all_pins(conn)?;
    for (cid, mode) in &pins {
        if cid.hash().to_bytes() == mh {
            let status = match mode {
                PinMode::Recursive => PinStatus::Recursive,
                PinMode::Direct => PinStatus::Direct,
            };
            return Ok(Some((*cid, status)));
        }
    }
    let Some(target) = db::lookup_node(conn, mh)? else {
        return Ok(None);
    };
    let mut seen = IdSet::default();
    for (cid, mode) in &pins {
        if *mode != PinMode::Recursive {
            continue;
        }
        if dag::walk(conn, cid, true, &mut seen, OnMissing::Skip, |id| {
            id == target.id
        })? {
            return Ok(Some((*cid, PinStatus::Indirect { via: *cid })));
        }
    }
    Ok(None)
}

/// Pin status of exactly `cid` (its own pin), else indirect via a recursive pin.
pub(crate) fn status(conn: &Connection, cid: &Cid) -> Result<Option<PinStatus>> {
    // The strongest of its own pins (recursive is 1, direct 2).
    let own: Option<i64> = conn
        .prepare_cached("SELECT min(mode) FROM pins WHERE cid = ?1")?
        .query_row(params![cid.to_bytes()], |r| r.get(0))?;
    if let Some(mode) = own {
        return Ok(Some(match mode_from_int(mode)? {
            PinMode::Recursive => PinStatus::Recursive,
            PinMode::Direct => PinStatus::Direct,
        }));
    }
    if cid.hash().code() == IDENTITY {
        // Identity blocks have no row unless they carry links; they can still be reached.
        if db::lookup_node(conn, &cid.hash().to_bytes())?.is_none() {
            return Ok(None);
        }
    }
    match protection(conn, &cid.hash().to_bytes())? {
        Some((_, PinStatus::Indirect { via })) => Ok(Some(PinStatus::Indirect { via })),
        _ => Ok(None),
    }
}
