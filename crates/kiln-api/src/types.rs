//! The JSON bodies of kiln's own API (`/api/kiln/v1/`), shared by the daemon (which
//! serialises them) and the command line (which reads them when it talks to a daemon).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;

/// Where kiln's own API lives on the API listener.
pub const PREFIX: &str = "/api/kiln/v1";

/// `GET /api/kiln/v1/node`: who this node is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeView {
    /// libp2p peer ID.
    pub peer_id: String,
    /// `did:key:z6Mk…`.
    pub did: String,
    /// `kiln/<version>`.
    pub agent_version: String,
    /// Listen addresses as multiaddrs.
    pub addresses: Vec<String>,
    /// The repository directory.
    pub repo_path: String,
}

/// `GET /api/kiln/v1/stat`: repository statistics.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatView {
    /// Stored blocks.
    pub blocks: u64,
    /// Sum of the stored blocks' sizes.
    pub block_bytes: u64,
    /// Pins.
    pub pins: u64,
    /// Pack files.
    pub packs: u64,
    /// Pack files' size on disk.
    pub pack_bytes: u64,
    /// Database size on disk (with its WAL).
    pub db_bytes: u64,
    /// The repository directory.
    pub repo_path: String,
}

impl StatView {
    /// From the store's statistics.
    pub fn new(s: &kiln_store::RepoStat, repo_path: &std::path::Path) -> StatView {
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
}

/// One pin in `GET /api/kiln/v1/pins`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinView {
    /// The pin's number (unique in the repository).
    #[serde(default)]
    pub id: i64,
    /// The pinned root.
    pub cid: String,
    /// `recursive` or `direct`.
    pub mode: String,
    /// Who holds it: `local` (the local administrator), or kiln itself: `build`,
    /// `schedule:N`, `rootfs`.
    #[serde(default)]
    pub owner: String,
    /// The pin's name, if it has one.
    pub name: Option<String>,
    /// When it was pinned, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

impl PinView {
    /// From a stored pin.
    pub fn new(p: &kiln_store::Pin) -> PinView {
        PinView {
            id: p.id,
            cid: p.cid.to_string(),
            mode: p.mode.to_string(),
            owner: p.owner.to_string(),
            name: p.name.clone(),
            created_ms: p
                .created
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }
}

/// `GET /api/kiln/v1/pins`: every pin, oldest first; with `?indirect=true` also every
/// block protected only through a recursive pin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinList {
    /// The pins.
    pub pins: Vec<PinView>,
    /// Indirectly pinned blocks (empty unless asked for).
    #[serde(default)]
    pub indirect: Vec<String>,
}

/// One event of the journal (`GET /api/kiln/v1/events`, `kiln events --json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventView {
    /// Its number (increasing; pass the last one seen as `after` to follow).
    pub id: i64,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who asked (`local`, `schedule:N`).
    pub who: String,
    /// Through what (`cli`, `rpc`, `api`, `ui`, `kiln`).
    pub via: String,
    /// What was done (`add`, `pin`, `unpin`, `gc`, `build finished`, …).
    pub action: String,
    /// What it was done to (a CID, `sN`, `schedule N`), possibly empty.
    pub target: String,
    /// Whether it was done.
    pub ok: bool,
    /// A short detail, or why it failed.
    pub detail: String,
}

impl From<&kiln_store::journal::Event> for EventView {
    fn from(e: &kiln_store::journal::Event) -> Self {
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
}

/// `GET /api/kiln/v1/events`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventList {
    /// The events, in the order asked for.
    pub events: Vec<EventView>,
}

/// `POST /api/kiln/v1/gc`: what garbage collection did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GcView {
    /// Blocks removed.
    pub blocks_removed: u64,
    /// Sum of their sizes.
    pub bytes_freed: u64,
    /// Pack files deleted.
    pub packs_deleted: u64,
    /// Pack files compacted.
    pub packs_rewritten: u64,
    /// Disk space given back.
    pub disk_bytes_reclaimed: u64,
}

impl From<&kiln_store::GcReport> for GcView {
    fn from(r: &kiln_store::GcReport) -> GcView {
        GcView {
            blocks_removed: r.blocks_removed,
            bytes_freed: r.bytes_freed,
            packs_deleted: r.packs_deleted,
            packs_rewritten: r.packs_rewritten,
            disk_bytes_reclaimed: r.disk_bytes_reclaimed,
        }
    }
}

/// A pinned block that is absent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MissingView {
    /// The absent block.
    pub cid: String,
    /// The pin that needs it.
    pub pin: String,
}

