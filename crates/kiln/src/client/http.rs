//! The node as the daemon running on the repository, over HTTP: kiln's API where it has
//! the operation, the Kubo RPC (kubo's shapes) for the content and pin commands. Content
//! is read block by block and checked here, by the same code as a local read, so a
//! malformed file gives the same error, not a broken stream.

mod add;
mod builds;
mod invites;
pub mod psa;
mod rootfs;
mod tokens;
mod ui;

use super::{BuildHow, CarImport, Entry, Found, Listed, Node, RootfsCounts};
use crate::cli::AddArgs;
use crate::remote::{Blocks, Daemon, Multipart, Part};
use anyhow::{Context, Result, anyhow, bail};
use indicatif::ProgressBar;
use kiln_build::{Plan, Recipe};
use kiln_core::import::{ImportOptions, Imported};
use kiln_core::{BlockSource, Cid};
use kiln_node::pins::Whose;
use kiln_store::journal::Query;
use kiln_wire::{
    BuildList, BuildResult, BuildRowView, EventList, EventView, GcView, PREFIX, PinList,
    PruneRequest, PruneView, ScheduleList, ScheduleView, StatView, SubmissionView, VerifyView,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// The daemon at the address `$KILN_HOME/api` (or `--node`) names.
pub struct Http {
    daemon: Daemon,
    blocks: Blocks,
}

impl Http {
    /// Talk to `daemon`.
    pub fn new(daemon: Daemon) -> Http {
        Http {
            blocks: Blocks(daemon.clone()),
            daemon,
        }
    }
}

/// `/api/v0/pin/add` and `/api/v0/pin/rm` answers.
#[derive(serde::Deserialize)]
struct Pins {
    #[serde(rename = "Pins")]
    pins: Vec<String>,
}

/// `/api/v0/pin/ls?arg=CID` answer.
#[derive(serde::Deserialize)]
struct PinLsAnswer {
    #[serde(rename = "Keys")]
    keys: BTreeMap<String, PinType>,
}

#[derive(serde::Deserialize)]
struct PinType {
    #[serde(rename = "Type")]
    kind: String,
}

/// `/api/v0/block/stat` and `/api/v0/block/put` answers.
#[derive(serde::Deserialize)]
struct BlockStat {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Size")]
    size: u64,
}

/// One `/api/v0/block/rm` line.
#[derive(serde::Deserialize)]
struct Removed {
    #[serde(rename = "Hash")]
    hash: String,
    #[serde(rename = "Error", default)]
    error: String,
}

/// `/api/v0/ls` answer.
#[derive(serde::Deserialize)]
struct LsAnswer {
    #[serde(rename = "Objects")]
    objects: Vec<LsObject>,
}

#[derive(serde::Deserialize)]
struct LsObject {
    #[serde(rename = "Links")]
    links: Vec<LsLink>,
}

#[derive(serde::Deserialize)]
struct LsLink {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Hash")]
    hash: String,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "Type")]
    kind: i64,
    #[serde(rename = "Missing", default)]
    missing: bool,
}

/// One `/api/v0/dag/import` line: a root, or the totals.
#[derive(serde::Deserialize)]
struct ImportLine {
    #[serde(rename = "Root")]
    root: Option<ImportRoot>,
    #[serde(rename = "Stats")]
    stats: Option<ImportStats>,
}

#[derive(serde::Deserialize)]
struct ImportRoot {
    #[serde(rename = "Cid")]
    cid: serde_json::Value,
}

#[derive(serde::Deserialize)]
struct ImportStats {
    #[serde(rename = "BlockCount")]
    blocks: u64,
}

impl Node for Http {
    fn addresses(&self) -> Result<Vec<String>> {
        Ok(self.daemon.node()?.addresses)
    }

    fn gc(&self) -> Result<GcView> {
        self.daemon.post_json(&format!("{PREFIX}/gc"))
    }

    fn stat(&self) -> Result<StatView> {
        self.daemon.get_json(&format!("{PREFIX}/stat"))
    }

    fn verify(&self) -> Result<VerifyView> {
        self.daemon.post_json(&format!("{PREFIX}/verify"))
    }

