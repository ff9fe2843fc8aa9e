//! Walking recorded DAGs through the `links` table, and a compact id set.

use cid::Cid;
use rusqlite::Connection;

use crate::db::{self, IDENTITY};
use crate::{Error, Result};

/// A growable bit set over block ids (row ids are dense, so this is far smaller than a hash set).
#[derive(Debug, Default, Clone)]
pub(crate) struct IdSet {
    words: Vec<u64>,
}

impl IdSet {
    pub fn with_max(max_id: i64) -> Self {
        let words = (max_id.max(0) as usize / 64) + 1;
        IdSet {
            words: vec![0; words],
        }
    }

    /// Insert `id`; returns true if it was not present before.
    pub fn insert(&mut self, id: i64) -> bool {
        let id = id.max(0) as usize;
        let (w, b) = (id / 64, id % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let fresh = self.words[w] & (1 << b) == 0;
        if fresh {
            self.words[w] |= 1 << b;
        }
        fresh
    }

    pub fn contains(&self, id: i64) -> bool {
        let id = id.max(0) as usize;
        self.words
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// What a walk does when a block of the DAG is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnMissing {
    /// Stop with [`Error::MissingBlock`].
    Fail,
    /// Skip the block (GC marking: an absent block needs no protection).
    Skip,
}

/// Walk the DAG under `root` (all of it if `recursive`, else only the root), adding every present
/// block id to `seen`. Blocks already in `seen` are assumed to have their whole sub-DAG in it.
/// Identity-hash CIDs are always present; their links are followed only if a row records them.
/// `stop` is checked for every newly seen id: returning true ends the walk early with `Ok(true)`.
pub(crate) fn walk(
    conn: &Connection,
    root: &Cid,
    recursive: bool,
    seen: &mut IdSet,
    on_missing: OnMissing,
    mut stop: impl FnMut(i64) -> bool,
) -> Result<bool> {
    let (_, _, root_mh) = db::cid_parts(root);
    let mut stack: Vec<(i64, i64, Vec<u8>)> = Vec::new();
    let mut current = Some((root.hash().code(), root_mh, None::<(i64, i64)>));
    loop {
        let (code, mh, parts) = match current.take() {
            Some(x) => x,
            None => match stack.pop() {
                Some((ver, codec, mh)) => {
                    let code = multihash::Multihash::<64>::from_bytes(&mh)
                        .map(|h| h.code())
                        .map_err(|e| Error::Corrupt(format!("bad multihash in links: {e}")))?;
                    (code, mh, Some((ver, codec)))
                }
                None => return Ok(false),
            },
        };
        let Some(node) = db::lookup_node(conn, &mh)? else {
            if code == IDENTITY || on_missing == OnMissing::Skip {
                continue;
            }
            let missing = match parts {
                Some((ver, codec)) => db::cid_from_parts(ver, codec, &mh)?,
                None => *root,
            };
            return Err(Error::MissingBlock {
                missing,
                root: *root,
            });
        };
        if !seen.insert(node.id) {
            continue;
        }
        if stop(node.id) {
            return Ok(true);
        }
        if recursive && node.nlinks > 0 {
            stack.extend(db::child_parts(conn, node.id)?);
        }
    }
}
