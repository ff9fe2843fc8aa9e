//! `kiln build`, `kiln builds`, `kiln log`, and `kiln get ACTION` (find or build).
//!
//! Without a daemon, builds run in this process against the repository; the sandbox helper
//! is this executable, started again. With a daemon running on the repository, they run
//! there: `kiln build` sends the recipe and its source inputs (as one CAR), submits the
//! build, and follows its events. Either way the build's events and result become the same
//! values (kiln-api's `BuildEvent` and `BuildResult`), printed by the same code.

use crate::cli::{BuildArgs, BuildsArgs, LogArgs, SchedulesArgs, SchedulesCommand};
use crate::cmd::{Repo, Target};
use crate::remote::{CarFile, Daemon};
use anyhow::{Context, Result, anyhow, bail};
use kiln_build::exec::{Builds, Event, Observer, Options};
use kiln_build::{Input, Plan, PlanOptions, Recheck, Recipe};
use kiln_core::import::{DirEntry, Imported};
use kiln_core::{BlockSink, Cid};
use kiln_node::builds::schedules::{git_summary, moved_summary};
use kiln_node::builds::{find_build, no_log};
use kiln_node::view::EventLines;
use kiln_store::Store;
use kiln_wire::{
    BuildEvent, BuildList, BuildRequest, BuildResult, BuildRowView, PruneRequest, PruneView,
    ScheduleList, ScheduleRequest, ScheduleView, SubmissionView,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `NAME=VALUE` parameters; a name given twice is an error.
fn params(given: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in given {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--param {p:?}: expected NAME=VALUE");
        };
        if out.insert(k.to_string(), v.to_string()).is_some() {
            bail!("--param {k:?} given twice");
        }
    }
    Ok(out)
}

/// The repository's store, node key and build service pieces.
struct Service {
    store: Store,
    key: kiln_id::NodeKey,
    dir: PathBuf,
    exe: PathBuf,
}

impl Service {
    fn open(repo: &Repo) -> Result<Service> {
        Service::new(repo, crate::repo::open(repo.home())?)
    }

    fn new(repo: &Repo, store: Store) -> Result<Service> {
        let key = crate::repo::identity(repo.home())?;
        let exe = std::env::current_exe().context("cannot find the kiln executable")?;
        Ok(Service {
            store,
            key,
            dir: repo.home().join("builds"),
            exe,
        })
    }

    fn builds(&self) -> Result<Builds<'_>> {
        Builds::open(&self.store, &self.key, &self.dir, &self.exe).map_err(|e| anyhow!("{e}"))
    }
}

/// Who is asking, for the records.
fn requester() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        // SAFETY: geteuid has no preconditions.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::geteuid() }));
    format!("local user {user}")
}

/// Print one event as `kiln build` shows it on standard error.
fn show(err: &mut dyn Write, ev: &BuildEvent) {
    if let Some(line) = kiln_node::text::event_line(ev) {
        let _ = writeln!(err, "{line}");
    }
}

/// Prints a build run in this process as it happens: the events the daemon would send,
/// printed as they are when followed through it.
struct Terminal {
    lines: Mutex<EventLines>,
}

impl Terminal {
    fn new() -> Terminal {
        Terminal {
            lines: Mutex::new(EventLines::default()),
        }
    }
}

impl Observer for Terminal {
    fn event(&self, e: Event<'_>) {
        // Converted and printed under one lock, so steps' lines keep their order.
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        for ev in lines.convert(&e) {
            show(&mut err, &ev);
        }
    }
}

