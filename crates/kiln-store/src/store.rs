//! The [`Store`] handle: opening, reads, pins, statistics.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use cid::Cid;
use rusqlite::{Connection, OptionalExtension, params};

use crate::dag::IdSet;
use crate::db::{self, IDENTITY};
use crate::journal::{self, Entry};
use crate::pack::{self, PackFiles};
use crate::{
    Error, GcReport, NewPin, Pin, PinMode, PinOwner, PinStatus, RepoStat, Result, Session,
    StoreOptions, Unpinned, VerifyReport, pins,
};

/// A handle to an embedded block store. Cheap to clone; `Send + Sync`.
///
/// Several handles, in one process or in several, may use the same directory at once.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub root: PathBuf,
    pub db_path: PathBuf,
    pub packs_dir: PathBuf,
    pub locks_dir: PathBuf,
    pub opts: StoreOptions,
    pool: Mutex<Vec<Connection>>,
    migrated: crate::schema::Migrated,
    pub packs: PackFiles,
    pub cache: Option<crate::cache::BlockCache>,
    pub access: Option<crate::access::AccessGeneration>,
}

impl Inner {
    /// A change to users, roles or revoked tokens starts (call it once the write transaction
    /// is open; the guard, dropped after the commit, ends it).
    pub(crate) fn changing_access(&self) -> Option<crate::access::Writing<'_>> {
        self.access.as_ref().map(|a| a.writing())
    }

    /// Blocks were deleted (committed): caches in every process forget what they hold.
    pub(crate) fn deleted_blocks(&self) {
        if let Some(c) = &self.cache {
            c.deleted();
        }
    }
}

/// Idle database connections kept for reuse.
const POOL_MAX: usize = 8;
/// How often a read retries after the pack named by the index vanished (moved by GC).
const READ_RETRIES: usize = 3;

/// A pooled connection, returned to the pool on drop.
pub(crate) struct PooledConn<'a> {
    store: &'a Inner,
    conn: Option<Connection>,
}

impl std::ops::Deref for PooledConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl std::ops::DerefMut for PooledConn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for PooledConn<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.store.give_back(conn);
        }
    }
}

impl Inner {
    pub fn take_conn(&self) -> Result<Connection> {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match pooled {
            Some(c) => Ok(c),
            None => db::open(&self.db_path, self.opts.busy_timeout),
        }
    }

    pub fn give_back(&self, conn: Connection) {
        // A connection left inside a transaction (after a panic) is not reused.
        if !conn.is_autocommit() {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_MAX {
            pool.push(conn);
        }
    }

    pub fn conn(&self) -> Result<PooledConn<'_>> {
        Ok(PooledConn {
            store: self,
            conn: Some(self.take_conn()?),
        })
    }
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))
}

