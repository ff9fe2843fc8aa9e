//! The wire shapes of kiln's own API (`/api/kiln/v1/`): the JSON bodies the daemon sends
//! and the command line reads (and, in-process, the same values without the JSON).
//!
//! Data only: this crate depends on serde and nothing of kiln, so a client needs no server
//! code to speak to a node. Conversions from the store's and the build engine's types live
//! in `kiln_node::view`, the text the command line prints in `kiln_node::text`.
#![deny(missing_docs)]

pub mod psa;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// The namespace it lives in (`default` for a daemon that does not say).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// When it was pinned, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

fn default_namespace() -> String {
    "default".to_string()
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
    /// Directories the builds kept beside the store that nothing refers to any longer
    /// (content written out for the sandbox, git checkouts and fetch caches), removed.
    #[serde(default)]
    pub build_dirs_removed: u64,
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
// (`kiln_node::text` prints them the same for a build run in-process and one followed
// through the daemon, and for a submission's transcript on the daemon).

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

/// A size as people write it: `1048576`, `512KiB`, `20MiB`, `10GiB`, `2TiB` (also `K`, `M`,
/// `G`, `T`; all binary).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let bad = || format!("bad size {s:?} (examples: 1048576, 512MiB, 10GiB)");
    let n: u64 = n.parse().map_err(|_| bad())?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// A duration for people, in the form [`parse_duration`] reads: `250ms`, `90s`, `5m`, `2h`,
/// `3d` (the largest unit that divides it, else seconds).
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= n && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
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

impl BuildRowView {
    /// One word for the status: `ok`, `running`, `interrupted` or `failed`.
    pub fn state(&self) -> &'static str {
        match self.status.as_str() {
            "ok" => "ok",
            "running" => "running",
            s if s.starts_with("interrupted") => "interrupted",
            _ => "failed",
        }
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

/// `POST /api/kiln/v1/builds/prune`: which builds to remove from the history. At least one
/// rule; with both, a build is kept if either keeps it. Running builds are never removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// Keep the newest this many builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<usize>,
    /// Keep the builds that ended less than this many seconds ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_s: Option<u64>,
}

/// What pruning the build history did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PruneView {
    /// Builds removed from the history.
    pub builds: u64,
    /// Records and logs kiln no longer keeps (pins of the owner `build` removed): `kiln gc`
    /// frees their blocks unless another pin holds them.
    pub released: u64,
    /// Cached results forgotten (a later build of those actions runs again).
    pub forgotten: u64,
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

/// `GET /api/kiln/v1/schedules`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduleList {
    /// Every registered schedule, oldest first.
    pub schedules: Vec<ScheduleView>,
}

// ---------------------------------------------------------------------------------------
// Signing in and tokens (`/api/kiln/v1/auth/…`, `/api/kiln/v1/tokens`)

/// `POST /api/kiln/v1/auth/challenge` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeRequest {
    /// The identity that will sign.
    pub did: String,
}

/// A challenge: sign `kiln-auth-v1\nnode NODE\nidentity DID\nnonce NONCE\n`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeView {
    /// The single-use nonce.
    pub nonce: String,
    /// The node's `did:key`.
    pub node: String,
    /// Until when it may be answered (seconds since the epoch).
    pub expires: u64,
}

/// `POST /api/kiln/v1/auth/token` body: a signed challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The identity.
    pub did: String,
    /// The nonce of its challenge.
    pub nonce: String,
    /// Its ed25519 signature of the challenge message, base64.
    pub signature: String,
    /// How long the token is to live, in seconds (default 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A role in a namespace (`*`: every namespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleView {
    /// The namespace.
    pub namespace: String,
    /// admin, maintainer, writer or reader.
    pub role: String,
}

/// `POST /api/kiln/v1/tokens` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokenRequest {
    /// Whose (default: the caller's own identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    /// The roles it carries (default: all its holder has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<RoleView>>,
    /// How long it lives, in seconds (default 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A token just issued: the only answer that ever holds a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenMinted {
    /// The token (a secret: `kiln1_…`).
    pub token: String,
    /// Its id (not a secret).
    pub id: String,
    /// When it expires (seconds since the epoch).
    pub expires: u64,
}

