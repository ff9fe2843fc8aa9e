//! What each command does. Commands that read or change the repository ask the node
//! ([`Repo::node`]: the repository opened here, or the daemon running on it; see
//! `client.rs`) and format its answers, which have the same shapes either way.

pub(crate) mod add;
mod block;
mod build;
mod daemon;
mod dag;
mod events;
mod files;
pub(crate) mod identity;
mod invite;
mod pin;
mod remote_pins;
mod repo;
pub(crate) mod rootfs;
mod token;
mod ui;
mod user;

use crate::cli::{Cli, Command, RepoCommand};
use crate::remote::Daemon;
use anyhow::Result;
use kiln_core::Cid;
use kiln_core::cids::ContentPath;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The caller of the command line's direct path: the local administrator.
pub(crate) fn cli_caller() -> kiln_node::Caller {
    kiln_node::Caller::local(kiln_node::Via::Cli)
}

/// How to reach the repository: settled on first use.
pub struct Repo {
    home: PathBuf,
    node: Option<String>,
    no_daemon: bool,
    /// The node the commands talk to, chosen once.
    client: std::cell::OnceCell<Box<dyn crate::client::Node>>,
}

impl Repo {
    /// The repository directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The daemon named by `--node`/`$KILN_NODE`, if one is.
    pub fn node_url(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The node to talk to: the daemon running on the repository (or the one named), else
    /// the repository opened here. Chosen on first use; the same one after.
    pub fn node(&self) -> Result<&dyn crate::client::Node> {
        if let Some(c) = self.client.get() {
            return Ok(c.as_ref());
        }
        let daemon = match self.no_daemon {
            true => None,
            false => Daemon::find(&self.home, self.node.as_deref())?,
        };
        let chosen: Box<dyn crate::client::Node> = match daemon {
            Some(d) => Box::new(crate::client::Http::new(d)),
            None => Box::new(crate::client::Local::open(&self.home)?),
        };
        Ok(self.client.get_or_init(|| chosen).as_ref())
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let repo = Repo {
        home: crate::repo::home(cli.home.as_deref())?,
        node: cli.node,
        no_daemon: cli.no_daemon,
        client: std::cell::OnceCell::new(),
    };
    match cli.command {
        Command::Init => repo::init(repo.home()),
        Command::Id => repo::id(&repo),
        Command::Identity(c) => identity::run(c),
        Command::User(c) => user::run(&repo, c),
        Command::Token(c) => token::run(&repo, c),
        Command::Invite(c) => invite::run(&repo, c),
        Command::Join { url, code } => invite::join(&repo, &url, &code),
        Command::Ui(c) => ui::run(&repo, c),
        Command::Daemon(a) => daemon::run(repo.home(), a),
        Command::Add(a) => add::run(&repo, a),
        Command::Cat(a) => files::cat(&repo, a),
        Command::Get(a) => files::get(&repo, a),
        Command::Ls(a) => files::ls(&repo, a),
        Command::Pin(p) => pin::run(&repo, p),
        Command::Gc | Command::Repo(RepoCommand::Gc) => repo::gc(&repo),
        Command::Repo(RepoCommand::Stat { raw }) => repo::stat(&repo, raw),
        Command::Repo(RepoCommand::Verify) => repo::verify(&repo),
        Command::Block(b) => block::run(&repo, b),
        Command::Dag(d) => dag::run(&repo, d),
        Command::Rootfs(r) => rootfs::run(&repo, r),
        Command::Build(a) => build::run(&repo, a),
        Command::Builds(a) => build::builds(&repo, a),
        Command::Events(a) => events::run(&repo, a),
        Command::Log(a) => build::log(&repo, a),
        Command::Record(a) => build::record(&repo, a),
        Command::Schedules(a) => build::schedules(&repo, a),
    }
}

/// Resolve `CID[/path]` against the store.
pub fn resolve(store: &dyn kiln_core::BlockSource, path: &str) -> Result<Cid> {
    let p = ContentPath::parse(path)?;
    Ok(kiln_core::export::resolve(store, &p)?)
}
