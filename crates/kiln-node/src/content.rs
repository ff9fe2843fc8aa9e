//! Content: writing what an add or an import brought in, reading it back (files, directory
//! listings, blocks: reads change nothing, so they are authorized and not recorded), and
//! garbage collection.

use crate::auth::{DEFAULT_NAMESPACE, Op, authorize};
use crate::journal::{self, action};
use crate::{Caller, Error, Result};
use kiln_core::Cid;
use kiln_core::export::{self, Node};
use kiln_store::{GcReport, NewPin, RepoStat, Session, Store, VerifyReport};
use std::time::Duration;

/// May `caller` add content? Doors that stream a body ask first, before reading it.
pub fn may_add(caller: &Caller) -> Result<()> {
    authorize(caller, Op::Add, DEFAULT_NAMESPACE)
}

/// May `caller` collect garbage? Doors that stream the collection ask first.
pub fn may_gc(caller: &Caller) -> Result<()> {
    authorize(caller, Op::Admin, crate::users::ALL)
}

/// May `caller` remove blocks? `block rm` asks first: it answers per block.
pub fn may_remove_blocks(caller: &Caller) -> Result<()> {
    authorize(caller, Op::Admin, crate::users::ALL)
}

/// What `path` (`CID[/path…]`) names, for `caller` (a read).
pub fn resolve(store: &Store, caller: &Caller, path: &str) -> Result<Cid> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    crate::pins::resolve(store, path)
}

/// A write session for `caller`'s add or import.
pub fn session(store: &Store, caller: &Caller) -> Result<Session> {
    authorize(caller, Op::Add, DEFAULT_NAMESPACE)?;
    Ok(store.session()?)
}

/// End an add or an import (`action`, one of [`action::ADD`], [`action::IMPORT`],
/// [`action::BLOCK_PUT`]): its blocks, the pins of its `roots` (with `pin`, if any) and
/// one journal entry per root, all in one transaction.
pub fn commit(
    mut session: Session,
    caller: &Caller,
    action: &str,
    roots: &[Cid],
    pin: Option<&NewPin>,
) -> Result<()> {
    let limit = match pin {
        Some(_) => crate::quotas::pin_limit(session.store(), caller)?,
        None => None,
    };
    for r in roots {
        if let Some(p) = pin {
            session.pin(r, p.clone().within(limit));
        }
        let detail = if pin.is_some() {
            "pinned"
        } else {
            "not pinned"
        };
        session.record(journal::entry(caller, action, r.to_string()).detail(detail));
    }
    Ok(session.commit()?)
}

/// The action an import whose roots get `pin` is recorded as: a root file system's import
/// (pinned for [`kiln_build::owners::ROOTFS`]) or a plain one.
pub fn import_action(pin: &NewPin) -> &'static str {
    if pin.owner.as_str() == kiln_build::owners::ROOTFS {
        action::ROOTFS_IMPORT
    } else {
        action::IMPORT
    }
}

/// What a GC run did: the store's collection, then the builds directory's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcDone {
    /// Blocks and packs.
    pub store: GcReport,
    /// Directories the builds kept beside the store (`builds/content`, `builds/git`).
    pub build_dirs: kiln_build::hold::Collected,
}

/// One line about a GC run.
pub fn gc_summary(r: &GcDone) -> String {
    let mut line = format!(
        "{} blocks removed, {} bytes freed",
        r.store.blocks_removed, r.store.bytes_freed
    );
    if r.build_dirs.total() > 0 {
        line.push_str(&format!(
            ", {} build directories removed",
            r.build_dirs.total()
        ));
    }
    line
}

/// Collect garbage for `caller`, calling `on_removed` for each block as it goes; then the
/// builds directory beside the store (`builds/`: content written out for the sandbox that
/// the store no longer has, git checkouts and fetch caches no plan holds); then prune the
/// journal's events older than `keep_events`. The run is recorded.
pub fn gc(
    store: &Store,
    caller: &Caller,
    keep_events: Duration,
    on_removed: &mut dyn FnMut(&Cid),
) -> Result<GcDone> {
    authorize(caller, Op::Admin, crate::users::ALL)?;
    let done = (|| {
        let report = store.gc_reporting(on_removed)?;
        let builds = store.root().join("builds");
        let build_dirs = kiln_build::hold::collect(&builds, store)
            .map_err(|e| Error::internal(e.to_string()))?;
        Ok(GcDone {
            store: report,
            build_dirs,
        })
    })();
    match done {
        Ok(done) => {
            journal::record(
                store,
                &journal::entry(caller, action::GC, "").detail(gc_summary(&done)),
            );
            if let Err(e) = journal::prune(store, keep_events) {
                tracing::warn!("pruning the event journal failed: {e}");
            }
            Ok(done)
        }
        Err(e) => Err(journal::failed(store, caller, action::GC, "", e)),
    }
}

