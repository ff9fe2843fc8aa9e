//! Pin requests: what the Pinning Service API asks for. A request names a CID, an owner (the
//! identity whose token made it), a name, origins, metadata and a status — `queued`,
//! `pinning`, `pinned`, `failed` — and is listed newest first by its `created` time, which
//! is unique per millisecond across the store, so a client paging with `before` never skips
//! or repeats one.
//!
//! Once its content is here, a request holds a pin of its own (owned by the same owner, so
//! it counts toward the owner's quota). Such a pin is removed only through its request: the
//! owner's plain `pin rm` leaves it, and a plain pin of the same CID by the same owner is
//! another pin. Removing every pin of a CID (the administrator's `pin rm --all`) takes these
//! too; their requests then read `failed`.

use crate::journal::{self, Entry};
use crate::pins::{self, mode_to_int};
use crate::{Error, PinMode, PinOwner, Result, Store, db};
use cid::Cid;
use rusqlite::{Connection, Row, params};
use std::collections::BTreeMap;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestStatus {
    /// Accepted; its content is not here yet.
    Queued,
    /// Its content is being fetched.
    Pinning,
    /// Pinned.
    Pinned,
    /// Given up (the reason is in its `info`).
    Failed,
}

impl RequestStatus {
    /// Every status, in the spec's order.
    pub const ALL: [RequestStatus; 4] = [
        RequestStatus::Queued,
        RequestStatus::Pinning,
        RequestStatus::Pinned,
        RequestStatus::Failed,
    ];

    /// The spec's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Queued => "queued",
            RequestStatus::Pinning => "pinning",
            RequestStatus::Pinned => "pinned",
            RequestStatus::Failed => "failed",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<RequestStatus> {
        RequestStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A pin request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRequest {
    /// Its id (the spec's `requestid`), chosen by the node layer.
    pub id: String,
    /// Who made it.
    pub owner: PinOwner,
    /// The namespace it was made in.
    pub namespace: String,
    /// What to pin.
    pub cid: Cid,
    /// Its name, if any.
    pub name: Option<String>,
    /// Where the content may be had (multiaddrs or URLs, as given).
    pub origins: Vec<String>,
    /// The client's metadata.
    pub meta: BTreeMap<String, String>,
    /// Where it stands.
    pub status: RequestStatus,
    /// The node's notes (`reason` when failed, `last_error` while retrying).
    pub info: BTreeMap<String, String>,
    /// When it was made, in milliseconds since the epoch; unique in the store.
    pub created_ms: i64,
    /// Its pin, once pinned.
    pub pin: Option<i64>,
    /// The pin of the request it replaced, removed once this one is pinned.
    pub replaces: Option<i64>,
}

/// A request to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// Its id (unique; the node layer makes a random one).
    pub id: String,
    /// Who makes it.
    pub owner: PinOwner,
    /// The namespace it is made in.
    pub namespace: String,
    /// What to pin.
    pub cid: Cid,
    /// Its name.
    pub name: Option<String>,
    /// Where the content may be had.
    pub origins: Vec<String>,
    /// The client's metadata.
    pub meta: BTreeMap<String, String>,
}

/// Which of an owner's requests to list (the spec's query).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestQuery {
    /// Only these CIDs (any of them), when not empty.
    pub cids: Vec<Cid>,
    /// Only these statuses, when not empty.
    pub statuses: Vec<RequestStatus>,
    /// Only those made strictly before this time (ms).
    pub before_ms: Option<i64>,
    /// Only those made strictly after this time (ms).
    pub after_ms: Option<i64>,
}

const COLUMNS: &str =
    "id, owner, namespace, cid, name, origins, meta, status, info, created, pin, replaces";

fn status_to_int(s: RequestStatus) -> i64 {
    match s {
        RequestStatus::Queued => 0,
        RequestStatus::Pinning => 1,
        RequestStatus::Pinned => 2,
        RequestStatus::Failed => 3,
    }
}

fn status_from_int(v: i64) -> Result<RequestStatus> {
    match v {
        0 => Ok(RequestStatus::Queued),
        1 => Ok(RequestStatus::Pinning),
        2 => Ok(RequestStatus::Pinned),
        3 => Ok(RequestStatus::Failed),
        other => Err(Error::Corrupt(format!(
            "unknown pin request status {other}"
        ))),
    }
}

/// Lists and maps are kept as text, one entry per line (`key\tvalue` for maps), with tabs,
/// newlines and backslashes escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn list_to_text(items: &[String]) -> String {
    items
        .iter()
        .map(|s| escape(s))
        .collect::<Vec<_>>()
        .join("\n")
}

fn list_from_text(t: &str) -> Vec<String> {
    if t.is_empty() {
        return Vec::new();
    }
    t.split('\n').map(unescape).collect()
}

