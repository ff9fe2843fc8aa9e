//! Content: writing what an add or an import brought in, and garbage collection.

use crate::journal::{self, action};
use crate::{Caller, Result};
use kiln_core::Cid;
use kiln_store::{GcReport, NewPin, Session, Store};
use std::time::Duration;

/// A write session for `caller`'s add or import.
pub fn session(store: &Store, _caller: &Caller) -> Result<Session> {
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
    for r in roots {
        if let Some(p) = pin {
            session.pin(r, p.clone());
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

/// One line about a GC run.
pub fn gc_summary(r: &GcReport) -> String {
    format!(
        "{} blocks removed, {} bytes freed",
        r.blocks_removed, r.bytes_freed
    )
}

/// Collect garbage for `caller`, calling `on_removed` for each block as it goes; then
/// prune the journal's events older than `keep_events`. The run is recorded.
pub fn gc(
    store: &Store,
    caller: &Caller,
    keep_events: Duration,
    on_removed: &mut dyn FnMut(&Cid),
) -> Result<GcReport> {
    match store.gc_reporting(on_removed) {
        Ok(report) => {
            journal::record(
                store,
                &journal::entry(caller, action::GC, "").detail(gc_summary(&report)),
            );
            if let Err(e) = journal::prune(store, keep_events) {
                tracing::warn!("pruning the event journal failed: {e}");
            }
            Ok(report)
        }
        Err(e) => Err(journal::failed(store, caller, action::GC, "", e.into())),
    }
}
