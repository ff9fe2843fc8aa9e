//! Garbage collection: mark from pins and live sessions, sweep in small transactions, then
//! delete or compact pack files. See DESIGN.md for why this is safe with concurrent writers.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;

use cid::Cid;
use rusqlite::params;

use crate::dag::{self, IdSet, OnMissing};
use crate::db::{self, BlockRow};
use crate::lock::{self, LockFile};
use crate::pack::{self, PackWriter, RECORD_HEADER};
use crate::session::new_pack;
use crate::store::Inner;
use crate::{Error, GcReport, PinMode, Result, pins};

/// Blocks deleted per sweep transaction (keeps the write lock short for concurrent adds).
const SWEEP_CHUNK: usize = 100_000;
/// Unlocked `*.pack.tmp` files older than this are leftovers of a crash.
const TEMP_PACK_AGE: std::time::Duration = std::time::Duration::from_secs(600);
/// Packs smaller than this are merged when there are several.
const SMALL_PACK: u64 = 64 << 20;

/// `on_removed` is called with each removed block's CID once its removal is committed, when
/// `report_removed` is set.
pub(crate) fn run(
    inner: &Inner,
    on_removed: &mut dyn FnMut(&Cid),
    report_removed: bool,
) -> Result<GcReport> {
    // One GC at a time (per repository, across processes).
    let _gc_lock = LockFile::acquire(&inner.locks_dir.join("gc"))?;
    let mut report = GcReport::default();
    let mut conn = inner.conn()?;
    // A larger page cache while GC runs (the sweep touches index pages all over the file);
    // restored before the connection goes back to the pool.
    conn.execute_batch("PRAGMA cache_size=-131072")?;
    let result = run_with(inner, &mut conn, &mut report, on_removed, report_removed);
    conn.execute_batch("PRAGMA cache_size=-8192")?;
    result?;
    Ok(report)
}

