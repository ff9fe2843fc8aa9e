//! The build index: a SQLite database beside the store (`builds/index.db`) holding the
//! action cache (action → latest good record), the history of builds (each step run or
//! cache hit), and the content of each step's cache directories. Records themselves are
//! content in the store; the index only points at them, so it can be rebuilt from records.
//! It also holds the recipes registered with the daemon to be built on their schedules
//! (`kiln build --schedule`), which must outlive the daemon.

use crate::error::Result;
use kiln_core::Cid;
use kiln_store::schema::Migration;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
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

/// A recipe registered to be built on its schedule (`kiln build --schedule`, `POST
/// /api/kiln/v1/schedules`): the daemon checks its mutable inputs at each scheduled time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    /// Its number (never reused).
    pub id: i64,
    /// The source tree holding `kiln.toml` (content in the store).
    pub source: Cid,
    /// How messages and the history name the recipe file.
    pub origin: String,
    /// Parameters replacing the recipe's defaults.
    pub params: BTreeMap<String, String>,
    /// The recipe's schedule, as written.
    pub schedule: String,
    /// Whether the source is pinned for this schedule (`schedule:ID`); false when it had a pin
    /// of its own already.
    pub pinned: bool,
    /// Registered, Unix milliseconds.
    pub created_ms: u64,
    /// The last check's start, Unix milliseconds.
    pub last_check_ms: Option<u64>,
    /// What it found: `nothing new`, `built` or `error`.
    pub last_outcome: Option<String>,
    /// What it found, in words (one line).
    pub last_message: Option<String>,
}

/// The index, safe to share between threads.
pub struct Index {
    conn: Mutex<Connection>,
}

/// Version 1: the layout every kiln before schema versions wrote (they set no
/// `user_version`, and the newest of them added `cache_inputs`, hence `IF NOT EXISTS`
/// throughout: an older index gains what it lacks). Frozen, as every migration is.
const V1: &str = "
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
CREATE TABLE IF NOT EXISTS cache_inputs (
    owner TEXT PRIMARY KEY,
    inputs TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source BLOB NOT NULL,
    origin TEXT NOT NULL,
    params TEXT NOT NULL,
    schedule TEXT NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    last_check_ms INTEGER,
    last_outcome TEXT,
    last_message TEXT
);
";

/// Every version of the index, oldest first (see [`kiln_store::schema`]).
const MIGRATIONS: &[Migration] = &[Migration {
    to: 1,
    what: "actions, builds, caches, cache inputs, schedules",
    sql: V1,
}];

/// The newest version of the index this kiln knows.
pub fn newest_version() -> i64 {
    kiln_store::schema::newest(MIGRATIONS)
}

const SCHEDULE_COLUMNS: &str = "id, source, origin, params, schedule, pinned, created_ms, last_check_ms, last_outcome, last_message";

fn cid_col(bytes: Vec<u8>) -> rusqlite::Result<Cid> {
    Cid::try_from(bytes.as_slice()).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

fn opt_cid(bytes: Option<Vec<u8>>) -> rusqlite::Result<Option<Cid>> {
    bytes.map(cid_col).transpose()
}

impl Index {
    /// Open (creating) the index at `path`, migrated to the newest schema in one
    /// transaction; an index from a newer kiln is refused, untouched.
    pub fn open(path: &Path) -> Result<Index> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        kiln_store::schema::migrate(
            &mut conn,
            path,
            MIGRATIONS,
            kiln_store::schema::user_version,
        )?;
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

    /// Mark build `id` interrupted if it is still `running` (its process died).
    pub fn interrupt(&self, id: i64, now_ms: u64) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE builds SET status = 'interrupted: kiln stopped while it ran', ended_ms = ?2
             WHERE id = ?1 AND status = 'running'",
            params![id, now_ms as i64],
        )? > 0)
    }

    /// Say why build `id`, stopped from outside, ended: `status` replaces `running` or
    /// `cancelled` (keeping the record and log a cancelled step left); a build that ended
    /// otherwise is left as it is.
    pub fn interrupted(&self, id: i64, status: &str, now_ms: u64) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE builds SET status = ?2, ended_ms = COALESCE(ended_ms, ?3)
             WHERE id = ?1 AND status IN ('running', 'cancelled')",
            params![id, status, now_ms as i64],
        )? > 0)
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

