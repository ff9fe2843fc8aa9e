//! Schema versions of SQLite databases and the migrations between them, shared by the
//! store's `store.db` and the build index.
//!
//! A database's version is its `PRAGMA user_version`. Opening a database runs, in one
//! write transaction, every migration from the version it has to the newest this kiln
//! knows, and writes the new version in the same transaction: a crash during a migration
//! leaves the old schema or the new one, never a mix. A database whose version is newer
//! than any this kiln knows was written by a newer kiln and is refused (with both numbers),
//! before anything is written to it.
//!
//! Migrations are append-only: once released, a migration's SQL never changes (a
//! repository written by that release depends on exactly that step). A new table or
//! column is a new migration at the end of the list.

use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;

use crate::{Error, Result};

/// One step from version `to - 1` to version `to`.
pub struct Migration {
    /// The version this step produces.
    pub to: i64,
    /// What it changes, in a few words (for the log).
    pub what: &'static str,
    /// The statements, run in the migration's transaction.
    pub sql: &'static str,
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found.
    pub from: i64,
    /// The version now (the newest).
    pub to: i64,
}

/// The newest version of `store.db` this kiln knows.
pub fn newest_store_version() -> i64 {
    newest(crate::db::MIGRATIONS)
}

/// The newest version `steps` lead to.
pub fn newest(steps: &[Migration]) -> i64 {
    steps.last().map_or(0, |m| m.to)
}

/// Bring the database on `conn` (the file `path`, for messages) to the newest version of
/// `steps`. `found` tells the version of a database, in the migration's transaction (it
/// reads `user_version`, or knows how an older layout recorded its version). Versions
/// must be consecutive from 1.
pub fn migrate(
    conn: &mut Connection,
    path: &Path,
    steps: &[Migration],
    found: impl Fn(&Transaction<'_>) -> Result<i64>,
) -> Result<Migrated> {
    let newest = newest(steps);
    // Read first without the write lock: an up-to-date database (every open but the first)
    // is not written at all.
    let version = {
        let tx = conn.transaction()?;
        found(&tx)?
    };
    if version == newest {
        return Ok(Migrated {
            from: version,
            to: version,
        });
    }
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    // Again under the lock: another process may have migrated it meanwhile.
    let from = found(&tx)?;
    if from > newest {
        return Err(Error::NewerSchema {
            path: path.to_owned(),
            found: from,
            supported: newest,
        });
    }
    if from < 0 {
        return Err(Error::Corrupt(format!(
            "{}: schema version {from}",
            path.display()
        )));
    }
    for m in steps.iter().filter(|m| m.to > from) {
        tx.execute_batch(m.sql).map_err(|e| match Error::from(e) {
            Error::Db(source) => Error::Migration {
                path: path.to_owned(),
                to: m.to,
                what: m.what,
                source,
            },
            full => full,
        })?;
    }
    tx.pragma_update(None, "user_version", newest)?;
    tx.commit()?;
    Ok(Migrated { from, to: newest })
}

/// The database's `user_version`.
pub fn user_version(tx: &Transaction<'_>) -> Result<i64> {
    Ok(tx.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}