fn run_with(
    inner: &Inner,
    conn: &mut rusqlite::Connection,
    report: &mut GcReport,
    on_removed: &mut dyn FnMut(&Cid),
    report_removed: bool,
) -> Result<()> {
    // 1. New epoch; forget dead sessions; blocks touched at or after `threshold` are protected.
    // (No fsync needed: see `db::light_write`; a lost bump only repeats an epoch no
    // surviving session can have started in.)
    let locks_dir = inner.locks_dir.clone();
    let (threshold, pin_seq) = db::light_write(conn, |tx| {
        let st = db::state(tx)?;
        let epoch = st.epoch + 1;
        tx.execute("UPDATE state SET epoch = ?1 WHERE id = 1", params![epoch])?;
        let sessions: Vec<(String, i64)> = tx
            .prepare("SELECT id, start_epoch FROM sessions")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut threshold = epoch;
        for (id, start) in sessions {
            if lock::session_alive(&locks_dir, &id)? {
                threshold = threshold.min(start);
            } else {
                tx.execute("DELETE FROM sessions WHERE id = ?1", params![id])?;
                tx.execute(
                    "UPDATE packs SET sealed = 1 WHERE session = ?1",
                    params![id],
                )?;
            }
        }
        Ok((threshold, st.pin_seq))
    })?;

    // 2. Mark, in one read snapshot.
    let mut marked;
    let mut direct;
    let candidates: Vec<i64>;
    {
        let tx = conn.transaction()?;
        let max_id: i64 =
            tx.query_row("SELECT coalesce(max(id), 0) FROM blocks", [], |r| r.get(0))?;
        marked = IdSet::with_max(max_id);
        direct = IdSet::default();

        // Adjacency (parent -> child ids), parents sorted, as flat arrays.
        let mut parents: Vec<i64> = Vec::new();
        let mut starts: Vec<usize> = Vec::new();
        let mut children: Vec<i64> = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT l.parent, b.id FROM links AS l JOIN blocks AS b ON b.mh = l.mh
                 ORDER BY l.parent",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (p, c): (i64, i64) = (row.get(0)?, row.get(1)?);
                if parents.last() != Some(&p) {
                    parents.push(p);
                    starts.push(children.len());
                }
                children.push(c);
            }
            starts.push(children.len());
        }

        let mut stack: Vec<i64> = Vec::new();
        for (cid, mode) in pins::all_pins(&tx)? {
            if let Some(node) = db::lookup_node(&tx, &cid.hash().to_bytes())? {
                match mode {
                    PinMode::Recursive => stack.push(node.id),
                    PinMode::Direct => {
                        direct.insert(node.id);
                    }
                }
            }
        }
        {
            let mut stmt = tx.prepare("SELECT id FROM blocks WHERE touched >= ?1")?;
            let ids = stmt.query_map(params![threshold], |r| r.get::<_, i64>(0))?;
            for id in ids {
                stack.push(id?);
            }
        }
        while let Some(id) = stack.pop() {
            if marked.insert(id)
                && let Ok(i) = parents.binary_search(&id)
            {
                stack.extend_from_slice(&children[starts[i]..starts[i + 1]]);
            }
        }
        drop((parents, starts, children));

        let mut stmt = tx.prepare("SELECT id, touched FROM blocks")?;
        let mut rows = stmt.query([])?;
        let mut c = Vec::new();
        while let Some(row) = rows.next()? {
            let (id, touched): (i64, i64) = (row.get(0)?, row.get(1)?);
            if touched < threshold && !marked.contains(id) && !direct.contains(id) {
                c.push(id);
            }
        }
        candidates = c;
    }

    // 3. Sweep in short write transactions. Each first marks the DAGs of pins committed since
    // the snapshot (they may reference old, unmarked blocks), then deletes.
    let mut last_seq = pin_seq;
    let mut chunks = candidates.chunks(SWEEP_CHUNK);
    loop {
        let chunk = chunks.next();
        let tx = db::write_tx(conn)?;
        let new_pins: Vec<(Vec<u8>, i64, i64)> = tx
            .prepare_cached("SELECT cid, mode, seq FROM pins WHERE seq > ?1 ORDER BY seq")?
            .query_map(params![last_seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (cid, mode, seq) in new_pins {
            let cid = db::cid_from_bytes(&cid)?;
            match pins::mode_from_int(mode)? {
                PinMode::Recursive => {
                    dag::walk(&tx, &cid, true, &mut marked, OnMissing::Skip, |_| false)?;
                }
                PinMode::Direct => {
                    if let Some(node) = db::lookup_node(&tx, &cid.hash().to_bytes())? {
                        direct.insert(node.id);
                    }
                }
            }
            last_seq = last_seq.max(seq);
        }
        let Some(chunk) = chunk else {
            tx.commit()?;
            break;
        };
        let mut deleted = 0u64;
        let mut removed = Vec::new();
        {
            let mut del = tx.prepare_cached(
                "DELETE FROM blocks WHERE id = ?1 AND touched < ?2 RETURNING len, nlinks, ver, codec, mh",
            )?;
            let mut del_links = tx.prepare_cached("DELETE FROM links WHERE parent = ?1")?;
            for &id in chunk {
                if marked.contains(id) || direct.contains(id) {
                    continue;
                }
                let mut rows = del.query(params![id, threshold])?;
                if let Some(row) = rows.next()? {
                    let (len, nlinks): (i64, i64) = (row.get(0)?, row.get(1)?);
                    if report_removed {
                        let (ver, codec, mh): (i64, i64, Vec<u8>) =
                            (row.get(2)?, row.get(3)?, row.get(4)?);
                        removed.push(db::cid_from_parts(ver, codec, &mh)?);
                    }
                    drop(rows);
                    if nlinks > 0 {
                        del_links.execute(params![id])?;
                    }
                    deleted += 1;
                    report.blocks_removed += 1;
                    report.bytes_freed += len.max(0) as u64;
                }
            }
        }
        if deleted > 0 {
            db::bump_del_seq(&tx)?;
        }
        tx.commit()?;
        if deleted > 0 {
            inner.deleted_blocks();
        }
        for c in &removed {
            on_removed(c);
        }
    }

    // 4. Reclaim pack space.
    reclaim(inner, conn, report)?;
    Ok(())
}

/// Delete packs with no live block; copy the live blocks out of mostly-dead or small packs.
fn reclaim(inner: &Inner, conn: &mut rusqlite::Connection, report: &mut GcReport) -> Result<()> {
    // One snapshot, so that every pack row of a registered session is in `active`.
    let snapshot = conn.transaction()?;
    let live: HashMap<i64, (u64, u64)> = snapshot
        .prepare(
            "SELECT pack, count(*), sum(len) FROM blocks WHERE pack IS NOT NULL GROUP BY pack",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    // Packs being written by a registered session are never touched (the pack lock would also
    // refuse, except in the instant between creating the file and locking it).
    let active: HashSet<i64> = snapshot
        .prepare(
            "SELECT p.id FROM packs AS p JOIN sessions AS s ON s.id = p.session
             WHERE p.sealed = 0",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let known: HashSet<i64> = snapshot
        .prepare("SELECT id FROM packs")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    drop(snapshot);

    let dir = &inner.packs_dir;
    let mut on_disk: Vec<i64> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = pack::pack_id_from_name(name) {
            on_disk.push(id);
        } else if pack::is_temp_name(name) {
            // A pack whose creator died before renaming it. Its creator locks it right after
            // creating it, so only an unlocked file that is also not brand new is abandoned.
            let path = entry.path();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > TEMP_PACK_AGE);
            if old && let Some(_locked) = lock::try_lock_existing(&path)? {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    on_disk.sort_unstable();

    let mut to_rewrite = Vec::new();
    let mut small = Vec::new();
    for &id in &on_disk {
        if active.contains(&id) {
            continue;
        }
        let path = pack::pack_path(dir, id);
        let Some(file) = lock::try_lock_existing(&path)? else {
            continue;
        };
        let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        match live.get(&id) {
            None => {
                if delete_pack(inner, conn, id)? {
                    report.packs_deleted += 1;
                    report.disk_bytes_reclaimed += size;
                }
            }
            Some(&(count, bytes)) => {
                let used = pack::HEADER_LEN + bytes + count * (RECORD_HEADER + 40);
                if used * 2 < size {
                    to_rewrite.push((id, file, size));
                } else if size < SMALL_PACK.min(inner.opts.max_pack_size / 4) {
                    small.push((id, file, size));
                }
            }
        }
    }
    // Merge small packs only when there are several, and at most one pack's worth per run.
    if small.len() >= 2 {
        let mut budget = inner.opts.max_pack_size;
        for entry in small {
            if entry.2 > budget {
                break;
            }
            budget -= entry.2;
            to_rewrite.push(entry);
        }
    }
    // Pack rows whose file never appeared (crash between allocation and creation).
    let disk: HashSet<i64> = on_disk.iter().copied().collect();
    for id in known {
        if !disk.contains(&id) && !active.contains(&id) && !live.contains_key(&id) {
            conn.execute("DELETE FROM packs WHERE id = ?1", params![id])?;
        }
    }
    if to_rewrite.is_empty() {
        return Ok(());
    }

    let mut out: Option<PackWriter> = None;
    let mut written = 0u64;
    let mut freed = 0u64;
    let mut result = Ok(());
    for (id, file, size) in to_rewrite {
        // Compaction copies a pack's live records before it can delete the pack: only what
        // fits in the free space, leaving room for the reserve file and the index, so a GC
        // on a full disk never fills it (it only deletes).
        let live_bytes = live
            .get(&id)
            .map_or(0, |&(count, bytes)| bytes + count * (RECORD_HEADER + 40));
        let room = free_bytes(&inner.packs_dir).unwrap_or(0);
        if live_bytes.saturating_add(inner.opts.reserve_bytes + SPARE) > room {
            report.packs_skipped += 1;
            continue;
        }
        match rewrite_pack(inner, conn, id, &file, &mut out) {
            Ok((deleted, bytes)) => {
                written += bytes;
                if deleted {
                    report.packs_rewritten += 1;
                    freed += size;
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if let Some(mut w) = out.take() {
        let id = w.id();
        let sealed = w.sync().and_then(|()| {
            Ok(conn.execute("UPDATE packs SET sealed = 1 WHERE id = ?1", params![id])?)
        });
        if let Err(e) = sealed {
            result = result.and(Err(e));
        }
        // A copy that failed part way (a full disk) holds records no row points at: remove
        // it now rather than leave it to take the space a later GC needs.
        if result.is_err() {
            drop(w);
            let _ = delete_unreferenced_pack(inner, conn, id);
        }
    }
    report.disk_bytes_reclaimed += freed.saturating_sub(written);
    result
}

/// Space kept free beside the reserve when compacting: the index's journal and pages.
const SPARE: u64 = 4 << 20;

/// Bytes available to this process on the file system holding `dir`.
pub(crate) fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes only into the struct passed; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Delete pack `id` (GC's own output) if no row points into it.
fn delete_unreferenced_pack(inner: &Inner, conn: &mut rusqlite::Connection, id: i64) -> Result<()> {
    let tx = db::write_tx(conn)?;
    let used: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM blocks WHERE pack = ?1)")?
        .query_row(params![id], |r| r.get(0))?;
    if used {
        return Ok(());
    }
    tx.execute("DELETE FROM packs WHERE id = ?1", params![id])?;
    tx.commit()?;
    let path = pack::pack_path(&inner.packs_dir, id);
    let _ = std::fs::remove_file(&path);
    inner.packs.forget(id);
    Ok(())
}

/// Delete an (exclusively locked) pack that has no live block. Returns whether it was deleted.
fn delete_pack(inner: &Inner, conn: &mut rusqlite::Connection, id: i64) -> Result<bool> {
    let tx = db::write_tx(conn)?;
    let used: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM blocks WHERE pack = ?1)")?
        .query_row(params![id], |r| r.get(0))?;
    if used {
        return Ok(false);
    }
    tx.execute("DELETE FROM packs WHERE id = ?1", params![id])?;
    tx.commit()?;
    let path = pack::pack_path(&inner.packs_dir, id);
    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    inner.packs.forget(id);
    Ok(true)
}

/// Copy the live records of pack `id` into `out`, repoint the index, and delete `id`.
/// Returns (deleted, bytes written).
fn rewrite_pack(
    inner: &Inner,
    conn: &mut rusqlite::Connection,
    id: i64,
    file: &std::fs::File,
    out: &mut Option<PackWriter>,
) -> Result<(bool, u64)> {
    let path = pack::pack_path(&inner.packs_dir, id);
    let rows: Vec<BlockRow> = conn
        .prepare_cached(&format!(
            "SELECT {} FROM blocks WHERE pack = ?1 ORDER BY offset",
            BlockRow::COLUMNS
        ))?
        .query_map(params![id], BlockRow::from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut moves = Vec::with_capacity(rows.len());
    let mut written = 0u64;
    let mut buf = Vec::new();
    for row in rows {
        let cid = row.cid()?;
        let BlockRow {
            id: block,
            offset,
            len,
            ..
        } = row;
        buf.resize(len as usize, 0);
        file.read_exact_at(&mut buf, offset as u64)
            .map_err(|e| Error::io(&path, e))?;
        if out
            .as_ref()
            .is_some_and(|w| w.len() >= inner.opts.max_pack_size)
            && let Some(mut full) = out.take()
        {
            full.sync()?;
            conn.execute(
                "UPDATE packs SET sealed = 1 WHERE id = ?1",
                params![full.id()],
            )?;
        }
        let writer = match out {
            Some(w) => w,
            None => out.insert(new_pack(conn, &inner.packs_dir, None)?),
        };
        let cid_bytes = cid.to_bytes();
        let new_offset = writer.append(&cid_bytes, &buf)?;
        written += RECORD_HEADER + cid_bytes.len() as u64 + len as u64;
        moves.push((block, offset, writer.id(), new_offset));
    }
    // Rolled-over writers were synced above; sync the current one before repointing.
    if let Some(w) = out.as_mut() {
        w.sync()?;
    }
    let tx = db::write_tx(conn)?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE blocks SET pack = ?3, offset = ?4 WHERE id = ?1 AND pack = ?5 AND offset = ?2",
        )?;
        for (block, old, new_pack, new_off) in &moves {
            stmt.execute(params![block, old, new_pack, *new_off as i64, id])?;
        }
    }
    let used: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM blocks WHERE pack = ?1)")?
        .query_row(params![id], |r| r.get(0))?;
    if !used {
        tx.execute("DELETE FROM packs WHERE id = ?1", params![id])?;
    }
    tx.commit()?;
    if used {
        return Ok((false, written));
    }
    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    inner.packs.forget(id);
    Ok((true, written))
}
