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

use crate::types::{
    BuildEvent, BuildList, BuildRequest, BuildResult, BuildRowView, BuildView, DoneStep,
    RecordView, StepView, SubmissionView, parse_duration,
};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use kiln_build::exec::{Builds, Event, Observer, Options};
use kiln_build::index::{BuildRow, Index};
use kiln_build::record::{SignedRecord, now_ms};
use kiln_build::{Plan, Recipe, content};
use kiln_core::Cid;
use kiln_node::journal::action as journal;
use kiln_store::Store;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub mod schedules;

/// Submissions running at once; more are refused with 503.
pub const MAX_RUNNING: usize = 8;
/// Submissions remembered (the oldest finished ones are forgotten first).
pub const KEEP_SUBMISSIONS: usize = 64;
/// Source trees kept written out under `builds/src`.
pub const KEEP_SOURCES: usize = 16;
/// Bytes of events a submission keeps in memory (the oldest go first).
pub const EVENT_BUDGET: usize = 4 << 20;
/// The largest `POST /builds` body.
const MAX_REQUEST: usize = 64 << 10;
/// The longest `origin` and `requested_by`.
const MAX_LABEL: usize = 4096;
/// Builds listed by default, and at most.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100_000;

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The daemon's build service: what every build handler reaches through [`AppState`].
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
}