impl Index {
    /// The inputs (sandbox path → content) of the build that saved `owner`'s cache
    /// directories; none for caches saved before kiln kept them (or never saved).
    pub fn cache_inputs(&self, owner: &str) -> Result<Option<BTreeMap<String, Cid>>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT inputs FROM cache_inputs WHERE owner = ?1")?;
        let Some(text) = st
            .query_row(params![owner], |r| r.get::<_, String>(0))
            .optional()?
        else {
            return Ok(None);
        };
        let mut inputs = BTreeMap::new();
        for line in text.lines() {
            // A line that does not parse is left out: that input counts as changed.
            if let Some((at, cid)) = line.split_once('\t')
                && let Ok(cid) = Cid::try_from(cid)
            {
                inputs.insert(at.to_string(), cid);
            }
        }
        Ok(Some(inputs))
    }

    /// Keep `inputs` as those the caches of `owner` were saved with.
    pub fn set_cache_inputs(&self, owner: &str, inputs: &BTreeMap<String, Cid>) -> Result<()> {
        let text: String = inputs
            .iter()
            .map(|(at, cid)| format!("{at}\t{cid}\n"))
            .collect();
        self.conn()
            .prepare_cached(
                "INSERT INTO cache_inputs (owner, inputs) VALUES (?1, ?2)
                 ON CONFLICT(owner) DO UPDATE SET inputs = excluded.inputs",
            )?
            .execute(params![owner, text])?;
        Ok(())
    }
}

impl Index {
    /// Register a recipe to be built on its schedule; its number.
    pub fn add_schedule(
        &self,
        source: &Cid,
        origin: &str,
        params: &BTreeMap<String, String>,
        schedule: &str,
        created_ms: u64,
    ) -> Result<i64> {
        let params = serde_json::to_string(params).unwrap_or_else(|_| "{}".into());
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO schedules (source, origin, params, schedule, pinned, created_ms)
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
        )?
        .execute(params![
            source.to_bytes(),
            origin,
            params,
            schedule,
            created_ms as i64
        ])?;
        Ok(conn.last_insert_rowid())
    }

    /// Note whether schedule `id` holds the pin of its source.
    pub fn set_schedule_pinned(&self, id: i64, pinned: bool) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE schedules SET pinned = ?2 WHERE id = ?1")?
            .execute(params![id, pinned])?;
        Ok(())
    }

    /// Every registered schedule, oldest first.
    pub fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY id"
        ))?;
        let rows = st
            .query_map([], schedule_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Schedule `id`.
    pub fn schedule(&self, id: i64) -> Result<Option<ScheduleRow>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?1"
        ))?;
        Ok(st.query_row(params![id], schedule_row).optional()?)
    }

    /// Forget schedule `id`; whether it was there.
    pub fn remove_schedule(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM schedules WHERE id = ?1", params![id])?
            > 0)
    }

    /// Note what a check of schedule `id` that started at `at_ms` found (`outcome`: `nothing
    /// new`, `built` or `error`; `message`: in words).
    pub fn note_check(&self, id: i64, at_ms: u64, outcome: &str, message: &str) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE schedules SET last_check_ms = ?2, last_outcome = ?3, last_message = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, at_ms as i64, outcome, message])?;
        Ok(())
    }
}

/// Which rows of the build history [`Index::prune_plan`] selects: builds that are not
/// running, outside the newest `keep` (if given) and ended before `before_ms` (if given).
/// With both, a build is kept if either rule keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneRule {
    /// Keep the newest this many builds.
    pub keep: Option<usize>,
    /// Keep builds that ended (or, still unended, started) at or after this time, Unix
    /// milliseconds.
    pub before_ms: Option<u64>,
}

