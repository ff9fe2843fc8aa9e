//! Builds through the daemon: kiln-build's build service, run for HTTP clients.
//!
//! A **submission** is one `POST /api/kiln/v1/builds`: a recipe to build (its source tree is
//! content already in the store) or an action to find or build. Each gets an id `sN`
//! (numbered from 1 each time the daemon starts) and runs on a thread of its own, which
//! lives exactly as long as the build (the sandbox helper dies with the thread that started
//! it). The steps it runs are **builds** of the history (`builds/index.db`), numbered by the
//! index, which outlive the daemon; `GET /builds/{id}` takes either (`sN`, a number, or an
//! action or record CID).
//!
//! What a submission does is kept in memory as it happens: its steps' states and a list of
//! [`BuildEvent`]s (started, one per output line, finished, and a last `done` with the
//! result). Followers of `GET /builds/{id}/events` (server-sent events) and of the web UI's
//! live log read that list from where they are and wait for more; nothing is lost to a slow
//! follower unless the list outgrows its budget ([`EVENT_BUDGET`] bytes, the oldest events
//! go first and a late follower is told how many it missed). The last [`KEEP_SUBMISSIONS`]
//! submissions are remembered; the stored logs and records keep everything for good.
//!
//! A recipe's source tree is written out once per CID under `builds/src/CID` (read-only),
//! and reused; the [`KEEP_SOURCES`] most recently used are kept. The recipe file is named
//! in messages and in the history as the client says (`origin`: the command line sends the
//! path it was given, so its messages read as they do without a daemon).
//!
//! **Schedules** (`schedules.rs`): recipes registered to be built on their `schedule`; the
//! scheduler checks their mutable inputs at each scheduled time and submits a build, as
//! `POST /builds` would, when that changed an action key.

// kiln-build's errors carry the file, step and key they are about; they are cold paths.
#![allow(clippy::result_large_err)]

use crate::journal::action as journal;
use crate::supervisor::{Group, Supervisor};
use crate::{Caller, Error, Result, Who};
use kiln_build::exec::{Builds, Event, Observer, Options};
use kiln_build::index::{BuildRow, Index};
use kiln_build::record::{SignedRecord, now_ms};
use kiln_build::{Plan, Recipe, content};
use kiln_core::Cid;
use kiln_store::Store;
use kiln_wire::{
    BuildEvent, BuildList, BuildRequest, BuildResult, BuildView, DoneStep, StepView,
    SubmissionView, parse_duration,
};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub mod prune;
pub mod schedules;

/// Submissions running at once; more are refused with 503.
pub const MAX_RUNNING: usize = 8;

/// How long a stopping daemon waits for each group of its workers (the checks, then the
/// cancelled builds) before it leaves them to die with the process.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// Submissions remembered (the oldest finished ones are forgotten first).
pub const KEEP_SUBMISSIONS: usize = 64;
/// Source trees kept written out under `builds/src`.
pub const KEEP_SOURCES: usize = 16;
/// Bytes of events a submission keeps in memory (the oldest go first).
pub const EVENT_BUDGET: usize = 4 << 20;
/// The longest `origin` and `requested_by`.
const MAX_LABEL: usize = 4096;
/// Builds of the history listed at most.
pub const MAX_LIMIT: usize = 100_000;

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The daemon's build service: submissions, their admission and events, and the scheduler.
pub struct BuildService {
    store: Store,
    key: Arc<kiln_id::NodeKey>,
    dir: PathBuf,
    helper: PathBuf,
    index: Index,
    table: Mutex<Table>,
    closing: watch::Sender<bool>,
    /// Registered schedules and the scheduler's state.
    sched: Arc<schedules::Sched>,
    /// Registrations and removals of schedules, one at a time.
    registering: Mutex<()>,
    /// The scheduler, its checks and the builds, each on a thread of its own.
    workers: Supervisor,
}

#[derive(Default)]
struct Table {
    last: u64,
    /// Oldest first.
    subs: VecDeque<Arc<Submission>>,
    /// Written-out source trees, least recently used first, with how many running
    /// submissions use each.
    sources: VecDeque<(Cid, usize)>,
    /// Builds being started (counted, not yet in `subs`) per owner, so two submissions at
    /// once cannot both pass a builds quota with one slot left.
    starting: std::collections::HashMap<String, usize>,
}

