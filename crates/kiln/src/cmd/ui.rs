//! `kiln ui login|logout`: signing browsers in to the daemon's web UI. Sessions live in the
//! daemon, so these need it running; on the repository they go through its socket, as the
//! local administrator.

use crate::cli::UiCommand;
use crate::client::Http;
use crate::cmd::Repo;
use anyhow::{Result, bail};
use std::process::ExitCode;

pub fn run(repo: &Repo, cmd: UiCommand) -> Result<ExitCode> {
    let (node, base) = Http::for_ui(repo.home(), repo.node_url())?;
    match cmd {
        UiCommand::Login { json } => {
            let link = node.ui_link()?;
            let url = format!("{base}{}", link.path);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"url": url, "expires": link.expires})
                );
            } else {
                println!("{url}");
                eprintln!(
                    "open it in the browser to sign in to the web UI (it works once, until {})",
                    kiln_node::text::when_secs(link.expires as i64)
                );
            }
        }
        UiCommand::Logout { all } => {
            if !all {
                bail!(
                    "kiln ui logout ends every session: say so with --all (a browser signs itself out with the Sign out button)"
                );
            }
            println!("ended {} web UI session(s)", node.ui_logout_all()?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
