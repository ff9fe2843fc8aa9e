//! Write sessions: batched, crash-safe block insertion and staged pins.

use std::collections::HashSet;

use cid::Cid;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::dag::IdSet;
use crate::db::{self, IDENTITY, Node, SHA2_256};
use crate::lock::LockFile;
use crate::pack::PackWriter;
use crate::{Error, NewPin, Result, Store, pins};

/// A write session: blocks are appended to a pack file of its own and indexed in batches; pins
/// are staged and applied at [`Session::commit`].
///
/// While a session is alive, every block it has put (including blocks that were already
/// stored) is protected from garbage collection, in this or any other process. Dropping a
/// session without committing discards its unflushed blocks and staged pins; blocks already
/// flushed stay in the store unpinned (GC removes them later). After any error the session is
/// unusable ([`Error::SessionPoisoned`]); drop it.
#[derive(Debug)]
pub struct Session {
    store: Store,
    conn: Option<Connection>,
    id: String,
    _lock: LockFile,
    writer: Option<PackWriter>,
    /// Pack number allocated at start and not yet used (its file is created on first write).
    first_pack: Option<i64>,
    /// Writers that reached the size limit in the current batch (synced and sealed at flush).
    retired: Vec<PackWriter>,
    fresh: Vec<Fresh>,
    dups: Vec<Dup>,
    /// Multihashes of blocks in the current batch.
    staged: HashSet<Vec<u8>>,
    batch_bytes: u64,
    pins: Vec<(Cid, NewPin)>,
    journal: Vec<crate::journal::Entry>,
    poisoned: bool,
    /// Blocks this session wrote that were not already stored.
    written: u64,
}

/// A block newly written to a pack in this batch (or an identity block with links: no pack).
#[derive(Debug)]
struct Fresh {
    cid: Cid,
    pack: Option<i64>,
    offset: u64,
    len: u64,
    links: Vec<Cid>,
}

/// A block that was already stored when put: only its `touched` epoch is updated at flush.
/// The bytes are kept until then in case GC removes the stored copy in the meantime.
#[derive(Debug)]
struct Dup {
    cid: Cid,
    data: Vec<u8>,
    links: Vec<Cid>,
}

impl Session {
    pub(crate) fn start(store: Store) -> Result<Session> {
        // Lock file first, row second: GC treats a row without a held lock as a dead session.
        let (lock, id) = LockFile::new_session(&store.inner.locks_dir)?;
        let mut conn = store.inner.take_conn()?;
        // Registration and the first pack number in one transaction that needs no fsync: if
        // a power loss undoes it, the session (and its pack) died with the machine anyway.
        let first_pack = db::light_write(&mut conn, |tx| {
            let st = db::state(tx)?;
            tx.execute(
                "INSERT INTO sessions(id, start_epoch, pid, started) VALUES (?1, ?2, ?3, ?4)",
                params![id, st.epoch, std::process::id(), db::now_millis()],
            )?;
            Ok(tx.query_row(
                "INSERT INTO packs(session) VALUES (?1) RETURNING id",
                params![id],
                |r| r.get::<_, i64>(0),
            )?)
        });
        let first_pack = match first_pack {
            Ok(p) => p,
            Err(e) => {
                store.inner.give_back(conn);
                return Err(e);
            }
        };
        Ok(Session {
            store,
            conn: Some(conn),
            id,
            _lock: lock,
            writer: None,
            first_pack: Some(first_pack),
            retired: Vec::new(),
            fresh: Vec::new(),
            dups: Vec::new(),
            staged: HashSet::new(),
            batch_bytes: 0,
            pins: Vec::new(),
            journal: Vec::new(),
            poisoned: false,
            written: 0,
        })
    }

    fn conn(&self) -> Result<&Connection> {
        self.conn.as_ref().ok_or(Error::SessionPoisoned)
    }

    /// The store it writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How many blocks this session has written that the store did not already hold.
    pub fn blocks_written(&self) -> u64 {
        self.written
    }

