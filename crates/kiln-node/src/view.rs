//! The wire shapes (`kiln_wire`) of the store's and the build engine's values: what the
//! daemon sends and the command line prints in-process alike.

use kiln_wire::{
    BuildEvent, BuildResult, BuildRowView, CheckView, DoneStep, EventView, FailedStep, GcView,
    MissingView, PinView, RecordView, ScheduleView, StatView, VerifyView,
};
use std::collections::{BTreeMap, HashMap};

/// Repository statistics.
pub fn stat(s: &kiln_store::RepoStat, repo_path: &std::path::Path) -> StatView {
    StatView {
        blocks: s.blocks,
        block_bytes: s.block_bytes,
        pins: s.pins,
        packs: s.packs,
        pack_bytes: s.pack_bytes,
        db_bytes: s.db_bytes,
        repo_path: repo_path.display().to_string(),
    }
}

/// A stored pin.
pub fn pin(p: &kiln_store::Pin) -> PinView {
    PinView {
        id: p.id,
        cid: p.cid.to_string(),
        mode: p.mode.to_string(),
        owner: p.owner.to_string(),
        name: p.name.clone(),
        namespace: p.namespace.clone(),
        created_ms: p
            .created
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    }
}

/// An event of the journal.
pub fn event(e: &kiln_store::journal::Event) -> EventView {
    EventView {
        id: e.id,
        at_ms: e.at_ms,
        who: e.entry.who.clone(),
        via: e.entry.via.clone(),
        action: e.entry.action.clone(),
        target: e.entry.target.clone(),
        ok: e.entry.ok,
        detail: e.entry.detail.clone(),
    }
}

/// What garbage collection did.
pub fn gc(done: &crate::content::GcDone) -> GcView {
    let r = &done.store;
    GcView {
        build_dirs_removed: done.build_dirs.total(),
        blocks_removed: r.blocks_removed,
        bytes_freed: r.bytes_freed,
        packs_deleted: r.packs_deleted,
        packs_rewritten: r.packs_rewritten,
        disk_bytes_reclaimed: r.disk_bytes_reclaimed,
    }
}

/// What verifying the store found.
pub fn verify(r: &kiln_store::VerifyReport) -> VerifyView {
    VerifyView {
        blocks_ok: r.blocks_ok,
        bytes_checked: r.bytes_checked,
        corrupt: r.corrupt.iter().map(|c| c.to_string()).collect(),
        unsupported: r.unsupported.iter().map(|c| c.to_string()).collect(),
        missing: r
            .missing
            .iter()
            .map(|m| MissingView {
                cid: m.cid.to_string(),
                pin: m.pin.to_string(),
            })
            .collect(),
    }
}

/// A build of the history.
pub fn build_row(r: &kiln_build::index::BuildRow) -> BuildRowView {
    BuildRowView {
        id: r.id,
        action: r.action.to_string(),
        step: r.step.clone(),
        origin: r.origin.clone(),
        status: r.status.clone(),
        cached: r.cached,
        record: r.record.map(|c| c.to_string()),
        log: r.log.map(|c| c.to_string()),
        started_ms: r.started_ms,
        ended_ms: r.ended_ms,
    }
}

/// A build record's content.
pub fn record(r: &kiln_build::record::BuildRecord) -> RecordView {
    RecordView {
        status: r.status.clone(),
        exit: r.exit,
        outputs: outputs(&r.outputs),
        log: r.log.to_string(),
        caches: outputs(&r.caches),
        builder: r.builder.clone(),
        requested_by: r.requested_by.clone(),
        host: r.host,
        started_ms: r.started_ms,
        ended_ms: r.ended_ms,
    }
}