/// `POST /api/kiln/v1/verify`: what re-hashing every block and walking every pin found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerifyView {
    /// Blocks that re-hashed to their CID.
    pub blocks_ok: u64,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Blocks whose bytes do not match their CID.
    pub corrupt: Vec<String>,
    /// Blocks with a hash function kiln cannot check.
    pub unsupported: Vec<String>,
    /// Blocks pins need that are absent.
    pub missing: Vec<MissingView>,
}

impl From<&kiln_store::VerifyReport> for VerifyView {
    fn from(r: &kiln_store::VerifyReport) -> VerifyView {
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
}

impl VerifyView {
    /// True when nothing is corrupt or missing.
    pub fn is_ok(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }
}

/// The body of every error from kiln's own API (the same shape as Kubo's RPC errors).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorView {
    /// What went wrong, one line.
    #[serde(rename = "Message")]
    pub message: String,
    /// Always 0.
    #[serde(rename = "Code")]
    pub code: i64,
    /// `error`.
    #[serde(rename = "Type")]
    pub kind: String,
}

// ---------------------------------------------------------------------------------------
// Builds (`/api/kiln/v1/builds`): the request, the views, the events of a running build,
// and how the command line prints them (the same code prints a build run in-process and one
// followed through the daemon, and renders a submission's transcript on the daemon).

/// `POST /api/kiln/v1/builds`: build a recipe (`source`) or find or build one action
/// (`action`); exactly one of the two.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BuildRequest {
    /// The source tree holding `kiln.toml`: content already in the store.
    #[serde(default)]
    pub source: Option<String>,
    /// Recipe parameters replacing their defaults.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Run every step even when cached and compare the outputs with the cached ones.
    #[serde(default)]
    pub check: bool,
    /// Steps run at once (default: the daemon's number of CPUs).
    #[serde(default)]
    pub slots: Option<usize>,
    /// How to name the recipe file in messages and in the build history (the command line
    /// sends the path it was given, so messages read as they do without a daemon; default
    /// `CID/kiln.toml`). Also names the owner of the steps' cache directories.
    #[serde(default)]
    pub origin: Option<String>,
    /// Who asks, as the client describes itself (written in the records, after `kiln API: `;
    /// not authenticated).
    #[serde(default)]
    pub requested_by: Option<String>,
    /// An action key (`kiln build --plan` prints them): its record from the action cache, or
    /// a build of it (and of the actions it takes outputs from) if all it needs is here.
    #[serde(default)]
    pub action: Option<String>,
    /// For `action`: give up when it is not found or built within this time (`30s`, `5m`,
    /// `1h`, `250ms`, plain seconds; default `30s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// For `source`: the owner (`upload:TOKEN`) the client imported it under (`dag/import`
    /// with `pin-owner`), so no GC can take it before the build holds it. The build takes
    /// the source over (holds it until it ends) and removes that pin, whether it starts or
    /// not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
}

/// A duration as `kiln get --timeout` takes it: `30s`, `5m`, `1h`, `2d`, `250ms`, or plain
/// seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let bad = || format!("bad duration {s:?} (examples: 30s, 5m, 1h)");
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// How a `--check` rebuild compared with the cached result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckView {
    /// The record that was cached.
    pub cached: String,
    /// Outputs whose content differs from it.
    pub differing: Vec<String>,
}

/// A step that is done: built now or answered from the action cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DoneStep {
    /// The step (for a found or built action: the step named in its record).
    pub step: String,
    /// Its action key.
    pub action: String,
    /// Its build record.
    pub record: String,
    /// Answered from the action cache.
    pub cached: bool,
    /// Declared outputs and their content.
    pub outputs: BTreeMap<String, String>,
    /// The stored log.
    pub log: String,
    /// How long the step ran (when it ran).
    pub duration_ms: u64,
    /// With `check`: the comparison with the cached result (none if nothing was cached).
    pub check: Option<CheckView>,
}

/// A step that failed, and why (one line, or one line and the end of its log).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailedStep {
    /// The step.
    pub step: String,
    /// Why, as `kiln build` prints it after `Error: `.
    pub error: String,
}

/// How a build ended: the `done` event, and `result` in a submission.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildResult {
    /// Steps done, in plan order.
    pub done: Vec<DoneStep>,
    /// Steps that failed.
    pub failed: Vec<FailedStep>,
    /// Steps not run because a step they need failed.
    pub skipped: Vec<String>,
    /// The build could not run at all (or, for an action, was not found or built): why.
    pub error: Option<String>,
}

