//! Builds on the daemon: the recipe and its source inputs sent as one CAR, the build
//! submitted to kiln's API and its events followed to the end (Ctrl-C cancels it there).

use super::super::{BuildHow, Found, requester};
use crate::remote::{CarFile, Daemon};
use anyhow::{Context, Result, anyhow, bail};
use kiln_build::{Input, Recipe};
use kiln_core::import::{DirEntry, Imported};
use kiln_core::{BlockSink, Cid};
use kiln_wire::{
    BuildEvent, BuildRequest, BuildResult, PREFIX, ScheduleRequest, ScheduleView, SubmissionView,
};
use std::collections::BTreeMap;
use std::path::Path;

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
pub(super) fn follow(d: &Daemon, id: &str) -> Result<BuildResult> {
    let _watching = cancel_on_interrupt(d, id);
    let resp = d.get(&format!("{}/builds/{id}/events", kiln_wire::PREFIX))?;
    let mut result = None;
    crate::remote::read_events(resp, |ev: BuildEvent| {
        if let BuildEvent::Done(r) = ev {
            result = Some(r);
            return Ok(false);
        }
        crate::progress::build_event(&mut std::io::stderr().lock(), &ev);
        Ok(true)
    })?;
    result.ok_or_else(|| {
        anyhow!(
            "the daemon stopped sending the events of build {id} before it ended (see `kiln builds`)"
        )
    })
}

/// Build through the daemon: send the source, submit, follow.
pub(super) fn build(d: &Daemon, recipe: &Recipe, how: &BuildHow) -> Result<BuildResult> {
    let upload = upload_owner();
    let source = send_source(d, recipe, Some(&upload))?;
    let req = BuildRequest {
        upload: Some(upload),
        source: Some(source.to_string()),
        params: how.params.clone(),
        check: how.check,
        slots: how.slots,
        origin: Some(recipe.file.display().to_string()),
        requested_by: Some(requester()),
        ..BuildRequest::default()
    };
    let sub: SubmissionView = d.post_json_body(&format!("{PREFIX}/builds"), &req)?;
    follow(d, &sub.id)
}

/// An action's outputs: the daemon finds or builds it; its events are followed.
pub(super) fn find_or_build(d: &Daemon, action: &Cid, timeout: &str) -> Result<Found> {
    let req = BuildRequest {
        action: Some(action.to_string()),
        timeout: Some(timeout.to_string()),
        requested_by: Some(requester()),
        ..BuildRequest::default()
    };
    let sub: SubmissionView = d.post_json_body(&format!("{PREFIX}/builds"), &req)?;
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
    Ok(Found {
        record: done.record,
        outputs,
        cached: done.cached,
    })
}

/// Send the recipe and its source inputs and register it on the daemon's schedules:
/// whether it is new, and the schedule.
pub(super) fn schedule(
    d: &Daemon,
    recipe: &Recipe,
    params: &BTreeMap<String, String>,
) -> Result<(bool, ScheduleView)> {
    let upload = upload_owner();
    let source = send_source(d, recipe, Some(&upload))?;
    let req = ScheduleRequest {
        source: source.to_string(),
        params: params.clone(),
        origin: Some(recipe.file.display().to_string()),
        upload: Some(upload),
    };
    let (status, v): (u16, ScheduleView) =
        d.post_json_status(&format!("{PREFIX}/schedules"), &req)?;
    Ok((status == 201, v))
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