#[derive(Default)]
struct Table {
    last: u64,
    /// Oldest first.
    subs: VecDeque<Arc<Submission>>,
    /// Written-out source trees, least recently used first, with how many running
    /// submissions use each.
    sources: VecDeque<(Cid, usize)>,
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
        }))
    }

    /// The build history and action cache.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The daemon is stopping: refuse new builds, end every event stream and live page, and
    /// mark the steps still running as interrupted in the history (their threads die with
    /// the process). Blocking (it writes the index).
    pub fn close(&self) {
        self.closing.send_replace(true);
        self.sched.stop();
        let running: Vec<i64> = lock(&self.table)
            .subs
            .iter()
            .flat_map(|s| s.running_builds())
            .collect();
        for id in running {
            if let Err(e) =
                self.index
                    .finish(id, "interrupted: the daemon stopped", None, None, now_ms())
            {
                tracing::warn!("marking build {id} interrupted: {e}");
            }
        }
    }

    /// Whether [`BuildService::close`] was called.
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Submission `sN`, while remembered.
    pub(crate) fn submission(&self, n: u64) -> Option<Arc<Submission>> {
        lock(&self.table).subs.iter().find(|s| s.id == n).cloned()
    }

    /// Remembered submissions, newest first.
    pub(crate) fn submissions(&self) -> Vec<Arc<Submission>> {
        lock(&self.table).subs.iter().rev().cloned().collect()
    }

    /// The remembered submission that ran build `id`, and the step.
    pub(crate) fn submission_of(&self, id: i64) -> Option<(Arc<Submission>, String)> {
        lock(&self.table)
            .subs
            .iter()
            .find_map(|s| s.step_of(id).map(|step| (s.clone(), step)))
    }

    /// A stored record's content.
    pub(crate) fn record(&self, cid: &Cid) -> Option<kiln_build::record::BuildRecord> {
        let bytes = self.store.get(cid).ok()??;
        SignedRecord::decode(&bytes).ok().map(|r| r.record)
    }

    /// Whether a new build may start now: not while stopping, nor with [`MAX_RUNNING`]
    /// running (503).
    fn admit(&self) -> Result<(), ApiError> {
        if *self.closing.borrow() {
            return Err(ApiError::unavailable("the daemon is stopping"));
        }
        let running = lock(&self.table)
            .subs
            .iter()
            .filter(|s| !s.is_done())
            .count();
        if running >= MAX_RUNNING {
            return Err(ApiError::unavailable(format!(
                "{running} builds are running, the most this daemon runs at once; try again when one ends"
            )));
        }
        Ok(())
    }

    /// Start a build (blocking: writes the source tree out and reads the recipe).
    pub(crate) fn submit(self: &Arc<Self>, req: BuildRequest) -> Result<Arc<Submission>, ApiError> {
        let upload = upload_owner(req.upload.as_deref())?;
        let submitted = self.submit_inner(&req);
        // The upload's pin goes whether the build started (it holds the source itself now)
        // or not.
        if let (Some(owner), Some(source)) = (&upload, &req.source) {
            release_upload(&self.store, owner, source);
        }
        submitted
    }

    fn submit_inner(self: &Arc<Self>, req: &BuildRequest) -> Result<Arc<Submission>, ApiError> {
        let req = req.clone();
        self.admit()?;
        let requested_by = match &req.requested_by {
            Some(w) => format!("kiln API: {}", label(w, "requested_by")?),
            None => "kiln API".to_string(),
        };
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
                    return Err(ApiError::bad_request(
                        "\"timeout\" is for action builds; a recipe's steps have their own limits",
                    ));
                }
                self.submit_recipe(source, &req, opts)
            }
            (None, Some(action)) => {
                if !req.params.is_empty() || req.check || req.origin.is_some() {
                    return Err(ApiError::bad_request(
                        "an action build takes no \"params\", \"check\" or \"origin\"",
                    ));
                }
                self.submit_action(action, req.timeout.as_deref().unwrap_or("30s"), opts)
            }
            _ => Err(ApiError::bad_request(
                "give either \"source\" (the CID of a source tree holding kiln.toml) or \"action\" (an action key)",
            )),
        }
    }

    fn submit_recipe(
        self: &Arc<Self>,
        source: &str,
        req: &BuildRequest,
        opts: Options,
    ) -> Result<Arc<Submission>, ApiError> {
        let (cid, origin) = source_and_origin(source, req.origin.as_deref())?;
        let (recipe, guard) = self.open_recipe(&cid, &origin)?;
        let bad = |e: kiln_build::Error| ApiError::bad_request(e.to_string());
        let plan = Plan::with_options(&recipe, &req.params, &self.plan_options()).map_err(bad)?;
        Ok(self.launch(
            Launch {
                source: cid,
                origin,
                params: req.params.clone(),
                schedule: None,
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
    fn open_recipe(
        self: &Arc<Self>,
        cid: &Cid,
        origin: &str,
    ) -> Result<(Recipe, SourceInUse), ApiError> {
        let (dir, guard) = self.source_dir(cid)?;
        let file = PathBuf::from(origin);
        let bad = |e: kiln_build::Error| ApiError::bad_request(e.to_string());
        // Never read through a symlink: the tree, and its recipe, must be what they say.
        let kind = |p: &std::path::Path| std::fs::symlink_metadata(p).map(|m| m.file_type());
        if !kind(&dir).is_ok_and(|t| t.is_dir()) {
            return Err(ApiError::bad_request(format!(
                "source {cid} is not a directory (a build's source is a tree holding {})",
                kiln_build::recipe::RECIPE_FILE
            )));
        }
        if kind(&dir.join(kiln_build::recipe::RECIPE_FILE)).is_ok_and(|t| t.is_symlink()) {
            return Err(ApiError::bad_request(format!(
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
        let sub = self.add(what, steps);
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
                Ok(summary) => BuildResult::from_summary(&summary),
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
        action: &str,
        timeout: &str,
        opts: Options,
    ) -> Result<Arc<Submission>, ApiError> {
        let cid = kiln_core::cids::parse_cid(action)
            .map_err(|e| ApiError::bad_request(format!("action: {e}")))?;
        let limit = parse_duration(timeout).map_err(ApiError::bad_request)?;
        let sub = self.add(What::Action { action: cid }, Vec::new());
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
        kiln_node::journal::record(
            &store,
            &kiln_node::journal::entry(&caller, journal::BUILD_STARTED, &target)
                .detail(sub.what.describe()),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("build s{}", sub.id))
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
                    .unwrap_or_else(|_| {
                        BuildResult::error(
                            "the build failed inside kiln (a panic; see the daemon's log)",
                        )
                    });
                let (ok, summary) = result.journal_outcome();
                let entry = kiln_node::journal::entry(&caller, journal::BUILD_FINISHED, &target);
                kiln_node::journal::record(
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

    fn add(&self, what: What, steps: Vec<StepView>) -> Arc<Submission> {
        let mut t = lock(&self.table);
        t.last += 1;
        let sub = Arc::new(Submission {
            id: t.last,
            what,
            started_ms: now_ms(),
            state: Mutex::new(SubState {
                steps,
                events: VecDeque::new(),
                next_seq: 0,
                kept: 0,
                lines: crate::types::EventLines::default(),
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
    fn source_dir(self: &Arc<Self>, cid: &Cid) -> Result<(PathBuf, SourceInUse), ApiError> {
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
                    return Err(ApiError::not_found(format!(
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
                    } => ApiError::not_found(format!(
                        "source {cid} is not completely in this repository: {e}"
                    )),
                    kiln_build::Error::Write { .. } => ApiError::internal(e.to_string()),
                    _ => ApiError::bad_request(format!("source {cid}: {e}")),
                });
            }
            if let Err(e) = std::fs::rename(&tmp, &dir) {
                let _ = kiln_build::exec::remove_tree(&tmp);
                if std::fs::symlink_metadata(&dir).is_err() {
                    return Err(ApiError::internal(format!(
                        "creating {}: {e}",
                        dir.display()
                    )));
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
}

/// A source CID as a client gives it and the recipe's name in messages (`origin`, default
/// `CID/kiln.toml`).
fn source_and_origin(source: &str, origin: Option<&str>) -> Result<(Cid, String), ApiError> {
    let cid = kiln_core::cids::parse_cid(source)
        .map_err(|e| ApiError::bad_request(format!("source: {e}")))?;
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
fn label<'a>(v: &'a str, what: &str) -> Result<&'a str, ApiError> {
    if v.is_empty() || v.len() > MAX_LABEL || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
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
pub(crate) enum What {
    Recipe {
        source: Cid,
        origin: String,
        params: BTreeMap<String, String>,
        check: bool,
        /// The schedule that submitted it.
        schedule: Option<i64>,
    },
    Action {
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
pub(crate) struct Submission {
    pub(crate) id: u64,
    pub(crate) what: What,
    pub(crate) started_ms: u64,
    state: Mutex<SubState>,
    /// Bumped whenever an event is added.
    changed: watch::Sender<u64>,
    /// Set by `POST …/builds/sN/cancel`: the build's running steps are killed, no other
    /// starts.
    pub(crate) cancel: Arc<std::sync::atomic::AtomicBool>,
}

struct SubState {
    steps: Vec<StepView>,
    /// (sequence number, event, bytes it counts for), oldest first.
    events: VecDeque<(u64, Arc<BuildEvent>, usize)>,
    next_seq: u64,
    kept: usize,
    lines: crate::types::EventLines,
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

/// What a follower gets: events with their sequence numbers (none for a gap notice).
pub(crate) type Followed = (Option<u64>, Arc<BuildEvent>);

impl Submission {
    /// Who asked for it: its schedule, else the local administrator through kiln's API.
    fn caller(&self) -> kiln_node::Caller {
        match &self.what {
            What::Recipe {
                schedule: Some(n), ..
            } => kiln_node::Caller::schedule(*n),
            _ => kiln_node::Caller::local(kiln_node::Via::Api),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SubState> {
        lock(&self.state)
    }

    /// `sN`.
    pub(crate) fn name(&self) -> String {
        format!("s{}", self.id)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.lock().result.is_some()
    }

    /// Whether it was asked to compare rebuilt outputs with cached ones.
    pub(crate) fn check(&self) -> bool {
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
    pub(crate) fn since(&self, next: u64) -> (Vec<Followed>, bool, u64) {
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
    pub(crate) fn view(&self) -> SubmissionView {
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
            events: format!("{}/builds/{name}/events", crate::types::PREFIX),
            log: format!("{}/builds/{name}/log", crate::types::PREFIX),
            id: name,
        }
    }

    /// What `kiln build` printed for this build so far (standard error and output
    /// together), from the events kept.
    pub(crate) fn transcript(&self) -> String {
        let (events, _, _) = self.since(0);
        let mut out = Vec::new();
        for (_, ev) in events {
            render(&ev, self.check(), &mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The output lines of `step` kept so far.
    pub(crate) fn step_lines(&self, step: &str) -> String {
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
pub(crate) fn render(ev: &BuildEvent, check: bool, out: &mut Vec<u8>) {
    use std::io::Write;
    match ev {
        BuildEvent::Done(r) => match &r.error {
            Some(e) => {
                let _ = writeln!(out, "Error: {e}");
            }
            None => {
                let mut err = Vec::new();
                let _ = r.report(check, out, &mut err);
                out.extend_from_slice(&err);
            }
        },
        other => {
            if let Some(line) = other.terminal() {
                let _ = writeln!(out, "{line}");
            }
        }
    }
}

/// The events of `sub` from `from` on, then live until its `done` event (or until the
/// daemon stops).
pub(crate) fn follow(
    sub: Arc<Submission>,
    from: u64,
    closing: watch::Receiver<bool>,
) -> impl futures_util::Stream<Item = Followed> + Send + 'static {
    let changed = sub.changed.subscribe();
    let state = (
        sub,
        from,
        changed,
        closing,
        VecDeque::<Followed>::new(),
        false,
    );
    futures_util::stream::unfold(
        state,
        |(sub, mut next, mut changed, mut closing, mut buf, mut ended)| async move {
            loop {
                if let Some(item) = buf.pop_front() {
                    return Some((item, (sub, next, changed, closing, buf, ended)));
                }
                if ended || *closing.borrow() {
                    return None;
                }
                let (items, done, after) = sub.since(next);
                next = after;
                if !items.is_empty() {
                    ended = items
                        .iter()
                        .any(|(_, e)| matches!(**e, BuildEvent::Done(_)));
                    buf.extend(items);
                    continue;
                }
                if done {
                    return None;
                }
                tokio::select! {
                    r = changed.changed() => if r.is_err() { return None },
                    r = closing.changed() => if r.is_err() { return None },
                }
            }
        },
    )
}

/// Why a build could not be found by `kiln log`'s argument.
#[derive(Debug)]
pub enum FindError {
    /// Neither a number nor a CID (400).
    NotAnId(String),
    /// No such build (404).
    NotFound(String),
    /// The index failed (500).
    Failed(String),
}

impl std::fmt::Display for FindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FindError::NotAnId(m) | FindError::NotFound(m) | FindError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<FindError> for ApiError {
    fn from(e: FindError) -> ApiError {
        match e {
            FindError::NotAnId(m) => ApiError::bad_request(m),
            FindError::NotFound(m) => ApiError::not_found(m),
            FindError::Failed(m) => ApiError::internal(m),
        }
    }
}

/// A build of the history by its number, or the latest build of an action, or the one that
/// made a record (what `kiln log` and `GET /builds/{id}` take).
pub fn find_build(index: &Index, arg: &str) -> Result<BuildRow, FindError> {
    let failed = |e: kiln_build::Error| FindError::Failed(e.to_string());
    let row = if let Ok(id) = arg.parse::<i64>() {
        index.build(id).map_err(failed)?
    } else {
        let cid = kiln_core::cids::parse_cid(arg).map_err(|_| {
            FindError::NotAnId(format!("{arg:?} is neither a build number nor a CID"))
        })?;
        index.build_of(&cid).map_err(failed)?
    };
    row.ok_or_else(|| FindError::NotFound(format!("no build {arg:?} in this repository")))
}

/// The message for a build without a stored log.
pub fn no_log(row: &BuildRow) -> String {
    format!("build {} has no stored log ({})", row.id, row.status)
}

/// `sN` → N.
pub(crate) fn submission_number(id: &str) -> Option<u64> {
    let n = id.strip_prefix('s')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

// ---------------------------------------------------------------------------------------
// The routes.

/// Every path [`router`] serves (with the schedules').
#[cfg(test)]
pub const PATHS: [&str; 7] = [
    "/api/kiln/v1/builds",
    "/api/kiln/v1/builds/{id}",
    "/api/kiln/v1/builds/{id}/log",
    "/api/kiln/v1/builds/{id}/events",
    "/api/kiln/v1/builds/{id}/cancel",
    "/api/kiln/v1/schedules",
    "/api/kiln/v1/schedules/{id}",
];

/// The build routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/kiln/v1/builds", get(list).post(submit))
        .route("/api/kiln/v1/builds/{id}", get(show))
        .route("/api/kiln/v1/builds/{id}/log", get(log))
        .route("/api/kiln/v1/builds/{id}/events", get(events))
        .route(
            "/api/kiln/v1/builds/{id}/cancel",
            axum::routing::post(cancel),
        )
        .merge(schedules::router())
}

/// Start a build from a parsed request (blocking work on the blocking pool).
pub(crate) async fn start(s: &AppState, req: BuildRequest) -> Result<Arc<Submission>, ApiError> {
    let svc = s.builds.clone();
    tokio::task::spawn_blocking(move || svc.submit(req)).await?
}

async fn submit(State(s): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_REQUEST).await.map_err(|e| {
        ApiError::payload_too_large(format!(
            "a build request is at most {MAX_REQUEST} bytes of JSON: {e}"
        ))
    })?;
    let req: BuildRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("bad build request: {e}")))?;
    let sub = start(&s, req).await?;
    let view = sub.view();
    tracing::info!(build = %view.id, kind = %view.kind, "build submitted");
    let location = format!("{}/builds/{}", crate::types::PREFIX, view.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BuildList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let svc = s.builds.clone();
    let rows = tokio::task::spawn_blocking(move || svc.index.recent(limit))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(BuildList {
        builds: rows.iter().map(BuildRowView::from).collect(),
        submissions: s.builds.submissions().iter().map(|s| s.view()).collect(),
    }))
}

/// A build of the history with its record's content.
pub(crate) async fn build_view(s: &AppState, id: &str) -> Result<BuildView, ApiError> {
    let svc = s.builds.clone();
    let arg = id.to_string();
    let (row, record) = tokio::task::spawn_blocking(move || {
        let row = find_build(&svc.index, &arg)?;
        let record = row.record.and_then(|r| svc.record(&r));
        Ok::<_, FindError>((row, record))
    })
    .await??;
    Ok(BuildView {
        submission: s.builds.submission_of(row.id).map(|(sub, _)| sub.name()),
        build: BuildRowView::from(&row),
        record: record.as_ref().map(RecordView::from),
    })
}

async fn show(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    if let Some(n) = submission_number(&id) {
        return match s.builds.submission(n) {
            Some(sub) => Ok(Json(sub.view()).into_response()),
            None => Err(gone(&id)),
        };
    }
    Ok(Json(build_view(&s, &id).await?).into_response())
}

/// `POST /builds/sN/cancel`: stop a running submission (its running steps are killed and
/// recorded `cancelled`; no other step starts). 202 with the submission as it is now; a
/// submission that has ended is answered as it is (200), nothing changed.
async fn cancel(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let caller = kiln_node::Caller::local(kiln_node::Via::Api);
    let (sub, stopping) = cancel_submission(&s, &id, caller)?;
    let status = if stopping {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sub.view())).into_response())
}

/// Ask submission `id` to stop for `caller` (recorded in the journal): the submission, and
/// whether it was running (an ended one is left as it is).
pub(crate) fn cancel_submission(
    s: &AppState,
    id: &str,
    caller: kiln_node::Caller,
) -> Result<(Arc<Submission>, bool), ApiError> {
    let n = submission_number(id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{id:?} is not a submission (sN): only a build submitted to the daemon can be cancelled"
        ))
    })?;
    let sub = s.builds.submission(n).ok_or_else(|| gone(id))?;
    if sub.is_done() {
        return Ok((sub, false));
    }
    sub.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    tracing::info!(submission = %id, via = %caller.via, "build cancelled");
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || {
        kiln_node::journal::record(
            &store,
            &kiln_node::journal::entry(&caller, journal::BUILD_CANCEL, format!("s{n}")),
        )
    });
    Ok((sub, true))
}

fn gone(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no submission {id:?}: this daemon does not remember it (submissions are kept while it runs; the steps' builds are in the history)"
    ))
}

fn text(body: impl Into<Body>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

impl From<FindError> for crate::ui::UiError {
    fn from(e: FindError) -> Self {
        let status = match &e {
            FindError::NotAnId(_) => StatusCode::BAD_REQUEST,
            FindError::NotFound(_) => StatusCode::NOT_FOUND,
            FindError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        crate::ui::UiError::new(status, e.to_string())
    }
}

async fn log(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    if let Some(n) = submission_number(&id) {
        return match s.builds.submission(n) {
            Some(sub) => Ok(text(sub.transcript())),
            None => Err(gone(&id)),
        };
    }
    let svc = s.builds.clone();
    let arg = id.clone();
    let row = tokio::task::spawn_blocking(move || find_build(&svc.index, &arg)).await??;
    match row.log {
        Some(log) => {
            let store = s.store.clone();
            Ok(text(crate::stream::blocking_body(move |w| {
                kiln_core::export::read_file(&store, &log, 0, None, w)
                    .map(drop)
                    .map_err(|e| format!("reading log {log} of build {}: {e}", row.id))
            })))
        }
        None => match s.builds.submission_of(row.id) {
            Some((sub, step)) if row.status == "running" => Ok(text(sub.step_lines(&step))),
            _ => Err(ApiError::not_found(no_log(&row))),
        },
    }
}

async fn events(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    let Some(n) = submission_number(&id) else {
        return Err(ApiError::not_found(format!(
            "{id:?}: events stream for submissions (sN, as POST /builds answers) only"
        )));
    };
    let sub = s.builds.submission(n).ok_or_else(|| gone(&id))?;
    // A client that reconnects says what it saw last.
    let from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |n| n + 1);
    let stream = follow(sub, from, s.builds.closing()).map(|(seq, ev)| {
        let mut e = SseEvent::default()
            .event(ev.name())
            .data(serde_json::to_string(&*ev).unwrap_or_default());
        if let Some(seq) = seq {
            e = e.id(seq.to_string());
        }
        Ok::<_, std::convert::Infallible>(e)
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The owner a request's `upload` names (`upload:TOKEN`), if it names one.
pub(crate) fn upload_owner(upload: Option<&str>) -> Result<Option<kiln_store::PinOwner>, ApiError> {
    match upload {
        None => Ok(None),
        Some(u) if u.starts_with(kiln_build::owners::UPLOAD_PREFIX) => {
            Ok(Some(kiln_store::PinOwner::new(u).map_err(|e| {
                ApiError::bad_request(format!("upload: {e}"))
            })?))
        }
        Some(u) => Err(ApiError::bad_request(format!(
            "upload must name an owner upload:TOKEN, not {u:?}"
        ))),
    }
}

/// Remove the upload's pin of `source` (once what it was for holds the source itself, or
/// was refused).
pub(crate) fn release_upload(store: &Store, owner: &kiln_store::PinOwner, source: &str) {
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
    use crate::openapi::tests::conforms;
    use crate::types::{BuildEvent, SubmissionView};
    use crate::{AppState, NodeInfo};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::Value;
    use std::sync::Arc;
    use tower::ServiceExt;

    const RECIPE: &str = r#"
[params]
title = "Docs"

[step.site]
builder = "builtin"
command = ["markdown-site", "--title", "{title}", "docs", "out/site"]
inputs = { "docs" = "docs" }
outputs = ["out/site"]
"#;

    struct Fixture {
        dir: tempfile::TempDir,
        store: kiln_store::Store,
        app: axum::Router,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store =
            kiln_store::Store::open(dir.path(), kiln_store::StoreOptions::default()).unwrap();
        let builds = crate::BuildService::open(
            store.clone(),
            kiln_id::NodeKey::generate().unwrap(),
            dir.path().join("builds"),
            std::env::current_exe().unwrap(),
        )
        .unwrap();
        let app = crate::api_router(AppState {
            store: store.clone(),
            node: Arc::new(NodeInfo {
                peer_id: "12D3KooWtest".into(),
                did: "did:key:z6Mktest".into(),
                public_key: vec![],
                agent_version: "kiln/test".into(),
                addresses: vec![],
            }),
            metrics: None,
            keep_events: kiln_node::journal::DEFAULT_RETENTION,
            builds,
        });
        Fixture { dir, store, app }
    }

    /// A source tree with `recipe` and a docs directory, added to the store (unpinned).
    fn source(f: &Fixture, name: &str, recipe: &str) -> String {
        let t = f.dir.path().join(name);
        std::fs::create_dir_all(t.join("docs")).unwrap();
        std::fs::write(t.join("kiln.toml"), recipe).unwrap();
        std::fs::write(
            t.join("docs/README.md"),
            "# Hello\n\nSee [the guide](guide.md).\n",
        )
        .unwrap();
        std::fs::write(t.join("docs/guide.md"), "# Guide\n\nText.\n").unwrap();
        let mut s = f.store.session().unwrap();
        let cid = kiln_build::content::import_tree(&mut s, &t).unwrap().cid;
        s.commit().unwrap();
        cid.to_string()
    }

    async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn post(app: &axum::Router, body: Value) -> (StatusCode, Value) {
        let (st, text) = call(
            app,
            Request::post("/api/kiln/v1/builds")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
        (st, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
        call(app, Request::get(uri).body(Body::empty()).unwrap()).await
    }

    /// The server-sent events of a submission, to the end.
    async fn events(app: &axum::Router, id: &str) -> Vec<BuildEvent> {
        let (st, text) = get(app, &format!("/api/kiln/v1/builds/{id}/events")).await;
        assert_eq!(st, StatusCode::OK, "{text}");
        let mut out = Vec::new();
        let (mut name, mut data) = (String::new(), String::new());
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            } else if line.is_empty() && !data.is_empty() {
                let ev: BuildEvent = serde_json::from_str(&data).unwrap();
                assert_eq!(ev.name(), name);
                out.push(ev);
                data.clear();
            }
        }
        out
    }

    #[tokio::test]
    async fn a_recipe_builds_and_its_events_logs_and_views_follow() {
        let f = fixture();
        let src = source(&f, "project", RECIPE);
        let doc = crate::openapi::spec();
        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": src, "params": {"title": "Mine"}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        conforms(
            &doc,
            &doc["components"]["schemas"]["Submission"],
            &v,
            "submit",
        );
        assert_eq!(v["id"], "s1");
        assert_eq!(v["origin"], format!("{src}/kiln.toml"));
        assert_eq!(v["steps"][0]["name"], "site");

        let evs = events(&f.app, "s1").await;
        let names: Vec<&str> = evs.iter().map(BuildEvent::name).collect();
        assert_eq!(names.first(), Some(&"started"), "{names:?}");
        assert_eq!(names.last(), Some(&"done"), "{names:?}");
        let fin = names.iter().position(|n| *n == "finished").unwrap();
        assert!(
            names[1..fin].iter().all(|n| *n == "output") && fin > 1,
            "{names:?}"
        );
        let BuildEvent::Done(result) = evs.last().unwrap() else {
            unreachable!()
        };
        assert!(result.succeeded(), "{result:?}");
        let site = result.done[0].outputs["out/site"].clone();
        // The output is the site: an index page made from README.md.
        let index = kiln_core::export::resolve(
            &f.store,
            &kiln_core::cids::ContentPath::parse(&format!("{site}/index.html")).unwrap(),
        )
        .unwrap();
        let mut html = Vec::new();
        kiln_core::export::read_file(&f.store, &index, 0, None, &mut html).unwrap();
        assert!(String::from_utf8_lossy(&html).contains("Mine"));

        // Replayed the same after the end.
        assert_eq!(events(&f.app, "s1").await, evs);

        let (st, body) = get(&f.app, "/api/kiln/v1/builds/s1").await;
        assert_eq!(st, StatusCode::OK);
        let v: Value = serde_json::from_str(&body).unwrap();
        conforms(&doc, &doc["components"]["schemas"]["Submission"], &v, "s1");
        let sub: SubmissionView = serde_json::from_value(v).unwrap();
        assert_eq!(sub.state, "ok");
        assert_eq!(sub.steps[0].state, "ok");
        let build = sub.steps[0].build.unwrap();

        let (st, body) = get(&f.app, "/api/kiln/v1/builds?limit=5").await;
        assert_eq!(st, StatusCode::OK);
        let v: Value = serde_json::from_str(&body).unwrap();
        conforms(&doc, &doc["components"]["schemas"]["BuildList"], &v, "list");
        assert_eq!(v["builds"][0]["id"], build);
        assert_eq!(v["builds"][0]["status"], "ok");
        assert_eq!(v["submissions"][0]["id"], "s1");

        for id in [build.to_string(), sub.steps[0].record.clone().unwrap()] {
            let (st, body) = get(&f.app, &format!("/api/kiln/v1/builds/{id}")).await;
            assert_eq!(st, StatusCode::OK, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            conforms(&doc, &doc["components"]["schemas"]["Build"], &v, "build");
            assert_eq!(v["submission"], "s1");
            assert_eq!(v["record"]["outputs"]["out/site"], site.as_str());
            assert_eq!(v["record"]["requested_by"], "kiln API");
        }
        let (st, log) = get(&f.app, &format!("/api/kiln/v1/builds/{build}/log")).await;
        assert_eq!(st, StatusCode::OK);
        assert!(log.contains("README.md -> index.html"), "{log}");
        let (st, transcript) = get(&f.app, "/api/kiln/v1/builds/s1/log").await;
        assert_eq!(st, StatusCode::OK);
        assert!(
            transcript.starts_with(&format!("[site] running (build {build})\n")),
            "{transcript}"
        );
        assert!(
            transcript.contains("[site] page README.md -> index.html\n"),
            "{transcript}"
        );
        assert!(
            transcript.contains(&format!("{site} site:out/site\n")),
            "{transcript}"
        );
        assert!(
            transcript.ends_with("1 step done (0 cached)\n"),
            "{transcript}"
        );

        // Again: answered from the cache.
        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": src, "params": {"title": "Mine"}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let evs = events(&f.app, "s2").await;
        assert_eq!(
            evs.iter().map(BuildEvent::name).collect::<Vec<_>>(),
            ["cached", "done"]
        );
        let (_, body) = get(&f.app, "/api/kiln/v1/builds/s2").await;
        let sub: SubmissionView = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (sub.state.as_str(), sub.steps[0].state.as_str()),
            ("ok", "cached")
        );

        // An action by its key: found in the cache.
        let action = sub.steps[0].action.clone().unwrap();
        let (st, v) = post(
            &f.app,
            serde_json::json!({"action": action, "timeout": "5s"}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let evs = events(&f.app, &id).await;
        let BuildEvent::Done(r) = &evs[0] else {
            panic!("{evs:?}")
        };
        assert!(
            r.done[0].cached && r.done[0].outputs["out/site"] == site,
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn bad_submissions_are_refused_with_one_line() {
        let f = fixture();
        let bad = source(
            &f,
            "bad",
            &RECIPE.replace("outputs = [\"out/site\"]", "outputs = []"),
        );
        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": bad, "origin": "proj/kiln.toml"}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let m = v["Message"].as_str().unwrap();
        assert!(
            m.starts_with("proj/kiln.toml: step \"site\": outputs:"),
            "{m}"
        );
        assert!(!m.contains('\n'));

        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": bad, "params": {"nope": "1"}}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

        let good = source(&f, "good", RECIPE);
        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": good, "params": {"nope": "1"}}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(
            v["Message"]
                .as_str()
                .unwrap()
                .contains("unknown parameter \"nope\""),
            "{v}"
        );

        let absent = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::DAG_PB, b"absent");
        let (st, v) = post(&f.app, serde_json::json!({"source": absent.to_string()})).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        for body in [
            serde_json::json!({}),
            serde_json::json!({"source": good, "action": good}),
            serde_json::json!({"source": "not-a-cid"}),
            serde_json::json!({"source": good, "timeout": "1s"}),
            serde_json::json!({"action": good, "timeout": "soon"}),
            serde_json::json!({"source": good, "surprise": 1}),
            serde_json::json!({"source": good, "origin": "two\nlines"}),
        ] {
            let (st, v) = post(&f.app, body.clone()).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        }
        // A tree without a recipe.
        let (st, v) = post(&f.app, serde_json::json!({"source": kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"").to_string()})).await;
        assert!(
            st == StatusCode::BAD_REQUEST || st == StatusCode::NOT_FOUND,
            "{st} {v}"
        );

        // An action that is not here: the build ends with the error.
        let (st, v) = post(&f.app, serde_json::json!({"action": "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let evs = events(&f.app, v["id"].as_str().unwrap()).await;
        let [BuildEvent::Done(r)] = &evs[..] else {
            panic!("{evs:?}")
        };
        assert!(
            r.error.as_deref().unwrap().contains("no such action"),
            "{r:?}"
        );

        // Cross-site: refused before anything runs.
        let (st, _) = call(
            &f.app,
            Request::post("/api/kiln/v1/builds")
                .header("content-type", "application/json")
                .header("sec-fetch-site", "cross-site")
                .body(Body::from(serde_json::json!({"source": good}).to_string()))
                .unwrap(),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        for uri in [
            "/api/kiln/v1/builds/s99",
            "/api/kiln/v1/builds/77",
            "/api/kiln/v1/builds/s99/events",
            "/api/kiln/v1/builds/5/events",
            "/api/kiln/v1/builds/77/log",
        ] {
            assert_eq!(get(&f.app, uri).await.0, StatusCode::NOT_FOUND, "{uri}");
        }
        assert_eq!(
            get(&f.app, "/api/kiln/v1/builds/garbage").await.0,
            StatusCode::BAD_REQUEST
        );
        let (_, body) = get(&f.app, "/api/kiln/v1/builds/garbage/log").await;
        assert!(
            body.contains("\\\"garbage\\\" is neither a build number nor a CID"),
            "{body}"
        );
    }

    #[test]
    fn lines_are_whole_and_partial_lines_come_at_the_end() {
        use kiln_build::exec::Event;
        let mut l = crate::types::EventLines::default();
        let out = |evs: Vec<BuildEvent>| -> Vec<String> {
            evs.iter().filter_map(BuildEvent::terminal).collect()
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
        let svc = crate::BuildService::open(
            store,
            kiln_id::NodeKey::generate().unwrap(),
            dir.path().join("builds"),
            "/nonexistent".into(),
        )
        .unwrap();
        let cid = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"a");
        let sub = svc.add(super::What::Action { action: cid }, Vec::new());
        sub.observe(&Event::Started {
            step: "s",
            build: 1,
        });
        let line = vec![b'x'; 1000];
        let mut chunk = line.clone();
        chunk.push(b'\n');
        let lines = 2 * super::EVENT_BUDGET / line.len();
        for _ in 0..lines {
            sub.observe(&Event::Output {
                step: "s",
                bytes: &chunk,
            });
        }
        sub.finish(crate::types::BuildResult::error("stopped"));
        let (events, done, next) = sub.since(0);
        assert!(done);
        assert_eq!(next, lines as u64 + 2);
        let BuildEvent::Gap { missed } = &*events[0].1 else {
            panic!("no gap first: {:?}", events[0])
        };
        assert_eq!(*missed + events.len() as u64 - 1, next);
        assert!(matches!(&*events.last().unwrap().1, BuildEvent::Done(_)));
        // What is kept fits the budget, and a follower that is up to date gets nothing new.
        assert!(events.len() < lines / 2 + 10, "{}", events.len());
        assert!(sub.since(next).0.is_empty());
        assert!(sub.transcript().starts_with("[kiln] "));
        assert!(sub.transcript().ends_with("Error: stopped\n"));
    }

    /// Run git in `dir` with a fixed identity and no user or system configuration.
    fn git(dir: &std::path::Path, args: &[&str]) {
        let o = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .expect("git is installed");
        assert!(o.status.success(), "git {args:?}: {o:?}");
    }

    async fn send(app: &axum::Router, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let (st, text) = call(
            app,
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from(if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                }))
                .unwrap(),
        )
        .await;
        (st, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn schedules_are_registered_pinned_listed_and_removed() {
        let f = fixture();
        let doc = crate::openapi::spec();
        let repo = f.dir.path().join("repo");
        std::fs::create_dir_all(repo.join("docs")).unwrap();
        std::fs::write(repo.join("README.md"), "# One\n").unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "README.md"]);
        git(&repo, &["commit", "-q", "-m", "one"]);
        let scheduled = format!(
            "schedule = \"@every 1s\"\n{}",
            RECIPE.replace(
                "\"docs\" = \"docs\"",
                &format!("\"docs\" = \"git+file://{}#main\"", repo.display())
            )
        );
        let src = source(&f, "scheduled", &scheduled);
        let uri = "/api/kiln/v1/schedules";

        // Refused: no schedule, a bad recipe, a ref that is not there, a source not here.
        let plain = source(&f, "plain", RECIPE);
        let (st, v) = send(
            &f.app,
            "POST",
            uri,
            serde_json::json!({"source": plain, "origin": "p/kiln.toml"}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        let m = v["Message"].as_str().unwrap();
        assert!(
            m.starts_with("p/kiln.toml: the recipe has no schedule"),
            "{m}"
        );
        let bad = source(
            &f,
            "bad",
            &scheduled.replace("outputs = [\"out/site\"]", "outputs = []"),
        );
        let (st, v) = send(&f.app, "POST", uri, serde_json::json!({"source": bad})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        let m = v["Message"].as_str().unwrap();
        assert!(
            m.contains("step \"site\": outputs:") && !m.contains('\n'),
            "{m}"
        );
        let nope = source(&f, "nope", &scheduled.replace("#main", "#nope"));
        let (st, v) = send(&f.app, "POST", uri, serde_json::json!({"source": nope})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["Message"]
                .as_str()
                .unwrap()
                .contains("no branch or tag \"nope\""),
            "{v}"
        );
        let absent = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::DAG_PB, b"absent");
        let (st, _) = send(
            &f.app,
            "POST",
            uri,
            serde_json::json!({"source": absent.to_string()}),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        for body in [
            serde_json::json!({}),
            serde_json::json!({"source": src, "check": true}),
            serde_json::json!({"source": "not-a-cid"}),
        ] {
            assert_eq!(
                send(&f.app, "POST", uri, body.clone()).await.0,
                StatusCode::BAD_REQUEST,
                "{body}"
            );
        }

        // Registered, and pinned; the same again is the same schedule.
        let body =
            serde_json::json!({"source": src, "origin": "s/kiln.toml", "params": {"title": "T"}});
        let (st, v) = send(&f.app, "POST", uri, body.clone()).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        conforms(
            &doc,
            &doc["components"]["schemas"]["Schedule"],
            &v,
            "register",
        );
        let id = v["id"].as_i64().unwrap();
        assert_eq!(v["schedule"], "@every 1s");
        assert_eq!(v["origin"], "s/kiln.toml");
        assert_eq!(v["params"]["title"], "T");
        assert!(v["next_ms"].as_u64().unwrap() > v["created_ms"].as_u64().unwrap());
        assert!(v["last_check_ms"].is_null());
        let (st, again) = send(&f.app, "POST", uri, body.clone()).await;
        assert_eq!((st, again["id"].as_i64()), (StatusCode::OK, Some(id)));
        // The owners of the source's pins.
        let pin = |f: &Fixture| {
            let owners: Vec<String> = f
                .store
                .pins()
                .unwrap()
                .into_iter()
                .filter(|p| p.cid.to_string() == src)
                .map(|p| p.owner.to_string())
                .collect();
            (!owners.is_empty()).then(|| owners.join(","))
        };
        assert_eq!(pin(&f).as_deref(), Some(format!("schedule:{id}").as_str()));
        // Another schedule of the same source (other parameters) holds a pin of its own.
        let (st, other) = send(&f.app, "POST", uri, serde_json::json!({"source": src})).await;
        assert_eq!(st, StatusCode::CREATED, "{other}");
        let other = other["id"].as_i64().unwrap();
        assert_eq!(pin(&f), Some(format!("schedule:{id},schedule:{other}")));

        let (st, list) = send(&f.app, "GET", uri, Value::Null).await;
        assert_eq!(st, StatusCode::OK);
        conforms(
            &doc,
            &doc["components"]["schemas"]["ScheduleList"],
            &list,
            "list",
        );
        assert_eq!(list["schedules"].as_array().unwrap().len(), 2);
        let (st, one) = send(&f.app, "GET", &format!("{uri}/{id}"), Value::Null).await;
        assert_eq!((st, &one["id"]), (StatusCode::OK, &v["id"]));

        // Kept in the index: a service opened on the same repository lists them.
        let again = crate::BuildService::open(
            f.store.clone(),
            kiln_id::NodeKey::generate().unwrap(),
            f.dir.path().join("builds"),
            "/nonexistent".into(),
        )
        .unwrap();
        let ids: Vec<i64> = again.schedule_views().iter().map(|v| v.id).collect();
        assert_eq!(ids, [id, other]);

        // Removed: its pin goes, the other schedule's stays; then that one goes too.
        let (st, gone) = send(&f.app, "DELETE", &format!("{uri}/{id}"), Value::Null).await;
        assert_eq!(st, StatusCode::OK, "{gone}");
        conforms(
            &doc,
            &doc["components"]["schemas"]["Schedule"],
            &gone,
            "delete",
        );
        assert_eq!(
            pin(&f).as_deref(),
            Some(format!("schedule:{other}").as_str())
        );
        assert_eq!(
            send(&f.app, "DELETE", &format!("{uri}/{id}"), Value::Null)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            send(&f.app, "GET", &format!("{uri}/{id}"), Value::Null)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            send(&f.app, "DELETE", &format!("{uri}/x"), Value::Null)
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            send(&f.app, "DELETE", &format!("{uri}/{other}"), Value::Null)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(pin(&f), None);
        let (_, list) = send(&f.app, "GET", uri, Value::Null).await;
        assert_eq!(list["schedules"], serde_json::json!([]));
    }

    #[test]
    fn submission_ids() {
        assert_eq!(super::submission_number("s12"), Some(12));
        for bad in ["s", "12", "s-1", "s1x", "S1", "s+1"] {
            assert_eq!(super::submission_number(bad), None, "{bad}");
        }
    }
}
