//! `Store::verify`: re-hash every block, walk every pinned DAG.

use std::collections::HashSet;

use rusqlite::params;
use sha2::{Digest, Sha256};

use crate::dag::IdSet;
use crate::db::{self, BlockRow, IDENTITY, SHA2_256};
use crate::store::locate;
use crate::{Error, MissingBlock, PinMode, Result, Store, VerifyReport, pins};

const PAGE: i64 = 2_000;

pub(crate) fn run(store: &Store) -> Result<VerifyReport> {
    let inner = &store.inner;
    let mut report = VerifyReport::default();
    let conn = inner.conn()?;

    // 1. Every stored block, in id order (roughly pack order), page by page so no long read
    // transaction holds back other writers' checkpoints.
    let mut last = 0i64;
    loop {
        let rows: Vec<BlockRow> = conn
            .prepare_cached(&format!(
                "SELECT {} FROM blocks WHERE id > ?1 AND pack IS NOT NULL ORDER BY id LIMIT ?2",
                BlockRow::COLUMNS
            ))?
            .query_map(params![last, PAGE], BlockRow::from_row)?
            .collect::<rusqlite::Result<_>>()?;
        let Some(max) = rows.last().map(|r| r.id) else {
            break;
        };
        last = max;
        for row in rows {
            let cid = row.cid()?;
            let BlockRow {
                mh,
                pack,
                offset,
                len,
                ..
            } = row;
            if cid.hash().code() != SHA2_256 {
                report.unsupported.push(cid);
                continue;
            }
            let mut at = Some((pack, offset as u64, len as u64));
            let mut data = None;
            for _ in 0..3 {
                let Some((pack, offset, len)) = at else { break };
                match inner.packs.read(pack, offset, len) {
                    Ok(Some(d)) => {
                        data = Some(Ok(d));
                        break;
                    }
                    // Moved or removed by a concurrent GC: look again.
                    Ok(None) => at = locate(&conn, &mh)?,
                    Err(e @ Error::Corrupt(_)) => {
                        data = Some(Err(e));
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            match data {
                Some(Ok(d)) => {
                    if Sha256::digest(&d).as_slice() == cid.hash().digest() {
                        report.blocks_ok += 1;
                        report.bytes_checked += d.len() as u64;
                    } else {
                        report.corrupt.push(cid);
                    }
                }
                Some(Err(_)) => report.corrupt.push(cid),
                None if at.is_none() => {} // deleted by GC meanwhile
                None => report.corrupt.push(cid),
            }
        }
    }

    // 2. Every pinned DAG, in one snapshot.
    let mut conn = conn;
    let tx = conn.transaction()?;
    let mut seen = IdSet::default();
    let mut reported = HashSet::new();
    for (pin, mode) in pins::all_pins(&tx)? {
        let mut stack = vec![(pin, true)];
        while let Some((cid, is_root)) = stack.pop() {
            let mh = cid.hash().to_bytes();
            let Some(node) = db::lookup_node(&tx, &mh)? else {
                if cid.hash().code() != IDENTITY && reported.insert((cid, pin)) {
                    report.missing.push(MissingBlock { cid, pin });
                }
                continue;
            };
            // A direct pin needs only its root; it must not mark the root as walked.
            if (mode == PinMode::Direct && is_root) || !seen.insert(node.id) {
                continue;
            }
            if node.nlinks > 0 {
                for (ver, codec, mh) in db::child_parts(&tx, node.id)? {
                    let child = db::cid_from_parts(ver, codec, &mh)?;
                    stack.push((child, false));
                }
            }
        }
    }
    Ok(report)
}
