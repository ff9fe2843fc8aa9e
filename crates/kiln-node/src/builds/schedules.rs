//! Schedules: recipes registered with the daemon (`POST /api/kiln/v1/schedules`, `kiln build
//! --schedule`) to be built on their `schedule`, when a mutable input (a git ref) moved.
//!
//! A registration is a row of the build index (`schedules`), so it outlives the daemon; its
//! source tree is pinned by the owner `schedule:ID` (each schedule its own pin, beside any
//! other owner's) and that pin goes when the schedule is removed. The **scheduler** is one thread that sleeps until the earliest
//! next time of any schedule (or until a registration, a removal or the daemon's stop wakes
//! it) and starts each due **check** on a thread of its own, so a slow repository delays no
//! other schedule; a schedule is never checked twice at once.
//!
//! A check plans the recipe from the daemon's copy of the source (`builds/src/CID`, written
//! out again if it was evicted). The first check of a schedule since the daemon started
//! plans it in full and builds when some step has no cached result; later checks ask the
//! repositories where the refs are now (`Plan::recheck`: `git ls-remote` only) and build
//! when one moved and that changed an action key. A build is a submission like any other
//! (`sN`, listed, followed, in the history), requested by `schedule ID (SCHEDULE)`. What
//! each check found is kept with the schedule (`last_check_ms`, `last_outcome`,
//! `last_message`). A schedule's first time is the first scheduled time after its
//! registration, or after its last check when the daemon starts (a time missed while the
//! daemon was stopped is caught up once, at start).

use super::{BuildService, Launch, lock, source_and_origin};
use crate::journal::action as journal;
use crate::supervisor::Group;
use crate::{Caller, Error, Result};
use kiln_build::exec::{Builds, Options};
use kiln_build::index::{Index, ScheduleRow};
use kiln_build::record::now_ms;
use kiln_build::{Input, Moved, Plan, Recheck, Schedule};
use kiln_store::{PinMode, Store};
use kiln_wire::{ScheduleRequest, ScheduleView};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest the scheduler sleeps without looking at the clock again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Outcomes of a check.
const NOTHING_NEW: &str = "nothing new";
const BUILT: &str = "built";
const ERROR: &str = "error";

/// The registered schedules and what the scheduler knows of them.
pub struct Sched {
    state: Mutex<SchedState>,
    wake: Condvar,
}

#[derive(Default)]
struct SchedState {
    entries: BTreeMap<i64, Entry>,
    stop: bool,
    started: bool,
}

struct Entry {
    row: ScheduleRow,
    /// None if the stored text no longer parses (never checked then).
    schedule: Option<Schedule>,
    next: Option<SystemTime>,
    checking: bool,
    /// The plan of the last check since the daemon started.
    planned: Option<Arc<Plan>>,
    last_submission: Option<String>,
}

impl Entry {
    fn new(row: ScheduleRow, now: SystemTime) -> Entry {
        let schedule = Schedule::parse(&row.schedule).ok();
        let next = schedule.as_ref().and_then(|s| first_due(&row, s, now));
        Entry {
            row,
            schedule,
            next,
            checking: false,
            planned: None,
            last_submission: None,
        }
    }

    fn view(&self) -> ScheduleView {
        crate::view::schedule(
            &self.row,
            self.next.map(ms),
            self.checking,
            self.last_submission.clone(),
        )
    }
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// When a schedule is next due, seen from `now`: the first scheduled time after its last
/// check (or its registration), and `now` if that has passed.
fn first_due(row: &ScheduleRow, schedule: &Schedule, now: SystemTime) -> Option<SystemTime> {
    let base = UNIX_EPOCH + Duration::from_millis(row.last_check_ms.unwrap_or(row.created_ms));
    schedule.next_after(base).map(|t| t.max(now))
}

/// A schedule as the index has it, with its next time seen from now (for a command line
/// that reads the index itself, with no daemon running).
pub fn view_of(row: &ScheduleRow) -> ScheduleView {
    let next = Schedule::parse(&row.schedule)
        .ok()
        .and_then(|s| first_due(row, &s, SystemTime::now()));
    crate::view::schedule(row, next.map(ms), false, None)
}

impl Sched {
    /// The schedules registered in `index`.
    pub fn load(index: &Index) -> Result<Sched, kiln_build::Error> {
        let now = SystemTime::now();
        let entries = index
            .schedules()?
            .into_iter()
            .map(|r| (r.id, Entry::new(r, now)))
            .collect();
        Ok(Sched {
            state: Mutex::new(SchedState {
                entries,
                ..SchedState::default()
            }),
            wake: Condvar::new(),
        })
    }

