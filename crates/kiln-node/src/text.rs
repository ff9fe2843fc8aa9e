//! The text the command line prints for the wire shapes, and the daemon's build
//! transcripts: one rendering, whether a build ran in-process or was followed through a
//! daemon.

use kiln_wire::{BuildEvent, BuildResult, BuildRowView, ScheduleView};
use std::io::Write;

/// `2026-11-20 14:03:07 UTC`: how every surface writes a moment.
pub use kiln_build::schedule::format_utc;

fn utc(ms: u64) -> String {
    kiln_build::schedule::format_utc(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// A time given in seconds since the epoch, as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn when_secs(secs: i64) -> String {
    utc(u64::try_from(secs).unwrap_or(0).saturating_mul(1000))
}

/// The line `kiln build` prints on standard error for `ev`, if any.
pub fn event_line(ev: &BuildEvent) -> Option<String> {
    match ev {
        BuildEvent::Cached { .. } | BuildEvent::Done(_) => None,
        BuildEvent::Started { step, build } => Some(format!("[{step}] running (build {build})")),
        BuildEvent::Output { step, line } => Some(format!("[{step}] {line}")),
        BuildEvent::Finished {
            step,
            ok,
            status,
            duration_ms,
            ..
        } => {
            let secs = *duration_ms as f64 / 1000.0;
            Some(if *ok {
                format!("[{step}] done in {secs:.2} s")
            } else {
                format!("[{step}] failed after {secs:.2} s: {status}")
            })
        }
        BuildEvent::Gap { missed } => Some(format!(
            "[kiln] {missed} earlier event{} of this build were not kept (the stored logs have everything)",
            if *missed == 1 { "" } else { "s" }
        )),
    }
}

/// What `kiln build` prints once the build has ended (`check`: it was asked to
/// compare): each output as `CID STEP:PATH` on `out`, the comparisons, the count of
/// steps or the errors on `err`. A result with [`BuildResult::error`] set prints nothing
/// (the caller reports the error).
pub fn report(
    r: &BuildResult,
    check: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    if r.error.is_some() {
        return Ok(());
    }
    for s in &r.done {
        for (path, cid) in &s.outputs {
            writeln!(out, "{cid} {}:{path}", s.step)?;
        }
        out.flush()?;
        if let Some(c) = &s.check {
            if c.differing.is_empty() {
                writeln!(
                    err,
                    "[{}] reproducible: outputs identical to the cached build",
                    s.step
                )?;
            } else {
                writeln!(
                    err,
                    "[{}] NOT reproducible: {} differ from the cached build (record {})",
                    s.step,
                    c.differing.join(", "),
                    c.cached
                )?;
            }
        } else if check && !s.cached {
            writeln!(err, "[{}] built (nothing cached to compare with)", s.step)?;
        }
    }
    if r.failed.is_empty() {
        let cached = r.done.iter().filter(|s| s.cached).count();
        writeln!(
            err,
            "{} step{} done ({cached} cached)",
            r.done.len(),
            if r.done.len() == 1 { "" } else { "s" }
        )?;
        return Ok(());
    }
    for f in &r.failed {
        writeln!(err, "Error: {}", f.error)?;
    }
    if !r.skipped.is_empty() {
        writeln!(err, "Not run: {}", r.skipped.join(", "))?;
    }
    Ok(())
}

/// The header line above the rows of `kiln builds`.
pub fn build_header(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>5}  {:<11}  {:<6}  {:<19}  {:>8}  {:<20}  RECIPE  RECORD",
        "#", "STATUS", "HOW", "STARTED (UTC)", "TIME", "STEP"
    )
}

/// A build of the history as `kiln builds` prints it (one line, and a second with the
/// reason when it did not succeed).
pub fn build_row(b: &BuildRowView, out: &mut dyn Write) -> std::io::Result<()> {
    let duration = match b.ended_ms {
        Some(e) => format!("{:.2}s", e.saturating_sub(b.started_ms) as f64 / 1000.0),
        None => "-".into(),
    };
    let started = utc(b.started_ms);
    writeln!(
        out,
        "{:>5}  {:<11}  {:<6}  {:<19}  {:>8}  {:<20}  {}  {}",
        b.id,
        b.state(),
        if b.cached { "cached" } else { "built" },
        started.trim_end_matches(" UTC"),
        duration,
        b.step,
        b.origin,
        b.record.as_deref().unwrap_or("-"),
    )?;
    if !matches!(b.state(), "ok" | "running") {
        writeln!(out, "       {}", b.status)?;
    }
    Ok(())
}

/// A schedule as `kiln schedules` prints it.
pub fn schedule(s: &ScheduleView, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{:>5}  {}  {}", s.id, s.schedule, s.origin)?;
    writeln!(out, "       source      {}", s.source)?;
    if !s.params.is_empty() {
        let p: Vec<String> = s.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(out, "       params      {}", p.join(" "))?;
    }
    match (s.checking, s.next_ms) {
        (true, _) => writeln!(out, "       next check  now (checking)")?,
        (false, Some(t)) => writeln!(out, "       next check  {}", utc(t))?,
        (false, None) => writeln!(out, "       next check  never")?,
    }
    match (s.last_check_ms, &s.last_message) {
        (Some(t), Some(m)) => writeln!(out, "       last check  {}: {m}", utc(t))?,
        _ => writeln!(out, "       last check  none yet")?,
    }
    if let Some(n) = &s.last_submission {
        writeln!(out, "       last build  {n} (kiln log {n})")?;
    }
    Ok(())
}
