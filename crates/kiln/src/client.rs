//! The one interface through which the command line reaches a node: the repository opened
//! in this process ([`Local`], which calls kiln-node's operations as the local
//! administrator) or the daemon running on it ([`Http`], kiln's API and the Kubo RPC).
//! Which one is settled once, on first use ([`crate::cmd::Repo::node`]); commands format
//! the answers, which have the same shapes either way (kiln-wire's views), and never ask
//! which kind of node they talk to.
//!
//! Two commands read the build index itself and so need the repository opened here
//! whatever runs on it: `kiln record` and `kiln build --plan` (the daemon has no route for
//! records yet). They use [`Local`] by name.

mod http;
pub use http::psa::PinningService as RemotePinning;
mod local;

pub use http::Http;
pub use local::Local;

use crate::cli::AddArgs;
use anyhow::Result;
use indicatif::ProgressBar;
use kiln_build::{Plan, Recipe};
use kiln_core::import::{ImportOptions, Imported};
use kiln_core::{BlockSource, Cid};
use kiln_node::pins::Whose;
use kiln_store::journal::Query;
use kiln_wire::{
    BuildResult, BuildRowView, EventView, GcView, PinList, PruneRequest, PruneView, ScheduleView,
    StatView, SubmissionView, VerifyView,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// What a command asks of a node.
pub trait Node {
    /// The addresses the node listens on (none for a repository opened here).
    fn addresses(&self) -> Result<Vec<String>>;
    /// Collect garbage: blocks no pin reaches, build directories nothing holds.
    fn gc(&self) -> Result<GcView>;
    /// The repository's counts and sizes.
    fn stat(&self) -> Result<StatView>;
    /// Read every block back and check it; every pin's DAG for missing blocks.
    fn verify(&self) -> Result<VerifyView>;
    /// Events of the journal matching `q`, in the order it asks.
    fn events(&self, q: &Query) -> Result<Vec<EventView>>;

    /// Pin `CID[/path]` for the caller (recursively or only its root), optionally named; the
    /// CID pinned.
    fn pin_add(
        &self,
        path: &str,
        recursive: bool,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<String>;
    /// Remove pins of `CID[/path]`: the CID and the owners whose pins remain on it.
    fn pin_rm(&self, path: &str, whose: &Whose) -> Result<(String, Vec<String>)>;
    /// How `cid` is pinned (`recursive`, `direct`, `indirect through ROOT`), if it is.
    fn pin_status(&self, cid: &Cid) -> Result<Option<String>>;
    /// Every pin, and (with `indirect`) every CID pinned only through another.
    fn pins(&self, indirect: bool) -> Result<PinList>;

    /// The node's blocks, read from here: content is checked against its CIDs on this side.
    fn blocks(&self) -> &dyn BlockSource;
    /// Write `length` bytes (all, if `None`) of the file at `CID[/path]` from `offset`.
    fn cat(&self, path: &str, offset: u64, length: Option<u64>, out: &mut dyn Write) -> Result<()>;
    /// The entries of the directory at `CID[/path]`.
    fn ls(&self, path: &str) -> Result<Vec<Listed>>;
    /// A block's bytes.
    fn block_get(&self, cid: &Cid) -> Result<Vec<u8>>;
    /// A block's size.
    fn block_stat(&self, cid: &Cid) -> Result<u64>;
    /// Store blocks (already checked to decode as `codec`), pinning each if asked; their
    /// CIDs in order.
    fn block_put(
        &self,
        blocks: &mut dyn Iterator<Item = Result<(Cid, Vec<u8>)>>,
        codec: &str,
        pin: bool,
    ) -> Result<Vec<String>>;
    /// Remove a block: `None` if it was not there, else whether it went (or why not).
    fn block_rm(&self, cid: &Cid, force: bool) -> Result<Option<Result<(), String>>>;
    /// Write the CAR of the DAG at `CID[/path]`.
    fn dag_export(&self, path: &str, out: &mut dyn Write) -> Result<()>;
    /// Import CAR files (each named for errors), pinning their roots if asked.
    fn dag_import(
        &self,
        inputs: Vec<(String, Box<dyn Read + Send>)>,
        pin: bool,
    ) -> Result<CarImport>;
    /// `kiln add`: walk and import the inputs, print each added entry as it goes.
    fn add(&self, args: &AddArgs, opts: ImportOptions, bar: ProgressBar) -> Result<()>;
    /// Import a directory or tar archive as a root file system pinned under `name`.
    fn rootfs_import(&self, path: &Path, name: &str) -> Result<(Imported, RootfsCounts)>;

    /// Build a planned recipe (the daemon plans it again from the source it is sent),
    /// printing its events as they come.
    fn build(&self, recipe: &Recipe, plan: &Plan, how: &BuildHow) -> Result<BuildResult>;
    /// The outputs of an action: from the cache, or built now within `timeout`.
    fn find_or_build(&self, action: &Cid, timeout: &str) -> Result<Found>;
    /// The latest `limit` builds, newest first.
    fn builds(&self, limit: usize) -> Result<Vec<BuildRowView>>;
    /// Write the log of a build (number or action CID).
    fn build_log(&self, build: &str, out: &mut dyn Write) -> Result<()>;
    /// Forget old builds from the history.
    fn prune(&self, req: &PruneRequest) -> Result<PruneView>;
    /// The registered schedules.
    fn schedules(&self) -> Result<Vec<ScheduleView>>;
    /// Remove schedule `id`; the schedule removed.
    fn unschedule(&self, id: i64) -> Result<ScheduleView>;
    /// Register a recipe to be built on its schedule: whether it is new, and the schedule.
    fn schedule(
        &self,
        recipe: &Recipe,
        params: &BTreeMap<String, String>,
    ) -> Result<(bool, ScheduleView)>;
    /// Ask a submitted build to stop: whether it was running, and the submission.
    fn cancel(&self, id: &str) -> Result<(bool, SubmissionView)>;
    /// A submitted build as it is now.
    fn submission(&self, id: &str) -> Result<SubmissionView>;
}

/// One directory entry, as `kiln ls` prints it.
pub struct Listed {
    /// The entry's CID.
    pub cid: String,
    /// Its name in the directory.
    pub name: String,
    /// What it is.
    pub entry: Entry,
}

/// What a directory entry is.
pub enum Entry {
    Directory,
    /// A file of this many bytes.
    File(u64),
    /// A symlink (its block's size).
    Symlink(u64),
    /// Not in the repository (the size its parent records).
    Missing(u64),
}

/// What `dag import` did.
pub struct CarImport {
    /// The roots pinned (empty when not asked to pin).
    pub pinned: Vec<String>,
    /// The blocks read.
    pub blocks: u64,
}

/// How a build runs (the flags of `kiln build`).
pub struct BuildHow {
    pub params: BTreeMap<String, String>,
    pub check: bool,
    pub slots: Option<usize>,
}

/// An action's outputs, found or built.
pub struct Found {
    /// The record's CID.
    pub record: String,
    /// Each output's CID.
    pub outputs: BTreeMap<String, Cid>,
    /// Found in the cache (else built now).
    pub cached: bool,
}

/// What a root file system import held, for the summary line.
#[derive(Default)]
pub struct RootfsCounts {
    pub files: u64,
    pub bytes: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Device nodes, fifos, sockets and other special entries left out.
    pub skipped: u64,
}

/// Who is asking, for build records.
fn requester() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        // SAFETY: geteuid has no preconditions.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::geteuid() }));
    format!("local user {user}")
}
