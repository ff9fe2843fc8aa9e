//! The event journal, seen from the node: every change a use case makes is recorded with
//! who asked ([`Caller`]), through what, when, its target and its outcome. Changes that
//! live in the store record their entry in their own transaction; the others (a GC run, a
//! build, a schedule) right after they end.

use crate::{Caller, Result};
use kiln_store::Store;
use kiln_store::journal::{Entry, Event, Query};
use std::time::{Duration, SystemTime};

/// How long events are kept when nothing else is configured: 90 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// What a use case did, recorded as `action`.
pub mod action {
    /// Content added (one event per root).
    pub const ADD: &str = "add";
    /// Blocks imported from CAR files (one event per root).
    pub const IMPORT: &str = "import";
    /// Raw blocks written (`block put`).
    pub const BLOCK_PUT: &str = "block put";
    /// A block removed (`block rm`).
    pub const BLOCK_RM: &str = "block rm";
    /// A pin added or updated.
    pub const PIN: &str = "pin";
    /// Pins removed.
    pub const UNPIN: &str = "unpin";
    /// A pin request made or replaced through the Pinning Service API.
    pub const PIN_REQUEST: &str = "pin request";
    /// A pin request removed.
    pub const PIN_REQUEST_RM: &str = "pin request rm";
    /// Garbage collection.
    pub const GC: &str = "gc";
    /// A root file system imported.
    pub const ROOTFS_IMPORT: &str = "rootfs import";
    /// A build started.
    pub const BUILD_STARTED: &str = "build started";
    /// A build ended (its outcome says how).
    pub const BUILD_FINISHED: &str = "build finished";
    /// A build was asked to stop.
    pub const BUILD_CANCEL: &str = "build cancel";
    /// Old builds removed from the history.
    pub const BUILDS_PRUNE: &str = "builds prune";
    /// A token issued.
    pub const TOKEN_CREATE: &str = "token create";
    /// A token revoked.
    pub const TOKEN_REVOKE: &str = "token revoke";
    /// A schedule registered.
    pub const SCHEDULE_REGISTERED: &str = "schedule registered";
    /// A schedule removed.
    pub const SCHEDULE_REMOVED: &str = "schedule removed";
    /// A schedule looked at its source (and built if it changed).
    pub const SCHEDULE_CHECKED: &str = "schedule checked";
    /// A user added to the node.
    pub const USER_ADD: &str = "user add";
    /// An invite made.
    pub const INVITE_CREATE: &str = "invite create";
    /// An invite used: an identity joined.
    pub const INVITE_USE: &str = "invite use";
    /// A user removed.
    pub const USER_RM: &str = "user rm";
    /// A quota set for an identity (or the default, `*`).
    pub const QUOTA_SET: &str = "quota set";
    /// A role given to a user in a namespace.
    pub const ROLE_GRANT: &str = "role grant";
    /// A user's role in a namespace taken away.
    pub const ROLE_REVOKE: &str = "role revoke";
}

/// The entry for `caller` doing `action` to `target`, successful until told otherwise.
pub fn entry(caller: &Caller, action: &str, target: impl Into<String>) -> Entry {
    Entry::ok(
        caller.owner().as_str(),
        caller.via.as_str(),
        action,
        target.into(),
    )
}

/// Record `entry` on its own (a change outside the store, or one that failed). A journal
/// that cannot be written is logged, never the caller's failure: the change itself is done.
pub fn record(store: &Store, entry: &Entry) {
    if let Err(e) = store.record(entry) {
        tracing::warn!(action = %entry.action, "the event journal could not be written: {e}");
    }
}

/// Record that `caller`'s `action` on `target` failed with `err`, and give `err` back.
pub fn failed(
    store: &Store,
    caller: &Caller,
    action: &str,
    target: &str,
    err: crate::Error,
) -> crate::Error {
    record(
        store,
        &entry(caller, action, target).failed(err.message().to_string()),
    );
    err
}

/// The events `q` asks for.
pub fn events(store: &Store, caller: &Caller, q: &Query) -> Result<Vec<Event>> {
    if crate::auth::authorize(caller, crate::auth::Op::Admin, crate::users::ALL).is_ok() {
        return Ok(store.events(q)?);
    }
    // Anyone else: its own events only.
    crate::auth::authorize(
        caller,
        crate::auth::Op::Read,
        crate::auth::DEFAULT_NAMESPACE,
    )?;
    let me = caller.owner();
    if q.who.as_deref().is_some_and(|w| w != me.as_str()) {
        return Err(crate::Error::new(
            crate::ErrorKind::Forbidden,
            "only an admin reads the events of another identity",
        )
        .because(crate::auth::reason::NOT_OWNER));
    }
    let mine = Query {
        who: Some(me.as_str().to_string()),
        ..q.clone()
    };
    Ok(store.events(&mine)?)
}

/// Delete the events older than `keep`; how many.
pub fn prune(store: &Store, keep: Duration) -> Result<u64> {
    let before = SystemTime::now()
        .checked_sub(keep)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let n = store.prune_events(before)?;
    if n > 0 {
        tracing::info!(events = n, "pruned the event journal");
    }
    Ok(n)
}

/// How a build ended, for its `build finished` entry: whether it succeeded, and a summary
/// (`3 steps done (1 cached), 1 failed (test), 2 skipped`, or why it could not run).
pub fn build_outcome(
    done: usize,
    cached: usize,
    failed: &[&str],
    skipped: usize,
    error: Option<&str>,
) -> (bool, String) {
    if let Some(e) = error {
        return (false, e.to_string());
    }
    let mut s = format!("{done} step{} done", if done == 1 { "" } else { "s" });
    if cached > 0 {
        s.push_str(&format!(" ({cached} cached)"));
    }
    if !failed.is_empty() {
        s.push_str(&format!(
            ", {} failed ({})",
            failed.len(),
            failed.join(", ")
        ));
    }
    if skipped > 0 {
        s.push_str(&format!(", {skipped} skipped"));
    }
    (failed.is_empty(), s)
}

/// Whether a build succeeded, and the summary its `build finished` entry carries.
pub fn outcome_of(r: &kiln_wire::BuildResult) -> (bool, String) {
    let failed: Vec<&str> = r.failed.iter().map(|f| f.step.as_str()).collect();
    build_outcome(
        r.done.len(),
        r.done.iter().filter(|d| d.cached).count(),
        &failed,
        r.skipped.len(),
        r.error.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_outcome_says_what_was_done() {
        assert_eq!(
            build_outcome(3, 1, &["test"], 2, None),
            (
                false,
                "3 steps done (1 cached), 1 failed (test), 2 skipped".to_string()
            )
        );
        assert_eq!(
            build_outcome(1, 0, &[], 0, None),
            (true, "1 step done".to_string())
        );
        assert_eq!(
            build_outcome(0, 0, &[], 0, Some("no kiln.toml")),
            (false, "no kiln.toml".to_string())
        );
    }
}