/// Signals (SIGINT, SIGTERM) received while following a build on the daemon.
static INTERRUPTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// While a build runs on the daemon, Ctrl-C (or SIGTERM) cancels it there: the first asks
/// the daemon to cancel it (its end is still followed and reported), a second leaves at once
/// and says that it may still be running and how to stop it.
fn cancel_on_interrupt(d: &Daemon, id: &str) -> Interruptible {
    // SAFETY: the handler only increments an atomic counter (async-signal-safe).
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (d, id) = (d.clone(), id.to_string());
    std::thread::spawn(move || {
        let mut seen = 0;
        loop {
            match done_rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let n = INTERRUPTS.load(std::sync::atomic::Ordering::SeqCst);
            if n == seen {
                continue;
            }
            seen = n;
            let path = format!("{}/builds/{id}/cancel", kiln_wire::PREFIX);
            if n == 1 {
                eprintln!(
                    "Cancelling build {id} on the daemon (interrupt again to leave it running there)"
                );
                if let Err(e) = d.post_json::<serde_json::Value>(&path) {
                    eprintln!("Error: cancelling build {id}: {e}");
                }
            } else {
                eprintln!(
                    "Error: interrupted; build {id} may still be running on the daemon: `kiln builds` lists it, `kiln log {id}` shows it, POST {path} stops it"
                );
                std::process::exit(130);
            }
        }
    });
    Interruptible(done_tx)
}