    /// Store a block. The caller vouches that `cid` is the hash of `data` (see
    /// [`Session::put_verified`]) and lists the block's links (the CIDs it references, in
    /// order); the store does not parse codecs. Identity-hash CIDs are not stored, but their
    /// links are recorded if any are given. A block already stored is not written again but
    /// becomes protected by this session.
    pub fn put(&mut self, cid: &Cid, data: &[u8], links: &[Cid]) -> Result<()> {
        if self.poisoned {
            return Err(Error::SessionPoisoned);
        }
        let r = self.put_inner(cid, data, links);
        if r.is_err() {
            self.poison();
        }
        r
    }

    /// Like [`Session::put`], but first checks that `data` hashes to `cid` (sha2-256 and
    /// identity are supported). Fails with [`Error::HashMismatch`] or
    /// [`Error::UnsupportedHash`] without poisoning the session.
    pub fn put_verified(&mut self, cid: &Cid, data: &[u8], links: &[Cid]) -> Result<()> {
        verify_hash(cid, data)?;
        self.put(cid, data, links)
    }

    fn put_inner(&mut self, cid: &Cid, data: &[u8], links: &[Cid]) -> Result<()> {
        if data.len() as u64 > u32::MAX as u64 {
            return Err(Error::BlockTooLarge {
                cid: *cid,
                size: data.len() as u64,
            });
        }
        let mh = cid.hash().to_bytes();
        if self.staged.contains(&mh) {
            return Ok(());
        }
        if cid.hash().code() == IDENTITY {
            if links.is_empty() {
                return Ok(());
            }
            self.fresh.push(Fresh {
                cid: *cid,
                pack: None,
                offset: 0,
                len: cid.hash().digest().len() as u64,
                links: links.to_vec(),
            });
        } else {
            let exists = self
                .conn()?
                .prepare_cached("SELECT 1 FROM blocks WHERE mh = ?1")?
                .query_row(params![mh], |_| Ok(()))
                .optional()?
                .is_some();
            if exists {
                self.dups.push(Dup {
                    cid: *cid,
                    data: data.to_vec(),
                    links: links.to_vec(),
                });
            } else {
                let fresh = self.write_block(cid, data, links)?;
                self.fresh.push(fresh);
                self.written += 1;
            }
        }
        self.staged.insert(mh);
        self.batch_bytes += data.len() as u64;
        let opts = &self.store.inner.opts;
        if self.batch_bytes >= opts.batch_bytes
            || self.fresh.len() + self.dups.len() >= opts.batch_blocks
        {
            self.flush()?;
        }
        Ok(())
    }

