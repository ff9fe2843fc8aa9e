//! The SQLite metadata database: schema, connection set-up and CID column helpers.

use std::path::Path;
use std::time::Duration;

use cid::{Cid, Version};
use multihash::Multihash;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::schema::{self, Migration};
use crate::{Error, Result};

/// Multihash code of the identity "hash": the digest is the data itself.
pub(crate) const IDENTITY: u64 = 0x00;
/// Multihash code of sha2-256.
pub(crate) const SHA2_256: u64 = 0x12;

/// The schema as the first release wrote it (version 1, which it recorded in
/// `state.schema` rather than in `user_version`). Frozen, as every migration is.
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS state(
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    pin_seq INTEGER NOT NULL,
    del_seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO state(id, schema, epoch, pin_seq, del_seq) VALUES (1, 1, 1, 0, 0);
CREATE TABLE IF NOT EXISTS blocks(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mh BLOB NOT NULL UNIQUE,
    ver INTEGER NOT NULL,
    codec INTEGER NOT NULL,
    pack INTEGER,
    offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    touched INTEGER NOT NULL,
    nlinks INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS links(
    parent INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    ver INTEGER NOT NULL,
    codec INTEGER NOT NULL,
    mh BLOB NOT NULL,
    PRIMARY KEY(parent, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pins(
    cid BLOB PRIMARY KEY,
    mode INTEGER NOT NULL,
    name TEXT,
    created INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pins_seq ON pins(seq);
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY,
    start_epoch INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    started INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS packs(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT,
    sealed INTEGER NOT NULL DEFAULT 0
);
"#;

/// Version 2: pins with owners. A CID may carry several pins, each with an owner (the
/// local administrator `local`, an identity, or kiln itself: `build`, `schedule:N`,
/// `rootfs`), a name, a mode, a creation time and string metadata. The owners that
/// version 1 squeezed into name prefixes (`build:STEP`, `build-failed:STEP`,
/// `build-check:STEP`, `schedule:N`, `rootfs:NAME`) become owners; every other pin
/// belongs to `local`. `state.schema` follows, so that a kiln that knows only version 1
/// refuses the store instead of reading it wrongly.
const V2: &str = r#"
CREATE TABLE pins2(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cid BLOB NOT NULL,
    owner TEXT NOT NULL,
    name TEXT,
    mode INTEGER NOT NULL,
    created INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
INSERT INTO pins2(cid, owner, name, mode, created, seq)
SELECT cid,
    CASE
        WHEN name GLOB 'build:?*' OR name GLOB 'build-failed:?*' OR name GLOB 'build-check:?*'
            THEN 'build'
        WHEN name GLOB 'schedule:[0-9]*' THEN name
        WHEN name GLOB 'rootfs:?*' THEN 'rootfs'
        ELSE 'local'
    END,
    CASE
        WHEN name GLOB 'build:?*' THEN substr(name, 7)
        WHEN name GLOB 'build-failed:?*' THEN 'failed:' || substr(name, 14)
        WHEN name GLOB 'build-check:?*' THEN 'check:' || substr(name, 13)
        WHEN name GLOB 'schedule:[0-9]*' THEN NULL
        WHEN name GLOB 'rootfs:?*' THEN substr(name, 8)
        ELSE name
    END,
    mode, created, seq
FROM pins ORDER BY seq;
DROP TABLE pins;
ALTER TABLE pins2 RENAME TO pins;
CREATE INDEX pins_cid ON pins(cid);
CREATE INDEX pins_seq ON pins(seq);
CREATE TABLE pin_meta(
    pin INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY(pin, key)
) WITHOUT ROWID;
CREATE TRIGGER pin_meta_follows AFTER DELETE ON pins BEGIN
    DELETE FROM pin_meta WHERE pin = old.id;
END;
UPDATE state SET schema = 2 WHERE id = 1;
"#;

/// Version 3: the event journal (see [`crate::journal`]). `id` is never reused, so a
/// follower that remembers the last number it saw misses nothing.
const V3: &str = r#"
CREATE TABLE events(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    who TEXT NOT NULL,
    via TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX events_at ON events(at);
UPDATE state SET schema = 3 WHERE id = 1;
"#;

/// Version 4: the node's users (identities, as `did:key`) and the role each holds per
/// namespace (`*`: every namespace).
const V4: &str = r#"
CREATE TABLE users(
    did TEXT PRIMARY KEY,
    name TEXT,
    added INTEGER NOT NULL,
    added_by TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE grants(
    did TEXT NOT NULL,
    namespace TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY(did, namespace)
) WITHOUT ROWID;
UPDATE state SET schema = 4 WHERE id = 1;
"#;

/// Version 5: the tokens the node issued (their ids, holders and expiry; never the tokens)
/// and the deny-list of revoked token blocks.
const V5: &str = r#"
CREATE TABLE tokens(
    id TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    issued INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    issued_by TEXT NOT NULL,
    note TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX tokens_did ON tokens(did);
CREATE TABLE revoked(
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    by TEXT NOT NULL
) WITHOUT ROWID;
UPDATE state SET schema = 5 WHERE id = 1;
"#;

/// Version 6: quotas per identity (and the default one, `*`); NULL follows the default,
/// a negative number is no limit.
const V6: &str = r#"
CREATE TABLE quotas(
    did TEXT PRIMARY KEY,
    pinned_bytes INTEGER,
    builds INTEGER
) WITHOUT ROWID;
UPDATE state SET schema = 6 WHERE id = 1;
"#;

/// Version 7: pin requests (the Pinning Service API's, see [`crate::requests`]). `created`
/// is unique (milliseconds, bumped past the newest); a request's pin, once pinned, is a row
/// of `pins`, and a pin removed under a request (the administrator's `pin rm --all`) marks
/// the request failed.
const V7: &str = r#"
CREATE TABLE pin_requests(
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    namespace TEXT NOT NULL,
    cid BLOB NOT NULL,
    name TEXT,
    origins TEXT NOT NULL,
    meta TEXT NOT NULL,
    status INTEGER NOT NULL,
    info TEXT NOT NULL,
    created INTEGER NOT NULL UNIQUE,
    pin INTEGER,
    replaces INTEGER
) WITHOUT ROWID;
CREATE INDEX pin_requests_owner ON pin_requests(owner, created);
CREATE INDEX pin_requests_status ON pin_requests(status);
CREATE INDEX pin_requests_pin ON pin_requests(pin);
CREATE TRIGGER pin_requests_lose_pin AFTER DELETE ON pins BEGIN
    UPDATE pin_requests SET pin = NULL, status = 3,
        info = 'reason' || char(9) || 'its pin was removed on the node'
        WHERE pin = old.id;
    UPDATE pin_requests SET replaces = NULL WHERE replaces = old.id;
END;
UPDATE state SET schema = 7 WHERE id = 1;
"#;

/// Version 9: every pin lives in a namespace (the pins made before are in `default`), which
/// says whose roles may change it (see the node layer's `pins`).
const V9: &str = r#"
ALTER TABLE pins ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
UPDATE state SET schema = 9 WHERE id = 1;
"#;

/// Version 8: invites (see [`crate::invites`]): the bundle sealed under a code the store
/// never sees, the hash of the proof that uses it, and who used it.
const V8: &str = r#"
CREATE TABLE invites(
    id TEXT PRIMARY KEY,
    sealed BLOB NOT NULL,
    proof TEXT NOT NULL,
    role TEXT NOT NULL,
    namespace TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    used_by TEXT,
    used_at INTEGER
) WITHOUT ROWID;
UPDATE state SET schema = 8 WHERE id = 1;
"#;

/// Every version of `store.db`, oldest first (see [`crate::schema`]).
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 1,
        what: "blocks, links, pins, write sessions, packs",
        sql: V1,
    },
    Migration {
        to: 2,
        what: "pins with owners",
        sql: V2,
    },
    Migration {
        to: 3,
        what: "the event journal",
        sql: V3,
    },
    Migration {
        to: 4,
        what: "users and their roles",
        sql: V4,
    },
    Migration {
        to: 5,
        what: "issued and revoked tokens",
        sql: V5,
    },
    Migration {
        to: 6,
        what: "quotas",
        sql: V6,
    },
    Migration {
        to: 7,
        what: "pin requests",
        sql: V7,
    },
    Migration {
        to: 8,
        what: "invites",
        sql: V8,
    },
    Migration {
        to: 9,
        what: "pins in namespaces",
        sql: V9,
    },
];

/// The version of a `store.db`: `user_version`, or for version 1 (which did not set it)
/// `state.schema`; 0 for a new, empty database.
fn version(tx: &Transaction<'_>) -> Result<i64> {
    let v = schema::user_version(tx)?;
    if v != 0 {
        return Ok(v);
    }
    let has_state: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'state')",
        [],
        |r| r.get(0),
    )?;
    if !has_state {
        return Ok(0);
    }
    Ok(tx
        .query_row("SELECT schema FROM state WHERE id = 1", [], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Open a connection with kiln's pragmas.
pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    // WAL: readers never block the writer and vice versa. FULL: a commit is on disk when it
    // returns, which GC relies on before it unlinks a pack (see DESIGN.md).
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt(format!(
            "cannot switch {} to WAL mode (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA cache_size=-8192; PRAGMA temp_store=MEMORY;",
    )?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Open the first connection of a store: create the schema, or migrate it to the newest.
pub(crate) fn open_and_migrate(
    path: &Path,
    busy_timeout: Duration,
) -> Result<(Connection, schema::Migrated)> {
    let mut conn = open(path, busy_timeout)?;
    let migrated = schema::migrate(&mut conn, path, MIGRATIONS, version)?;
    Ok((conn, migrated))
}

/// Start a write transaction that takes the database write lock immediately (waiting up to
/// the busy timeout), so it can never fail half-way with `SQLITE_BUSY`.
pub(crate) fn write_tx(conn: &mut Connection) -> Result<Transaction<'_>> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// Start a write transaction whose commit need not survive a power loss (only a process crash).
/// In WAL mode this skips the fsync; any later `FULL` commit makes it durable too, as the log
/// is synced in order. Used for session registration and the GC epoch bump, whose loss on
/// power failure is harmless (see DESIGN.md).
pub(crate) fn light_write<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    let result: Result<T> = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    })();
    let restored = conn.execute_batch("PRAGMA synchronous=FULL");
    let value = result?;
    restored?;
    Ok(value)
}

/// The `(ver, codec, mh)` columns that describe a CID.
pub(crate) fn cid_parts(cid: &Cid) -> (i64, i64, Vec<u8>) {
    let ver = match cid.version() {
        Version::V0 => 0,
        Version::V1 => 1,
    };
    (ver, cid.codec() as i64, cid.hash().to_bytes())
}

/// Rebuild a CID from its `(ver, codec, mh)` columns.
pub(crate) fn cid_from_parts(ver: i64, codec: i64, mh: &[u8]) -> Result<Cid> {
    let hash = Multihash::<64>::from_bytes(mh)
        .map_err(|e| Error::Corrupt(format!("bad multihash in index: {e}")))?;
    let version = if ver == 0 { Version::V0 } else { Version::V1 };
    Cid::new(version, codec as u64, hash)
        .map_err(|e| Error::Corrupt(format!("bad CID in index: {e}")))
}

/// Parse CID bytes stored in the `pins` table.
pub(crate) fn cid_from_bytes(bytes: &[u8]) -> Result<Cid> {
    Cid::try_from(bytes).map_err(|e| Error::Corrupt(format!("bad CID in pin table: {e}")))
}

/// The global counters row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    pub epoch: i64,
    pub pin_seq: i64,
    pub del_seq: i64,
}

pub(crate) fn state(conn: &Connection) -> Result<State> {
    Ok(conn.query_row(
        "SELECT epoch, pin_seq, del_seq FROM state WHERE id = 1",
        [],
        |r| {
            Ok(State {
                epoch: r.get(0)?,
                pin_seq: r.get(1)?,
                del_seq: r.get(2)?,
            })
        },
    )?)
}

/// Record that blocks were deleted (invalidates completeness checks done outside a write txn).
pub(crate) fn bump_del_seq(conn: &Connection) -> Result<()> {
    conn.execute("UPDATE state SET del_seq = del_seq + 1 WHERE id = 1", [])?;
    Ok(())
}

/// Allocate the next pin sequence number.
pub(crate) fn next_pin_seq(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "UPDATE state SET pin_seq = pin_seq + 1 WHERE id = 1 RETURNING pin_seq",
        [],
        |r| r.get(0),
    )?)
}

/// A block's index row as needed by DAG walks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub id: i64,
    pub nlinks: i64,
}

pub(crate) fn lookup_node(conn: &Connection, mh: &[u8]) -> Result<Option<Node>> {
    Ok(conn
        .prepare_cached("SELECT id, nlinks FROM blocks WHERE mh = ?1")?
        .query_row(params![mh], |r| {
            Ok(Node {
                id: r.get(0)?,
                nlinks: r.get(1)?,
            })
        })
        .optional()?)
}

/// The children recorded for block `id`, as `(ver, codec, mh)`.
pub(crate) fn child_parts(conn: &Connection, id: i64) -> Result<Vec<(i64, i64, Vec<u8>)>> {
    let mut stmt =
        conn.prepare_cached("SELECT ver, codec, mh FROM links WHERE parent = ?1 ORDER BY idx")?;
    let rows = stmt.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One stored block's index entry.
#[derive(Debug, Clone)]
pub(crate) struct BlockRow {
    pub id: i64,
    pub ver: i64,
    pub codec: i64,
    pub mh: Vec<u8>,
    pub pack: i64,
    pub offset: i64,
    pub len: i64,
}

impl BlockRow {
    /// Columns to select, in the order [`BlockRow::from_row`] reads them.
    pub const COLUMNS: &str = "id, ver, codec, mh, pack, offset, len";

    pub fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BlockRow> {
        Ok(BlockRow {
            id: r.get(0)?,
            ver: r.get(1)?,
            codec: r.get(2)?,
            mh: r.get(3)?,
            pack: r.get(4)?,
            offset: r.get(5)?,
            len: r.get(6)?,
        })
    }

    pub fn cid(&self) -> Result<Cid> {
        cid_from_parts(self.ver, self.codec, &self.mh)
    }
}