/// While it lives, interrupts cancel the followed build; dropped, they act as usual again.
struct Interruptible(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

impl Drop for Interruptible {
    fn drop(&mut self) {
        // SAFETY: restoring the default disposition of two signals.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        }
    }
}

/// Follow submission `id` on the daemon to its end, printing its events; its result.
fn follow(d: &Daemon, id: &str) -> Result<BuildResult> {
    let _watching = cancel_on_interrupt(d, id);
    let resp = d.get(&format!("{}/builds/{id}/events", kiln_wire::PREFIX))?;
    let mut result = None;
    crate::remote::read_events(resp, |ev: BuildEvent| {
        if let BuildEvent::Done(r) = ev {
            result = Some(r);
            return Ok(false);
        }
        show(&mut std::io::stderr().lock(), &ev);
        Ok(true)
    })?;
    result.ok_or_else(|| {
        anyhow!(
            "the daemon stopped sending the events of build {id} before it ended (see `kiln builds`)"
        )
    })
}

/// `kiln build [DIR]`.
/// Run a build on the repository directly, recording its start and its end in the journal
/// (`target`: the recipe file or the action).
fn journaled<T>(
    store: &Store,
    target: &str,
    build: impl FnOnce() -> Result<T>,
    outcome: impl FnOnce(&T) -> (bool, String),
) -> Result<T> {
    use kiln_node::journal::{self, action};
    let caller = super::cli_caller();
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

pub fn run(repo: &Repo, a: BuildArgs) -> Result<ExitCode> {
    let params = params(&a.params)?;
    if a.schedule {
        return register(repo, &a, params);
    }
    // The library's errors are already one line naming file, step and key (with their cause);
    // keep them as the whole message rather than repeating the cause chain. The recipe is
    // read and planned here even when a daemon builds, so its errors read the same.
    let recipe = Recipe::load(&a.dir).map_err(|e| anyhow!("{e}"))?;
    let popts = plan_options(repo);
    let plan = Plan::with_options(&recipe, &params, &popts).map_err(|e| anyhow!("{e}"))?;
    show_git(&plan);
    if a.plan {
        let svc = Service::open(repo)?;
        svc.builds()?
            .register(&recipe, &plan)
            .map_err(|e| anyhow!("{e}"))?;
        let mut out = std::io::stdout().lock();
        for s in &plan.steps {
            writeln!(out, "{} {}", s.name, s.key)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    match repo.target()? {
        Target::Local(store) => {
            let svc = Service::new(repo, store)?;
            let builds = svc.builds()?;
            let mut opts = Options {
                check: a.check,
                requested_by: requester(),
                ..Options::default()
            };
            if let Some(n) = a.slots {
                opts.slots = n.into();
            }
            let once = |recipe: &Recipe, plan: &Plan| {
                let target = recipe.file.display().to_string();
                let result = journaled(
                    &svc.store,
                    &target,
                    || {
                        let summary = builds
                            .build(recipe, plan, &opts, &Terminal::new())
                            .map_err(|e| anyhow!("{e}"))?;
                        Ok(kiln_node::view::build_result(&summary))
                    },
                    kiln_node::journal::outcome_of,
                )?;
                finish(&result, a.check)
            };
            if a.watch {
                return watch(&a, &params, &popts, recipe, plan, &once);
            }
            once(&recipe, &plan)
        }
        Target::Daemon(d) => {
            let once = |recipe: &Recipe, _: &Plan| {
                finish(&build_remote(&d, recipe, &params, &a)?, a.check)
            };
            if a.watch {
                return watch(&a, &params, &popts, recipe, plan, &once);
            }
            once(&recipe, &plan)
        }
    }
}

/// Print how a build ended; the exit status says how it went.
fn finish(result: &BuildResult, check: bool) -> Result<ExitCode> {
    if let Some(e) = &result.error {
        bail!("{e}");
    }
    kiln_node::text::report(
        result,
        check,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )?;
    Ok(if result.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Build through the daemon: send the source, submit, follow.
fn build_remote(
    d: &Daemon,
    recipe: &Recipe,
    params: &BTreeMap<String, String>,
    a: &BuildArgs,
) -> Result<BuildResult> {
    let upload = upload_owner();
    let source = send_source(d, recipe, Some(&upload))?;
    let req = BuildRequest {
        upload: Some(upload),
        source: Some(source.to_string()),
        params: params.clone(),
        check: a.check,
        slots: a.slots.map(usize::from),
        origin: Some(recipe.file.display().to_string()),
        requested_by: Some(requester()),
        ..BuildRequest::default()
    };
    let sub: SubmissionView = d.post_json_body(&format!("{}/builds", kiln_wire::PREFIX), &req)?;
    follow(d, &sub.id)
}

/// What of the source tree goes to the daemon: the whole of a path (`Whole`), or some
/// entries of a directory.
enum Part {
    Whole,
    Some(BTreeMap<String, Part>),
}

/// The recipe and the source inputs of its steps (or the whole tree, if a step takes `.`),
/// as one tree: every input has the same CID in it as in `DIR`, so the daemon plans the
/// same action keys, and files no step reads are not sent.
fn source_parts(recipe: &Recipe) -> Part {
    let mut top = BTreeMap::new();
    top.insert(kiln_build::recipe::RECIPE_FILE.to_string(), Part::Whole);
    for step in recipe.steps.values() {
        for input in step.inputs.values() {
            let Input::Source(rel) = input else {
                continue;
            };
            if rel == "." {
                return Part::Whole;
            }
            let segments: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
            let mut at = &mut top;
            for (i, seg) in segments.iter().enumerate() {
                if i + 1 == segments.len() {
                    at.insert(seg.to_string(), Part::Whole);
                    break;
                }
                let next = at
                    .entry(seg.to_string())
                    .or_insert_with(|| Part::Some(BTreeMap::new()));
                match next {
                    Part::Whole => break,
                    Part::Some(m) => at = m,
                }
            }
        }
    }
    Part::Some(top)
}

fn import_part(sink: &mut dyn BlockSink, host: &Path, part: &Part) -> Result<Imported> {
    match part {
        Part::Whole => {
            Ok(kiln_build::content::import_tree(sink, host).map_err(|e| anyhow!("{e}"))?)
        }
        Part::Some(entries) => {
            let mut dir = Vec::with_capacity(entries.len());
            for (name, p) in entries {
                dir.push(DirEntry::new(
                    name,
                    &import_part(sink, &host.join(name), p)?,
                ));
            }
            Ok(kiln_core::import::build_directory(
                sink,
                dir,
                &kiln_build::tree::options(),
            )?)
        }
    }
}

/// Send the recipe and its source inputs to the daemon as one CAR (unpinned, as a build
/// run here does not pin its sources either); the tree's CID.
fn send_source(d: &Daemon, recipe: &Recipe, hold: Option<&str>) -> Result<Cid> {
    let mut car = CarFile::new()?;
    let root = import_part(&mut car, &recipe.root, &source_parts(recipe))?;
    d.import_car(car.finish(&root.cid)?, hold)
        .context("sending the source tree to the daemon")?;
    Ok(root.cid)
}

/// A pin owner for one upload of a source tree (`upload:PID-NANOS`): the daemon's build
/// takes the source over from it.
fn upload_owner() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}{}-{nanos}",
        kiln_build::owners::UPLOAD_PREFIX,
        std::process::id()
    )
}

/// Sizes, times and kinds of every entry under `dir` (symlinks not followed): what changes
/// when a file of the source tree is edited, added or removed.
fn fingerprint(dir: &std::path::Path) -> Vec<(PathBuf, u64, i64, i64, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                todo.push(p.clone());
            }
            out.push((p, m.len(), m.mtime(), m.mtime_nsec(), m.mode()));
        }
    }
    out.sort();
    out
}

