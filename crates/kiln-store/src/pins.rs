//! Pin bookkeeping shared by [`crate::Store`] and [`crate::Session`].

use cid::Cid;
use rusqlite::{Connection, OptionalExtension, params};

use crate::dag::{self, IdSet, OnMissing};
use crate::db::{self, IDENTITY};
use crate::{Error, PinMode, PinStatus, Result};

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

/// Insert or update a pin inside a write transaction. When `verified` is false the DAG is
/// checked here (in the transaction, so no GC can interleave).
pub(crate) fn apply_pin(
    conn: &Connection,
    cid: &Cid,
    mode: PinMode,
    name: Option<&str>,
    verified: bool,
) -> Result<()> {
    let key = cid.to_bytes();
    let existing: Option<i64> = conn
        .prepare_cached("SELECT mode FROM pins WHERE cid = ?1")?
        .query_row(params![key], |r| r.get(0))
        .optional()?;
    let existing = existing.map(mode_from_int).transpose()?;
    match (existing, mode) {
        (Some(PinMode::Recursive), PinMode::Direct) => {
            return Err(Error::AlreadyPinnedRecursively(*cid));
        }
        (Some(old), new) if old == new => {
            if let Some(name) = name {
                conn.execute(
                    "UPDATE pins SET name = ?2 WHERE cid = ?1",
                    params![key, name],
                )?;
            }
            return Ok(());
        }
        _ => {}
    }
    if !verified {
        check_complete(conn, cid, mode, &mut IdSet::default())?;
    }
    let seq = db::next_pin_seq(conn)?;
    conn.execute(
        "INSERT INTO pins(cid, mode, name, created, seq) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(cid) DO UPDATE SET mode = excluded.mode,
             name = coalesce(excluded.name, pins.name), seq = excluded.seq",
        params![key, mode_to_int(mode), name, db::now_millis(), seq],
    )?;
    Ok(())
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
    let own: Option<i64> = conn
        .prepare_cached("SELECT mode FROM pins WHERE cid = ?1")?
        .query_row(params![cid.to_bytes()], |r| r.get(0))
        .optional()?;
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