impl BuildResult {
    /// A build that did not run: `message` says why.
    pub fn error(message: impl Into<String>) -> BuildResult {
        BuildResult {
            error: Some(message.into()),
            ..BuildResult::default()
        }
    }

    /// Whether it succeeded, and the summary its `build finished` journal entry carries.
    pub fn journal_outcome(&self) -> (bool, String) {
        let failed: Vec<&str> = self.failed.iter().map(|f| f.step.as_str()).collect();
        kiln_node::journal::build_outcome(
            self.done.len(),
            self.done.iter().filter(|d| d.cached).count(),
            &failed,
            self.skipped.len(),
            self.error.as_deref(),
        )
    }

    /// From what the build service reports.
    pub fn from_summary(s: &kiln_build::exec::Summary) -> BuildResult {
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

    /// Whether `kiln build` exits with status 0: it ran, nothing failed, and no `check`
    /// found different outputs.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
            && self.failed.is_empty()
            && !self
                .done
                .iter()
                .any(|d| d.check.as_ref().is_some_and(|c| !c.differing.is_empty()))
    }

    /// What `kiln build` prints once the build has ended (`check`: it was asked to
    /// compare): each output as `CID STEP:PATH` on `out`, the comparisons, the count of
    /// steps or the errors on `err`. A result with [`BuildResult::error`] set prints nothing
    /// (the caller reports the error).
    pub fn report(
        &self,
        check: bool,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> std::io::Result<()> {
        if self.error.is_some() {
            return Ok(());
        }
        for s in &self.done {
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
        if self.failed.is_empty() {
            let cached = self.done.iter().filter(|s| s.cached).count();
            writeln!(
                err,
                "{} step{} done ({cached} cached)",
                self.done.len(),
                if self.done.len() == 1 { "" } else { "s" }
            )?;
            return Ok(());
        }
        for f in &self.failed {
            writeln!(err, "Error: {}", f.error)?;
        }
        if !self.skipped.is_empty() {
            writeln!(err, "Not run: {}", self.skipped.join(", "))?;
        }
        Ok(())
    }
}

fn outputs(m: &BTreeMap<String, kiln_core::Cid>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
}

/// What happens during a build, as `GET /api/kiln/v1/builds/{id}/events` sends it: each one
/// a server-sent event whose `event:` is the `event` field here and whose `data:` is this
/// JSON. The last one is always `done`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum BuildEvent {
    /// A step's action had a good record: nothing runs.
    Cached {
        /// The step.
        step: String,
        /// Its record.
        record: String,
    },
    /// A step started running as build number `build`.
    Started {
        /// The step.
        step: String,
        /// Its number in the build history.
        build: i64,
    },
    /// One line of a running step's output (without its newline; bytes that are not UTF-8
    /// replaced). A last line without a newline comes when the step finishes.
    Output {
        /// The step.
        step: String,
        /// The line.
        line: String,
    },
    /// A step ended, well or not, with a record.
    Finished {
        /// The step.
        step: String,
        /// Its number in the build history.
        build: Option<i64>,
        /// Its record.
        record: String,
        /// Whether it succeeded.
        ok: bool,
        /// `ok`, or why it failed.
        status: String,
        /// How long it ran.
        duration_ms: u64,
        /// Declared outputs and their content (none when it failed).
        outputs: BTreeMap<String, String>,
        /// Its stored log.
        log: String,
    },
    /// Events that happened before these were not kept in the daemon's memory (a follower
    /// that fell far behind, or came late to a long build): this many are missing.
    Gap {
        /// How many events are missing.
        missed: u64,
    },
    /// The build ended: its result. Nothing follows.
    Done(BuildResult),
}

impl BuildEvent {
    /// The event's name (`event:` in the stream).
    pub fn name(&self) -> &'static str {
        match self {
            BuildEvent::Cached { .. } => "cached",
            BuildEvent::Started { .. } => "started",
            BuildEvent::Output { .. } => "output",
            BuildEvent::Finished { .. } => "finished",
            BuildEvent::Gap { .. } => "gap",
            BuildEvent::Done(_) => "done",
        }
    }

