//! The build index: a SQLite database beside the store (`builds/index.db`) holding the
//! action cache (action → latest good record), the history of builds (each step run or
//! cache hit), and the content of each step's cache directories. Records themselves are
//! content in the store; the index only points at them, so it can be rebuilt from records.

use crate::error::Result;
use kiln_core::Cid;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// One row of the build history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRow {
    /// The build's number.
    pub id: i64,
    /// The action.
    pub action: Cid,
    /// The step's name.
    pub step: String,
    /// Where it came from: a recipe file, or `get` for `kiln get ACTION`.
    pub origin: String,
    /// `running`, `ok`, or why it failed.
    pub status: String,
    /// Answered from the action cache, nothing run.
    pub cached: bool,
    /// The record, once there is one.
    pub record: Option<Cid>,
    /// The log, once there is one.
    pub log: Option<Cid>,
    /// Start, Unix milliseconds.
    pub started_ms: u64,
    /// End, Unix milliseconds (none while running).
    pub ended_ms: Option<u64>,
}

/// The index, safe to share between threads.
pub struct Index {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS actions (
    action BLOB PRIMARY KEY,
    record BLOB NOT NULL,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS builds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action BLOB NOT NULL,
    step TEXT NOT NULL,
    origin TEXT NOT NULL,
    status TEXT NOT NULL,
    cached INTEGER NOT NULL,
    record BLOB,
    log BLOB,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER
);
CREATE INDEX IF NOT EXISTS builds_action ON builds(action);
CREATE TABLE IF NOT EXISTS caches (
    owner TEXT NOT NULL,
    path TEXT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (owner, path)
) WITHOUT ROWID;
";

fn cid_col(bytes: Vec<u8>) -> rusqlite::Result<Cid> {
    Cid::try_from(bytes.as_slice()).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

fn opt_cid(bytes: Option<Vec<u8>>) -> rusqlite::Result<Option<Cid>> {
    bytes.map(cid_col).transpose()
}

impl Index {
    /// Open (creating) the index at `path`.
    pub fn open(path: &Path) -> Result<Index> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Index {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record cached for `action`.
    pub fn lookup(&self, action: &Cid) -> Result<Option<Cid>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT record FROM actions WHERE action = ?1")?;
        let r = st
            .query_row(params![action.to_bytes()], |r| r.get::<_, Vec<u8>>(0))
            .optional()?;
        Ok(r.map(cid_col).transpose()?)
    }

    /// Make `record` the cached result of `action`.
    pub fn set_action(&self, action: &Cid, record: &Cid, at_ms: u64) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO actions (action, record, at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(action) DO UPDATE SET record = excluded.record, at_ms = excluded.at_ms",
            )?
            .execute(params![action.to_bytes(), record.to_bytes(), at_ms as i64])?;
        Ok(())
    }

    /// Note a build that starts now; returns its number.
    pub fn begin(&self, action: &Cid, step: &str, origin: &str, started_ms: u64) -> Result<i64> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO builds (action, step, origin, status, cached, started_ms)
             VALUES (?1, ?2, ?3, 'running', 0, ?4)",
        )?
        .execute(params![action.to_bytes(), step, origin, started_ms as i64])?;
        Ok(conn.last_insert_rowid())
    }

    /// Note how build `id` ended.
    pub fn finish(
        &self,
        id: i64,
        status: &str,
        record: Option<&Cid>,
        log: Option<&Cid>,
        ended_ms: u64,
    ) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE builds SET status = ?2, record = ?3, log = ?4, ended_ms = ?5 WHERE id = ?1",
            )?
            .execute(params![
                id,
                status,
                record.map(|c| c.to_bytes()),
                log.map(|c| c.to_bytes()),
                ended_ms as i64
            ])?;
        Ok(())
    }

    /// Note steps answered from the cache, all in one transaction: `(action, step, record,
    /// log)`.
    pub fn note_cached(
        &self,
        origin: &str,
        hits: &[(Cid, String, Cid, Cid)],
        at_ms: u64,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO builds (action, step, origin, status, cached, record, log, started_ms, ended_ms)
                 VALUES (?1, ?2, ?3, 'ok', 1, ?4, ?5, ?6, ?6)",
            )?;
            for (action, step, record, log) in hits {
                st.execute(params![
                    action.to_bytes(),
                    step,
                    origin,
                    record.to_bytes(),
                    log.to_bytes(),
                    at_ms as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The most recent builds, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<BuildRow>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, action, step, origin, status, cached, record, log, started_ms, ended_ms
             FROM builds ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = st
            .query_map(params![limit as i64], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Build number `id`.
    pub fn build(&self, id: i64) -> Result<Option<BuildRow>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, action, step, origin, status, cached, record, log, started_ms, ended_ms
             FROM builds WHERE id = ?1",
        )?;
        Ok(st.query_row(params![id], row).optional()?)
    }

    /// The latest build of `action` (run or answered from the cache) or the one that made
    /// `record`.
    pub fn build_of(&self, cid: &Cid) -> Result<Option<BuildRow>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, action, step, origin, status, cached, record, log, started_ms, ended_ms
             FROM builds WHERE (action = ?1 OR record = ?1) AND cached = 0 ORDER BY id DESC LIMIT 1",
        )?;
        Ok(st.query_row(params![cid.to_bytes()], row).optional()?)
    }

    /// Mark builds left `running` by processes that are gone (call when nothing else runs
    /// builds on this repository).
    pub fn abandon_running(&self, now_ms: u64) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE builds SET status = 'interrupted', ended_ms = ?1 WHERE status = 'running'",
            params![now_ms as i64],
        )?)
    }

    /// The content last kept for a cache directory of `owner` (a step of a recipe).
    pub fn cache_dir(&self, owner: &str, path: &str) -> Result<Option<Cid>> {
        let conn = self.conn();
        let mut st =
            conn.prepare_cached("SELECT content FROM caches WHERE owner = ?1 AND path = ?2")?;
        let r = st
            .query_row(params![owner, path], |r| r.get::<_, Vec<u8>>(0))
            .optional()?;
        Ok(r.map(cid_col).transpose()?)
    }

    /// Keep `content` as the cache directory `path` of `owner`.
    pub fn set_cache_dir(&self, owner: &str, path: &str, content: &Cid) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO caches (owner, path, content) VALUES (?1, ?2, ?3)
                 ON CONFLICT(owner, path) DO UPDATE SET content = excluded.content",
            )?
            .execute(params![owner, path, content.to_bytes()])?;
        Ok(())
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BuildRow> {
    Ok(BuildRow {
        id: r.get(0)?,
        action: cid_col(r.get(1)?)?,
        step: r.get(2)?,
        origin: r.get(3)?,
        status: r.get(4)?,
        cached: r.get::<_, i64>(5)? != 0,
        record: opt_cid(r.get(6)?)?,
        log: opt_cid(r.get(7)?)?,
        started_ms: r.get::<_, i64>(8)? as u64,
        ended_ms: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
    })
}
