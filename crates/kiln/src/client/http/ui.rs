//! Web UI sessions through the daemon (they live in it): a one-time sign-in link, and ending
//! every session.

use super::Http;
use crate::remote::{API_FILE, Daemon};
use anyhow::{Result, anyhow};
use kiln_wire::{SessionsEndedView, UiLinkView};
use std::path::Path;

impl Http {
    /// The daemon running on the repository at `home` (or the one at `url`), and the base
    /// URL browsers reach it at.
    pub fn for_ui(home: &Path, url: Option<&str>) -> Result<(Http, String)> {
        let daemon = Daemon::find(home, url)?.ok_or_else(|| {
            anyhow!(
                "no daemon runs on {}: start it first (kiln daemon, or scripts/node)",
                home.display()
            )
        })?;
        let base = match url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => std::fs::read_to_string(home.join(API_FILE))
                .map(|t| t.trim().trim_end_matches('/').to_string())
                .map_err(|e| anyhow!("cannot read the daemon's address ({API_FILE}): {e}"))?,
        };
        Ok((Http::new(daemon), base))
    }

    /// `POST /api/kiln/v1/ui/login`.
    pub fn ui_link(&self) -> Result<UiLinkView> {
        self.daemon.post_json("/api/kiln/v1/ui/login")
    }

    /// `POST /api/kiln/v1/ui/logout`: how many sessions ended.
    pub fn ui_logout_all(&self) -> Result<usize> {
        let ended: SessionsEndedView = self.daemon.post_json("/api/kiln/v1/ui/logout")?;
        Ok(ended.ended)
    }
}
