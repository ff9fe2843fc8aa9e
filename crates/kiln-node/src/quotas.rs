//! Quotas per identity: the bytes its pins hold (each block counted once, however many of
//! its pins share it) and the builds it runs at once. An admin sets them per identity or
//! for everyone (`kiln user quota`); the local administrator and kiln's own owners (builds,
//! schedules) have none. Over the pinned-bytes quota a pin is refused (403,
//! `quota_pinned_bytes`) and nothing is pinned; at the builds quota a new build is refused
//! until one ends (429 with `Retry-After`, `quota_builds`).

use crate::journal::{self, action};
use crate::{Caller, Error, ErrorKind, Result, Who};
use kiln_store::quotas::{DEFAULT, Limit, Quota};
use kiln_store::{PinOwner, Store};
use std::time::Duration;

/// When a caller at its builds quota is told to try again.
pub const BUILDS_RETRY: Duration = Duration::from_secs(10);

/// An identity's quota and what it uses of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The identity (or `*`, the default).
    pub did: String,
    /// The quota as set for it (fields it leaves unset follow the default).
    pub set: Quota,
    /// The quota that applies.
    pub effective: Quota,
    /// Bytes its pins hold now, counted once (none for the default).
    pub pinned_bytes: Option<u64>,
}

fn check_target(store: &Store, did: &str) -> Result<()> {
    if did == DEFAULT {
        return Ok(());
    }
    crate::users::check_did(did)?;
    if store.user(did)?.is_none() {
        return Err(Error::not_found(format!(
            "{did} is not a user of this node (kiln user ls)"
        )));
    }
    Ok(())
}

/// Set `did`'s quota (`*`: everyone's default) to `quota` (admin only).
pub fn set(store: &Store, caller: &Caller, did: &str, quota: Quota) -> Result<()> {
    crate::auth::authorize(caller, crate::auth::Op::Admin, crate::users::ALL)?;
    check_target(store, did)?;
    let entry = journal::entry(caller, action::QUOTA_SET, did).detail(describe(&quota));
    Ok(store.quota_set(did, quota, &entry)?)
}

/// `did`'s quota and use: an admin's for anyone, anyone else's for itself only.
pub fn usage(store: &Store, caller: &Caller, did: &str) -> Result<Usage> {
    let own = matches!(&caller.who, Who::User(id) if id.did == did);
    if !own {
        crate::auth::authorize(caller, crate::auth::Op::Admin, crate::users::ALL)?;
    }
    check_target(store, did)?;
    let set = store
        .quotas()?
        .into_iter()
        .find(|(d, _)| d == did)
        .map(|(_, q)| q)
        .unwrap_or_default();
    let pinned_bytes = if did == DEFAULT {
        None
    } else {
        let owner = PinOwner::new(did).map_err(|e| Error::invalid(e.to_string()))?;
        Some(store.pinned_bytes(&owner)?)
    };
    Ok(Usage {
        did: did.to_string(),
        set,
        effective: store.quota(did)?,
        pinned_bytes,
    })
}

/// The most bytes `caller`'s pins may hold, if it has a quota.
pub fn pin_limit(store: &Store, caller: &Caller) -> Result<Option<u64>> {
    match &caller.who {
        Who::User(id) => Ok(store.quota(&id.did)?.pinned_bytes.max()),
        _ => Ok(None),
    }
}

/// The most builds `caller` may run at once, if limited.
pub fn build_limit(store: &Store, caller: &Caller) -> Result<Option<u64>> {
    match &caller.who {
        Who::User(id) => Ok(store.quota(&id.did)?.builds.max()),
        _ => Ok(None),
    }
}

/// Whether `caller` may start one more build while `running` of its own run or start, at
/// most `max` (429 with `Retry-After` at its quota).
pub fn may_start_build(caller: &Caller, max: Option<u64>, running: usize) -> Result<()> {
    let Some(max) = max else {
        return Ok(());
    };
    if running as u64 >= max {
        return Err(Error::new(
            ErrorKind::Quota,
            format!(
                "{} runs {running} builds, its quota; try again when one ends",
                caller.who
            ),
        )
        .because(crate::auth::reason::QUOTA_BUILDS)
        .retry_after(BUILDS_RETRY));
    }
    Ok(())
}

/// A limit as people read it.
pub fn limit_text(l: Limit, bytes: bool) -> String {
    match l {
        Limit::Inherit => "default".into(),
        Limit::Unlimited => "none".into(),
        Limit::Max(n) if bytes => kiln_wire::human_bytes(n),
        Limit::Max(n) => n.to_string(),
    }
}

/// A quota as the journal and people read it.
pub fn describe(q: &Quota) -> String {
    format!(
        "pinned bytes {}, builds {}",
        limit_text(q.pinned_bytes, true),
        limit_text(q.builds, false)
    )
}