/// The repository's counts and sizes, for `caller`.
pub fn stat(store: &Store, caller: &Caller) -> Result<RepoStat> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    Ok(store.stat()?)
}

/// Read every block back and check it against its CID, and every pin's DAG for absent
/// blocks, for `caller` (read only: nothing is recorded).
pub fn verify(store: &Store, caller: &Caller) -> Result<VerifyReport> {
    authorize(caller, Op::Admin, crate::users::ALL)?;
    Ok(store.verify()?)
}

/// Remove block `cid` for `caller` (`block rm`): whether it was removed; with `force`, a
/// block that is not there is no error (`Ok(false)`, nothing recorded). A pinned block is
/// refused. The removal, or the failure, is recorded.
pub fn remove_block(store: &Store, caller: &Caller, cid: &Cid, force: bool) -> Result<bool> {
    authorize(caller, Op::Admin, crate::users::ALL)?;
    match store.remove_block(cid) {
        Ok(()) => {
            journal::record(
                store,
                &journal::entry(caller, action::BLOCK_RM, cid.to_string()),
            );
            Ok(true)
        }
        Err(kiln_store::Error::NotFound(_)) if force => Ok(false),
        Err(e) => Err(journal::failed(
            store,
            caller,
            action::BLOCK_RM,
            &cid.to_string(),
            e.into(),
        )),
    }
}

/// The file `path` (`CID[/path…]`) names, for `caller`: an error if it names a directory
/// or a symlink (`cat` reads files only).
pub fn file(store: &Store, caller: &Caller, path: &str) -> Result<Cid> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    let cid = crate::pins::resolve(store, path)?;
    match export::stat(store, &cid)? {
        Node::File { .. } => Ok(cid),
        other => Err(kiln_core::Error::WrongType {
            cid,
            expected: "file",
            actual: other.kind(),
        }
        .into()),
    }
}

/// Write `length` bytes (all, if `None`) of file `cid` from `offset` to `out`, for
/// `caller`: the bytes written.
pub fn read_file(
    store: &Store,
    caller: &Caller,
    cid: &Cid,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn std::io::Write,
) -> Result<u64> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    Ok(export::read_file(store, cid, offset, length, out)?)
}

/// The entries of directory `cid`, for `caller` (each child described by [`child`]).
pub fn list(store: &Store, caller: &Caller, cid: &Cid) -> Result<Vec<export::Entry>> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    Ok(export::list(store, cid)?)
}

/// What a directory entry's child is, or `None` when its block is not in the store (a
/// listing shows it from the parent's link alone).
pub fn child(store: &Store, caller: &Caller, entry: &export::Entry) -> Result<Option<Node>> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    match export::stat(store, &entry.cid) {
        Ok(node) => Ok(Some(node)),
        Err(kiln_core::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Block `cid`'s bytes, for `caller`; not found if it is not stored.
pub fn block(store: &Store, caller: &Caller, cid: &Cid) -> Result<Vec<u8>> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    store
        .get(cid)?
        .ok_or_else(|| Error::not_found(format!("block {cid} not found")))
}

/// The content `caller` may read, as a block source: what the gateway serves from (files,
/// directories, blocks and CARs are all read through it). Reading changes nothing, so the
/// caller is authorized once, when the reader is made, and nothing is recorded; a reader
/// adds no work per block.
#[derive(Clone)]
pub struct Reader {
    store: Store,
}

/// A reader of the content `caller` may read.
pub fn reader(store: &Store, caller: &Caller) -> Result<Reader> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    Ok(Reader {
        store: store.clone(),
    })
}

impl Reader {
    /// Block `cid` if it is in memory, without reading the disk.
    pub fn get_cached(&self, cid: &Cid) -> Option<Vec<u8>> {
        self.store.get_cached(cid)
    }

    /// Is block `cid` stored here?
    pub fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self.store.has(cid)?)
    }

    /// Block `cid`'s size, if it is stored (without reading it).
    pub fn size(&self, cid: &Cid) -> Result<Option<u64>> {
        Ok(self.store.size(cid)?)
    }
}

impl kiln_core::BlockSource for Reader {
    #[inline]
    fn get(&self, cid: &Cid) -> kiln_core::Result<Option<Vec<u8>>> {
        kiln_core::BlockSource::get(&self.store, cid)
    }
}

/// Block `cid`'s size in bytes, for `caller`; not found if it is not stored.
pub fn block_size(store: &Store, caller: &Caller, cid: &Cid) -> Result<u64> {
    authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
    store
        .size(cid)?
        .ok_or_else(|| Error::not_found(format!("block {cid} not found")))
}