/// What pruning the history would remove: see [`Index::prune_plan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrunePlan {
    /// The builds to remove, by number.
    pub rows: Vec<i64>,
    /// The records and logs those builds name that no build kept names: what the history
    /// no longer needs kept.
    pub released: Vec<Cid>,
    /// The records of the builds kept, each once (what still holds their cache directories).
    pub kept_records: Vec<Cid>,
}

impl Index {
    /// The builds `rule` selects for removal and what removing them releases (read only:
    /// [`Index::prune_rows`] removes them). A rule with neither limit selects nothing.
    pub fn prune_plan(&self, rule: &PruneRule) -> Result<PrunePlan> {
        if rule.keep.is_none() && rule.before_ms.is_none() {
            return Ok(PrunePlan::default());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let keep = rule.keep.map(|k| i64::try_from(k).unwrap_or(i64::MAX));
        let before = rule.before_ms.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let mut rows = Vec::new();
        let mut named: Vec<Cid> = Vec::new();
        let mut kept = std::collections::HashSet::new();
        let mut kept_records = Vec::new();
        {
            // The newest `keep` builds' smallest number: everything below it is outside.
            let floor: Option<i64> = match keep {
                None => None,
                Some(0) => Some(i64::MAX),
                Some(k) => tx
                    .query_row(
                        "SELECT id FROM builds ORDER BY id DESC LIMIT 1 OFFSET ?1",
                        params![k - 1],
                        |r| r.get(0),
                    )
                    .optional()?
                    .or(Some(i64::MIN)),
            };
            let mut st = tx.prepare(
                "SELECT id, status, record, log, COALESCE(ended_ms, started_ms) FROM builds",
            )?;
            let mut q = st.query([])?;
            while let Some(r) = q.next()? {
                let id: i64 = r.get(0)?;
                let status: String = r.get(1)?;
                let record = opt_cid(r.get(2)?)?;
                let log = opt_cid(r.get(3)?)?;
                let at: i64 = r.get(4)?;
                let outside = floor.is_none_or(|f| id < f);
                let old = before.is_none_or(|b| at < b);
                if status != "running" && outside && old {
                    rows.push(id);
                    named.extend(record.into_iter().chain(log));
                } else {
                    if let Some(r) = record
                        && kept.insert(r)
                    {
                        kept_records.push(r);
                    }
                    kept.extend(log);
                }
            }
        }
        let mut released = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for c in named {
            if !kept.contains(&c) && seen.insert(c) {
                released.push(c);
            }
        }
        Ok(PrunePlan {
            rows,
            released,
            kept_records,
        })
    }

    /// Remove the builds `plan` names from the history, the action-cache entries whose
    /// record it releases (a later build of those actions runs again) and the cache
    /// directories only those records held, in one transaction: how many builds and
    /// cache entries went. `caches` are the cache directories the released records name.
    pub fn prune_rows(&self, plan: &PrunePlan, caches: &[Cid]) -> Result<(u64, u64)> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut builds = 0;
        let mut actions = 0;
        {
            let mut del = tx.prepare_cached("DELETE FROM builds WHERE id = ?1")?;
            for id in &plan.rows {
                builds += del.execute(params![id])? as u64;
            }
            let mut del = tx.prepare_cached("DELETE FROM actions WHERE record = ?1")?;
            for c in &plan.released {
                actions += del.execute(params![c.to_bytes()])? as u64;
            }
            let mut del = tx.prepare_cached("DELETE FROM caches WHERE content = ?1")?;
            for c in caches {
                del.execute(params![c.to_bytes()])?;
            }
        }
        tx.commit()?;
        Ok((builds, actions))
    }
}