/// One build being started for an owner, counted in [`Table::starting`] until dropped.
struct Starting<'a> {
    table: &'a Mutex<Table>,
    owner: String,
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        let mut t = lock(self.table);
        if let Some(n) = t.starting.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                t.starting.remove(&self.owner);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl BuildService {
    /// The build service of the repository whose store is `store`: `dir` is its builds
    /// directory (`$KILN_HOME/builds`), `helper` the kiln executable (started as the sandbox
    /// helper), `key` the node's key (it signs the records).
    pub fn open(
        store: Store,
        key: kiln_id::NodeKey,
        dir: PathBuf,
        helper: PathBuf,
    ) -> Result<Arc<BuildService>, kiln_build::Error> {
        let src = dir.join("src");
        std::fs::create_dir_all(&src).map_err(|source| kiln_build::Error::Io {
            context: format!("creating {}", src.display()),
            source,
        })?;
        // Trees written out before: kept for reuse (oldest first), half-written ones removed.
        let mut found = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&src) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                match Cid::try_from(name.as_str()) {
                    Ok(cid) => {
                        let at = e.metadata().and_then(|m| m.modified()).ok();
                        found.push((at, cid));
                    }
                    Err(_) => {
                        let _ = kiln_build::exec::remove_tree(&e.path());
                    }
                }
            }
        }
        found.sort();
        let index = Index::open(&dir.join("index.db"))?;
        // Steps a killed daemon (or command) left running: marked interrupted now, and
        // their work directories removed, rather than when some later build opens them.
        kiln_build::exec::sweep_dead_runs(&dir, &index);
        schedules::hold_sources(&store, &index);
        release_transient_pins(&store);
        let sched = Arc::new(schedules::Sched::load(&index)?);
        Ok(Arc::new(BuildService {
            store,
            key: Arc::new(key),
            dir,
            helper,
            index,
            table: Mutex::new(Table {
                sources: found.into_iter().map(|(_, c)| (c, 0)).collect(),
                ..Table::default()
            }),
            closing: watch::channel(false).0,
            sched,
            registering: Mutex::new(()),
            workers: Supervisor::new(),
        }))
    }

    /// The build history and action cache.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The daemon is stopping: refuse new builds and end every event stream and live page;
    /// stop the scheduler and wait for the checks it started; then cancel the builds still
    /// running (their process trees are killed) and wait for them, each group up to
    /// [`SHUTDOWN_WAIT`] — what is still running then is named in the log and left to die
    /// with the process. The steps that were running are marked interrupted in the history.
    /// Blocking.
    pub fn close(&self) {
        self.close_within(SHUTDOWN_WAIT);
    }

    /// [`BuildService::close`], waiting up to `wait` for each group of workers.
    pub fn close_within(&self, wait: Duration) {
        self.closing.send_replace(true);
        self.sched.stop();
        for group in [Group::Scheduler, Group::Check] {
            let left = self.workers.join(group, Instant::now() + wait);
            if !left.is_empty() {
                tracing::warn!(?group, workers = ?left, "still running at shutdown; left to stop with the daemon");
            }
        }
        let (running, subs): (Vec<i64>, Vec<Arc<Submission>>) = {
            let t = lock(&self.table);
            let subs: Vec<_> = t.subs.iter().filter(|s| !s.is_done()).cloned().collect();
            (subs.iter().flat_map(|s| s.running_builds()).collect(), subs)
        };
        for sub in &subs {
            sub.cancel.store(true, Ordering::SeqCst);
        }
        let left = self.workers.join(Group::Build, Instant::now() + wait);
        if !left.is_empty() {
            tracing::warn!(workers = ?left, "builds still running at shutdown; left to stop with the daemon");
        }
        for id in running {
            if let Err(e) = self
                .index
                .interrupted(id, "interrupted: the daemon stopped", now_ms())
            {
                tracing::warn!("marking build {id} interrupted: {e}");
            }
        }
    }

    /// Whether [`BuildService::close`] was called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Submission `sN`, while remembered.
    pub fn submission(&self, n: u64) -> Option<Arc<Submission>> {
        lock(&self.table).subs.iter().find(|s| s.id == n).cloned()
    }

    /// Remembered submissions, newest first.
    pub fn submissions(&self) -> Vec<Arc<Submission>> {
        lock(&self.table).subs.iter().rev().cloned().collect()
    }

    /// The remembered submission that ran build `id`, and the step.
    pub fn submission_of(&self, id: i64) -> Option<(Arc<Submission>, String)> {
        lock(&self.table)
            .subs
            .iter()
            .find_map(|s| s.step_of(id).map(|step| (s.clone(), step)))
    }

    /// A stored record's content.
    pub fn record(&self, cid: &Cid) -> Option<kiln_build::record::BuildRecord> {
        let bytes = self.store.get(cid).ok()??;
        SignedRecord::decode(&bytes).ok().map(|r| r.record)
    }

    /// Submission `id` (`sN`), or why not: not a submission's name (invalid), or not
    /// remembered (not found).
    pub fn submission_named(&self, id: &str) -> Result<Arc<Submission>> {
        let n = submission_number(id).ok_or_else(|| {
            Error::invalid(format!(
                "{id:?} is not a submission (sN): only a build submitted to the daemon can be cancelled"
            ))
        })?;
        self.submission(n).ok_or_else(|| gone(id))
    }

    /// Ask submission `id` to stop for `caller` (recorded in the journal; blocking): the
    /// submission, and whether it was running (an ended one is left as it is). Its running
    /// steps are killed and recorded `cancelled`; no other step starts.
    pub fn cancel(&self, caller: &Caller, id: &str) -> Result<(Arc<Submission>, bool)> {
        crate::auth::authorize(
            caller,
            crate::auth::Op::Build,
            crate::auth::DEFAULT_NAMESPACE,
        )?;
        let sub = self.submission_named(id)?;
        if sub.is_done() {
            return Ok((sub, false));
        }
        sub.cancel.store(true, Ordering::SeqCst);
        tracing::info!(submission = %id, via = %caller.via, "build cancelled");
        crate::journal::record(
            &self.store,
            &crate::journal::entry(caller, journal::BUILD_CANCEL, sub.name()),
        );
        Ok((sub, true))
    }

    /// Prune the build history as `req` says (see [`prune::prune`]; blocking).
    pub fn prune(
        &self,
        caller: &Caller,
        req: &kiln_wire::PruneRequest,
    ) -> Result<kiln_wire::PruneView> {
        prune::prune(&self.store, &self.index, caller, req)
    }

    /// The builds of the history, newest first (at most `limit`, capped at [`MAX_LIMIT`]),
    /// and the submissions remembered (blocking: reads the index).
    pub fn list(&self, caller: &Caller, limit: usize) -> Result<BuildList> {
        crate::auth::authorize(
            caller,
            crate::auth::Op::Read,
            crate::auth::DEFAULT_NAMESPACE,
        )?;
        let rows = self
            .index
            .recent(limit.min(MAX_LIMIT))
            .map_err(|e| Error::internal(e.to_string()))?;
        Ok(BuildList {
            builds: rows.iter().map(crate::view::build_row).collect(),
            submissions: self.submissions().iter().map(|s| s.view()).collect(),
        })
    }

    /// A build of the history (a number, or an action or record CID) with its record's
    /// content (blocking).
    pub fn build_view(&self, caller: &Caller, id: &str) -> Result<BuildView> {
        crate::auth::authorize(
            caller,
            crate::auth::Op::Read,
            crate::auth::DEFAULT_NAMESPACE,
        )?;
        let row = find_build(&self.index, id)?;
        let record = row.record.and_then(|r| self.record(&r));
        Ok(BuildView {
            submission: self.submission_of(row.id).map(|(sub, _)| sub.name()),
            build: crate::view::build_row(&row),
            record: record.as_ref().map(crate::view::record),
        })
    }

    /// Whether a new build may start now: not while stopping, nor with [`MAX_RUNNING`]
    /// running (503).
    fn admit(&self) -> Result<()> {
        if *self.closing.borrow() {
            return Err(Error::unavailable("the daemon is stopping"));
        }
        let running = lock(&self.table)
            .subs
            .iter()
            .filter(|s| !s.is_done())
            .count();
        if running >= MAX_RUNNING {
            return Err(Error::unavailable(format!(
                "{running} builds are running, the most this daemon runs at once; try again when one ends"
            )));
        }
        Ok(())
    }

    /// Start a build (blocking: writes the source tree out and reads the recipe).
    pub fn submit(self: &Arc<Self>, caller: &Caller, req: BuildRequest) -> Result<Arc<Submission>> {
        crate::auth::authorize(
            caller,
            crate::auth::Op::Build,
            crate::auth::DEFAULT_NAMESPACE,
        )?;
        let upload = upload_owner(req.upload.as_deref())?;
        let submitted = self.submit_inner(caller, &req);
        // The upload's pin goes whether the build started (it holds the source itself now)
        // or not.
        if let (Some(owner), Some(source)) = (&upload, &req.source) {
            release_upload(&self.store, owner, source);
        }
        submitted
    }

    fn submit_inner(
        self: &Arc<Self>,
        caller: &Caller,
        req: &BuildRequest,
    ) -> Result<Arc<Submission>> {
        let req = req.clone();
        self.admit()?;
        let owner = caller.owner();
        let max = crate::quotas::build_limit(&self.store, caller)?;
        // Counted and reserved under one lock; the reservation ends once the build is in
        // the table (or failed to start).
        let _starting = {
            let mut t = lock(&self.table);
            let running = t
                .subs
                .iter()
                .filter(|s| !s.is_done() && s.caller.owner() == owner)
                .count();
            let starting = t.starting.get(owner.as_str()).copied().unwrap_or(0);
            crate::quotas::may_start_build(caller, max, running + starting)?;
            *t.starting.entry(owner.to_string()).or_default() += 1;
            Starting {
                table: &self.table,
                owner: owner.to_string(),
            }
        };
        let requested_by = requested_by(caller, req.requested_by.as_deref())?;
        let mut opts = Options {
            check: req.check,
            requested_by,
            ..Options::default()
        };
        if let Some(n) = req.slots {
            opts.slots = n.clamp(1, 256);
        }
        match (&req.source, &req.action) {
            (Some(source), None) => {
                if req.timeout.is_some() {
                    return Err(Error::invalid(
                        "\"timeout\" is for action builds; a recipe's steps have their own limits",
                    ));
                }
                self.submit_recipe(caller, source, &req, opts)
            }
            (None, Some(action)) => {
                if !req.params.is_empty() || req.check || req.origin.is_some() {
                    return Err(Error::invalid(
                        "an action build takes no \"params\", \"check\" or \"origin\"",
                    ));
                }
                self.submit_action(
                    caller,
                    action,
                    req.timeout.as_deref().unwrap_or("30s"),
                    opts,
                )
            }
            _ => Err(Error::invalid(
                "give either \"source\" (the CID of a source tree holding kiln.toml) or \"action\" (an action key)",
            )),
        }
    }

    fn submit_recipe(
        self: &Arc<Self>,
        caller: &Caller,
        source: &str,
        req: &BuildRequest,
        opts: Options,
    ) -> Result<Arc<Submission>> {
        let (cid, origin) = source_and_origin(source, req.origin.as_deref())?;
        let (recipe, guard) = self.open_recipe(&cid, &origin)?;
        let bad = |e: kiln_build::Error| Error::invalid(e.to_string());
        let plan = Plan::with_options(&recipe, &req.params, &self.plan_options()).map_err(bad)?;
        Ok(self.launch(
            Launch {
                source: cid,
                origin,
                params: req.params.clone(),
                schedule: None,
                caller: caller.clone(),
            },
            recipe,
            plan,
            opts,
            guard,
        ))
    }

    /// How the daemon plans recipes: git inputs are fetched under `builds/git`.
    fn plan_options(&self) -> kiln_build::action::PlanOptions {
        kiln_build::action::PlanOptions {
            git_dir: Some(self.dir.join("git")),
        }
    }

    /// The recipe of source tree `cid`, written out under `builds/src` (and marked in use
    /// while the guard lives); `origin` names its file in messages. Refused when the tree
    /// is not a directory or its recipe is a symlink or bad (400), or is not here (404).
    fn open_recipe(self: &Arc<Self>, cid: &Cid, origin: &str) -> Result<(Recipe, SourceInUse)> {
        let (dir, guard) = self.source_dir(cid)?;
        let file = PathBuf::from(origin);
        let bad = |e: kiln_build::Error| Error::invalid(e.to_string());
        // Never read through a symlink: the tree, and its recipe, must be what they say.
        let kind = |p: &std::path::Path| std::fs::symlink_metadata(p).map(|m| m.file_type());
        if !kind(&dir).is_ok_and(|t| t.is_dir()) {
            return Err(Error::invalid(format!(
                "source {cid} is not a directory (a build's source is a tree holding {})",
                kiln_build::recipe::RECIPE_FILE
            )));
        }
        if kind(&dir.join(kiln_build::recipe::RECIPE_FILE)).is_ok_and(|t| t.is_symlink()) {
            return Err(Error::invalid(format!(
                "{origin}: the recipe is a symbolic link; it must be a file"
            )));
        }
        let text = std::fs::read_to_string(dir.join(kiln_build::recipe::RECIPE_FILE)).map_err(
            |source| {
                bad(kiln_build::Error::Read {
                    file: file.clone(),
                    source,
                })
            },
        )?;
        let recipe = Recipe::parse(&file, &dir, &text).map_err(bad)?;
        Ok((recipe, guard))
    }

    /// Start building `plan` (made from `recipe`) as a new submission.
    fn launch(
        self: &Arc<Self>,
        l: Launch,
        recipe: Recipe,
        plan: Plan,
        opts: Options,
        guard: SourceInUse,
    ) -> Arc<Submission> {
        let steps = plan
            .steps
            .iter()
            .map(|s| StepView {
                action: Some(s.key.to_string()),
                ..step_view(&s.name)
            })
            .collect();
        let what = What::Recipe {
            source: l.source,
            origin: l.origin,
            params: l.params,
            check: opts.check,
            schedule: l.schedule,
        };
        let sub = self.add(what, steps, l.caller);
        // The source stays in the store while the build runs, whoever else lets it go.
        let holder = kiln_build::owners::submission(sub.id);
        let held = match self.store.pin_add(
            &l.source,
            &kiln_store::NewPin::new(holder.clone(), kiln_store::PinMode::Recursive),
        ) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(
                    submission = sub.id,
                    "cannot hold the source {}: {e}",
                    l.source
                );
                false
            }
        };
        let source = l.source;
        let (svc, s) = (self.clone(), sub.clone());
        let opts = Options {
            cancel: Some(sub.cancel.clone()),
            ..opts
        };
        self.spawn(&sub, move || {
            let _in_use = guard;
            let obs = Watch(&s);
            let result = match Builds::open(&svc.store, &svc.key, &svc.dir, &svc.helper)
                .and_then(|b| b.build(&recipe, &plan, &opts, &obs))
            {
                Ok(summary) => crate::view::build_result(&summary),
                Err(e) => BuildResult::error(e.to_string()),
            };
            if held && let Err(e) = svc.store.pin_rm(&source, &holder) {
                tracing::warn!("releasing the source {source}: {e}");
            }
            result
        });
        sub
    }

    fn submit_action(
        self: &Arc<Self>,
        caller: &Caller,
        action: &str,
        timeout: &str,
        opts: Options,
    ) -> Result<Arc<Submission>> {
        let cid = kiln_core::cids::parse_cid(action)
            .map_err(|e| Error::invalid(format!("action: {e}")))?;
        let limit = parse_duration(timeout).map_err(Error::invalid)?;
        let sub = self.add(What::Action { action: cid }, Vec::new(), caller.clone());
        let (svc, s) = (self.clone(), sub.clone());
        let opts = Options {
            cancel: Some(sub.cancel.clone()),
            ..opts
        };
        self.spawn(&sub, move || {
            let obs = Watch(&s);
            let deadline = Instant::now() + limit;
            match Builds::open(&svc.store, &svc.key, &svc.dir, &svc.helper)
                .and_then(|b| b.find_or_build(&cid, deadline, &opts, &obs))
            {
                Ok((record, rec, cached)) => BuildResult {
                    done: vec![DoneStep {
                        step: rec.step.clone(),
                        action: cid.to_string(),
                        record: record.to_string(),
                        cached,
                        outputs: rec
                            .outputs
                            .iter()
                            .map(|(k, v)| (k.clone(), v.to_string()))
                            .collect(),
                        log: rec.log.to_string(),
                        duration_ms: rec.duration_ms(),
                        check: None,
                    }],
                    ..BuildResult::default()
                },
                Err(e) => BuildResult::error(e.to_string()),
            }
        });
        Ok(sub)
    }

    /// Run `build` on a thread of its own (it lives as long as the build), then record its
    /// result; a panic becomes the result's error.
    fn spawn(&self, sub: &Arc<Submission>, build: impl FnOnce() -> BuildResult + Send + 'static) {
        let s = sub.clone();
        let store = self.store.clone();
        let (caller, target) = (sub.caller(), format!("s{}", sub.id));
        crate::journal::record(
            &store,
            &crate::journal::entry(&caller, journal::BUILD_STARTED, &target)
                .detail(sub.what.describe()),
        );
        let spawned = self
            .workers
            .spawn(format!("build s{}", sub.id), Group::Build, move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
                    .unwrap_or_else(|_| {
                        BuildResult::error(
                            "the build failed inside kiln (a panic; see the daemon's log)",
                        )
                    });
                let (ok, summary) = crate::journal::outcome_of(&result);
                let entry = crate::journal::entry(&caller, journal::BUILD_FINISHED, &target);
                crate::journal::record(
                    &store,
                    &if ok {
                        entry.detail(summary)
                    } else {
                        entry.failed(summary)
                    },
                );
                s.finish(result);
            });
        if let Err(e) = spawned {
            sub.finish(BuildResult::error(format!(
                "cannot start a build thread: {e}"
            )));
        }
    }

    fn add(&self, what: What, steps: Vec<StepView>, caller: Caller) -> Arc<Submission> {
        let mut t = lock(&self.table);
        t.last += 1;
        let sub = Arc::new(Submission {
            id: t.last,
            what,
            caller,
            started_ms: now_ms(),
            state: Mutex::new(SubState {
                steps,
                events: VecDeque::new(),
                next_seq: 0,
                kept: 0,
                lines: crate::view::EventLines::default(),
                result: None,
                ended_ms: None,
            }),
            changed: watch::channel(0).0,
            cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        });
        t.subs.push_back(sub.clone());
        while t.subs.len() > KEEP_SUBMISSIONS {
            match t.subs.iter().position(|s| s.is_done()) {
                Some(i) => {
                    t.subs.remove(i);
                }
                None => break,
            }
        }
        sub
    }

    /// `builds/src/CID`: the source tree written out read-only, once, and marked in use
    /// (until its [`SourceInUse`] is dropped).
    fn source_dir(self: &Arc<Self>, cid: &Cid) -> Result<(PathBuf, SourceInUse)> {
        let base = self.dir.join("src");
        let dir = base.join(cid.to_string());
        {
            let mut t = lock(&self.table);
            let uses = match t.sources.iter().position(|(c, _)| c == cid) {
                Some(i) => t.sources.remove(i).map_or(0, |(_, n)| n),
                None => 0,
            };
            t.sources.push_back((*cid, uses + 1));
        }
        let guard = SourceInUse {
            svc: self.clone(),
            cid: *cid,
        };
        if std::fs::symlink_metadata(&dir).is_err() {
            match self.store.has(cid) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Error::not_found(format!(
                        "source {cid} is not in this repository (add the tree first)"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
            let tmp = base.join(format!(
                ".tmp-{}-{}",
                std::process::id(),
                TMP_SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let made =
                content::materialize(&self.store, cid, &tmp).and_then(|()| content::seal(&tmp));
            if let Err(e) = made {
                let _ = kiln_build::exec::remove_tree(&tmp);
                return Err(match &e {
                    kiln_build::Error::Content {
                        source: kiln_core::Error::NotFound(_),
                        ..
                    } => Error::not_found(format!(
                        "source {cid} is not completely in this repository: {e}"
                    )),
                    kiln_build::Error::Write { .. } => Error::internal(e.to_string()),
                    _ => Error::invalid(format!("source {cid}: {e}")),
                });
            }
            if let Err(e) = std::fs::rename(&tmp, &dir) {
                let _ = kiln_build::exec::remove_tree(&tmp);
                if std::fs::symlink_metadata(&dir).is_err() {
                    return Err(Error::internal(format!("creating {}: {e}", dir.display())));
                }
            }
        }
        self.evict_sources();
        Ok((dir, guard))
    }

    fn evict_sources(&self) {
        let mut gone = Vec::new();
        {
            let mut t = lock(&self.table);
            while t.sources.len() > KEEP_SOURCES {
                let Some(i) = t.sources.iter().position(|(_, n)| *n == 0) else {
                    break;
                };
                if let Some((c, _)) = t.sources.remove(i) {
                    gone.push(c);
                }
            }
        }
        for c in gone {
            let p = self.dir.join("src").join(c.to_string());
            if let Err(e) = kiln_build::exec::remove_tree(&p) {
                tracing::warn!("removing {}: {e}", p.display());
            }
        }
    }
}

/// What a recipe submission is, besides its plan.
struct Launch {
    source: Cid,
    origin: String,
    params: BTreeMap<String, String>,
    /// The schedule submitting it.
    schedule: Option<i64>,
    /// Who asks.
    caller: Caller,
}

/// A source CID as a client gives it and the recipe's name in messages (`origin`, default
/// `CID/kiln.toml`).
fn source_and_origin(source: &str, origin: Option<&str>) -> Result<(Cid, String)> {
    let cid =
        kiln_core::cids::parse_cid(source).map_err(|e| Error::invalid(format!("source: {e}")))?;
    let origin = match origin {
        Some(o) => label(o, "origin")?.to_string(),
        None => format!("{cid}/{}", kiln_build::recipe::RECIPE_FILE),
    };
    Ok((cid, origin))
}

/// A source tree in use by a submission (or being set up for one).
struct SourceInUse {
    svc: Arc<BuildService>,
    cid: Cid,
}

impl Drop for SourceInUse {
    fn drop(&mut self) {
        let mut t = lock(&self.svc.table);
        if let Some((_, n)) = t.sources.iter_mut().find(|(c, _)| *c == self.cid) {
            *n = n.saturating_sub(1);
        }
    }
}

/// `origin` and `requested_by`: one line, not too long.
fn label<'a>(v: &'a str, what: &str) -> Result<&'a str> {
    if v.is_empty() || v.len() > MAX_LABEL || v.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "\"{what}\" must be one line of 1 to {MAX_LABEL} bytes"
        )));
    }
    Ok(v)
}

