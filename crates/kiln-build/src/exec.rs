//! Running builds: the steps of a plan, or one action by its key.
//!
//! A step whose action has a good record in the action cache (and whose outputs are still in
//! the store) is not run. Any other step runs once the steps it takes inputs from are done,
//! up to `slots` at a time: its source inputs are imported into the store, every input is
//! written out once per CID under `builds/content/` (read-only) and bound read-only into the
//! sandbox at its path under `/work`, the command runs, and its declared outputs, its log and
//! its cache directories are imported. A signed [`BuildRecord`] links all of them with the
//! action; the record is stored and, when the step succeeded, becomes the action's cached
//! result and is pinned (`build:STEP`; the pins of one build are made together at its end).

use crate::action::{Action, ActionInput, KILN_VERSION, Plan, PlannedStep};
use crate::error::{Error, Result};
use crate::hold::Hold;
use crate::index::{BuildRow, Index};
use crate::recipe::{Builder, Limits, Recipe};
use crate::record::{BuildRecord, RECORD_FORMAT, SignedRecord, now_ms};
use crate::sandbox::{self, Mount, Root, Spec};
use crate::{builtin, content, owners};
use kiln_core::Cid;
use kiln_core::cids::ContentPath;
use kiln_core::export;
use kiln_store::{NewPin, PinMode, Store};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment every sandboxed command starts with; a step's `env` adds to it and may
/// override it.
pub const DEFAULT_ENV: &[(&str, &str)] = &[
    ("PATH", sandbox::DEFAULT_PATH),
    ("HOME", "/tmp"),
    ("TMPDIR", "/tmp"),
    ("LANG", "C.UTF-8"),
    ("TZ", "UTC"),
    // 1980-01-01, the earliest time a zip file can hold.
    ("SOURCE_DATE_EPOCH", "315532800"),
];

/// The time limit of a step that sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// How much of a failing command's output its error shows.
const TAIL_BYTES: usize = 2048;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Steps run at once.
    pub slots: usize,
    /// Run steps even when cached, and compare their outputs with the cached ones.
    pub check: bool,
    /// Who asked (written in the records).
    pub requested_by: String,
    /// Set to stop the build: running steps are killed (their status `cancelled`) and no
    /// other step starts.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Options {
    /// Whether the build was cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
            check: false,
            requested_by: "local".into(),
            cancel: None,
        }
    }
}

/// What happens during a build, as it happens.
pub enum Event<'e> {
    /// A step's action had a record: nothing runs.
    Cached {
        /// The step.
        step: &'e str,
        /// Its record.
        record: &'e Cid,
    },
    /// A step started running (build number `build`).
    Started {
        /// The step.
        step: &'e str,
        /// The build's number in the index.
        build: i64,
    },
    /// Output of a running step's command.
    Output {
        /// The step.
        step: &'e str,
        /// The bytes, as they came.
        bytes: &'e [u8],
    },
    /// A step ended (well or not).
    Finished {
        /// The step.
        step: &'e str,
        /// Its record.
        record: &'e Cid,
        /// The record's content.
        rec: &'e BuildRecord,
    },
}

/// Receives [`Event`]s; called from the threads running steps.
pub trait Observer: Sync {
    /// One event.
    fn event(&self, e: Event<'_>);
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: Event<'_>) {}
}

/// How a `--check` rebuild compared with the cached result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The record that was cached.
    pub cached: Cid,
    /// Outputs whose content differs from the cached result.
    pub differing: Vec<String>,
}

/// One step's result.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// The step.
    pub name: String,
    /// Its action key.
    pub key: Cid,
    /// Its record.
    pub record: Cid,
    /// The record's content.
    pub rec: BuildRecord,
    /// Answered from the action cache.
    pub cached: bool,
    /// With `--check`, the comparison (none when there was nothing cached to compare with).
    pub check: Option<Check>,
}

/// What a build did.
#[derive(Debug)]
pub struct Summary {
    /// Steps that are done (cached or built), in plan order.
    pub done: Vec<StepResult>,
    /// Steps that failed, with why (a failing command's message ends with its log tail).
    pub failed: Vec<(String, Error)>,
    /// Steps not run because a step they need failed.
    pub skipped: Vec<String>,
}