/// A token the node issued (never the token itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenView {
    /// Its id.
    pub id: String,
    /// Its holder.
    pub did: String,
    /// When it was issued (milliseconds since the epoch).
    pub issued_ms: i64,
    /// When it expires (seconds since the epoch).
    pub expires: i64,
    /// Who asked for it.
    pub issued_by: String,
    /// What it is for.
    pub note: String,
    /// When it was revoked (milliseconds), if it was.
    pub revoked_ms: Option<i64>,
}

/// `GET /api/kiln/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenList {
    /// Newest first.
    pub tokens: Vec<TokenView>,
}

/// `POST /api/kiln/v1/tokens/revoke` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeRequest {
    /// A token's id, or a whole token.
    pub token: String,
}

/// What `POST /api/kiln/v1/tokens/revoke` revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokedView {
    /// The id put on the deny-list.
    pub id: String,
}

/// `POST /api/kiln/v1/ui/login`: a one-time sign-in link for the web UI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UiLinkView {
    /// The link's path and code, `/ui/login?code=…`, on the API listener (a secret until
    /// opened).
    pub path: String,
    /// When it stops working (seconds since the epoch).
    pub expires: u64,
}

/// `POST /api/kiln/v1/ui/logout`: how many web UI sessions were ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionsEndedView {
    /// Sessions ended.
    pub ended: usize,
}

/// `GET /api/kiln/v1/auth/whoami`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoamiView {
    /// The identity a token proved, if any.
    pub did: Option<String>,
    /// The local administrator (the repository's Unix socket, or an open loopback).
    pub local: bool,
    /// The identity's roles, as the node's users say now.
    pub roles: Vec<RoleView>,
    /// The id of the token sent.
    pub token: Option<String>,
}

/// `POST /api/kiln/v1/invites`: make an invite.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InviteRequest {
    /// The role it grants: reader, writer, maintainer or admin.
    pub role: String,
    /// Where (default: every namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// How long it is good for, in seconds.
    pub ttl_secs: u64,
}

/// An invite just made: the code is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InviteCreated {
    /// The code (`ABCDE-FGHIJ-KLMNO-PQRST`).
    pub code: String,
    /// Its id on the node.
    pub id: String,
    /// The role it grants.
    pub role: String,
    /// Where.
    pub namespace: String,
    /// When it expires, ms since the epoch.
    pub expires_ms: i64,
}

/// An invite as listed (never its code).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InviteView {
    /// Its id.
    pub id: String,
    /// The role it grants.
    pub role: String,
    /// Where.
    pub namespace: String,
    /// Made, ms since the epoch.
    pub created_ms: i64,
    /// Expires, ms since the epoch.
    pub expires_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// Who used it.
    pub used_by: Option<String>,
}

/// `GET /api/kiln/v1/invites`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InviteList {
    /// Newest first.
    pub invites: Vec<InviteView>,
}

/// `GET /api/kiln/v1/invites/{id}`: the sealed bootstrap bundle, hex.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedInvite {
    /// Nonce and ciphertext, hex.
    pub sealed: String,
}

/// What a sealed invite holds: the bundle (JSON of [`InviteBundle`]) and the node's
/// signature of it (hex).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignedBundle {
    /// [`InviteBundle`] as JSON.
    pub bundle: String,
    /// The node key's ed25519 signature of `bundle`, hex.
    pub signature: String,
}

/// How to reach and join a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InviteBundle {
    /// The node's `did:key`.
    pub node: String,
    /// Its addresses (multiaddrs).
    pub addresses: Vec<String>,
    /// The role granted.
    pub role: String,
    /// Where.
    pub namespace: String,
    /// When the invite expires, ms since the epoch.
    pub expires_ms: i64,
    /// The administrator who granted it.
    pub granted_by: String,
}

/// `POST /api/kiln/v1/invites/{id}/join`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JoinRequest {
    /// The joiner's `did:key`.
    pub did: String,
    /// The proof the code gives.
    pub proof: String,
    /// The joiner's signature of the join message (hex).
    pub signature: String,
}

/// A join that went through.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JoinedView {
    /// The new user.
    pub did: String,
    /// Its role.
    pub role: String,
    /// Where.
    pub namespace: String,
}
