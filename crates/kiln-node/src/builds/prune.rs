//! Pruning the build history (`kiln builds prune`): old builds leave the history, and the
//! records, logs and cache directories only they named lose the pin kiln kept for them, so
//! the next `kiln gc` frees their blocks. What another owner pins (a user's pin of an
//! output, a schedule's source) is untouched.

use crate::journal::{self, action};
use crate::{Caller, Error, ErrorKind, Result};
use kiln_build::index::{Index, PruneRule};
use kiln_build::owners;
use kiln_build::record::SignedRecord;
use kiln_core::Cid;
use kiln_store::Store;
use kiln_wire::{PruneRequest, PruneView};
use std::collections::HashSet;
use std::time::Duration;

/// The rule a request asks for, checked: at least one of `keep` and `older_than_s`.
pub fn rule_of(req: &PruneRequest, now_ms: u64) -> Result<PruneRule> {
    if req.keep.is_none() && req.older_than_s.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "say which builds to prune: keep the newest N, or those older than a duration",
        ));
    }
    let before_ms = req.older_than_s.map(|s| {
        let age = Duration::from_secs(s).as_millis();
        now_ms.saturating_sub(u64::try_from(age).unwrap_or(u64::MAX))
    });
    Ok(PruneRule {
        keep: req.keep,
        before_ms,
    })
}

/// How a rule reads in messages and the journal: `keep 10, older than 30 days`.
pub fn describe(req: &PruneRequest) -> String {
    let mut parts = Vec::new();
    if let Some(k) = req.keep {
        parts.push(format!("keep {k}"));
    }
    if let Some(s) = req.older_than_s {
        parts.push(format!("older than {}", age(s)));
    }
    parts.join(", ")
}

fn age(s: u64) -> String {
    match s {
        s if s % 86_400 == 0 && s > 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn build_err(e: kiln_build::Error) -> Error {
    Error::internal(e.to_string())
}

/// The cache directories `record` names (none if it is not a readable record).
fn caches_of(store: &Store, record: &Cid) -> Vec<Cid> {
    match store.get(record) {
        Ok(Some(bytes)) => match SignedRecord::decode(&bytes) {
            Ok(s) => s.record.caches.into_values().collect(),
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Prune the build history as `req` says (the local administrator only): the builds
/// removed, the records and logs released, the cached results forgotten. Running builds
/// are never pruned. Safe to repeat after a crash: pins are released before the history
/// forgets the builds, so an interrupted prune leaves builds whose records are merely
/// unpinned (a later build of them runs again), which the next prune removes.
pub fn prune(
    store: &Store,
    index: &Index,
    caller: &Caller,
    req: &PruneRequest,
) -> Result<PruneView> {
    let what = describe(req);
    crate::auth::authorize(caller, crate::auth::Op::Admin, crate::users::ALL)?;
    let done = (|| {
        let rule = rule_of(req, kiln_build::record::now_ms())?;
        let plan = index.prune_plan(&rule).map_err(build_err)?;
        // The cache directories only released records name: their entries go too (the
        // next build of those steps starts without them rather than from a tree GC took).
        let released: HashSet<Cid> = plan.released.iter().copied().collect();
        let mut caches: HashSet<Cid> = plan
            .released
            .iter()
            .flat_map(|r| caches_of(store, r))
            .collect();
        if !caches.is_empty() {
            for r in plan.kept_records.iter().filter(|r| !released.contains(r)) {
                for c in caches_of(store, r) {
                    caches.remove(&c);
                }
            }
        }
        let build = owners::build();
        let mut unpinned = 0u64;
        for c in &plan.released {
            match store.pin_rm(c, &build) {
                Ok(_) => unpinned += 1,
                Err(kiln_store::Error::NotPinned(_) | kiln_store::Error::NotPinnedBy { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let caches: Vec<Cid> = caches.into_iter().collect();
        let (builds, forgotten) = index.prune_rows(&plan, &caches).map_err(build_err)?;
        Ok(PruneView {
            builds,
            released: unpinned,
            forgotten,
        })
    })();
    match done {
        Ok(v) => {
            let detail = format!(
                "{}: {} builds removed, {} records and logs released, {} cached results forgotten",
                what, v.builds, v.released, v.forgotten
            );
            journal::record(
                store,
                &journal::entry(caller, action::BUILDS_PRUNE, "history").detail(detail),
            );
            Ok(v)
        }
        Err(e) => Err(journal::failed(
            store,
            caller,
            action::BUILDS_PRUNE,
            "history",
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Caller;
    use kiln_store::StoreOptions;

    #[test]
    fn only_the_administrator_prunes_and_a_rule_is_required() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let index = Index::open(&dir.path().join("index.db")).unwrap();
        let c =
            |s: &str| kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, s.as_bytes());
        let b = index.begin(&c("a"), "s", "o", 1).unwrap();
        index.finish(b, "ok", Some(&c("r")), None, 2).unwrap();
        let all = PruneRequest {
            keep: Some(0),
            older_than_s: None,
        };
        let e = prune(&store, &index, &Caller::schedule(3), &all).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        let local = Caller::local(crate::Via::Cli);
        let e = prune(&store, &index, &local, &PruneRequest::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(index.recent(10).unwrap().len(), 1, "nothing removed");
        // The failed prune is in the journal; the refused caller left no trace (a refusal
        // changes nothing).
        let events = store.events(&Default::default()).unwrap();
        let refused: Vec<_> = events
            .iter()
            .filter(|e| e.entry.action == action::BUILDS_PRUNE && !e.entry.ok)
            .collect();
        assert_eq!(refused.len(), 1);
        // The record was never pinned: released nonetheless, not counted.
        let done = prune(&store, &index, &local, &all).unwrap();
        assert_eq!((done.builds, done.released, done.forgotten), (1, 0, 0));
        assert_eq!(
            describe(&PruneRequest {
                keep: Some(2),
                older_than_s: Some(86_400 * 30)
            }),
            "keep 2, older than 30d"
        );
    }
}