/// One thing to run.
struct Job<'a> {
    name: String,
    key: Cid,
    action: &'a Action,
    /// The recipe file, or `action CID`, for errors.
    place: String,
    /// Source and git inputs: path in the sandbox → host path (from the plan).
    sources: BTreeMap<String, PathBuf>,
    limits: Limits,
    caches: Vec<String>,
    /// Whose cache directories these are (recipe file and step).
    cache_owner: String,
    origin: String,
}

impl Job<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::Step {
            where_: self.place.clone(),
            step: self.name.clone(),
            message: message.into(),
        }
    }
}

/// A finished run.
struct Ran {
    record: Cid,
    rec: BuildRecord,
    tail: String,
}

/// The build service of one repository.
pub struct Builds<'s> {
    store: &'s Store,
    key: &'s kiln_id::NodeKey,
    dir: PathBuf,
    index: Index,
    helper: PathBuf,
    /// One store session shared by the steps of a build: each step's blocks are flushed
    /// (durable and visible) when it ends, and the build's pins commit it at the end. One
    /// session instead of one per step saves a pack file, a session registration and their
    /// fsyncs per step.
    shared: std::sync::Mutex<Option<kiln_store::Session>>,
}

static RUN_SEQ: AtomicU64 = AtomicU64::new(0);

fn io_err(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io {
        context: context.to_string(),
        source,
    }
}

/// Clear up after kiln processes that died while building (killed, say): their work
/// directories under `dir/run` (`BUILD-PID-N`, whose PID is gone) are removed and their
/// builds, still `running` in the history, are marked interrupted. Their sandboxes died with
/// them. Whoever opens the builds of a repository calls it: `Builds::open`, and the daemon
/// at start.
pub fn sweep_dead_runs(dir: &Path, index: &Index) {
    let Ok(entries) = std::fs::read_dir(dir.join("run")) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let mut parts = name.to_str().unwrap_or("").splitn(3, '-');
        let (Some(Ok(id)), Some(Ok(pid))) = (
            parts.next().map(str::parse::<i64>),
            parts.next().map(str::parse::<i32>),
        ) else {
            continue;
        };
        if sandbox::process_gone(pid) {
            let _ = remove_tree(&e.path());
            let _ = index.interrupt(id, now_ms());
        }
    }
}

