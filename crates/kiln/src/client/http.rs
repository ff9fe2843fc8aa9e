//! The node as the daemon running on the repository, over HTTP (kiln's API).

use super::Node;
use crate::remote::Daemon;
use anyhow::Result;
use kiln_store::journal::Query;
use kiln_wire::{EventList, EventView, GcView, PREFIX, StatView, VerifyView};

/// The daemon at the address `$KILN_HOME/api` (or `--node`) names.
pub struct Http(pub Daemon);

impl Node for Http {
    fn addresses(&self) -> Result<Vec<String>> {
        Ok(self.0.node()?.addresses)
    }

    fn gc(&self) -> Result<GcView> {
        self.0.post_json(&format!("{PREFIX}/gc"))
    }

    fn stat(&self) -> Result<StatView> {
        self.0.get_json(&format!("{PREFIX}/stat"))
    }

    fn verify(&self) -> Result<VerifyView> {
        self.0.post_json(&format!("{PREFIX}/verify"))
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
        let list: EventList = self.0.get_json(&path)?;
        Ok(list.events)
    }
}