fn schedule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRow> {
    let params: String = r.get(3)?;
    let params = serde_json::from_str(&params).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(ScheduleRow {
        id: r.get(0)?,
        source: cid_col(r.get(1)?)?,
        origin: r.get(2)?,
        params,
        schedule: r.get(4)?,
        pinned: r.get::<_, i64>(5)? != 0,
        created_ms: r.get::<_, i64>(6)? as u64,
        last_check_ms: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        last_outcome: r.get(8)?,
        last_message: r.get(9)?,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_kept_and_the_schema_opens_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.db");
        let cid = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"src");
        let params = BTreeMap::from([("a".to_string(), "1 \"two\"".to_string())]);
        let id = {
            let ix = Index::open(&path).unwrap();
            let id = ix
                .add_schedule(&cid, "src/kiln.toml", &params, "@every 1s", 1000)
                .unwrap();
            ix.set_schedule_pinned(id, true).unwrap();
            ix.note_check(id, 2000, "nothing new", "nothing new (x)")
                .unwrap();
            id
        };
        let ix = Index::open(&path).unwrap();
        let rows = ix.schedules().unwrap();
        assert_eq!(
            rows,
            [ScheduleRow {
                id,
                source: cid,
                origin: "src/kiln.toml".into(),
                params,
                schedule: "@every 1s".into(),
                pinned: true,
                created_ms: 1000,
                last_check_ms: Some(2000),
                last_outcome: Some("nothing new".into()),
                last_message: Some("nothing new (x)".into()),
            }]
        );
        assert_eq!(ix.schedule(id).unwrap().as_ref(), rows.first());
        assert!(ix.remove_schedule(id).unwrap());
        assert!(!ix.remove_schedule(id).unwrap());
        assert!(ix.schedules().unwrap().is_empty());
        // Numbers are never reused.
        let again = ix
            .add_schedule(&cid, "o", &BTreeMap::new(), "@hourly", 3000)
            .unwrap();
        assert!(again > id);
    }

    #[test]
    fn pruning_keeps_what_kept_builds_name_and_never_a_running_build() {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(&dir.path().join("index.db")).unwrap();
        let c =
            |s: &str| kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, s.as_bytes());
        let (a1, a2) = (c("a1"), c("a2"));
        let (r1, l1, r2, l2) = (c("r1"), c("l1"), c("r2"), c("l2"));
        let b1 = ix.begin(&a1, "one", "o", 1000).unwrap();
        ix.finish(b1, "ok", Some(&r1), Some(&l1), 1100).unwrap();
        let b2 = ix.begin(&a2, "two", "o", 2000).unwrap();
        ix.finish(b2, "ok", Some(&r2), Some(&l2), 2100).unwrap();
        ix.set_action(&a1, &r1, 1100).unwrap();
        ix.set_action(&a2, &r2, 2100).unwrap();
        // A later cache hit names the first record; a build still runs.
        ix.note_cached("o", &[(a1, "one".into(), r1, l1)], 3000)
            .unwrap();
        let running = ix.begin(&a2, "two", "o", 4000).unwrap();

        assert_eq!(
            ix.prune_plan(&PruneRule::default()).unwrap(),
            PrunePlan::default()
        );
        let plan = ix
            .prune_plan(&PruneRule {
                keep: Some(2),
                before_ms: None,
            })
            .unwrap();
        assert_eq!(plan.rows, [b1, b2]);
        assert_eq!(plan.released, [r2, l2]);
        assert_eq!(plan.kept_records, [r1]);
        // An age rule as well: a build is kept if either rule keeps it.
        let both = ix
            .prune_plan(&PruneRule {
                keep: Some(2),
                before_ms: Some(1500),
            })
            .unwrap();
        assert_eq!(both.rows, [b1]);
        assert!(both.released.is_empty(), "the cache hit still names r1");
        assert_eq!(ix.prune_rows(&plan, &[]).unwrap(), (2, 1));
        assert_eq!(ix.lookup(&a1).unwrap(), Some(r1));
        assert_eq!(ix.lookup(&a2).unwrap(), None);
        // Everything but the running build.
        let all = ix
            .prune_plan(&PruneRule {
                keep: Some(0),
                before_ms: None,
            })
            .unwrap();
        assert_eq!(all.released, [r1, l1]);
        assert_eq!(ix.prune_rows(&all, &[]).unwrap(), (1, 1));
        let left: Vec<i64> = ix.recent(10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(left, [running]);
        // Fewer builds than kept: nothing.
        let none = ix
            .prune_plan(&PruneRule {
                keep: Some(5),
                before_ms: None,
            })
            .unwrap();
        assert!(none.rows.is_empty());
    }
}