/// How recipes are planned here: git inputs are fetched under `$KILN_HOME/builds/git`.
fn plan_options(repo: &Repo) -> PlanOptions {
    PlanOptions {
        git_dir: Some(repo.home().join("builds").join("git")),
    }
}

/// Print the commit each git input of `plan` resolved to (on stderr: for information).
fn show_git(plan: &Plan) {
    for s in &plan.steps {
        for (at, pin) in &s.git {
            let refname = pin
                .refname
                .as_deref()
                .map_or(String::new(), |r| format!(" ({r})"));
            eprintln!(
                "[{}] input {at:?}: {} at {}{refname}",
                s.name, pin.source, pin.commit
            );
        }
    }
}

/// `kiln build --schedule`: send the recipe and its source inputs to the daemon and
/// register it to be built on its schedule.
fn register(repo: &Repo, a: &BuildArgs, params: BTreeMap<String, String>) -> Result<ExitCode> {
    let recipe = Recipe::load(&a.dir).map_err(|e| anyhow!("{e}"))?;
    let origin = recipe.file.display().to_string();
    if recipe.schedule.is_none() {
        bail!("{}", kiln_node::builds::schedules::no_schedule(&origin));
    }
    let Target::Daemon(d) = repo.target()? else {
        bail!(
            "kiln build --schedule hands the recipe to the daemon, which builds it on its schedule, but no daemon runs on this repository (start one with `kiln daemon`)"
        );
    };
    let upload = upload_owner();
    let source = send_source(&d, &recipe, Some(&upload))?;
    let req = ScheduleRequest {
        source: source.to_string(),
        params,
        origin: Some(origin),
        upload: Some(upload),
    };
    let (status, v): (u16, ScheduleView) =
        d.post_json_status(&format!("{}/schedules", kiln_wire::PREFIX), &req)?;
    let next = v.next_ms.map_or("never".to_string(), |t| {
        kiln_build::schedule::format_utc(std::time::UNIX_EPOCH + Duration::from_millis(t))
    });
    let what = if status == 201 {
        "registered"
    } else {
        "was already registered (same source and parameters)"
    };
    println!(
        "Schedule {} {what}: {} ({}), next check {next}",
        v.id, v.origin, v.schedule
    );
    Ok(ExitCode::SUCCESS)
}

