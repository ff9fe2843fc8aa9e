//! `kiln ui login|logout`: signing browsers in to the daemon's web UI. Sessions live in the
//! daemon, so these need it running; on the repository they go through its socket, as the
//! local administrator.

use crate::cli::UiCommand;
use crate::cmd::Repo;
use crate::remote::{API_FILE, Daemon};
use anyhow::{Result, anyhow, bail};
use kiln_wire::{SessionsEndedView, UiLinkView};
use std::process::ExitCode;

pub fn run(repo: &Repo, cmd: UiCommand) -> Result<ExitCode> {
    let daemon = Daemon::find(repo.home(), repo.node_url())?.ok_or_else(|| {
        anyhow!(
            "no daemon runs on {}: start it first (kiln daemon, or scripts/node)",
            repo.home().display()
        )
    })?;
    match cmd {
        UiCommand::Login { json } => {
            let link: UiLinkView = daemon.post_json("/api/kiln/v1/ui/login")?;
            let base = match repo.node_url() {
                Some(u) => u.trim_end_matches('/').to_string(),
                None => std::fs::read_to_string(repo.home().join(API_FILE))
                    .map(|t| t.trim().trim_end_matches('/').to_string())
                    .map_err(|e| anyhow!("cannot read the daemon's address ({API_FILE}): {e}"))?,
            };
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
            let ended: SessionsEndedView = daemon.post_json("/api/kiln/v1/ui/logout")?;
            println!("ended {} web UI session(s)", ended.ended);
        }
    }
    Ok(ExitCode::SUCCESS)
}
