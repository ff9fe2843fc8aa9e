//! `kiln build`, `kiln builds`, `kiln log`, and `kiln get ACTION` (find or build).
//!
//! The recipe is read and planned here whoever builds it, so its errors read the same; the
//! node ([`crate::client::Node::build`]) runs it in this process (the sandbox helper is this
//! executable, started again) or on the daemon, which is sent the recipe and its source
//! inputs. Either way the build's events and result are kiln-wire's `BuildEvent` and
//! `BuildResult`, printed by the same code.

use crate::cli::{BuildArgs, BuildsArgs, LogArgs, SchedulesArgs, SchedulesCommand};
use crate::client::{BuildHow, Found, Local, Node};
use crate::cmd::Repo;
use anyhow::{Result, anyhow, bail};
use kiln_build::{Plan, PlanOptions, Recheck, Recipe};
use kiln_core::Cid;
use kiln_node::builds::find_build;
use kiln_node::builds::schedules::{git_summary, moved_summary};
use kiln_wire::{BuildResult, PruneRequest};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
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

/// `kiln build [DIR]`.
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
        // Registering a plan writes the build index itself: the repository opened here.
        let local = Local::open(repo.home())?;
        local
            .service()?
            .builds()?
            .register(&recipe, &plan)
            .map_err(|e| anyhow!("{e}"))?;
        let mut out = std::io::stdout().lock();
        for s in &plan.steps {
            writeln!(out, "{} {}", s.name, s.key)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let node = repo.node()?;
    let how = BuildHow {
        params: params.clone(),
        check: a.check,
        slots: a.slots.map(usize::from),
    };
    let once = |recipe: &Recipe, plan: &Plan| finish(&node.build(recipe, plan, &how)?, a.check);
    if a.watch {
        return watch(&a, &params, &popts, recipe, plan, &once);
    }
    once(&recipe, &plan)
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
    let (created, v) = repo.node()?.schedule(&recipe, &params)?;
    let next = v.next_ms.map_or("never".to_string(), |t| {
        kiln_build::schedule::format_utc(std::time::UNIX_EPOCH + Duration::from_millis(t))
    });
    let what = if created {
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
    match a.command {
        None | Some(SchedulesCommand::Ls) => {
            let list = repo.node()?.schedules()?;
            let mut out = std::io::stdout().lock();
            for v in &list {
                kiln_node::text::schedule(v, &mut out)?;
            }
        }
        Some(SchedulesCommand::Rm { id }) => {
            let v = repo.node()?.unschedule(id)?;
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
    let node = repo.node()?;
    let (running, sub) = node.cancel(id)?;
    if !running {
        println!(
            "{} had already ended ({}): nothing to cancel",
            sub.id, sub.state
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("Cancelling build {}…", sub.id);
    // The running steps' processes are being killed: wait until the build has ended.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ended = loop {
        let now = node.submission(&sub.id)?;
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
    let done = repo.node()?.prune(&req)?;
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
    let rows = repo.node()?.builds(a.limit)?;
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
    // Records are read from the build index itself: the repository opened here.
    let local = Local::open(repo.home())?;
    let svc = local.service()?;
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
    let node = repo.node()?;
    let mut out = std::io::stdout().lock();
    node.build_log(&a.build, &mut out)?;
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
    node: &dyn Node,
    action: Cid,
    below: &[String],
    timeout: &str,
) -> Result<(Cid, String)> {
    let Found {
        record,
        outputs,
        cached,
    } = node.find_or_build(&action, timeout)?;
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
            node.blocks(),
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
