//! `kiln build`, `kiln builds`, `kiln log`, and `kiln get ACTION` (find or build).
//!
//! Builds run in this process against the repository (its store is safe to share with a
//! running daemon); the sandbox helper is this executable, started again.

use crate::cli::{BuildArgs, BuildsArgs, LogArgs};
use crate::cmd::Repo;
use anyhow::{Context, Result, anyhow, bail};
use kiln_build::exec::{Builds, Event, Observer, Options};
use kiln_build::{Plan, Recipe};
use kiln_core::Cid;
use kiln_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
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
        let store = crate::repo::open(repo.home())?;
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

/// Prints step events on stderr: log lines prefixed with the step's name, whole lines only.
struct Terminal {
    partial: Mutex<HashMap<String, Vec<u8>>>,
    started: Instant,
}

impl Terminal {
    fn new() -> Terminal {
        Terminal {
            partial: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    fn flush_step(&self, step: &str) {
        let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rest) = partial.remove(step)
            && !rest.is_empty()
        {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "[{step}] {}", String::from_utf8_lossy(&rest));
        }
    }
}

impl Observer for Terminal {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Cached { .. } => {}
            Event::Started { step, build } => {
                eprintln!("[{step}] running (build {build})");
            }
            Event::Output { step, bytes } => {
                let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
                let buf = partial.entry(step.to_string()).or_default();
                buf.extend_from_slice(bytes);
                let mut err = std::io::stderr().lock();
                while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let _ = write!(err, "[{step}] {}", String::from_utf8_lossy(&line));
                }
            }
            Event::Finished { step, rec, .. } => {
                self.flush_step(step);
                let secs = rec.duration_ms() as f64 / 1000.0;
                if rec.ok() {
                    eprintln!("[{step}] done in {secs:.2} s");
                } else {
                    eprintln!("[{step}] failed after {secs:.2} s: {}", rec.status);
                }
                let _ = self.started;
            }
        }
    }
}

/// `kiln build [DIR]`.
pub fn run(repo: &Repo, a: BuildArgs) -> Result<ExitCode> {
    let params = params(&a.params)?;
    // The library's errors are already one line naming file, step and key (with their cause);
    // keep them as the whole message rather than repeating the cause chain.
    let recipe = Recipe::load(&a.dir).map_err(|e| anyhow!("{e}"))?;
    let plan = Plan::new(&recipe, &params).map_err(|e| anyhow!("{e}"))?;
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
    let svc = Service::open(repo)?;
    let builds = svc.builds()?;
    let mut opts = Options {
        check: a.check,
        requested_by: requester(),
        ..Options::default()
    };
    if let Some(n) = a.slots {
        opts.slots = n.into();
    }
    if a.watch {
        return watch(&builds, &a, &params, &opts, recipe, plan);
    }
    build_once(&builds, &recipe, &plan, &opts)
}