impl Store {
    /// Open the store in `root`, creating the directory layout and database if absent.
    pub fn open(root: &Path, opts: StoreOptions) -> Result<Store> {
        let packs_dir = root.join("packs");
        let locks_dir = root.join("locks");
        create_dir(root)?;
        create_dir(&packs_dir)?;
        create_dir(&locks_dir)?;
        let db_path = root.join("store.db");
        let (conn, migrated) = db::open_and_migrate(&db_path, opts.busy_timeout)?;
        // Best effort: without it GC on a full disk may fail, nothing worse.
        let _ = ensure_reserve(&root.join(RESERVE), opts.reserve_bytes);
        let cache = crate::cache::BlockCache::open(&locks_dir.join("generation"), opts.cache_bytes);
        let access = crate::access::AccessGeneration::open(&locks_dir.join("access"));
        let inner = Inner {
            access,
            cache,
            root: root.to_owned(),
            db_path,
            packs: PackFiles::new(packs_dir.clone()),
            packs_dir,
            locks_dir,
            opts,
            pool: Mutex::new(vec![conn]),
            migrated,
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// The generation of users, roles and revoked tokens (see [`crate::access`]): while it
    /// stays the same, none of them changed in any process; `None` while a change is under
    /// way, or when there is no shared generation (then read them every time).
    pub fn access_generation(&self) -> Option<u64> {
        self.inner.access.as_ref().and_then(|a| a.current())
    }

    /// Even out the generation of users and roles after a writer died mid-change (see
    /// [`crate::access`]); done under the write lock.
    pub fn settle_access(&self) -> Result<()> {
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        if let Some(a) = &self.inner.access {
            a.settle();
        }
        tx.commit()?;
        Ok(())
    }

    /// The schema version the database had when this handle opened it, and the one it has
    /// now (equal unless opening migrated it; `from` is 0 for a new store).
    pub fn migrated(&self) -> crate::schema::Migrated {
        self.inner.migrated
    }

    /// The repository directory this store was opened on.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Start a write session (see [`Session`]).
    pub fn session(&self) -> Result<Session> {
        Session::start(self.clone())
    }

    /// The bytes of a block, or `None` if it is not stored. Identity-hash CIDs return their
    /// digest without touching disk. Blocks are found by multihash, so a CIDv0 and a CIDv1 of
    /// the same hash name the same block.
    pub fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        if cid.hash().code() == IDENTITY {
            return Ok(Some(cid.hash().digest().to_vec()));
        }
        let mh = cid.hash().to_bytes();
        let cache = self.inner.cache.as_ref();
        if let Some(d) = cache.and_then(|c| c.get(&mh)) {
            return Ok(Some(d.to_vec()));
        }
        let conn = self.inner.conn()?;
        for _ in 0..READ_RETRIES {
            let Some((pack, offset, len)) = locate(&conn, &mh)? else {
                return Ok(None);
            };
            if let Some(data) = self.inner.packs.read(pack, offset, len)? {
                if let Some(c) = cache {
                    c.insert(&mh, &data);
                }
                return Ok(Some(data));
            }
            // The pack vanished: another process compacted it; the index now says where to look.
        }
        Err(Error::Corrupt(format!(
            "block {cid} is indexed but its pack file is missing"
        )))
    }

    /// The block if it is in the memory cache (or an identity CID), without any I/O: for
    /// answering hot content without going to the blocking pool. `None` says nothing about
    /// whether the block is stored.
    pub fn get_cached(&self, cid: &Cid) -> Option<Vec<u8>> {
        if cid.hash().code() == IDENTITY {
            return Some(cid.hash().digest().to_vec());
        }
        let c = self.inner.cache.as_ref()?;
        // The multihash's bytes, on the stack: this runs on every hot request.
        let mut key = [0u8; 96];
        let mut w = &mut key[..];
        let n = cid.hash().write(&mut w).ok()?;
        c.get(&key[..n]).map(|d| d.to_vec())
    }

    /// Is the block stored? Always true for identity-hash CIDs.
    pub fn has(&self, cid: &Cid) -> Result<bool> {
        if cid.hash().code() == IDENTITY {
            return Ok(true);
        }
        let conn = self.inner.conn()?;
        Ok(locate(&conn, &cid.hash().to_bytes())?.is_some())
    }

    /// The size of a stored block in bytes.
    pub fn size(&self, cid: &Cid) -> Result<Option<u64>> {
        if cid.hash().code() == IDENTITY {
            return Ok(Some(cid.hash().digest().len() as u64));
        }
        let conn = self.inner.conn()?;
        Ok(locate(&conn, &cid.hash().to_bytes())?.map(|(_, _, len)| len))
    }

    /// The links recorded for a block when it was put, in the order given. `None` if the block
    /// is not stored. Identity-hash CIDs report the links given to [`Session::put`], if any,
    /// else an empty list.
    pub fn links(&self, cid: &Cid) -> Result<Option<Vec<Cid>>> {
        let conn = self.inner.conn()?;
        let Some(node) = db::lookup_node(&conn, &cid.hash().to_bytes())? else {
            return Ok((cid.hash().code() == IDENTITY).then(Vec::new));
        };
        if node.nlinks == 0 {
            return Ok(Some(Vec::new()));
        }
        let parts = db::child_parts(&conn, node.id)?;
        parts
            .iter()
            .map(|(ver, codec, mh)| db::cid_from_parts(*ver, *codec, mh))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Delete one block now. Fails with [`Error::Pinned`] if it is pinned directly or
    /// reachable from a recursive pin, and [`Error::NotFound`] if it is not stored.
    pub fn remove_block(&self, cid: &Cid) -> Result<()> {
        if cid.hash().code() == IDENTITY {
            return Ok(());
        }
        let mh = cid.hash().to_bytes();
        let mut conn = self.inner.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let Some(node) = db::lookup_node(&tx, &mh)? else {
            return Err(Error::NotFound(*cid));
        };
        if let Some((_, status)) = pins::protection(&tx, &mh)? {
            return Err(Error::Pinned { cid: *cid, status });
        }
        tx.execute("DELETE FROM blocks WHERE id = ?1", params![node.id])?;
        tx.execute("DELETE FROM links WHERE parent = ?1", params![node.id])?;
        db::bump_del_seq(&tx)?;
        tx.commit()?;
        self.inner.deleted_blocks();
        Ok(())
    }

    /// Pin `cid` as `pin` says; the pin's number. A recursive pin requires the whole DAG
    /// (as recorded by `links`) to be present and fails with [`Error::MissingBlock`] naming
    /// the first absent block; a direct pin requires the root. The check and the insertion
    /// are atomic with respect to GC. An owner holds one pin of a CID this way: pinning
    /// recursively upgrades its direct pin; pinning again with the same mode only updates
    /// the name (if given) and adds the metadata. Other owners' pins are not touched.
    pub fn pin_add(&self, cid: &Cid, pin: &NewPin) -> Result<i64> {
        self.pin_add_inner(cid, pin, None)
    }

    /// [`Store::pin_add`], recording `entry` in the journal in the same transaction.
    pub fn pin_add_recorded(&self, cid: &Cid, pin: &NewPin, entry: &Entry) -> Result<i64> {
        self.pin_add_inner(cid, pin, Some(entry))
    }

    fn pin_add_inner(&self, cid: &Cid, pin: &NewPin, entry: Option<&Entry>) -> Result<i64> {
        let mut conn = self.inner.conn()?;
        // Check the DAG in a read snapshot first so the write lock is held only briefly; if a
        // deletion committed in between, check again under the lock.
        let checked_at = {
            let tx = conn.transaction()?;
            let st = db::state(&tx)?;
            pins::check_complete(&tx, cid, pin.mode, &mut IdSet::default())?;
            st.del_seq
        };
        let tx = db::write_tx(&mut conn)?;
        let still_valid = db::state(&tx)?.del_seq == checked_at;
        let id = pins::apply_pin(&tx, cid, pin, still_valid)?;
        if let Some(e) = entry {
            journal::insert(&tx, e)?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Remove `owner`'s pins of exactly this CID, leaving other owners' pins: what was
    /// removed and what remains. [`Error::NotPinned`] if the CID has no pin,
    /// [`Error::NotPinnedBy`] if only other owners hold it.
    pub fn pin_rm(&self, cid: &Cid, owner: &PinOwner) -> Result<Unpinned> {
        self.unpin(cid, Some(owner), &|_| None)
    }

    /// Remove the pins of exactly this CID that `owner` holds (every pin with `None`),
    /// recording in the same transaction the journal entry `entry` makes of what was
    /// removed (as [`Store::pin_rm`] and [`Store::pin_rm_all`] otherwise).
    pub fn pin_rm_recorded(
        &self,
        cid: &Cid,
        owner: Option<&PinOwner>,
        entry: &dyn Fn(&Unpinned) -> Entry,
    ) -> Result<Unpinned> {
        self.unpin(cid, owner, &|u| Some(entry(u)))
    }

    /// Remove every pin of exactly this CID, whoever holds it; [`Error::NotPinned`] if it has
    /// none.
    pub fn pin_rm_all(&self, cid: &Cid) -> Result<Unpinned> {
        self.unpin(cid, None, &|_| None)
    }

    fn unpin(
        &self,
        cid: &Cid,
        owner: Option<&PinOwner>,
        entry: &dyn Fn(&Unpinned) -> Option<Entry>,
    ) -> Result<Unpinned> {
        // Unpinning is how space is freed on a full disk: it may use the reserve.
        self.with_reserve(|| {
            let mut conn = self.inner.conn()?;
            let tx = db::write_tx(&mut conn)?;
            let done = pins::remove(&tx, cid, owner)?;
            if let Some(e) = entry(&done) {
                journal::insert(&tx, &e)?;
            }
            tx.commit()?;
            Ok(done)
        })
    }

    /// Record `entry` in the journal (for a change that is not in the store, or one that
    /// failed); its number. Written as a light commit (no fsync of its own): a process
    /// crash never loses it, a power loss may lose the newest such entries until the next
    /// durable commit, which syncs the log in order. A change that is in the store records
    /// its entry in its own (durable) transaction instead.
    pub fn record(&self, entry: &Entry) -> Result<i64> {
        let mut conn = self.inner.conn()?;
        db::light_write(&mut conn, |tx| journal::insert(tx, entry))
    }

    /// The journal's events that `q` asks for.
    pub fn events(&self, q: &journal::Query) -> Result<Vec<journal::Event>> {
        let conn = self.inner.conn()?;
        journal::query(&conn, q)
    }

    /// The number of the journal's newest event (0 if it is empty).
    pub fn last_event(&self) -> Result<i64> {
        let conn = self.inner.conn()?;
        journal::last_id(&conn)
    }

    /// Delete the journal's events recorded before `before`; how many.
    pub fn prune_events(&self, before: std::time::SystemTime) -> Result<u64> {
        let ms = before
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.with_reserve(|| {
            let mut conn = self.inner.conn()?;
            let tx = db::write_tx(&mut conn)?;
            let n = journal::prune(&tx, ms)?;
            tx.commit()?;
            Ok(n)
        })
    }

    /// All pins, oldest first (a CID held by several owners is listed once per pin).
    pub fn pins(&self) -> Result<Vec<Pin>> {
        let conn = self.inner.conn()?;
        pins::pins_where(&conn, "1", [])
    }

    /// The pins of exactly `cid`, oldest first.
    pub fn pins_of(&self, cid: &Cid) -> Result<Vec<Pin>> {
        let conn = self.inner.conn()?;
        pins::pins_where(&conn, "cid = ?1", params![cid.to_bytes()])
    }

    /// Blocks protected only through recursive pins (not themselves pinned), each once, in
    /// a depth-first walk from the recursive pins, newest pin's children first.
    pub fn indirect_pins(&self) -> Result<Vec<Cid>> {
        let pins = self.pins()?;
        let roots: std::collections::HashSet<Cid> = pins.iter().map(|p| p.cid).collect();
        let mut stack = Vec::new();
        let mut expanded = std::collections::HashSet::new();
        for p in pins.iter().filter(|p| p.mode == PinMode::Recursive) {
            if expanded.insert(p.cid) {
                stack.extend(self.links(&p.cid)?.unwrap_or_default());
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        while let Some(c) = stack.pop() {
            if !seen.insert(c) {
                continue;
            }
            if !roots.contains(&c) {
                out.push(c);
            }
            stack.extend(self.links(&c)?.unwrap_or_default());
        }
        Ok(out)
    }

    /// How `cid` is pinned: its own pin, else indirectly through a recursive pin (this walks
    /// the recursive pins' DAGs), else `None`.
    pub fn pin_status(&self, cid: &Cid) -> Result<Option<PinStatus>> {
        let mut conn = self.inner.conn()?;
        let tx = conn.transaction()?;
        pins::status(&tx, cid)
    }

    /// Remove every block that is neither pinned (directly or through a recursive pin) nor
    /// protected by a live write session, then delete or compact pack files. Safe to run while
    /// other sessions, in this or other processes, keep writing.
    pub fn gc(&self) -> Result<GcReport> {
        self.gc_inner(&mut |_| {}, false)
    }

    /// [`Store::gc`], calling `on_removed` with each removed block's CID as soon as its
    /// removal is committed (in batches, during the run).
    pub fn gc_reporting(&self, on_removed: &mut dyn FnMut(&Cid)) -> Result<GcReport> {
        self.gc_inner(on_removed, true)
    }

    fn gc_inner(&self, on_removed: &mut dyn FnMut(&Cid), report: bool) -> Result<GcReport> {
        let on_removed = std::cell::RefCell::new(on_removed);
        let r = self.with_reserve(|| {
            let mut f = on_removed.borrow_mut();
            crate::gc::run(&self.inner, &mut **f, report)
        });
        // The index's journal gives its pages back too.
        if let Ok(conn) = self.inner.conn() {
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        self.restore_reserve();
        r
    }

    /// Run `f`; if the disk is full, delete the reserve file (whose space lets the index
    /// write its journal, so pins can be removed and blocks collected) and run it once more.
    /// Then the reserve is made again, as far as the free space allows: the space GC frees
    /// goes to it first.
    pub(crate) fn with_reserve<T>(&self, f: impl Fn() -> Result<T>) -> Result<T> {
        let r = match f() {
            Err(Error::DiskFull { .. }) if self.release_reserve() => f(),
            r => r,
        };
        self.restore_reserve();
        r
    }

    /// Delete the reserve file; true if there was one.
    fn release_reserve(&self) -> bool {
        std::fs::remove_file(self.inner.root.join(RESERVE)).is_ok()
    }

    /// Make the reserve file whole again if it is missing or short (best effort: on a disk
    /// still full, as much of it as fits).
    fn restore_reserve(&self) {
        let path = self.inner.root.join(RESERVE);
        let size = self.inner.opts.reserve_bytes;
        if ensure_reserve(&path, size).is_ok() {
            return;
        }
        let have = std::fs::metadata(&path).map_or(0, |m| m.len());
        let mut part = size / 2;
        while part >= (1 << 20) && part > have {
            if ensure_reserve(&path, part).is_ok() {
                return;
            }
            part /= 2;
        }
    }

    /// Re-hash every stored block and walk every pinned DAG.
    pub fn verify(&self) -> Result<VerifyReport> {
        crate::verify::run(self)
    }

    /// Counts and sizes of the repository.
    pub fn stat(&self) -> Result<RepoStat> {
        let conn = self.inner.conn()?;
        let (blocks, block_bytes): (i64, i64) = conn.query_row(
            "SELECT count(*), coalesce(sum(len), 0) FROM blocks WHERE pack IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let pins: i64 = conn.query_row("SELECT count(*) FROM pins", [], |r| r.get(0))?;
        let mut stat = RepoStat {
            blocks: blocks as u64,
            block_bytes: block_bytes as u64,
            pins: pins as u64,
            ..RepoStat::default()
        };
        let dir = &self.inner.packs_dir;
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name();
            if name.to_str().and_then(pack::pack_id_from_name).is_none() {
                continue;
            }
            if let Ok(meta) = entry.metadata() {
                stat.packs += 1;
                stat.pack_bytes += meta.len();
            }
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.inner.db_path.clone().into_os_string();
            p.push(suffix);
            if let Ok(meta) = std::fs::metadata(&p) {
                stat.db_bytes += meta.len();
            }
        }
        Ok(stat)
    }
}

/// Name of the space-reserve file in the repository root.
const RESERVE: &str = "reserve";

/// Create the reserve file with real (not sparse) blocks if it is missing or short.
fn ensure_reserve(path: &Path, size: u64) -> std::io::Result<()> {
    use std::io::Write;
    if size == 0 || std::fs::metadata(path).is_ok_and(|m| m.len() >= size) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        // Allocate real blocks without writing them (instant on ext4, xfs, tmpfs); write
        // zeros where the file system cannot.
        let len = libc::off_t::try_from(size).unwrap_or(libc::off_t::MAX);
        // SAFETY: plain syscall on a file descriptor we own; no memory is passed.
        let allocated =
            unsafe { libc::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(&f), 0, len) };
        match allocated {
            0 => {}
            libc::ENOSPC => return Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            _ => {
                let chunk = vec![0u8; 64 << 10];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    f.write_all(&chunk[..n])?;
                    left -= n as u64;
                }
            }
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `(pack, offset, len)` of a stored (non-identity) block.
pub(crate) fn locate(conn: &Connection, mh: &[u8]) -> Result<Option<(i64, u64, u64)>> {
    Ok(conn
        .prepare_cached("SELECT pack, offset, len FROM blocks WHERE mh = ?1 AND pack IS NOT NULL")?
        .query_row(params![mh], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })
        .optional()?)
}