impl<'s> Builds<'s> {
    /// Open the build service: `dir` holds the index and working directories (normally
    /// `$KILN_HOME/builds`); `helper` is the kiln executable, started as the sandbox helper.
    pub fn open(
        store: &'s Store,
        key: &'s kiln_id::NodeKey,
        dir: &Path,
        helper: &Path,
    ) -> Result<Builds<'s>> {
        for sub in ["content", "run"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(io_err(format!("creating {}", dir.join(sub).display())))?;
        }
        let builds = Builds {
            store,
            key,
            index: Index::open(&dir.join("index.db"))?,
            dir: dir.to_path_buf(),
            helper: helper.to_path_buf(),
            shared: std::sync::Mutex::new(None),
        };
        builds.sweep_runs();
        Ok(builds)
    }

    fn sweep_runs(&self) {
        sweep_dead_runs(&self.dir, &self.index);
    }

    /// Run `f` on the shared session (made on first use). A failure drops the session: what
    /// it flushed stays, unpinned; the next use starts a new one.
    fn with_session<T>(&self, f: impl FnOnce(&mut kiln_store::Session) -> Result<T>) -> Result<T> {
        let mut slot = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let mut session = match slot.take() {
            Some(s) => s,
            None => self.store.session()?,
        };
        let r = f(&mut session);
        if r.is_ok() {
            *slot = Some(session);
        }
        r
    }

    /// The index (history, action cache).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The cached record of `action`, if it and its outputs are still in the store.
    pub fn cached(&self, action: &Cid) -> Result<Option<(Cid, BuildRecord)>> {
        let Some(r) = self.index.lookup(action)? else {
            return Ok(None);
        };
        let Some(bytes) = self.store.get(&r)? else {
            return Ok(None);
        };
        let signed = SignedRecord::decode(&bytes)?;
        for c in signed.record.outputs.values() {
            if !self.store.has(c)? {
                return Ok(None);
            }
        }
        Ok(Some((r, signed.record)))
    }

    /// A stored record.
    pub fn record(&self, cid: &Cid) -> Result<Option<SignedRecord>> {
        match self.store.get(cid)? {
            Some(b) => Ok(Some(SignedRecord::decode(&b)?)),
            None => Ok(None),
        }
    }

    /// Build the steps of `plan` (made from `recipe`).
    pub fn build(
        &self,
        recipe: &Recipe,
        plan: &Plan,
        opts: &Options,
        obs: &dyn Observer,
    ) -> Result<Summary> {
        let origin = recipe.file.display().to_string();
        let n = plan.steps.len();
        let at: HashMap<&str, usize> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let deps: Vec<Vec<usize>> = plan
            .steps
            .iter()
            .map(|s| {
                recipe.steps.get(&s.name).map_or_else(Vec::new, |st| {
                    st.dependencies()
                        .iter()
                        .filter_map(|d| at.get(d).copied())
                        .collect()
                })
            })
            .collect();
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum State {
            Pending,
            Running,
            Done,
            Failed,
        }
        let mut state = vec![State::Pending; n];
        let mut results: Vec<Option<StepResult>> = vec![None; n];
        let mut prior: Vec<Option<Cid>> = vec![None; n];
        let mut hits = Vec::new();
        let now = now_ms();
        for (i, s) in plan.steps.iter().enumerate() {
            let Some((rcid, rec)) = self.cached(&s.key)? else {
                continue;
            };
            if opts.check {
                prior[i] = Some(rcid);
                continue;
            }
            obs.event(Event::Cached {
                step: &s.name,
                record: &rcid,
            });
            hits.push((s.key, s.name.clone(), rcid, rec.log));
            state[i] = State::Done;
            results[i] = Some(StepResult {
                name: s.name.clone(),
                key: s.key,
                record: rcid,
                rec,
                cached: true,
                check: None,
            });
        }
        if !hits.is_empty() {
            self.index.note_cached(&origin, &hits, now)?;
        }
        let mut failed = Vec::new();
        let mut kept: Vec<(String, Cid, PinMode)> = Vec::new();
        let slots = opts.slots.max(1);
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Ran>)>();
            let mut running = 0usize;
            let mut stop = false;
            loop {
                if !stop && !opts.cancelled() {
                    for i in 0..n {
                        if running >= slots {
                            break;
                        }
                        if state[i] != State::Pending
                            || !deps[i].iter().all(|&d| state[d] == State::Done)
                        {
                            continue;
                        }
                        state[i] = State::Running;
                        running += 1;
                        let step = &plan.steps[i];
                        let tx = tx.clone();
                        let job = self.job(recipe, step, &origin);
                        scope.spawn(move || {
                            let r = job.and_then(|job| self.run_job(&job, opts, obs));
                            let _ = tx.send((i, r));
                        });
                    }
                }
                if running == 0 {
                    return Ok(());
                }
                let Ok((i, r)) = rx.recv() else {
                    return Ok(());
                };
                running -= 1;
                let s = &plan.steps[i];
                match r {
                    Ok(ran) if ran.rec.ok() => {
                        state[i] = State::Done;
                        let check = prior[i].map(|cached| Check {
                            differing: self.differing(&cached, &ran.rec),
                            cached,
                        });
                        results[i] = Some(StepResult {
                            name: s.name.clone(),
                            key: s.key,
                            record: ran.record,
                            rec: ran.rec,
                            cached: false,
                            check,
                        });
                    }
                    Ok(ran) => {
                        state[i] = State::Failed;
                        stop = true;
                        kept.extend(failed_pins(&s.name, &ran));
                        let mut message = ran.rec.status.clone();
                        if !ran.tail.is_empty() {
                            message.push_str("; the log ends with:\n");
                            message.push_str(&ran.tail);
                        }
                        failed.push((
                            s.name.clone(),
                            Error::Step {
                                where_: origin.clone(),
                                step: s.name.clone(),
                                message,
                            },
                        ));
                    }
                    Err(e) => {
                        state[i] = State::Failed;
                        stop = true;
                        failed.push((s.name.clone(), e));
                    }
                }
            }
        })?;
        // Every record of a step run is kept (pinned by the owner `build`), so `kiln record
        // N` works after `kiln gc`: the good ones as the step's result (named `STEP`); a
        // --check rebuild of a cached step, which is not the cached result, as `check:STEP`;
        // a failed run (above) as `failed:STEP`.
        kept.extend(results.iter().flatten().filter(|r| !r.cached).map(|r| {
            let name = if r.check.is_some() {
                format!("check:{}", r.name)
            } else {
                r.name.clone()
            };
            (name, r.record, PinMode::Recursive)
        }));
        self.pin_records(&kept)?;
        let skipped = plan
            .steps
            .iter()
            .zip(&state)
            .filter(|(_, st)| **st == State::Pending)
            .map(|(s, _)| s.name.clone())
            .collect();
        Ok(Summary {
            done: results.into_iter().flatten().collect(),
            failed,
            skipped,
        })
    }

    /// Outputs of `now` whose content differs from the record `cached`.
    fn differing(&self, cached: &Cid, now: &BuildRecord) -> Vec<String> {
        let before = self
            .record(cached)
            .ok()
            .flatten()
            .map(|r| r.record.outputs)
            .unwrap_or_default();
        now.outputs
            .iter()
            .filter(|(o, c)| before.get(*o) != Some(c))
            .map(|(o, _)| o.clone())
            .collect()
    }

    fn job<'p>(&self, recipe: &Recipe, step: &'p PlannedStep, origin: &str) -> Result<Job<'p>> {
        let rs = recipe.steps.get(&step.name).ok_or_else(|| Error::Step {
            where_: origin.to_string(),
            step: step.name.clone(),
            message: "not in the recipe".into(),
        })?;
        Ok(Job {
            name: step.name.clone(),
            key: step.key,
            action: &step.action,
            place: origin.to_string(),
            sources: step.sources.clone(),
            limits: rs.limits,
            caches: rs.cache.clone(),
            cache_owner: format!("{origin}#{}", step.name),
            origin: origin.to_string(),
        })
    }

    /// Store every step's action and source inputs, so `kiln get ACTION` can build any of
    /// them later (they are not pinned: garbage collection removes them).
    pub fn register(&self, recipe: &Recipe, plan: &Plan) -> Result<()> {
        let mut session = self.store.session()?;
        let origin = recipe.file.display().to_string();
        for step in &plan.steps {
            let job = self.job(recipe, step, &origin)?;
            import_sources(&mut session, &job, "planning")?;
            session.put(
                &step.key,
                &step.action.encode()?,
                &action_links(&step.action),
            )?;
        }
        session.commit()?;
        Ok(())
    }

    /// Find or build: the record of `action` if cached, else build it (and, first, the
    /// actions it takes outputs from) if everything it needs is here, all before `deadline`.
    /// Returns the record and whether it was cached.
    pub fn find_or_build(
        &self,
        action: &Cid,
        deadline: Instant,
        opts: &Options,
        obs: &dyn Observer,
    ) -> Result<(Cid, BuildRecord, bool)> {
        if let Some((r, rec)) = self.cached(action)? {
            return Ok((r, rec, true));
        }
        let place = format!("action {action}");
        let name = format!("action-{}", short(action));
        let fail = |message: String| Error::Action {
            action: *action,
            message,
        };
        if action.codec() != kiln_core::cids::DAG_CBOR {
            return Err(fail("not an action (actions are dag-cbor)".into()));
        }
        let bytes = self.store.get(action)?.ok_or_else(|| {
            fail("this repository has no such action and no record of it (kiln does not ask peers for it yet)".into())
        })?;
        let act: Action = serde_ipld_dagcbor::from_slice(&bytes)
            .map_err(|e| fail(format!("not a kiln action: {e}")))?;
        if act.format != crate::action::ACTION_FORMAT {
            return Err(fail(format!("unknown action format {:?}", act.format)));
        }
        if act.builder == Builder::Builtin && act.kiln.as_deref() != Some(KILN_VERSION) {
            return Err(fail(format!(
                "its builtin builder is kiln {}'s; this is kiln {KILN_VERSION}",
                act.kiln.as_deref().unwrap_or("?")
            )));
        }
        for input in act.inputs.values() {
            if let ActionInput::Output { action: dep, .. } = input {
                self.find_or_build(dep, deadline, opts, obs)?;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fail("not built: the time limit was reached first".into()));
        }
        let job = Job {
            name: name.clone(),
            key: *action,
            action: &act,
            place: place.clone(),
            sources: BTreeMap::new(),
            limits: Limits {
                time: Some(left),
                memory: None,
                log: None,
            },
            caches: Vec::new(),
            cache_owner: place.clone(),
            origin: "get".into(),
        };
        let ran = self.run_job(&job, opts, obs)?;
        if !ran.rec.ok() {
            let mut message = if ran.rec.status == "killed at its time limit" {
                format!("not built within the time limit ({:.1?})", left)
            } else {
                ran.rec.status.clone()
            };
            if !ran.tail.is_empty() {
                message.push_str("; the log ends with:\n");
                message.push_str(&ran.tail);
            }
            self.pin_records(&failed_pins(&name, &ran))?;
            return Err(fail(message));
        }
        self.pin_records(&[(name.clone(), ran.record, PinMode::Recursive)])?;
        Ok((ran.record, ran.rec, false))
    }

    fn run_job(&self, job: &Job<'_>, opts: &Options, obs: &dyn Observer) -> Result<Ran> {
        let started = now_ms();
        let id = self
            .index
            .begin(&job.key, &job.name, &job.origin, started)?;
        obs.event(Event::Started {
            step: &job.name,
            build: id,
        });
        let run_dir = self.dir.join("run").join(format!(
            "{id}-{}-{}",
            std::process::id(),
            RUN_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.run_in(job, &run_dir, started, opts, obs);
        let _ = remove_tree(&run_dir);
        match &result {
            Ok(ran) => {
                self.index.finish(
                    id,
                    &ran.rec.status,
                    Some(&ran.record),
                    Some(&ran.rec.log),
                    ran.rec.ended_ms,
                )?;
                obs.event(Event::Finished {
                    step: &job.name,
                    record: &ran.record,
                    rec: &ran.rec,
                });
            }
            Err(e) => self
                .index
                .finish(id, &format!("error: {e}"), None, None, now_ms())?,
        }
        result
    }

    fn run_in(
        &self,
        job: &Job<'_>,
        run_dir: &Path,
        started: u64,
        opts: &Options,
        obs: &dyn Observer,
    ) -> Result<Ran> {
        let scratch = run_dir.join("root");
        let work = run_dir.join("work");
        for d in [&scratch, &work] {
            std::fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        // Source inputs go into the store first: the sandbox sees the stored copy, which is
        // exactly what the action key names.
        if !job.sources.is_empty() {
            self.with_session(|session| {
                import_sources(session, job, "building")?;
                Ok(session.flush()?)
            })?;
        }
        let builtin = job.action.builder == Builder::Builtin;
        let mut mounts = vec![Mount {
            host: work.clone(),
            at: "/work".into(),
            writable: true,
        }];
        // Cache directories are restored for an incremental build, never for --check (a
        // check must rebuild from the inputs alone). Then the inputs are copies whose times
        // say what changed since the caches were saved (content::UNCHANGED), not the
        // shared read-only trees, whose times say nothing.
        let incremental = !job.caches.is_empty() && !opts.check;
        let before = if incremental {
            self.index.cache_inputs(&job.cache_owner)?
        } else {
            None
        };
        let mut resolved = BTreeMap::new();
        // What the sandbox mounts from builds/content, held until the step has run.
        let mut holds: Vec<Hold> = Vec::new();
        for (at, input) in &job.action.inputs {
            let cid = self.input_content(job, at, input)?;
            resolved.insert(at.clone(), cid);
            let dest = work.join(at);
            make_parent(&dest)?;
            if builtin {
                content::materialize(self.store, &cid, &dest)?;
                continue;
            }
            if incremental {
                content::materialize(self.store, &cid, &dest)?;
                let was = before.as_ref().and_then(|b| b.get(at));
                content::stamp_unchanged(self.store, &cid, was, &dest)?;
                content::seal(&dest)?;
                continue;
            }
            let (host, hold) = self.content_dir(&cid)?;
            holds.push(hold);
            let meta = std::fs::symlink_metadata(&host)
                .map_err(io_err(format!("reading {}", host.display())))?;
            if meta.file_type().is_symlink() {
                return Err(job.err(format!(
                    "input {at:?}: {cid} is a symbolic link; give the directory that holds it"
                )));
            }
            if meta.is_dir() {
                std::fs::create_dir(&dest)
            } else {
                std::fs::File::create(&dest).map(drop)
            }
            .map_err(io_err(format!("creating {}", dest.display())))?;
            mounts.push(Mount {
                host,
                at: format!("/work/{at}"),
                writable: false,
            });
        }
        for c in job.caches.iter().filter(|_| incremental) {
            if let Some(cid) = self.index.cache_dir(&job.cache_owner, c)?
                && self.store.has(&cid)?
            {
                let dest = work.join(c);
                make_parent(&dest)?;
                content::materialize(self.store, &cid, &dest)?;
                content::set_times(&dest, content::CACHED)?;
            }
        }
        for o in &job.action.outputs {
            make_parent(&work.join(o))?;
        }
        let log_path = run_dir.join("log");
        let log_file = std::fs::File::create(&log_path)
            .map_err(io_err(format!("creating {}", log_path.display())))?;
        let mut log = CappedLog::new(
            log_file,
            job.limits.log.unwrap_or(crate::recipe::DEFAULT_LOG_BYTES),
        );
        let mut tail = Vec::new();
        let mut on_output = |b: &[u8]| {
            let _ = log.write(b);
            tail.extend_from_slice(b);
            if tail.len() > 2 * TAIL_BYTES {
                tail.drain(..tail.len() - TAIL_BYTES);
            }
            obs.event(Event::Output {
                step: &job.name,
                bytes: b,
            });
        };
        let (mut status, exit) = match job.action.builder {
            Builder::Builtin => {
                let mut w = FnWriter(&mut on_output);
                match builtin::run(&job.action.command, &work, &mut w) {
                    Ok(()) => ("ok".to_string(), Some(0)),
                    Err(e) => {
                        let _ = writeln!(w, "{e}");
                        (format!("failed: {e}"), Some(1))
                    }
                }
            }
            Builder::Host | Builder::RootFs(_) => {
                let root = match job.action.builder {
                    Builder::RootFs(cid) => {
                        if !self.store.has(&cid)? {
                            return Err(job.err(format!(
                                "builder {cid}: this repository has no such root file system (import one with `kiln rootfs import`)"
                            )));
                        }
                        let (dir, hold) = self.content_dir(&cid)?;
                        holds.push(hold);
                        Root::Dir(dir)
                    }
                    _ => Root::Host,
                };
                let mut env: BTreeMap<String, String> = DEFAULT_ENV
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                env.extend(job.action.env.clone());
                let spec = Spec {
                    root,
                    mounts,
                    cwd: "/work".into(),
                    argv: job.action.command.clone(),
                    env: env.into_iter().collect(),
                    network: job.action.network,
                    timeout: Some(job.limits.time.unwrap_or(DEFAULT_TIMEOUT)),
                    memory: job.limits.memory,
                    scratch,
                };
                let outcome = sandbox::run_cancellable(
                    &self.helper,
                    &spec,
                    &mut on_output,
                    opts.cancel.as_deref(),
                )
                .map_err(|e| job.err(e.to_string()))?;
                let status = if outcome.success() {
                    "ok".to_string()
                } else {
                    outcome.describe()
                };
                (status, outcome.code)
            }
        };
        log.finish()
            .map_err(io_err(format!("writing {}", log_path.display())))?;
        let ended = now_ms();
        let (ok, rec, record) = self.with_session(|session| {
            let mut outputs = BTreeMap::new();
            if status == "ok" {
                for o in &job.action.outputs {
                    let p = work.join(o);
                    if std::fs::symlink_metadata(&p).is_err() {
                        status = format!("output {o:?} was declared but not produced");
                        outputs.clear();
                        break;
                    }
                    outputs.insert(o.clone(), content::import_tree(session, &p)?.cid);
                }
            }
            if status == "ok"
                && let Some(want) = job.action.output_hash
                && let Some((o, got)) = outputs.iter().next()
                && *got != want
            {
                status = format!("output {o:?} is {got}, not the declared output_hash {want}");
                outputs.clear();
            }
            let ok = status == "ok";
            let mut caches = BTreeMap::new();
            if ok && incremental {
                for c in &job.caches {
                    let p = work.join(c);
                    if std::fs::symlink_metadata(&p).is_ok() {
                        caches.insert(c.clone(), content::import_tree(session, &p)?.cid);
                    }
                }
            }
            let log_cid = content::import_tree(session, &log_path)?.cid;
            let action_bytes = job.action.encode()?;
            session.put(&job.key, &action_bytes, &action_links(job.action))?;
            let rec = BuildRecord {
                format: RECORD_FORMAT.into(),
                action: job.key,
                step: job.name.clone(),
                status,
                exit,
                outputs,
                log: log_cid,
                caches,
                started_ms: started,
                ended_ms: ended,
                builder: self.key.did(),
                requested_by: opts.requested_by.clone(),
                host: job.action.builder == Builder::Host,
            };
            let (record, bytes) = rec.clone().sign(self.key)?.to_block()?;
            session.put(&record, &bytes, &rec.links())?;
            session.flush()?;
            Ok((ok, rec, record))
        })?;
        if ok {
            for (c, cid) in &rec.caches {
                self.index.set_cache_dir(&job.cache_owner, c, cid)?;
            }
            if !rec.caches.is_empty() {
                self.index.set_cache_inputs(&job.cache_owner, &resolved)?;
            }
            // A --check rebuild leaves the cached result in place.
            if !(opts.check && self.index.lookup(&job.key)?.is_some()) {
                self.index.set_action(&job.key, &record, ended)?;
            }
        }
        let tail = String::from_utf8_lossy(&tail);
        let tail = tail
            .char_indices()
            .rev()
            .nth(TAIL_BYTES)
            .map_or(&*tail, |(i, _)| &tail[i..]);
        Ok(Ran {
            record,
            rec,
            tail: tail.trim_end().to_string(),
        })
    }

    /// Pin records as the owner [`owners::BUILD`] (with the modes and names given: `STEP`,
    /// `check:STEP`, `failed:STEP`), all in one transaction: checking a pin walks its DAG,
    /// and the records of one build share most of theirs.
    pub fn pin_records(&self, records: &[(String, Cid, PinMode)]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let session = self.shared.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut session = match session {
            Some(s) => s,
            None => self.store.session()?,
        };
        for (name, record, mode) in records {
            session.pin(
                record,
                NewPin::new(owners::build(), *mode).named(Some(name)),
            );
        }
        session.commit()?;
        Ok(())
    }

    /// The content an input names.
    fn input_content(&self, job: &Job<'_>, at: &str, input: &ActionInput) -> Result<Cid> {
        let (root, below) = match input {
            ActionInput::Content { cid, path } => (*cid, path.clone()),
            ActionInput::Output { action, path } => {
                let Some((_, rec)) = self.cached(action)? else {
                    return Err(job.err(format!(
                        "input {at:?}: the output of action {action} is not built"
                    )));
                };
                let Some((o, cid)) = rec.outputs.iter().find(|(o, _)| {
                    path == *o
                        || path
                            .strip_prefix(o.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                }) else {
                    return Err(job.err(format!(
                        "input {at:?}: action {action} has no output {path:?}"
                    )));
                };
                (*cid, path[o.len()..].trim_start_matches('/').to_string())
            }
        };
        if !self.store.has(&root)? {
            return Err(job.err(format!("input {at:?}: {root} is not in this repository")));
        }
        if below.is_empty() {
            return Ok(root);
        }
        let cp = ContentPath {
            root,
            segments: below.split('/').map(str::to_string).collect(),
        };
        export::resolve(self.store, &cp)
            .map_err(|e| job.err(format!("input {at:?}: {root}/{below}: {e}")))
    }

    /// `builds/content/CID`: the content written out read-only, once; held (for as long
    /// as the hold lives) so GC leaves it while a step uses it.
    fn content_dir(&self, cid: &Cid) -> Result<(PathBuf, Hold)> {
        let base = self.dir.join("content");
        let dir = base.join(cid.to_string());
        let hold =
            |p: &Path| crate::hold::shared(p).map_err(io_err(format!("holding {}", p.display())));
        loop {
            if let Some(h) = hold(&dir)? {
                return Ok((dir, h));
            }
            if std::fs::symlink_metadata(&dir).is_ok() {
                // A symbolic link (content that is one): nothing to hold, GC leaves links
                // it cannot lock.
                return Ok((dir, Hold::none()));
            }
            std::fs::create_dir_all(&base)
                .map_err(io_err(format!("creating {}", base.display())))?;
            let tmp = base.join(format!(
                ".tmp-{}-{}",
                std::process::id(),
                RUN_SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let made =
                content::materialize(self.store, cid, &tmp).and_then(|()| content::seal(&tmp));
            if let Err(e) = made {
                let _ = remove_tree(&tmp);
                return Err(e);
            }
            if let Err(e) = std::fs::rename(&tmp, &dir) {
                let _ = remove_tree(&tmp);
                if std::fs::symlink_metadata(&dir).is_err() {
                    return Err(io_err(format!("creating {}", dir.display()))(e));
                }
            }
        }
    }

    /// Recent builds, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<BuildRow>> {
        self.index.recent(limit)
    }
}

/// The pins that keep a failed run's record and log: the record itself only (its action may
/// name an output hash that was never produced, so its DAG need not be complete), and the log
/// with all its blocks.
fn failed_pins(step: &str, ran: &Ran) -> [(String, Cid, PinMode); 2] {
    [
        (format!("failed:{step}"), ran.record, PinMode::Direct),
        (
            format!("failed:{step}/log"),
            ran.rec.log,
            PinMode::Recursive,
        ),
    ]
}

/// Import a job's source inputs (source-tree and git paths) into `session`, each checked to
/// still have the CID its action names (`when`: what was going on, for the error).
fn import_sources(session: &mut kiln_store::Session, job: &Job<'_>, when: &str) -> Result<()> {
    for (at, host) in &job.sources {
        let got = content::import_tree(session, host)?.cid;
        if let Some(ActionInput::Content { cid, .. }) = job.action.inputs.get(at)
            && *cid != got
        {
            return Err(job.err(format!(
                "input {at:?}: {} changed while {when} (planned as {cid}, now {got})",
                host.display()
            )));
        }
    }
    Ok(())
}

/// Every CID an action links to (its inputs' content and the actions it takes outputs
/// from, and its root file system).
fn action_links(a: &Action) -> Vec<Cid> {
    let mut v: Vec<Cid> = a
        .inputs
        .values()
        .map(|i| match i {
            ActionInput::Content { cid, .. } => *cid,
            ActionInput::Output { action, .. } => *action,
        })
        .collect();
    if let Builder::RootFs(c) = a.builder {
        v.push(c);
    }
    if let Some(h) = a.output_hash {
        v.push(h);
    }
    v.sort();
    v.dedup();
    v
}

/// The first characters of a CID's last part, for names.
pub fn short(cid: &Cid) -> String {
    let s = cid.to_string();
    s[s.len().saturating_sub(8)..].to_string()
}

fn make_parent(p: &Path) -> Result<()> {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)
            .map_err(io_err(format!("creating {}", parent.display())))?;
    }
    Ok(())
}

/// Remove a tree even where a build (or [`content::seal`]) made directories read-only.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    fn unlock(p: &Path) {
        if let Ok(m) = std::fs::symlink_metadata(p)
            && m.is_dir()
        {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    unlock(&e.path());
                }
            }
        }
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            unlock(path);
            std::fs::remove_dir_all(path)
        }
    }
}