/// A registered schedule: the index's row, and what the daemon knows of it in memory.
pub fn schedule(
    r: &kiln_build::index::ScheduleRow,
    next_ms: Option<u64>,
    checking: bool,
    last_submission: Option<String>,
) -> ScheduleView {
    ScheduleView {
        id: r.id,
        source: r.source.to_string(),
        origin: r.origin.clone(),
        params: r.params.clone(),
        schedule: r.schedule.clone(),
        created_ms: r.created_ms,
        next_ms,
        checking,
        last_check_ms: r.last_check_ms,
        last_outcome: r.last_outcome.clone(),
        last_message: r.last_message.clone(),
        last_submission,
    }
}

/// How a build ended, from what the build engine reports.
pub fn build_result(s: &kiln_build::exec::Summary) -> BuildResult {
    BuildResult {
        done: s
            .done
            .iter()
            .map(|d| DoneStep {
                step: d.name.clone(),
                action: d.key.to_string(),
                record: d.record.to_string(),
                cached: d.cached,
                outputs: outputs(&d.rec.outputs),
                log: d.rec.log.to_string(),
                duration_ms: d.rec.duration_ms(),
                check: d.check.as_ref().map(|c| CheckView {
                    cached: c.cached.to_string(),
                    differing: c.differing.clone(),
                }),
            })
            .collect(),
        failed: s
            .failed
            .iter()
            .map(|(step, e)| FailedStep {
                step: step.clone(),
                error: e.to_string(),
            })
            .collect(),
        skipped: s.skipped.clone(),
        error: None,
    }
}

/// Turns the build engine's events into [`BuildEvent`]s: output bytes become whole lines
/// per step (a step's unfinished last line comes out when it finishes), as `kiln build`
/// shows them.
#[derive(Debug, Default)]
pub struct EventLines {
    partial: HashMap<String, Vec<u8>>,
    builds: HashMap<String, i64>,
}

impl EventLines {
    /// The events `e` makes, in order.
    pub fn convert(&mut self, e: &kiln_build::exec::Event<'_>) -> Vec<BuildEvent> {
        use kiln_build::exec::Event;
        match e {
            Event::Cached { step, record } => vec![BuildEvent::Cached {
                step: step.to_string(),
                record: record.to_string(),
            }],
            Event::Started { step, build } => {
                self.builds.insert(step.to_string(), *build);
                vec![BuildEvent::Started {
                    step: step.to_string(),
                    build: *build,
                }]
            }
            Event::Output { step, bytes } => {
                let buf = self.partial.entry(step.to_string()).or_default();
                buf.extend_from_slice(bytes);
                let mut out = Vec::new();
                while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    out.push(BuildEvent::Output {
                        step: step.to_string(),
                        line: String::from_utf8_lossy(&line[..line.len() - 1]).into_owned(),
                    });
                }
                out
            }
            Event::Finished { step, record, rec } => {
                let mut out = Vec::new();
                if let Some(rest) = self.partial.remove(*step)
                    && !rest.is_empty()
                {
                    out.push(BuildEvent::Output {
                        step: step.to_string(),
                        line: String::from_utf8_lossy(&rest).into_owned(),
                    });
                }
                out.push(BuildEvent::Finished {
                    step: step.to_string(),
                    build: self.builds.get(*step).copied(),
                    record: record.to_string(),
                    ok: rec.ok(),
                    status: rec.status.clone(),
                    duration_ms: rec.duration_ms(),
                    outputs: outputs(&rec.outputs),
                    log: rec.log.to_string(),
                });
                out
            }
        }
    }
}

fn outputs(m: &BTreeMap<String, kiln_core::Cid>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
}

/// A token the node issued, as kiln's API shows it (never the token itself).
pub fn token(t: &kiln_store::tokens::IssuedToken) -> kiln_wire::TokenView {
    kiln_wire::TokenView {
        id: t.id.clone(),
        did: t.did.clone(),
        issued_ms: t.issued_ms,
        expires: t.expires,
        issued_by: t.issued_by.clone(),
        note: t.note.clone(),
        revoked_ms: t.revoked_ms,
    }
}