fn step_view(name: &str) -> StepView {
    StepView {
        name: name.to_string(),
        action: None,
        state: "pending".into(),
        build: None,
        record: None,
        log: None,
        outputs: BTreeMap::new(),
        status: None,
        started_ms: None,
        ended_ms: None,
    }
}

/// What was submitted.
pub enum What {
    /// A recipe run on a source tree.
    Recipe {
        /// The source tree's CID.
        source: Cid,
        /// Where the source came from (a path, a git URL), for display.
        origin: String,
        /// The recipe's parameters.
        params: BTreeMap<String, String>,
        /// Build twice and compare the outputs.
        check: bool,
        /// The schedule that submitted it.
        schedule: Option<i64>,
    },
    /// One action, by its CID.
    Action {
        /// The action's CID.
        action: Cid,
    },
}

impl What {
    /// What was built, for the journal: the recipe's origin (or source) or the action.
    fn describe(&self) -> String {
        match self {
            What::Recipe { source, origin, .. } if origin.is_empty() => format!("recipe {source}"),
            What::Recipe { origin, .. } => format!("recipe {origin}"),
            What::Action { action } => format!("action {action}"),
        }
    }
}

/// One submitted build, as it happens.
pub struct Submission {
    /// Its number, `N` in `sN`.
    pub id: u64,
    /// What was submitted.
    pub what: What,
    /// Who asked for it.
    caller: Caller,
    /// When it was submitted, in Unix milliseconds.
    pub started_ms: u64,
    state: Mutex<SubState>,
    /// Bumped whenever an event is added.
    changed: watch::Sender<u64>,
    /// Set by `POST …/builds/sN/cancel`: the build's running steps are killed, no other
    /// starts.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

struct SubState {
    steps: Vec<StepView>,
    /// (sequence number, event, bytes it counts for), oldest first.
    events: VecDeque<(u64, Arc<BuildEvent>, usize)>,
    next_seq: u64,
    kept: usize,
    lines: crate::view::EventLines,
    result: Option<BuildResult>,
    ended_ms: Option<u64>,
}

impl SubState {
    fn step(&mut self, name: &str) -> &mut StepView {
        let i = match self.steps.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.steps.push(step_view(name));
                self.steps.len() - 1
            }
        };
        &mut self.steps[i]
    }

    fn push(&mut self, ev: BuildEvent) {
        let size = match &ev {
            BuildEvent::Output { step, line } => 64 + step.len() + line.len(),
            _ => 512,
        };
        while self.kept + size > EVENT_BUDGET
            && let Some((_, _, n)) = self.events.pop_front()
        {
            self.kept -= n;
        }
        self.events.push_back((self.next_seq, Arc::new(ev), size));
        self.next_seq += 1;
        self.kept += size;
    }
}

