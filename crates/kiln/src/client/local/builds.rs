//! Builds run in this process against the repository: kiln-build's engine with this
//! executable as the sandbox helper, the events printed as they happen, the start and the
//! end recorded in the journal as the daemon records its own.

use super::super::{BuildHow, Found, requester};
use super::Local;
use anyhow::{Context, Result, anyhow};
use kiln_build::exec::{Builds, Event, Observer, Options};
use kiln_build::{Plan, Recipe};
use kiln_core::Cid;
use kiln_store::Store;
use kiln_wire::BuildResult;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The repository's store, node key and build directories: what kiln-build's engine needs.
pub struct Service {
    store: Store,
    key: kiln_id::NodeKey,
    dir: PathBuf,
    exe: PathBuf,
}

impl Service {
    pub(super) fn new(local: &Local) -> Result<Service> {
        let key = crate::repo::identity(&local.home)?;
        let exe = std::env::current_exe().context("cannot find the kiln executable")?;
        Ok(Service {
            store: local.store.clone(),
            key,
            dir: local.home.join("builds"),
            exe,
        })
    }

    /// The build engine over the repository.
    pub fn builds(&self) -> Result<Builds<'_>> {
        Builds::open(&self.store, &self.key, &self.dir, &self.exe).map_err(|e| anyhow!("{e}"))
    }
}

/// Prints a build run in this process as it happens: the events the daemon would send,
/// printed as they are when followed through it.
struct Terminal {
    lines: Mutex<kiln_node::view::EventLines>,
}

impl Terminal {
    fn new() -> Terminal {
        Terminal {
            lines: Mutex::new(kiln_node::view::EventLines::default()),
        }
    }
}

impl Observer for Terminal {
    fn event(&self, e: Event<'_>) {
        // Converted and printed under one lock, so steps' lines keep their order.
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        for ev in lines.convert(&e) {
            crate::progress::build_event(&mut err, &ev);
        }
    }
}

/// Run a build on the repository directly, recording its start and its end in the journal
/// (`target`: the recipe file or the action).
fn journaled<T>(
    store: &Store,
    target: &str,
    build: impl FnOnce() -> Result<T>,
    outcome: impl FnOnce(&T) -> (bool, String),
) -> Result<T> {
    use kiln_node::journal::{self, action};
    let caller = crate::cmd::cli_caller();
    journal::record(
        store,
        &journal::entry(&caller, action::BUILD_STARTED, target),
    );
    let result = build();
    let (ok, summary) = match &result {
        Ok(r) => outcome(r),
        Err(e) => (false, format!("{e:#}")),
    };
    let entry = journal::entry(&caller, action::BUILD_FINISHED, target);
    journal::record(
        store,
        &if ok {
            entry.detail(summary)
        } else {
            entry.failed(summary)
        },
    );
    result
}

/// Build a planned recipe here.
pub(super) fn build(
    local: &Local,
    recipe: &Recipe,
    plan: &Plan,
    how: &BuildHow,
) -> Result<BuildResult> {
    let svc = local.service()?;
    let builds = svc.builds()?;
    let mut opts = Options {
        check: how.check,
        requested_by: requester(),
        ..Options::default()
    };
    if let Some(n) = how.slots {
        opts.slots = n;
    }
    journaled(
        &local.store,
        &recipe.file.display().to_string(),
        || {
            let summary = builds
                .build(recipe, plan, &opts, &Terminal::new())
                .map_err(|e| anyhow!("{e}"))?;
            Ok(kiln_node::view::build_result(&summary))
        },
        kiln_node::journal::outcome_of,
    )
}

/// An action's outputs: from the cache, else built here within `timeout`.
pub(super) fn find_or_build(local: &Local, action: &Cid, timeout: Duration) -> Result<Found> {
    let svc = local.service()?;
    let builds = svc.builds()?;
    let opts = Options {
        requested_by: requester(),
        ..Options::default()
    };
    let (record, rec, cached) = journaled(
        &local.store,
        &format!("action {action}"),
        || {
            builds
                .find_or_build(action, Instant::now() + timeout, &opts, &Terminal::new())
                .map_err(|e| anyhow!("{e}"))
        },
        |(record, _, cached)| {
            let how = if *cached { "cached" } else { "built" };
            (true, format!("{how}: record {record}"))
        },
    )?;
    Ok(Found {
        record: record.to_string(),
        outputs: rec.outputs,
        cached,
    })
}
