//! What each command does.

mod add;
mod block;
mod daemon;
mod dag;
mod files;
mod pin;
mod repo;

use crate::cli::{Cli, Command, RepoCommand};
use anyhow::Result;
use kiln_core::Cid;
use kiln_core::cids::ContentPath;
use std::process::ExitCode;

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let home = crate::repo::home(cli.home.as_deref())?;
    match cli.command {
        Command::Init => repo::init(&home),
        Command::Id => repo::id(&home),
        Command::Daemon(a) => daemon::run(&home, a),
        Command::Add(a) => add::run(&home, a),
        Command::Cat(a) => files::cat(&home, a),
        Command::Get(a) => files::get(&home, a),
        Command::Ls(a) => files::ls(&home, a),
        Command::Pin(p) => pin::run(&home, p),
        Command::Gc | Command::Repo(RepoCommand::Gc) => repo::gc(&home),
        Command::Repo(RepoCommand::Stat { raw }) => repo::stat(&home, raw),
        Command::Repo(RepoCommand::Verify) => repo::verify(&home),
        Command::Block(b) => block::run(&home, b),
        Command::Dag(d) => dag::run(&home, d),
    }
}

/// Resolve `CID[/path]` against the store.
pub fn resolve(store: &kiln_store::Store, path: &str) -> Result<Cid> {
    let p = ContentPath::parse(path)?;
    Ok(kiln_core::export::resolve(store, &p)?)
}