/// Feeds a submission from the threads running its steps.
struct Watch<'s>(&'s Submission);

impl Observer for Watch<'_> {
    fn event(&self, e: Event<'_>) {
        self.0.observe(&e);
    }
}

/// The record's "requested by": for an identity, its did:key and the token it proved
/// itself with (the node verified both, and signs the record); then what the client says
/// about itself, if anything.
pub(crate) fn requested_by(caller: &Caller, says: Option<&str>) -> Result<String> {
    let says = says.map(|w| label(w, "requested_by")).transpose()?;
    let who = match &caller.who {
        Who::User(id) => format!("{} (verified, token {})", id.did, id.token_id()),
        _ => String::new(),
    };
    Ok(match (who.is_empty(), says) {
        (true, None) => "kiln API".to_string(),
        (true, Some(s)) => format!("kiln API: {s}"),
        (false, None) => format!("{who} via kiln API"),
        (false, Some(s)) => format!("{who} via kiln API: {s}"),
    })
}

/// What a follower gets: events with their sequence numbers (none for a gap notice).
pub type Followed = (Option<u64>, Arc<BuildEvent>);

impl Submission {
    /// Who asked for it.
    pub fn caller(&self) -> Caller {
        self.caller.clone()
    }

    /// A receiver that changes whenever an event is added (to wait for the next ones).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, SubState> {
        lock(&self.state)
    }

    /// `sN`.
    pub fn name(&self) -> String {
        format!("s{}", self.id)
    }

    /// Whether it has finished (succeeded, failed or been cancelled).
    pub fn is_done(&self) -> bool {
        self.lock().result.is_some()
    }

    /// Whether it was asked to compare rebuilt outputs with cached ones.
    pub fn check(&self) -> bool {
        matches!(self.what, What::Recipe { check: true, .. })
    }

    fn observe(&self, e: &Event<'_>) {
        {
            let mut st = self.lock();
            let events = st.lines.convert(e);
            match e {
                Event::Cached { step, record } => {
                    let s = st.step(step);
                    s.state = "cached".into();
                    s.record = Some(record.to_string());
                }
                Event::Started { step, build } => {
                    let s = st.step(step);
                    s.state = "running".into();
                    s.build = Some(*build);
                    s.started_ms = Some(now_ms());
                }
                Event::Output { .. } => {}
                Event::Finished { step, record, rec } => {
                    let s = st.step(step);
                    s.state = if rec.ok() { "ok" } else { "failed" }.into();
                    s.record = Some(record.to_string());
                    s.log = Some(rec.log.to_string());
                    s.outputs = rec
                        .outputs
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect();
                    s.status = Some(rec.status.clone());
                    s.started_ms = Some(rec.started_ms);
                    s.ended_ms = Some(rec.ended_ms);
                }
            }
            for ev in events {
                st.push(ev);
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }

    fn finish(&self, result: BuildResult) {
        {
            let mut st = self.lock();
            let now = now_ms();
            for d in &result.done {
                let s = st.step(&d.step);
                s.state = if d.cached { "cached" } else { "ok" }.into();
                s.action = Some(d.action.clone());
                s.record = Some(d.record.clone());
                s.log = Some(d.log.clone());
                s.outputs = d.outputs.clone();
                s.status = Some("ok".into());
            }
            for f in &result.failed {
                let s = st.step(&f.step);
                s.state = "failed".into();
                if s.status.is_none() {
                    s.status = Some(f.error.clone());
                }
                s.ended_ms.get_or_insert(now);
            }
            for name in &result.skipped {
                st.step(name).state = "skipped".into();
            }
            for s in &mut st.steps {
                match s.state.as_str() {
                    "pending" => s.state = "skipped".into(),
                    "running" => {
                        s.state = "failed".into();
                        s.ended_ms.get_or_insert(now);
                    }
                    _ => {}
                }
            }
            st.result = Some(result.clone());
            st.ended_ms = Some(now);
            st.push(BuildEvent::Done(result));
        }
        self.changed.send_modify(|n| *n += 1);
    }

    fn running_builds(&self) -> Vec<i64> {
        self.lock()
            .steps
            .iter()
            .filter(|s| s.state == "running")
            .filter_map(|s| s.build)
            .collect()
    }

    fn step_of(&self, build: i64) -> Option<String> {
        self.lock()
            .steps
            .iter()
            .find(|s| s.build == Some(build))
            .map(|s| s.name.clone())
    }

    /// Events from sequence number `next` on (a gap notice first if some were dropped),
    /// whether the build has ended, and the sequence number to ask for next.
    pub fn since(&self, next: u64) -> (Vec<Followed>, bool, u64) {
        let st = self.lock();
        let first = st.events.front().map_or(st.next_seq, |e| e.0);
        let mut out = Vec::new();
        if next < first {
            out.push((
                None,
                Arc::new(BuildEvent::Gap {
                    missed: first - next,
                }),
            ));
        }
        // Sequence numbers are consecutive: start where `next` is.
        let skip = usize::try_from(next.saturating_sub(first))
            .unwrap_or(usize::MAX)
            .min(st.events.len());
        out.extend(
            st.events
                .range(skip..)
                .map(|(seq, ev, _)| (Some(*seq), ev.clone())),
        );
        (out, st.result.is_some(), st.next_seq.max(next))
    }

    /// The view `GET /builds/sN` answers with.
    pub fn view(&self) -> SubmissionView {
        let st = self.lock();
        let (kind, source, origin, params, action, schedule) = match &self.what {
            What::Recipe {
                source,
                origin,
                params,
                schedule,
                ..
            } => (
                "recipe",
                Some(source.to_string()),
                Some(origin.clone()),
                params.clone(),
                None,
                *schedule,
            ),
            What::Action { action } => (
                "action",
                None,
                None,
                BTreeMap::new(),
                Some(action.to_string()),
                None,
            ),
        };
        let name = self.name();
        SubmissionView {
            state: match &st.result {
                None => "running",
                Some(r) if r.succeeded() => "ok",
                Some(_) => "failed",
            }
            .into(),
            kind: kind.into(),
            source,
            origin,
            params,
            check: self.check(),
            action,
            schedule,
            started_ms: self.started_ms,
            ended_ms: st.ended_ms,
            steps: st.steps.clone(),
            result: st.result.clone(),
            events: format!("{}/builds/{name}/events", kiln_wire::PREFIX),
            log: format!("{}/builds/{name}/log", kiln_wire::PREFIX),
            id: name,
        }
    }

    /// What `kiln build` printed for this build so far (standard error and output
    /// together), from the events kept.
    pub fn transcript(&self) -> String {
        let (events, _, _) = self.since(0);
        let mut out = Vec::new();
        for (_, ev) in events {
            render(&ev, self.check(), &mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The output lines of `step` kept so far.
    pub fn step_lines(&self, step: &str) -> String {
        let (events, _, _) = self.since(0);
        let mut out = String::new();
        for (_, ev) in events {
            if let BuildEvent::Output { step: s, line } = &*ev
                && s == step
            {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// One event as the command line shows it (the result: its report, or its error).
pub fn render(ev: &BuildEvent, check: bool, out: &mut Vec<u8>) {
    use std::io::Write;
    match ev {
        BuildEvent::Done(r) => match &r.error {
            Some(e) => {
                let _ = writeln!(out, "Error: {e}");
            }
            None => {
                let mut err = Vec::new();
                let _ = crate::text::report(r, check, out, &mut err);
                out.extend_from_slice(&err);
            }
        },
        other => {
            if let Some(line) = crate::text::event_line(other) {
                let _ = writeln!(out, "{line}");
            }
        }
    }
}

/// A build of the history by its number, or the latest build of an action, or the one that
/// made a record (what `kiln log` and `GET /builds/{id}` take).
pub fn find_build(index: &Index, arg: &str) -> Result<BuildRow> {
    let failed = |e: kiln_build::Error| Error::internal(e.to_string());
    let row = if let Ok(id) = arg.parse::<i64>() {
        index.build(id).map_err(failed)?
    } else {
        let cid = kiln_core::cids::parse_cid(arg)
            .map_err(|_| Error::invalid(format!("{arg:?} is neither a build number nor a CID")))?;
        index.build_of(&cid).map_err(failed)?
    };
    row.ok_or_else(|| Error::not_found(format!("no build {arg:?} in this repository")))
}

/// The message for a build without a stored log.
pub fn no_log(row: &BuildRow) -> String {
    format!("build {} has no stored log ({})", row.id, row.status)
}

/// The error for a submission this daemon does not remember.
pub fn gone(id: &str) -> Error {
    Error::not_found(format!(
        "no submission {id:?}: this daemon does not remember it (submissions are kept while it runs; the steps' builds are in the history)"
    ))
}

/// `sN` → N.
pub fn submission_number(id: &str) -> Option<u64> {
    let n = id.strip_prefix('s')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The owner a request's `upload` names (`upload:TOKEN`), if it names one.
pub fn upload_owner(upload: Option<&str>) -> Result<Option<kiln_store::PinOwner>> {
    match upload {
        None => Ok(None),
        Some(u) if u.starts_with(kiln_build::owners::UPLOAD_PREFIX) => Ok(Some(
            kiln_store::PinOwner::new(u).map_err(|e| Error::invalid(format!("upload: {e}")))?,
        )),
        Some(u) => Err(Error::invalid(format!(
            "upload must name an owner upload:TOKEN, not {u:?}"
        ))),
    }
}

/// Remove the upload's pin of `source` (once what it was for holds the source itself, or
/// was refused).
pub fn release_upload(store: &Store, owner: &kiln_store::PinOwner, source: &str) {
    let Ok((cid, _)) = source_and_origin(source, None) else {
        return;
    };
    match store.pin_rm(&cid, owner) {
        Ok(_) | Err(kiln_store::Error::NotPinned(_) | kiln_store::Error::NotPinnedBy { .. }) => {}
        Err(e) => tracing::warn!("releasing the upload of {cid}: {e}"),
    }
}

/// Pins held only while a daemon runs (uploads not yet submitted, running submissions'
/// sources) that a daemon which stopped, or was killed, left behind: removed at start.
fn release_transient_pins(store: &Store) {
    let Ok(pins) = store.pins() else { return };
    for p in pins
        .iter()
        .filter(|p| kiln_build::owners::is_transient(&p.owner))
    {
        match store.pin_rm(&p.cid, &p.owner) {
            Ok(_) => {
                tracing::info!(owner = %p.owner, cid = %p.cid, "released a pin left by an earlier daemon")
            }
            Err(e) => tracing::warn!(owner = %p.owner, "releasing {}: {e}", p.cid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_and_partial_lines_come_at_the_end() {
        use kiln_build::exec::Event;
        let mut l = crate::view::EventLines::default();
        let out = |evs: Vec<BuildEvent>| -> Vec<String> {
            evs.iter().filter_map(crate::text::event_line).collect()
        };
        assert_eq!(
            out(l.convert(&Event::Started {
                step: "a",
                build: 3
            })),
            ["[a] running (build 3)"]
        );
        assert!(
            out(l.convert(&Event::Output {
                step: "a",
                bytes: b"one"
            }))
            .is_empty()
        );
        assert_eq!(
            out(l.convert(&Event::Output {
                step: "a",
                bytes: b" two\nthr\xffee\n"
            })),
            ["[a] one two", "[a] thr\u{fffd}ee"]
        );
        assert!(
            out(l.convert(&Event::Output {
                step: "b",
                bytes: b"b-part"
            }))
            .is_empty()
        );
        assert!(
            out(l.convert(&Event::Output {
                step: "a",
                bytes: b"tail"
            }))
            .is_empty()
        );
        let cid = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"x");
        let rec = kiln_build::record::BuildRecord {
            format: kiln_build::record::RECORD_FORMAT.into(),
            action: cid,
            step: "a".into(),
            status: "exit status 2".into(),
            exit: Some(2),
            outputs: Default::default(),
            log: cid,
            caches: Default::default(),
            started_ms: 1000,
            ended_ms: 3500,
            builder: "did:key:x".into(),
            requested_by: "t".into(),
            host: true,
        };
        let evs = l.convert(&Event::Finished {
            step: "a",
            record: &cid,
            rec: &rec,
        });
        assert_eq!(
            out(evs.clone()),
            ["[a] tail", "[a] failed after 2.50 s: exit status 2"]
        );
        assert!(matches!(
            &evs[1],
            BuildEvent::Finished { build: Some(3), .. }
        ));
    }

    #[test]
    fn a_long_log_keeps_its_end_and_says_what_was_dropped() {
        use kiln_build::exec::Event;
        let dir = tempfile::tempdir().unwrap();
        let store =
            kiln_store::Store::open(dir.path(), kiln_store::StoreOptions::default()).unwrap();
        let svc = BuildService::open(
            store,
            kiln_id::NodeKey::generate().unwrap(),
            dir.path().join("builds"),
            "/nonexistent".into(),
        )
        .unwrap();
        let cid = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"a");
        let sub = svc.add(
            What::Action { action: cid },
            Vec::new(),
            Caller::local(crate::Via::Api),
        );
        sub.observe(&Event::Started {
            step: "s",
            build: 1,
        });
        let line = vec![b'x'; 1000];
        let mut chunk = line.clone();
        chunk.push(b'\n');
        let lines = 2 * EVENT_BUDGET / line.len();
        for _ in 0..lines {
            sub.observe(&Event::Output {
                step: "s",
                bytes: &chunk,
            });
        }
        sub.finish(BuildResult::error("stopped"));
        let (events, done, next) = sub.since(0);
        assert!(done);
        assert_eq!(next, lines as u64 + 2);
        let BuildEvent::Gap { missed } = &*events[0].1 else {
            panic!("no gap first: {:?}", events[0])
        };
        assert_eq!(missed + events.len() as u64 - 1, next);
        assert!(matches!(&*events.last().unwrap().1, BuildEvent::Done(_)));
        // What is kept fits the budget, and a follower that is up to date gets nothing new.
        assert!(events.len() < lines / 2 + 10, "{}", events.len());
        assert!(sub.since(next).0.is_empty());
        assert!(sub.transcript().starts_with("[kiln] "));
        assert!(sub.transcript().ends_with("Error: stopped\n"));
    }
}