/// A step's stored log, bounded by `limits.log`: the first half of the limit is written as
/// it comes; after that only the last half is kept (in memory) and written at the end, after
/// a line saying how many bytes were dropped between them.
struct CappedLog {
    file: std::io::BufWriter<std::fs::File>,
    head_left: u64,
    tail: std::collections::VecDeque<u8>,
    tail_cap: usize,
    dropped: u64,
}

impl CappedLog {
    fn new(file: std::fs::File, limit: u64) -> CappedLog {
        let head = limit / 2;
        CappedLog {
            file: std::io::BufWriter::with_capacity(64 << 10, file),
            head_left: head,
            tail: std::collections::VecDeque::new(),
            tail_cap: usize::try_from(limit - head).unwrap_or(usize::MAX),
            dropped: 0,
        }
    }

    fn write(&mut self, mut b: &[u8]) -> std::io::Result<()> {
        if self.head_left > 0 {
            let n = b
                .len()
                .min(usize::try_from(self.head_left).unwrap_or(usize::MAX));
            self.file.write_all(&b[..n])?;
            self.head_left -= n as u64;
            b = &b[n..];
        }
        if b.is_empty() {
            return Ok(());
        }
        self.tail.extend(b);
        if self.tail.len() > self.tail_cap {
            let excess = self.tail.len() - self.tail_cap;
            self.tail.drain(..excess);
            self.dropped += excess as u64;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        if self.dropped > 0 {
            write!(
                self.file,
                "\n[kiln: {} bytes of output dropped here; the log keeps its first and last {} bytes (limits.log)]\n",
                self.dropped, self.tail_cap
            )?;
        }
        let (a, b) = self.tail.as_slices();
        self.file.write_all(a)?;
        self.file.write_all(b)?;
        self.file.flush()
    }
}

/// A `Write` that hands bytes to a closure.
struct FnWriter<'f>(&'f mut dyn FnMut(&[u8]));

impl Write for FnWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.0)(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