    /// The line `kiln build` prints on standard error for this event, if any.
    pub fn terminal(&self) -> Option<String> {
        match self {
            BuildEvent::Cached { .. } | BuildEvent::Done(_) => None,
            BuildEvent::Started { step, build } => {
                Some(format!("[{step}] running (build {build})"))
            }
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
}

/// Turns the build service's events into [`BuildEvent`]s: output bytes become whole lines
/// per step (a step's unfinished last line comes out when it finishes), as `kiln build`
/// shows them.
#[derive(Debug, Default)]
pub struct EventLines {
    partial: std::collections::HashMap<String, Vec<u8>>,
    builds: std::collections::HashMap<String, i64>,
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

/// One build of the history (`GET /api/kiln/v1/builds`): a step run or answered from the
/// action cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildRowView {
    /// Its number.
    pub id: i64,
    /// The action.
    pub action: String,
    /// The step.
    pub step: String,
    /// The recipe file it came from, or `get` (a found or built action).
    pub origin: String,
    /// `running`, `ok`, or why it failed.
    pub status: String,
    /// Answered from the action cache, nothing run.
    pub cached: bool,
    /// Its record, once there is one.
    pub record: Option<String>,
    /// Its stored log, once there is one.
    pub log: Option<String>,
    /// Start, Unix milliseconds.
    pub started_ms: u64,
    /// End, Unix milliseconds (none while running).
    pub ended_ms: Option<u64>,
}

impl From<&kiln_build::index::BuildRow> for BuildRowView {
    fn from(r: &kiln_build::index::BuildRow) -> BuildRowView {
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
}

impl BuildRowView {
    /// The header line above the rows.
    pub fn print_header(out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{:>5}  {:<11}  {:<6}  {:<19}  {:>8}  {:<20}  RECIPE  RECORD",
            "#", "STATUS", "HOW", "STARTED (UTC)", "TIME", "STEP"
        )
    }

    /// One word for the status: `ok`, `running`, `interrupted` or `failed`.
    pub fn state(&self) -> &'static str {
        match self.status.as_str() {
            "ok" => "ok",
            "running" => "running",
            s if s.starts_with("interrupted") => "interrupted",
            _ => "failed",
        }
    }

    /// The row as `kiln builds` prints it (one line, and a second with the reason when it
    /// did not succeed).
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let duration = match self.ended_ms {
            Some(e) => format!("{:.2}s", e.saturating_sub(self.started_ms) as f64 / 1000.0),
            None => "-".into(),
        };
        let started = kiln_build::schedule::format_utc(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.started_ms),
        );
        writeln!(
            out,
            "{:>5}  {:<11}  {:<6}  {:<19}  {:>8}  {:<20}  {}  {}",
            self.id,
            self.state(),
            if self.cached { "cached" } else { "built" },
            started.trim_end_matches(" UTC"),
            duration,
            self.step,
            self.origin,
            self.record.as_deref().unwrap_or("-"),
        )?;
        if !matches!(self.state(), "ok" | "running") {
            writeln!(out, "       {}", self.status)?;
        }
        Ok(())
    }
}

/// `GET /api/kiln/v1/builds`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildList {
    /// Recent builds from the history, newest first.
    pub builds: Vec<BuildRowView>,
    /// Builds submitted to this daemon since it started (kept in memory), newest first.
    pub submissions: Vec<SubmissionView>,
}

/// One step of a submission.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepView {
    /// The step.
    pub name: String,
    /// Its action key (known from the start for a recipe's steps).
    pub action: Option<String>,
    /// `pending`, `running`, `cached`, `ok`, `failed` or `skipped`.
    pub state: String,
    /// Its number in the build history, once it runs.
    pub build: Option<i64>,
    /// Its record.
    pub record: Option<String>,
    /// Its stored log.
    pub log: Option<String>,
    /// Declared outputs and their content.
    pub outputs: BTreeMap<String, String>,
    /// `ok`, or why it failed.
    pub status: Option<String>,
    /// When it started running.
    pub started_ms: Option<u64>,
    /// When it ended.
    pub ended_ms: Option<u64>,
}

/// A build submitted to the daemon (`POST /api/kiln/v1/builds`): id `sN`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubmissionView {
    /// `s1`, `s2`, …: numbered from 1 each time the daemon starts.
    pub id: String,
    /// `recipe` or `action`.
    pub kind: String,
    /// `running`, `ok` or `failed`.
    pub state: String,
    /// The source tree (a recipe build).
    pub source: Option<String>,
    /// The recipe file as messages name it (a recipe build).
    pub origin: Option<String>,
    /// The parameters given.
    pub params: BTreeMap<String, String>,
    /// Asked to compare rebuilt outputs with cached ones.
    pub check: bool,
    /// The action asked for (an action build).
    pub action: Option<String>,
    /// The schedule that submitted it (`GET /api/kiln/v1/schedules`), when the daemon built
    /// it on a recipe's schedule.
    #[serde(default)]
    pub schedule: Option<i64>,
    /// Submitted, Unix milliseconds.
    pub started_ms: u64,
    /// Ended, Unix milliseconds.
    pub ended_ms: Option<u64>,
    /// The steps: a recipe's in plan order; an action's as they start.
    pub steps: Vec<StepView>,
    /// How it ended.
    pub result: Option<BuildResult>,
    /// Where its events stream.
    pub events: String,
    /// Where its transcript is.
    pub log: String,
}