    /// Append a block to the session's pack, rolling over to a new pack when full.
    fn write_block(&mut self, cid: &Cid, data: &[u8], links: &[Cid]) -> Result<Fresh> {
        let inner = &self.store.inner;
        retire_if_full(
            &mut self.writer,
            &mut self.retired,
            inner.opts.max_pack_size,
        );
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let w = match self.first_pack.take() {
                    Some(id) => PackWriter::create(&inner.packs_dir, id)?,
                    None => {
                        let conn = self.conn.as_ref().ok_or(Error::SessionPoisoned)?;
                        new_pack(conn, &inner.packs_dir, Some(&self.id))?
                    }
                };
                self.writer.insert(w)
            }
        };
        let offset = writer.append(&cid.to_bytes(), data)?;
        Ok(Fresh {
            cid: *cid,
            pack: Some(writer.id()),
            offset,
            len: data.len() as u64,
            links: links.to_vec(),
        })
    }

    /// Stage a pin, applied atomically with the last batch at [`Session::commit`]. A recursive
    /// pin's DAG must be complete by then.
    pub fn pin(&mut self, cid: &Cid, pin: NewPin) {
        self.pins.push((*cid, pin));
    }

    /// Stage an event for the journal, written at [`Session::commit`] in the same
    /// transaction as the blocks and pins it is about (so it is recorded exactly when they
    /// are).
    pub fn record(&mut self, entry: crate::journal::Entry) {
        self.journal.push(entry);
    }

    /// Make every block put so far durable and indexed (visible to readers), keeping the
    /// session open. Staged pins are not applied.
    pub fn flush(&mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::SessionPoisoned);
        }
        let r = self.flush_inner(false);
        if r.is_err() {
            self.poison();
        }
        r
    }

    /// Flush the last batch, apply the staged pins and end the session, all in one database
    /// transaction after the pack data is on disk. On error nothing of the last batch nor any
    /// staged pin is visible.
    pub fn commit(mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::SessionPoisoned);
        }
        let r = self.flush_inner(true);
        if r.is_err() {
            self.poison();
        }
        r
    }

    fn poison(&mut self) {
        self.poisoned = true;
        self.fresh.clear();
        self.dups.clear();
        self.staged.clear();
        self.pins.clear();
        self.journal.clear();
        // Drop the writers: their packs are unlocked, and GC treats them as abandoned.
        self.writer = None;
        self.retired.clear();
    }

    fn flush_inner(&mut self, commit: bool) -> Result<()> {
        if !commit && self.fresh.is_empty() && self.dups.is_empty() {
            return Ok(());
        }
        let inner = self.store.inner.clone();
        // 1. The pack bytes are durable before any index row points at them.
        for w in &mut self.retired {
            w.sync()?;
        }
        if let Some(w) = &mut self.writer {
            w.sync()?;
        }
        // 2. One transaction for the whole batch (and, at commit, the pins).
        let conn = self.conn.as_mut().ok_or(Error::SessionPoisoned)?;
        let tx = db::write_tx(conn)?;
        let epoch = db::state(&tx)?.epoch;
        let mut rewritten = false;
        for dup in self.dups.drain(..) {
            let mh = dup.cid.hash().to_bytes();
            let node = tx
                .prepare_cached(
                    "UPDATE blocks SET touched = ?2 WHERE mh = ?1 RETURNING id, nlinks",
                )?
                .query_row(params![mh, epoch], |r| {
                    Ok(Node {
                        id: r.get(0)?,
                        nlinks: r.get(1)?,
                    })
                })
                .optional()?;
            match node {
                Some(node) => merge_links(&tx, node, &dup.links)?,
                None => {
                    // Removed since `put` saw it (GC or remove_block): write it again. We hold
                    // the write lock, so nothing can remove it before this transaction commits.
                    retire_if_full(
                        &mut self.writer,
                        &mut self.retired,
                        inner.opts.max_pack_size,
                    );
                    let writer = match &mut self.writer {
                        Some(w) => w,
                        None => {
                            self.writer
                                .insert(new_pack(&tx, &inner.packs_dir, Some(&self.id))?)
                        }
                    };
                    let offset = writer.append(&dup.cid.to_bytes(), &dup.data)?;
                    self.fresh.push(Fresh {
                        cid: dup.cid,
                        pack: Some(writer.id()),
                        offset,
                        len: dup.data.len() as u64,
                        links: dup.links,
                    });
                    rewritten = true;
                }
            }
        }
        if rewritten {
            for w in &mut self.retired {
                w.sync()?;
            }
            if let Some(w) = &mut self.writer {
                w.sync()?;
            }
        }
        for fresh in self.fresh.drain(..) {
            insert_block(&tx, &fresh, epoch)?;
        }
        for w in self.retired.drain(..) {
            tx.execute("UPDATE packs SET sealed = 1 WHERE id = ?1", params![w.id()])?;
        }
        if commit {
            let mut seen = IdSet::default();
            for (cid, pin) in &self.pins {
                pins::check_complete(&tx, cid, pin.mode, &mut seen)?;
            }
            for (cid, pin) in &self.pins {
                pins::apply_pin(&tx, cid, pin, true)?;
            }
            for e in &self.journal {
                crate::journal::insert(&tx, e)?;
            }
            tx.execute("DELETE FROM sessions WHERE id = ?1", params![self.id])?;
            if let Some(unused) = self.first_pack {
                tx.execute("DELETE FROM packs WHERE id = ?1", params![unused])?;
            }
            tx.execute(
                "UPDATE packs SET sealed = 1 WHERE session = ?1",
                params![self.id],
            )?;
        }
        tx.commit()?;
        self.staged.clear();
        self.batch_bytes = 0;
        if commit {
            self.pins.clear();
            self.journal.clear();
            self.writer = None;
            self.first_pack = None;
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Give the connection back; the lock file goes with `_lock`, which marks the session
        // dead for GC (which then deletes its row). Nothing else needs undoing.
        if let Some(conn) = self.conn.take() {
            self.store.inner.give_back(conn);
        }
    }
}

