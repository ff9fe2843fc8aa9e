//! The event journal: one row per change made to the node — who asked, through what, when,
//! what it was about and how it ended. A change that lives in the store (a pin, an add, an
//! import) writes its row in the change's own transaction, so the journal never says that
//! something happened that did not, nor misses something that did.

use crate::Result;
use rusqlite::{Connection, OptionalExtension, params};
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest text kept in one field of an entry, in bytes (longer text is cut at a
/// character boundary and ends with `…`).
pub const MAX_FIELD_BYTES: usize = 1024;

/// A change to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Who asked (`local`, `schedule:3`, later an identity).
    pub who: String,
    /// Through what (`cli`, `rpc`, `api`, `ui`, `gateway`, `kiln`).
    pub via: String,
    /// What was done (`add`, `import`, `pin`, `unpin`, `gc`, `build`, …).
    pub action: String,
    /// What it was done to (a CID, a build's id, a schedule's number), possibly empty.
    pub target: String,
    /// Whether it was done.
    pub ok: bool,
    /// A short detail: a pin's name, a GC summary, why it failed.
    pub detail: String,
}

impl Entry {
    /// A change that was made.
    pub fn ok(who: &str, via: &str, action: &str, target: impl Into<String>) -> Entry {
        Entry {
            who: who.to_string(),
            via: via.to_string(),
            action: action.to_string(),
            target: target.into(),
            ok: true,
            detail: String::new(),
        }
    }

    /// The same entry with `detail`.
    pub fn detail(mut self, detail: impl Into<String>) -> Entry {
        self.detail = detail.into();
        self
    }

    /// The same entry, failed, with why.
    pub fn failed(mut self, why: impl Into<String>) -> Entry {
        self.ok = false;
        self.detail = why.into();
        self
    }
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its number: increasing, never reused.
    pub id: i64,
    /// When it was recorded, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What was recorded.
    pub entry: Entry,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only events numbered above this.
    pub after: Option<i64>,
    /// Only events recorded at or after this time (milliseconds since the epoch).
    pub since_ms: Option<i64>,
    /// At most this many (the newest ones when `newest_first`, else the oldest).
    pub limit: Option<usize>,
    /// Newest first (else oldest first).
    pub newest_first: bool,
    /// Only events of this caller (`local`, a did:key, `schedule:3`).
    pub who: Option<String>,
    /// Only events of this action (`pin`, `token create`, …).
    pub action: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn clip(s: &str) -> &str {
    if s.len() <= MAX_FIELD_BYTES {
        return s;
    }
    let mut end = MAX_FIELD_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Write `e` in the open transaction (or on the connection); its number.
pub(crate) fn insert(conn: &Connection, e: &Entry) -> Result<i64> {
    let detail = if e.detail.len() > MAX_FIELD_BYTES {
        format!("{}…", clip(&e.detail))
    } else {
        e.detail.clone()
    };
    let id = conn
        .prepare_cached(
            "INSERT INTO events(at, who, via, action, target, ok, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        )?
        .query_row(
            params![
                now_ms(),
                clip(&e.who),
                clip(&e.via),
                clip(&e.action),
                clip(&e.target),
                e.ok,
                detail
            ],
            |r| r.get(0),
        )?;
    Ok(id)
}

/// The events `q` asks for.
pub(crate) fn query(conn: &Connection, q: &Query) -> Result<Vec<Event>> {
    let order = if q.newest_first { "DESC" } else { "ASC" };
    let limit = q.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT id, at, who, via, action, target, ok, detail FROM events
         WHERE id > ?1 AND at >= ?2 AND (?4 IS NULL OR who = ?4)
           AND (?5 IS NULL OR action = ?5)
         ORDER BY id {order} LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            q.after.unwrap_or(0),
            q.since_ms.unwrap_or(i64::MIN),
            limit,
            q.who,
            q.action
        ],
        |r| {
            Ok(Event {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                entry: Entry {
                    who: r.get(2)?,
                    via: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    ok: r.get(6)?,
                    detail: r.get(7)?,
                },
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Delete the events recorded before `before_ms`; how many.
pub(crate) fn prune(conn: &Connection, before_ms: i64) -> Result<u64> {
    let n = conn.execute("DELETE FROM events WHERE at < ?1", params![before_ms])?;
    Ok(n as u64)
}

/// The number of the newest event, 0 if none.
pub(crate) fn last_id(conn: &Connection) -> Result<i64> {
    Ok(conn
        .query_row("SELECT max(id) FROM events", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0))
}