/// A build record's content, as `GET /api/kiln/v1/builds/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordView {
    /// `ok`, or why it failed.
    pub status: String,
    /// The command's exit code, when it exited.
    pub exit: Option<i32>,
    /// Declared outputs and their content.
    pub outputs: BTreeMap<String, String>,
    /// The stored log.
    pub log: String,
    /// Cache directories kept and their content.
    pub caches: BTreeMap<String, String>,
    /// The node that ran it (`did:key`), whose key signed the record.
    pub builder: String,
    /// Who asked.
    pub requested_by: String,
    /// Ran with the impure host builder.
    pub host: bool,
    /// Start and end, Unix milliseconds.
    pub started_ms: u64,
    /// End.
    pub ended_ms: u64,
}

impl From<&kiln_build::record::BuildRecord> for RecordView {
    fn from(r: &kiln_build::record::BuildRecord) -> RecordView {
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
}

/// `GET /api/kiln/v1/builds/{id}` for a build of the history (a number, or an action or
/// record CID).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildView {
    /// The history's row.
    pub build: BuildRowView,
    /// Its record's content, when it has one.
    pub record: Option<RecordView>,
    /// The submission it belongs to, while this daemon remembers it.
    pub submission: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Schedules (`/api/kiln/v1/schedules`): recipes the daemon builds on their schedule.

/// `POST /api/kiln/v1/schedules`: register a recipe whose `kiln.toml` has a `schedule` (and
/// mutable inputs for it to check).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// The source tree holding `kiln.toml`: content already in the store.
    pub source: String,
    /// Recipe parameters replacing their defaults.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// How to name the recipe file in messages and in the build history (default
    /// `CID/kiln.toml`).
    #[serde(default)]
    pub origin: Option<String>,
    /// The owner (`upload:TOKEN`) the client imported the source under, as for a build:
    /// the schedule holds the source itself once registered, and that pin is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
}

/// A registered schedule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduleView {
    /// Its number (`kiln schedules rm ID`).
    pub id: i64,
    /// The source tree (pinned as `schedule:ID` while registered).
    pub source: String,
    /// The recipe file as messages name it.
    pub origin: String,
    /// The parameters given.
    pub params: BTreeMap<String, String>,
    /// The recipe's schedule.
    pub schedule: String,
    /// Registered, Unix milliseconds.
    pub created_ms: u64,
    /// The next check, Unix milliseconds (none if the schedule never comes again).
    pub next_ms: Option<u64>,
    /// A check is running now.
    pub checking: bool,
    /// When the last check started, Unix milliseconds.
    pub last_check_ms: Option<u64>,
    /// What it found: `nothing new`, `built` or `error`.
    pub last_outcome: Option<String>,
    /// What it found, in words.
    pub last_message: Option<String>,
    /// The last build it submitted (`sN`), while this daemon remembers it.
    pub last_submission: Option<String>,
}

impl ScheduleView {
    /// From the index's row; the rest is what the daemon knows in memory.
    pub fn from_row(
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

    /// The schedule as `kiln schedules` prints it.
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let time = |ms: u64| {
            kiln_build::schedule::format_utc(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
            )
        };
        writeln!(out, "{:>5}  {}  {}", self.id, self.schedule, self.origin)?;
        writeln!(out, "       source      {}", self.source)?;
        if !self.params.is_empty() {
            let p: Vec<String> = self
                .params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(out, "       params      {}", p.join(" "))?;
        }
        match (self.checking, self.next_ms) {
            (true, _) => writeln!(out, "       next check  now (checking)")?,
            (false, Some(t)) => writeln!(out, "       next check  {}", time(t))?,
            (false, None) => writeln!(out, "       next check  never")?,
        }
        match (self.last_check_ms, &self.last_message) {
            (Some(t), Some(m)) => writeln!(out, "       last check  {}: {m}", time(t))?,
            _ => writeln!(out, "       last check  none yet")?,
        }
        if let Some(s) = &self.last_submission {
            writeln!(out, "       last build  {s} (kiln log {s})")?;
        }
        Ok(())
    }
}

/// `GET /api/kiln/v1/schedules`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduleList {
    /// Every registered schedule, oldest first.
    pub schedules: Vec<ScheduleView>,
}