/// Allocate a pack number in the database and create the locked pack file.
pub(crate) fn new_pack(
    conn: &Connection,
    dir: &std::path::Path,
    session: Option<&str>,
) -> Result<PackWriter> {
    let id: i64 = conn.query_row(
        "INSERT INTO packs(session) VALUES (?1) RETURNING id",
        params![session],
        |r| r.get(0),
    )?;
    PackWriter::create(dir, id)
}

/// Insert a block's index row (and its links); if another writer inserted it concurrently,
/// touch that row instead.
fn insert_block(conn: &Connection, b: &Fresh, epoch: i64) -> Result<()> {
    let (ver, codec, mh) = db::cid_parts(&b.cid);
    let id: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO blocks(mh, ver, codec, pack, offset, len, touched, nlinks)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(mh) DO NOTHING RETURNING id",
        )?
        .query_row(
            params![
                mh,
                ver,
                codec,
                b.pack,
                b.offset as i64,
                b.len as i64,
                epoch,
                b.links.len() as i64
            ],
            |r| r.get(0),
        )
        .optional()?;
    match id {
        Some(id) => {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO links(parent, idx, ver, codec, mh) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (i, link) in b.links.iter().enumerate() {
                let (ver, codec, mh) = db::cid_parts(link);
                stmt.execute(params![id, i as i64, ver, codec, mh])?;
            }
        }
        None => {
            let node = conn
                .prepare_cached(
                    "UPDATE blocks SET touched = ?2 WHERE mh = ?1 RETURNING id, nlinks",
                )?
                .query_row(params![mh, epoch], |r| {
                    Ok(Node {
                        id: r.get(0)?,
                        nlinks: r.get(1)?,
                    })
                })?;
            merge_links(conn, node, &b.links)?;
        }
    }
    Ok(())
}

/// Add to an existing block any of `links` it does not record yet. (The same bytes put under
/// two codecs may have been given different links; protecting the union is the safe choice.)
fn merge_links(conn: &Connection, node: Node, links: &[Cid]) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    let existing: HashSet<(i64, i64, Vec<u8>)> = if node.nlinks > 0 {
        db::child_parts(conn, node.id)?.into_iter().collect()
    } else {
        HashSet::new()
    };
    let mut next = node.nlinks;
    let mut added = HashSet::new();
    for link in links {
        let parts = db::cid_parts(link);
        if existing.contains(&parts) || !added.insert(parts.clone()) {
            continue;
        }
        conn.execute(
            "INSERT INTO links(parent, idx, ver, codec, mh) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![node.id, next, parts.0, parts.1, parts.2],
        )?;
        next += 1;
    }
    if next != node.nlinks {
        conn.execute(
            "UPDATE blocks SET nlinks = ?2 WHERE id = ?1",
            params![node.id, next],
        )?;
    }
    Ok(())
}

/// Check that `data` hashes to `cid`.
pub(crate) fn verify_hash(cid: &Cid, data: &[u8]) -> Result<()> {
    let hash = cid.hash();
    let ok = match hash.code() {
        IDENTITY => hash.digest() == data,
        SHA2_256 => hash.digest() == Sha256::digest(data).as_slice(),
        code => return Err(Error::UnsupportedHash { cid: *cid, code }),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::HashMismatch(*cid))
    }
}

/// Move the current pack writer to `retired` once its pack has reached `max` bytes, so the
/// next append starts a new pack.
fn retire_if_full(writer: &mut Option<PackWriter>, retired: &mut Vec<PackWriter>, max: u64) {
    if writer.as_ref().is_some_and(|w| w.len() >= max)
        && let Some(full) = writer.take()
    {
        retired.push(full);
    }
}