    fn events(&self, q: &Query) -> Result<Vec<EventView>> {
        let mut path = format!(
            "{PREFIX}/events?order={}",
            if q.newest_first { "newest" } else { "oldest" }
        );
        if let Some(a) = q.after {
            path.push_str(&format!("&after={a}"));
        }
        if let Some(s) = q.since_ms {
            path.push_str(&format!("&since={s}"));
        }
        if let Some(l) = q.limit {
            path.push_str(&format!("&limit={l}"));
        }
        for (key, value) in [("who", &q.who), ("action", &q.action)] {
            if let Some(v) = value {
                path.push_str(&format!(
                    "&{key}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                ));
            }
        }
        let list: EventList = self.daemon.get_json(&path)?;
        Ok(list.events)
    }

    fn pin_add(
        &self,
        path: &str,
        recursive: bool,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<String> {
        let mut q = vec![
            ("arg", path.to_string()),
            ("recursive", recursive.to_string()),
        ];
        if let Some(n) = name {
            q.push(("name", n.to_string()));
        }
        if let Some(ns) = namespace {
            q.push(("namespace", ns.to_string()));
        }
        let answer: Pins = self.daemon.rpc_json("pin/add", &q)?;
        answer
            .pins
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the daemon did not say what it pinned"))
    }

    fn pin_rm(&self, path: &str, whose: &Whose) -> Result<(String, Vec<String>)> {
        let mut q = vec![("arg", path.to_string())];
        match whose {
            Whose::Mine => {}
            Whose::Of(o) => q.push(("owner", o.to_string())),
            Whose::All => q.push(("all", "true".into())),
        }
        let answer: Pins = self.daemon.rpc_json("pin/rm", &q)?;
        let cid = answer
            .pins
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the daemon did not say what it unpinned"))?;
        let list = self.pins(false)?;
        let mut left: Vec<String> = Vec::new();
        for pin in list.pins.into_iter().filter(|v| v.cid == cid) {
            if !left.contains(&pin.owner) {
                left.push(pin.owner);
            }
        }
        Ok((cid, left))
    }

    fn pin_status(&self, cid: &Cid) -> Result<Option<String>> {
        match self
            .daemon
            .rpc_json::<PinLsAnswer>("pin/ls", &[("arg", cid.to_string())])
        {
            Ok(a) => Ok(a.keys.into_values().next().map(|t| t.kind)),
            Err(e) if e.to_string().contains("is not pinned") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn pins(&self, indirect: bool) -> Result<PinList> {
        self.daemon
            .get_json(&format!("{PREFIX}/pins?indirect={indirect}"))
    }

    fn blocks(&self) -> &dyn BlockSource {
        &self.blocks
    }

    fn cat(&self, path: &str, offset: u64, length: Option<u64>, out: &mut dyn Write) -> Result<()> {
        let cid = crate::cmd::resolve(&self.blocks, path)?;
        kiln_core::export::read_file(&self.blocks, &cid, offset, length, out)?;
        Ok(())
    }

    fn ls(&self, path: &str) -> Result<Vec<Listed>> {
        let answer: LsAnswer = self.daemon.rpc_json("ls", &[("arg", path.to_string())])?;
        let mut out = Vec::new();
        for obj in answer.objects {
            for l in obj.links {
                let entry = match (l.missing, l.kind) {
                    (true, _) => Entry::Missing(l.size),
                    (false, 1 | 5) => Entry::Directory,
                    (false, 4) => Entry::Symlink(l.size),
                    (false, _) => Entry::File(l.size),
                };
                out.push(Listed {
                    cid: l.hash,
                    name: l.name,
                    entry,
                });
            }
        }
        Ok(out)
    }

    fn block_get(&self, cid: &Cid) -> Result<Vec<u8>> {
        self.blocks
            .get(cid)?
            .ok_or_else(|| anyhow!("block {cid} not found"))
    }

    fn block_stat(&self, cid: &Cid) -> Result<u64> {
        let stat: BlockStat = self
            .daemon
            .rpc_json("block/stat", &[("arg", cid.to_string())])?;
        Ok(stat.size)
    }

    fn block_put(
        &self,
        blocks: &mut dyn Iterator<Item = Result<(Cid, Vec<u8>)>>,
        codec: &str,
        pin: bool,
    ) -> Result<Vec<String>> {
        let mut put = Vec::new();
        for b in blocks {
            let (_, data) = b?;
            let body = Multipart::new(
                vec![Part::File(
                    String::new(),
                    Box::new(std::io::Cursor::new(data)),
                )],
                Box::new(|_| {}),
            );
            let q = [("cid-codec", codec.to_string()), ("pin", pin.to_string())];
            let answer: BlockStat = self.daemon.rpc_multipart("block/put", &q, body)?.json()?;
            put.push(answer.key);
        }
        Ok(put)
    }

    fn block_rm(&self, cid: &Cid, force: bool) -> Result<Option<Result<(), String>>> {
        let q = [("arg", cid.to_string()), ("force", force.to_string())];
        let lines: Vec<Removed> = self.daemon.rpc_ndjson("block/rm", &q)?;
        Ok(
            match lines.into_iter().find(|l| l.hash == cid.to_string()) {
                None => None,
                Some(l) if l.error.is_empty() => Some(Ok(())),
                Some(l) => Some(Err(l.error)),
            },
        )
    }

    fn dag_export(&self, path: &str, out: &mut dyn Write) -> Result<()> {
        let mut body = self
            .daemon
            .rpc("dag/export", &[("arg", path.to_string())])?;
        std::io::copy(&mut body, out).context("reading the CAR from the daemon")?;
        Ok(())
    }

    fn dag_import(
        &self,
        inputs: Vec<(String, Box<dyn Read + Send>)>,
        pin: bool,
    ) -> Result<CarImport> {
        // The CARs stream to the daemon as multipart parts.
        let parts = inputs
            .into_iter()
            .map(|(name, input)| Part::File(name, input))
            .collect();
        let body = Multipart::new(parts, Box::new(|_| {}));
        let q = [("pin-roots", pin.to_string()), ("stats", "true".into())];
        let text = self.daemon.rpc_multipart("dag/import", &q, body)?.text()?;
        let lines: Vec<ImportLine> = crate::remote::parse_ndjson(&text, "dag/import")?;
        let pinned = lines
            .iter()
            .filter_map(|l| l.root.as_ref())
            .map(|r| {
                r.cid
                    .get("/")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let blocks = lines
            .iter()
            .filter_map(|l| l.stats.as_ref())
            .map(|s| s.blocks)
            .sum();
        Ok(CarImport { pinned, blocks })
    }

    fn add(&self, args: &AddArgs, _opts: ImportOptions, bar: ProgressBar) -> Result<()> {
        // The daemon chunks with the same flags, sent as kubo's query parameters.
        add::add(&self.daemon, args, bar)
    }

    fn rootfs_import(&self, path: &Path, name: &str) -> Result<(Imported, RootfsCounts)> {
        rootfs::import(&self.daemon, path, name)
    }

    fn build(&self, recipe: &Recipe, _plan: &Plan, how: &BuildHow) -> Result<BuildResult> {
        // The daemon plans the recipe again from the source tree it is sent.
        builds::build(&self.daemon, recipe, how)
    }

    fn find_or_build(&self, action: &Cid, timeout: &str) -> Result<Found> {
        builds::find_or_build(&self.daemon, action, timeout)
    }

    fn builds(&self, limit: usize) -> Result<Vec<BuildRowView>> {
        let list: BuildList = self
            .daemon
            .get_json(&format!("{PREFIX}/builds?limit={limit}"))?;
        Ok(list.builds)
    }

    fn build_log(&self, build: &str, out: &mut dyn Write) -> Result<()> {
        if build.is_empty() {
            bail!("{build:?} is neither a build number nor a CID");
        }
        let id = percent_encoding::utf8_percent_encode(build, percent_encoding::NON_ALPHANUMERIC);
        let mut body = self.daemon.get(&format!("{PREFIX}/builds/{id}/log"))?;
        std::io::copy(&mut body, out).context("reading from the daemon")?;
        Ok(())
    }

    fn prune(&self, req: &PruneRequest) -> Result<PruneView> {
        self.daemon
            .post_json_body(&format!("{PREFIX}/builds/prune"), req)
    }

    fn schedules(&self) -> Result<Vec<ScheduleView>> {
        Ok(self
            .daemon
            .get_json::<ScheduleList>(&format!("{PREFIX}/schedules"))?
            .schedules)
    }

    fn unschedule(&self, id: i64) -> Result<ScheduleView> {
        self.daemon.delete_json(&format!("{PREFIX}/schedules/{id}"))
    }

    fn schedule(
        &self,
        recipe: &Recipe,
        params: &BTreeMap<String, String>,
    ) -> Result<(bool, ScheduleView)> {
        builds::schedule(&self.daemon, recipe, params)
    }

    fn cancel(&self, id: &str) -> Result<(bool, SubmissionView)> {
        let path = format!("{PREFIX}/builds/{id}/cancel");
        let (status, sub): (u16, SubmissionView) = self.daemon.post_json_status(&path, &())?;
        Ok((status == 202, sub))
    }

    fn submission(&self, id: &str) -> Result<SubmissionView> {
        self.daemon.get_json(&format!("{PREFIX}/builds/{id}"))
    }
}