fn map_to_text(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{}\t{}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn map_from_text(t: &str) -> BTreeMap<String, String> {
    t.split('\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((unescape(k), unescape(v)))
        })
        .collect()
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<(PinRequestRaw, Vec<u8>)> {
    Ok((
        PinRequestRaw {
            id: r.get(0)?,
            owner: r.get(1)?,
            namespace: r.get(2)?,
            name: r.get(4)?,
            origins: r.get(5)?,
            meta: r.get(6)?,
            status: r.get(7)?,
            info: r.get(8)?,
            created: r.get(9)?,
            pin: r.get(10)?,
            replaces: r.get(11)?,
        },
        r.get(3)?,
    ))
}

struct PinRequestRaw {
    id: String,
    owner: String,
    namespace: String,
    name: Option<String>,
    origins: String,
    meta: String,
    status: i64,
    info: String,
    created: i64,
    pin: Option<i64>,
    replaces: Option<i64>,
}

impl PinRequestRaw {
    fn finish(self, cid: &[u8]) -> Result<PinRequest> {
        Ok(PinRequest {
            owner: PinOwner::new(self.owner)
                .map_err(|e| Error::Corrupt(format!("pin request {}: {e}", self.id)))?,
            cid: db::cid_from_bytes(cid)?,
            status: status_from_int(self.status)?,
            origins: list_from_text(&self.origins),
            meta: map_from_text(&self.meta),
            info: map_from_text(&self.info),
            id: self.id,
            namespace: self.namespace,
            name: self.name,
            created_ms: self.created,
            pin: self.pin,
            replaces: self.replaces,
        })
    }
}

fn select(conn: &Connection, cond: &str, args: impl rusqlite::Params) -> Result<Vec<PinRequest>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM pin_requests WHERE {cond} ORDER BY created DESC"
    ))?;
    let rows = stmt.query_map(args, from_row)?;
    let mut out = Vec::new();
    for row in rows {
        let (raw, cid) = row?;
        out.push(raw.finish(&cid)?);
    }
    Ok(out)
}

fn one(conn: &Connection, id: &str) -> Result<Option<PinRequest>> {
    Ok(select(conn, "id = ?1", params![id])?.into_iter().next())
}

/// A `created` time after every other: now, or one millisecond past the newest.
fn next_created(conn: &Connection) -> Result<i64> {
    let newest: Option<i64> = conn
        .prepare_cached("SELECT max(created) FROM pin_requests")?
        .query_row([], |r| r.get(0))?;
    let now = db::now_millis();
    Ok(match newest {
        Some(n) if n >= now => n + 1,
        _ => now,
    })
}

fn insert(conn: &Connection, new: &NewRequest, replaces: Option<i64>) -> Result<PinRequest> {
    let created = next_created(conn)?;
    conn.prepare_cached(&format!(
        "INSERT INTO pin_requests({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', ?9, NULL, ?10)"
    ))?
    .execute(params![
        new.id,
        new.owner.as_str(),
        new.namespace,
        new.cid.to_bytes(),
        new.name,
        list_to_text(&new.origins),
        map_to_text(&new.meta),
        status_to_int(RequestStatus::Queued),
        created,
        replaces,
    ])?;
    one(conn, &new.id)?.ok_or_else(|| Error::Corrupt("a pin request vanished".into()))
}

/// Delete request `req` and the pin it holds, if any.
fn delete(conn: &Connection, req: &PinRequest) -> Result<()> {
    conn.execute("DELETE FROM pin_requests WHERE id = ?1", params![req.id])?;
    if let Some(p) = req.pin {
        conn.execute("DELETE FROM pins WHERE id = ?1", params![p])?;
    }
    Ok(())
}