/// `kiln schedules [ls | rm ID]`: through the daemon, or in the index when none runs (then
/// nothing checks them).
pub fn schedules(repo: &Repo, a: SchedulesArgs) -> Result<ExitCode> {
    let path = format!("{}/schedules", kiln_wire::PREFIX);
    match a.command {
        None | Some(SchedulesCommand::Ls) => {
            let list: Vec<ScheduleView> = match repo.target()? {
                Target::Daemon(d) => d.get_json::<ScheduleList>(&path)?.schedules,
                Target::Local(store) => {
                    let svc = Service::new(repo, store)?;
                    let builds = svc.builds()?;
                    let rows = builds.index().schedules().map_err(|e| anyhow!("{e}"))?;
                    rows.iter()
                        .map(kiln_node::builds::schedules::view_of)
                        .collect()
                }
            };
            let mut out = std::io::stdout().lock();
            for v in &list {
                kiln_node::text::schedule(v, &mut out)?;
            }
        }
        Some(SchedulesCommand::Rm { id }) => {
            let v: ScheduleView = match repo.target()? {
                Target::Daemon(d) => d.delete_json(&format!("{path}/{id}"))?,
                Target::Local(store) => {
                    let svc = Service::new(repo, store)?;
                    let builds = svc.builds()?;
                    let row = kiln_node::builds::schedules::unregister(
                        &svc.store,
                        builds.index(),
                        id,
                        &super::cli_caller(),
                    )
                    .map_err(|e| anyhow!("{e}"))?
                    .ok_or_else(|| anyhow!("no schedule {id} (kiln schedules lists them)"))?;
                    kiln_node::view::schedule(&row, None, false, None)
                }
            };
            println!("Schedule {} removed: {} ({})", v.id, v.origin, v.schedule);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kiln build --watch`: build, then re-plan whenever a file of the source tree changes and
/// build again when that changed an action key (cached steps are not run again). With a
/// `schedule` in the recipe, also at each scheduled time: ask where the git refs are now,
/// and plan and build again when one moved and that changed a key.
fn watch(
    a: &BuildArgs,
    params: &BTreeMap<String, String>,
    popts: &PlanOptions,
    recipe: Recipe,
    plan: Plan,
    once: &dyn Fn(&Recipe, &Plan) -> Result<ExitCode>,
) -> Result<ExitCode> {
    use kiln_build::schedule::format_utc;
    use std::time::SystemTime;
    let interval = duration(&a.interval)?.max(Duration::from_millis(50));
    let keys = |p: &Plan| p.steps.iter().map(|s| s.key).collect::<Vec<_>>();
    let mut last_keys = keys(&plan);
    once(&recipe, &plan)?;
    let mut seen = fingerprint(&a.dir);
    eprintln!(
        "Watching {} for changes (every {:.1?}; Ctrl-C stops)",
        a.dir.display(),
        interval
    );
    let next_check = |r: &Recipe| {
        let next = r
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(SystemTime::now()));
        if let (Some(s), Some(t)) = (&r.schedule, next) {
            eprintln!(
                "Schedule {s}: git inputs checked again at {}",
                format_utc(t)
            );
        }
        next
    };
    let (mut recipe, mut plan) = (recipe, plan);
    let mut next = next_check(&recipe);
    loop {
        let wait = next.map_or(interval, |t| {
            t.duration_since(SystemTime::now())
                .unwrap_or_default()
                .min(interval)
        });
        std::thread::sleep(wait);
        let now = fingerprint(&a.dir);
        if now != seen {
            seen = now;
            let r = match Recipe::load(&a.dir) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("Error: {e} (still watching)");
                    continue;
                }
            };
            plan = match Plan::with_options(&r, params, popts) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("Error: {e} (still watching)");
                    continue;
                }
            };
            if r.schedule != recipe.schedule {
                recipe = r;
                next = next_check(&recipe);
            } else {
                recipe = r;
            }
            if keys(&plan) == last_keys {
                eprintln!(
                    "Change in {}: no step's inputs changed, nothing to build",
                    a.dir.display()
                );
                continue;
            }
            last_keys = keys(&plan);
            eprintln!("Change in {}: building", a.dir.display());
        } else if let Some(t) = next
            && SystemTime::now() >= t
        {
            next = recipe
                .schedule
                .as_ref()
                .and_then(|s| s.next_after(SystemTime::now()));
            let moved = match plan.recheck(&recipe, params, popts) {
                Ok(Recheck::Unchanged) => {
                    let schedule = recipe.schedule.as_ref().map_or("", |s| s.as_str());
                    eprintln!(
                        "Scheduled check ({schedule}): nothing new ({})",
                        git_summary(&plan)
                    );
                    continue;
                }
                Ok(Recheck::Moved { moved, plan: p, .. }) => {
                    plan = p;
                    moved
                }
                Err(e) => {
                    eprintln!("Error: scheduled check: {e} (still watching)");
                    continue;
                }
            };
            let what = moved_summary(&moved);
            if keys(&plan) == last_keys {
                eprintln!("Scheduled check: {what}; no action key changed");
                continue;
            }
            last_keys = keys(&plan);
            eprintln!("Scheduled check: {what}: building");
        } else {
            continue;
        }
        show_git(&plan);
        if let Err(e) = once(&recipe, &plan) {
            eprintln!("Error: {e:#} (still watching)");
        }
    }
}

/// `kiln builds`.
/// `kiln builds cancel sN`: only the daemon runs builds others can stop.
fn cancel(repo: &Repo, id: &str) -> Result<ExitCode> {
    let Target::Daemon(d) = repo.target()? else {
        bail!(
            "no daemon runs on this repository: only a build submitted to the daemon can be cancelled (a build run by kiln build --no-daemon stops with Ctrl-C)"
        );
    };
    let path = format!("{}/builds/{id}/cancel", kiln_wire::PREFIX);
    let (status, sub): (u16, SubmissionView) = d.post_json_status(&path, &())?;
    if status != 202 {
        println!(
            "{} had already ended ({}): nothing to cancel",
            sub.id, sub.state
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("Cancelling build {}…", sub.id);
    // The running steps' processes are being killed: wait until the build has ended.
    let show = format!("{}/builds/{}", kiln_wire::PREFIX, sub.id);
    let deadline = Instant::now() + Duration::from_secs(60);
    let ended = loop {
        let now: SubmissionView = d.get_json(&show)?;
        if now.state != "running" {
            break now;
        }
        if Instant::now() > deadline {
            bail!(
                "build {} was asked to stop but still runs after 60 s (see the daemon's log)",
                sub.id
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let cancelled: Vec<&str> = ended
        .steps
        .iter()
        .filter(|s| s.status.as_deref() == Some("cancelled"))
        .map(|s| s.name.as_str())
        .collect();
    if cancelled.is_empty() {
        println!(
            "build {} ended ({}) before a step had to be stopped",
            ended.id, ended.state
        );
    } else {
        println!("build {} cancelled: {}", ended.id, cancelled.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// `kiln builds prune --keep N | --older-than AGE`.
fn prune(repo: &Repo, keep: Option<usize>, older_than: Option<&str>) -> Result<ExitCode> {
    let req = PruneRequest {
        keep,
        older_than_s: older_than
            .map(|s| duration(s).map(|d| d.as_secs()))
            .transpose()?,
    };
    let done: PruneView = match repo.target()? {
        Target::Local(store) => {
            let svc = Service::new(repo, store)?;
            let builds = svc.builds()?;
            kiln_node::builds::prune::prune(&svc.store, builds.index(), &super::cli_caller(), &req)?
        }
        Target::Daemon(d) => {
            d.post_json_body(&format!("{}/builds/prune", kiln_wire::PREFIX), &req)?
        }
    };
    if done.builds == 0 {
        println!(
            "no build to prune ({})",
            kiln_node::builds::prune::describe(&req)
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "removed {} builds from the history; {} records and logs are no longer kept, {} cached results forgotten",
        done.builds, done.released, done.forgotten
    );
    if done.released > 0 {
        println!("run `kiln gc` to free their space");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn builds(repo: &Repo, a: BuildsArgs) -> Result<ExitCode> {
    match &a.command {
        Some(crate::cli::BuildsCommand::Cancel { id }) => return cancel(repo, id),
        Some(crate::cli::BuildsCommand::Prune { keep, older_than }) => {
            return prune(repo, *keep, older_than.as_deref());
        }
        None => {}
    }
    let rows: Vec<BuildRowView> = match repo.target()? {
        Target::Local(store) => {
            let svc = Service::new(repo, store)?;
            let builds = svc.builds()?;
            let rows = builds.recent(a.limit).map_err(|e| anyhow!("{e}"))?;
            rows.iter().map(kiln_node::view::build_row).collect()
        }
        Target::Daemon(d) => {
            let list: BuildList =
                d.get_json(&format!("{}/builds?limit={}", kiln_wire::PREFIX, a.limit))?;
            list.builds
        }
    };
    let mut out = std::io::stdout().lock();
    if !rows.is_empty() {
        kiln_node::text::build_header(&mut out)?;
    }
    for r in &rows {
        kiln_node::text::build_row(r, &mut out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A record's time (Unix milliseconds) as a date, with the milliseconds.
fn when(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let date = kiln_build::schedule::format_utc(t);
    match date.strip_suffix(" UTC") {
        Some(d) => format!("{d}.{:03} UTC", ms % 1000),
        None => date,
    }
}

/// `kiln record RECORD|BUILD`.
pub fn record(repo: &Repo, a: LogArgs) -> Result<ExitCode> {
    let svc = Service::open(repo)?;
    let builds = svc.builds()?;
    // A record CID, or a build (number, or action CID) whose record to show.
    let cid = match kiln_core::cids::parse_cid(&a.build) {
        Ok(c) if matches!(builds.record(&c), Ok(Some(_))) => c,
        _ => find_build(builds.index(), &a.build)
            .map_err(|e| anyhow!("{e}"))?
            .record
            .ok_or_else(|| anyhow!("build {:?} has no record", a.build))?,
    };
    let signed = builds
        .record(&cid)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("record {cid} is not in this repository"))?;
    let r = &signed.record;
    let valid = signed.verify();
    let mut out = std::io::stdout().lock();
    writeln!(out, "record        {cid}")?;
    writeln!(out, "action        {}", r.action)?;
    writeln!(out, "step          {}", r.step)?;
    writeln!(out, "status        {}", r.status)?;
    writeln!(
        out,
        "builder       {} ({})",
        r.builder,
        if valid.is_ok() {
            "signature valid"
        } else {
            "SIGNATURE INVALID"
        }
    )?;
    writeln!(out, "requested by  {}", r.requested_by)?;
    writeln!(
        out,
        "host builder  {}",
        if r.host {
            "yes (impure: the host's /usr)"
        } else {
            "no"
        }
    )?;
    writeln!(out, "started       {}", when(r.started_ms))?;
    writeln!(
        out,
        "duration      {:.3} s",
        r.duration_ms() as f64 / 1000.0
    )?;
    writeln!(out, "log           {}", r.log)?;
    for (path, c) in &r.outputs {
        writeln!(out, "output        {c} {path}")?;
    }
    for (path, c) in &r.caches {
        writeln!(out, "cache         {c} {path}")?;
    }
    out.flush()?;
    if let Err(e) = valid {
        eprintln!("Error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `kiln log BUILD`.
pub fn log(repo: &Repo, a: LogArgs) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match repo.target()? {
        Target::Local(store) => {
            let svc = Service::new(repo, store)?;
            let builds = svc.builds()?;
            let row = find_build(builds.index(), &a.build).map_err(|e| anyhow!("{e}"))?;
            let Some(log) = row.log else {
                bail!("{}", no_log(&row));
            };
            kiln_core::export::read_file(&svc.store, &log, 0, None, &mut out)
                .with_context(|| format!("reading log {log} of build {}", row.id))?;
        }
        Target::Daemon(d) => {
            if a.build.is_empty() {
                bail!("{:?} is neither a build number nor a CID", a.build);
            }
            let id =
                percent_encoding::utf8_percent_encode(&a.build, percent_encoding::NON_ALPHANUMERIC);
            let mut body = d.get(&format!("{}/builds/{id}/log", kiln_wire::PREFIX))?;
            std::io::copy(&mut body, &mut out).context("reading from the daemon")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `30s`, `5m`, `1h`, `250ms`, or plain seconds.
fn duration(s: &str) -> Result<Duration> {
    kiln_wire::parse_duration(s).map_err(|e| anyhow!("{e}"))
}

/// For `kiln get ACTION[/OUTPUT]`: the output's CID (and the output's name), found in the
/// action cache or built now (by the daemon, when one runs).
pub fn action_output(
    repo: &Repo,
    target: &Target,
    action: Cid,
    below: &[String],
    timeout: &str,
) -> Result<(Cid, String)> {
    let limit = duration(timeout)?;
    let (record, outputs, cached, src): (
        String,
        BTreeMap<String, Cid>,
        bool,
        Box<dyn kiln_core::BlockSource>,
    ) = match target {
        Target::Local(store) => {
            let svc = Service::new(repo, store.clone())?;
            let builds = svc.builds()?;
            let opts = Options {
                requested_by: requester(),
                ..Options::default()
            };
            let (record, rec, cached) = journaled(
                store,
                &format!("action {action}"),
                || {
                    builds
                        .find_or_build(&action, Instant::now() + limit, &opts, &Terminal::new())
                        .map_err(|e| anyhow!("{e}"))
                },
                |(record, _, cached)| {
                    let how = if *cached { "cached" } else { "built" };
                    (true, format!("{how}: record {record}"))
                },
            )?;
            (
                record.to_string(),
                rec.outputs,
                cached,
                Box::new(store.clone()),
            )
        }
        Target::Daemon(d) => {
            let req = BuildRequest {
                action: Some(action.to_string()),
                timeout: Some(timeout.to_string()),
                requested_by: Some(requester()),
                ..BuildRequest::default()
            };
            let sub: SubmissionView =
                d.post_json_body(&format!("{}/builds", kiln_wire::PREFIX), &req)?;
            let result = follow(d, &sub.id)?;
            if let Some(e) = result.error {
                bail!("{e}");
            }
            let Some(done) = result.done.into_iter().next() else {
                bail!("the daemon reported no record for action {action}");
            };
            let mut outputs = BTreeMap::new();
            for (o, c) in done.outputs {
                let c = kiln_core::cids::parse_cid(&c)
                    .with_context(|| format!("unexpected output CID from the daemon: {c}"))?;
                outputs.insert(o, c);
            }
            (
                done.record,
                outputs,
                done.cached,
                Box::new(crate::remote::Blocks(d.clone())),
            )
        }
    };
    eprintln!(
        "{} action {action}: record {record}",
        if cached { "Found" } else { "Built" }
    );
    let path = below.join("/");
    let (name, cid) = if path.is_empty() {
        if outputs.len() != 1 {
            bail!(
                "action {action} has {} outputs; name one: {}",
                outputs.len(),
                outputs
                    .keys()
                    .map(|o| format!("{action}/{o}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let Some((o, c)) = outputs.iter().next() else {
            bail!("action {action} has no outputs");
        };
        (o.clone(), *c)
    } else {
        let Some((o, c)) = outputs.iter().find(|(o, _)| {
            path == **o
                || path
                    .strip_prefix(o.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        }) else {
            bail!(
                "action {action} has no output {path:?} (outputs: {})",
                outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        let rest: Vec<String> = path[o.len()..]
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let c = kiln_core::export::resolve(
            src.as_ref(),
            &kiln_core::cids::ContentPath {
                root: *c,
                segments: rest,
            },
        )?;
        (path.clone(), c)
    };
    let base = name.rsplit('/').next().unwrap_or(&name).to_string();
    Ok((cid, base))
}