/// Build once and print the outputs; the exit status says how it went.
fn build_once(
    builds: &Builds<'_>,
    recipe: &Recipe,
    plan: &Plan,
    opts: &Options,
) -> Result<ExitCode> {
    let term = Terminal::new();
    let summary = builds
        .build(recipe, plan, opts, &term)
        .map_err(|e| anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    let mut differs = false;
    for s in &summary.done {
        for (path, cid) in &s.rec.outputs {
            writeln!(out, "{cid} {}:{path}", s.name)?;
        }
        if let Some(check) = &s.check {
            if check.differing.is_empty() {
                eprintln!(
                    "[{}] reproducible: outputs identical to the cached build",
                    s.name
                );
            } else {
                differs = true;
                eprintln!(
                    "[{}] NOT reproducible: {} differ from the cached build (record {})",
                    s.name,
                    check.differing.join(", "),
                    check.cached
                );
            }
        } else if opts.check && !s.cached {
            eprintln!("[{}] built (nothing cached to compare with)", s.name);
        }
    }
    out.flush()?;
    let cached = summary.done.iter().filter(|s| s.cached).count();
    if summary.failed.is_empty() {
        eprintln!(
            "{} step{} done ({cached} cached)",
            summary.done.len(),
            if summary.done.len() == 1 { "" } else { "s" }
        );
        return Ok(if differs {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    for (_, e) in &summary.failed {
        eprintln!("Error: {e}");
    }
    if !summary.skipped.is_empty() {
        eprintln!("Not run: {}", summary.skipped.join(", "));
    }
    Ok(ExitCode::FAILURE)
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

/// `kiln build --watch`: build, then re-plan whenever a file of the source tree changes and
/// build again when that changed an action key (cached steps are not run again).
fn watch(
    builds: &Builds<'_>,
    a: &BuildArgs,
    params: &BTreeMap<String, String>,
    opts: &Options,
    recipe: Recipe,
    plan: Plan,
) -> Result<ExitCode> {
    let interval = duration(&a.interval)?.max(Duration::from_millis(50));
    let keys = |p: &Plan| p.steps.iter().map(|s| s.key).collect::<Vec<_>>();
    let mut last_keys = keys(&plan);
    build_once(builds, &recipe, &plan, opts)?;
    let mut seen = fingerprint(&a.dir);
    eprintln!(
        "Watching {} for changes (every {:.1?}; Ctrl-C stops)",
        a.dir.display(),
        interval
    );
    loop {
        std::thread::sleep(interval);
        let now = fingerprint(&a.dir);
        if now == seen {
            continue;
        }
        seen = now;
        let recipe = match Recipe::load(&a.dir) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("Error: {e} (still watching)");
                continue;
            }
        };
        let plan = match Plan::new(&recipe, params) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("Error: {e} (still watching)");
                continue;
            }
        };
        if keys(&plan) == last_keys {
            continue;
        }
        last_keys = keys(&plan);
        eprintln!("Change in {}: building", a.dir.display());
        if let Err(e) = build_once(builds, &recipe, &plan, opts) {
            eprintln!("Error: {e:#} (still watching)");
        }
    }
}

/// `kiln builds`.
pub fn builds(repo: &Repo, a: BuildsArgs) -> Result<ExitCode> {
    let svc = Service::open(repo)?;
    let builds = svc.builds()?;
    let rows = builds.recent(a.limit).map_err(|e| anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    for r in rows {
        let duration = match r.ended_ms {
            Some(e) => format!("{:.2}s", e.saturating_sub(r.started_ms) as f64 / 1000.0),
            None => "-".into(),
        };
        let record = r.record.map_or_else(|| "-".to_string(), |c| c.to_string());
        writeln!(
            out,
            "{:>5}  {:<8}  {:<6}  {:>8}  {:<20}  {record}",
            r.id,
            if r.status == "ok" { "ok" } else { "failed" },
            if r.cached { "cached" } else { "built" },
            duration,
            r.step,
        )?;
        if r.status != "ok" {
            writeln!(out, "       {}", r.status)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The build a number, record CID or action CID names.
fn find_build(builds: &Builds<'_>, which: &str) -> Result<kiln_build::index::BuildRow> {
    let row = if let Ok(id) = which.parse::<i64>() {
        builds.index().build(id).map_err(|e| anyhow!("{e}"))?
    } else {
        let cid = kiln_core::cids::parse_cid(which)
            .map_err(|_| anyhow!("{which:?} is neither a build number nor a CID"))?;
        builds.index().build_of(&cid).map_err(|e| anyhow!("{e}"))?
    };
    row.ok_or_else(|| anyhow!("no build {which:?} in this repository"))
}

/// `kiln record RECORD|BUILD`.
pub fn record(repo: &Repo, a: LogArgs) -> Result<ExitCode> {
    let svc = Service::open(repo)?;
    let builds = svc.builds()?;
    // A record CID, or a build (number, or action CID) whose record to show.
    let cid = match kiln_core::cids::parse_cid(&a.build) {
        Ok(c) if matches!(builds.record(&c), Ok(Some(_))) => c,
        _ => find_build(&builds, &a.build)?
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
    writeln!(out, "started       {} (unix ms)", r.started_ms)?;
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
    let svc = Service::open(repo)?;
    let builds = svc.builds()?;
    let row = find_build(&builds, &a.build)?;
    let Some(log) = row.log else {
        bail!("build {} has no stored log ({})", row.id, row.status);
    };
    let mut out = std::io::stdout().lock();
    kiln_core::export::read_file(&svc.store, &log, 0, None, &mut out)
        .with_context(|| format!("reading log {log} of build {}", row.id))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `30s`, `5m`, `1h`, `250ms`, or plain seconds.
fn duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("bad duration {s:?} (examples: 30s, 5m, 1h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("bad duration {s:?} (examples: 30s, 5m, 1h)"),
    };
    if !secs.is_finite() || secs < 0.0 {
        bail!("bad duration {s:?}");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// For `kiln get ACTION[/OUTPUT]`: the output's CID (and the output's name), found in the
/// action cache or built now.
pub fn action_output(
    repo: &Repo,
    action: Cid,
    below: &[String],
    timeout: &str,
) -> Result<(Cid, String)> {
    let limit = duration(timeout)?;
    let svc = Service::open(repo)?;
    let builds = svc.builds()?;
    let opts = Options {
        requested_by: requester(),
        ..Options::default()
    };
    let term = Terminal::new();
    let (record, rec, cached) = builds
        .find_or_build(&action, Instant::now() + limit, &opts, &term)
        .map_err(|e| anyhow!("{e}"))?;
    eprintln!(
        "{} action {action}: record {record}",
        if cached { "Found" } else { "Built" }
    );
    let path = below.join("/");
    let (name, cid) = if path.is_empty() {
        if rec.outputs.len() != 1 {
            bail!(
                "action {action} has {} outputs; name one: {}",
                rec.outputs.len(),
                rec.outputs
                    .keys()
                    .map(|o| format!("{action}/{o}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let Some((o, c)) = rec.outputs.iter().next() else {
            bail!("action {action} has no outputs");
        };
        (o.clone(), *c)
    } else {
        let Some((o, c)) = rec.outputs.iter().find(|(o, _)| {
            path == **o
                || path
                    .strip_prefix(o.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        }) else {
            bail!(
                "action {action} has no output {path:?} (outputs: {})",
                rec.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        let rest: Vec<String> = path[o.len()..]
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let c = kiln_core::export::resolve(
            &svc.store,
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