    /// Stop the scheduler (checks already running finish; they start no build).
    pub fn stop(&self) {
        lock(&self.state).stop = true;
        self.wake.notify_all();
    }

    fn has(&self, id: i64) -> bool {
        lock(&self.state).entries.contains_key(&id)
    }
}

/// What a check found.
struct Found {
    outcome: &'static str,
    message: String,
    /// The plan to compare the next check with.
    planned: Option<Arc<Plan>>,
    submission: Option<String>,
}

/// Where the git inputs of `plan` are: `git+URL#REF at COMMIT, …` (commits shortened).
pub fn git_summary(plan: &Plan) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let mut parts = Vec::new();
    for pin in plan.steps.iter().flat_map(|s| s.git.values()) {
        if seen.insert(&pin.source) {
            parts.push(format!("{} at {}", pin.source, short_commit(&pin.commit)));
        }
    }
    parts.join(", ")
}

/// Which refs moved: `git+URL#REF moved A → B, …` (commits shortened).
pub fn moved_summary(moved: &[Moved]) -> String {
    moved
        .iter()
        .map(|m| {
            format!(
                "{} moved {} → {}",
                m.source,
                short_commit(&m.from),
                short_commit(&m.to)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first 12 characters of a commit ID.
pub fn short_commit(c: &str) -> &str {
    &c[..c.len().min(12)]
}

/// Forget schedule `id` and release the pin of its source: removed if this schedule made it
/// (and it still bears its name), or handed to another schedule of the same source. The
/// schedule as it was, or none if there is no such schedule. Recorded in the journal as
/// `caller`'s. Blocking.
pub fn unregister(
    store: &Store,
    index: &Index,
    id: i64,
    caller: &crate::Caller,
) -> Result<Option<ScheduleRow>, String> {
    let Some(row) = index.schedule(id).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    index.remove_schedule(id).map_err(|e| e.to_string())?;
    // Its own pin of the source goes; whoever else holds the tree keeps it.
    match store.pin_rm(&row.source, &kiln_build::owners::schedule(id)) {
        Ok(_) | Err(kiln_store::Error::NotPinned(_) | kiln_store::Error::NotPinnedBy { .. }) => {}
        Err(e) => return Err(format!("unpinning {}: {e}", row.source)),
    }
    crate::journal::record(
        store,
        &crate::journal::entry(caller, journal::SCHEDULE_REMOVED, format!("schedule {id}"))
            .detail(row.origin.clone()),
    );
    Ok(Some(row))
}

/// The message for a recipe without a schedule.
pub fn no_schedule(origin: &str) -> String {
    format!(
        "{origin}: the recipe has no schedule: add a top-level schedule (cron, e.g. schedule = \"*/5 * * * *\", or \"@every 10m\") for the daemon to check its git inputs on"
    )
}

impl BuildService {
    /// Start the scheduler: from now on registered recipes are checked, and built, on their
    /// schedules, until [`BuildService::close`]. Once; later calls do nothing.
    pub fn start_scheduler(self: &Arc<Self>) {
        {
            let mut st = lock(&self.sched.state);
            if st.started || st.stop {
                return;
            }
            st.started = true;
            tracing::info!(schedules = st.entries.len(), "scheduler started");
        }
        let (sched, svc) = (self.sched.clone(), Arc::downgrade(self));
        let spawned = self
            .workers
            .spawn("scheduler".into(), Group::Scheduler, move || {
                run(&sched, &svc)
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the scheduler thread: {e}");
        }
    }

    /// Every registered schedule, oldest first.
    pub fn schedule_views(&self, caller: &Caller) -> Result<Vec<ScheduleView>> {
        crate::auth::authorize(
            caller,
            crate::auth::Op::Read,
            crate::auth::DEFAULT_NAMESPACE,
        )?;
        Ok(self.schedule_views_unchecked())
    }

    fn schedule_views_unchecked(&self) -> Vec<ScheduleView> {
        lock(&self.sched.state)
            .entries
            .values()
            .map(Entry::view)
            .collect()
    }

    /// Schedule `id`.
    pub fn schedule_view(&self, id: i64) -> Option<ScheduleView> {
        lock(&self.sched.state).entries.get(&id).map(Entry::view)
    }

    /// Register a recipe to be built on its schedule (blocking: writes the source tree out,
    /// plans the recipe). The schedule, and whether it is new (the same source, parameters
    /// and origin registered again answer with the schedule already there).
    pub fn register(
        self: &Arc<Self>,
        caller: &Caller,
        req: ScheduleRequest,
    ) -> Result<(ScheduleView, bool)> {
        crate::auth::authorize(
            caller,
            crate::auth::Op::Build,
            crate::auth::DEFAULT_NAMESPACE,
        )?;
        let upload = super::upload_owner(req.upload.as_deref())?;
        let registered = self.register_inner(caller, &req);
        // The schedule holds its source itself now (or was refused): the upload's pin goes.
        if let Some(owner) = &upload {
            super::release_upload(&self.store, owner, &req.source);
        }
        registered
    }

    fn register_inner(
        self: &Arc<Self>,
        caller: &Caller,
        req: &ScheduleRequest,
    ) -> Result<(ScheduleView, bool)> {
        if *self.closing.borrow() {
            return Err(Error::unavailable("the daemon is stopping"));
        }
        let (cid, origin) = source_and_origin(&req.source, req.origin.as_deref())?;
        let (recipe, _in_use) = self.open_recipe(&cid, &origin)?;
        let Some(schedule) = recipe.schedule.clone() else {
            return Err(Error::invalid(no_schedule(&origin)));
        };
        // (A recipe with a schedule and nothing mutable is refused when it is read.)
        if !recipe
            .steps
            .values()
            .any(|s| s.inputs.values().any(Input::is_mutable))
        {
            return Err(Error::invalid(format!(
                "{origin}: the recipe has no mutable inputs (git+URL#REF) for a schedule to check"
            )));
        }
        // Planned now, so a bad parameter or ref is refused at once.
        Plan::with_options(&recipe, &req.params, &self.plan_options())
            .map_err(|e| Error::invalid(e.to_string()))?;
        let _one = lock(&self.registering);
        let same = lock(&self.sched.state)
            .entries
            .values()
            .find(|e| e.row.source == cid && e.row.params == req.params && e.row.origin == origin)
            .map(Entry::view);
        if let Some(v) = same {
            return Ok((v, false));
        }
        let internal = |e: kiln_build::Error| Error::internal(e.to_string());
        let id = self
            .index
            .add_schedule(&cid, &origin, &req.params, schedule.as_str(), now_ms())
            .map_err(internal)?;
        if let Err(e) = pin_source(&self.store, &cid, id) {
            let _ = self.index.remove_schedule(id);
            return Err(e);
        }
        self.index.set_schedule_pinned(id, true).map_err(internal)?;
        let row = self
            .index
            .schedule(id)
            .map_err(internal)?
            .ok_or_else(|| Error::internal(format!("schedule {id} vanished")))?;
        let entry = Entry::new(row, SystemTime::now());
        let view = entry.view();
        lock(&self.sched.state).entries.insert(id, entry);
        self.sched.wake.notify_all();
        tracing::info!(schedule = id, %origin, schedule_text = %schedule, "schedule registered");
        crate::journal::record(
            &self.store,
            &crate::journal::entry(
                caller,
                journal::SCHEDULE_REGISTERED,
                format!("schedule {id}"),
            )
            .detail(format!(
                "{origin} ({schedule})",
                schedule = schedule.as_str()
            )),
        );
        Ok((view, true))
    }

    /// Remove schedule `id` (blocking); the schedule as it was.
    pub fn unregister_schedule(&self, caller: &Caller, id: i64) -> Result<ScheduleView> {
        crate::auth::authorize(
            caller,
            crate::auth::Op::Build,
            crate::auth::DEFAULT_NAMESPACE,
        )?;
        let _one = lock(&self.registering);
        let row = unregister(&self.store, &self.index, id, caller)
            .map_err(Error::internal)?
            .ok_or_else(|| no_such(id))?;
        let entry = lock(&self.sched.state).entries.remove(&id);
        self.sched.wake.notify_all();
        tracing::info!(schedule = id, "schedule removed");
        Ok(match entry {
            Some(e) => ScheduleView {
                next_ms: None,
                ..e.view()
            },
            None => crate::view::schedule(&row, None, false, None),
        })
    }
}

/// Pin `cid` for schedule `id`, as its owner `schedule:ID` (other owners' pins of the same
/// tree are theirs).
fn pin_source(store: &Store, cid: &kiln_core::Cid, id: i64) -> Result<()> {
    crate::pins::add(
        store,
        &crate::Caller::schedule(id),
        &cid.to_string(),
        PinMode::Recursive,
        None,
        None,
    )?;
    Ok(())
}

/// Every registered schedule holds its own pin of its source: a repository from before
/// pins had owners let a schedule whose source had another pin hold none. Best effort, at
/// start: a source no longer in the store is reported by the schedule's next check.
pub fn hold_sources(store: &Store, index: &Index) {
    let Ok(rows) = index.schedules() else { return };
    for row in rows {
        let owner = kiln_build::owners::schedule(row.id);
        let held = store
            .pins_of(&row.source)
            .is_ok_and(|pins| pins.iter().any(|p| p.owner == owner));
        if !held && let Err(e) = pin_source(store, &row.source, row.id) {
            tracing::warn!(
                schedule = row.id,
                "cannot pin the source {}: {}",
                row.source,
                e.message()
            );
        }
    }
}

/// The error for a schedule that is not registered.
pub fn no_such(id: i64) -> Error {
    Error::not_found(format!("no schedule {id} (kiln schedules lists them)"))
}

/// The scheduler's loop: start the checks that are due, sleep until the next one.
fn run(sched: &Arc<Sched>, svc: &Weak<BuildService>) {
    let mut st = lock(&sched.state);
    loop {
        if st.stop {
            return;
        }
        let now = SystemTime::now();
        let due: Vec<i64> = st
            .entries
            .iter()
            .filter(|(_, e)| !e.checking && e.next.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        if !due.is_empty() {
            let Some(service) = svc.upgrade() else {
                return;
            };
            for id in due {
                let Some(e) = st.entries.get_mut(&id) else {
                    continue;
                };
                e.checking = true;
                e.next = e.schedule.as_ref().and_then(|s| s.next_after(now));
                let job = Job {
                    row: e.row.clone(),
                    planned: e.planned.clone(),
                };
                let (sched2, svc2) = (sched.clone(), service.clone());
                let spawned =
                    service
                        .workers
                        .spawn(format!("schedule {id}"), Group::Check, move || {
                            check_and_note(&svc2, &sched2, job, now)
                        });
                if let Err(err) = spawned {
                    tracing::warn!(schedule = id, "cannot start a check: {err}");
                    e.checking = false;
                }
            }
            continue;
        }
        let wait = st
            .entries
            .values()
            .filter(|e| !e.checking)
            .filter_map(|e| e.next)
            .min()
            .map_or(MAX_SLEEP, |t| {
                t.duration_since(now).unwrap_or_default().min(MAX_SLEEP)
            });
        st = sched
            .wake
            .wait_timeout(st, wait)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// One check to run.
struct Job {
    row: ScheduleRow,
    planned: Option<Arc<Plan>>,
}

/// Run a check, keep what it found (index and memory), wake the scheduler.
fn check_and_note(svc: &Arc<BuildService>, sched: &Sched, job: Job, started: SystemTime) {
    let id = job.row.id;
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(svc, &job)))
        .unwrap_or_else(|_| Found {
            outcome: ERROR,
            message: "error: the check failed inside kiln (a panic; see the daemon's log)".into(),
            planned: job.planned.clone(),
            submission: None,
        });
    if *svc.closing.borrow() {
        // The daemon is stopping: what this check found is moot (it started no build).
        return;
    }
    let at = ms(started);
    if let Err(e) = svc.index.note_check(id, at, found.outcome, &found.message) {
        tracing::warn!(schedule = id, "noting a check: {e}");
    }
    match found.outcome {
        ERROR => tracing::warn!(schedule = id, "scheduled check: {}", found.message),
        BUILT => tracing::info!(schedule = id, "scheduled check: {}", found.message),
        _ => tracing::debug!(schedule = id, "scheduled check: {}", found.message),
    }
    // Every check that built or failed is recorded; one that found nothing new only when
    // the schedule's last check ended otherwise (a schedule every minute would fill the
    // journal with "nothing new").
    let before = lock(&sched.state)
        .entries
        .get(&id)
        .and_then(|e| e.row.last_outcome.clone());
    if found.outcome != NOTHING_NEW || before.as_deref() != Some(NOTHING_NEW) {
        let entry = crate::journal::entry(
            &crate::Caller::schedule(id),
            journal::SCHEDULE_CHECKED,
            format!("schedule {id}"),
        );
        crate::journal::record(
            &svc.store,
            &if found.outcome == ERROR {
                entry.failed(found.message.clone())
            } else {
                entry.detail(found.message.clone())
            },
        );
    }
    let mut st = lock(&sched.state);
    if let Some(e) = st.entries.get_mut(&id) {
        e.checking = false;
        e.planned = found.planned;
        if found.submission.is_some() {
            e.last_submission = found.submission;
        }
        e.row.last_check_ms = Some(at);
        e.row.last_outcome = Some(found.outcome.to_string());
        e.row.last_message = Some(found.message);
        // A check that outlasted the interval does not make the next one come at once.
        e.next = e
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(SystemTime::now().max(started)));
    }
    drop(st);
    sched.wake.notify_all();
}

/// Check one schedule's mutable inputs and build when that changed an action key.
fn check(svc: &Arc<BuildService>, job: &Job) -> Found {
    let row = &job.row;
    let fail = |message: String| Found {
        outcome: ERROR,
        message: format!("error: {message}"),
        planned: job.planned.clone(),
        submission: None,
    };
    // The source tree, written out again if it was evicted (it is pinned).
    let (recipe, in_use) = match svc.open_recipe(&row.source, &row.origin) {
        Ok(r) => r,
        Err(e) => return fail(e.message().to_string()),
    };
    let opts = svc.plan_options();
    let (plan, why) = match &job.planned {
        None => {
            // The first check since the daemon started: build what is not cached.
            let plan = match Plan::with_options(&recipe, &row.params, &opts) {
                Ok(p) => p,
                Err(e) => return fail(e.to_string()),
            };
            let builds = match Builds::open(&svc.store, &svc.key, &svc.dir, &svc.helper) {
                Ok(b) => b,
                Err(e) => return fail(e.to_string()),
            };
            let mut missing = 0;
            for s in &plan.steps {
                match builds.cached(&s.key) {
                    Ok(Some(_)) => {}
                    Ok(None) => missing += 1,
                    Err(e) => return fail(e.to_string()),
                }
            }
            let at = git_summary(&plan);
            if missing == 0 {
                return Found {
                    outcome: NOTHING_NEW,
                    message: format!("nothing new: every step is cached ({at})"),
                    planned: Some(Arc::new(plan)),
                    submission: None,
                };
            }
            let n = plan.steps.len();
            let why = format!(
                "{at}: {missing} of {n} step{} not built yet",
                if n == 1 { "" } else { "s" }
            );
            (plan, why)
        }
        Some(old) => match old.recheck(&recipe, &row.params, &opts) {
            Err(e) => return fail(e.to_string()),
            Ok(Recheck::Unchanged) => {
                return Found {
                    outcome: NOTHING_NEW,
                    message: format!("nothing new ({})", git_summary(old)),
                    planned: job.planned.clone(),
                    submission: None,
                };
            }
            Ok(Recheck::Moved {
                moved,
                plan,
                changed,
            }) => {
                let what = moved_summary(&moved);
                if changed.is_empty() {
                    return Found {
                        outcome: NOTHING_NEW,
                        message: format!("nothing new: {what}; no action key changed"),
                        planned: Some(Arc::new(plan)),
                        submission: None,
                    };
                }
                (plan, what)
            }
        },
    };
    if !svc.sched.has(row.id) {
        return fail("the schedule was removed during its check".into());
    }
    if let Err(e) = svc.admit() {
        // The old plan is kept: the next check tries again.
        return fail(format!(
            "{why}, but the build cannot start: {}",
            e.message()
        ));
    }
    let opts = Options {
        requested_by: format!("schedule {} ({})", row.id, row.schedule),
        ..Options::default()
    };
    let sub = svc.launch(
        Launch {
            source: row.source,
            origin: row.origin.clone(),
            params: row.params.clone(),
            schedule: Some(row.id),
            caller: Caller::schedule(row.id),
        },
        recipe,
        plan.clone(),
        opts,
        in_use,
    );
    Found {
        outcome: BUILT,
        message: format!("{why}: building as {}", sub.name()),
        planned: Some(Arc::new(plan)),
        submission: Some(sub.name()),
    }
}