impl Store {
    /// Store a new request (queued), recording `entry`.
    pub fn request_add(&self, new: &NewRequest, entry: &Entry) -> Result<PinRequest> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let req = insert(&tx, new, None)?;
        journal::insert(&tx, entry)?;
        tx.commit()?;
        Ok(req)
    }

    /// Replace request `old` by a new one: the old request goes at once, its pin (if any)
    /// once the new one is pinned, so blocks both share are never collected in between.
    pub fn request_replace(
        &self,
        old: &str,
        new: &NewRequest,
        entry: &Entry,
    ) -> Result<Option<PinRequest>> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let Some(was) = one(&tx, old)? else {
            return Ok(None);
        };
        tx.execute("DELETE FROM pin_requests WHERE id = ?1", params![old])?;
        // A chain of replacements before the first is pinned keeps only the oldest pin.
        let replaces = was.pin.or(was.replaces);
        let req = insert(&tx, new, replaces)?;
        journal::insert(&tx, entry)?;
        tx.commit()?;
        Ok(Some(req))
    }

    /// The request `id`.
    pub fn request(&self, id: &str) -> Result<Option<PinRequest>> {
        let conn = self.inner.conn()?;
        one(&conn, id)
    }

    /// `owner`'s requests matching `q`, newest first.
    pub fn requests(&self, owner: &PinOwner, q: &RequestQuery) -> Result<Vec<PinRequest>> {
        let conn = self.inner.conn()?;
        let all = select(
            &conn,
            "owner = ?1 AND created < ?2 AND created > ?3",
            params![
                owner.as_str(),
                q.before_ms.unwrap_or(i64::MAX),
                q.after_ms.unwrap_or(i64::MIN)
            ],
        )?;
        Ok(all
            .into_iter()
            .filter(|r| q.cids.is_empty() || q.cids.contains(&r.cid))
            .filter(|r| q.statuses.is_empty() || q.statuses.contains(&r.status))
            .collect())
    }

    /// Every request still waiting for its content (queued or pinning), oldest first.
    pub fn requests_waiting(&self) -> Result<Vec<PinRequest>> {
        let conn = self.inner.conn()?;
        let mut all = select(
            &conn,
            "status IN (?1, ?2)",
            params![
                status_to_int(RequestStatus::Queued),
                status_to_int(RequestStatus::Pinning)
            ],
        )?;
        all.reverse();
        Ok(all)
    }

    /// Set a waiting request's status (queued, pinning or failed) and notes; false when the
    /// request is gone or no longer waiting.
    pub fn request_status(
        &self,
        id: &str,
        status: RequestStatus,
        info: &BTreeMap<String, String>,
    ) -> Result<bool> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let n = tx.execute(
            "UPDATE pin_requests SET status = ?2, info = ?3 WHERE id = ?1 AND status IN (?4, ?5)",
            params![
                id,
                status_to_int(status),
                map_to_text(info),
                status_to_int(RequestStatus::Queued),
                status_to_int(RequestStatus::Pinning)
            ],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Pin a waiting request's content (which must all be here: else
    /// [`Error::MissingBlock`] and nothing changes), within `max_bytes` for its owner,
    /// recording `entry`; removes the pin of the request it replaced. The request as it is
    /// now, `None` if it is gone.
    pub fn request_pin(
        &self,
        id: &str,
        max_bytes: Option<u64>,
        entry: &Entry,
    ) -> Result<Option<PinRequest>> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let Some(req) = one(&tx, id)? else {
            return Ok(None);
        };
        if req.status == RequestStatus::Pinned {
            return Ok(Some(req));
        }
        pins::check_complete(
            &tx,
            &req.cid,
            PinMode::Recursive,
            &mut crate::dag::IdSet::default(),
        )?;
        let seq = db::next_pin_seq(&tx)?;
        tx.prepare_cached(
            "INSERT INTO pins(cid, owner, name, mode, created, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            req.cid.to_bytes(),
            req.owner.as_str(),
            req.name,
            mode_to_int(PinMode::Recursive),
            db::now_millis(),
            seq
        ])?;
        let pin = tx.last_insert_rowid();
        tx.execute(
            "UPDATE pin_requests SET status = ?2, info = '', pin = ?3, replaces = NULL WHERE id = ?1",
            params![id, status_to_int(RequestStatus::Pinned), pin],
        )?;
        if let Some(old) = req.replaces {
            tx.execute("DELETE FROM pins WHERE id = ?1", params![old])?;
        }
        if let Some(max) = max_bytes {
            let used = crate::quotas::pinned_bytes(&tx, &req.owner)?;
            if used > max {
                return Err(Error::QuotaExceeded {
                    owner: req.owner.to_string(),
                    used,
                    max,
                });
            }
        }
        journal::insert(&tx, entry)?;
        tx.commit()?;
        one(&conn, id)
    }

    /// Remove request `id` and its pin, recording `entry`; the request removed, `None` if
    /// there was none.
    pub fn request_rm(&self, id: &str, entry: &Entry) -> Result<Option<PinRequest>> {
        self.with_reserve(|| {
            let mut conn = self.inner.conn()?;
            let tx = db::write_tx(&mut conn)?;
            let Some(req) = one(&tx, id)? else {
                return Ok(None);
            };
            delete(&tx, &req)?;
            if let Some(old) = req.replaces {
                tx.execute("DELETE FROM pins WHERE id = ?1", params![old])?;
            }
            journal::insert(&tx, entry)?;
            tx.commit()?;
            Ok(Some(req))
        })
    }
}

/// Is pin `id` held by a request (and so out of reach of its owner's plain `pin rm`)?
pub(crate) fn held(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM pin_requests WHERE pin = ?1 OR replaces = ?1)",
        )?
        .query_row(params![id], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        let list = vec!["a\tb".to_string(), "c\\n".into(), "d\ne".into()];
        assert_eq!(list_from_text(&list_to_text(&list)), list);
        assert!(list_from_text("").is_empty());
        let map: BTreeMap<String, String> =
            [("k\t1".into(), "v\n2\\".into()), ("x".into(), "".into())]
                .into_iter()
                .collect();
        assert_eq!(map_from_text(&map_to_text(&map)), map);
    }
}
